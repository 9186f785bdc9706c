"""Knowledge-variant recipes on the seed ontology: each does what it says, deterministically."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from anatomy_vlm.exceptions import OntologyError, OntologyValidationError
from anatomy_vlm.ontology import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.json_io import save_json
from anatomy_vlm.ontology.owl import save_owl
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology
from anatomy_vlm.ontology.variants import (
    DATA_DRIVEN_PREFIXES,
    RECIPES,
    Recipe,
    apply_recipe,
    apply_recipes,
    compare_variants,
    is_data_driven,
    parse_recipe,
    recipe_help,
    shuffle_located_in_result,
    split_description,
)

LOCATED_IN = RelationType.LOCATED_IN
PART_OF = RelationType.PART_OF


@pytest.fixture(scope="module")
def seed() -> Ontology:
    return seed_ontology()


def apply(ontology: Ontology, spec: str) -> Ontology:
    return apply_recipe(ontology, parse_recipe(spec))


def type_counts(ontology: Ontology) -> Counter:
    return Counter(r.type for r in ontology.relations)


def region_parents(ontology: Ontology) -> Counter:
    return Counter(r.start for r in ontology.relations_of_type(PART_OF) if r.start in REGION_IDS)


# -- drop-edge-type ------------------------------------------------------------------------------
def test_drop_edge_type_removes_that_type_only(seed):
    variant = apply(seed, "drop-edge-type:LOCATED_IN")
    assert variant.relations_of_type(LOCATED_IN) == []
    assert [r for r in seed.relations if r.type is not LOCATED_IN] == list(variant.relations)
    assert variant.concepts == seed.concepts
    # the keyword form and a lower-case type mean the same
    assert apply(seed, "drop-edge-type:type=located_in") == variant


# -- drop-edges ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, rel_type, n", [
    ("drop-edges:fraction=0.2,seed=7", None, 75),
    ("drop-edges:fraction=0.5,seed=1,type=LOCATED_IN", LOCATED_IN, 31),
    ("drop-edges:fraction=0.5,seed=1,type=SUGGESTS", RelationType.SUGGESTS, 5),
])
def test_drop_edges_drops_exactly_round_fraction_times_n(seed, spec, rel_type, n):
    fraction = parse_recipe(spec).params["fraction"]
    candidates = [r for r in seed.relations if rel_type is None or r.type is rel_type]
    assert len(candidates) == n
    variant = apply(seed, spec)
    removed = set(seed.relations) - set(variant.relations)
    assert set(variant.relations) <= set(seed.relations)
    assert len(removed) == round(fraction * n)
    assert all(rel_type is None or r.type is rel_type for r in removed)
    assert variant.concepts == seed.concepts


def test_drop_edges_is_seeded(seed):
    first = apply(seed, "drop-edges:fraction=0.3,seed=7")
    assert apply(seed, "drop-edges:fraction=0.3,seed=7") == first
    assert apply(seed, "drop-edges:fraction=0.3,seed=8") != first


def test_drop_edges_keeps_a_part_of_parent_for_every_region(seed):
    part_of = seed.relations_of_type(PART_OF)
    droppable = [r for r in part_of if r.start not in REGION_IDS]
    fraction = len(droppable) / len(part_of)  # every edge that may go must go
    for s in range(5):
        variant = apply(seed, f"drop-edges:fraction={fraction},seed={s},type=PART_OF")
        assert len(variant.relations_of_type(PART_OF)) == len(part_of) - len(droppable)
        assert all(region_parents(variant)[region] == 1 for region in REGION_IDS)


def test_drop_edges_keep_tree_counts_second_parents(seed):
    # Each region gets a second parent; dropping 35 of 64 PART_OF edges must then take exactly one
    # of the two from every region, whichever the seed draws.
    extra = [Relation(PART_OF, region, "body", "extra") for region in REGION_IDS]
    doubled = seed.with_changes(relations=[*seed.relations, *extra])
    n = len(doubled.relations_of_type(PART_OF))
    assert n == 64
    for s in range(5):
        variant = apply(doubled, f"drop-edges:fraction={35 / 64},seed={s},type=PART_OF")
        assert len(variant.relations_of_type(PART_OF)) == 29
        assert all(region_parents(variant)[region] == 1 for region in REGION_IDS)


def test_drop_edges_without_keep_tree_may_orphan_regions_and_refuses_what_it_cannot_do(seed):
    with pytest.raises(OntologyError, match=r"cannot drop 18 of 35 PART_OF.*keep-tree=false"):
        apply(seed, "drop-edges:fraction=0.5,seed=3,type=PART_OF")
    variant = apply(seed, "drop-edges:fraction=0.5,seed=3,type=PART_OF,keep-tree=false")
    assert len(variant.relations_of_type(PART_OF)) == 35 - 18
    assert any(region_parents(variant)[region] == 0 for region in REGION_IDS)


# -- shuffle-located-in --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def weighted(seed) -> Ontology:
    """The seed with a distinct weight and count on every LOCATED_IN edge, and a second source."""
    located = seed.relations_of_type(LOCATED_IN)
    relations = [r for r in seed.relations if r.type is not LOCATED_IN]
    relations += [dataclasses.replace(r, weight=i / 100, count=i) for i, r in enumerate(located, 1)]
    relations.append(Relation(LOCATED_IN, "cardiomegaly", "cardiac_silhouette", "padchest", 0.9, 90))
    return seed.with_changes(relations=relations).validate()


def degrees(ontology: Ontology) -> tuple[Counter, Counter]:
    located = ontology.relations_of_type(LOCATED_IN)
    return Counter(r.start for r in located), Counter(r.end for r in located)


def test_shuffle_preserves_every_degree_exactly(weighted):
    result = shuffle_located_in_result(weighted, seed=7)
    variant = result.ontology
    out_before, in_before = degrees(weighted)
    out_after, in_after = degrees(variant)
    for concept in weighted.concepts:
        if concept.kind is ConceptKind.ANATOMY:
            assert in_after[concept.id] == in_before[concept.id], concept.id
        else:
            assert out_after[concept.id] == out_before[concept.id], concept.id
    assert [r for r in variant.relations if r.type is not LOCATED_IN] == \
        [r for r in weighted.relations if r.type is not LOCATED_IN]
    variant.validate()
    assert result.edges == 32 and result.attempts == 10 * 32


def test_shuffle_moves_targets_and_weights_travel_with_edges(weighted):
    result = shuffle_located_in_result(weighted, seed=7)
    before = weighted.relations_of_type(LOCATED_IN)
    after = result.ontology.relations_of_type(LOCATED_IN)
    # weight, count and source stay on the edge: per finding the same multiset of evidence
    evidence = lambda rels: Counter((r.start, r.source, r.weight, r.count) for r in rels)  # noqa: E731
    assert evidence(after) == evidence(before)
    moved = Counter((r.start, r.end) for r in after) - Counter((r.start, r.end) for r in before)
    assert result.moved >= sum(moved.values()) >= len(before) // 2
    assert 0 < result.accepted <= result.attempts


def test_shuffle_is_seeded(seed):
    first = apply(seed, "shuffle-located-in:seed=7")
    assert apply(seed, "shuffle-located-in:seed=7") == first
    assert apply(seed, "shuffle-located-in:seed=8") != first
    assert first != seed


# -- data-driven-only / curated-only -------------------------------------------------------------
DATA_SOURCES = ["padchest", "PadChest-2024", "mimic-cxr", "chest-imagenome", "data:iu-xray"]
SOURCES = DATA_SOURCES + ["seed", "curated:radlex", "database"]


@pytest.fixture(scope="module")
def mixed(seed) -> Ontology:
    """The seed plus one cardiomegaly edge per source above."""
    extra = [Relation(LOCATED_IN, "cardiomegaly", "heart", source) for source in SOURCES]
    return seed.with_changes(relations=[*seed.relations, *extra]).validate()


def test_data_driven_and_curated_split_the_relations(mixed):
    data = apply(mixed, "data-driven-only")
    curated = apply(mixed, "curated-only")
    assert {r.source for r in data.relations} == set(DATA_SOURCES)
    assert set(data.relations) | set(curated.relations) == set(mixed.relations)
    assert not set(data.relations) & set(curated.relations)
    assert data.concepts == curated.concepts == mixed.concepts
    assert "data:" in DATA_DRIVEN_PREFIXES and not is_data_driven("database")


def test_data_driven_prefixes_are_a_parameter(mixed):
    variant = apply(mixed, "data-driven-only:prefixes=seed+curated:")
    assert {r.source for r in variant.relations} == {"seed", "curated:radlex"}


# -- add-concepts --------------------------------------------------------------------------------
PLAQUE = Concept("pleural_plaque", ConceptKind.FINDING, "pleural plaque", definition="A calcified pleural thickening.",
                 source="curated")


def test_add_concepts_from_owl_links_to_base_concepts(seed, tmp_path):
    path = tmp_path / "plaque.owl"
    extra = Ontology(
        concepts=(PLAQUE, Concept("right_lung", ConceptKind.ANATOMY, ""), seed["trachea"]),
        relations=(Relation(LOCATED_IN, "pleural_plaque", "right_lung", "curated", 0.25, 3),),
    )
    save_owl(extra, path)
    variant = apply(seed, f"add-concepts:{path}")
    assert variant["pleural_plaque"] == PLAQUE
    assert variant["right_lung"] == seed["right_lung"]  # the id-only declaration referred to it
    assert Relation(LOCATED_IN, "pleural_plaque", "right_lung", "curated", 0.25, 3) in variant.relations
    assert len(variant.concepts) == len(seed.concepts) + 1
    assert len(variant.relations) == len(seed.relations) + 1


def test_add_concepts_refuses_conflicting_ids_naming_them(seed, tmp_path):
    path = tmp_path / "conflict.owl"
    changed = [dataclasses.replace(seed["trachea"], definition="the windpipe"),
               dataclasses.replace(seed["cardiomegaly"], name="big heart"), seed["heart"], PLAQUE]
    save_owl(Ontology(concepts=tuple(changed)), path)
    with pytest.raises(OntologyError) as e:
        apply(seed, f"add-concepts:{path}")
    message = str(e.value)
    assert "trachea (definition)" in message and "cardiomegaly (name)" in message
    assert "heart " not in message and str(path) in message


def test_add_concepts_refuses_id_only_concepts_the_base_lacks(seed, tmp_path):
    path = tmp_path / "dangling.owl"
    save_owl(Ontology(concepts=(PLAQUE, Concept("left_pleura", ConceptKind.ANATOMY, ""))), path)
    with pytest.raises(OntologyError, match=r"left_pleura \(Anatomy\)"):
        apply(seed, f"add-concepts:{path}")


def test_add_concepts_file_suffixes(seed, tmp_path):
    bad = tmp_path / "plaque.csv"
    bad.write_text("id\n")
    with pytest.raises(OntologyError, match=r"plaque\.csv.*\.csv.*\.owl"):
        apply(seed, f"add-concepts:{bad}")
    json_path = tmp_path / "plaque.json"
    save_json(Ontology(concepts=(PLAQUE,)), json_path)
    assert apply(seed, f"add-concepts:{json_path}")["pleural_plaque"] == PLAQUE


# -- parsing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ("", "empty recipe spec"),
    ("drop-everything", "unknown recipe 'drop-everything'"),
    ("drop-edges:fraction=0.2", "needs seed="),
    ("drop-edges:fraction=1.5,seed=1", "bad value '1.5' for fraction"),
    ("drop-edges:fraction=abc,seed=1", "bad value 'abc' for fraction"),
    ("drop-edges:fraction=0.2,seed=x", "bad value 'x' for seed"),
    ("drop-edges:fraction=0.2,seed=1,colour=red", "unknown parameter 'colour'"),
    ("drop-edges:fraction=0.2,,seed=1", "stray ','"),
    ("drop-edges:0.2,seed=1", "parameter '0.2' needs the form key=value"),
    ("drop-edges:fraction=0.2,seed=1,seed=2", "'seed' given twice"),
    ("drop-edge-type:LOCATED", "bad value 'LOCATED' for type"),
    ("drop-edge-type:", "nothing after ':'"),
    ("drop-edges:fraction=0.2,seed=1,keep-tree=maybe", "bad value 'maybe' for keep-tree"),
    ("shuffle-located-in:seed=1,swaps-per-edge=0", "bad value '0' for swaps-per-edge"),
])
def test_parse_errors_name_the_bad_part(spec, fragment):
    with pytest.raises(ValueError) as e:
        parse_recipe(spec)
    assert fragment in str(e.value)


def test_canonical_specs_round_trip_and_drop_defaults():
    canonical = parse_recipe(" drop-edges: seed=7, keep_tree=true, fraction=0.2 ").spec()
    assert canonical == "drop-edges:fraction=0.2,seed=7"
    for spec in ["drop-edges:fraction=0.2,seed=7,type=LOCATED_IN,keep-tree=false", "drop-edge-type:SUGGESTS",
                 "shuffle-located-in:seed=3,swaps-per-edge=20", "data-driven-only:prefixes=padchest+data:",
                 "curated-only", "add-concepts:dir,with=odd/chars.owl"]:
        assert parse_recipe(spec).spec() == spec
        assert parse_recipe(parse_recipe(spec).spec()) == parse_recipe(spec)
    assert Recipe("drop-edges", {"fraction": 0.5, "seed": 1, "type": LOCATED_IN}).spec() == \
        "drop-edges:fraction=0.5,seed=1,type=LOCATED_IN"


def test_every_recipe_has_help():
    text = recipe_help()
    for name, fn in RECIPES.items():
        assert fn.__doc__ and name in text


# -- chains and comparison -----------------------------------------------------------------------
def test_recipes_chain_in_order_with_a_canonical_description(seed):
    steps = []
    variant, description = apply_recipes(
        seed, ["shuffle-located-in:seed=7", "drop-edge-type:suggests"], on_step=lambda r, a, b: steps.append(r.name)
    )
    assert description == "shuffle-located-in:seed=7 | drop-edge-type:SUGGESTS"
    assert steps == ["shuffle-located-in", "drop-edge-type"]
    assert variant == apply(apply(seed, "shuffle-located-in:seed=7"), "drop-edge-type:SUGGESTS")
    assert variant.relations_of_type(RelationType.SUGGESTS) == []
    assert apply_recipes(seed, split_description(description)) == (variant, description)
    # every spec is parsed before any is applied
    with pytest.raises(ValueError, match="unknown recipe 'typo'"):
        apply_recipes(seed, ["shuffle-located-in:seed=7", "typo"])


def test_invalid_results_are_refused_naming_the_recipe(seed, tmp_path):
    path = tmp_path / "nameless.owl"
    save_owl(Ontology(concepts=(Concept("blob", ConceptKind.FINDING, "", source="curated"),)), path)
    message = r"after add-concepts:.*nameless\.owl: \[missing-name\] concept 'blob' has no name"
    with pytest.raises(OntologyValidationError, match=message):
        apply(seed, f"add-concepts:{path}")


def test_compare_variants_counts(seed):
    same = compare_variants(seed, seed)
    assert same["located_in"]["jaccard"] == 1.0 and same["diff"]["counts"]["relations_removed"] == 0

    located = seed.relations_of_type(LOCATED_IN)
    changed = seed.with_changes(relations=[
        *[r for r in seed.relations if r != located[0]],
        Relation(LOCATED_IN, "cardiomegaly", "heart", "padchest"),
        Relation(LOCATED_IN, located[1].start, located[1].end, "padchest"),  # same pair, other source
        Relation(RelationType.SUGGESTS, "lung_opacity", "pneumonia", "padchest"),
    ])
    report = compare_variants(seed, changed)
    assert report["located_in"] == {"pairs_a": 31, "pairs_b": 31, "shared": 30, "jaccard": 30 / 32}
    assert report["relations_by_type"]["LOCATED_IN"] == {"a": 31, "b": 32, "delta": 1}
    assert report["relations_by_type"]["SUGGESTS"] == {"a": 5, "b": 6, "delta": 1}
    assert report["relations_by_type"]["PART_OF"] == {"a": 35, "b": 35, "delta": 0}
    assert report["diff"]["counts"]["relations_added"] == 3 and report["diff"]["counts"]["relations_removed"] == 1
    assert report["a"]["version"] == seed.content_hash() and report["b"]["relations"] == len(seed.relations) + 2

    dropped = compare_variants(seed, apply(seed, "drop-edge-type:LOCATED_IN"))
    assert dropped["located_in"]["jaccard"] == 0.0
    assert dropped["relations_by_type"]["LOCATED_IN"]["delta"] == -31

"""The in-memory ontology: structural problems, validation, content hash; and the seed's shape."""

from __future__ import annotations

import pytest

from anatomy_vlm.exceptions import OntologyValidationError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology

A, F, D = ConceptKind.ANATOMY, ConceptKind.FINDING, ConceptKind.DISEASE
PART_OF, IS_A, LOCATED_IN, SUGGESTS = (
    RelationType.PART_OF,
    RelationType.IS_A,
    RelationType.LOCATED_IN,
    RelationType.SUGGESTS,
)


def small() -> Ontology:
    """A valid little ontology: lung zone part of lung, effusion in the zone, suggesting failure."""
    return Ontology(
        concepts=(
            Concept("zone", A, "lung zone"),
            Concept("lung", A, "lung"),
            Concept("effusion", F, "pleural effusion"),
            Concept("opacity", F, "opacity"),
            Concept("failure", D, "heart failure"),
        ),
        relations=(
            Relation(PART_OF, "zone", "lung", "seed"),
            Relation(LOCATED_IN, "effusion", "zone", "seed", weight=0.25, count=4),
            Relation(SUGGESTS, "effusion", "failure", "seed"),
            Relation(IS_A, "effusion", "opacity", "seed"),
        ),
    )


def plant(*, concepts=(), relations=()) -> Ontology:
    base = small()
    return base.with_changes(concepts=base.concepts + tuple(concepts), relations=base.relations + tuple(relations))


def test_small_ontology_has_no_problems():
    assert small().problems() == []
    assert small().validate() == small()


PLANTED = {
    "duplicate id": (plant(concepts=[Concept("lung", A, "other lung")]), ["duplicate", "'lung'"]),
    "dangling start": (plant(relations=[Relation(PART_OF, "ghost", "lung", "seed")]), ["unknown", "'ghost'"]),
    "dangling end": (plant(relations=[Relation(LOCATED_IN, "effusion", "nowhere", "seed")]), ["unknown", "'nowhere'"]),
    "PART_OF cycle": (plant(relations=[Relation(PART_OF, "lung", "zone", "seed")]), ["PART_OF cycle", "zone", "lung"]),
    "LOCATED_IN to non-anatomy": (
        plant(relations=[Relation(LOCATED_IN, "effusion", "failure", "seed")]),
        ["'failure' is Disease", "LOCATED_IN"],
    ),
    "IS_A across kinds": (
        plant(relations=[Relation(IS_A, "effusion", "failure", "seed")]),
        ["'effusion'", "joins a Finding to a Disease"],
    ),
    "self loop": (plant(relations=[Relation(PART_OF, "lung", "lung", "seed")]), ["self-loop on 'lung'"]),
    "missing source": (plant(relations=[Relation(PART_OF, "zone", "lung", "")]), ["'zone'", "has no source"]),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_problems_catches_each_planted_problem(case):
    ontology, expected = PLANTED[case]
    problems = [str(p) for p in ontology.problems()]
    assert any(all(part in p for part in expected) for p in problems), problems
    with pytest.raises(OntologyValidationError) as info:
        ontology.validate()
    assert info.value.problems == problems
    assert any(all(part in p for part in expected) for p in info.value.problems)


def test_content_hash_ignores_order_and_name():
    o = small()
    shuffled = Ontology(concepts=o.concepts[::-1], relations=o.relations[::-1], name="another name")
    assert shuffled.content_hash() == o.content_hash()
    assert shuffled.concepts == o.concepts and shuffled.relations == o.relations


def test_content_hash_changes_when_a_weight_changes():
    o = small()
    reweighted = o.with_changes(
        relations=[
            Relation(r.type, r.start, r.end, r.source, 0.5, r.count) if r.type is LOCATED_IN else r
            for r in o.relations
        ]
    )
    assert reweighted.content_hash() != o.content_hash()


def test_seed_validates_with_29_regions_each_part_of_something():
    seed = seed_ontology()
    assert seed.problems() == []
    assert len(REGION_IDS) == 29 == len(set(REGION_IDS))
    parents = {r.start: r.end for r in seed.relations_of_type(PART_OF)}
    for region in REGION_IDS:
        assert seed[region].kind is A
        assert seed[region].name == region.replace("_", " ")
        assert region in parents, f"{region} has no PART_OF parent"
        node, hops = region, 0
        while node in parents and hops < 20:  # every region climbs to the root
            node, hops = parents[node], hops + 1
        assert node == "body"


def test_seed_sources_definitions_and_codes():
    seed = seed_ontology()
    assert {c.source for c in seed.concepts} == {"seed"}
    assert {r.source for r in seed.relations} == {"seed"}
    assert all(c.definition for c in seed.concepts)
    assert all(code.startswith("SNOMED:") for c in seed.concepts for code in c.codes)
    assert all(list(c.synonyms) == sorted(set(c.synonyms)) for c in seed.concepts)
    assert len(seed.of_kind(ConceptKind.FINDING)) >= 10
    assert {r.end for r in seed.relations_of_type(SUGGESTS)} >= {"pneumonia", "heart_failure"}
    assert Relation(IS_A, "consolidation", "lung_opacity", "seed") in seed.relations

"""OWL reading and writing: exact round trips, the committed seed file, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.owl import BASE_IRI, load_owl, save_owl
from anatomy_vlm.ontology.seed import SEED_OWL_PATH, load_seed, seed_ontology

K = ConceptKind
T = RelationType


def round_trip(ontology: Ontology, tmp_path: Path) -> Ontology:
    path = tmp_path / "out.owl"
    save_owl(ontology, path)
    return load_owl(path)


def hand_made() -> Ontology:
    """Every kind and relation type, two sources on one edge, metadata on IS_A, odd text."""
    return Ontology(
        concepts=(
            Concept("lung", K.ANATOMY, "lung", ("lungs", "pulmo"), "The organ of breathing.", ("SNOMED:39607008",), "seed"),
            Concept("right_lung", K.ANATOMY, "right lung", source="seed"),
            Concept("opacity", K.FINDING, "opacity", definition=""),
            Concept("consolidation", K.FINDING, "consolidation", ("Konsolidierung", "consolidación"), "", ("A:1", "B:2")),
            Concept("pneumonia", K.DISEASE, "pneumonia", definition='Infection; "quoted" <b>&amp;</b>'),
            Concept("severe", K.ATTRIBUTE, "severe"),
            Concept("ett", K.DEVICE, "endotracheal tube", source="padchest"),
        ),
        relations=(
            Relation(T.PART_OF, "right_lung", "lung", "seed"),
            Relation(T.IS_A, "consolidation", "opacity", "seed"),
            Relation(T.IS_A, "consolidation", "opacity", "radlex", weight=0.75, count=3),
            Relation(T.LOCATED_IN, "consolidation", "right_lung", "padchest", weight=0.3, count=12),
            Relation(T.LOCATED_IN, "consolidation", "right_lung", "mimic", weight=0.1234567890123456789),
            Relation(T.LOCATED_IN, "consolidation", "right_lung", "seed"),
            Relation(T.LOCATED_IN, "ett", "right_lung", "chexpert", weight=1, count=0),
            Relation(T.SUGGESTS, "consolidation", "pneumonia", "padchest", count=7),
            Relation(T.HAS_ATTRIBUTE, "consolidation", "severe", "seed", weight=-2.5e-300),
        ),
        name="hand made",
    )


def test_seed_round_trips_exactly(tmp_path):
    seed = seed_ontology()
    loaded = round_trip(seed, tmp_path)
    assert loaded == seed
    assert loaded.content_hash() == seed.content_hash()


def test_hand_made_round_trips_exactly(tmp_path):
    original = hand_made()
    loaded = round_trip(original, tmp_path)
    assert loaded == original
    assert loaded.name == "hand made"
    assert loaded.content_hash() == original.content_hash()
    assert [type(r.weight) for r in loaded.relations] == [type(r.weight) for r in original.relations]


def test_problems_are_written_and_read_back_not_validated(tmp_path):
    broken = Ontology(
        concepts=(
            Concept("a", K.ANATOMY, ""),
            Concept("b", K.ANATOMY, "b"),
            Concept("f", K.FINDING, "f"),
            Concept("d", K.DISEASE, "d"),
        ),
        relations=(
            Relation(T.PART_OF, "a", "b", "seed"),
            Relation(T.PART_OF, "b", "a", "seed"),  # PART_OF cycle
            Relation(T.PART_OF, "b", "b", "seed"),  # self-loop
            Relation(T.LOCATED_IN, "f", "d", ""),  # wrong kind, no source
            Relation(T.IS_A, "f", "d", "seed"),  # IS_A across kinds
        ),
    )
    loaded = round_trip(broken, tmp_path)
    assert loaded == broken
    assert loaded.problems() == broken.problems() != []


def test_synonyms_and_codes_are_read_back_sorted(tmp_path):
    messy = Ontology(concepts=(Concept("x", K.FINDING, "x", ("b", "a", "b"), codes=("Z:9", "A:1")),))
    loaded = round_trip(messy, tmp_path)
    assert loaded == messy  # Concept keeps synonyms and codes sorted, as OWL reads them back
    assert loaded["x"].synonyms == ("a", "b") and loaded["x"].codes == ("A:1", "Z:9")


def test_committed_seed_file_is_up_to_date():
    assert SEED_OWL_PATH.is_file()
    assert load_seed() == seed_ontology()


def test_saving_the_same_ontology_twice_gives_the_same_bytes(tmp_path):
    save_owl(hand_made(), tmp_path / "one.owl")
    save_owl(hand_made(), tmp_path / "two.owl")
    assert (tmp_path / "one.owl").read_bytes() == (tmp_path / "two.owl").read_bytes()


# -- errors --------------------------------------------------------------------------------------
HEADER = f"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"
         xmlns:owl="http://www.w3.org/2002/07/owl#"
         xmlns:kg="{BASE_IRI}"
         xml:base="{BASE_IRI.rstrip('#')}">
<owl:Ontology rdf:about="{BASE_IRI.rstrip('#')}"/>
"""
KINDS = """<owl:Class rdf:about="#Concept"/>
<owl:Class rdf:about="#Anatomy"><rdfs:subClassOf rdf:resource="#Concept"/></owl:Class>
<owl:Class rdf:about="#Finding"><rdfs:subClassOf rdf:resource="#Concept"/></owl:Class>
<owl:ObjectProperty rdf:about="#located_in"/>
"""


def write_rdf(tmp_path: Path, body: str, *, kinds: bool = True) -> Path:
    path = tmp_path / "hand.owl"
    path.write_text(HEADER + (KINDS if kinds else "") + body + "</rdf:RDF>\n", encoding="utf-8")
    return path


def test_truncated_xml_names_the_file(tmp_path):
    good = tmp_path / "good.owl"
    save_owl(hand_made(), good)
    bad = tmp_path / "truncated.owl"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(OntologyError, match="truncated.owl") as info:
        load_owl(bad)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("content", ["", "this is not XML\n"])
def test_empty_or_garbage_file_is_an_ontology_error(tmp_path, content):
    path = tmp_path / "junk.owl"
    path.write_text(content)
    with pytest.raises(OntologyError, match="junk.owl"):
        load_owl(path)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "absent.owl"
    with pytest.raises(OntologyError, match="absent.owl"):
        load_owl(missing)


def test_rdf_without_our_top_class_is_refused(tmp_path):
    path = write_rdf(tmp_path, '<owl:Class rdf:about="#lung"/>\n', kinds=False)
    with pytest.raises(OntologyError, match="not an anatomy-vlm ontology"):
        load_owl(path)


def test_class_without_kind_names_the_class(tmp_path):
    path = write_rdf(tmp_path, '<owl:Class rdf:about="#orphan"><rdfs:subClassOf rdf:resource="#Concept"/></owl:Class>\n')
    with pytest.raises(OntologyError, match="'orphan'.*kind") as info:
        load_owl(path)
    assert "hand.owl" in str(info.value)


def test_invalid_local_name_is_refused(tmp_path):
    path = write_rdf(tmp_path, '<owl:Class rdf:about="#9lives"><rdfs:subClassOf rdf:resource="#Finding"/></owl:Class>\n')
    with pytest.raises(OntologyError, match="'9lives' is not a valid concept id"):
        load_owl(path)


def test_bad_assertion_annotation_is_refused(tmp_path):
    body = """<owl:Class rdf:about="#f"><rdfs:subClassOf rdf:resource="#Finding"/><rdfs:subClassOf rdf:resource="#g"/></owl:Class>
<owl:Class rdf:about="#g"><rdfs:subClassOf rdf:resource="#Finding"/></owl:Class>
<owl:Axiom><owl:annotatedSource rdf:resource="#f"/>
  <owl:annotatedProperty rdf:resource="http://www.w3.org/2000/01/rdf-schema#subClassOf"/>
  <owl:annotatedTarget rdf:resource="#g"/><kg:assertion>not json</kg:assertion></owl:Axiom>
"""
    with pytest.raises(OntologyError, match="'f' -\\[IS_A\\]-> 'g'.*not JSON"):
        load_owl(write_rdf(tmp_path, body))


def test_hand_edited_file_kind_inherited_and_unannotated_edge(tmp_path):
    """A class may take its kind through IS_A; an edge without assertion reads with no source."""
    body = """<owl:Class rdf:about="#lung"><rdfs:subClassOf rdf:resource="#Anatomy"/><rdfs:label xml:lang="en">lung</rdfs:label></owl:Class>
<owl:Class rdf:about="#opacity"><rdfs:subClassOf rdf:resource="#Finding"/></owl:Class>
<owl:Class rdf:about="#mass"><rdfs:subClassOf rdf:resource="#opacity"/>
  <rdfs:subClassOf><owl:Restriction><owl:onProperty rdf:resource="#located_in"/>
    <owl:someValuesFrom rdf:resource="#lung"/></owl:Restriction></rdfs:subClassOf></owl:Class>
"""
    loaded = load_owl(write_rdf(tmp_path, body))
    assert loaded["mass"].kind is K.FINDING
    assert loaded["lung"].name == "lung"
    assert set(loaded.relations) == {
        Relation(T.IS_A, "mass", "opacity", ""),
        Relation(T.LOCATED_IN, "mass", "lung", ""),
    }
    assert any(p.rule == "missing-source" for p in loaded.problems())


@pytest.mark.parametrize(
    "ontology, message",
    [
        (Ontology(concepts=(Concept("has space", K.ANATOMY, "x"),)), "'has space' is not a valid OWL local name"),
        (Ontology(concepts=(Concept("Anatomy", K.ANATOMY, "x"),)), "'Anatomy' is reserved"),
        (
            Ontology(concepts=(Concept("a", K.ANATOMY, "a"),), relations=(Relation(T.PART_OF, "a", "ghost", "seed"),)),
            "unknown concept 'ghost'",
        ),
        (
            Ontology(
                concepts=(Concept("a", K.FINDING, "a"), Concept("b", K.FINDING, "b")),
                relations=(Relation(T.IS_A, "a", "b", "seed"), Relation(T.IS_A, "b", "a", "seed")),
            ),
            "subclass cycle",
        ),
        (Ontology(concepts=(Concept("a", K.ANATOMY, "a"), Concept("a", K.ANATOMY, "b"))), "duplicate concept id 'a'"),
    ],
)
def test_save_refuses_what_owl_cannot_hold(tmp_path, ontology, message):
    path = tmp_path / "refused.owl"
    with pytest.raises(OntologyError, match=message):
        save_owl(ontology, path)
    assert not path.exists()

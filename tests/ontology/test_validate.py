"""Ontology validation: each rule planted in a copy of the seed is reported with the concept at fault.

The reasoner tests run HermiT (a JVM start, about a second each), so they are not marked slow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import owlready2
import pytest

from anatomy_vlm.exceptions import OntologyError, OntologyValidationError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.owl import save_owl
from anatomy_vlm.ontology.seed import REGION_IDS, SEED_OWL_PATH, seed_ontology
from anatomy_vlm.ontology.validate import (
    RULES,
    Problem,
    ValidationReport,
    ValidationRules,
    reasoner_problems,
    validate_command,
    validate_ontology,
)

K = ConceptKind
T = RelationType


@pytest.fixture(scope="module")
def seed() -> Ontology:
    return seed_ontology()


def plant(base: Ontology, *, concepts=(), relations=(), drop_relations=(), drop_concepts=()) -> Ontology:
    """A copy of ``base`` with concepts/relations added, and relations (as (type, start, end)) or concepts dropped."""
    kept_relations = [
        r
        for r in base.relations
        if (r.type, r.start, r.end) not in drop_relations and not {r.start, r.end} & set(drop_concepts)
    ]
    kept_concepts = [c for c in base.concepts if c.id not in drop_concepts]
    return base.with_changes(concepts=[*kept_concepts, *concepts], relations=[*kept_relations, *relations])


def only(report: ValidationReport, rule: str) -> list[Problem]:
    return [p for p in report.problems if p.rule == rule]


# -- the seed ------------------------------------------------------------------------------------
def test_seed_validates_clean_with_the_reasoner(seed):
    report = validate_ontology(seed, reasoner=True)
    assert report.ok and report.errors == () and report.warnings == (), report.format()
    assert report.reasoner_seconds is not None and 0 < report.reasoner_seconds < 10
    assert report.raise_for_errors() is report
    assert report.format().splitlines() == [
        f"{seed.name}: {len(seed.concepts)} concepts, {len(seed.relations)} relations: 0 error(s), 0 warning(s); "
        f"HermiT ran in {report.reasoner_seconds:.1f} s"
    ]


# -- structural rules (Ontology.problems) ----------------------------------------------------------
def test_part_of_cycle_names_the_concepts_in_it(seed):
    ontology = plant(seed, relations=[Relation(T.PART_OF, "thorax", "right_lung", "test")])
    report = validate_ontology(ontology, reasoner=False)
    [problem] = only(report, "part-of-cycle")
    assert problem in report.errors
    assert problem.concept_id in {"thorax", "lungs", "right_lung"}
    assert all(cid in problem.message for cid in ("thorax", "lungs", "right_lung"))


def test_is_a_cycle_is_reported_and_the_reasoner_says_why_it_was_skipped(seed):
    ontology = plant(seed, relations=[Relation(T.IS_A, "lung_opacity", "atelectasis", "test")])
    report = validate_ontology(ontology, reasoner=True)
    [problem] = only(report, "is-a-cycle")
    assert problem.concept_id in {"lung_opacity", "atelectasis"}
    assert "lung_opacity" in problem.message and "atelectasis" in problem.message
    # OWL cannot hold a subclass cycle, so HermiT cannot run; a warning says so.
    [skipped] = only(report, "reasoner-skipped")
    assert skipped in report.warnings and "IS_A" in skipped.message and report.reasoner_seconds is not None


def test_finding_located_in_a_disease_is_a_structural_error(seed):
    ontology = plant(seed, relations=[Relation(T.LOCATED_IN, "pleural_effusion", "pneumonia", "test")])
    report = validate_ontology(ontology, reasoner=False)
    [problem] = report.errors
    assert problem.rule == "relation-range" and problem.concept_id == "pleural_effusion"
    assert "'pneumonia' is Disease" in problem.message and "LOCATED_IN" in problem.message


def test_finding_located_in_a_disease_is_found_by_the_reasoner(seed):
    ontology = plant(seed, relations=[Relation(T.LOCATED_IN, "pleural_effusion", "pneumonia", "test")])
    # The reasoner on its own, without the structural rules: the disjoint kinds and located_in's
    # range make the finding's class unsatisfiable, and nothing else.
    assert [(p.rule, p.concept_id) for p in reasoner_problems(ontology)] == [
        ("reasoner-unsatisfiable", "pleural_effusion")
    ]
    report = validate_ontology(ontology, reasoner=True)
    assert {(p.rule, p.concept_id) for p in report.errors} == {
        ("relation-range", "pleural_effusion"),
        ("reasoner-unsatisfiable", "pleural_effusion"),
    }


def test_reasoner_finds_every_kind_clash_and_points_consequences_at_their_cause(seed):
    ontology = plant(
        seed,
        concepts=[
            Concept("loculated_effusion", K.FINDING, "loculated effusion", source="test"),
            Concept("severe", K.ATTRIBUTE, "severe", source="test"),
        ],
        relations=[
            Relation(T.LOCATED_IN, "pleural_effusion", "pneumonia", "test"),  # range: Anatomy
            Relation(T.PART_OF, "cardiomegaly", "heart", "test"),  # domain: Anatomy
            Relation(T.SUGGESTS, "pneumonia", "lung_cancer", "test"),  # domain: Finding
            Relation(T.IS_A, "fracture", "pneumonia", "test"),  # a Finding that is a Disease
            Relation(T.HAS_ATTRIBUTE, "lung_nodule", "severe", "test"),  # allowed: no clash
            Relation(T.IS_A, "loculated_effusion", "pleural_effusion", "test"),  # a consequence
        ],
    )
    found = {p.concept_id: p for p in reasoner_problems(ontology)}
    # rib/clavicle fracture IS_A fracture: they fall with it.
    assert set(found) == {
        "pleural_effusion", "cardiomegaly", "pneumonia", "fracture", "rib_fracture", "clavicle_fracture",
        "loculated_effusion", "consolidation",  # consolidation SUGGESTS the now unsatisfiable pneumonia
    }  # fmt: skip
    assert all(p.rule == "reasoner-unsatisfiable" for p in found.values())
    assert "depends on the unsatisfiable 'pleural_effusion'" in found["loculated_effusion"].message
    assert "depends on the unsatisfiable 'fracture'" in found["rib_fracture"].message
    assert "its kind contradicts" in found["cardiomegaly"].message


def test_dangling_reference_names_the_concept_holding_it_and_the_missing_one(seed):
    ontology = plant(seed, relations=[Relation(T.LOCATED_IN, "pneumothorax", "left_pleura", "test")])
    report = validate_ontology(ontology, reasoner=True)
    [problem] = report.errors
    assert problem.rule == "dangling-reference" and problem.concept_id == "pneumothorax"
    assert "'left_pleura'" in problem.message
    assert [p.rule for p in report.warnings] == ["reasoner-skipped"]


def test_duplicate_ids_are_reported(seed):
    ontology = plant(seed, concepts=[Concept("trachea", K.ANATOMY, "tracheal tube", source="test")])
    report = validate_ontology(ontology, reasoner=False)
    [problem] = only(report, "duplicate-id")
    assert problem.concept_id == "trachea" and problem in report.errors


@pytest.mark.parametrize(
    ("change", "rule", "concept_id"),
    [
        ({"concepts": [Concept("bad id", K.FINDING, "bad", source="t")]}, "invalid-id", "bad id"),
        ({"concepts": [Concept("nameless", K.FINDING, " ", source="t")]}, "missing-name", "nameless"),
        ({"relations": [Relation(T.SUGGESTS, "cardiomegaly", "heart_failure", "seed")]}, "duplicate-relation",
         "cardiomegaly"),
        ({"relations": [Relation(T.PART_OF, "heart", "heart", "t")]}, "self-loop", "heart"),
        ({"relations": [Relation(T.SUGGESTS, "pneumonia", "heart_failure", "t")]}, "relation-domain", "pneumonia"),
        ({"relations": [Relation(T.IS_A, "pneumonia", "lung_opacity", "t")]}, "is-a-kind-mismatch", "pneumonia"),
        ({"relations": [Relation(T.LOCATED_IN, "atelectasis", "lungs", "")]}, "missing-source", "atelectasis"),
        ({"relations": [Relation(T.LOCATED_IN, "atelectasis", "lungs", "t", weight=float("nan"))]}, "non-finite-weight",
         "atelectasis"),
        ({"relations": [Relation(T.LOCATED_IN, "ghost", "lungs", "t")]}, "dangling-reference", "ghost"),
    ],
)  # fmt: skip
def test_every_problem_of_the_model_maps_to_a_rule_and_a_concept(seed, change, rule, concept_id):
    ontology = plant(seed, **change)
    problems = ontology.problems()
    assert problems, "the planted change should break a model rule"
    assert all(p.rule in RULES for p in problems), problems
    assert (rule, concept_id) in {(p.rule, p.concept_id) for p in problems}
    assert (rule, concept_id) in {(p.rule, p.concept_id) for p in validate_ontology(ontology, reasoner=False).errors}


# -- curation rules --------------------------------------------------------------------------------
def test_region_without_part_of_parent(seed):
    ontology = plant(seed, drop_relations=[(T.PART_OF, "svc", "upper_mediastinum")])
    report = validate_ontology(ontology, reasoner=False)
    [problem] = report.errors
    assert (problem.rule, problem.concept_id) == ("anatomy-without-parent", "svc") and "'svc'" in problem.message
    # A configured root may stand alone; "body" is the default root, so the seed passes.
    assert validate_ontology(ontology, reasoner=False, rules=ValidationRules(anatomy_roots=("body", "svc"))).ok


def test_new_anatomy_with_a_dangling_parent_has_no_parent(seed):
    ontology = plant(
        seed,
        concepts=[Concept("left_pleura", K.ANATOMY, "left pleura", source="t")],
        relations=[Relation(T.PART_OF, "left_pleura", "pleurae", "t")],
    )
    report = validate_ontology(ontology, reasoner=False)
    assert {(p.rule, p.concept_id) for p in report.errors} == {
        ("dangling-reference", "left_pleura"),
        ("anatomy-without-parent", "left_pleura"),
    }


def test_missing_chest_imagenome_region(seed):
    assert "carina" in REGION_IDS and len(REGION_IDS) == 29
    ontology = plant(seed, drop_concepts=["carina"])
    report = validate_ontology(ontology, reasoner=False)
    [problem] = report.errors
    assert (problem.rule, problem.concept_id) == ("region-missing", "carina") and "'carina'" in problem.message
    # The list is configurable.
    assert validate_ontology(ontology, reasoner=False, rules=ValidationRules(required_regions=("trachea",))).ok


def test_region_of_the_wrong_kind_counts_as_missing(seed):
    wrong = dataclasses.replace(seed["carina"], kind=K.FINDING)
    ontology = plant(seed, drop_concepts=["carina"], concepts=[wrong])
    problems = only(validate_ontology(ontology, reasoner=False), "region-missing")
    assert [(p.concept_id, "is a Finding" in p.message) for p in problems] == [("carina", True)]


def test_duplicate_names_within_a_kind_case_insensitive(seed):
    ontology = plant(seed, concepts=[Concept("opacity_of_lung", K.FINDING, "Lung  OPACITY", source="t")])
    report = validate_ontology(ontology, reasoner=False)
    [problem] = report.errors
    assert problem.rule == "duplicate-name" and problem.concept_id == "lung_opacity"
    assert "'lung_opacity'" in problem.message and "'opacity_of_lung'" in problem.message
    # The same name in another kind is no duplicate.
    other_kind = plant(seed, concepts=[Concept("lung_opacity_attr", K.ATTRIBUTE, "lung opacity", source="t")])
    assert validate_ontology(other_kind, reasoner=False).problems == ()


def test_synonym_colliding_with_another_concepts_name_or_synonym_is_a_warning(seed):
    ontology = plant(
        seed,
        concepts=[
            Concept("pleural_fluid_collection", K.FINDING, "pleural fluid collection", ("Effusion",), source="t"),
            Concept("nodular_opacity", K.FINDING, "nodular opacity", ("consolidation",), source="t"),
        ],
    )
    report = validate_ontology(ontology, reasoner=False)
    assert report.ok and report.errors == ()
    messages = {p.concept_id: p.message for p in report.warnings if p.rule == "name-collision"}
    assert set(messages) == {"consolidation", "pleural_effusion"}
    assert "'pleural_fluid_collection' (synonym)" in messages["pleural_effusion"]
    assert "'nodular_opacity' (synonym)" in messages["consolidation"]
    assert "'consolidation' (name)" in messages["consolidation"]
    # A policy can make it an error.
    strict_rules = ValidationRules(warn_only=frozenset())
    strict_report = validate_ontology(ontology, reasoner=False, rules=strict_rules)
    assert {p.rule for p in strict_report.errors} == {"name-collision"}


def test_missing_required_code_under_a_policy(seed):
    policy = ValidationRules(required_codes={K.DISEASE: ("SNOMED",)})
    # No policy by default: the seed's uncoded pneumonia passes.
    assert validate_ontology(seed, reasoner=False).ok
    report = validate_ontology(seed, reasoner=False, rules=policy)
    assert [(p.rule, p.concept_id) for p in report.errors] == [("missing-code", "pneumonia")]
    assert "SNOMED" in report.errors[0].message and "'pneumonia'" in report.errors[0].message
    # Plant: heart_failure loses its SNOMED code and keeps only a UMLS one.
    uncoded = dataclasses.replace(seed["heart_failure"], codes=("UMLS:C0018801",))
    planted = plant(seed, drop_concepts=["heart_failure"], concepts=[uncoded]).with_changes(relations=seed.relations)
    report = validate_ontology(planted, reasoner=False, rules=policy)
    assert {p.concept_id for p in report.errors} == {"pneumonia", "heart_failure"}
    # The anatomy policy the CLI may pass, as warnings: every uncoded region is named, coded ones are not.
    anatomy = ValidationRules(required_codes={"Anatomy": "SNOMED"}, warn_only=frozenset({"missing-code"}))
    report = validate_ontology(seed, reasoner=False, rules=anatomy)
    named = {p.concept_id for p in report.warnings}
    assert report.ok and "right_lung" in named and "trachea" not in named
    assert named == {c.id for c in seed.of_kind(K.ANATOMY) if not any(code.startswith("SNOMED:") for code in c.codes)}


def test_rules_are_checked_up_front():
    with pytest.raises(ValueError, match="no-such-rule"):
        ValidationRules(warn_only=frozenset({"no-such-rule"}))
    with pytest.raises(ValueError, match="SNOMED:"):
        ValidationRules(required_codes={K.ANATOMY: ("SNOMED:",)})
    with pytest.raises(ValueError):
        ValidationRules(required_codes={"Organ": ("SNOMED",)})
    assert set(ValidationRules().warn_only) <= set(RULES)


# -- the report ----------------------------------------------------------------------------------
def test_raise_for_errors_lists_every_error_with_its_rule(seed):
    ontology = plant(
        seed,
        relations=[Relation(T.PART_OF, "thorax", "right_lung", "test")],
        drop_relations=[(T.PART_OF, "svc", "upper_mediastinum")],
    )
    report = validate_ontology(ontology, reasoner=False)
    assert not report.ok
    with pytest.raises(OntologyValidationError) as caught:
        report.raise_for_errors()
    assert len(caught.value.problems) == 2
    assert any(m.startswith("[part-of-cycle]") for m in caught.value.problems)
    assert any(m.startswith("[anatomy-without-parent]") and "'svc'" in m for m in caught.value.problems)
    lines = report.format().splitlines()
    assert lines[0].startswith("error: [") and "2 error(s), 0 warning(s); reasoner not run" in lines[-1]
    assert [p.rule for p in report.for_concept("svc")] == ["anatomy-without-parent"]


# -- Java ------------------------------------------------------------------------------------------
def test_missing_java_is_a_clear_ontology_error(seed, monkeypatch, tmp_path):
    monkeypatch.setattr(owlready2, "JAVA_EXE", str(tmp_path / "no-java"))
    with pytest.raises(OntologyError, match="Java executable .*no-java.* not found"):
        validate_ontology(seed, reasoner=True)
    code, text = validate_command(SEED_OWL_PATH, reasoner=True, strict=False)
    assert code == 2 and "Java" in text
    # Without the reasoner Java is not needed.
    assert validate_ontology(seed, reasoner=False).ok


# -- the CLI function ------------------------------------------------------------------------------
def test_validate_command_on_the_committed_seed():
    code, text = validate_command(SEED_OWL_PATH, reasoner=True, strict=True)
    assert code == 0, text
    assert "0 error(s), 0 warning(s); HermiT ran in" in text


def test_validate_command_exit_codes(seed, tmp_path):
    broken = tmp_path / "cycle.owl"
    save_owl(plant(seed, relations=[Relation(T.PART_OF, "thorax", "right_lung", "test")]), broken)
    code, text = validate_command(broken, reasoner=False, strict=False)
    assert code == 1 and "error: [part-of-cycle]" in text

    warned = tmp_path / "synonym.owl"
    extra = Concept("pleural_fluid_collection", K.FINDING, "pleural fluid collection", ("effusion",), source="t")
    save_owl(plant(seed, concepts=[extra]), warned)
    code, text = validate_command(warned, reasoner=False, strict=False)
    assert code == 0 and "warning: [name-collision]" in text
    code, text = validate_command(warned, reasoner=False, strict=True)
    assert code == 1 and "--strict" in text

    policy = ValidationRules(required_codes={K.DISEASE: ("SNOMED",)})
    code, text = validate_command(SEED_OWL_PATH, reasoner=False, strict=False, rules=policy)
    assert code == 1 and "'pneumonia' has no SNOMED code" in text


def test_validate_command_on_unreadable_files(tmp_path):
    code, text = validate_command(tmp_path / "absent.owl", reasoner=False, strict=False)
    assert code == 2 and "absent.owl" in text
    bad = tmp_path / "bad.owl"
    bad.write_text("<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>\n  <unclosed>\n")
    code, text = validate_command(bad, reasoner=False, strict=False)
    assert code == 2 and "bad.owl" in text and "well-formed" in text

"""Curator: validated, audited edits of the curated CSV sources, written whole or not at all.

Every test works on a real sources folder (concepts.csv + relations.csv) seeded with the seed
ontology in a temporary directory. The tests taking ``store`` run against the real graph
backends of ``tests/conftest.py``; everything else needs no database. The R5 cases of issue 14
(oversized fields, control characters, list separators, weights out of range) are refused with a
``FieldError`` naming the field, and leave the sources and the audit log byte-identical.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import neo4j
import pytest

from anatomy_vlm.exceptions import GraphUnavailableError, OntologyError, OntologyValidationError
from anatomy_vlm.kg import GraphStore
from anatomy_vlm.ontology import Concept, ConceptKind, Ontology, Relation, RelationType, limits
from anatomy_vlm.ontology.curation import AuditRecord, CurationError, Curator, FieldError
from anatomy_vlm.ontology.diff import diff_ontologies
from anatomy_vlm.ontology.seed import seed_ontology
from anatomy_vlm.ontology.sources_io import UnwritableSourcesError, read_sources, write_sources
from tests.conftest import snapshot

FILES = ("concepts.csv", "relations.csv", "audit.jsonl")
AUDIT_KEYS = {"when", "who", "why", "action", "target", "before", "after", "version_before", "version_after"}


# -- fixtures and helpers ----------------------------------------------------------------------
@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    write_sources(seed_ontology(), folder)
    return folder


@pytest.fixture
def curator(sources: Path) -> Curator:
    return Curator(sources, user="alice")


def state(folder: Path) -> dict[str, bytes | None]:
    """The bytes of the sources and the audit log (None where a file does not exist)."""
    return {name: (folder / name).read_bytes() if (folder / name).exists() else None for name in FILES}


def audit_lines(folder: Path) -> list[dict]:
    path = folder / "audit.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


PLAQUE = Concept(
    "pleural_plaque", ConceptKind.FINDING, "pleural plaque", synonyms=("pleural thickening plaque",),
    definition="A focal area of fibrous thickening of the parietal pleura.", source="curated",
)


def _add_plaque(c: Curator) -> bool:
    return c.add_concept(PLAQUE, why="seen in 12 reports")


# -- each action writes the sources and one audit record -----------------------------------------
def test_add_concept_writes_sources_and_one_audit_record(curator: Curator, sources: Path):
    before_hash = read_sources(sources).content_hash()
    started = datetime.now(timezone.utc)

    assert _add_plaque(curator) is True

    ontology = read_sources(sources)
    assert ontology["pleural_plaque"] == PLAQUE
    lines = audit_lines(sources)
    assert len(lines) == 1
    line = lines[0]
    assert AUDIT_KEYS <= set(line)
    assert (line["who"], line["why"], line["action"], line["target"]) == ("alice", "seen in 12 reports", "add_concept", "pleural_plaque")
    assert line["before"] is None
    assert line["after"]["name"] == "pleural plaque" and line["after"]["kind"] == "Finding"
    assert line["after"]["synonyms"] == ["pleural thickening plaque"]
    assert line["version_before"] == before_hash != line["version_after"] == ontology.content_hash()
    when = datetime.fromisoformat(line["when"])
    assert when.utcoffset() == timedelta(0) and started - timedelta(seconds=1) <= when <= datetime.now(timezone.utc)


def _nothing(c: Curator) -> None:
    return None


# (name, preparation, change, how the ontology must look after it, action, target, before, after)
CASES = [
    ("add_concept", _nothing, _add_plaque, lambda o: "pleural_plaque" in o,
     "add_concept", "pleural_plaque", None, {"kind": "Finding", **PLAQUE.properties()}),
    ("add_edge", _add_plaque,
     lambda c: c.add_edge(Relation(RelationType.LOCATED_IN, "pleural_plaque", "right_lung", "curated"), why="PadChest"),
     lambda o: any(r.key == ("LOCATED_IN", "pleural_plaque", "right_lung", "curated") for r in o.relations),
     "add_edge", ["LOCATED_IN", "pleural_plaque", "right_lung", "curated"], None,
     {"type": "LOCATED_IN", "start": "pleural_plaque", "end": "right_lung", "source": "curated", "weight": None, "count": None}),
    ("set_name", _nothing, lambda c: c.set("trachea", "name", "trachea proper", why="RadLex preferred name"),
     lambda o: o["trachea"].name == "trachea proper",
     "set", "trachea", {"name": "trachea"}, {"name": "trachea proper"}),
    ("set_synonyms_from_string", _nothing,
     lambda c: c.set("pneumonia", "synonyms", "lung infection| pneumonitis", why="add synonym"),
     lambda o: o["pneumonia"].synonyms == ("lung infection", "pneumonitis"),
     "set", "pneumonia", {"synonyms": ["lung infection"]}, {"synonyms": ["lung infection", "pneumonitis"]}),
    ("set_codes_from_list", _nothing, lambda c: c.set("pneumonia", "codes", ["SNOMED:233604007"], why="code from SNOMED"),
     lambda o: o["pneumonia"].codes == ("SNOMED:233604007",),
     "set", "pneumonia", {"codes": []}, {"codes": ["SNOMED:233604007"]}),
    ("set_definition", _nothing, lambda c: c.set("svc", "definition", "The superior vena cava.", why="shorter"),
     lambda o: o["svc"].definition == "The superior vena cava.",
     "set", "svc", {"definition": seed_ontology()["svc"].definition}, {"definition": "The superior vena cava."}),
    ("set_source", _nothing, lambda c: c.set("svc", "source", "radlex", why="re-sourced"),
     lambda o: o["svc"].source == "radlex", "set", "svc", {"source": "seed"}, {"source": "radlex"}),
    ("set_kind", _nothing, lambda c: c.set("hilar_enlargement", "kind", "disease", why="reclassified"),
     lambda o: o["hilar_enlargement"].kind is ConceptKind.DISEASE,
     "set", "hilar_enlargement", {"kind": "Finding"}, {"kind": "Disease"}),
    ("set_edge", _nothing,
     lambda c: c.set_edge(("located_in", "pleural_effusion", "right_costophrenic_angle", "seed"),
                          weight="0.25", count=40, why="PadChest frequency"),
     lambda o: [(r.weight, r.count) for r in o.relations
                if r.key == ("LOCATED_IN", "pleural_effusion", "right_costophrenic_angle", "seed")] == [(0.25, 40)],
     "set_edge", ["LOCATED_IN", "pleural_effusion", "right_costophrenic_angle", "seed"],
     {"weight": None, "count": None}, {"weight": 0.25, "count": 40}),
    ("remove_edge", _nothing, lambda c: c.remove_edge(("SUGGESTS", "cardiomegaly", "heart_failure", "seed"), why="weak"),
     lambda o: not any(r.key == ("SUGGESTS", "cardiomegaly", "heart_failure", "seed") for r in o.relations),
     "remove_edge", ["SUGGESTS", "cardiomegaly", "heart_failure", "seed"],
     {"type": "SUGGESTS", "start": "cardiomegaly", "end": "heart_failure", "source": "seed", "weight": None, "count": None},
     None),
    ("remove_unreferenced", _add_plaque, lambda c: c.remove("pleural_plaque", why="duplicate of pleural thickening"),
     lambda o: "pleural_plaque" not in o,
     "remove", "pleural_plaque", {"kind": "Finding", **PLAQUE.properties(), "relations": []}, None),
]


@pytest.mark.parametrize(
    "prepare,change,check,action,target,before,after", [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_each_action_writes_sources_and_audits_it(curator, sources, prepare, change, check, action, target, before, after):
    prepare(curator)
    lines_before = audit_lines(sources)
    original = read_sources(sources)
    assert not check(original)

    assert change(curator) is True

    ontology = read_sources(sources)
    assert check(ontology)
    lines = audit_lines(sources)
    assert lines[:-1] == lines_before  # exactly one line appended, the earlier ones untouched
    record = lines[-1]
    assert AUDIT_KEYS <= set(record)
    assert (record["action"], record["target"], record["before"], record["after"]) == (action, target, before, after)
    assert (record["who"], record["version_before"], record["version_after"]) == (
        "alice", original.content_hash(), ontology.content_hash())
    assert record["why"] and record["when"]


def test_remove_with_cascade_removes_and_records_the_relations(curator, sources):
    seed = read_sources(sources)
    referencing = [r for r in seed.relations if "rib_fracture" in (r.start, r.end)]
    assert referencing

    assert curator.remove("rib_fracture", cascade=True, why="folded into fracture") is True

    ontology = read_sources(sources)
    assert "rib_fracture" not in ontology
    assert not any("rib_fracture" in (r.start, r.end) for r in ontology.relations)
    assert len(ontology.relations) == len(seed.relations) - len(referencing)
    (record,) = audit_lines(sources)
    assert record["before"]["id"] == "rib_fracture"
    assert sorted((r["type"], r["start"], r["end"], r["source"]) for r in record["before"]["relations"]) == sorted(r.key for r in referencing)
    # Both ends of each removed relation were touched, so their histories show the removal.
    assert all(curator.history(end) for r in referencing for end in (r.start, r.end))


# -- refused changes write nothing ----------------------------------------------------------------
REFUSED = [
    ("located_in_a_disease",
     lambda c: c.add_edge(Relation(RelationType.LOCATED_IN, "pleural_effusion", "pneumonia", "curated"), why="x"),
     OntologyValidationError, ["'pneumonia'", "LOCATED_IN"]),
    ("part_of_cycle",
     lambda c: c.add_edge(Relation(RelationType.PART_OF, "right_lung", "right_upper_lung_zone", "curated"), why="x"),
     OntologyValidationError, ["PART_OF cycle", "right_lung", "right_upper_lung_zone"]),
    ("kind_change_breaks_relations", lambda c: c.set("right_lung", "kind", "Disease", why="x"),
     OntologyValidationError, ["'right_lung'", "Disease"]),
    ("non_finite_weight",
     lambda c: c.set_edge(("SUGGESTS", "cardiomegaly", "heart_failure", "seed"), weight="nan", why="x"),
     FieldError, ["'cardiomegaly'", "weight: nan is not a finite number"]),
    ("remove_referenced_without_cascade", lambda c: c.remove("right_lung", why="x"),
     CurationError, ["'right_lung'", "-[PART_OF]->", "cascade=True"]),
    ("duplicate_id", lambda c: c.add_concept(Concept("trachea", ConceptKind.ANATOMY, "windpipe"), why="x"),
     CurationError, ["'trachea' already exists"]),
    ("duplicate_relation",
     lambda c: c.add_edge(Relation(RelationType.SUGGESTS, "cardiomegaly", "heart_failure", "seed"), why="x"),
     CurationError, ["'cardiomegaly' -[SUGGESTS]-> 'heart_failure'", "already exists"]),
    ("edge_to_unknown_concept",
     lambda c: c.add_edge(Relation(RelationType.LOCATED_IN, "pneumothorax", "left_pleura", "curated"), why="x"),
     CurationError, ["'left_pleura'"]),
    ("set_unknown_concept", lambda c: c.set("left_pleura", "name", "left pleura", why="x"),
     CurationError, ["'left_pleura'"]),
    ("remove_unknown_edge", lambda c: c.remove_edge(("SUGGESTS", "pneumothorax", "pneumonia", "seed"), why="x"),
     CurationError, ["'pneumothorax' -[SUGGESTS]-> 'pneumonia'"]),
    ("missing_why", lambda c: c.set("trachea", "name", "windpipe", why=""), ValueError, ["why", "trachea"]),
    ("blank_why", lambda c: c.remove("fracture", cascade=True, why="   "), ValueError, ["why", "fracture"]),
    ("unknown_field", lambda c: c.set("trachea", "id", "windpipe", why="x"), ValueError, ["'id'", "'trachea'"]),
    ("unknown_kind", lambda c: c.set("trachea", "kind", "Organ", why="x"), ValueError, ["'Organ'", "'trachea'"]),
    ("separator_in_a_synonym", lambda c: c.set("trachea", "synonyms", ["wind|pipe"], why="x"),
     ValueError, ["'wind|pipe'", "'trachea'"]),
    ("bad_count", lambda c: c.set_edge(("SUGGESTS", "cardiomegaly", "heart_failure", "seed"), count="-3", why="x"),
     ValueError, ["count", "'cardiomegaly'"]),
]


@pytest.mark.parametrize("change,error,named", [pytest.param(*case[1:], id=case[0]) for case in REFUSED])
def test_refused_change_writes_nothing(curator, sources, change, error, named):
    _add_plaque(curator)  # an audit log with content, to show it is left byte-identical
    before = state(sources)
    assert before["audit.jsonl"]

    with pytest.raises(error) as raised:
        change(curator)

    for text in named:
        assert text in str(raised.value)
    assert state(sources) == before
    assert len(curator.history()) == 1


def test_refusal_before_any_change_creates_no_audit_log(curator, sources):
    with pytest.raises(CurationError, match="'right_lung'"):
        curator.remove("right_lung", why="x")
    assert not (sources / "audit.jsonl").exists()


def test_missing_sources_folder_is_named(tmp_path):
    with pytest.raises(CurationError, match="nowhere"):
        Curator(tmp_path / "nowhere", user="alice").add_concept(PLAQUE, why="x")
    assert not (tmp_path / "nowhere").exists()


def test_curation_error_is_an_ontology_error():
    assert issubclass(CurationError, OntologyError)


def test_why_is_required():
    with pytest.raises(TypeError):
        Curator(Path(".")).remove("trachea")  # type: ignore[call-arg]


# -- no-ops ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("change", [
    pytest.param(lambda c: c.set("trachea", "name", "trachea", why="x"), id="same_name"),
    pytest.param(lambda c: c.set("trachea", "name", "  trachea ", why="x"), id="same_name_padded"),
    pytest.param(lambda c: c.set("pneumonia", "synonyms", "lung infection|lung infection", why="x"), id="same_synonyms"),
    pytest.param(lambda c: c.set("heart_failure", "synonyms", "congestive heart failure|CHF|cardiac failure", why="x"),
                 id="same_synonyms_reordered"),
    pytest.param(lambda c: c.set("trachea", "kind", ConceptKind.ANATOMY, why="x"), id="same_kind"),
    pytest.param(lambda c: c.set_edge(("SUGGESTS", "cardiomegaly", "heart_failure", "seed"), weight=None, why="x"),
                 id="same_edge_weight"),
])
def test_noop_writes_nothing(curator, sources, change):
    before = state(sources)
    mtimes = {name: (sources / name).stat().st_mtime_ns for name in FILES[:2]}

    assert change(curator) is False

    assert state(sources) == before
    assert before["audit.jsonl"] is None
    assert {name: (sources / name).stat().st_mtime_ns for name in FILES[:2]} == mtimes


# -- history and diff -----------------------------------------------------------------------------
def test_history_filters_by_concept(curator, sources):
    _add_plaque(curator)
    curator.add_edge(Relation(RelationType.LOCATED_IN, "pleural_plaque", "left_lung", "curated"), why="seen left")
    curator.set("trachea", "definition", "The windpipe.", why="shorter")

    assert [r.action for r in curator.history()] == ["add_concept", "add_edge", "set"]
    assert [r.action for r in curator.history("pleural_plaque")] == ["add_concept", "add_edge"]
    assert [r.action for r in curator.history("left_lung")] == ["add_edge"]
    assert [(r.action, r.before, r.after) for r in curator.history("trachea")] == [
        ("set", {"definition": seed_ontology()["trachea"].definition}, {"definition": "The windpipe."})
    ]
    assert curator.history("right_lung") == []
    records = curator.history()
    assert all(isinstance(r, AuditRecord) for r in records)
    # The versions chain: each change starts from the version the previous one ended at.
    assert [r.version_before for r in records[1:]] == [r.version_after for r in records[:-1]]
    assert records[-1].version_after == read_sources(sources).content_hash()
    assert records[1].target == ("LOCATED_IN", "pleural_plaque", "left_lung", "curated")


def test_history_names_a_corrupt_audit_line(curator, sources):
    _add_plaque(curator)
    with (sources / "audit.jsonl").open("a", encoding="utf-8") as log:
        log.write("{not json\n")
    with pytest.raises(CurationError, match=r"audit\.jsonl:2"):
        curator.history()


def test_diff_is_diff_ontologies(curator, sources):
    seed = read_sources(sources)
    _add_plaque(curator)
    after = read_sources(sources)
    diff = curator.diff(seed, after)
    assert diff == diff_ontologies(seed, after)
    assert [c.id for c in diff.concepts_added] == ["pleural_plaque"]


# -- configuration --------------------------------------------------------------------------------
def test_defaults_are_the_login_name_and_audit_log_in_the_sources(sources):
    curator = Curator(sources)
    assert curator.audit_log == sources / "audit.jsonl"
    _add_plaque(curator)
    assert audit_lines(sources)[0]["who"] == getpass.getuser()


def test_audit_log_elsewhere(sources, tmp_path):
    log = tmp_path / "logs" / "curation.jsonl"
    curator = Curator(sources, audit_log=log, user="bob")
    _add_plaque(curator)
    assert not (sources / "audit.jsonl").exists()
    assert [r.who for r in curator.history("pleural_plaque")] == ["bob"]


def test_a_validation_report_blocks_on_its_errors_only(curator, sources):
    """The validation engineer's validate_ontology returns a report; its errors block a change."""
    from anatomy_vlm.ontology.validate import validate_ontology

    strict = Curator(sources, user="alice", validator=lambda o: validate_ontology(o, reasoner=False))
    # Structurally fine (Ontology.problems passes it), but the region list misses 'carina'.
    before = state(sources)
    with pytest.raises(OntologyValidationError, match="carina"):
        strict.remove("carina", cascade=True, why="x")
    assert state(sources) == before
    assert curator.remove("carina", cascade=True, why="x") is True  # the default validator allows it


def test_a_custom_validator_sees_the_whole_changed_ontology(sources):
    seen: list[Ontology] = []

    def no_devices(ontology: Ontology) -> list[str]:
        seen.append(ontology)
        return [f"device {c.id!r} is not allowed yet" for c in ontology.of_kind(ConceptKind.DEVICE)]

    curator = Curator(sources, user="alice", validator=no_devices)
    with pytest.raises(OntologyValidationError, match="'ett'"):
        curator.add_concept(Concept("ett", ConceptKind.DEVICE, "endotracheal tube"), why="x")
    assert "ett" in seen[-1] and "trachea" in seen[-1]
    assert "ett" not in read_sources(sources)


@pytest.mark.skipif(sys.platform == "win32", reason="advisory folder locks are POSIX only")
def test_changes_to_one_folder_wait_for_each_other(curator, sources):
    """A second curator's read-modify-write waits while another holds the folder's lock."""
    import fcntl
    import threading

    fd = os.open(sources, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a first curator holds during its change
    done = threading.Event()
    worker = threading.Thread(target=lambda: (_add_plaque(curator), done.set()))
    worker.start()
    try:
        assert not done.wait(0.3)
        assert "pleural_plaque" not in read_sources(sources)
    finally:
        os.close(fd)  # releases the lock
    worker.join(5)
    assert done.is_set() and "pleural_plaque" in read_sources(sources)


def test_failed_audit_append_rolls_back_the_sources(sources, tmp_path):
    """An audit log that cannot be written (here: a folder in its place) undoes the source write."""
    blocked = tmp_path / "audit-is-a-folder"
    blocked.mkdir()
    before = state(sources)
    with pytest.raises(IsADirectoryError):
        Curator(sources, audit_log=blocked, user="alice").set("trachea", "name", "windpipe", why="x")
    assert state(sources) == before


# -- field rules (issue 14, R5): refused before anything is written --------------------------------
MEGABYTE = "x" * 1_000_000
EDGE = ("SUGGESTS", "cardiomegaly", "heart_failure", "seed")


def _concept(**fields) -> Concept:
    values = {"id": "pleural_plaque", "kind": ConceptKind.FINDING, "name": "pleural plaque", **fields}
    return Concept(**values)


# (id, change, the field named, words in the message)
FIELD_CASES = [
    ("definition_1mb_new", lambda c: c.add_concept(_concept(definition=MEGABYTE), why="x"),
     "definition", "1,000,000 characters, at most 4,000"),
    ("definition_1mb_set", lambda c: c.set("heart", "definition", MEGABYTE, why="x"),
     "definition", "at most 4,000"),
    ("name_too_long", lambda c: c.add_concept(_concept(name="n" * 201), why="x"), "name", "at most 200"),
    ("name_nul", lambda c: c.add_concept(_concept(name="pleural\x00plaque"), why="x"), "name", "U+0000"),
    ("name_vertical_tab", lambda c: c.set("trachea", "name", "wind\x0bpipe", why="x"), "name", "U+000B"),
    ("name_x01", lambda c: c.add_concept(_concept(name="\x01plaque"), why="x"), "name", "U+0001"),
    ("name_carriage_return", lambda c: c.set("trachea", "name", "wind\rpipe", why="x"), "name", "U+000D"),
    ("name_c1", lambda c: c.set("trachea", "name", "wind\x85pipe", why="x"), "name", "U+0085"),
    ("name_surrogate", lambda c: c.set("trachea", "name", "wind\ud800pipe", why="x"), "name", "U+D800"),
    ("name_non_character", lambda c: c.set("trachea", "name", "wind\uffffpipe", why="x"), "name", "U+FFFF"),
    ("name_blank", lambda c: c.add_concept(_concept(name="   "), why="x"), "name", "must not be empty"),
    ("definition_line_separator", lambda c: c.set("trachea", "definition", "a\u2028b", why="x"), "definition",
     "U+2028"),
    ("definition_newline", lambda c: c.add_concept(_concept(definition="line one\nline two"), why="x"),
     "definition", "U+000A"),
    ("synonym_separator_new", lambda c: c.add_concept(_concept(synonyms=("plaque|pleural",)), why="x"),
     "synonyms[0]", "holds '|'"),
    ("synonym_too_long", lambda c: c.set("trachea", "synonyms", ["s" * 201], why="x"), "synonyms[0]", "at most 200"),
    ("too_many_synonyms", lambda c: c.set("trachea", "synonyms", [f"windpipe {i}" for i in range(51)], why="x"),
     "synonyms", "51 items, at most 50"),
    ("synonym_control", lambda c: c.add_concept(_concept(synonyms=("a fine one", "bad\x07")), why="x"),
     "synonyms[1]", "U+0007"),  # synonyms are kept sorted
    ("empty_synonym_new", lambda c: c.add_concept(_concept(synonyms=("",)), why="x"), "synonyms[0]",
     "must not be empty"),
    ("code_not_system_code", lambda c: c.set("trachea", "codes", ["SNOMED 44567001"], why="x"), "codes[0]",
     "SYSTEM:CODE"),
    ("code_without_system", lambda c: c.add_concept(_concept(codes=(":123",)), why="x"), "codes[0]", "SYSTEM:CODE"),
    ("too_many_codes", lambda c: c.set("trachea", "codes", [f"UMLS:C{i:07d}" for i in range(51)], why="x"),
     "codes", "51 items, at most 50"),
    ("id_with_space", lambda c: c.add_concept(_concept(id="pleural plaque"), why="x"), "id", "is not an id"),
    ("id_leading_digit", lambda c: c.add_concept(_concept(id="1plaque"), why="x"), "id", "is not an id"),
    ("id_too_long", lambda c: c.add_concept(_concept(id="p" * 201), why="x"), "id", "at most 200"),
    ("source_control", lambda c: c.set("trachea", "source", "radlex\x00", why="x"), "source", "U+0000"),
    ("negative_weight_new",
     lambda c: c.add_edge(Relation(RelationType.SUGGESTS, "lung_nodule", "lung_cancer", "curated", weight=-0.5),
                          why="x"),
     "weight", "-0.5 is not a finite number in [0, 1]"),
    ("weight_above_one", lambda c: c.set_edge(EDGE, weight=1.5, why="x"), "weight", "in [0, 1]"),
    ("weight_infinite", lambda c: c.set_edge(EDGE, weight="inf", why="x"), "weight", "inf"),
    ("negative_count_new",
     lambda c: c.add_edge(Relation(RelationType.SUGGESTS, "lung_nodule", "lung_cancer", "curated", count=-1), why="x"),
     "count", "-1 is not a whole number"),
    ("count_too_large", lambda c: c.set_edge(EDGE, count=2**60, why="x"), "count", "is not a whole number in [0,"),
    ("relation_source_too_long",
     lambda c: c.add_edge(Relation(RelationType.SUGGESTS, "lung_nodule", "lung_cancer", "s" * 201), why="x"),
     "source", "at most 200"),
    ("relation_end_not_an_id",
     lambda c: c.add_edge(Relation(RelationType.SUGGESTS, "lung_nodule", "lung\x00cancer", "curated"), why="x"),
     "end", "U+0000"),
    ("why_control", lambda c: c.set("trachea", "name", "windpipe", why="because\x00"), "why", "U+0000"),
    ("why_too_long", lambda c: c.remove("fracture", cascade=True, why="w" * 2001), "why", "at most 2,000"),
    # Several fields as one change: a bad one refuses the good ones too.
    ("set_fields_one_bad",
     lambda c: c.set_fields("heart", {"name": "heart proper", "definition": MEGABYTE}, why="x"),
     "definition", "at most 4,000"),
]


@pytest.mark.parametrize("change,field,words", [pytest.param(*case[1:], id=case[0]) for case in FIELD_CASES])
def test_field_rules_refuse_and_write_nothing(curator, sources, change, field, words):
    curator.set("svc", "definition", "The superior vena cava.", why="an audit log with content")
    before = state(sources)

    with pytest.raises(FieldError) as raised:
        change(curator)

    error = raised.value
    assert isinstance(error, CurationError) and isinstance(error, ValueError)
    assert error.field == field and words in str(error)
    assert len(str(error)) < 400  # a refused megabyte is not echoed back
    assert state(sources) == before


def test_refused_values_stay_out_of_history(curator, sources):
    """After a run of refusals the sources still read back and the audit log holds only real changes."""
    for _, change, _, _ in FIELD_CASES:
        with pytest.raises(FieldError):
            change(curator)
    assert curator.history() == []
    assert read_sources(sources) == seed_ontology().with_changes()


def test_set_fields_is_one_change_and_one_record(curator, sources):
    assert curator.set_fields("heart", {"name": "heart proper", "definition": "The heart.", "source": "seed"},
                              why="clearer") is True
    (record,) = audit_lines(sources)
    assert record["action"] == "set" and record["target"] == "heart"
    # Only the fields whose value changed are recorded (the source was "seed" already).
    assert record["before"] == {"name": "heart", "definition": seed_ontology()["heart"].definition}
    assert record["after"] == {"name": "heart proper", "definition": "The heart."}
    assert read_sources(sources)["heart"].name == "heart proper"
    with pytest.raises(ValueError, match="at least one field"):
        curator.set_fields("heart", {}, why="x")


def test_limits_let_the_shipped_sources_and_the_built_ontology_through():
    """Every concept and curated relation the project ships satisfies the field rules."""
    from anatomy_vlm.ontology.build import BUILT_OWL_PATH
    from anatomy_vlm.ontology.files import load_ontology

    for ontology in (read_sources(), load_ontology(BUILT_OWL_PATH)):
        for concept in ontology.concepts:
            limits.check_concept(concept)
        for relation in ontology.relations:
            limits.check_relation(relation)


# -- staged sources are read back, and the touched concepts exported as OWL, before anything moves --
def test_write_sources_refuses_what_would_not_read_back(sources):
    """A carriage return in a name: csv writes it unquoted, so the row would split in two."""
    before = state(sources)
    seed = seed_ontology()
    broken = seed.with_changes(concepts=[
        Concept("trachea", ConceptKind.ANATOMY, "wind\rpipe") if c.id == "trachea" else c for c in seed.concepts
    ])
    with pytest.raises(UnwritableSourcesError, match="would not read back"):
        write_sources(broken, sources)
    assert state(sources) == before
    assert sorted(p.name for p in sources.iterdir()) == ["concepts.csv", "relations.csv"]  # no temp file left


@pytest.mark.parametrize("value,words", [
    pytest.param("wind\rpipe", "would not read back", id="carriage_return"),
    pytest.param("d" * 200_000, "field larger than field limit", id="beyond_the_csv_field_limit"),
])
def test_read_back_refuses_even_without_field_rules(curator, sources, monkeypatch, value, words):
    """The read-back is a second line: with the field rules switched off, a value the CSV
    reader cannot take back is still refused before the sources are replaced."""
    monkeypatch.setattr(limits, "check_concept_field", lambda field, value, owner=None: value)
    _add_plaque(curator)
    before = state(sources)
    with pytest.raises(FieldError, match=words) as raised:
        curator.set("trachea", "definition", value, why="x")
    assert raised.value.field == "sources"
    assert state(sources) == before
    assert read_sources(sources)["trachea"].definition == seed_ontology()["trachea"].definition


def test_owl_export_refuses_what_xml_cannot_hold(curator, sources, monkeypatch):
    """NUL and \\x01 read back from CSV, but XML 1.0 cannot hold them: the OWL round trip refuses."""
    monkeypatch.setattr(limits, "check_concept", lambda concept: None)
    before = state(sources)
    with pytest.raises(FieldError, match="cannot be exported as OWL") as raised:
        curator.add_concept(_concept(name="pleural\x01plaque"), why="x")
    assert raised.value.field == "owl"
    assert state(sources) == before


def test_an_id_reserved_by_the_owl_schema_is_refused(curator, sources):
    before = state(sources)
    with pytest.raises(FieldError, match="reserved for the OWL schema"):
        curator.add_concept(_concept(id="assertion"), why="x")
    assert state(sources) == before


# -- the graph ------------------------------------------------------------------------------------
def test_failed_graph_write_rolls_back_sources_and_audit(curator, sources):
    """A graph that cannot be reached: the change is undone in the sources and the audit log."""
    _add_plaque(curator)
    before = state(sources)
    driver = neo4j.GraphDatabase.driver("bolt://127.0.0.1:9", auth=("neo4j", "unused"), connection_timeout=2)
    try:
        unreachable = Curator(sources, user="alice", store=GraphStore(driver))
        with pytest.raises(GraphUnavailableError, match="unreachable"):
            unreachable.set("trachea", "name", "windpipe", why="x")
    finally:
        driver.close()
    assert state(sources) == before
    assert read_sources(sources)["trachea"].name == "trachea"


def test_curation_syncs_graph(store: GraphStore, sources: Path):
    """Each change reaches the graph variant; a change the graph refuses is undone everywhere."""
    curator = Curator(sources, user="alice", store=store, variant="canonical")
    _add_plaque(curator)
    curator.add_edge(Relation(RelationType.LOCATED_IN, "pleural_plaque", "left_lung", "curated", weight=0.5, count=3),
                     why="seen left")
    assert store.read_ontology("canonical").content_hash() == read_sources(sources).content_hash()
    assert store.version("canonical") == curator.history()[-1].version_after

    # A curator whose validator lets a PART_OF cycle through: the store's own validation refuses
    # it, so the sources and the audit log must get their previous bytes back.
    before, graph_before = state(sources), store.read_ontology("canonical")
    lax = Curator(sources, user="alice", store=store, validator=lambda o: [])
    with pytest.raises(OntologyValidationError, match="PART_OF cycle"):
        lax.add_edge(Relation(RelationType.PART_OF, "right_lung", "right_upper_lung_zone", "curated"), why="x")
    assert state(sources) == before
    assert store.read_ontology("canonical") == graph_before


# -- faults after validation: sources, audit log and graph move together ----------------------------
class _CommitsThenFails(GraphStore):
    """A real store whose sync commits, then raises: an acknowledgement lost after the commit."""

    def sync(self, *args, **kwargs):
        super().sync(*args, **kwargs)
        raise ConnectionResetError("connection lost after the commit")


class _FailsBeforeWriting(GraphStore):
    def sync(self, *args, **kwargs):
        raise GraphUnavailableError("graph unavailable before the write")


def _synced(store: GraphStore, sources: Path, cls=GraphStore) -> tuple[GraphStore, Ontology]:
    ontology = read_sources(sources)
    store.sync(ontology, "canonical")
    return cls(store.driver, database=store.database, dialect=store.dialect), ontology


def test_publish_raising_leaves_sources_audit_and_graph_unchanged(store, sources):
    _, _ = _synced(store, sources)
    Curator(sources, user="alice", store=store).add_concept(PLAQUE, why="first")
    before, graph = state(sources), snapshot(store)

    def publish(curated: Ontology) -> Ontology:
        raise RuntimeError("build failed")

    faulty = Curator(sources, user="alice", store=store, publish=publish)
    with pytest.raises(RuntimeError, match="build failed"):
        faulty.set("heart", "definition", "The heart.", why="x")
    assert state(sources) == before and snapshot(store) == graph


def test_sync_failing_before_its_write_leaves_all_three_unchanged(store, sources):
    failing, _ = _synced(store, sources, _FailsBeforeWriting)
    before, graph = state(sources), snapshot(store)
    with pytest.raises(GraphUnavailableError):
        Curator(sources, user="alice", store=failing).add_concept(PLAQUE, why="x")
    assert state(sources) == before and snapshot(store) == graph


def test_sync_failing_after_its_commit_keeps_all_three_new(store, sources):
    """The graph committed: rolling the files back would make them disagree with it, so the change stands."""
    lossy, old = _synced(store, sources, _CommitsThenFails)
    assert Curator(sources, user="alice", store=lossy).add_concept(PLAQUE, why="x") is True
    new = read_sources(sources)
    assert new != old and "pleural_plaque" in new
    (record,) = audit_lines(sources)
    assert store.version("canonical") == new.content_hash() == record["version_after"]

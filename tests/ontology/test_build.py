"""The ontology build: curated sources + pydicom SNOMED codes + PadChest edges and CUIs (+ hp.obo CUIs)."""

from __future__ import annotations

import csv
import gzip
import importlib
import math
from dataclasses import replace

import pytest

from anatomy_vlm.exceptions import OntologyError
from anatomy_vlm.ontology import build as build_module
from anatomy_vlm.ontology.build import (
    BUILT_OWL_PATH,
    CHEXPERT_LABELS,
    build_command,
    build_ontology,
    coverage_report,
    label_problems,
    write_built,
)
from anatomy_vlm.ontology.model import ConceptKind as K, RelationType as T
from anatomy_vlm.ontology.owl import load_owl
from anatomy_vlm.ontology.padchest import (
    PADCHEST_TERMS,
    SOURCE as PADCHEST,
    PadChestConfig,
    check_terms,
    cuis_for_concepts,
    derive_cuis,
    padchest_evidence,
    parse_sentences,
    read_reports,
)
from anatomy_vlm.ontology.seed import REGION_IDS
from anatomy_vlm.ontology.snomed import EXPLICIT, REJECTED
from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR, read_sources, write_sources


def pydicom_sct_codes() -> set[str]:
    """Every SNOMED CT code in pydicom's tables, read straight from pydicom (not through snomed.py)."""
    concepts = importlib.import_module("pydicom.sr._concepts_dict").concepts
    return {code for per_keyword in concepts["SCT"].values() for code in per_keyword}


@pytest.fixture(scope="module")
def quick():
    """The build without the PadChest and hp.obo steps (well under a second)."""
    return build_ontology(with_padchest=False, with_obo=False)


@pytest.fixture(scope="module")
def committed():
    return load_owl(BUILT_OWL_PATH)


# -- a small PadChest file in the real format ----------------------------------------------------
PADCHEST_COLUMNS = ["ImageID", "ReportID", "MethodLabel", "Labels", "Localizations",
                    "LabelsLocalizationsBySentence", "labelCUIS", "LocalizationsCUIS"]
PADCHEST_ROWS = [
    # image, report, method, Labels, Localizations, by sentence, label CUIs, localization CUIs
    ("1a.png", "R1", "Physician", "['pleural effusion', 'cardiomegaly']", "['loc pleural', 'loc right', 'loc cardiac']",
     "[['pleural effusion', 'loc pleural', 'loc right'], ['cardiomegaly', 'loc cardiac']]",
     "['C2073625' 'C0018800']", "['C0032225' 'C0444532' 'C1522601']"),
    # a second image of R1: the report counts once
    ("1b.png", "R1", "Physician", "['pleural effusion', 'cardiomegaly']", "['loc pleural', 'loc right', 'loc cardiac']",
     "[['pleural effusion', 'loc pleural', 'loc right'], ['cardiomegaly', 'loc cardiac']]",
     "['C2073625' 'C0018800']", "['C0032225' 'C0444532' 'C1522601']"),
    # the label names its side; a missing sentence is written nan; "normal" is ignored on purpose
    ("2.png", "R2", "Physician", "['pleural effusion', 'normal']", "['loc pleural', 'loc mediastinum']",
     "[['pleural effusion left side', 'loc pleural'], nan, ['normal', 'loc mediastinum']]",
     "['C2073625']", "['C0032225' 'C0025066']"),
    # a costophrenic angle with no side named: no pair, counted as unsided
    ("3.png", "R3", "Physician", "['pleural effusion']", "['loc costophrenic angle']",
     "[['pleural effusion', 'loc costophrenic angle']]", "['C2073625']", "['C0230151']"),
    ("4.png", "R4", "Physician", "['pleural effusion']", "['loc pleural', 'loc bilateral']",
     "[['pleural effusion', 'loc pleural', 'loc bilateral']]", "['C2073625']", "['C0032225' 'C0238767']"),
    # RNN-labelled: one flat list, no sentences: skipped
    ("5.png", "R5", "RNN_model", "['pleural effusion']", "['loc pleural', 'loc right']",
     "['pleural effusion', 'loc pleural', 'loc right']", "['C2073625']", "['C0032225' 'C0444532']"),
    # strings the mapping table does not know are counted, never guessed
    ("6.png", "R6", "Physician", "['cardiomegaly', 'mystery finding']", "['loc cardiac', 'loc nowhere']",
     "[['cardiomegaly', 'loc cardiac'], ['mystery finding', 'loc nowhere']]", "['C0018800']", "['C1522601']"),
]


@pytest.fixture
def padchest_csv(tmp_path):
    path = tmp_path / "padchest_sample.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PADCHEST_COLUMNS)
        writer.writerows(PADCHEST_ROWS)
    return path


EVERY_PAIR = PadChestConfig(min_count=1, min_weight=0.0, min_cui_reports=1, progress=False)


# -- the build -----------------------------------------------------------------------------------
def test_the_build_validates_and_holds_every_region_with_a_part_of_parent(quick):
    ontology, _ = quick
    assert ontology.validate() is ontology and ontology.name == "anatomy-vlm"
    parents = {r.start: r.end for r in ontology.relations_of_type(T.PART_OF)}
    for region in REGION_IDS:
        assert ontology[region].kind is K.ANATOMY
        assert region in parents and ontology[parents[region]].kind is K.ANATOMY, region
    curated = read_sources(DEFAULT_SOURCES_DIR)
    assert set(curated.relations) <= set(ontology.relations)  # the build adds, never drops


def test_the_fourteen_chexpert_labels_map_to_concepts(quick):
    ontology, _ = quick
    assert len(CHEXPERT_LABELS) == 14
    for label, concept_id in CHEXPERT_LABELS.items():
        concept = ontology[concept_id]
        assert label == concept.name or label in concept.synonyms
    assert ontology["support_devices"].kind is K.DEVICE
    assert {r.start for r in ontology.relations_of_type(T.IS_A) if r.end == "support_devices"} >= {
        "endotracheal_tube", "central_venous_catheter", "pacemaker", "chest_tube", "enteric_tube"}
    assert ontology["no_finding"].kind is K.FINDING
    assert not [r for r in ontology.relations if r.start == "no_finding"]  # belongs to no region
    assert label_problems(ontology) == []


def test_a_label_carried_by_the_wrong_concept_fails_the_build(tmp_path):
    curated = read_sources(DEFAULT_SOURCES_DIR)
    moved = [
        replace(c, synonyms=tuple(s for s in c.synonyms if s != "Edema")) if c.id == "pulmonary_edema"
        else replace(c, synonyms=c.synonyms + ("Edema",)) if c.id == "pleural_effusion" else c
        for c in curated.concepts
    ]
    write_sources(curated.with_changes(concepts=moved), tmp_path)
    expected = r"label 'Edema' maps to 'pulmonary_edema' but is .* \['pleural_effusion'\]"
    with pytest.raises(OntologyError, match=expected):
        build_ontology(tmp_path, with_padchest=False, with_obo=False)


def test_every_snomed_code_is_one_of_pydicoms(quick, committed):
    known = pydicom_sct_codes()
    for ontology in (quick[0], committed):
        codes = {code.split(":", 1)[1] for c in ontology.concepts for code in c.codes if code.startswith("SNOMED:")}
        assert len(codes) > 40
        assert codes <= known, sorted(codes - known)


def test_snomed_codes_follow_the_matching_rules(quick):
    ontology, build_log = quick
    assert "SNOMED:60046008" in ontology["pleural_effusion"].codes  # exact name "Pleural effusion"
    assert "SNOMED:48345005" in ontology["svc"].codes  # through the synonym "superior vena cava"
    assert "SNOMED:39607008" in ontology["lungs"].codes and EXPLICIT["lungs"][0] == "39607008"
    assert "SNOMED:287272002" not in ontology["cardiomegaly"].codes and ("cardiomegaly", "287272002") in REJECTED
    assert not [c for c in ontology["aspiration"].codes if c.startswith("SNOMED:")]  # pydicom's is a procedure
    assert "SNOMED:14106009" in ontology["pacemaker"].codes  # the device, not the pulse generator
    assert any("aspiration: dropped SNOMED:14766002" in note for note in build_log.snomed.notes)
    assert "SNOMED CT from pydicom" in build_log.format()


def test_a_curated_snomed_code_missing_from_pydicom_fails_the_build(tmp_path):
    curated = read_sources(DEFAULT_SOURCES_DIR)
    invented = [replace(c, codes=("SNOMED:999999999",)) if c.id == "carina" else c for c in curated.concepts]
    write_sources(curated.with_changes(concepts=invented), tmp_path)
    with pytest.raises(OntologyError, match=r"'carina' has SNOMED:999999999"):
        build_ontology(tmp_path, with_padchest=False, with_obo=False)


def test_coverage_report_matches_a_direct_count(committed):
    report = coverage_report(committed)
    located = {r.start for r in committed.relations_of_type(T.LOCATED_IN)}
    for kind in K:
        concepts = committed.of_kind(kind)
        row = report.row(kind)
        assert row.concepts == len(concepts) > 0
        assert row.with_snomed == len([c for c in concepts if any(x.startswith("SNOMED:") for x in c.codes)])
        assert row.with_umls == len([c for c in concepts if any(x.startswith("UMLS:") for x in c.codes)])
        assert row.with_definition == len([c for c in concepts if c.definition]) == len(concepts)
        if kind in (K.FINDING, K.DISEASE):
            assert row.with_located_in == len([c for c in concepts if c.id in located])
        else:
            assert row.with_located_in is None
    total = report.row(None)
    assert total.concepts == len(committed.concepts)
    assert total.with_snomed == sum(report.row(k).with_snomed for k in K)
    assert report.located_by_source == {
        source: len([r for r in committed.relations_of_type(T.LOCATED_IN) if r.source == source])
        for source in ("curated", PADCHEST)
    }
    lines = report.format().splitlines()
    finding = report.row(K.FINDING)
    assert any(line.startswith("Finding") and f"{finding.with_located_in} (" in line for line in lines)
    assert lines[-1].startswith("LOCATED_IN edges:")


def test_the_committed_build_has_padchest_edges_with_weights_and_counts(committed):
    padchest = [r for r in committed.relations if r.source == PADCHEST]
    assert len(padchest) > 300
    for r in padchest:
        assert r.type is T.LOCATED_IN
        assert 0 < r.weight <= 1 and r.count >= PadChestConfig().min_count
        assert committed[r.end].kind is K.ANATOMY
    by_pair = {(r.start, r.end): r for r in padchest}
    assert by_pair[("cardiomegaly", "cardiac_silhouette")].weight > 0.8
    assert any(code.startswith("UMLS:C") for code in committed["pleural_effusion"].codes)


def test_obo_step_is_skipped_with_a_note_when_the_importer_is_missing(monkeypatch):
    monkeypatch.setattr(build_module, "OBO_MODULE", "anatomy_vlm.ontology.importers.no_such_module")
    ontology, build_log = build_ontology(with_padchest=False, with_obo=True)
    assert any("hp.obo CUIs skipped" in note for note in build_log.notes)
    assert ontology == build_ontology(with_padchest=False, with_obo=False)[0]


def test_obo_step_adds_only_umls_codes(quick):
    if importlib.util.find_spec(build_module.OBO_MODULE) is None:
        pytest.skip("the OBO importer is not in this tree")
    with_obo, build_log = build_ontology(with_padchest=False, with_obo=True)
    without = quick[0]
    added = {c.id: set(c.codes) - set(without[c.id].codes) for c in with_obo.concepts}
    assert any(added.values()) and build_log.obo
    assert all(code.startswith("UMLS:") for codes in added.values() for code in codes)
    assert all(with_obo[cid].kind in build_module.OBO_KINDS for cid, codes in added.items() if codes)


def test_write_built_round_trips(tmp_path, quick):
    path = write_built(quick[0], tmp_path / "out" / "built.owl")
    assert load_owl(path) == quick[0]


# -- PadChest ------------------------------------------------------------------------------------
def test_padchest_terms_fit_the_sources():
    assert check_terms(read_sources(DEFAULT_SOURCES_DIR)) == []
    assert PADCHEST_TERMS["normal"] is None and "mystery finding" not in PADCHEST_TERMS


def test_parse_sentences():
    assert parse_sentences("[['a', ' loc b'], nan, [], ['c']]") == (("a", "loc b"), ("c",))
    assert parse_sentences("['a', 'loc b']") is None  # flat: not split in sentences
    assert parse_sentences("") is None
    with pytest.raises(OntologyError, match="sample.csv:7"):
        parse_sentences("[['a'], 3]", where="sample.csv:7")


def test_padchest_edges_count_reports_per_pair(padchest_csv):
    curated = read_sources(DEFAULT_SOURCES_DIR)
    reports = read_reports(padchest_csv, progress=False)
    assert [r.report_id for r in reports] == ["R1", "R2", "R3", "R4", "R5", "R6"]  # one per report
    result = padchest_evidence(curated, padchest_csv, EVERY_PAIR)
    edges = {(r.start, r.end): (r.weight, r.count) for r in result.relations}
    # pleural effusion is in 4 sentence-split reports (R1-R4); R5 is flat and skipped
    assert result.finding_reports["pleural_effusion"] == 4
    assert edges[("pleural_effusion", "right_pleura")] == (0.5, 2)  # R1 (loc right), R4 (loc bilateral)
    assert edges[("pleural_effusion", "left_pleura")] == (0.5, 2)  # R2 (label's own side), R4
    assert edges[("cardiomegaly", "cardiac_silhouette")] == (1.0, 2)  # R1 twice (two images) counts once, R6
    assert set(edges) == {("pleural_effusion", "right_pleura"), ("pleural_effusion", "left_pleura"),
                          ("cardiomegaly", "cardiac_silhouette")}
    assert all(r.source == PADCHEST and r.type is T.LOCATED_IN for r in result.relations)
    assert (result.reports, result.reports_used, result.unsided) == (6, 5, 1)
    assert result.unmapped == {"loc nowhere": 1, "mystery finding": 1}
    assert result.ignored == {"normal": 1}
    assert "2 unmapped strings" in result.format()


def test_padchest_thresholds_leave_out_rare_and_weak_pairs(padchest_csv):
    curated = read_sources(DEFAULT_SOURCES_DIR)
    strict = padchest_evidence(curated, padchest_csv, replace(EVERY_PAIR, min_count=3))
    assert strict.relations == () and strict.left_out == 3
    weak = padchest_evidence(curated, padchest_csv, replace(EVERY_PAIR, min_weight=0.6))
    assert [(r.start, r.end) for r in weak.relations] == [("cardiomegaly", "cardiac_silhouette")]


def test_padchest_cuis_come_from_the_unaligned_lists(padchest_csv):
    reports = read_reports(padchest_csv, progress=False)
    derived = derive_cuis(reports, min_reports=1)
    assert derived["pleural effusion"] == "C2073625"
    # "mystery finding" is only ever seen with "cardiomegaly": the shared CUI is cardiomegaly's
    assert derived["cardiomegaly"] == "C0018800" and "mystery finding" not in derived
    assert derived["loc cardiac"] == "C1522601" and derived["loc pleural"] == "C0032225"
    cuis, _ = cuis_for_concepts(read_sources(DEFAULT_SOURCES_DIR), derived)
    assert cuis["pleural_effusion"] == ("UMLS:C2073625",) and cuis["cardiomegaly"] == ("UMLS:C0018800",)
    assert cuis["mediastinum"] == ("UMLS:C0025066",)  # "loc mediastinum" is the concept's name
    assert "cardiac_silhouette" not in cuis  # "cardiac" is not a name of the cardiac silhouette
    assert derive_cuis(reports, min_reports=6) == {}  # too few reports for any string (R1-R5 at most)


def test_a_mapping_to_a_missing_concept_is_refused(padchest_csv):
    curated = read_sources(DEFAULT_SOURCES_DIR)
    without = curated.with_changes(concepts=[c for c in curated.concepts if c.id != "right_pleura"], relations=())
    with pytest.raises(OntologyError, match="'loc pleural' maps to unknown concept 'right_pleura'"):
        padchest_evidence(without, padchest_csv, EVERY_PAIR)


def test_a_corrupt_padchest_file_is_named(tmp_path):
    bad = tmp_path / "broken.csv.gz"
    bad.write_bytes(gzip.compress(b"ImageID,ReportID\n")[:20])
    with pytest.raises(OntologyError, match="broken.csv.gz"):
        read_reports(bad, progress=False)


# -- the full build (reads the 160k-row PadChest CSV: several seconds) ---------------------------
@pytest.mark.slow
def test_the_committed_owl_equals_a_fresh_build(committed, tmp_path):
    ontology, build_log = build_ontology()
    assert ontology == committed
    assert build_log.padchest is not None and build_log.padchest.reports_used > 20000
    padchest = [r for r in ontology.relations if r.source == PADCHEST]
    assert padchest and all(0 < r.weight <= 1 and r.count >= 1 and math.isfinite(r.weight) for r in padchest)
    code, text = build_command(tmp_path / "anatomy-vlm.owl", progress=False)
    assert code == 0 and "wrote" in text and load_owl(tmp_path / "anatomy-vlm.owl") == committed
    assert build_command(BUILT_OWL_PATH, check=True, progress=False)[0] == 0


def test_build_command_check_reports_a_stale_file(tmp_path, quick):
    stale = tmp_path / "stale.owl"
    write_built(quick[0].with_changes(relations=()), stale)
    code, text = build_command(stale, with_padchest=False, with_obo=False, check=True)
    assert code == 1 and "out of date" in text
    assert build_command(tmp_path / "missing" / "x.owl", sources_dir=tmp_path / "nowhere")[0] == 2

"""The one label-mapping module: every mapped id exists, policies for unknown and uncertain labels."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import pytest

from anatomy_vlm.datasets import labels as L
from anatomy_vlm.datasets.readers.iu_xray import IUTagParser
from anatomy_vlm.datasets.sample import REGION_IDS, REGION_NAMES
from anatomy_vlm.ontology.build import CHEXPERT_LABELS

CONCEPTS_CSV = Path(__file__).resolve().parents[2] / "ontology" / "sources" / "concepts.csv"


def concept_ids() -> dict[str, str]:
    with CONCEPTS_CSV.open(newline="") as handle:
        return {row["id"]: row["kind"] for row in csv.DictReader(handle)}


def test_every_mapped_id_exists_in_concepts_csv():
    known = concept_ids()
    for vocabulary, ids in L.all_mapped_ids().items():
        missing = sorted(ids - set(known))
        assert not missing, f"{vocabulary} maps to ids missing from concepts.csv: {missing}"
        if vocabulary.endswith("regions"):
            assert ids <= set(REGION_IDS), f"{vocabulary} maps to non-region ids {sorted(ids - set(REGION_IDS))}"
        else:
            assert {known[i] for i in ids} <= {"Finding", "Disease", "Device"}, vocabulary


def test_vocabularies_are_complete():
    assert L.CHEXPERT_LABEL_IDS == CHEXPERT_LABELS
    assert len(L.NIH_LABELS) == 15 and "Pleural_Thickening" in L.NIH_LABELS
    assert len(L.VINDR_LOCAL_LABELS) == 22
    assert {k for k in L.VINDR_GLOBAL_LABELS if k != "Other disease"} == {
        "COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding"}
    assert set(REGION_NAMES) <= set(L.IMAGENOME_REGIONS)
    assert L.IMAGENOME_ATTRIBUTES["linear/patchy atelectasis"] == "linear_patchy_atelectasis"
    assert L.IMAGENOME_ATTRIBUTES["picc"] == "picc_line"


@pytest.mark.parametrize(("policy", "expected"), [
    (L.UncertaintyPolicy.U_ONES, 1.0), (L.UncertaintyPolicy.U_ZEROS, 0.0), (L.UncertaintyPolicy.U_IGNORE, math.nan),
])
def test_uncertainty_policy(policy, expected):
    value = L.label_value("-1.0", policy)
    assert (math.isnan(value) if math.isnan(expected) else value == expected)
    assert L.label_value("1.0", policy) == 1.0 and L.label_value("0", policy) == 0.0
    assert L.label_value("", policy) is None and L.label_value(None, policy) is None
    assert L.label_value(float("nan"), policy) is None
    with pytest.raises(ValueError):
        L.label_value("2", policy)


def test_unknown_label_raises_naming_string_and_file():
    mapper = L.LabelMapper(L.NIH_LABELS, "NIH", "raise")
    with pytest.raises(L.LabelError) as info:
        mapper.map("Pneumonitis", "some/file.csv:3")
    assert "Pneumonitis" in str(info.value) and "some/file.csv:3" in str(info.value)
    assert isinstance(info.value, L.DataError)


def test_unknown_label_skip_logs_and_counts(caplog):
    mapper = L.LabelMapper(L.NIH_LABELS, "NIH", "skip")
    with caplog.at_level(logging.WARNING):
        assert mapper.map("Pneumonitis", "f.csv") is None
        assert mapper.map("Pneumonitis", "f.csv") is None
    assert mapper.unknown_counts == {"Pneumonitis": 2}
    assert "Pneumonitis" in caplog.text and "f.csv" in caplog.text


def test_known_unmapped_label_is_counted_not_an_error():
    mapper = L.LabelMapper(L.VINDR_LABELS, "VinDr", "raise")
    assert mapper.map("Other lesion", "f.csv") is None
    assert mapper.unmapped_counts == {"Other lesion": 1} and not mapper.unknown_counts
    assert mapper.map("  nodule/MASS ", "f") == "mass_nodule"  # case and blanks are folded
    assert L.LabelMapper(L.IU_FINDINGS, "IU").map("Subcutaneous  Emphysema", "f") == "subcutaneous_air"
    with pytest.raises(ValueError):
        L.LabelMapper(L.NIH_LABELS, "NIH", "ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(("tag", "finding", "regions"), [
    ("Opacity/lung/base/left/mild", "lung_opacity", ["left_lower_lung_zone"]),
    ("Diaphragm/right/elevated", "elevated_hemidiaphragm", ["right_hemidiaphragm"]),
    ("Aorta/tortuous", "tortuous_aorta", ["aortic_arch"]),
    ("Pulmonary Atelectasis/lung/upper lobe/bilateral", "atelectasis",
     ["right_upper_lung_zone", "left_upper_lung_zone"]),
    ("Nodule/right", "lung_nodule", ["right_lung"]),
    ("Cardiomegaly/mild", "cardiomegaly", []),
    ("Fractures, Bone/ribs/left", "rib_fracture", []),
    ("normal", "no_finding", []),
])
def test_iu_tags_to_findings_and_regions(tag, finding, regions):
    got_finding, got_regions, unmapped = IUTagParser().parse(tag, "r.xml")
    assert (got_finding, got_regions, unmapped) == (finding, regions, None)


def test_iu_unknown_head_and_qualifier():
    with pytest.raises(L.LabelError, match="Dragon"):
        IUTagParser().parse("Dragon/left", "r.xml")
    with pytest.raises(L.LabelError, match="sideways"):
        IUTagParser().parse("Opacity/sideways", "r.xml")
    parser = IUTagParser("skip")
    assert parser.parse("Opacity/sideways/left", "r.xml") == ("lung_opacity", ["left_lung"], None)
    assert parser.qualifiers.unknown_counts == {"sideways": 1}
    assert parser.parse("No Indexing", "r.xml") == (None, [], "No Indexing")

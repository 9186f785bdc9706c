"""Each reader on its hand-written fixture (tests/fixtures/datasets), with images generated here.

The annotation files are written in the published formats; images are generated per test
(tiny PNG/JPEG/DICOM) into a copy of the fixture tree, so missing and corrupt files can be made.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anatomy_vlm.datasets.labels import DataError, LabelError, UncertaintyPolicy
from anatomy_vlm.datasets.readers import (
    CheXpertConfig,
    CheXpertDataset,
    FolderConfig,
    FolderDataset,
    IUXrayConfig,
    IUXrayDataset,
    MimicConfig,
    MimicCxrDataset,
    NIHConfig,
    NIHDataset,
    VinDrConfig,
    VinDrDataset,
)
from anatomy_vlm.datasets.readers.iu_xray import IUTagParser, iter_report_files, parse_iu_report
from anatomy_vlm.datasets.sample import REGION_IDS, XraySample
from anatomy_vlm.encoder.io import ImageReadError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
MIMIC_A = "0a1b2c3d-1e2f3a4b-5c6d7e8f-9a0b1c2d-3e4f5a6b"
MIMIC_B = "7f6e5d4c-3b2a1f0e-9d8c7b6a-5f4e3d2c-1b0a9f8e"
VINDR_A, VINDR_B = "9a5094b2563a1ef3ff50dc5c7ff71345", "051132a778e61a86eb147c7c6f564dfe"


# -- image generators --------------------------------------------------------------------------
def gradient(width: int, height: int) -> np.ndarray:
    """[H, W] uint8 ramp: left dark, right bright."""
    return np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))


def write_png(path: Path, width: int = 64, height: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(width, height), mode="L").save(path)
    return path


def write_jpeg(path: Path, width: int = 64, height: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(width, height), mode="L").save(path, format="JPEG")
    return path


def write_dicom(path: Path, width: int = 64, height: int = 64, monochrome1: bool = True) -> Path:
    """A small 12-bit-in-16 DICOM, MONOCHROME1 by default (as VinDr ships many)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image for Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (gradient(width, height).astype(np.uint16) * 16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def corrupt(path: Path) -> None:
    """Cut the file to its first 40 bytes: a header with no image behind it."""
    path.write_bytes(path.read_bytes()[:40])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A writable copy of the fixture tree."""
    shutil.copytree(FIXTURES, tmp_path / "data")
    return tmp_path / "data"


# -- CheXpert ----------------------------------------------------------------------------------
CHEXPERT_PATHS = [
    "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg",
    "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg",
    "CheXpert-v1.0-small/train/patient00002/study2/view2_lateral.jpg",
    "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg",
]


@pytest.fixture
def chexpert(data: Path) -> Path:
    for rel in CHEXPERT_PATHS:
        write_jpeg(data / "chexpert" / rel, 48, 64)
    return data / "chexpert"


def chexpert_config(root: Path, **kw) -> CheXpertConfig:
    return CheXpertConfig(csv_path=root / "train.csv", root=root, **kw)


def test_chexpert_reads_samples_and_labels(chexpert: Path):
    ds = CheXpertDataset(chexpert_config(chexpert))
    assert len(ds) == 4
    sample = ds[0]
    assert isinstance(sample, XraySample) and sample.source == "chexpert"
    assert sample.image.shape == (1, 64, 48) and sample.image.dtype == torch.float32
    assert sample.source_id == CHEXPERT_PATHS[0]
    # blanks are absent, not negative
    assert sample.image_labels == {"no_finding": 1.0, "pneumothorax": 0.0, "support_devices": 1.0}
    assert not sample.box_present.any() and sample.meta["Sex"] == "Female"
    assert ds[3].image_labels == {"pulmonary_edema": 0.0}
    negatives = CheXpertDataset(chexpert_config(chexpert, blank_value=0.0))[3].image_labels
    assert len(negatives) == 14 and sum(negatives.values()) == 0.0


@pytest.mark.parametrize(("policy", "expected"), [
    (UncertaintyPolicy.U_ONES, 1.0), (UncertaintyPolicy.U_ZEROS, 0.0), (UncertaintyPolicy.U_IGNORE, math.nan)])
def test_chexpert_uncertainty_policies(chexpert: Path, policy, expected):
    labels = CheXpertDataset(chexpert_config(chexpert, uncertainty=policy))[1].image_labels
    for concept in ("cardiomegaly", "pulmonary_edema", "consolidation", "atelectasis", "pleural_effusion"):
        assert math.isnan(labels[concept]) if math.isnan(expected) else labels[concept] == expected
    assert labels["lung_opacity"] == 1.0 and labels["fracture"] == 1.0 and "pneumonia" not in labels


def test_chexpert_per_label_policy_and_frontal_only(chexpert: Path):
    config = chexpert_config(chexpert, frontal_only=True,
                             uncertainty={"Atelectasis": UncertaintyPolicy.U_ONES, "Edema": UncertaintyPolicy.U_ZEROS})
    ds = CheXpertDataset(config)
    assert len(ds) == 3
    labels = ds[1].image_labels
    assert labels["atelectasis"] == 1.0 and labels["pulmonary_edema"] == 0.0 and math.isnan(labels["cardiomegaly"])


def test_chexpert_unknown_column_raises_or_is_counted(chexpert: Path):
    csv_path = chexpert / "train.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([lines[0] + ",Pneumonitis"] + [line + ",1.0" for line in lines[1:]]) + "\n")
    with pytest.raises(LabelError) as info:
        CheXpertDataset(chexpert_config(chexpert))
    assert "Pneumonitis" in str(info.value) and "train.csv" in str(info.value)
    ds = CheXpertDataset(chexpert_config(chexpert, unknown="skip"))
    assert ds.unknown_labels == {"Pneumonitis": 1} and len(ds) == 4


def test_chexpert_bad_value_names_file_and_line(chexpert: Path):
    csv_path = chexpert / "train.csv"
    csv_path.write_text(csv_path.read_text().replace("Male,41,Frontal,PA,,,,,,0.0", "Male,41,Frontal,PA,,,,,,yes"))
    with pytest.raises(DataError, match=r"train\.csv:5.*Edema"):
        CheXpertDataset(chexpert_config(chexpert))


def test_missing_image_raises_or_is_skipped_and_logged(chexpert: Path, caplog):
    missing = chexpert / CHEXPERT_PATHS[2]
    missing.unlink()
    with pytest.raises(DataError, match="view2_lateral.jpg"):
        CheXpertDataset(chexpert_config(chexpert))
    with caplog.at_level(logging.WARNING):
        ds = CheXpertDataset(chexpert_config(chexpert, on_error="skip"))
    assert len(ds) == 3 and [s for s, _ in ds.skipped] == [str(missing)]
    assert "view2_lateral.jpg" in caplog.text and "not found" in caplog.text


def test_corrupt_image_raises_or_is_skipped_and_logged(chexpert: Path, caplog):
    bad = chexpert / CHEXPERT_PATHS[1]
    corrupt(bad)
    ds = CheXpertDataset(chexpert_config(chexpert))
    assert len(ds) == 4
    with pytest.raises(ImageReadError, match="view1_frontal.jpg"):
        ds[1]
    ds = CheXpertDataset(chexpert_config(chexpert, on_error="skip"))
    with caplog.at_level(logging.WARNING):
        sample = ds[1]
    assert sample.source_id == CHEXPERT_PATHS[2]  # the next readable one
    assert ds.skipped and ds.skipped[0][0] == str(bad) and "patient00002" in caplog.text
    assert ds[1].source_id == CHEXPERT_PATHS[2] and len(ds.skipped) == 1  # logged once, not retried
    probed = CheXpertDataset(chexpert_config(chexpert, on_error="skip", probe=True))
    assert len(probed) == 3 and probed.skipped[0][0] == str(bad)


def test_transform_is_applied(chexpert: Path):
    def flip(sample: XraySample) -> XraySample:
        sample.image = sample.image.flip(-1)
        return sample

    plain = CheXpertDataset(chexpert_config(chexpert))[0].image
    flipped = CheXpertDataset(chexpert_config(chexpert), transform=flip)[0].image
    assert torch.equal(flipped, plain.flip(-1))


# -- MIMIC-CXR-JPG + Chest ImaGenome -----------------------------------------------------------
@pytest.fixture
def mimic(data: Path) -> Path:
    root = data / "mimic"
    # metadata says 96 x 128 (Columns x Rows); the JPGs are half size, so boxes scale by 0.5
    write_jpeg(root / "files" / "p10" / "p10000032" / "s50414267" / f"{MIMIC_A}.jpg", 48, 64)
    write_jpeg(root / "files" / "p10" / "p10000032" / "s53189527" / f"{MIMIC_B}.jpg", 48, 64)
    return root


def mimic_config(root: Path, **kw) -> MimicConfig:
    base = dict(root=root, scene_graph_dir=root / "scene_graph", metadata_csv=root / "mimic-cxr-2.0.0-metadata.csv",
                chexpert_csv=root / "mimic-cxr-2.0.0-chexpert.csv")
    return MimicConfig(**{**base, **kw})


def test_mimic_scene_graph_boxes_and_region_labels(mimic: Path):
    ds = MimicCxrDataset(mimic_config(mimic))
    assert len(ds) == 1
    s = ds[0]
    assert s.source == "mimic-cxr" and s.source_id == MIMIC_A and s.image.shape == (1, 64, 48)
    i, j, k = (REGION_IDS.index(r) for r in ("right_lung", "left_lung", "cardiac_silhouette"))
    assert s.box_present.nonzero().flatten().tolist() == sorted([i, j, k])
    assert s.boxes[i].tolist() == [5.0, 10.0, 20.0, 50.0]  # original (10, 20, 40, 100) * 0.5
    assert s.boxes[j].tolist() == [25.0, 10.0, 43.0, 52.0]
    assert s.boxes[k].tolist() == [15.0, 30.0, 35.0, 50.0]
    assert s.region_labels["right_lung"] == {"lung_opacity": 1.0, "pneumothorax": 0.0}
    assert s.region_labels["left_lung"] == {"lung_opacity": 0.0, "pneumothorax": 0.0}
    assert s.region_labels["cardiac_silhouette"] == {"enlarged_cardiac_silhouette": 1.0, "pneumonia": 0.0}
    assert s.region_labels["abdomen"] == {"enteric_tube": 1.0}
    assert "left arm" not in s.region_labels and s.image_labels["bone_lesion"] == 1.0  # no box: image only
    # union over regions, yes wins; the scene graph wins over CheXpert's "Lung Opacity 0.0"
    assert s.image_labels["lung_opacity"] == 1.0 and s.image_labels["pneumothorax"] == 0.0
    assert s.meta["chexpert_labels"]["lung_opacity"] == 0.0
    assert s.image_labels["cardiomegaly"] == 1.0 and math.isnan(s.image_labels["pleural_effusion"])
    assert s.meta["unmapped_labels"] == {"rotated": 1.0} and s.meta["summary_attributes"] == ["nlp|yes|abnormal"]
    assert s.meta["study_id"] == "50414267"


def test_mimic_without_metadata_keeps_original_pixels(mimic: Path):
    s = MimicCxrDataset(mimic_config(mimic, metadata_csv=None))[0]
    assert s.boxes[REGION_IDS.index("right_lung")].tolist() == [10.0, 20.0, 40.0, 100.0]


def test_mimic_without_scene_graphs_uses_chexpert(mimic: Path):
    ds = MimicCxrDataset(mimic_config(mimic, scene_graph_dir=None, uncertainty=UncertaintyPolicy.U_ONES))
    assert len(ds) == 2
    by_id = {ds[n].source_id: ds[n] for n in range(2)}
    assert by_id[MIMIC_B].image_labels == {"no_finding": 1.0}
    assert by_id[MIMIC_A].image_labels["pleural_effusion"] == 1.0
    assert not by_id[MIMIC_A].box_present.any()


def edit_scene_graph(root: Path, edit) -> None:
    path = root / "scene_graph" / f"{MIMIC_A}_SceneGraph.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_mimic_unknown_region_name(mimic: Path):
    edit_scene_graph(mimic, lambda d: d["objects"][0].update(bbox_name="right lung apex"))
    with pytest.raises(LabelError) as info:
        MimicCxrDataset(mimic_config(mimic))
    assert "right lung apex" in str(info.value) and f"{MIMIC_A}_SceneGraph.json" in str(info.value)
    ds = MimicCxrDataset(mimic_config(mimic, unknown="skip"))
    assert ds.unknown_labels == {"right lung apex": 1}
    assert not ds[0].box_present[REGION_IDS.index("right_lung")]


def test_mimic_unknown_attribute(mimic: Path):
    edit_scene_graph(mimic, lambda d: d["attributes"][1]["attributes"][0].append("anatomicalfinding|yes|glowing lung"))
    with pytest.raises(LabelError) as info:
        MimicCxrDataset(mimic_config(mimic))
    assert "glowing lung" in str(info.value) and "_SceneGraph.json" in str(info.value)
    s = MimicCxrDataset(mimic_config(mimic, unknown="skip"))[0]
    assert s.region_labels["left_lung"] == {"lung_opacity": 0.0, "pneumothorax": 0.0}


def test_mimic_missing_image(mimic: Path):
    (mimic / "files" / "p10" / "p10000032" / "s50414267" / f"{MIMIC_A}.jpg").unlink()
    with pytest.raises(DataError, match=MIMIC_A):
        MimicCxrDataset(mimic_config(mimic))
    assert len(MimicCxrDataset(mimic_config(mimic, on_error="skip"))) == 0


# -- VinDr-CXR ---------------------------------------------------------------------------------
@pytest.fixture
def vindr(data: Path) -> Path:
    root = data / "vindr"
    write_dicom(root / "train" / f"{VINDR_A}.dicom")
    write_dicom(root / "train" / f"{VINDR_B}.dicom", monochrome1=False)
    return root


def vindr_config(root: Path, **kw) -> VinDrConfig:
    return VinDrConfig(annotations_csv=root / "annotations_train.csv", images_dir=root / "train",
                       image_labels_csv=root / "image_labels_train.csv", **kw)


def test_vindr_dicom_labels_and_finding_boxes(vindr: Path):
    ds = VinDrDataset(vindr_config(vindr))
    assert len(ds) == 2
    a, b = ds[0], ds[1]
    assert a.source_id == VINDR_A and a.image.shape == (1, 64, 64)
    # MONOCHROME1: the stored ramp is inverted, so the left edge is bright
    assert a.image[0, 0, 0] > 0.99 and a.image[0, 0, -1] < 0.01
    assert b.image[0, 0, 0] < 0.01
    assert not a.box_present.any()  # findings, not regions
    boxes = [(fid, box.tolist()) for fid, box in a.meta["finding_boxes"]]
    assert boxes == [("cardiomegaly", [20.0, 30.0, 50.0, 44.0]), ("cardiomegaly", [22.0, 31.0, 49.0, 45.0]),
                     ("mass_nodule", [5.0, 6.0, 9.0, 12.0])]
    assert a.meta["finding_box_raters"] == ["R8", "R9", "R10"]
    assert a.image_labels["cardiomegaly"] == 1.0 and a.image_labels["mass_nodule"] == 1.0
    assert a.image_labels["lung_cancer"] == 1.0 and a.image_labels["pneumothorax"] == 0.0
    assert a.meta["unmapped_labels"]["Aortic enlargement"] == 1.0
    assert b.meta["finding_boxes"] == [] and b.image_labels["no_finding"] == 1.0


def test_vindr_majority_vote(vindr: Path):
    a = VinDrDataset(vindr_config(vindr, rad_aggregation="majority"))[0]
    assert a.image_labels["cardiomegaly"] == 1.0 and a.image_labels["lung_cancer"] == 1.0  # 2 of 3
    assert a.image_labels["mass_nodule"] == 0.0 and a.meta["unmapped_labels"]["Aortic enlargement"] == 0.0


def test_vindr_unknown_class_and_missing_dicom(vindr: Path):
    ann = vindr / "annotations_train.csv"
    ann.write_text(ann.read_text().replace("Nodule/Mass", "Lung flower"))
    with pytest.raises(LabelError, match=r"annotations_train\.csv:5: unknown VinDr-CXR label 'Lung flower'"):
        VinDrDataset(vindr_config(vindr))
    (vindr / "train" / f"{VINDR_B}.dicom").unlink()
    ds = VinDrDataset(vindr_config(vindr, unknown="skip", on_error="skip"))
    assert len(ds) == 1 and ds.unknown_labels == {"Lung flower": 1}


def test_vindr_corrupt_dicom(vindr: Path):
    corrupt(vindr / "train" / f"{VINDR_A}.dicom")
    with pytest.raises(ImageReadError, match=VINDR_A):
        VinDrDataset(vindr_config(vindr))[0]


# -- NIH ChestX-ray14 --------------------------------------------------------------------------
@pytest.fixture
def nih(data: Path) -> Path:
    root = data / "nih"
    for n, name in enumerate(["00000001_000.png", "00000001_001.png", "00000003_000.png", "00000004_000.png"]):
        write_png(root / f"images_00{1 + n // 2}" / "images" / name)
    return root


def nih_config(root: Path, **kw) -> NIHConfig:
    return NIHConfig(data_entry_csv=root / "Data_Entry_2017.csv", images_dir=root,
                     bbox_csv=root / "BBox_List_2017.csv", **kw)


def test_nih_labels_and_scaled_boxes(nih: Path):
    ds = NIHDataset(nih_config(nih))
    assert len(ds) == 4
    s0, s1, s2, s3 = (ds[n] for n in range(4))
    assert len(s0.image_labels) == 15 and sum(s0.image_labels.values()) == 1.0
    assert s0.image_labels["cardiomegaly"] == 1.0 and s0.image_labels["no_finding"] == 0.0
    assert s1.image_labels["emphysema"] == 1.0
    assert s2.image_labels["hiatal_hernia"] == 1.0 and s2.image_labels["pleural_thickening"] == 1.0
    assert s3.image_labels["no_finding"] == 1.0 and sum(s3.image_labels.values()) == 1.0
    # 1024-pixel frame -> 64-pixel PNG: x 1/16; (x, y, w, h) -> (x1, y1, x2, y2)
    assert [(f, b.tolist()) for f, b in s0.meta["finding_boxes"]] == [("cardiomegaly", [20.0, 30.0, 45.0, 46.0])]
    assert [(f, b.tolist()) for f, b in s2.meta["finding_boxes"]] == [("infiltration", [10.0, 4.0, 16.0, 12.0])]
    assert s1.meta["finding_boxes"] == [] and s0.meta["view"] == "PA" and s0.meta["original_size"] == (2682, 2749)
    assert len(NIHDataset(nih_config(nih, only_with_boxes=True))) == 2


def test_nih_unknown_label(nih: Path):
    entry = nih / "Data_Entry_2017.csv"
    entry.write_text(entry.read_text().replace("Cardiomegaly|Emphysema", "Cardiomegaly|Pneumonitis"))
    with pytest.raises(LabelError, match=r"Data_Entry_2017\.csv:3"):
        NIHDataset(nih_config(nih))


# -- IU X-ray ----------------------------------------------------------------------------------
@pytest.fixture
def iu(data: Path) -> Path:
    root = data / "iu"
    for image_id in ("CXR9001_IM-0001-1001", "CXR9001_IM-0001-2001", "CXR9002_IM-0002-1001"):
        write_png(root / "images" / f"{image_id}.png")
    return root


def test_iu_reports_images_and_region_labels(iu: Path):
    ds = IUXrayDataset(IUXrayConfig(reports=iu / "ecgen-radiology", images_dir=iu / "images"))
    assert [ds[n].source_id for n in range(len(ds))] == [
        "CXR9001_IM-0001-1001", "CXR9001_IM-0001-2001", "CXR9002_IM-0002-1001"]
    s = ds[0]
    assert s.image_labels == {"lung_opacity": 1.0, "tortuous_aorta": 1.0, "elevated_hemidiaphragm": 1.0}
    assert s.region_labels == {"left_lower_lung_zone": {"lung_opacity": 1.0},
                               "aortic_arch": {"tortuous_aorta": 1.0},
                               "right_hemidiaphragm": {"elevated_hemidiaphragm": 1.0}}
    assert s.meta["unmapped_labels"] == {"No Indexing": 1.0} and s.meta["automatic_tags"] == ["Pulmonary Atelectasis"]
    assert ds[1].image_labels == s.image_labels  # both views of a report share its labels
    assert ds[2].image_labels == {"no_finding": 1.0} and ds[2].region_labels == {}
    assert "Normal chest" in ds[2].meta["sections"]["IMPRESSION"]


def test_iu_unknown_tag_names_report(iu: Path):
    xml = iu / "ecgen-radiology" / "2.xml"
    xml.write_text(xml.read_text().replace("<major>normal</major>", "<major>Dragon/left</major>"))
    with pytest.raises(LabelError) as info:
        IUXrayDataset(IUXrayConfig(reports=iu / "ecgen-radiology", images_dir=iu / "images"))
    assert "Dragon" in str(info.value) and "2.xml" in str(info.value)


def nlmcxr_archive() -> Path:
    import torchxrayvision as txv  # a dependency: its data folder ships the IU X-ray reports
    path = Path(os.path.dirname(txv.__file__)) / "data" / "NLMCXR_reports.tgz"
    if not path.is_file():
        pytest.skip("torchxrayvision ships no NLMCXR_reports.tgz")
    return path


def test_iu_real_reports_from_torchxrayvision():
    """A few of the real IU X-ray reports (read from the installed package, never copied)."""
    reports = {}
    for name, xml in iter_report_files(nlmcxr_archive()):
        report = parse_iu_report(xml, name)
        reports[report.report_id] = report
        if len(reports) == 40:
            break
    first = reports["CXR1"]
    assert first.tags == ["normal"] and first.image_labels == {"no_finding": 1.0}
    assert first.image_ids == ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"]
    assert any(r.region_labels for r in reports.values())
    # every tag lands somewhere: a label, or a known head without a concept (never silently dropped)
    assert all(r.image_labels or r.unmapped_labels for r in reports.values() if r.tags)


def test_iu_every_real_tag_is_in_the_vocabulary():
    """All 3,955 real reports parse with unknown='raise': the IU tables cover the whole vocabulary."""
    parser = IUTagParser("raise")
    count = sum(1 for name, xml in iter_report_files(nlmcxr_archive()) if parse_iu_report(xml, name, parser))
    assert count == 3955


# -- folder ------------------------------------------------------------------------------------
def test_folder_reads_dicom_png_jpeg_recursively(tmp_path: Path):
    write_png(tmp_path / "a" / "one.png", 32, 16)
    write_jpeg(tmp_path / "b" / "c" / "two.JPG", 16, 16)
    write_dicom(tmp_path / "three.dcm", 8, 8)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = FolderDataset(FolderConfig(root=tmp_path))
    assert [ds[n].source_id for n in range(len(ds))] == ["a/one.png", "b/c/two.JPG", "three.dcm"]
    assert ds[0].image.shape == (1, 16, 32) and ds[2].image.shape == (1, 8, 8)
    assert ds[0].image_labels == {} and not ds[0].box_present.any() and ds[0].source == "folder"
    with pytest.raises(DataError, match="not a folder"):
        FolderDataset(FolderConfig(root=tmp_path / "nowhere"))

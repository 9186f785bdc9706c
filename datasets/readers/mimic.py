"""MIMIC-CXR-JPG images with Chest ImaGenome scene graphs and, optionally, the MIMIC CheXpert labels.

Layout (MIMIC-CXR-JPG 2.0/2.1): ``<root>/files/p10/p10000032/s50414267/<dicom_id>.jpg``; subject,
study and dicom ids are read from that path.

Chest ImaGenome 1.0.0 scene graph, one per image: ``<scene_graph_dir>/<dicom_id>_SceneGraph.json``.
What this reader uses of it (the published format as we know it; assumptions marked):

* ``"image_id"``: the dicom_id;
* ``"objects"``: ``[{"object_id", "bbox_name", "x1", "y1", "x2", "y2", "width", "height",
  "original_x1", "original_y1", "original_x2", "original_y2", "original_width", "original_height",
  ...}]``. ``x1..`` are in the 224 x 224 resized frame, ``original_*`` in pixels of the original
  image; we use ``original_*``, scaled to the loaded image by the original size, taken from
  ``mimic-cxr-2.0.0-metadata.csv`` (``Rows``/``Columns``) when given, else assumed to be the
  loaded image's own size (MIMIC-CXR-JPG keeps the DICOM's resolution). Assumption: the
  ``original_width``/``original_height`` keys are box sizes, not the image size, so they are
  not used for scaling.
* ``"attributes"``: ``[{"bbox_name", "attributes": [[ "<category>|<yes|no>|<name>", ...], ...],
  "phrases": [...], ...}]``, one inner list per report phrase. Categories anatomicalfinding,
  disease, technicalassessment, tubesandlines, devices are mapped through
  ``labels.IMAGENOME_ATTRIBUTES``; the "nlp" category (normal / abnormal summaries) is read but
  never mapped (``labels.IMAGENOME_SUMMARY_CATEGORIES``).

``region_labels[region]`` holds every finding a phrase of that region says yes or no to, "yes"
winning over "no" (union over phrases); ``image_labels`` is the union over regions, yes winning.
Attributes of a bbox_name with no box among the 29 (e.g. "left arm") count for the image only.
An unknown bbox_name or attribute name raises ``LabelError`` (``unknown="skip"``: logged, counted).

``chexpert_csv`` (``mimic-cxr-2.0.0-chexpert.csv``: ``subject_id,study_id,<14 labels>``) is joined
by study id: its labels go to ``meta["chexpert_labels"]`` and fill ``image_labels`` for ids the
scene graph does not mention (the scene graph wins where both speak). Without scene graphs the
data set is every JPG under ``files/`` and the CheXpert labels are the image labels.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from anatomy_vlm.datasets.labels import (
    CHEXPERT_LABEL_IDS,
    IMAGENOME_ATTRIBUTES,
    IMAGENOME_REGIONS,
    IMAGENOME_SUMMARY_CATEGORIES,
    DataError,
    LabelMapper,
    UncertaintyPolicy,
)
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, Transform, XrayDataset
from anatomy_vlm.datasets.readers.chexpert import parse_chexpert_row
from anatomy_vlm.datasets.sample import NUM_REGIONS, REGION_IDS

_PATH_RE = re.compile(r"p(\d+)/s(\d+)/([^/]+)\.jpg$")


@dataclass
class MimicConfig(ReaderConfig):
    root: Path = Path("mimic-cxr-jpg")  # holds files/p10/...
    scene_graph_dir: Path | None = None  # Chest ImaGenome silver_dataset/scene_graph; None: all JPGs
    metadata_csv: Path | None = None  # mimic-cxr-2.0.0-metadata.csv (original Rows/Columns per dicom_id)
    chexpert_csv: Path | None = None  # mimic-cxr-2.0.0-chexpert.csv
    uncertainty: UncertaintyPolicy = UncertaintyPolicy.U_IGNORE  # for the CheXpert labels
    blank_value: float | None = None  # a blank CheXpert cell: None leaves it out, 0.0 reads it as negative


@dataclass
class SceneGraph:
    """What one Chest ImaGenome scene graph gives, boxes in original-image pixels."""

    boxes: torch.Tensor  # [29, 4] float32 (x1, y1, x2, y2)
    box_present: torch.Tensor  # [29] bool
    region_labels: dict[str, dict[str, float]]
    image_labels: dict[str, float]
    meta: dict[str, object]


def _merge(into: dict[str, float], concept: str, value: float) -> None:
    into[concept] = max(value, into.get(concept, 0.0))  # yes (1) wins over no (0)


def parse_scene_graph(data: dict, path: Path, regions: LabelMapper, attributes: LabelMapper) -> SceneGraph:
    """Parse one ``*_SceneGraph.json`` dict; ``path`` names it in errors."""
    boxes = torch.zeros(NUM_REGIONS, 4, dtype=torch.float32)
    present = torch.zeros(NUM_REGIONS, dtype=torch.bool)
    for obj in data.get("objects", []):
        name = obj.get("bbox_name")
        region = regions.map(str(name), path)
        if region is None:
            continue
        try:
            box = [float(obj[f"original_{k}"]) for k in ("x1", "y1", "x2", "y2")]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: object {name!r} lacks original_x1..original_y2 ({e})") from e
        i = REGION_IDS.index(region)
        boxes[i], present[i] = torch.tensor(box), True
    region_labels: dict[str, dict[str, float]] = {}
    image_labels: dict[str, float] = {}
    summaries: list[str] = []
    unmapped: dict[str, float] = {}
    for entry in data.get("attributes", []):
        region = regions.map(str(entry.get("bbox_name")), path)
        for phrase_attributes in entry.get("attributes", []):
            for attribute in phrase_attributes:
                parts = attribute.split("|")
                if len(parts) != 3 or parts[1] not in ("yes", "no"):
                    raise DataError(f"{path}: attribute {attribute!r} is not '<category>|yes|<name>' or '...|no|...'")
                category, polarity, name = parts
                if category in IMAGENOME_SUMMARY_CATEGORIES:
                    summaries.append(attribute)
                    continue
                concept = attributes.map(name, path)
                value = 1.0 if polarity == "yes" else 0.0
                if concept is None:
                    if attributes.known(name):
                        unmapped[name] = max(value, unmapped.get(name, 0.0))
                    continue
                if region is not None:
                    _merge(region_labels.setdefault(region, {}), concept, value)
                _merge(image_labels, concept, value)
    meta = {"summary_attributes": summaries, "unmapped_labels": unmapped,
            "study_id": data.get("study_id"), "patient_id": data.get("patient_id"), "view": data.get("viewpoint")}
    return SceneGraph(boxes, present, region_labels, image_labels, meta)


class MimicCxrDataset(XrayDataset):
    """MIMIC-CXR-JPG images, with Chest ImaGenome region boxes and labels when given."""

    source = "mimic-cxr"

    def __init__(self, config: MimicConfig, transform: Transform | None = None):
        root = Path(config.root)
        images: dict[str, tuple[Path, str, str]] = {}  # dicom_id -> (path, subject_id, study_id)
        for path in (root / "files").rglob("*.jpg"):
            match = _PATH_RE.search(path.as_posix())
            if match:
                images[match.group(3)] = (path, match.group(1), match.group(2))
        sizes = self._read_sizes(Path(config.metadata_csv)) if config.metadata_csv else {}
        chexpert = self._read_chexpert(config) if config.chexpert_csv else {}

        records = []
        if config.scene_graph_dir is not None:
            regions = LabelMapper(IMAGENOME_REGIONS, "Chest ImaGenome region", config.unknown)
            attributes = LabelMapper(IMAGENOME_ATTRIBUTES, "Chest ImaGenome attribute", config.unknown)
            graph_paths = sorted(Path(config.scene_graph_dir).glob("*_SceneGraph.json"))
            for graph_path in graph_paths:
                try:
                    data = json.loads(graph_path.read_text())
                except (OSError, json.JSONDecodeError) as e:
                    raise DataError(f"{graph_path}: cannot read the scene graph ({e})") from e
                dicom_id = str(data.get("image_id") or graph_path.name.removesuffix("_SceneGraph.json"))
                graph = parse_scene_graph(data, graph_path, regions, attributes)
                path, subject, study = images.get(dicom_id, (root / "files" / f"{dicom_id}.jpg", "", ""))
                study = study or str(graph.meta.get("study_id") or "")
                records.append(self._record(dicom_id, path, subject, study, sizes, chexpert, graph))
            self.unknown_labels = dict(regions.unknown_counts) | dict(attributes.unknown_counts)
        else:
            for dicom_id, (path, subject, study) in sorted(images.items()):
                records.append(self._record(dicom_id, path, subject, study, sizes, chexpert, None))
            self.unknown_labels = {}
        super().__init__(records, config, transform)

    @staticmethod
    def _record(dicom_id: str, path: Path, subject: str, study: str, sizes: dict, chexpert: dict,
                graph: SceneGraph | None) -> Record:
        study_labels = chexpert.get(study.lstrip("s"), {})
        meta: dict[str, object] = {"subject_id": subject, "study_id": study, "dicom_id": dicom_id}
        if chexpert:
            meta["chexpert_labels"] = dict(study_labels)
        if graph is None:
            return Record(image_path=path, source_id=dicom_id, image_labels=dict(study_labels), meta=meta)
        meta.update({k: v for k, v in graph.meta.items() if k not in meta or not meta[k]})
        meta["scene_graph_labels"] = dict(graph.image_labels)
        labels = {**study_labels, **graph.image_labels}  # the scene graph wins where both speak
        # Boxes are in original pixels; the frame is the original size when known (Columns, Rows).
        return Record(image_path=path, source_id=dicom_id, boxes=graph.boxes, box_present=graph.box_present,
                      image_labels=labels, region_labels=graph.region_labels, frame=sizes.get(dicom_id), meta=meta)

    @staticmethod
    def _read_sizes(path: Path) -> dict[str, tuple[float, float]]:
        """dicom_id -> (Columns, Rows) of the original DICOM, from mimic-cxr-2.0.0-metadata.csv."""
        if not path.is_file():
            raise DataError(f"{path}: metadata CSV not found")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"dicom_id", "Rows", "Columns"} <= set(reader.fieldnames or []):
                raise DataError(f"{path}: needs dicom_id, Rows and Columns columns")
            return {row["dicom_id"]: (float(row["Columns"]), float(row["Rows"])) for row in reader}

    @staticmethod
    def _read_chexpert(config: MimicConfig) -> dict[str, dict[str, float]]:
        """study_id (digits) -> {concept id: value} under ``config.uncertainty``."""
        path = Path(config.chexpert_csv)  # type: ignore[arg-type]
        if not path.is_file():
            raise DataError(f"{path}: CheXpert label CSV not found")
        mapper = LabelMapper(CHEXPERT_LABEL_IDS, "CheXpert", config.unknown)
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if not {"subject_id", "study_id"} <= set(columns):
                raise DataError(f"{path}: needs subject_id and study_id columns")
            label_columns = [(c, mapper.map(c, path)) for c in columns if c not in ("subject_id", "study_id")]
            return {row["study_id"].lstrip("s"): parse_chexpert_row(row, label_columns, config.uncertainty,
                                                                   f"{path}:{line}", config.blank_value)
                    for line, row in enumerate(reader, start=2)}

"""VinDr-CXR (Nguyen et al. 2022, PhysioNet 1.0.0): DICOM images, finding boxes and image labels.

* ``annotations_{train,test}.csv``: ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max`` (the
  Kaggle release adds ``class_id``; the test split has no ``rad_id``); one row per box and
  radiologist, "No finding" rows with empty coordinates. Boxes are in the DICOM's own pixels and
  go to ``meta["finding_boxes"]`` as ``(finding id, (x1, y1, x2, y2))``, one per radiologist's
  box (``meta["finding_box_raters"]`` says whose); they are findings, not regions, so the 29
  region boxes stay absent.
* ``image_labels_{train,test}.csv``: ``image_id,rad_id,<22 local + 6 global labels>`` of 0/1.
  Train images have three readers: ``rad_aggregation`` "any" (default: positive if one reader
  says so) or "majority". Without this file, ``image_labels`` holds the annotated classes as 1.0
  and nothing else (no negatives are invented).

Labels without an ontology concept (Aortic enlargement, Calcification, Other lesion, Other
disease(s)) go to ``meta["unmapped_labels"]`` with their value. Images: ``images_dir/<image_id>
<image_suffix>`` (VinDr ships ``.dicom``), read through ``read_image`` (MONOCHROME1 inverted).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from anatomy_vlm.datasets.labels import VINDR_LABELS, DataError, LabelMapper
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, Transform, XrayDataset


@dataclass
class VinDrConfig(ReaderConfig):
    annotations_csv: Path = Path("annotations_train.csv")
    image_labels_csv: Path | None = None  # image_labels_train.csv; None: labels from annotations only
    images_dir: Path = Path("train")
    image_suffix: str = ".dicom"
    rad_aggregation: Literal["any", "majority"] = "any"  # how the readers' image labels combine


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DataError(f"{path}: CSV not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


class VinDrDataset(XrayDataset):
    """VinDr-CXR images with image labels and finding boxes."""

    source = "vindr-cxr"
    gives_finding_boxes = True

    def __init__(self, config: VinDrConfig, transform: Transform | None = None):
        if config.rad_aggregation not in ("any", "majority"):
            raise ValueError(f"rad_aggregation must be 'any' or 'majority', got {config.rad_aggregation!r}")
        mapper = LabelMapper(VINDR_LABELS, "VinDr-CXR", config.unknown)
        ann_path = Path(config.annotations_csv)
        columns, rows = _read_csv(ann_path)
        missing = {"image_id", "class_name", "x_min", "y_min", "x_max", "y_max"} - set(columns)
        if missing:
            raise DataError(f"{ann_path}: missing column(s) {sorted(missing)}")
        order: list[str] = []
        boxes: dict[str, list] = defaultdict(list)
        raters: dict[str, list] = defaultdict(list)
        annotated: dict[str, dict[str, float]] = defaultdict(dict)
        unmapped: dict[str, dict[str, float]] = defaultdict(dict)
        for line, row in enumerate(rows, start=2):
            image_id, name = row["image_id"], row["class_name"]
            if image_id not in boxes:
                order.append(image_id)
                boxes[image_id] = []  # a "No finding" image has an entry too
            concept = mapper.map(name, f"{ann_path}:{line}")
            if concept is None:
                if mapper.known(name):
                    unmapped[image_id][name] = 1.0
                continue
            annotated[image_id][concept] = 1.0
            coords = [row[k].strip() for k in ("x_min", "y_min", "x_max", "y_max")]
            if all(coords):
                try:
                    box = tuple(float(c) for c in coords)
                except ValueError as e:
                    raise DataError(f"{ann_path}:{line}: bad box {coords}: {e}") from e
                boxes[image_id].append((concept, box))
                raters[image_id].append(row.get("rad_id", ""))
            elif any(coords):
                raise DataError(f"{ann_path}:{line}: box of {name!r} has empty coordinate(s): {coords}")

        labels = annotated
        if config.image_labels_csv is not None:
            labels = self._image_labels(Path(config.image_labels_csv), mapper, config.rad_aggregation, order, unmapped)

        records = [
            Record(image_path=Path(config.images_dir) / f"{image_id}{config.image_suffix}", source_id=image_id,
                   image_labels=labels.get(image_id, {}), finding_boxes=boxes[image_id], frame=None,
                   meta={"finding_box_raters": raters[image_id], "unmapped_labels": unmapped.get(image_id, {})})
            for image_id in order
        ]
        self.unknown_labels = dict(mapper.unknown_counts)
        super().__init__(records, config, transform)

    @staticmethod
    def _image_labels(path: Path, mapper: LabelMapper, aggregation: str, order: list[str],
                      unmapped: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """image_id -> {concept id: 0/1} combined over the radiologists; adds images only here to ``order``."""
        columns, rows = _read_csv(path)
        if "image_id" not in columns:
            raise DataError(f"{path}: no image_id column")
        label_columns = [(c, mapper.map(c, path)) for c in columns if c not in ("image_id", "rad_id")]
        votes: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for line, row in enumerate(rows, start=2):
            for column, _ in label_columns:
                cell = row[column].strip()
                if cell not in ("0", "1", "0.0", "1.0"):
                    raise DataError(f"{path}:{line}: column {column!r} is {cell!r}, expected 0 or 1")
                votes[row["image_id"]][column].append(float(cell))
        out: dict[str, dict[str, float]] = {}
        for image_id, by_column in votes.items():
            if image_id not in order:
                order.append(image_id)
            combined = {}
            for column, concept in label_columns:
                v = by_column[column]
                value = float(any(v)) if aggregation == "any" else float(sum(v) * 2 > len(v))
                if concept is None:
                    if mapper.known(column):
                        unmapped.setdefault(image_id, {})[column] = value
                    continue
                # Two columns may share a concept: a positive one wins.
                combined[concept] = max(value, combined.get(concept, 0.0))
            out[image_id] = combined
        return out

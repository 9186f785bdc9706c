"""NIH ChestX-ray14 (Wang et al. 2017): ``Data_Entry_2017.csv`` labels and ``BBox_List_2017.csv`` boxes.

``Data_Entry_2017.csv``: ``Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient
Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]`` -- the bracketed
headers hold a comma, so the file really has two columns each for width/height and x/y spacing
(read by position). ``Finding Labels`` is pipe-separated ("Cardiomegaly|Emphysema", or "No
Finding"). ChestX-ray14 labels are mined from reports with no uncertain class, so every one of the
15 labels is given: 1.0 if listed, 0.0 otherwise.

``BBox_List_2017.csv``: ``Image Index,Finding Label,Bbox [x,y,w,h]`` (four numeric columns,
trailing empty ones) in pixels of the released 1024 x 1024 PNGs (``bbox_frame``); they go into
``meta["finding_boxes"]`` as ``(finding id, (x1, y1, x2, y2))`` scaled to the loaded image. No
region boxes. Images are found by file name anywhere under ``images_dir`` (the release splits
them over ``images_001/images`` ... ``images_012/images``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from anatomy_vlm.datasets.labels import NIH_BBOX_LABELS, NIH_LABELS, DataError, LabelMapper
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, Transform, XrayDataset


@dataclass
class NIHConfig(ReaderConfig):
    data_entry_csv: Path = Path("Data_Entry_2017.csv")
    images_dir: Path = Path("images")  # searched recursively for each Image Index
    bbox_csv: Path | None = None  # BBox_List_2017.csv, optional
    bbox_frame: tuple[float, float] = (1024.0, 1024.0)  # (width, height) the BBox list is in
    only_with_boxes: bool = False  # keep only the images the BBox list covers (the 880-image subset)


class NIHDataset(XrayDataset):
    """ChestX-ray14 images with 15 binary labels and, where given, finding boxes."""

    source = "nih-chestxray14"
    gives_finding_boxes = True

    def __init__(self, config: NIHConfig, transform: Transform | None = None):
        mapper = LabelMapper(NIH_LABELS, "NIH ChestX-ray14", config.unknown)
        all_ids = sorted({v for v in NIH_LABELS.values() if v is not None})
        boxes = self._read_boxes(config) if config.bbox_csv is not None else {}
        index = {p.name: p for p in Path(config.images_dir).rglob("*") if p.is_file()}
        path = Path(config.data_entry_csv)
        if not path.is_file():
            raise DataError(f"{path}: Data_Entry CSV not found")
        records = []
        with path.open(newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if not header or header[0] != "Image Index" or header[1] != "Finding Labels":
                raise DataError(f"{path}: not a Data_Entry_2017 CSV (header {header})")
            for line, row in enumerate(rows, start=2):
                if not row:
                    continue
                if len(row) < 11:
                    raise DataError(f"{path}:{line}: expected 11 columns, got {len(row)}")
                name = row[0]
                if config.only_with_boxes and name not in boxes:
                    continue
                positives = {mapper.map(lab, f"{path}:{line}") for lab in row[1].split("|") if lab.strip()}
                labels = {cid: (1.0 if cid in positives else 0.0) for cid in all_ids}
                meta = {"follow_up": int(row[2]), "patient_id": row[3], "age": row[4], "sex": row[5],
                        "view": row[6], "original_size": (int(row[7]), int(row[8])),
                        "original_pixel_spacing": (float(row[9]), float(row[10]))}
                records.append(Record(image_path=index.get(name, Path(config.images_dir) / name), source_id=name,
                                      image_labels=labels, finding_boxes=boxes.get(name, []),
                                      frame=config.bbox_frame, meta=meta))
        self.unknown_labels = dict(mapper.unknown_counts)
        super().__init__(records, config, transform)

    @staticmethod
    def _read_boxes(config: NIHConfig) -> dict[str, list[tuple[str, tuple[float, float, float, float]]]]:
        """Image Index -> [(finding id, (x1, y1, x2, y2)) in ``bbox_frame`` pixels]."""
        mapper = LabelMapper(NIH_BBOX_LABELS, "NIH ChestX-ray14 BBox", config.unknown)
        path = Path(config.bbox_csv)  # type: ignore[arg-type]
        if not path.is_file():
            raise DataError(f"{path}: BBox CSV not found")
        out: dict[str, list] = {}
        with path.open(newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if not header or header[:2] != ["Image Index", "Finding Label"]:
                raise DataError(f"{path}: not a BBox_List_2017 CSV (header {header})")
            for line, row in enumerate(rows, start=2):
                if not row:
                    continue
                try:
                    x, y, w, h = (float(v) for v in row[2:6])
                except ValueError as e:
                    raise DataError(f"{path}:{line}: bad box {row[2:6]}: {e}") from e
                finding = mapper.map(row[1], f"{path}:{line}")
                if finding is not None:
                    out.setdefault(row[0], []).append((finding, (x, y, x + w, y + h)))
        return out

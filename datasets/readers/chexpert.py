"""CheXpert-style label CSV (CheXpert ``train.csv``/``valid.csv``, and any CSV in its layout).

Columns: ``Path,Sex,Age,Frontal/Lateral,AP/PA,<the 14 CheXpert labels>``; ``Path`` is relative to
``root`` (e.g. ``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``). Label cells
are 1 / 0 / -1 / blank; -1 follows ``uncertainty`` (one policy, or one per label name), blank
leaves the label out of ``image_labels`` by default (``blank_value=0.0`` reads it as negative;
see ``datasets/labels.py``). Columns that are neither
metadata nor one of the 14 labels raise ``LabelError`` (or are skipped and counted under
``unknown="skip"``). No boxes: ``box_present`` is all False.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from anatomy_vlm.datasets.labels import (
    CHEXPERT_LABEL_IDS,
    DataError,
    LabelMapper,
    UncertaintyPolicy,
    label_value,
)
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, Transform, XrayDataset

METADATA_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")


@dataclass
class CheXpertConfig(ReaderConfig):
    csv_path: Path = Path("train.csv")  # the label CSV
    root: Path = Path(".")  # the folder the CSV's Path column is relative to
    # -1 handling: one policy for all labels, or {label name: policy} (labels not named: U-ignore)
    uncertainty: UncertaintyPolicy | dict[str, UncertaintyPolicy] = UncertaintyPolicy.U_IGNORE
    blank_value: float | None = None  # blank cell: None leaves the label out (unknown); 0.0 reads it as negative
    frontal_only: bool = False  # keep only rows whose Frontal/Lateral is "Frontal"
    extra_metadata: tuple[str, ...] = field(default_factory=tuple)  # further non-label columns to keep in meta


def policy_for(uncertainty: UncertaintyPolicy | dict[str, UncertaintyPolicy], label: str) -> UncertaintyPolicy:
    if isinstance(uncertainty, dict):
        return UncertaintyPolicy(uncertainty.get(label, UncertaintyPolicy.U_IGNORE))
    return UncertaintyPolicy(uncertainty)


def parse_chexpert_row(row: dict[str, str], label_columns: list[tuple[str, str | None]],
                       uncertainty: UncertaintyPolicy | dict[str, UncertaintyPolicy], where: str,
                       blank_value: float | None = None) -> dict[str, float]:
    """One row's label cells -> {concept id: value}; ``label_columns`` are (column, concept id or None).

    A blank cell gives ``blank_value`` (None: the label is left out).
    """
    labels: dict[str, float] = {}
    for column, concept in label_columns:
        if concept is None:
            continue
        try:
            value = label_value(row.get(column), policy_for(uncertainty, column))
        except ValueError as e:
            raise DataError(f"{where}: column {column!r}: {e}") from e
        if value is None:
            value = blank_value
        if value is not None:
            labels[concept] = value
    return labels


class CheXpertDataset(XrayDataset):
    """Images of a CheXpert-style CSV with their 14 labels under an uncertainty policy."""

    source = "chexpert"

    def __init__(self, config: CheXpertConfig, transform: Transform | None = None):
        mapper = LabelMapper(CHEXPERT_LABEL_IDS, "CheXpert", config.unknown)
        path = Path(config.csv_path)
        if not path.is_file():
            raise DataError(f"{path}: label CSV not found")
        records = []
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if "Path" not in columns:
                raise DataError(f"{path}: no 'Path' column (columns: {columns})")
            keep = set(METADATA_COLUMNS) | set(config.extra_metadata)
            label_columns = [(c, mapper.map(c, path)) for c in columns if c not in keep]
            for line, row in enumerate(reader, start=2):
                if config.frontal_only and row.get("Frontal/Lateral", "Frontal") != "Frontal":
                    continue
                labels = parse_chexpert_row(row, label_columns, config.uncertainty, f"{path}:{line}",
                                            config.blank_value)
                meta = {k: row[k] for k in columns if k in keep and k != "Path"}
                records.append(Record(image_path=Path(config.root) / row["Path"], source_id=row["Path"],
                                      image_labels=labels, meta=meta))
        self.unknown_labels = dict(mapper.unknown_counts)
        super().__init__(records, config, transform)

"""The common base of every dataset reader: records parsed once, images read on ``__getitem__``.

A reader parses its annotation files at construction into ``Record`` items (so a bad label or an
unknown region name fails at once, naming the file) and reads one image per ``__getitem__``
with ``anatomy_vlm.encoder.io.read_image``.

Bad-file policy (``on_error``), the same for every reader:

* ``"raise"`` (default): a missing image file raises ``DataError`` at construction; an image
  that cannot be decoded raises ``ImageReadError`` (its message names the file) when loaded.
* ``"skip"``: a missing image file is dropped at construction (logged with the file and the
  reason, listed in ``dataset.skipped``); an undecodable image found at load time is logged,
  listed in ``dataset.skipped`` once (it is not retried), and ``__getitem__`` returns the next
  readable index (wrapping around), so the length a sampler saw stays valid; that epoch then
  holds the next sample twice. With ``probe=True`` every image is decoded
  once at construction and the unreadable ones are dropped there instead (slow: off by default).

Boxes: a record keeps its boxes in the frame its source gives them in (``frame`` = (width,
height) of that frame, or ``None`` for "the loaded image's own pixels"); ``__getitem__`` scales
them to the loaded image, so ``XraySample.boxes`` are always pixels of ``XraySample.image``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import Dataset

from anatomy_vlm.datasets.labels import DataError, LabelError, UnknownPolicy
from anatomy_vlm.datasets.sample import NUM_REGIONS, LabelMap, XraySample
from anatomy_vlm.encoder.io import ImageReadError, read_image

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
Transform = Callable[[XraySample], XraySample]

__all__ = ["DataError", "LabelError", "OnError", "ReaderConfig", "Record", "Transform", "XrayDataset"]


@dataclass
class ReaderConfig:
    """Options every reader shares (each reader's config extends it)."""

    on_error: OnError = "raise"  # missing / undecodable image: raise, or log and skip (see module doc)
    unknown: UnknownPolicy = "raise"  # a label or region name in no table of datasets/labels.py
    probe: bool = False  # under on_error="skip": decode every image at construction, drop unreadable ones


@dataclass
class Record:
    """One image's annotations, before its pixels are read.

    ``boxes`` ``[29, 4]`` (x1, y1, x2, y2) and ``finding_boxes`` are in the ``frame`` pixel frame
    ((width, height)), or in the image's own pixels when ``frame`` is None.
    """

    image_path: Path
    source_id: str
    boxes: torch.Tensor | None = None  # [29, 4] float32
    box_present: torch.Tensor | None = None  # [29] bool
    image_labels: LabelMap = field(default_factory=dict)
    region_labels: dict[str, LabelMap] = field(default_factory=dict)
    finding_boxes: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)
    frame: tuple[float, float] | None = None
    meta: dict[str, object] = field(default_factory=dict)


class XrayDataset(Dataset):
    """A list of ``Record`` items read into ``XraySample`` on ``__getitem__``.

    Subclasses parse their files and call ``super().__init__(records, config, transform)``;
    ``source`` names the data set in every sample.
    """

    source: str = "unknown"
    gives_finding_boxes: bool = False  # VinDr, NIH: meta["finding_boxes"] is always set, maybe empty

    def __init__(self, records: list[Record], config: ReaderConfig, transform: Transform | None = None):
        if config.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {config.on_error!r}")
        self.config, self.transform = config, transform
        self.skipped: list[tuple[str, str]] = []  # (file, reason), in the order met
        self._unreadable: set[int] = set()  # record indices that failed to load (skip policy): not retried
        kept = []
        for record in records:
            if not record.image_path.is_file():
                self._bad(record.image_path, "image file not found", construction=True)
                continue
            if config.probe and config.on_error == "skip":
                try:
                    read_image(record.image_path)
                except ImageReadError as e:
                    self._bad(record.image_path, str(e), construction=True)
                    continue
            kept.append(record)
        self.records = kept

    def _bad(self, path: Path, reason: str, construction: bool) -> None:
        if self.config.on_error == "raise":
            raise DataError(f"{path}: {reason} (read with on_error='skip' to log and skip it)")
        log.warning("%s: skipping %s: %s", self.source, path, reason)
        self.skipped.append((str(path), reason))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> XraySample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        for step in range(len(self)):
            position = (index + step) % len(self)
            if position in self._unreadable:
                continue
            record = self.records[position]
            try:
                sample = self.load(record)
            except ImageReadError as e:
                if self.config.on_error == "raise":
                    raise
                self._bad(record.image_path, str(e), construction=False)
                self._unreadable.add(position)
                continue
            return self.transform(sample) if self.transform is not None else sample
        raise DataError(f"{self.source}: no readable image among {len(self)} records")

    def load(self, record: Record) -> XraySample:
        """Read ``record``'s image and scale its boxes to it."""
        read = read_image(record.image_path)
        image = read.image  # [1, H, W]
        height, width = image.shape[1:]
        sx, sy = (1.0, 1.0) if record.frame is None else (width / record.frame[0], height / record.frame[1])
        scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float32)
        boxes = record.boxes if record.boxes is not None else torch.zeros(NUM_REGIONS, 4)
        present = record.box_present if record.box_present is not None else torch.zeros(NUM_REGIONS, dtype=torch.bool)
        meta = dict(record.meta)
        meta["image_meta"] = read.meta
        if self.gives_finding_boxes:
            meta["finding_boxes"] = [(fid, torch.tensor(box, dtype=torch.float32) * scale)
                                     for fid, box in record.finding_boxes]
        return XraySample(
            image=image, source=self.source, source_id=record.source_id,
            boxes=(boxes.float() * scale).clone(), box_present=present.clone(),
            image_labels=dict(record.image_labels),
            region_labels={r: dict(v) for r, v in record.region_labels.items()}, meta=meta,
        )

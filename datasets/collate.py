"""Batching ``XraySample`` objects for a ``DataLoader`` (PyTorch's default collate cannot)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from anatomy_vlm.datasets.sample import XraySample


@dataclass
class XrayBatch:
    images: torch.Tensor  # [B, 1, H, W] float32 in [0, 1]
    boxes: torch.Tensor  # [B, 29, 4] float32 (x1, y1, x2, y2) pixels
    box_present: torch.Tensor  # [B, 29] bool
    image_labels: torch.Tensor  # [B, C] float32; NaN where a label is unknown for that image
    label_ids: list[str]  # the C concept ids, in column order
    samples: list[XraySample] = field(repr=False, default_factory=list)  # the originals (masks, meta, ...)

    def to(self, device: torch.device | str) -> "XrayBatch":
        return XrayBatch(self.images.to(device), self.boxes.to(device), self.box_present.to(device),
                         self.image_labels.to(device), self.label_ids, self.samples)


def collate_samples(samples: Sequence[XraySample], label_ids: Sequence[str] | None = None) -> XrayBatch:
    """Stack same-size samples; image labels become a [B, C] matrix over ``label_ids``.

    ``label_ids`` defaults to the sorted union of the batch's labels; pass the model's scored ids to
    get a fixed column order. A label an image does not give is NaN (unknown), not 0 (absent).
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    sizes = {tuple(s.image.shape) for s in samples}
    if len(sizes) > 1:
        raise ValueError(f"samples differ in size {sorted(sizes)}: resize them first (encoder.transforms.Resized)")
    ids = list(label_ids) if label_ids is not None else sorted({i for s in samples for i in s.image_labels})
    labels = torch.full((len(samples), len(ids)), float("nan"))
    column = {concept_id: j for j, concept_id in enumerate(ids)}
    for row, sample in enumerate(samples):
        for concept_id, value in sample.image_labels.items():
            if concept_id in column:
                labels[row, column[concept_id]] = value
    return XrayBatch(
        images=torch.stack([s.image for s in samples]),
        boxes=torch.stack([s.boxes for s in samples]),
        box_present=torch.stack([s.box_present for s in samples]),
        image_labels=labels,
        label_ids=ids,
        samples=list(samples),
    )

"""Batching ``XraySample`` objects for a ``DataLoader`` (PyTorch's default collate cannot).

The one place the label matrices are built: image labels ``[B, F]`` and region labels
``[B, R, F]`` over the model's finding ids (columns) and region ids (rows), NaN where a sample
gives no label (unknown is never negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from anatomy_vlm.datasets.sample import REGION_IDS, XraySample


@dataclass
class XrayBatch:
    images: torch.Tensor  # [B, 1, H, W] float32 in [0, 1]
    boxes: torch.Tensor  # [B, 29, 4] float32 (x1, y1, x2, y2) pixels
    box_present: torch.Tensor  # [B, 29] bool
    image_labels: torch.Tensor  # [B, F] float32; NaN where a label is unknown for that image
    label_ids: list[str]  # the F concept ids, in column order
    region_labels: torch.Tensor = None  # type: ignore[assignment]  # [B, R, F] float32, NaN where unknown
    region_ids: list[str] = field(default_factory=lambda: list(REGION_IDS))  # the R region ids, in row order
    samples: list[XraySample] = field(repr=False, default_factory=list)  # the originals (masks, meta, ...)

    def to(self, device: torch.device | str) -> "XrayBatch":
        return XrayBatch(self.images.to(device), self.boxes.to(device), self.box_present.to(device),
                         self.image_labels.to(device), self.label_ids, self.region_labels.to(device),
                         self.region_ids, self.samples)


def label_matrices(samples: Sequence[XraySample], label_ids: Sequence[str],
                   region_ids: Sequence[str] = REGION_IDS) -> tuple[torch.Tensor, torch.Tensor]:
    """``([B, F] image labels, [B, R, F] region labels)`` over ``label_ids`` and ``region_ids``; NaN = unknown."""
    column = {concept_id: j for j, concept_id in enumerate(label_ids)}
    row = {region: i for i, region in enumerate(region_ids)}
    image = torch.full((len(samples), len(column)), float("nan"))
    region = torch.full((len(samples), len(row), len(column)), float("nan"))
    for b, sample in enumerate(samples):
        for concept_id, value in sample.image_labels.items():
            if concept_id in column:
                image[b, column[concept_id]] = value
        for region_id, labels in sample.region_labels.items():
            if region_id in row:
                for concept_id, value in labels.items():
                    if concept_id in column:
                        region[b, row[region_id], column[concept_id]] = value
    return image, region


def collate_samples(samples: Sequence[XraySample], label_ids: Sequence[str] | None = None,
                    region_ids: Sequence[str] = REGION_IDS,
                    transform: Callable[[XraySample], XraySample] | None = None) -> XrayBatch:
    """Stack samples (after ``transform``, e.g. ``encoder.Preprocess.sample``, which brings any size to
    the model's); labels become matrices over ``label_ids`` (default: the sorted union of the batch's
    image labels) and ``region_ids``.
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    if transform is not None:
        samples = [transform(s) for s in samples]
    sizes = {tuple(s.image.shape) for s in samples}
    if len(sizes) > 1:
        raise ValueError(f"samples differ in size {sorted(sizes)}: pass transform=Preprocess(...).sample")
    ids = list(label_ids) if label_ids is not None else sorted({i for s in samples for i in s.image_labels})
    image_labels, region_labels = label_matrices(samples, ids, region_ids)
    return XrayBatch(
        images=torch.stack([s.image for s in samples]),
        boxes=torch.stack([s.boxes for s in samples]),
        box_present=torch.stack([s.box_present for s in samples]),
        image_labels=image_labels,
        label_ids=ids,
        region_labels=region_labels,
        region_ids=list(region_ids),
        samples=list(samples),
    )

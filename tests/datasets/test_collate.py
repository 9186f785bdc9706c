"""collate_samples: stacking, label columns, NaN for unknown labels, size checks."""

from __future__ import annotations

import math

import pytest
import torch

from anatomy_vlm.datasets.collate import collate_samples
from anatomy_vlm.datasets.sample import XraySample


def sample(name: str, labels: dict[str, float], size: int = 8) -> XraySample:
    return XraySample(image=torch.rand(1, size, size), source="test", source_id=name, image_labels=labels)


def test_batches_stack_and_labels_become_columns():
    batch = collate_samples([sample("a", {"cardiomegaly": 1.0}), sample("b", {"pleural_effusion": 0.0})])
    assert batch.images.shape == (2, 1, 8, 8) and batch.boxes.shape == (2, 29, 4)
    assert batch.label_ids == ["cardiomegaly", "pleural_effusion"]
    assert batch.image_labels[0, 0] == 1.0 and math.isnan(batch.image_labels[0, 1])
    assert batch.image_labels[1, 1] == 0.0 and math.isnan(batch.image_labels[1, 0])


def test_fixed_label_order_and_size_mismatch():
    batch = collate_samples([sample("a", {"cardiomegaly": 1.0})], label_ids=["pneumonia", "cardiomegaly"])
    assert batch.image_labels.tolist()[0][1] == 1.0 and math.isnan(batch.image_labels[0, 0])
    with pytest.raises(ValueError, match="differ in size"):
        collate_samples([sample("a", {}), sample("b", {}, size=16)])
    with pytest.raises(ValueError, match="empty"):
        collate_samples([])

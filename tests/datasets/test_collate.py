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


def test_region_labels_over_fixed_ids_and_transform():
    """Region labels become a [B, R, F] matrix over the given region and finding ids (NaN = unknown);
    a transform brings samples of any size to one before stacking."""
    from anatomy_vlm.encoder.preprocess import Preprocess, PreprocessConfig

    a = XraySample(image=torch.rand(1, 8, 8), source="test", source_id="a",
                   region_labels={"carina": {"pneumonia": 1.0, "not_scored": 1.0}, "abdomen": {"pneumonia": 0.0}})
    b = sample("b", {"pneumonia": 0.0}, size=12)
    batch = collate_samples([a, b], label_ids=["cardiomegaly", "pneumonia"], region_ids=["carina", "trachea"],
                            transform=Preprocess(PreprocessConfig(image_size=16)).sample)
    assert batch.images.shape == (2, 1, 16, 16) and batch.region_labels.shape == (2, 2, 2)
    assert batch.region_ids == ["carina", "trachea"] and batch.label_ids == ["cardiomegaly", "pneumonia"]
    assert batch.region_labels[0, 0, 1] == 1.0  # carina / pneumonia
    known = ~torch.isnan(batch.region_labels)
    assert int(known.sum()) == 1  # abdomen is not a row, not_scored not a column, b gives none
    assert batch.image_labels[1, 1] == 0.0 and torch.isnan(batch.image_labels[0]).all()

"""encoder.Preprocess: the one input contract. Boxes and masks follow the image; the inverse brings
boxes back to the original pixels; training and prediction feed identical tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from anatomy_vlm.datasets.sample import NUM_REGIONS, XraySample
from anatomy_vlm.encoder import Preprocess, PreprocessConfig, read_image


def _sample(h: int = 60, w: int = 90) -> XraySample:
    image = torch.zeros(1, h, w)
    image[:, 10:40, 20:50] = 1.0  # a bright block
    boxes = torch.zeros(NUM_REGIONS, 4)
    boxes[0] = torch.tensor([20.0, 10.0, 50.0, 40.0])
    present = torch.zeros(NUM_REGIONS, dtype=torch.bool)
    present[0] = True
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[10:40, 20:50] = True
    return XraySample(image=image, source="test", source_id="s", boxes=boxes, box_present=present,
                      masks={"block": mask}, meta={"pixel_spacing": (0.5, 0.5)})


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_image_shape_range_and_exact_box_round_trip(keep_aspect: bool) -> None:
    preprocess = Preprocess(PreprocessConfig(image_size=32, keep_aspect=keep_aspect))
    image = torch.rand(1, 48, 80)
    out, geometry = preprocess(image)
    assert out.shape == (1, 32, 32) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert type(out) is torch.Tensor  # not a MONAI MetaTensor leaking out
    boxes = torch.tensor([[4.0, 6.0, 60.0, 40.0], [0.0, 0.0, 80.0, 48.0]])
    on_input = preprocess.boxes_to_input(boxes, geometry) / 32  # normalised, as the model predicts
    assert torch.allclose(preprocess.boxes_to_image(on_input, geometry), boxes, atol=1e-4)


def test_letterbox_pads_symmetrically_and_keeps_aspect() -> None:
    preprocess = Preprocess(PreprocessConfig(image_size=40, keep_aspect=True, antialias=False))
    out, geometry = preprocess(torch.ones(1, 20, 40))
    assert geometry.scale_xy == (1.0, 1.0) and geometry.offset_xy == (0.0, 10.0)
    assert float(out[0, :10].sum()) == 0.0 and float(out[0, 30:].sum()) == 0.0  # padding is air (0)
    assert float(out[0, 10:30].min()) == 1.0


def test_inverse_clips_boxes_on_the_padding_to_the_image() -> None:
    preprocess = Preprocess(PreprocessConfig(image_size=40, keep_aspect=True))
    _, geometry = preprocess(torch.rand(1, 20, 40))
    back = preprocess.boxes_to_image(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), geometry)
    assert back.tolist() == [[0.0, 0.0, 40.0, 20.0]]


def test_downscaling_is_antialiased() -> None:
    noise = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))
    smooth, _ = Preprocess(PreprocessConfig(image_size=16))(noise)
    aliased, _ = Preprocess(PreprocessConfig(image_size=16, antialias=False))(noise)
    # bilinear alone averages 2x2 of every 4x4 block (std ~0.29/2); smoothing first averages more
    assert float(smooth.std()) < 0.8 * float(aliased.std())


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_sample_boxes_masks_and_spacing_follow_the_image(keep_aspect: bool) -> None:
    preprocess = Preprocess(PreprocessConfig(image_size=30, keep_aspect=keep_aspect, antialias=False))
    out = preprocess.sample(_sample())
    assert out.image.shape == (1, 30, 30)
    mask = out.masks["block"]
    assert mask.dtype == torch.bool and mask.shape == (30, 30)
    ys, xs = torch.nonzero(mask, as_tuple=True)
    x1, y1, x2, y2 = out.boxes[0].tolist()
    # the mapped box encloses exactly the mapped mask (pixel edges vs pixel indices)
    assert (x1, y1) == pytest.approx((float(xs.min()), float(ys.min())), abs=1.0)
    assert (x2, y2) == pytest.approx((float(xs.max()) + 1, float(ys.max()) + 1), abs=1.0)
    assert out.boxes[1:].abs().sum() == 0  # absent regions stay zero
    sx, sy = out.meta["geometry"].scale_xy
    assert out.meta["pixel_spacing"] == pytest.approx((0.5 / sy, 0.5 / sx))


def test_sample_at_input_size_is_unchanged() -> None:
    sample = _sample(30, 30)
    assert Preprocess(PreprocessConfig(image_size=30)).sample(sample) is sample


def test_bad_input_is_refused() -> None:
    preprocess = Preprocess(PreprocessConfig(image_size=16))
    with pytest.raises(ValueError, match=r"\[1, H, W\]"):
        preprocess(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        preprocess(torch.zeros(1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="positive"):
        PreprocessConfig(image_size=0)


def test_training_and_prediction_feed_identical_tensors(tmp_path) -> None:
    """A file read by the phantom data set and preprocessed for training is, bit for bit, the tensor
    the predictor makes of the same file."""
    from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
    from anatomy_vlm.datasets.phantom.generate import MANIFEST
    from anatomy_vlm.training.trainer import BatchCollate
    import json

    rng = np.random.default_rng(0)
    pixels = (rng.random((40, 56)) * 65535).astype(np.uint16)
    (tmp_path / "images").mkdir()
    Image.fromarray(pixels).save(tmp_path / "images" / "a.png")
    record = {"id": "a", "image": "images/a.png", "boxes": [[0.0, 0.0, 0.0, 0.0]] * NUM_REGIONS,
              "box_present": [False] * NUM_REGIONS, "image_labels": {}, "region_labels": {}}
    (tmp_path / MANIFEST).write_text(json.dumps(record) + "\n")

    preprocess = Preprocess(PreprocessConfig(image_size=32))

    class _Knowledge:  # what BatchCollate reads of a RegionKnowledge
        finding_ids, region_ids = ("f",), tuple(f"r{i}" for i in range(NUM_REGIONS))

    training = BatchCollate(preprocess, _Knowledge())([PhantomDataset(tmp_path)[0]]).images[0]
    predicted, _ = preprocess(read_image(tmp_path / "images" / "a.png").image)
    assert torch.equal(training, predicted)

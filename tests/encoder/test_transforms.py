"""encoder.transforms: boxes and masks follow the image; dict wrappers touch only their keys."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.datasets.sample import NUM_REGIONS, XraySample
from anatomy_vlm.encoder.transforms import (
    CheckIntensity,
    CheckIntensityd,
    ClipIntensity,
    ClipIntensityd,
    LetterboxPad,
    LetterboxPadd,
    Resize,
    Resized,
    apply_to_sample,
)


def test_resize_image_shape_range_and_exact_box_scaling() -> None:
    image = torch.rand(1, 40, 60)
    out = Resize((20, 90))(image)
    assert out.shape == (1, 20, 90) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    boxes = torch.tensor([[0.0, 0.0, 60.0, 40.0], [6.0, 4.0, 30.0, 10.0]])
    scaled = Resize((20, 90)).apply_boxes(boxes, (40, 60))
    torch.testing.assert_close(scaled, torch.tensor([[0.0, 0.0, 90.0, 20.0], [9.0, 2.0, 45.0, 5.0]]))
    assert Resize(32)(image).shape == (1, 32, 32)


def test_resize_is_antialiased() -> None:
    # A one-pixel checkerboard shrunk 3x averages to grey with antialiasing; plain bilinear samples
    # single pixels there and returns pure 0/1 aliasing.
    board = ((torch.arange(63)[:, None] + torch.arange(63)[None, :]) % 2).float()[None]
    out = Resize(21)(board)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=0.05)
    aliased = Resize(21, antialias=False)(board)
    assert float(aliased.max() - aliased.min()) == 1.0


def test_resize_masks_stay_binary_and_follow_the_box() -> None:
    mask = torch.zeros(40, 60, dtype=torch.bool)
    mask[10:30, 12:36] = True  # box (12, 10, 36, 30)
    out = Resize((80, 30)).apply_mask(mask, (40, 60))
    assert out.dtype == torch.bool and out.shape == (80, 30)
    rows, cols = torch.nonzero(out, as_tuple=True)
    # scaled box: x 6..18, y 20..60 exactly
    assert (int(cols.min()), int(cols.max()) + 1, int(rows.min()), int(rows.max()) + 1) == (6, 18, 20, 60)
    labels = torch.zeros(40, 60, dtype=torch.uint8)
    labels[:, 30:] = 7
    assert set(Resize(13).apply_mask(labels, (40, 60)).unique().tolist()) == {0, 7}


def test_letterbox_pads_to_square_and_shifts_boxes() -> None:
    image = torch.rand(1, 40, 60)
    pad = LetterboxPad()
    out = pad(image)
    assert out.shape == (1, 60, 60)
    torch.testing.assert_close(out[:, 10:50, :], image)  # centred: 10 rows above, 10 below
    assert float(out[:, :10].abs().sum()) == 0.0 and float(out[:, 50:].abs().sum()) == 0.0
    boxes = torch.tensor([[0.0, 0.0, 60.0, 40.0], [5.0, 5.0, 10.0, 20.0]])
    torch.testing.assert_close(pad.apply_boxes(boxes, (40, 60)),
                               torch.tensor([[0.0, 10.0, 60.0, 50.0], [5.0, 15.0, 10.0, 30.0]]))
    tall = LetterboxPad(side=64, align="center")
    assert tall.padding((64, 33)) == (15, 16, 0, 0)  # odd remainder goes right
    assert LetterboxPad(align="top_left").apply_boxes(boxes, (40, 60)).equal(boxes)
    mask = torch.ones(40, 60, dtype=torch.bool)
    padded = pad.apply_mask(mask, (40, 60))
    assert padded.dtype == torch.bool and int(padded.sum()) == 40 * 60 and bool(padded[10:50].all())
    with pytest.raises(ValueError, match="smaller"):
        LetterboxPad(side=50)(image)


def test_dict_wrappers_touch_only_named_keys() -> None:
    image, other = torch.rand(1, 40, 60), torch.rand(1, 40, 60)
    boxes, untouched_boxes = torch.tensor([[6.0, 4.0, 30.0, 10.0]]), torch.tensor([[6.0, 4.0, 30.0, 10.0]])
    mask = torch.zeros(40, 60, dtype=torch.bool)
    data = {"image": image, "other": other, "boxes": boxes, "raw_boxes": untouched_boxes, "mask": mask, "id": "x"}
    out = Resized(keys="image", size=(20, 30), box_keys="boxes", mask_keys="mask")(data)
    assert out["image"].shape == (1, 20, 30) and out["mask"].shape == (20, 30)
    torch.testing.assert_close(out["boxes"], torch.tensor([[3.0, 2.0, 15.0, 5.0]]))
    assert out["other"] is other and out["raw_boxes"] is untouched_boxes and out["id"] == "x"
    assert data["image"] is image  # the input dict is not modified
    lb = LetterboxPadd(keys=["image"], box_keys=["boxes"])(data)
    assert lb["image"].shape == (1, 60, 60) and lb["other"] is other and lb["mask"] is mask
    with pytest.raises(KeyError, match="missing"):
        Resized(keys="missing", size=8)(data)
    assert Resized(keys="missing", size=8, allow_missing_keys=True)(data)["image"] is image


def test_intensity_clip_and_check() -> None:
    image = torch.tensor([[[-0.5, 0.5, 1.5]]])
    torch.testing.assert_close(ClipIntensity()(image), torch.tensor([[[0.0, 0.5, 1.0]]]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CheckIntensity()(image)
    with pytest.raises(ValueError, match="float32"):
        CheckIntensity()(torch.zeros(1, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="channel"):
        CheckIntensity()(torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CheckIntensity()(torch.tensor([[[float("nan")]]]))
    good = torch.rand(1, 4, 4)
    assert CheckIntensity()(good) is good
    data = {"image": image, "label": image}
    clipped = ClipIntensityd(keys="image")(data)
    assert float(clipped["image"].max()) == 1.0 and clipped["label"] is image
    with pytest.raises(ValueError, match="'label'"):
        CheckIntensityd(keys=["image", "label"])(clipped)


def _sample() -> XraySample:
    boxes = torch.zeros(NUM_REGIONS, 4)
    present = torch.zeros(NUM_REGIONS, dtype=torch.bool)
    boxes[0] = torch.tensor([6.0, 4.0, 30.0, 20.0])
    present[0] = True
    heart = torch.zeros(40, 60, dtype=torch.bool)
    heart[4:20, 6:30] = True
    return XraySample(image=torch.rand(1, 40, 60), source="test", source_id="s1", boxes=boxes,
                      box_present=present, masks={"heart": heart}, meta={"pixel_spacing": (0.2, 0.2)})


def test_apply_to_sample_keeps_image_boxes_masks_consistent() -> None:
    sample = _sample()
    out = apply_to_sample(sample, [LetterboxPad(), Resize(30), CheckIntensity()])
    assert out.image.shape == (1, 30, 30) and out.masks["heart"].shape == (30, 30)
    # letterbox: +10 rows, then x0.5
    torch.testing.assert_close(out.boxes[0], torch.tensor([3.0, 7.0, 15.0, 15.0]))
    assert float(out.boxes[1:].abs().sum()) == 0.0 and out.box_present.equal(sample.box_present)
    rows, cols = torch.nonzero(out.masks["heart"], as_tuple=True)
    assert (int(cols.min()), int(cols.max()) + 1, int(rows.min()), int(rows.max()) + 1) == (3, 15, 7, 15)
    assert out.meta["pixel_spacing"] == pytest.approx((0.4, 0.4))
    assert len(out.meta["transforms"]) == 3
    assert sample.image.shape == (1, 40, 60) and sample.meta["pixel_spacing"] == (0.2, 0.2)  # input untouched


def test_apply_to_sample_refuses_shape_changing_non_geometric_step() -> None:
    with pytest.raises(ValueError, match="changed the image shape"):
        apply_to_sample(_sample(), lambda image: image[:, :10])

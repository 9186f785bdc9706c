"""CPU invariants of the ViT trunk (tiny config): shapes, interpolation, batch equality, errors, gradients."""

from __future__ import annotations

import time

import pytest
import torch

from anatomy_vlm.encoder.configs import ViTConfig
from anatomy_vlm.encoder.vit import ViT, interpolate_pos_embed


@pytest.fixture
def vit() -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig.preset("tiny", image_size=64, patch_size=16)).eval()


def test_presets():
    tiny, small, base = ViTConfig.preset("tiny"), ViTConfig.preset("small"), ViTConfig.preset("base")
    assert (tiny.width, tiny.depth, tiny.heads) == (192, 4, 3)
    assert (small.width, small.depth, small.heads) == (384, 12, 6)
    assert (base.width, base.depth, base.heads, base.patch_size) == (768, 12, 12, 16)
    assert ViTConfig.preset("base", image_size=(512, 448)).grid_size == (32, 28)
    assert ViTConfig().in_channels == 1


def test_shapes_64(vit: ViT):
    out = vit(torch.rand(2, 1, 64, 64))
    assert out["cls"].shape == (2, 192)
    assert out["patches"].shape == (2, 16, 192)
    assert out["grid"] == (4, 4)
    assert "patches_coarse" not in out


def test_multiscale(vit: ViT):
    out = vit(torch.rand(2, 1, 64, 64), return_multiscale=True)
    assert out["patches_coarse"].shape == (2, 4, 192)
    assert out["grid_coarse"] == (2, 2)
    grid = out["patches"].reshape(2, 4, 4, 192)
    torch.testing.assert_close(out["patches_coarse"][:, 0], grid[:, :2, :2].mean(dim=(1, 2)))
    # odd grid (5 x 6): the coarse grid rounds up and averages the cells that exist
    out = vit(torch.rand(1, 1, 80, 96), return_multiscale=True)
    assert out["grid"] == (5, 6) and out["grid_coarse"] == (3, 3)
    grid = out["patches"].reshape(1, 5, 6, 192)
    torch.testing.assert_close(out["patches_coarse"][:, 6], grid[:, 4, 0:2].mean(dim=1))


def test_position_interpolation_96(vit: ViT):
    out = vit(torch.rand(2, 1, 96, 96))
    assert out["patches"].shape == (2, 36, 192) and out["grid"] == (6, 6)
    assert torch.isfinite(out["patches"]).all()
    pos = vit.position_embedding((6, 6))
    assert pos.shape == (1, 37, 192)
    torch.testing.assert_close(pos[:, 0], vit.pos_embed[:, 0])  # CLS position kept
    # the configured grid uses the learnt table as is
    torch.testing.assert_close(vit.position_embedding((4, 4)), vit.pos_embed)


def test_interpolate_pos_embed_is_smooth_resize():
    # a table that is linear across the grid stays (nearly) linear after a bicubic resize
    h = torch.arange(4.0)[:, None].expand(4, 4)
    table = h.reshape(1, 16, 1)
    resized = interpolate_pos_embed(table, (4, 4), (8, 8)).reshape(8, 8)
    assert torch.all(resized[1:, 0] >= resized[:-1, 0] - 1e-5)  # monotone down the rows
    torch.testing.assert_close(resized[:, 0], resized[:, 5])  # constant along a row


def test_batch_equals_single(vit: ViT):
    images = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        batch = vit(images)
        for i in range(3):
            single = vit(images[i : i + 1])
            torch.testing.assert_close(batch["cls"][i : i + 1], single["cls"], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(batch["patches"][i : i + 1], single["patches"], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "shape",
    [(1, 3, 64, 64), (1, 1, 65, 64), (1, 1, 64, 72), (1, 64, 64)],
    ids=["three-channels", "height-not-divisible", "width-not-divisible", "3d"],
)
def test_bad_input_raises(vit: ViT, shape):
    with pytest.raises(ValueError):
        vit(torch.rand(*shape))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 100, "heads": 3},
        {"image_size": 60, "patch_size": 16},
        {"depth": 0},
        {"dropout": 1.0},
        {"image_size": (64, 64, 64)},
    ],
    ids=["width-not-divisible-by-heads", "size-not-divisible-by-patch", "zero-depth", "dropout-1", "3-sizes"],
)
def test_bad_config_raises(kwargs):
    base = {"image_size": 64, "patch_size": 16, "width": 96, "depth": 1, "heads": 3}
    with pytest.raises(ValueError):
        ViTConfig(**{**base, **kwargs})


def test_unknown_preset_and_config_type():
    with pytest.raises(ValueError):
        ViTConfig.preset("huge")
    with pytest.raises(ValueError):
        ViT({"width": 192})  # type: ignore[arg-type]


def test_finite_gradients():
    torch.manual_seed(0)
    vit = ViT(ViTConfig.preset("tiny", image_size=64, dropout=0.1)).train()
    out = vit(torch.rand(2, 1, 96, 64), return_multiscale=True)
    (out["cls"].sum() + out["patches"].sum() + out["patches_coarse"].sum()).backward()
    for name, p in vit.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert vit.pos_embed.grad.abs().sum() > 0  # interpolated positions still train the table


def test_tiny_is_fast(vit: ViT):
    images = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        vit(images)  # warm-up
        start = time.perf_counter()
        vit(images)
    assert time.perf_counter() - start < 0.5

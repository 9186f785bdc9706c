"""CPU invariants of the anatomy decoder and the RoI helpers (tiny configs)."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.encoder.anatomy_decoder import AnatomyDecoder
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig, RegionFeatureConfig, ViTConfig
from anatomy_vlm.encoder.box_ops import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, denormalize_boxes, normalize_boxes
from anatomy_vlm.encoder.roi import RegionFeature, region_features
from anatomy_vlm.encoder.vit import ViT

WIDTH = 48


def _config(**overrides) -> AnatomyDecoderConfig:
    return AnatomyDecoderConfig(**{"width": WIDTH, "depth": 2, "heads": 3, **overrides})


@pytest.fixture
def decoder() -> AnatomyDecoder:
    torch.manual_seed(0)
    return AnatomyDecoder(_config()).eval()


# -- decoder -----------------------------------------------------------------------------------
def test_shapes(decoder: AnatomyDecoder):
    out = decoder(torch.randn(2, 16, WIDTH))
    assert out["query_tokens"].shape == (2, 29, WIDTH)
    assert out["boxes"].shape == (2, 29, 4)
    assert out["presence_logits"].shape == (2, 29)
    assert "aux_outputs" not in out
    out = decoder(torch.randn(2, 16, WIDTH), return_intermediate=True)
    assert len(out["aux_outputs"]) == 1
    assert out["aux_outputs"][0]["boxes"].shape == (2, 29, 4)


def test_with_tiny_vit_at_64():
    torch.manual_seed(0)
    vit = ViT(ViTConfig.preset("tiny", image_size=64)).eval()
    decoder = AnatomyDecoder(AnatomyDecoderConfig.preset("tiny")).eval()
    out = decoder(vit(torch.rand(2, 1, 64, 64))["patches"])
    assert out["query_tokens"].shape == (2, 29, 192)


def test_boxes_within_unit_square(decoder: AnatomyDecoder):
    out = decoder(100.0 * torch.randn(4, 16, WIDTH))
    assert out["boxes"].min() >= 0.0 and out["boxes"].max() <= 1.0


def test_batch_equals_single(decoder: AnatomyDecoder):
    patches = torch.randn(3, 16, WIDTH)
    with torch.no_grad():
        batch = decoder(patches)
        for i in range(3):
            single = decoder(patches[i : i + 1])
            for key in ("query_tokens", "boxes", "presence_logits"):
                torch.testing.assert_close(batch[key][i : i + 1], single[key], atol=1e-5, rtol=1e-4)


def test_memory_projection():
    decoder = AnatomyDecoder(_config(memory_dim=30)).eval()
    assert decoder(torch.randn(1, 9, 30))["boxes"].shape == (1, 29, 4)
    with pytest.raises(ValueError):
        decoder(torch.randn(1, 9, WIDTH))


def test_region_init_sets_queries():
    cfg = _config(region_init_dim=12, num_regions=5)
    init_a, init_b = torch.randn(5, 12), torch.randn(5, 12)
    torch.manual_seed(0)
    dec_a = AnatomyDecoder(cfg, init_a)
    torch.manual_seed(0)
    dec_b = AnatomyDecoder(cfg, init_b)
    torch.manual_seed(0)
    dec_a2 = AnatomyDecoder(cfg, init_a)
    assert not torch.allclose(dec_a.queries(), dec_b.queries())
    torch.testing.assert_close(dec_a.queries(), dec_a2.queries())
    # at initialisation the queries are exactly the projected region embeddings
    torch.testing.assert_close(dec_a.queries(), dec_a.init_proj(init_a))
    # and they change what the decoder outputs
    patches = torch.randn(1, 4, WIDTH)
    assert not torch.allclose(dec_a.eval()(patches)["query_tokens"], dec_b.eval()(patches)["query_tokens"])
    # a model rebuilt without the tensor gets the embeddings back from the state dict
    rebuilt = AnatomyDecoder(cfg)
    rebuilt.load_state_dict(dec_a.state_dict())
    torch.testing.assert_close(rebuilt.queries(), dec_a.queries())


def test_queries_distinct_without_init(decoder: AnatomyDecoder):
    q = decoder.queries()
    assert q.shape == (29, WIDTH)
    assert torch.cdist(q, q).add(torch.eye(29)).min() > 0


@pytest.mark.parametrize(
    "cfg_kwargs, init_shape",
    [({"region_init_dim": 12}, (28, 12)), ({"region_init_dim": 12}, (29, 8)), ({}, (29, 12))],
    ids=["wrong-regions", "wrong-dim", "init-without-dim"],
)
def test_bad_region_init_raises(cfg_kwargs, init_shape):
    with pytest.raises(ValueError):
        AnatomyDecoder(_config(**cfg_kwargs), torch.randn(*init_shape))


@pytest.mark.parametrize(
    "kwargs", [{"width": 50, "heads": 3}, {"depth": 0}, {"box_head_layers": 0}, {"num_regions": 0}],
    ids=["width-not-divisible-by-heads", "zero-depth", "no-box-head", "no-regions"],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        _config(**kwargs)


def test_bad_patches_raise(decoder: AnatomyDecoder):
    for bad in (torch.randn(16, WIDTH), torch.randn(1, 16, WIDTH + 1), torch.randn(1, 0, WIDTH)):
        with pytest.raises(ValueError):
            decoder(bad)


# -- RoI helpers ---------------------------------------------------------------------------------
def test_box_round_trips():
    xyxy = torch.tensor([[[0.1, 0.2, 0.5, 0.9], [0.0, 0.0, 1.0, 1.0]]])
    torch.testing.assert_close(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(xyxy)), xyxy)
    cxcywh = torch.rand(2, 29, 4)
    torch.testing.assert_close(box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(cxcywh)), cxcywh)
    pixels = torch.tensor([[10.0, 20.0, 50.0, 90.0]])
    normalised = normalize_boxes(pixels, (100, 200))  # (H, W): x / 200, y / 100
    torch.testing.assert_close(normalised, torch.tensor([[0.05, 0.2, 0.25, 0.9]]))
    torch.testing.assert_close(denormalize_boxes(normalised, (100, 200)), pixels)
    with pytest.raises(ValueError):
        normalize_boxes(pixels, (0, 200))


def test_roi_of_constant_grid_is_constant():
    patches = torch.full((2, 12, 5), 3.5)  # grid 3 x 4
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.9], [0.5, 0.5, 0.5, 0.5]])  # last degenerate
    out = region_features(patches, (3, 4), boxes[None].expand(2, -1, -1))
    assert out.shape == (2, 3, 5)
    torch.testing.assert_close(out, torch.full((2, 3, 5), 3.5))


def test_roi_pools_where_the_box_is():
    # value of a patch = its column index; grid coordinates are pixel-edge (patch j spans [j, j+1])
    h, w = 4, 8
    ramp = torch.arange(float(w)).repeat(h)[None, :, None]  # [1, h*w, 1]
    boxes = torch.tensor([[[1 / w, 0.0, 3 / w, 1.0], [5 / w, 0.25, 7 / w, 0.5]]])  # columns 1..3 and 5..7
    out = region_features(ramp, (h, w), boxes, output_size=2)
    # bilinear over patch centres: mean column value = box centre - 0.5
    torch.testing.assert_close(out[0, :, 0], torch.tensor([1.5, 5.5]))


def test_roi_bad_arguments():
    with pytest.raises(ValueError):
        region_features(torch.randn(1, 12, 5), (3, 3), torch.rand(1, 2, 4))
    with pytest.raises(ValueError):
        region_features(torch.randn(1, 12, 5), (3, 4), torch.rand(2, 2, 4))
    with pytest.raises(ValueError):
        region_features(torch.randn(1, 12, 5), (3, 4), torch.rand(1, 2, 4), output_size=0)


def test_region_feature_shapes_and_context():
    cfg = RegionFeatureConfig(query_dim=WIDTH, patch_dim=24, out_dim=16)
    module = RegionFeature(cfg)
    q, patches, cls = torch.randn(2, 29, WIDTH), torch.randn(2, 12, 24), torch.randn(2, 24)
    boxes = box_cxcywh_to_xyxy(torch.rand(2, 29, 4))
    assert module(q, patches, (3, 4), boxes, cls).shape == (2, 29, 16)
    with pytest.raises(ValueError):
        module(q, patches, (3, 4), boxes)  # "cls" context without cls
    mean_module = RegionFeature(RegionFeatureConfig(query_dim=WIDTH, patch_dim=24, out_dim=16, context="mean"))
    assert mean_module(q, patches, (3, 4), boxes).shape == (2, 29, 16)
    with pytest.raises(ValueError):
        RegionFeatureConfig(query_dim=WIDTH, patch_dim=24, out_dim=16, context="max")  # type: ignore[arg-type]


def test_finite_gradients_end_to_end():
    torch.manual_seed(0)
    vit = ViT(ViTConfig.preset("tiny", image_size=64, depth=1))
    decoder = AnatomyDecoder(AnatomyDecoderConfig.preset("tiny", depth=1, region_init_dim=8), torch.randn(29, 8))
    feature = RegionFeature(RegionFeatureConfig(query_dim=192, patch_dim=192, out_dim=32))
    enc = vit(torch.rand(2, 1, 64, 64))
    dec = decoder(enc["patches"], return_intermediate=True)
    boxes = box_cxcywh_to_xyxy(dec["boxes"])
    regions = feature(dec["query_tokens"], enc["patches"], enc["grid"], boxes, enc["cls"])
    (regions.sum() + dec["boxes"].sum() + dec["presence_logits"].sum()).backward()
    for module in (vit, decoder, feature):
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name


def test_pixel_region_features_see_the_pixels_in_the_box():
    from anatomy_vlm.encoder.roi import pixel_region_features

    images = torch.zeros(1, 1, 32, 32)
    images[..., :16, :16] = 1.0  # the top-left quarter is bright
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]])
    pooled = pixel_region_features(images, boxes, 2)  # [1, 2, 4]
    assert pooled.shape == (1, 2, 4)
    assert torch.allclose(pooled[0, 0], torch.ones(4), atol=1e-5) and torch.allclose(pooled[0, 1], torch.zeros(4))


def test_region_feature_pixel_term_needs_images_and_depends_on_them():
    config = RegionFeatureConfig(query_dim=8, patch_dim=12, out_dim=6, pixel_roi_size=2)
    module = RegionFeature(config)
    query, patches = torch.randn(1, 3, 8), torch.randn(1, 4, 12)
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 0.9, 0.9], [0.5, 0.0, 1.0, 0.5]]])
    cls = torch.randn(1, 12)
    with pytest.raises(ValueError, match="pixel_roi_size"):
        module(query, patches, (2, 2), boxes, cls)
    dark, bright = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    bright[..., :8, :8] = 1.0
    out_dark = module(query, patches, (2, 2), boxes, cls, dark)
    out_bright = module(query, patches, (2, 2), boxes, cls, bright)
    assert out_dark.shape == (1, 3, 6)
    changed = (out_dark - out_bright).abs().sum(-1)[0]
    assert changed[0] > 0 and changed[2] == 0  # only the box over the bright quarter changes

"""Segmentation transfer: MONAI decoder shapes, frozen vs fine-tuned trunk, Dice sanity, bad input (CPU, tiny)."""

from __future__ import annotations

import math

import pytest
import torch

from anatomy_vlm.training.segmentation import (
    SegmentationConfig,
    SegmentationDecoder,
    SegmentationModel,
    build_segmentation_model,
    dice_scores,
    evaluate_segmentation,
    segmentation_transfer,
    train_segmentation,
)
from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
from anatomy_vlm.datasets.phantom.generate import generate_phantoms
from anatomy_vlm.datasets.sample import XraySample
from anatomy_vlm.encoder.configs import ViTConfig
from anatomy_vlm.encoder.vit import ViT

SIZE = 64
STRUCTURES = ("heart", "right_lung", "left_lung")


def tiny_vit(patch_size: int = 16, image_size: int = SIZE) -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig.preset("tiny", image_size=image_size, patch_size=patch_size, depth=1))


def config(**overrides) -> SegmentationConfig:
    base = {"steps": 3, "batch_size": 4, "device": "cpu", "feature_size": 8, "seed": 0}
    return SegmentationConfig(**{**base, **overrides})


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> PhantomDataset:
    root = tmp_path_factory.mktemp("seg_phantoms")
    generate_phantoms(8, root, seed=3, size=SIZE, progress=False)
    return PhantomDataset(root)


@pytest.fixture(scope="module")
def samples(phantoms) -> list[XraySample]:
    return [phantoms[i] for i in range(len(phantoms))]


# --- decoder and model -----------------------------------------------------------------------


@pytest.mark.parametrize("patch_size", [8, 16])
@pytest.mark.parametrize("image_skip", [True, False])
def test_decoder_shapes_and_gradients(patch_size, image_skip):
    torch.manual_seed(0)
    grid = (SIZE // patch_size, SIZE // patch_size)
    decoder = SegmentationDecoder(embed_dim=32, patch_size=patch_size, num_classes=3, feature_size=4,
                                  image_skip=image_skip)
    patches = torch.randn(2, grid[0] * grid[1], 32, requires_grad=True)
    images = torch.rand(2, 1, SIZE, SIZE)
    logits = decoder(patches, grid, images)
    assert logits.shape == (2, 3, SIZE, SIZE)
    logits.sum().backward()
    assert patches.grad is not None and torch.isfinite(patches.grad).all() and patches.grad.abs().sum() > 0


def test_decoder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="power of two"):
        SegmentationDecoder(embed_dim=32, patch_size=12, num_classes=3)
    decoder = SegmentationDecoder(embed_dim=32, patch_size=16, num_classes=3, feature_size=4)
    with pytest.raises(ValueError, match="do not fill the grid"):
        decoder(torch.randn(1, 15, 32), (4, 4), torch.rand(1, 1, SIZE, SIZE))
    with pytest.raises(ValueError, match="pass the images"):
        decoder(torch.randn(1, 16, 32), (4, 4))
    with pytest.raises(ValueError, match="images must be"):
        decoder(torch.randn(1, 16, 32), (4, 4), torch.rand(1, 1, 32, 32))


def test_model_runs_vit_then_decoder_and_freezes():
    vit = tiny_vit()
    model = build_segmentation_model(vit, config())
    assert isinstance(model, SegmentationModel) and model.structures == STRUCTURES
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert model.training and model.decoder.training and not model.backbone.training  # frozen stays eval
    images = torch.rand(3, 1, SIZE, SIZE)
    logits = model(images)
    assert logits.shape == (3, 3, SIZE, SIZE)
    logits.sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    # batch vs single: the same image gives the same logits alone or in a batch (eval mode)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(images)[1:2], model(images[1:2]), atol=1e-5)
    with pytest.raises(ValueError, match="output channels"):
        SegmentationModel(vit, model.decoder, ("heart",))


# --- metric sanity -------------------------------------------------------------------------------


def test_dice_perfect_empty_and_absent():
    target = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    target[0, 0, 2:6, 2:6] = True  # image 0: structure 0 present
    target[:, 1, :4] = True  # both images: structure 1 present
    # structure 2 is absent everywhere, and structure 0 is absent in image 1
    perfect = dice_scores(target, target)
    assert perfect.shape == (2, 3)
    assert perfect[0, 0] == 1 and perfect[0, 1] == 1 and perfect[1, 1] == 1
    assert torch.isnan(perfect[1, 0]) and torch.isnan(perfect[:, 2]).all()  # empty ground truth: not scored
    empty = dice_scores(torch.zeros_like(target), target)
    assert empty[0, 0] == 0 and empty[0, 1] == 0 and empty[1, 1] == 0
    half = target.clone()
    half[0, 0, 2:4] = False  # predict half of the square: Dice = 2 * 8 / (8 + 16)
    assert math.isclose(float(dice_scores(half, target)[0, 0]), 2 * 8 / 24, rel_tol=1e-5)


# --- training ------------------------------------------------------------------------------------


def test_frozen_arm_keeps_the_trunk_and_the_callers_model(phantoms):
    vit = tiny_vit()
    before = state(vit)
    model = train_segmentation(vit, phantoms, config(finetune=False))
    assert same_state(state(model.backbone), before)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert same_state(state(vit), before) and all(p.requires_grad for p in vit.parameters())
    assert model.backbone is not vit and not model.training


def test_finetuned_arm_changes_its_copy_only(phantoms):
    vit = tiny_vit()
    before = state(vit)
    model = train_segmentation(vit, phantoms, config(finetune=True, encoder_lr=1e-3))
    after = state(model.backbone)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "patch_embed.proj.weight" in changed and "blocks.0.attn.qkv.weight" in changed
    assert same_state(state(vit), before)  # the caller's trunk is untouched


def test_both_arms_start_the_decoder_alike(phantoms):
    # encoder_lr=0 keeps the fine-tuned trunk where it started, so the decoders can differ only
    # through their initial weights or their batches: the seed fixes both.
    vit = tiny_vit()
    frozen = train_segmentation(vit, phantoms, config(steps=2, finetune=False))
    tuned = train_segmentation(vit, phantoms, config(steps=2, finetune=True, encoder_lr=0.0))
    a, b = state(frozen.decoder), state(tuned.decoder)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    other = train_segmentation(vit, phantoms, config(steps=2, seed=1))
    assert not same_state(a, state(other.decoder))


@pytest.mark.slow
def test_loss_falls_and_dice_is_scored(phantoms):
    history: list[dict[str, float]] = []
    model = train_segmentation(tiny_vit(), phantoms, config(steps=40, lr=3e-3, schedule="constant"), history)
    losses = [h["loss"] for h in history]
    assert len(losses) == 40 and all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    metrics = evaluate_segmentation(model, phantoms)
    assert set(metrics) == {"heart_dice", "right_lung_dice", "left_lung_dice", "mean_dice", "n_images"}
    assert metrics["n_images"] == len(phantoms)
    for name in STRUCTURES:
        assert 0.0 <= metrics[f"{name}_dice"] <= 1.0
    assert metrics["mean_dice"] > 0.3  # lungs are large; 40 steps on the training images get well past chance


def test_transfer_rows(phantoms):
    train = torch.utils.data.Subset(phantoms, range(6))
    test = torch.utils.data.Subset(phantoms, range(6, 8))
    rows = segmentation_transfer(tiny_vit(), train, test, config(steps=2))
    assert [r["arm"] for r in rows] == ["frozen", "finetuned"]
    for row in rows:
        assert row["n_images"] == 2 and row["steps"] == 2 and row["train_s"] >= 0
        for key in ("heart_dice", "right_lung_dice", "left_lung_dice", "mean_dice"):
            assert 0.0 <= row[key] <= 1.0


# --- bad input -----------------------------------------------------------------------------------


def test_missing_mask_names_sample_and_mask(samples):
    broken = list(samples)
    victim = samples[5]
    broken[5] = XraySample(image=victim.image, source=victim.source, source_id=victim.source_id,
                           masks={k: v for k, v in victim.masks.items() if k != "left_lung"})
    with pytest.raises(ValueError, match=rf"{victim.source_id}.*'left_lung'"):
        train_segmentation(tiny_vit(), broken, config(steps=3, batch_size=4))  # batch 2 holds it
    no_masks = [XraySample(image=s.image, source=s.source, source_id=s.source_id) for s in samples[:2]]
    with pytest.raises(ValueError, match=rf"{samples[0].source_id}.*'heart', 'right_lung', 'left_lung'"):
        evaluate_segmentation(build_segmentation_model(tiny_vit(), config()), no_masks)


def test_image_size_must_match_the_vit(samples):
    with pytest.raises(ValueError, match=r"\(64, 64\) pixels.*\(32, 32\)"):
        train_segmentation(tiny_vit(image_size=32), samples, config())


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="structures"):
        SegmentationConfig(structures=())
    with pytest.raises(ValueError, match="steps"):
        SegmentationConfig(steps=0)
    with pytest.raises(ValueError, match="loss"):
        SegmentationConfig(loss="focal")  # type: ignore[arg-type]

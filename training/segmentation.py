"""Segmentation transfer: one small MONAI decoder on a frozen or a fine-tuned ViT; Dice per structure.

The paper's transfer test (Anatomy-VLM, segmentation of the heart): train the *same* decoder once on
the frozen encoder and once with the encoder fine-tuned end to end, and compare Dice.
:func:`segmentation_transfer` runs both arms with one seed and one step budget, so the decoder
starts from the same weights and sees the same batches in both.

**Decoder.** A UNETR-style decoder (Hatamizadeh et al. 2022) built from MONAI blocks, fed by the
ViT's *last* patch tokens only (the trunk returns no intermediate layers). The patch tokens
``[B, N, D]`` become a map ``[B, D, h, w]``; ``log2(patch)`` ``UnetrUpBlock``s double its resolution
back to ``H x W``. The skip of each up-block at resolution ``H / 2^l`` (``l >= 1``) is a
``UnetrPrUpBlock`` (transposed convolutions) from the same token map, as UNETR does from its hidden
states; the full-resolution skip is UNETR's ``encoder1``, one ``UnetrBasicBlock`` on the image
(``image_skip``), because a 16-pixel patch grid alone cannot place a boundary to the pixel.
Switch it off to measure what the tokens alone give.

**Outputs: independent sigmoids, not a softmax.** The phantom masks are projections through the
body: the heart overlaps both lungs (in the first five 64-px phantoms, 27-33 % of the heart's
pixels are also right lung and 57-72 % left lung), so one pixel can carry several labels and a
softmax with background cannot represent the ground truth. Each structure is one logit channel,
trained with Dice + BCE (``monai.losses.DiceCELoss(sigmoid=True)``), predicted as ``sigmoid >=
threshold``.

**Dice.** ``monai.metrics.DiceMetric(ignore_empty=True)`` per image and structure; an image whose
ground-truth mask of a structure is empty scores NaN for it and is left out of that structure's
mean (a structure absent everywhere has a NaN mean, and ``mean_dice`` averages the others). An
empty prediction on a non-empty mask scores 0.

The device choice and bf16 autocast live in the trainer functions here (shared with
``alignment.train``); the modules hold no device or precision code.

Shapes:
    - images ``[B, 1, H, W]`` in ``[0, 1]``, ``H, W`` = the ViT's configured ``image_size``
    - patch tokens ``[B, h*w, D]`` with ``(h, w) = (H / patch, W / patch)``
    - logits ``[B, S, H, W]``, one channel per structure in ``config.structures`` order
    - target masks ``[B, S, H, W]`` float (0/1)

Limits: the ViT's patch size must be a power of two (the decoder doubles the resolution per
block); the training loop has no augmentation, no validation-based early stopping and no DDP.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from monai.losses import DiceCELoss, DiceLoss
from monai.metrics import DiceMetric
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from anatomy_vlm.alignment.device import autocast_context, resolve_device
from anatomy_vlm.datasets.sample import XraySample
from anatomy_vlm.encoder.vit import ViT
from anatomy_vlm.training.data import endless, make_loader

LossName = Literal["dice_ce", "dice", "bce"]


@dataclass(frozen=True)
class SegmentationConfig:
    """Decoder and training of one segmentation-transfer arm."""

    structures: tuple[str, ...] = ("heart", "right_lung", "left_lung")  # mask names, one output channel each
    feature_size: int = 16  # decoder channels at full resolution; doubled at each coarser level
    image_skip: bool = True  # full-resolution skip from a conv block on the image (UNETR's encoder1)
    norm_name: str = "instance"  # MONAI norm of the decoder blocks ("instance", "batch", ...)
    steps: int = 300  # optimiser steps (batches), the same for both arms
    batch_size: int = 16  # images per step
    lr: float = 1e-3  # AdamW learning rate of the decoder
    encoder_lr: float = 1e-4  # AdamW learning rate of the ViT when fine-tuning (lower: keep what it learnt)
    weight_decay: float = 1e-4  # AdamW weight decay (both parameter groups)
    schedule: Literal["constant", "cosine"] = "cosine"  # learning-rate schedule over `steps` (cosine to 0)
    finetune: bool = False  # False: the ViT is frozen (eval, no grad); True: trained end to end
    seed: int = 0  # seeds the decoder's initial weights and the batch order (same in both arms)
    loss: LossName = "dice_ce"  # "dice_ce": Dice + BCE; "dice": soft Dice only; "bce": BCE only
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda:0", ...
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast on CUDA only; CPU always runs fp32
    progress: bool = False  # tqdm bar over the steps

    def __post_init__(self) -> None:
        owner = "SegmentationConfig"
        if not self.structures or len(set(self.structures)) != len(self.structures):
            raise ValueError(f"{owner}.structures must be non-empty and distinct, got {self.structures!r}")
        for name, value in (("feature_size", self.feature_size), ("steps", self.steps),
                            ("batch_size", self.batch_size), ("lr", self.lr)):
            if value <= 0:
                raise ValueError(f"{owner}.{name} must be positive, got {value!r}")
        if self.encoder_lr < 0 or self.weight_decay < 0:
            raise ValueError(f"{owner}.encoder_lr and weight_decay must be >= 0, "
                             f"got {self.encoder_lr!r}, {self.weight_decay!r}")
        if self.loss not in ("dice_ce", "dice", "bce"):
            raise ValueError(f"{owner}.loss must be 'dice_ce', 'dice' or 'bce', got {self.loss!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"{owner}.schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"{owner}.precision must be 'fp32' or 'bf16', got {self.precision!r}")


class SegmentationDecoder(nn.Module):
    """UNETR-style decoder from the last ViT patch tokens (+ the image) to per-structure logits.

    Args:
        embed_dim: token dimension ``D`` of the ViT.
        patch_size: the ViT's patch side; a power of two >= 2 (one up-block per doubling).
        num_classes: output channels ``S`` (one per structure).
        feature_size: channels at full resolution; level ``l`` (resolution ``H / 2^l``) has
            ``feature_size * 2^l``.
        image_skip: take the full-resolution skip from a conv block on the image; otherwise from
            the tokens (transposed convolutions), like the other levels.
        in_channels: image channels (1 for radiographs).
        norm_name: MONAI norm name of every block.

    Shapes:
        - ``patches``: ``[B, h*w, D]`` (row-major grid order, as ``ViT`` returns them)
        - ``grid``: ``(h, w)``
        - ``images``: ``[B, in_channels, h*patch, w*patch]`` (required when ``image_skip``)
        - output: logits ``[B, S, h*patch, w*patch]``
    """

    def __init__(self, embed_dim: int, patch_size: int, num_classes: int, feature_size: int = 16,
                 image_skip: bool = True, in_channels: int = 1, norm_name: str = "instance"):
        super().__init__()
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of two >= 2 (one up-block per doubling), got {patch_size}")
        for name, value in (("embed_dim", embed_dim), ("num_classes", num_classes),
                            ("feature_size", feature_size), ("in_channels", in_channels)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.num_classes = num_classes
        self.image_skip = image_skip
        levels = int(math.log2(patch_size))  # up-blocks from the token grid to full resolution
        channels = [feature_size * 2**level for level in range(levels)]  # at resolution H / 2^level

        def tokens_to(level: int) -> nn.Module:
            # Transposed convs from the token map (H / patch) up to resolution H / 2^level.
            return UnetrPrUpBlock(2, embed_dim, channels[level], num_layer=levels - level - 1, kernel_size=3,
                                  stride=1, upsample_kernel_size=2, norm_name=norm_name, conv_block=True,
                                  res_block=True)

        first = (UnetrBasicBlock(2, in_channels, channels[0], kernel_size=3, stride=1, norm_name=norm_name,
                                 res_block=True) if image_skip else tokens_to(0))
        self.skips = nn.ModuleList([first] + [tokens_to(level) for level in range(1, levels)])
        # ups[level] takes resolution H / 2^(level+1) to H / 2^level; the coarsest input is the token map.
        self.ups = nn.ModuleList(
            UnetrUpBlock(2, channels[level + 1] if level + 1 < levels else embed_dim, channels[level],
                         kernel_size=3, upsample_kernel_size=2, norm_name=norm_name, res_block=True)
            for level in range(levels)
        )
        self.out = UnetOutBlock(2, channels[0], num_classes)

    def forward(self, patches: Tensor, grid: tuple[int, int], images: Tensor | None = None) -> Tensor:
        """``patches [B, h*w, D]``, ``grid (h, w)``, ``images [B, C, H, W]`` -> logits ``[B, S, H, W]``."""
        if patches.ndim != 3 or patches.shape[-1] != self.embed_dim:
            raise ValueError(f"patches must be [B, N, {self.embed_dim}], got {tuple(patches.shape)}")
        h, w = int(grid[0]), int(grid[1])
        if patches.shape[1] != h * w:
            raise ValueError(f"{patches.shape[1]} patch tokens do not fill the grid {(h, w)}")
        if self.image_skip:
            expected = (h * self.patch_size, w * self.patch_size)
            if images is None:
                raise ValueError("this decoder has an image skip: pass the images")
            if images.ndim != 4 or tuple(images.shape[-2:]) != expected or images.shape[0] != patches.shape[0]:
                raise ValueError(f"images must be [B={patches.shape[0]}, C, {expected[0]}, {expected[1]}] for "
                                 f"grid {(h, w)} and patch {self.patch_size}, got {tuple(images.shape)}")
        fmap = patches.transpose(1, 2).reshape(patches.shape[0], self.embed_dim, h, w)  # [B, D, h, w]
        skips = [self.skips[0](images if self.image_skip else fmap)]  # [B, F, H, W]
        skips += [skip(fmap) for skip in self.skips[1:]]  # level l: [B, F * 2^l, H / 2^l, W / 2^l]
        x = fmap
        for level in reversed(range(len(self.ups))):
            x = self.ups[level](x, skips[level])  # [B, F * 2^level, H / 2^level, W / 2^level]
        return self.out(x)  # [B, S, H, W]


class SegmentationModel(nn.Module):
    """A ViT trunk and a :class:`SegmentationDecoder`; ``images [B, 1, H, W]`` -> logits ``[B, S, H, W]``.

    With ``freeze_backbone`` the trunk's parameters get ``requires_grad=False``, it stays in eval mode
    (``train()`` does not switch it back: no dropout, frozen means frozen) and runs under ``no_grad``.
    """

    def __init__(self, backbone: ViT, decoder: SegmentationDecoder, structures: Sequence[str],
                 freeze_backbone: bool = True):
        super().__init__()
        if len(structures) != decoder.num_classes:
            raise ValueError(f"{len(structures)} structures {tuple(structures)} but the decoder has "
                             f"{decoder.num_classes} output channels")
        if getattr(backbone, "width", None) != decoder.embed_dim:
            raise ValueError(f"backbone width {getattr(backbone, 'width', None)} != decoder embed_dim "
                             f"{decoder.embed_dim}")
        self.backbone = backbone
        self.decoder = decoder
        self.structures = tuple(structures)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> "SegmentationModel":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        """``images [B, 1, H, W]`` -> logits ``[B, S, H, W]`` (``S = len(self.structures)``)."""
        if self.freeze_backbone:
            with torch.no_grad():
                features = self.backbone(images)
        else:
            features = self.backbone(images)
        return self.decoder(features["patches"], features["grid"], images)  # [B, S, H, W]


def build_segmentation_model(backbone: ViT, config: SegmentationConfig) -> SegmentationModel:
    """A decoder sized to ``backbone`` (width, patch) and wrapped with it, frozen unless ``config.finetune``."""
    vit_config = backbone.config
    decoder = SegmentationDecoder(backbone.width, vit_config.patch_size, len(config.structures),
                                  feature_size=config.feature_size, image_skip=config.image_skip,
                                  in_channels=vit_config.in_channels, norm_name=config.norm_name)
    return SegmentationModel(backbone, decoder, config.structures, freeze_backbone=not config.finetune)


def build_loss(config: SegmentationConfig) -> nn.Module:
    """The loss of ``config.loss`` on logits ``[B, S, H, W]`` and 0/1 targets ``[B, S, H, W]`` (sigmoid per channel)."""
    if config.loss == "dice_ce":
        return DiceCELoss(sigmoid=True)  # soft Dice per image and channel + BCE-with-logits, weights 1:1
    if config.loss == "dice":
        return DiceLoss(sigmoid=True)
    return nn.BCEWithLogitsLoss()


# ---------------------------------------------------------------------------------------------
# Data: stack samples into (images, masks), refusing samples without the structures' masks.


def check_sample(sample: XraySample, structures: Sequence[str], image_hw: tuple[int, int]) -> None:
    """``ValueError`` naming the sample when a mask of ``structures`` is missing or the size differs."""
    name = f"{sample.source}/{sample.source_id}"
    missing = [s for s in structures if s not in sample.masks]
    if missing:
        raise ValueError(f"sample {name} has no {', '.join(repr(m) for m in missing)} mask "
                         f"(it has {sorted(sample.masks) or 'none'}); segmentation needs {list(structures)}")
    if tuple(sample.image.shape[-2:]) != tuple(image_hw):
        raise ValueError(f"sample {name} is {tuple(sample.image.shape[-2:])} pixels, the ViT is configured for "
                         f"{tuple(image_hw)}: resize the data set (encoder.Preprocess) or build the ViT for that size")


def collate_masks(samples: Sequence[XraySample], structures: Sequence[str],
                  image_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Samples -> ``images [B, 1, H, W]`` float32 and ``masks [B, S, H, W]`` float32 (0/1), checked."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    for sample in samples:
        check_sample(sample, structures, image_hw)
    images = torch.stack([s.image for s in samples])  # [B, 1, H, W]
    masks = torch.stack([torch.stack([s.masks[k].bool() for k in structures]) for s in samples])  # [B, S, H, W]
    return images, masks.float()


class _Collate:
    """Picklable ``collate_fn`` (worker processes) binding the structures and the expected size."""

    def __init__(self, structures: Sequence[str], image_hw: tuple[int, int]):
        self.structures, self.image_hw = tuple(structures), tuple(image_hw)

    def __call__(self, samples: Sequence[XraySample]) -> tuple[Tensor, Tensor]:
        return collate_masks(samples, self.structures, self.image_hw)


def _loader(dataset: Dataset, structures: Sequence[str], image_hw: tuple[int, int], batch_size: int,
            shuffle: bool, seed: int) -> DataLoader:
    if len(dataset) == 0:
        raise ValueError("the data set is empty")
    check_sample(dataset[0], structures, image_hw)  # fail before any step when the whole set is wrong
    return make_loader(dataset, batch_size, _Collate(structures, image_hw), shuffle=shuffle, seed=seed)


# ---------------------------------------------------------------------------------------------
# Trainer side: device, precision, optimiser, loop.


def train_segmentation(backbone: ViT, train_dataset: Dataset, config: SegmentationConfig,
                       history: list[dict[str, float]] | None = None) -> SegmentationModel:
    """Train a decoder on a *copy* of ``backbone`` (frozen, or fine-tuned when ``config.finetune``).

    The caller's ``backbone`` is never modified. Returns the model in eval mode on the training
    device. ``history``, when given, receives one row per step: ``{"step", "loss", "lr"}``.
    """
    if not isinstance(config, SegmentationConfig):
        raise ValueError(f"config must be a SegmentationConfig, got {type(config).__name__}")
    if not isinstance(backbone, ViT):
        raise ValueError(f"backbone must be an encoder.vit.ViT, got {type(backbone).__name__}")
    from tqdm.auto import tqdm

    image_hw = backbone.config.image_hw
    batches = endless(_loader(train_dataset, config.structures, image_hw, config.batch_size, shuffle=True,
                               seed=config.seed))
    device = resolve_device(config.device)
    trunk = copy.deepcopy(backbone)
    trunk.requires_grad_(True)  # a checkpoint may hand over a trunk with frozen parameters
    torch.manual_seed(config.seed)  # the decoder starts from the same weights in both arms
    model = build_segmentation_model(trunk, config).to(device)
    groups = [{"params": list(model.decoder.parameters()), "lr": config.lr}]
    if config.finetune:
        groups.append({"params": list(model.backbone.parameters()), "lr": config.encoder_lr})
    optimiser = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    base_lrs = [group["lr"] for group in groups]
    criterion = build_loss(config)

    model.train()
    with tqdm(total=config.steps, desc="segmentation" + (" (fine-tune)" if config.finetune else " (frozen)"),
              disable=not config.progress) as bar:
        for step in range(config.steps):
            if config.schedule == "cosine":
                factor = 0.5 * (1.0 + math.cos(math.pi * step / config.steps))
                for group, base in zip(optimiser.param_groups, base_lrs):
                    group["lr"] = base * factor
            images, masks = next(batches)
            images, masks = images.to(device), masks.to(device)
            with autocast_context(device, config.precision):
                logits = model(images)  # [B, S, H, W]
            loss = criterion(logits.float(), masks)  # the loss in fp32 whatever the autocast
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite segmentation loss at step {step}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if history is not None:
                history.append({"step": step + 1, "loss": float(loss.detach()),
                                "lr": optimiser.param_groups[0]["lr"]})
    model.eval()
    return model


def dice_scores(pred: Tensor, target: Tensor) -> Tensor:
    """Dice per image and structure: binary ``pred``, ``target`` ``[B, S, H, W]`` -> ``[B, S]``.

    NaN where the ground-truth mask is empty (``DiceMetric(ignore_empty=True)``); 0 for an empty
    prediction on a non-empty mask; 1 for a perfect one.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must both be [B, S, H, W], got {tuple(pred.shape)} and {tuple(target.shape)}")
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
    return metric(pred.float(), target.float())  # [B, S]


@torch.no_grad()
def evaluate_segmentation(model: SegmentationModel, dataset: Dataset, threshold: float = 0.5,
                          batch_size: int = 32) -> dict[str, float]:
    """Mean Dice per structure (``"<structure>_dice"``), their mean (``"mean_dice"``) and ``"n_images"``.

    A pixel is predicted inside a structure when ``sigmoid(logit) >= threshold``. Runs on the
    model's device, in eval mode (the mode is restored afterwards).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    device = next(model.parameters()).device
    image_hw = model.backbone.config.image_hw
    was_training = model.training
    model.eval()
    scores = []
    for images, masks in _loader(dataset, model.structures, image_hw, batch_size, shuffle=False, seed=0):
        logits = model(images.to(device)).float()  # [B, S, H, W]
        scores.append(dice_scores(torch.sigmoid(logits) >= threshold, masks.to(device) > 0.5).cpu())
    model.train(was_training)
    per_image = torch.cat(scores)  # [N, S]
    per_structure = torch.nanmean(per_image, dim=0)  # [S]; NaN where a structure is never present
    result = {f"{name}_dice": float(per_structure[i]) for i, name in enumerate(model.structures)}
    present = per_structure[~torch.isnan(per_structure)]
    result["mean_dice"] = float(present.mean()) if present.numel() else float("nan")
    result["n_images"] = float(per_image.shape[0])
    return result


def segmentation_transfer(backbone: ViT, train_dataset: Dataset, test_dataset: Dataset,
                          config: SegmentationConfig, threshold: float = 0.5) -> list[dict[str, object]]:
    """Train and test the frozen and the fine-tuned arm (same seed, steps, decoder init and batches).

    Returns one row per arm: ``{"arm": "frozen"|"finetuned", "<structure>_dice", ..., "mean_dice",
    "n_images", "train_s", "steps", "final_loss"}`` (``train_s``: wall seconds of training only;
    ``final_loss``: mean loss of the last 10 % of the steps).
    """
    rows: list[dict[str, object]] = []
    for arm, finetune in (("frozen", False), ("finetuned", True)):
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        model = train_segmentation(backbone, train_dataset, replace(config, finetune=finetune), history)
        train_s = time.perf_counter() - start
        tail = history[-max(1, len(history) // 10):]
        metrics = evaluate_segmentation(model, test_dataset, threshold=threshold, batch_size=config.batch_size)
        rows.append({"arm": arm, **metrics, "train_s": round(train_s, 2), "steps": config.steps,
                     "final_loss": sum(h["loss"] for h in tail) / len(tail)})
    return rows


__all__ = [
    "SegmentationConfig", "SegmentationDecoder", "SegmentationModel", "build_loss", "build_segmentation_model",
    "check_sample", "collate_masks", "dice_scores", "evaluate_segmentation", "segmentation_transfer",
    "train_segmentation",
]

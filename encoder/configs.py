"""Typed configurations of the image encoder: the ViT trunk, the anatomy decoder, the region feature.

Each is a plain dataclass checked in ``__post_init__`` (``ValueError`` naming the bad field), so a
bad configuration fails when it is written, not deep inside a forward pass. Named presets:

=========  =====  =====  =====  ==========================================================
preset     width  depth  heads  use
=========  =====  =====  =====  ==========================================================
``tiny``     192      4      3  tests and CPU smoke runs (a 64x64 forward takes milliseconds)
``small``    384     12      6  ViT-S/16
``base``     768     12     12  ViT-B/16 (the paper's trunk)
=========  =====  =====  =====  ==========================================================

``AnatomyDecoderConfig.preset`` uses the same names with a shallower decoder (2/3/6 layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from anatomy_vlm.typing import Size

_VIT_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"width": 192, "depth": 4, "heads": 3},
    "small": {"width": 384, "depth": 12, "heads": 6},
    "base": {"width": 768, "depth": 12, "heads": 12},
}

_DECODER_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"width": 192, "depth": 2, "heads": 3},
    "small": {"width": 384, "depth": 3, "heads": 6},
    "base": {"width": 768, "depth": 6, "heads": 12},
}


def _check_positive(owner: str, **values: int | float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{owner}.{name} must be positive, got {value!r}")


def _check_dropout(owner: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}.dropout must be in [0, 1), got {value!r}")


def _check_heads(owner: str, width: int, heads: int) -> None:
    if width % heads != 0:
        raise ValueError(f"{owner}.width ({width}) must be divisible by {owner}.heads ({heads})")


@dataclass(frozen=True)
class ViTConfig:
    """The ViT trunk (``anatomy_vlm.encoder.vit.ViT``)."""

    image_size: int | Size = 224  # configured input (H, W) or square side; the position grid is sized for it
    patch_size: int = 16  # side of the square, non-overlapping patches (conv stride = kernel)
    in_channels: int = 1  # image channels; radiographs are 1-channel (the XraySample convention)
    width: int = 768  # token dimension D
    depth: int = 12  # number of pre-norm transformer blocks
    heads: int = 12  # attention heads; must divide width
    mlp_ratio: float = 4.0  # hidden size of each block's MLP = mlp_ratio * width
    dropout: float = 0.0  # dropout on attention weights, MLP and position-embedded tokens

    def __post_init__(self) -> None:
        owner = "ViTConfig"
        h, w = self.image_hw
        _check_positive(owner, image_height=h, image_width=w, patch_size=self.patch_size,
                        in_channels=self.in_channels, width=self.width, depth=self.depth, heads=self.heads,
                        mlp_ratio=self.mlp_ratio)
        _check_dropout(owner, self.dropout)
        _check_heads(owner, self.width, self.heads)
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"{owner}.image_size {(h, w)} must be divisible by patch_size {self.patch_size}")

    @property
    def image_hw(self) -> Size:
        """``image_size`` as ``(height, width)``."""
        if isinstance(self.image_size, int):
            return (self.image_size, self.image_size)
        if len(self.image_size) != 2:
            raise ValueError(f"ViTConfig.image_size must be an int or (height, width), got {self.image_size!r}")
        return (int(self.image_size[0]), int(self.image_size[1]))

    @property
    def grid_size(self) -> Size:
        """Patch grid ``(h, w)`` of the configured image size."""
        h, w = self.image_hw
        return (h // self.patch_size, w // self.patch_size)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> "ViTConfig":
        """``ViTConfig.preset("tiny"|"small"|"base", image_size=..., ...)``; overrides win."""
        if name not in _VIT_PRESETS:
            raise ValueError(f"unknown ViT preset {name!r}; choose one of {sorted(_VIT_PRESETS)}")
        return cls(**{**_VIT_PRESETS[name], **overrides})  # type: ignore[arg-type]


@dataclass(frozen=True)
class AnatomyDecoderConfig:
    """The anatomy decoder (``anatomy_vlm.encoder.anatomy_decoder.AnatomyDecoder``)."""

    num_regions: int = 29  # one query per region; query i IS region i (ontology.seed.REGION_IDS order)
    width: int = 768  # query / decoder token dimension
    depth: int = 6  # decoder layers (self-attention among queries, cross-attention to patches, MLP)
    heads: int = 12  # attention heads; must divide width
    mlp_ratio: float = 4.0  # decoder MLP hidden size = mlp_ratio * width
    dropout: float = 0.0  # dropout inside the decoder layers
    box_head_layers: int = 3  # linear layers of the box MLP (DETR uses 3); 1 = a single linear layer
    memory_dim: int | None = None  # dimension of the patch tokens; None = same as width (else projected)
    region_init_dim: int | None = None  # E of region-node embeddings [R, E] the queries start from; None = none

    def __post_init__(self) -> None:
        owner = "AnatomyDecoderConfig"
        _check_positive(owner, num_regions=self.num_regions, width=self.width, depth=self.depth,
                        heads=self.heads, mlp_ratio=self.mlp_ratio, box_head_layers=self.box_head_layers)
        _check_dropout(owner, self.dropout)
        _check_heads(owner, self.width, self.heads)
        if self.memory_dim is not None:
            _check_positive(owner, memory_dim=self.memory_dim)
        if self.region_init_dim is not None:
            _check_positive(owner, region_init_dim=self.region_init_dim)

    @property
    def patch_dim(self) -> int:
        """Dimension of the patch tokens the decoder attends to."""
        return self.width if self.memory_dim is None else self.memory_dim

    @classmethod
    def preset(cls, name: str, **overrides: object) -> "AnatomyDecoderConfig":
        """``AnatomyDecoderConfig.preset("tiny"|"small"|"base", ...)``, sized to the ViT preset of that name."""
        if name not in _DECODER_PRESETS:
            raise ValueError(f"unknown anatomy decoder preset {name!r}; choose one of {sorted(_DECODER_PRESETS)}")
        return cls(**{**_DECODER_PRESETS[name], **overrides})  # type: ignore[arg-type]


@dataclass(frozen=True)
class RegionFeatureConfig:
    """The region feature (``anatomy_vlm.encoder.roi.RegionFeature``)."""

    out_dim: int = 192  # dimension of the region feature it produces (the enrichment and heads width)
    roi_output_size: int = 2  # RoI-align bins per side; the bins are averaged
    context: Literal["cls", "mean"] = "cls"  # global context: the CLS token or the mean patch token
    dropout: float = 0.0  # dropout before the output projection
    pixel_roi_size: int = 0  # >0: also the image's own pixels in the box (RoI-align, s x s) and the box geometry
    query_dim: int | None = None  # width of the decoder's query tokens; wired by the model factory
    patch_dim: int | None = None  # width of the ViT patch (and CLS) tokens; wired by the model factory

    def __post_init__(self) -> None:
        owner = "RegionFeatureConfig"
        _check_positive(owner, out_dim=self.out_dim, roi_output_size=self.roi_output_size)
        for name in ("query_dim", "patch_dim"):
            if getattr(self, name) is not None:
                _check_positive(owner, **{name: getattr(self, name)})
        _check_dropout(owner, self.dropout)
        if self.pixel_roi_size < 0:
            raise ValueError(f"{owner}.pixel_roi_size must be >= 0, got {self.pixel_roi_size}")
        if self.context not in ("cls", "mean"):
            raise ValueError(f"{owner}.context must be 'cls' or 'mean', got {self.context!r}")


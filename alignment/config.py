"""Typed configuration of the aligner, composed of its parts' own configs.

``ModelConfig`` holds one config per part (``ViTConfig``, ``AnatomyDecoderConfig``,
``RegionFeatureConfig``, ``EnrichmentConfig``, ``HeadsConfig``); each knob has one default, in the
part's config. Widths that join two parts (a decoder's memory width is the ViT's, the enrichment's
width is the region feature's, the node width comes from the knowledge) are not knobs: the
factory (``alignment.factory``) wires them. ``AlignerConfig`` is what a checkpoint stores: the
model, its preprocessing and its loss.

YAML (``training/configs/tiny.yaml``)::

    model: {vit: {preset: tiny}, decoder: {preset: tiny}, region: {out_dim: 192}, enrichment: {heads: 4}}
    preprocess: {image_size: 64}
    loss: {fine_mode: sigmoid}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anatomy_vlm.alignment.enrichment import EnrichmentConfig
from anatomy_vlm.alignment.heads import HeadsConfig
from anatomy_vlm.alignment.losses import AlignmentLossConfig
from anatomy_vlm.config import config_to_dict, typed_from_dict
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig, RegionFeatureConfig, ViTConfig
from anatomy_vlm.encoder.preprocess import PreprocessConfig


@dataclass
class ModelConfig:
    """The parts of ``AnatomyVLM``; see the module docstring."""

    vit: ViTConfig = field(default_factory=lambda: ViTConfig.preset("tiny"))  # the trunk; image_size comes from preprocess
    decoder: AnatomyDecoderConfig = field(default_factory=lambda: AnatomyDecoderConfig.preset("tiny"))  # anatomy queries
    region: RegionFeatureConfig = field(default_factory=RegionFeatureConfig)  # region feature (width = enrichment/heads width)
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)  # cross-attention over each region's KG neighbourhood
    heads: HeadsConfig = field(default_factory=HeadsConfig)  # scores against the finding-node embeddings
    aux_loss: bool = True  # decoder returns aux_outputs (DETR auxiliary box losses of earlier layers)
    region_init: bool = True  # decoder queries start from the region nodes' embeddings in the knowledge
    enrich: bool = True  # regions attend over their KG neighbourhood; False is the "enrichment off" arm
    node_dim: int | None = None  # width of the node embeddings; set from the knowledge when the model is built

    def __post_init__(self) -> None:
        if self.region.out_dim % self.enrichment.heads:
            raise ValueError(f"ModelConfig: region.out_dim ({self.region.out_dim}) must be divisible by "
                             f"enrichment.heads ({self.enrichment.heads})")
        if self.node_dim is not None and self.node_dim <= 0:
            raise ValueError(f"ModelConfig.node_dim must be positive, got {self.node_dim!r}")


@dataclass
class AlignerConfig:
    """Everything the library needs to rebuild a trained aligner: what a checkpoint stores."""

    model: ModelConfig = field(default_factory=ModelConfig)  # the network
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)  # image -> model input
    loss: AlignmentLossConfig = field(default_factory=AlignmentLossConfig)  # the criterion (its stage set per run stage)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "AlignerConfig":
        return typed_from_dict(cls, data, "aligner")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


__all__ = ["AlignerConfig", "ModelConfig"]

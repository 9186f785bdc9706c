"""Typed configuration of the aligner and its training, loaded from YAML, and ``build_model``.

``build_model(config, knowledge)`` is the one place a ``ModelConfig`` becomes an ``AnatomyVLM``
(DETR ``build_*`` style): the parts never read the configuration themselves.

YAML layout (``alignment/configs/tiny.yaml``)::

    model: {vit_preset: tiny, vit_overrides: {image_size: 64}, decoder_preset: tiny, ...}
    train: {data_root: ..., image_size: 64, batch_size: 4, steps_per_stage: [30, 5, 5], ...}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from anatomy_vlm.alignment.enrichment import KnowledgeEnrichment
from anatomy_vlm.alignment.graph_knowledge import KnowledgeConfig
from anatomy_vlm.alignment.heads import AlignmentHeads
from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.encoder.anatomy_decoder import AnatomyDecoder
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig, RegionFeatureConfig, ViTConfig
from anatomy_vlm.encoder.roi import RegionFeature
from anatomy_vlm.encoder.vit import ViT

Precision = Literal["bf16", "fp32"]


@dataclass
class ModelConfig:
    """The parts of ``AnatomyVLM`` and their sizes."""

    vit_preset: str = "tiny"  # ViTConfig preset: "tiny" | "small" | "base"
    vit_overrides: dict[str, Any] = field(default_factory=dict)  # ViTConfig fields that win over the preset (image_size, patch_size, ...)
    decoder_preset: str = "tiny"  # AnatomyDecoderConfig preset of the same names
    decoder_overrides: dict[str, Any] = field(default_factory=dict)  # AnatomyDecoderConfig fields that win over the preset
    aux_loss: bool = True  # decoder returns aux_outputs (DETR auxiliary box losses of earlier layers)
    region_init: bool = True  # decoder queries start from the region nodes' embeddings in the knowledge
    region_dim: int = 192  # width of the region feature (RegionFeature output, enrichment and heads input)
    roi_output_size: int = 2  # RoI-align bins per side of the region feature
    pixel_roi_size: int = 0  # >0: region features also see the pixels in their box (s x s) and its geometry
    context: Literal["cls", "mean"] = "cls"  # global context of the region feature
    enrichment_heads: int = 4  # attention heads of KnowledgeEnrichment; must divide region_dim
    enrichment_mlp_ratio: float = 2.0  # enrichment feed-forward width as a multiple of region_dim (0 drops it)
    embed_dim: int = 128  # joint embedding space E of the alignment heads
    node_dim: int | None = None  # width of the node embeddings; None = taken from the knowledge at build time
    restrict_to_located: bool = False  # heads pool a finding only over regions whose neighbourhood holds it
    pooling: str = "softmax"  # heads' pooling over regions: "softmax" | "mean"
    combine: str = "mix"  # heads' pooled/global combination: "mix" | "logsumexp"
    dropout: float = 0.0  # dropout of the region feature and the enrichment
    enrich: bool = True  # regions attend over their KG neighbourhood; False is the "enrichment off" arm

    def __post_init__(self) -> None:
        for name in ("region_dim", "roi_output_size", "enrichment_heads", "embed_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.region_dim % self.enrichment_heads:
            raise ValueError(f"ModelConfig.region_dim ({self.region_dim}) must be divisible by "
                             f"enrichment_heads ({self.enrichment_heads})")
        if self.node_dim is not None and self.node_dim <= 0:
            raise ValueError(f"ModelConfig.node_dim must be positive, got {self.node_dim!r}")
        self.vit_config()  # fail early on a bad preset or override
        self.decoder_config(region_init_dim=None)

    def vit_config(self) -> ViTConfig:
        overrides = dict(self.vit_overrides)
        if isinstance(overrides.get("image_size"), list):
            overrides["image_size"] = tuple(overrides["image_size"])
        return ViTConfig.preset(self.vit_preset, **overrides)

    def decoder_config(self, region_init_dim: int | None) -> AnatomyDecoderConfig:
        vit = self.vit_config()
        return AnatomyDecoderConfig.preset(self.decoder_preset, **{
            "memory_dim": vit.width, "region_init_dim": region_init_dim, **self.decoder_overrides})


@dataclass
class TrainConfig:
    """The three-stage training run (``alignment.train.train``)."""

    data_root: str = ""  # folder of the training data (e.g. a phantom folder with manifest.jsonl)
    image_size: int = 64  # side of the square training images; must match the data and the ViT
    batch_size: int = 4  # images per step
    steps_per_stage: tuple[int, int, int] = (30, 5, 5)  # optimiser steps of stage 1 (boxes), 2 (+global), 3 (+fine)
    lr: float = 3e-4  # AdamW learning rate (constant)
    weight_decay: float = 0.05  # AdamW weight decay
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    fine_mode: Literal["sigmoid", "infonce"] = "sigmoid"  # fine-grained loss form (alignment.losses)
    seed: int = 0  # torch seed for initialisation and data order
    device: str = "auto"  # "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...
    precision: Precision = "bf16"  # "bf16": autocast bf16 on CUDA only (CPU always fp32); "fp32"
    log_every: int = 1  # write a metrics row every this many steps
    out_dir: str = "runs/alignment"  # where metrics.csv, curve.png and checkpoint.pt go
    progress: bool = True  # show the tqdm progress bar
    schedule: Literal["constant", "cosine"] = "constant"  # learning rate after warm-up
    warmup_steps: int = 0  # linear warm-up from 0 to lr over these steps
    tensorboard: bool = True  # also log to out_dir/tensorboard when the tensorboard package is installed
    # -- what the run trains against (alignment.pipeline) ------------------------------------
    ontology: str = ""  # an OWL / JSON / sources folder; "" = the packaged anatomy-vlm.owl
    variant: str = "canonical"  # the knowledge variant's name (recorded in the checkpoint and provenance)
    variant_recipe: str = ""  # e.g. "shuffle-located-in:seed=7" applied to the ontology (ontology.variants)
    holdout_findings: tuple[str, ...] = ()  # finding ids whose labels are withheld in training (zero-shot)
    phantom_counts: dict[str, int] = field(default_factory=lambda: {"train": 400, "val": 40, "test": 100})  # generated when data_root has no phantoms
    segmentation_steps: int = 0  # segmentation-transfer steps per arm after training (0 skips it)

    def __post_init__(self) -> None:
        self.steps_per_stage = tuple(int(s) for s in self.steps_per_stage)  # type: ignore[assignment]
        self.holdout_findings = tuple(str(f) for f in self.holdout_findings)  # type: ignore[assignment]
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"TrainConfig.schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"TrainConfig.warmup_steps must be >= 0, got {self.warmup_steps}")
        if len(self.steps_per_stage) != 3 or any(s < 0 for s in self.steps_per_stage):
            raise ValueError(f"TrainConfig.steps_per_stage must be three counts >= 0, got {self.steps_per_stage!r}")
        for name in ("image_size", "batch_size", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig.lr must be positive and weight_decay, grad_clip >= 0")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"TrainConfig.precision must be 'bf16' or 'fp32', got {self.precision!r}")


@dataclass
class Config:
    """A model and a training run, as one YAML file holds them."""

    model: ModelConfig = field(default_factory=ModelConfig)  # the network
    train: TrainConfig = field(default_factory=TrainConfig)  # the run
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)  # text encoder + GNN of the node embeddings

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["train"]["steps_per_stage"] = list(self.train.steps_per_stage)
        data["train"]["holdout_findings"] = list(self.train.holdout_findings)
        return data


def _typed(cls, data: dict[str, Any] | None, where: str):
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    return cls(**data)


def config_from_dict(data: dict[str, Any]) -> Config:
    """A ``Config`` from a plain dict (``{"model": {...}, "train": {...}}``); unknown keys are an error."""
    if not isinstance(data, dict):
        raise ValueError(f"config must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - {"model", "train", "knowledge"})
    if unknown:
        raise ValueError(f"config: unknown sections {unknown}; known: ['knowledge', 'model', 'train']")
    return Config(model=_typed(ModelConfig, data.get("model"), "model"),
                  train=_typed(TrainConfig, data.get("train"), "train"),
                  knowledge=KnowledgeConfig.from_dict(data.get("knowledge")))


def load_config(path: str | Path, **train_overrides: Any) -> Config:
    """Read a YAML config; ``train_overrides`` replace ``train`` fields (e.g. ``data_root``, ``out_dir``)."""
    with Path(path).open() as f:
        config = config_from_dict(yaml.safe_load(f) or {})
    if train_overrides:
        config.train = replace(config.train, **train_overrides)
    return config


def build_model(config: ModelConfig, knowledge: RegionKnowledge | None = None) -> AnatomyVLM:
    """Assemble ``AnatomyVLM`` from ``config``; sizes the node width (and region init) from ``knowledge``.

    Without ``knowledge`` (e.g. rebuilding from a checkpoint) ``config.node_dim`` must be set; the
    region-init buffer is then zero until the state dict is loaded.
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
    if knowledge is None and config.node_dim is None:
        raise ValueError("build_model needs knowledge or config.node_dim")
    node_dim = int(knowledge.node_embeddings.shape[1]) if knowledge is not None else int(config.node_dim)
    if config.node_dim is not None and config.node_dim != node_dim:
        raise ValueError(f"config.node_dim {config.node_dim} differs from the knowledge's node width {node_dim}")
    vit_config = config.vit_config()
    region_init = None
    if config.region_init and knowledge is not None:
        rows = [knowledge.node_ids.index(r) for r in knowledge.region_ids]
        region_init = knowledge.node_embeddings[rows].detach().float().cpu()  # [R, node_dim]
    decoder_config = config.decoder_config(node_dim if config.region_init else None)
    if knowledge is not None and decoder_config.num_regions != knowledge.num_regions:
        raise ValueError(f"decoder has {decoder_config.num_regions} regions, the knowledge {knowledge.num_regions}")
    backbone = ViT(vit_config)
    decoder = AnatomyDecoder(decoder_config, region_init)
    region_feature = RegionFeature(RegionFeatureConfig(
        query_dim=decoder_config.width, patch_dim=vit_config.width, out_dim=config.region_dim,
        roi_output_size=config.roi_output_size, context=config.context, dropout=config.dropout,
        pixel_roi_size=config.pixel_roi_size))
    enrichment = KnowledgeEnrichment(config.region_dim, config.enrichment_heads, node_dim=node_dim,
                                     mlp_ratio=config.enrichment_mlp_ratio, dropout=config.dropout)
    heads = AlignmentHeads(config.region_dim, vit_config.width, node_dim, config.embed_dim,
                           pooling=config.pooling, combine=config.combine,
                           restrict_to_located=config.restrict_to_located)
    return AnatomyVLM(backbone, decoder, region_feature, enrichment, heads, aux_loss=config.aux_loss,
                      enrich=config.enrich)

"""The configuration of one run: the aligner (model, preprocessing, loss), its knowledge, its training.

One YAML file per run (``training/configs/*.yaml``), read by :func:`load_config`::

    model: {vit: {preset: tiny}, decoder: {preset: tiny}}       # alignment.ModelConfig
    preprocess: {image_size: 64}                                 # encoder.PreprocessConfig
    loss: {fine_mode: sigmoid}                                   # alignment.AlignmentLossConfig
    knowledge: {text_encoder: minilm, pretrain_epochs: 100}      # knowledge.KnowledgeConfig
    train: {data_root: ..., batch_size: 4, steps_per_stage: [30, 5, 5]}   # TrainConfig
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from anatomy_vlm.alignment.config import AlignerConfig, ModelConfig
from anatomy_vlm.alignment.losses import AlignmentLossConfig
from anatomy_vlm.config import config_to_dict, typed_from_dict
from anatomy_vlm.encoder.preprocess import PreprocessConfig
from anatomy_vlm.knowledge import KnowledgeConfig

Precision = Literal["bf16", "fp32"]


@dataclass
class TrainConfig:
    """The three-stage training run (``training.trainer.train``) and what it trains against."""

    data_root: str = ""  # folder of the training data (phantom splits train/ val/ test/ with manifest.jsonl)
    batch_size: int = 4  # images per step
    steps_per_stage: tuple[int, int, int] = (30, 5, 5)  # optimiser steps of stage 1 (boxes), 2 (+global), 3 (+fine)
    lr: float = 3e-4  # AdamW peak learning rate
    weight_decay: float = 0.05  # AdamW weight decay
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    schedule: Literal["constant", "cosine"] = "constant"  # learning rate after warm-up
    warmup_steps: int = 0  # linear warm-up from 0 to lr over these steps
    seed: int = 0  # torch seed for initialisation and data order
    device: str = "auto"  # "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...
    precision: Precision = "bf16"  # "bf16": autocast bf16 on CUDA only (CPU always fp32); "fp32"
    log_every: int = 1  # write a metrics row every this many steps
    out_dir: str = "runs/alignment"  # where metrics.csv, curve.png and checkpoint.pt go
    progress: bool = True  # show the tqdm progress bar
    tensorboard: bool = True  # also log to out_dir/tensorboard when the tensorboard package is installed
    ontology: str = ""  # an OWL / JSON / sources folder; "" = the packaged anatomy-vlm.owl
    variant: str = "canonical"  # the knowledge variant's name (recorded in the checkpoint and provenance)
    variant_recipe: str = ""  # e.g. "shuffle-located-in:seed=7" applied to the ontology (ontology.variants)
    holdout_findings: tuple[str, ...] = ()  # finding ids whose labels are withheld in training (zero-shot)
    phantom_counts: dict[str, int] = field(default_factory=lambda: {"train": 400, "val": 40, "test": 100})  # generated when data_root has no phantoms
    phantom_size: int = 0  # side of generated phantoms; 0 = the model's input size
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
        for name in ("batch_size", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.phantom_size < 0:
            raise ValueError(f"TrainConfig.phantom_size must be >= 0, got {self.phantom_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig.lr must be positive and weight_decay, grad_clip >= 0")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"TrainConfig.precision must be 'bf16' or 'fp32', got {self.precision!r}")


@dataclass
class RunConfig:
    """A model and a training run, as one YAML file holds them."""

    model: ModelConfig = field(default_factory=ModelConfig)  # the network
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)  # image -> model input
    loss: AlignmentLossConfig = field(default_factory=AlignmentLossConfig)  # the criterion (stage set per stage)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)  # text encoder + GNN of the node embeddings
    train: TrainConfig = field(default_factory=TrainConfig)  # the run

    @property
    def aligner(self) -> AlignerConfig:
        """The part a checkpoint stores (model, preprocessing, loss)."""
        return AlignerConfig(model=self.model, preprocess=self.preprocess, loss=self.loss)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        return typed_from_dict(cls, data, "config")


def load_config(path: str | Path, **train_overrides: Any) -> RunConfig:
    """Read a YAML config; ``train_overrides`` replace ``train`` fields (e.g. ``data_root``, ``out_dir``)."""
    with Path(path).open() as f:
        config = RunConfig.from_dict(yaml.safe_load(f) or {})
    if train_overrides:
        config.train = replace(config.train, **train_overrides)
    return config


__all__ = ["Precision", "RunConfig", "TrainConfig", "load_config"]

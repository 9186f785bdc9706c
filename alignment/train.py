"""Three-stage training of ``AnatomyVLM`` (kept apart from the library modules).

``train(config, knowledge, train_dataset, val_dataset=None)`` runs the paper's schedule with one
AdamW optimiser over all parameters (constant learning rate): stage 1 detection only, stage 2 adds
the global (CLS) alignment, stage 3 adds the fine-grained region alignment (``alignment.losses``).
It writes under ``config.train.out_dir``:

- ``metrics.csv``: one row per logged step (step, stage, every loss term, lr), plus validation
  rows (``split == "val"``) at the end of each stage when a validation set is given;
- ``curve.png``: the training total loss per step, one colour per stage (matplotlib, Agg);
- ``checkpoint.pt``: ``torch.save`` of the model state, the config, the graph version, the
  knowledge variant and the scored finding ids (read back with :func:`load_checkpoint`).

The device choice (``"auto"``: CUDA when available) and bf16 autocast (CUDA only; CPU runs fp32)
live here only; the model files hold no device or precision code.

Not done: distributed (DDP) training. This trainer runs one process on one device; there is no
process group, no ``DistributedSampler`` and no all-reduce of the box count in the criterion.
There is also no learning-rate schedule, no gradient accumulation and no resume from a checkpoint.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from anatomy_vlm.alignment.config import Config, build_model, config_from_dict
from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.alignment.losses import AlignmentLossConfig, build_criterion
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.datasets.collate import XrayBatch, collate_samples
from anatomy_vlm.encoder.roi import box_xyxy_to_cxcywh, normalize_boxes

CHECKPOINT_FORMAT = 1


@dataclass
class TrainResult:
    """What a run produced."""

    model: AnatomyVLM  # the trained model (in eval mode, on the training device)
    history: list[dict[str, float]]  # one dict per logged training step (step, stage, losses, lr)
    val_history: list[dict[str, float]] = field(default_factory=list)  # mean val losses at the end of each stage
    metrics_csv: Path | None = None  # metrics.csv
    curve_png: Path | None = None  # curve.png
    checkpoint: Path | None = None  # checkpoint.pt


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model and what it was trained against."""

    model: AnatomyVLM  # rebuilt and loaded, in eval mode, on CPU
    config: Config  # the full config of the run
    graph_version: str  # content hash of the graph the knowledge came from
    variant: str  # knowledge variant name
    finding_ids: list[str]  # the finding ids scored in training (a new knowledge may list more)
    step: int  # optimiser steps taken


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast on CUDA when asked; fp32 (no autocast) everywhere else."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def build_targets(batch: XrayBatch, finding_ids: Sequence[str], region_ids: Sequence[str]) -> dict[str, Tensor]:
    """Criterion targets from a batch (on the batch's device).

    Shapes: boxes ``[B, R, 4]`` cxcywh normalised; box_present ``[B, R]``; image_labels ``[B, F]``;
    region_labels ``[B, R, F]`` (NaN where a sample gives no label for that region and finding).
    """
    height, width = batch.images.shape[-2:]
    boxes = box_xyxy_to_cxcywh(normalize_boxes(batch.boxes.float(), (height, width)))  # [B, R, 4]
    column = {f: j for j, f in enumerate(finding_ids)}
    if list(batch.label_ids) == list(finding_ids):
        image_labels = batch.image_labels.float()  # [B, F]
    else:
        image_labels = torch.full((len(batch.samples), len(finding_ids)), float("nan"))
        for row, sample in enumerate(batch.samples):
            for finding, value in sample.image_labels.items():
                if finding in column:
                    image_labels[row, column[finding]] = value
    region_row = {r: i for i, r in enumerate(region_ids)}
    region_labels = torch.full((len(batch.samples), len(region_ids), len(finding_ids)), float("nan"))
    for b, sample in enumerate(batch.samples):
        for region, labels in sample.region_labels.items():
            if region not in region_row:
                continue
            for finding, value in labels.items():
                if finding in column:
                    region_labels[b, region_row[region], column[finding]] = value
    device = batch.images.device
    return {
        "boxes": boxes,
        "box_present": batch.box_present.bool(),
        "image_labels": image_labels.to(device),
        "region_labels": region_labels.to(device),
    }


def _loader(dataset: Dataset, config: Config, finding_ids: Sequence[str], shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=config.train.batch_size, shuffle=shuffle, drop_last=False,
                      collate_fn=functools.partial(collate_samples, label_ids=list(finding_ids)),
                      generator=generator, num_workers=0)


def _endless(loader: DataLoader):
    while True:
        yield from loader


def _check_image_size(batch: XrayBatch, size: int) -> None:
    if tuple(batch.images.shape[-2:]) != (size, size):
        raise ValueError(f"images are {tuple(batch.images.shape[-2:])}, the config says {size}x{size}")


def write_curve(history: list[dict[str, float]], path: Path) -> Path:
    """Training total loss per step, one colour per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for stage in (1, 2, 3):
        rows = [h for h in history if h["stage"] == stage]
        if rows:
            ax.plot([h["step"] for h in rows], [h["total_loss"] for h in rows], label=f"stage {stage}")
    ax.set_xlabel("step")
    ax.set_ylabel("total loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@torch.no_grad()
def evaluate(model: AnatomyVLM, knowledge: RegionKnowledge, dataset: Dataset, config: Config, stage: int,
             device: torch.device) -> dict[str, float]:
    """Mean of every loss term of ``stage`` over ``dataset`` (eval mode)."""
    criterion = build_criterion(AlignmentLossConfig(stage=stage, fine_mode=config.train.fine_mode))
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in _loader(dataset, config, knowledge.finding_ids, shuffle=False, seed=0):
        batch = batch.to(device)
        targets = build_targets(batch, knowledge.finding_ids, knowledge.region_ids)
        with autocast_context(device, config.train.precision):
            losses = criterion(model(batch.images, knowledge), targets)
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value) * batch.images.shape[0]
        count += batch.images.shape[0]
    model.train(was_training)
    return {name: total / max(count, 1) for name, total in sums.items()}


def train(config: Config, knowledge: RegionKnowledge, train_dataset: Dataset,
          val_dataset: Dataset | None = None) -> TrainResult:
    """Run the three stages; see the module docstring for what is written."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a Config, got {type(config).__name__}")
    if len(train_dataset) == 0:
        raise ValueError("train_dataset is empty")
    from tqdm.auto import tqdm

    tc = config.train
    torch.manual_seed(tc.seed)
    device = resolve_device(tc.device)
    model_config = replace(config.model, node_dim=int(knowledge.node_embeddings.shape[1]))
    config = replace(config, model=model_config)
    model = build_model(model_config, knowledge).to(device)
    knowledge = knowledge.to(device)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                                  weight_decay=tc.weight_decay)
    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    batches = _endless(_loader(train_dataset, config, knowledge.finding_ids, shuffle=True, seed=tc.seed))

    history: list[dict[str, float]] = []
    val_history: list[dict[str, float]] = []
    step = 0
    total_steps = sum(tc.steps_per_stage)
    model.train()
    with tqdm(total=total_steps, desc="train", disable=not tc.progress) as bar:
        for stage, num_steps in enumerate(tc.steps_per_stage, start=1):
            criterion = build_criterion(AlignmentLossConfig(stage=stage, fine_mode=tc.fine_mode))
            for _ in range(num_steps):
                batch = next(batches).to(device)
                _check_image_size(batch, tc.image_size)
                targets = build_targets(batch, knowledge.finding_ids, knowledge.region_ids)
                with autocast_context(device, tc.precision):
                    outputs = model(batch.images, knowledge)
                    losses = criterion(outputs, targets)
                total = losses["total_loss"]
                if not torch.isfinite(total):
                    raise FloatingPointError(f"non-finite total loss at step {step} (stage {stage})")
                optimiser.zero_grad(set_to_none=True)
                total.backward()
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimiser.step()
                step += 1
                bar.update(1)
                bar.set_postfix(stage=stage, loss=f"{float(total.detach()):.4f}")
                if step % tc.log_every == 0:
                    row = {"split": "train", "step": step, "stage": stage,
                           **{k: float(v.detach()) for k, v in losses.items()},
                           "lr": optimiser.param_groups[0]["lr"]}
                    history.append(row)
            if val_dataset is not None and len(val_dataset) and num_steps:
                val = evaluate(model, knowledge, val_dataset, config, stage, device)
                val_history.append({"split": "val", "step": step, "stage": stage, **val})

    model.eval()
    metrics_csv = _write_csv(history + val_history, out_dir / "metrics.csv")
    curve_png = write_curve(history, out_dir / "curve.png")
    checkpoint = save_checkpoint(out_dir / "checkpoint.pt", model, config, knowledge, step)
    return TrainResult(model=model, history=history, val_history=val_history, metrics_csv=metrics_csv,
                       curve_png=curve_png, checkpoint=checkpoint)


def save_checkpoint(path: str | Path, model: AnatomyVLM, config: Config, knowledge: RegionKnowledge,
                    step: int = 0) -> Path:
    """``torch.save`` the CPU state dict with the config, graph version, variant and finding ids."""
    path = Path(path)
    if config.model.node_dim is None:
        config = replace(config, model=replace(config.model, node_dim=model.node_dim))
    torch.save({
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict(),
        "graph_version": knowledge.graph_version,
        "variant": knowledge.variant,
        "finding_ids": list(knowledge.finding_ids),
        "region_ids": list(knowledge.region_ids),
        "step": int(step),
    }, path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model of a checkpoint written by :func:`save_checkpoint` (CPU, eval mode)."""
    data = torch.load(Path(path), map_location="cpu", weights_only=False)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an alignment checkpoint (format {CHECKPOINT_FORMAT})")
    config = config_from_dict(data["config"])
    model = build_model(config.model)
    model.load_state_dict(data["model"])
    model.eval()
    return Checkpoint(model=model, config=config, graph_version=data["graph_version"], variant=data["variant"],
                      finding_ids=list(data["finding_ids"]), step=int(data["step"]))


__all__ = ["Checkpoint", "TrainResult", "autocast_context", "build_targets", "evaluate", "load_checkpoint",
           "resolve_device", "save_checkpoint", "train", "write_curve"]

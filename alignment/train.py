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

Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer joins
a process group (NCCL on CUDA, Gloo on CPU), wraps the model in ``DistributedDataParallel``, gives
each rank its own shard of every batch stream (a ``DistributedSampler`` per epoch) and writes files
from rank 0 only. The loss of each rank is averaged by DDP's gradient all-reduce; the criterion's
box normaliser stays per rank (DETR all-reduces it; with equal per-rank batches the difference is
a constant factor). Not done: gradient accumulation and resuming from a checkpoint.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from anatomy_vlm.alignment.config import Config, build_model, config_from_dict
from anatomy_vlm.alignment.graph_knowledge import KnowledgeEmbedder
from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.alignment.losses import AlignmentLossConfig, build_criterion
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.datasets.collate import XrayBatch, collate_samples
from anatomy_vlm.encoder.roi import box_xyxy_to_cxcywh, normalize_boxes
from anatomy_vlm.ontology.json_io import ontology_from_dict, ontology_to_dict
from anatomy_vlm.ontology.model import Ontology

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
    region_ids: list[str] = field(default_factory=list)  # the region order of the model's queries
    embedder_state: dict[str, Any] | None = None  # KnowledgeEmbedder.state(): rebuilds the node embeddings
    ontology: Ontology | None = None  # the (variant) ontology trained against, when stored


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


def build_targets(batch: XrayBatch, finding_ids: Sequence[str], region_ids: Sequence[str],
                  holdout: Sequence[str] = ()) -> dict[str, Tensor]:
    """Criterion targets from a batch (on the batch's device).

    ``holdout`` findings get no label at all (NaN): the zero-shot protocol trains without them.

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
    hidden = [column[f] for f in holdout if f in column]
    if hidden:
        image_labels = image_labels.clone()
        image_labels[:, hidden] = float("nan")
        region_labels[:, :, hidden] = float("nan")
    device = batch.images.device
    return {
        "boxes": boxes,
        "box_present": batch.box_present.bool(),
        "image_labels": image_labels.to(device),
        "region_labels": region_labels.to(device),
    }


def _loader(dataset: Dataset, config: Config, finding_ids: Sequence[str], shuffle: bool, seed: int,
            dist_info: "_Distributed | None" = None) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if dist_info is not None and dist_info.enabled:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=dist_info.world_size, rank=dist_info.rank,
                                     shuffle=shuffle, seed=seed)
        shuffle = False  # the sampler shuffles
    return DataLoader(dataset, batch_size=config.train.batch_size, shuffle=shuffle, drop_last=False,
                      sampler=sampler, collate_fn=functools.partial(collate_samples, label_ids=list(finding_ids)),
                      generator=generator, num_workers=0)


def _endless(loader: DataLoader):
    epoch = 0
    while True:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)  # a new shuffle per epoch on every rank
        yield from loader
        epoch += 1


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


@dataclass
class _Distributed:
    """This process's place in a ``torchrun`` launch (world size 1 when not launched so)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> _Distributed:
    """Join the ``torchrun`` process group (once) when ``WORLD_SIZE`` > 1; this rank's place in it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine" and total_steps > warmup_steps:
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


class _TensorBoard:
    """Scalars to ``out_dir/tensorboard`` when ``torch.utils.tensorboard`` can be imported, else nothing."""

    def __init__(self, folder: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: CSV and PNG are always written
                return
            self.writer = SummaryWriter(str(folder))

    def log(self, row: dict[str, float], step: int, prefix: str) -> None:
        if self.writer is not None:
            for name, value in row.items():
                if name not in ("step", "stage", "split"):
                    self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(config: Config, knowledge: RegionKnowledge, train_dataset: Dataset,
          val_dataset: Dataset | None = None, *, embedder: KnowledgeEmbedder | None = None,
          ontology: Ontology | None = None) -> TrainResult:
    """Run the three stages; see the module docstring for what is written.

    ``embedder`` and ``ontology`` (what ``knowledge`` was built from) are stored in the checkpoint,
    so prediction can rebuild the knowledge, and embed a newer graph with the same frozen GNN.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be a Config, got {type(config).__name__}")
    if len(train_dataset) == 0:
        raise ValueError("train_dataset is empty")
    unknown = [f for f in config.train.holdout_findings if f not in knowledge.finding_ids]
    if unknown:
        raise ValueError(f"holdout_findings {unknown} are not scored findings of the knowledge")
    from tqdm.auto import tqdm

    tc = config.train
    device = resolve_device(tc.device)
    dist_info = init_distributed(device)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(tc.seed)  # same init on every rank; DDP also broadcasts rank 0's weights
    model_config = replace(config.model, node_dim=int(knowledge.node_embeddings.shape[1]))
    config = replace(config, model=model_config)
    model = build_model(model_config, knowledge).to(device)
    knowledge = knowledge.to(device)
    trained = model
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        # unused parameters: stage 1 trains no alignment head
        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=True)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr,
                                  weight_decay=tc.weight_decay)
    out_dir = Path(tc.out_dir)
    if dist_info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    board = _TensorBoard(out_dir / "tensorboard", tc.tensorboard and dist_info.is_main)
    batches = _endless(_loader(train_dataset, config, knowledge.finding_ids, shuffle=True, seed=tc.seed,
                               dist_info=dist_info))

    history: list[dict[str, float]] = []
    val_history: list[dict[str, float]] = []
    step = 0
    total_steps = sum(tc.steps_per_stage)
    model.train()
    with tqdm(total=total_steps, desc="train", disable=not (tc.progress and dist_info.is_main)) as bar:
        for stage, num_steps in enumerate(tc.steps_per_stage, start=1):
            criterion = build_criterion(AlignmentLossConfig(stage=stage, fine_mode=tc.fine_mode))
            for _ in range(num_steps):
                batch = next(batches).to(device)
                _check_image_size(batch, tc.image_size)
                targets = build_targets(batch, knowledge.finding_ids, knowledge.region_ids, tc.holdout_findings)
                for group in optimiser.param_groups:
                    group["lr"] = tc.lr * lr_factor(step, total_steps, tc.warmup_steps, tc.schedule)
                with autocast_context(device, tc.precision):
                    outputs = trained(batch.images, knowledge)
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
                    board.log(row, step, "train")
            if val_dataset is not None and len(val_dataset) and num_steps and dist_info.is_main:
                val = evaluate(model, knowledge, val_dataset, config, stage, device)
                val_history.append({"split": "val", "step": step, "stage": stage, **val})
                board.log(val, step, "val")

    model.eval()
    board.close()
    if not dist_info.is_main:
        return TrainResult(model=model, history=history, val_history=val_history)
    metrics_csv = _write_csv(history + val_history, out_dir / "metrics.csv")
    curve_png = write_curve(history, out_dir / "curve.png")
    checkpoint = save_checkpoint(out_dir / "checkpoint.pt", model, config, knowledge, step,
                                 embedder=embedder, ontology=ontology)
    return TrainResult(model=model, history=history, val_history=val_history, metrics_csv=metrics_csv,
                       curve_png=curve_png, checkpoint=checkpoint)


def save_checkpoint(path: str | Path, model: AnatomyVLM, config: Config, knowledge: RegionKnowledge,
                    step: int = 0, *, embedder: KnowledgeEmbedder | None = None,
                    ontology: Ontology | None = None) -> Path:
    """``torch.save`` the CPU state dict with the config, graph version, variant and finding ids
    (and the knowledge embedder's state and the ontology when given). Written atomically."""
    import io

    from anatomy_vlm.atomic import write_atomically

    path = Path(path)
    if config.model.node_dim is None:
        config = replace(config, model=replace(config.model, node_dim=model.node_dim))
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict(),
        "graph_version": knowledge.graph_version,
        "variant": knowledge.variant,
        "finding_ids": list(knowledge.finding_ids),
        "region_ids": list(knowledge.region_ids),
        "step": int(step),
        "embedder": embedder.state() if embedder is not None else None,
        "ontology": ontology_to_dict(ontology) if ontology is not None else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())  # a reader (the service) never sees half a checkpoint
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model of a checkpoint written by :func:`save_checkpoint` (CPU, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: say which, not a pickle traceback
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an alignment checkpoint (format {CHECKPOINT_FORMAT})")
    config = config_from_dict(data["config"])
    model = build_model(config.model)
    model.load_state_dict(data["model"])
    model.eval()
    ontology = data.get("ontology")
    return Checkpoint(model=model, config=config, graph_version=data["graph_version"], variant=data["variant"],
                      finding_ids=list(data["finding_ids"]), step=int(data["step"]),
                      region_ids=list(data.get("region_ids") or []), embedder_state=data.get("embedder"),
                      ontology=ontology_from_dict(ontology, where=str(path)) if ontology else None)


__all__ = ["Checkpoint", "TrainResult", "autocast_context", "build_targets", "evaluate", "init_distributed",
           "load_checkpoint",
           "lr_factor", "resolve_device", "save_checkpoint", "train", "write_curve"]

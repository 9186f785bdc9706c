"""Three-stage training of ``AnatomyVLM`` (kept apart from the library modules).

``train(config, knowledge, train_dataset, val_dataset=None)`` runs the paper's schedule with one
AdamW optimiser over all parameters (warm-up, then constant or cosine): stage 1 detection only, stage 2 adds
the global (CLS) alignment, stage 3 adds the fine-grained region alignment (``alignment.losses``).
It writes under ``config.train.out_dir``:

- ``metrics.csv``: one row per logged step (step, stage, every loss term, lr), plus validation
  rows (``split == "val"``) at the end of each stage when a validation set is given;
- ``curve.png``: the training total loss per step, one colour per stage (matplotlib, Agg);
- ``checkpoint.pt``: the library's checkpoint format (``alignment.checkpoint``): model state,
  aligner config, graph version, variant, scored ids, held-out findings, embedder, ontology.

Samples of any size are brought to the model's input by the factory's ``Preprocess`` at collate
time, the same transform prediction uses. Device and bf16 autocast come from
``alignment.device``; the model files hold no device or precision code.

Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer joins
a process group (NCCL on CUDA, Gloo on CPU), wraps the model in ``DistributedDataParallel``, gives
each rank its own shard of every batch stream (a ``DistributedSampler`` per epoch) and writes files
from rank 0 only. The loss of each rank is averaged by DDP's gradient all-reduce; the criterion's
box normaliser stays per rank (DETR all-reduces it; with equal per-rank batches the difference is
a constant factor). Not done: gradient accumulation and resuming from a checkpoint.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from anatomy_vlm.alignment.checkpoint import save_checkpoint
from anatomy_vlm.alignment.device import autocast_context, resolve_device
from anatomy_vlm.alignment.factory import build
from anatomy_vlm.alignment.losses import build_criterion
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.datasets.collate import XrayBatch, collate_samples
from anatomy_vlm.encoder.box_ops import box_xyxy_to_cxcywh, normalize_boxes
from anatomy_vlm.encoder.preprocess import Preprocess
from anatomy_vlm.knowledge import KnowledgeEmbedder, RegionKnowledge
from anatomy_vlm.ontology.model import Ontology
from anatomy_vlm.training.config import RunConfig
from anatomy_vlm.training.data import endless, make_loader


@dataclass
class TrainResult:
    """What a run produced."""

    model: AnatomyVLM  # the trained model (in eval mode, on the training device)
    history: list[dict[str, float]]  # one dict per logged training step (step, stage, losses, lr)
    val_history: list[dict[str, float]] = field(default_factory=list)  # mean val losses at the end of each stage
    metrics_csv: Path | None = None  # metrics.csv
    curve_png: Path | None = None  # curve.png
    checkpoint: Path | None = None  # checkpoint.pt


def build_targets(batch: XrayBatch, holdout_columns: Sequence[int] = ()) -> dict[str, Tensor]:
    """Criterion targets from a batch (on the batch's device); its label matrices are the model's columns.

    ``holdout_columns`` (findings whose labels training withholds) become NaN: the zero-shot protocol
    trains without them.

    Shapes: boxes ``[B, R, 4]`` cxcywh normalised; box_present ``[B, R]``; image_labels ``[B, F]``;
    region_labels ``[B, R, F]`` (NaN where unknown).
    """
    height, width = batch.images.shape[-2:]
    image_labels, region_labels = batch.image_labels.float(), batch.region_labels.float()
    if holdout_columns:
        image_labels, region_labels = image_labels.clone(), region_labels.clone()
        image_labels[:, list(holdout_columns)] = float("nan")
        region_labels[:, :, list(holdout_columns)] = float("nan")
    return {
        "boxes": box_xyxy_to_cxcywh(normalize_boxes(batch.boxes.float(), (height, width))),
        "box_present": batch.box_present.bool(),
        "image_labels": image_labels,
        "region_labels": region_labels,
    }


class BatchCollate:
    """Picklable ``collate_fn``: samples -> ``XrayBatch`` at the model's input size, labels over the
    knowledge's findings and regions."""

    def __init__(self, preprocess: Preprocess, knowledge: RegionKnowledge):
        self.preprocess = preprocess
        self.finding_ids, self.region_ids = list(knowledge.finding_ids), list(knowledge.region_ids)

    def __call__(self, samples) -> XrayBatch:
        return collate_samples(samples, self.finding_ids, self.region_ids, transform=self.preprocess.sample)


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
def evaluate(model: AnatomyVLM, knowledge: RegionKnowledge, dataset: Dataset, config: RunConfig, stage: int,
             device: torch.device) -> dict[str, float]:
    """Mean of every loss term of ``stage`` over ``dataset`` (eval mode)."""
    criterion = build_criterion(replace(config.loss, stage=stage))
    collate = BatchCollate(Preprocess(config.preprocess), knowledge)
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in make_loader(dataset, config.train.batch_size, collate, shuffle=False, seed=0):
        batch = batch.to(device)
        with autocast_context(device, config.train.precision):
            losses = criterion(model(batch.images, knowledge), build_targets(batch))
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


def train(config: RunConfig, knowledge: RegionKnowledge, train_dataset: Dataset,
          val_dataset: Dataset | None = None, *, embedder: KnowledgeEmbedder | None = None,
          ontology: Ontology | None = None) -> TrainResult:
    """Run the three stages; see the module docstring for what is written.

    ``embedder`` and ``ontology`` (what ``knowledge`` was built from) are stored in the checkpoint,
    so prediction can rebuild the knowledge, and embed a newer graph with the same frozen GNN.
    """
    if not isinstance(config, RunConfig):
        raise ValueError(f"config must be a RunConfig, got {type(config).__name__}")
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
    config = replace(config, model=replace(config.model, node_dim=int(knowledge.node_embeddings.shape[1])))
    aligner = build(config.aligner, knowledge)
    model = aligner.model.to(device)
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
    batches = endless(make_loader(train_dataset, tc.batch_size, BatchCollate(aligner.preprocess, knowledge),
                                  shuffle=True, seed=tc.seed, rank=dist_info.rank, world_size=dist_info.world_size))
    holdout = [knowledge.finding_ids.index(f) for f in tc.holdout_findings]

    history: list[dict[str, float]] = []
    val_history: list[dict[str, float]] = []
    step = 0
    total_steps = sum(tc.steps_per_stage)
    model.train()
    with tqdm(total=total_steps, desc="train", disable=not (tc.progress and dist_info.is_main)) as bar:
        for stage, num_steps in enumerate(tc.steps_per_stage, start=1):
            criterion = build_criterion(replace(config.loss, stage=stage))
            for _ in range(num_steps):
                batch = next(batches).to(device)
                targets = build_targets(batch, holdout)
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
    checkpoint = save_checkpoint(out_dir / "checkpoint.pt", model, config.aligner, knowledge, step,
                                 holdout_findings=tc.holdout_findings, embedder=embedder, ontology=ontology,
                                 run=config.to_dict()["train"])
    return TrainResult(model=model, history=history, val_history=val_history, metrics_csv=metrics_csv,
                       curve_png=curve_png, checkpoint=checkpoint)


__all__ = ["BatchCollate", "TrainResult", "build_targets", "evaluate", "init_distributed", "lr_factor", "train",
           "write_curve"]

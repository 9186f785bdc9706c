"""One command from a config to a trained, evaluated model: data, knowledge, training, evaluation.

``run(config)`` is what ``anatomy-vlm train CONFIG`` calls:

1. data: ``train.data_root`` holds ``train/``, ``val/`` and ``test/`` phantom folders; missing
   ones are generated (``train.phantom_counts`` images, ``train.phantom_size`` px or the model's
   input size, the split seeds of ``SPLIT_SEEDS`` so the splits never share an image) and reused;
2. knowledge: the ontology (``train.ontology``, default the packaged build) with the variant
   recipe applied (``train.variant_recipe``, e.g. a shuffled ``LOCATED_IN``), embedded by a
   ``KnowledgeEmbedder`` fitted to it (``config.knowledge``), indexed by ``knowledge.build_knowledge``;
3. training: ``training.trainer.train`` (the checkpoint stores the embedder and the ontology);
4. evaluation on the test split (``training.evaluation.evaluate_model``), written to
   ``out_dir/evaluation.json`` and CSVs;
5. optionally the segmentation transfer (``train.segmentation_steps`` > 0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from anatomy_vlm.alignment.device import resolve_device
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.encoder.preprocess import Preprocess
from anatomy_vlm.knowledge import KnowledgeEmbedder, RegionKnowledge, build_knowledge, cache_for
from anatomy_vlm.ontology.build import BUILT_OWL_PATH
from anatomy_vlm.ontology.files import load_ontology
from anatomy_vlm.ontology.model import Ontology
from anatomy_vlm.ontology.variants import apply_recipes, split_description
from anatomy_vlm.training.config import RunConfig
from anatomy_vlm.training.data import split_datasets
from anatomy_vlm.training.evaluation import EvaluationReport, evaluate_model
from anatomy_vlm.training.trainer import TrainResult, init_distributed, train


def run_datasets(config: RunConfig, *, progress: bool = True) -> dict[str, Dataset]:
    """The run's phantom splits (generated when missing)."""
    tc = config.train
    return split_datasets(tc.data_root, tc.phantom_size or config.preprocess.image_size, tc.phantom_counts,
                          progress=progress)


def load_run_ontology(config: RunConfig) -> Ontology:
    """The run's ontology (``train.ontology`` or the packaged build) with ``train.variant_recipe`` applied."""
    ontology = load_ontology(config.train.ontology or BUILT_OWL_PATH)
    if config.train.variant_recipe:
        ontology, _ = apply_recipes(ontology, split_description(config.train.variant_recipe))
    return ontology


def fit_knowledge(config: RunConfig, ontology: Ontology) -> tuple[KnowledgeEmbedder, RegionKnowledge]:
    """Fit the embedder to ``ontology`` and index it as the run's ``RegionKnowledge``."""
    embedder = KnowledgeEmbedder.fit(ontology, config.knowledge)
    return embedder, build_knowledge(ontology, embedder, variant=config.train.variant, cache=cache_for(config.knowledge))


@dataclass
class RunResult:
    """What ``run`` produced."""

    train: TrainResult
    evaluation: EvaluationReport | None  # on the test split, when there is one
    segmentation: list[dict[str, Any]] = field(default_factory=list)  # one row per arm
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    out_dir: Path | None = None


def run(config: RunConfig, *, progress: bool | None = None) -> RunResult:
    """Data, knowledge, training, evaluation (and segmentation transfer): see the module docstring."""
    progress = config.train.progress if progress is None else progress
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    distributed = init_distributed(resolve_device(config.train.device))
    if distributed.enabled:  # rank 0 generates missing phantoms; the others wait, then read them
        import torch.distributed as dist

        if distributed.is_main:
            run_datasets(config, progress=progress)
        dist.barrier()
    datasets = run_datasets(config, progress=progress and distributed.is_main)
    if "train" not in datasets:
        raise ValueError(f"no training images under {config.train.data_root}/train (phantom_counts.train is 0?)")
    seconds["data"] = time.perf_counter() - started

    started = time.perf_counter()
    ontology = load_run_ontology(config)
    embedder, knowledge = fit_knowledge(config, ontology)
    seconds["knowledge"] = time.perf_counter() - started

    started = time.perf_counter()
    trained = train(config, knowledge, datasets["train"], datasets.get("val"), embedder=embedder, ontology=ontology)
    seconds["train"] = time.perf_counter() - started
    if not distributed.is_main:  # rank 0 evaluates and writes; the other ranks are done
        return RunResult(train=trained, evaluation=None, seconds=seconds, out_dir=Path(config.train.out_dir))

    out_dir = Path(config.train.out_dir)
    evaluation = None
    segmentation: list[dict[str, Any]] = []
    if "test" in datasets:
        started = time.perf_counter()
        device = resolve_device(config.train.device)
        evaluation = evaluate_model(trained.model, knowledge, datasets["test"], Preprocess(config.preprocess),
                                    holdout=config.train.holdout_findings, batch_size=max(16, config.train.batch_size),
                                    device=device, precision=config.train.precision)
        seconds["evaluate"] = time.perf_counter() - started
        if config.train.segmentation_steps > 0:
            started = time.perf_counter()
            segmentation = segmentation_transfer_rows(trained.model, datasets["train"], datasets["test"], config)
            for row in segmentation:
                for key, value in row.items():
                    if key.endswith("_dice"):
                        evaluation.extra[f"seg_{row['arm']}_{key}"] = float(value)
            seconds["segmentation"] = time.perf_counter() - started
        evaluation.extra.update({f"{k}_s": v for k, v in seconds.items()})
        evaluation.write(out_dir)
    return RunResult(train=trained, evaluation=evaluation, segmentation=segmentation, seconds=seconds, out_dir=out_dir)


def segmentation_transfer_rows(model: AnatomyVLM, train_dataset: Dataset, test_dataset: Dataset,
                               config: RunConfig) -> list[dict[str, Any]]:
    """Heart and lung Dice of a small MONAI decoder on the frozen and the fine-tuned trunk."""
    from anatomy_vlm.training.segmentation import SegmentationConfig, segmentation_transfer

    seg_config = SegmentationConfig(steps=config.train.segmentation_steps, seed=config.train.seed,
                                    device=config.train.device, progress=config.train.progress)
    return segmentation_transfer(model.backbone, train_dataset, test_dataset, seg_config)


__all__ = ["RunResult", "fit_knowledge", "load_run_ontology", "run", "run_datasets", "segmentation_transfer_rows"]

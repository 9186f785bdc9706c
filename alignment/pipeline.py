"""One command from a config to a trained, evaluated model: data, knowledge, training, evaluation.

``run(config)`` is what ``anatomy-vlm train CONFIG`` calls:

1. data: ``train.data_root`` holds ``train/``, ``val/`` and ``test/`` phantom folders; missing
   ones are generated (``train.phantom_counts`` images at ``train.image_size``, the split seeds of
   ``SPLIT_SEEDS`` so the splits never share an image) and reused on the next run;
2. knowledge: the ontology (``train.ontology``, default the packaged build) with the variant
   recipe applied (``train.variant_recipe``, e.g. a shuffled ``LOCATED_IN``), embedded by a
   ``KnowledgeEmbedder`` fitted to it (``config.knowledge``), indexed as ``RegionKnowledge``;
3. training: ``alignment.train.train`` (the checkpoint stores the embedder and the ontology);
4. evaluation on the test split (:func:`evaluate_model`): region mAP@0.5 and IoU per region,
   image-level AUC / BMAC / F1 / ECE per class and macro over the labelled findings, the
   region-wise anatomy-to-finding AUC, and the same for the held-out (zero-shot) findings;
   written to ``out_dir/evaluation.json`` and CSVs;
5. optionally the segmentation transfer (``train.segmentation_steps`` > 0).

``variant_study`` runs the same config over several knowledge arms (canonical, enrichment off,
shuffled ``LOCATED_IN``) and tabulates their evaluations.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from anatomy_vlm.alignment.config import Config
from anatomy_vlm.alignment.graph_knowledge import KnowledgeEmbedder, build_region_knowledge, cache_for
from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.alignment.metrics import (
    ClassificationReport, DetectionReport, RegionFindingReport, classification_metrics, region_detection_metrics,
    region_finding_auc,
)
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.alignment.train import TrainResult, autocast_context, init_distributed, resolve_device, train
from anatomy_vlm.datasets.collate import collate_samples
from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
from anatomy_vlm.datasets.phantom.generate import MANIFEST, SPLIT_SEEDS, generate_phantoms
from anatomy_vlm.encoder.roi import normalize_boxes
from anatomy_vlm.ontology.build import BUILT_OWL_PATH
from anatomy_vlm.ontology.files import load_ontology
from anatomy_vlm.ontology.model import Ontology
from anatomy_vlm.ontology.variants import apply_recipes, split_description

SPLITS = ("train", "val", "test")


# -- data ------------------------------------------------------------------------------------
def _manifest_count(folder: Path) -> int:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return 0
    return sum(1 for line in manifest.read_text().splitlines() if line.strip())


def prepare_phantoms(root: str | Path, size: int, counts: dict[str, int], *, progress: bool = True) -> dict[str, Path]:
    """``{split: folder}`` under ``root``; a split whose folder lacks ``counts[split]`` images at
    ``size`` px is (re)generated, one that has them is reused as it is."""
    root = Path(root)
    folders = {}
    for split in SPLITS:
        n = int(counts.get(split, 0))
        folder = root / split
        folders[split] = folder
        if n <= 0:
            continue
        if _manifest_count(folder) == n and _phantom_size(folder) == size:
            continue
        generate_phantoms(n, folder, seed=SPLIT_SEEDS[split], size=size, progress=progress)
    return folders


def _phantom_size(folder: Path) -> int | None:
    manifest = folder / MANIFEST
    for line in manifest.read_text().splitlines():
        if line.strip():
            return int(json.loads(line).get("size", 0))
    return None


def split_datasets(config: Config, *, progress: bool = True) -> dict[str, Dataset]:
    """The run's phantom splits (generated when missing); splits with no images are left out."""
    tc = config.train
    if not tc.data_root:
        raise ValueError("train.data_root is empty: name a folder for the phantom splits")
    folders = prepare_phantoms(tc.data_root, tc.image_size, tc.phantom_counts, progress=progress)
    return {split: PhantomDataset(folder) for split, folder in folders.items() if _manifest_count(folder)}


# -- knowledge -------------------------------------------------------------------------------
def load_run_ontology(config: Config) -> Ontology:
    """The run's ontology (``train.ontology`` or the packaged build) with ``train.variant_recipe`` applied."""
    ontology = load_ontology(config.train.ontology or BUILT_OWL_PATH)
    if config.train.variant_recipe:
        ontology, _ = apply_recipes(ontology, split_description(config.train.variant_recipe))
    return ontology


def fit_knowledge(config: Config, ontology: Ontology) -> tuple[KnowledgeEmbedder, RegionKnowledge]:
    """Fit the embedder to ``ontology`` and index it as the run's ``RegionKnowledge``."""
    embedder = KnowledgeEmbedder.fit(ontology, config.knowledge)
    knowledge = build_region_knowledge(ontology, embedder, variant=config.train.variant,
                                       cache=cache_for(config.knowledge))
    return embedder, knowledge


# -- evaluation ------------------------------------------------------------------------------
@dataclass
class EvaluationReport:
    """Every metric of one model on one data set (see ``alignment.metrics`` for the rules)."""

    detection: DetectionReport
    classification: ClassificationReport | None  # the findings with labels that training saw
    region: RegionFindingReport | None  # region-wise anatomy-to-finding AUC, same findings
    zero_shot: ClassificationReport | None = None  # the held-out findings (never trained on)
    zero_shot_region: RegionFindingReport | None = None
    n_images: int = 0
    extra: dict[str, float] = field(default_factory=dict)  # e.g. segmentation Dice

    def summary(self) -> dict[str, float]:
        nan = float("nan")
        out = {"n_images": float(self.n_images), **self.detection.summary()}
        out.update(self.classification.summary() if self.classification else {"auc": nan})
        out.update(self.region.summary() if self.region else {})
        if self.zero_shot is not None:
            out.update({f"zero_shot_{k}": v for k, v in self.zero_shot.summary().items()})
        if self.zero_shot_region is not None:
            out.update({f"zero_shot_{k}": v for k, v in self.zero_shot_region.summary().items()})
        out.update(self.extra)
        return out

    def write(self, out_dir: str | Path) -> Path:
        """``evaluation.json`` (the summary) and one CSV per report under ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        reports = {"detection": self.detection, "classification": self.classification, "region": self.region,
                   "zero_shot": self.zero_shot, "zero_shot_region": self.zero_shot_region}
        for name, report in reports.items():
            if report is not None:
                rows = report.rows()
                with (out_dir / f"eval_{name}.csv").open("w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)
        path = out_dir / "evaluation.json"
        path.write_text(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                    for k, v in self.summary().items()}, indent=2) + "\n")
        return path


@torch.no_grad()
def collect_outputs(model: AnatomyVLM, knowledge: RegionKnowledge, dataset: Dataset, *, batch_size: int = 16,
                    device: torch.device | str = "cpu", precision: str = "fp32") -> dict[str, np.ndarray]:
    """Model outputs and targets over ``dataset``, stacked (numpy, CPU).

    Shapes: ``pred_boxes``/``gt_boxes`` ``[N, R, 4]`` xyxy normalised; ``presence``/``gt_present``
    ``[N, R]``; ``image_prob``/``image_labels`` ``[N, F]``; ``region_logits``/``region_labels``
    ``[N, R, F]`` (labels NaN where unknown).
    """
    device = torch.device(device)
    model.eval()
    knowledge = knowledge.to(device)
    region_row = {r: i for i, r in enumerate(knowledge.region_ids)}
    column = {f: j for j, f in enumerate(knowledge.finding_ids)}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pred_boxes", "presence", "gt_boxes", "gt_present",
                                                          "image_prob", "image_labels", "region_logits",
                                                          "region_labels")}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        collate_fn=lambda s: collate_samples(s, label_ids=list(knowledge.finding_ids)))
    for batch in loader:
        images = batch.images.to(device)
        with autocast_context(device, precision):
            out = model(images, knowledge)
        height, width = images.shape[-2:]
        parts["pred_boxes"].append(out["boxes_xyxy"].float().cpu().numpy())
        parts["presence"].append(torch.sigmoid(out["presence_logits"].float()).cpu().numpy())
        parts["gt_boxes"].append(normalize_boxes(batch.boxes.float(), (height, width)).numpy())
        parts["gt_present"].append(batch.box_present.bool().numpy())
        parts["image_prob"].append(torch.sigmoid(out["image_logits"].float()).cpu().numpy())
        parts["image_labels"].append(batch.image_labels.float().numpy())
        parts["region_logits"].append(out["region_logits"].float().cpu().numpy())
        labels = np.full((len(batch.samples), len(region_row), len(column)), np.nan, dtype=np.float32)
        for b, sample in enumerate(batch.samples):
            for region, values in sample.region_labels.items():
                for finding, value in values.items():
                    if region in region_row and finding in column:
                        labels[b, region_row[region], column[finding]] = value
        parts["region_labels"].append(labels)
    if not parts["pred_boxes"]:
        raise ValueError("the evaluation data set is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate_model(model: AnatomyVLM, knowledge: RegionKnowledge, dataset: Dataset, *,
                   holdout: Sequence[str] = (), batch_size: int = 16, device: torch.device | str = "cpu",
                   precision: str = "fp32") -> EvaluationReport:
    """Evaluate on ``dataset``: only findings with at least one known label enter the
    classification reports; ``holdout`` findings are reported apart as zero-shot."""
    data = collect_outputs(model, knowledge, dataset, batch_size=batch_size, device=device, precision=precision)
    detection = region_detection_metrics(data["pred_boxes"], data["presence"], data["gt_boxes"], data["gt_present"],
                                         region_names=knowledge.region_ids)
    labelled = [j for j in range(len(knowledge.finding_ids)) if not np.isnan(data["image_labels"][:, j]).all()]
    holdout_set = set(holdout)
    seen = [j for j in labelled if knowledge.finding_ids[j] not in holdout_set]
    unseen = [j for j in labelled if knowledge.finding_ids[j] in holdout_set]

    def reports(columns: list[int]) -> tuple[ClassificationReport | None, RegionFindingReport | None]:
        if not columns:
            return None, None
        names = [knowledge.finding_ids[j] for j in columns]
        image = classification_metrics(data["image_labels"][:, columns], data["image_prob"][:, columns], names)
        region = region_finding_auc(data["region_logits"][:, :, columns], data["region_labels"][:, :, columns],
                                    region_names=knowledge.region_ids, region_present=data["gt_present"])
        return image, region

    classification, region = reports(seen)
    zero_shot, zero_shot_region = reports(unseen)
    return EvaluationReport(detection=detection, classification=classification, region=region,
                            zero_shot=zero_shot, zero_shot_region=zero_shot_region, n_images=len(dataset))


def evaluate_checkpoint(path: str | Path, dataset: Dataset, *, ontology: Ontology | None = None,
                        batch_size: int = 16, device: str = "auto") -> EvaluationReport:
    """Evaluate a saved checkpoint on ``dataset`` against the ontology it stored (or ``ontology``)."""
    from anatomy_vlm.alignment.inference import Predictor

    predictor = Predictor.from_checkpoint(path, ontology=ontology, device=device)
    return evaluate_model(predictor.model, predictor.knowledge, dataset, holdout=predictor.holdout_findings,
                          batch_size=batch_size, device=predictor.device, precision=predictor.precision)


# -- the whole run ---------------------------------------------------------------------------
@dataclass
class RunResult:
    """What ``run`` produced."""

    train: TrainResult
    evaluation: EvaluationReport | None  # on the test split, when there is one
    segmentation: list[dict[str, Any]] = field(default_factory=list)  # one row per arm
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    out_dir: Path | None = None


def run(config: Config, *, progress: bool | None = None) -> RunResult:
    """Data, knowledge, training, evaluation (and segmentation transfer): see the module docstring."""
    progress = config.train.progress if progress is None else progress
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    distributed = init_distributed(resolve_device(config.train.device))
    if distributed.enabled:  # rank 0 generates missing phantoms; the others wait, then read them
        import torch.distributed as dist

        if distributed.is_main:
            split_datasets(config, progress=progress)
        dist.barrier()
    datasets = split_datasets(config, progress=progress and distributed.is_main)
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
        evaluation = evaluate_model(trained.model, knowledge, datasets["test"], holdout=config.train.holdout_findings,
                                    batch_size=max(16, config.train.batch_size), device=device,
                                    precision=config.train.precision)
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
                               config: Config) -> list[dict[str, Any]]:
    """Heart and lung Dice of a small MONAI decoder on the frozen and the fine-tuned trunk."""
    from anatomy_vlm.alignment.segmentation import SegmentationConfig, segmentation_transfer

    seg_config = SegmentationConfig(steps=config.train.segmentation_steps, seed=config.train.seed,
                                    device=config.train.device, progress=config.train.progress)
    return segmentation_transfer(model.backbone, train_dataset, test_dataset, seg_config)


# -- knowledge-variant study -----------------------------------------------------------------
STUDY_ARMS: dict[str, dict[str, Any]] = {
    "canonical": {},
    "enrichment-off": {"enrich": False},
    "shuffled": {"variant": "shuffled", "variant_recipe": "shuffle-located-in:seed=7"},
}
STUDY_COLUMNS = ("map50", "miou", "auc", "bmac", "f1", "ece", "region_auc", "zero_shot_auc", "zero_shot_region_auc")


def arm_config(config: Config, arm: str) -> Config:
    """``config`` changed for one arm of the study, writing under ``out_dir/<arm>``."""
    if arm not in STUDY_ARMS:
        raise ValueError(f"unknown study arm {arm!r}; known: {', '.join(STUDY_ARMS)}")
    changes = dict(STUDY_ARMS[arm])
    model = replace(config.model, enrich=changes.pop("enrich", config.model.enrich))
    train_config = replace(config.train, out_dir=str(Path(config.train.out_dir) / arm), **changes)
    return replace(config, model=model, train=train_config)


def variant_study(config: Config, arms: Sequence[str] = tuple(STUDY_ARMS)) -> list[dict[str, Any]]:
    """Train and evaluate ``config`` once per arm (same data, seed and steps); one summary row per arm.

    Writes ``out_dir/study.csv`` and ``out_dir/study.md`` (a Markdown table)."""
    rows = []
    for arm in arms:
        result = run(arm_config(config, arm))
        summary = result.evaluation.summary() if result.evaluation else {}
        rows.append({"arm": arm, **{k: summary.get(k, float("nan")) for k in STUDY_COLUMNS},
                     "train_s": result.seconds.get("train", float("nan"))})
    out_dir = Path(config.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "study.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "study.md").write_text(study_table(rows))
    return rows


def study_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of study rows (numbers to 3 decimals, NaN as n/a)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            value = row[c]
            if isinstance(value, float):
                cells.append("n/a" if math.isnan(value) else f"{value:.3f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["EvaluationReport", "RunResult", "STUDY_ARMS", "arm_config", "collect_outputs", "evaluate_checkpoint",
           "evaluate_model", "fit_knowledge", "load_run_ontology", "prepare_phantoms", "run",
           "segmentation_transfer_rows", "split_datasets", "study_table", "variant_study"]

"""Evaluation of an aligner on a data set: every metric of ``training.metrics`` in one report.

``evaluate_model`` runs the model over a data set (samples brought to its input by the same
``Preprocess`` that training and prediction use) and reports region mAP@0.5 and IoU per region,
image-level AUC / BMAC / F1 / ECE per class and macro over the labelled findings, the region-wise
anatomy-to-finding AUC, and the same for the held-out (zero-shot) findings apart.
``evaluate_checkpoint`` does it for a saved checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from anatomy_vlm.alignment.device import autocast_context
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.alignment.predictor import Predictor
from anatomy_vlm.encoder.box_ops import normalize_boxes
from anatomy_vlm.encoder.preprocess import Preprocess
from anatomy_vlm.knowledge import RegionKnowledge
from anatomy_vlm.ontology.model import Ontology
from anatomy_vlm.training.data import make_loader
from anatomy_vlm.training.metrics import (
    ClassificationReport, DetectionReport, RegionFindingReport, classification_metrics, region_detection_metrics,
    region_finding_auc,
)
from anatomy_vlm.training.trainer import BatchCollate


@dataclass
class EvaluationReport:
    """Every metric of one model on one data set (see ``training.metrics`` for the rules)."""

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
def collect_outputs(model: AnatomyVLM, knowledge: RegionKnowledge, dataset: Dataset, preprocess: Preprocess, *,
                    batch_size: int = 16, device: torch.device | str = "cpu",
                    precision: str = "fp32") -> dict[str, np.ndarray]:
    """Model outputs and targets over ``dataset``, stacked (numpy, CPU).

    Shapes: ``pred_boxes``/``gt_boxes`` ``[N, R, 4]`` xyxy normalised; ``presence``/``gt_present``
    ``[N, R]``; ``image_prob``/``image_labels`` ``[N, F]``; ``region_logits``/``region_labels``
    ``[N, R, F]`` (labels NaN where unknown).
    """
    device = torch.device(device)
    model.eval()
    knowledge = knowledge.to(device)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pred_boxes", "presence", "gt_boxes", "gt_present",
                                                          "image_prob", "image_labels", "region_logits",
                                                          "region_labels")}
    for batch in make_loader(dataset, batch_size, BatchCollate(preprocess, knowledge), shuffle=False, seed=0):
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
        parts["region_labels"].append(batch.region_labels.float().numpy())
    if not parts["pred_boxes"]:
        raise ValueError("the evaluation data set is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate_model(model: AnatomyVLM, knowledge: RegionKnowledge, dataset: Dataset, preprocess: Preprocess, *,
                   holdout: Sequence[str] = (), batch_size: int = 16, device: torch.device | str = "cpu",
                   precision: str = "fp32") -> EvaluationReport:
    """Evaluate on ``dataset``: only findings with at least one known label enter the
    classification reports; ``holdout`` findings are reported apart as zero-shot."""
    data = collect_outputs(model, knowledge, dataset, preprocess, batch_size=batch_size, device=device,
                           precision=precision)
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
    predictor = Predictor.from_checkpoint(path, source=ontology, device=device)
    return evaluate_model(predictor.model, predictor.knowledge, dataset, predictor.preprocess,
                          holdout=predictor.holdout_findings, batch_size=batch_size, device=predictor.device,
                          precision=predictor.precision)


__all__ = ["EvaluationReport", "collect_outputs", "evaluate_checkpoint", "evaluate_model"]

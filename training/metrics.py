"""Evaluation metrics: anatomy localisation, zero-shot classification, calibration, region-wise
anatomy-to-finding validation.

Plain numpy (torch tensors are accepted and copied to host); scikit-learn is not needed. Every
report is a dataclass whose ``rows()`` gives one ``dict`` per region / class plus a final
``"mean"`` / ``"macro"`` row, ready for ``csv.DictWriter``; ``summary()`` gives the scalars.

Conventions, in one place:

- **Unknown labels** are NaN and are skipped everywhere (per class, only the images with a known
  label count).
- **Single-label classes** (only positives or only negatives among the known labels) have no AUC,
  no sensitivity/specificity pair, and an F1 that says nothing about ranking: every per-class
  metric of such a class is reported as NaN, and macro averages are taken over the other classes
  only (``n_classes_scored`` says how many).
- **AUC** is the Mann-Whitney statistic with mid-ranks for ties: a tied (positive, negative) pair
  counts 1/2. It equals scikit-learn's ``roc_auc_score``.
- **F1** at a threshold ``t`` predicts positive when ``score >= t``; F1 = 2TP / (2TP + FP + FN).
  ``best_f1`` is the maximum over every threshold equal to an observed score (an oracle per-class
  threshold: optimistic, report it as such).
- **BMAC** (balanced mean accuracy) of a class = (sensitivity + specificity) / 2 at threshold 0.5
  (``score >= 0.5`` is positive); the macro BMAC is its mean over the scored classes.
- **ECE** uses 15 equal-width bins on [0, 1] (bin k holds p in (k/15, (k+1)/15], and bin 0 also
  holds p = 0) over all (image, class) probabilities with a known label:
  ECE = sum_k (n_k / n) * |mean(y in bin k) - mean(p in bin k)|.
- **Region mAP@0.5**: each region has one prediction per image (the query of that region), ranked
  over images by presence score (ties keep image order). A prediction is a true positive when the
  region is present in that image and IoU(pred, GT) >= 0.5, otherwise a false positive; the
  number of ground truths is the number of images where the region is present. AP is the area
  under the precision envelope (all-point interpolation, VOC 2010+). mAP is the mean over the
  regions that are present at least once. **Mean IoU** of a region averages IoU(pred, GT) over the
  images where the region is present, whatever the score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from anatomy_vlm.encoder.box_ops import box_cxcywh_to_xyxy, box_iou_numpy

__all__ = [
    "ClassMetrics",
    "ClassificationReport",
    "DetectionReport",
    "RegionDetection",
    "RegionFindingReport",
    "RegionFindingScore",
    "average_precision",
    "binary_auc",
    "classification_metrics",
    "expected_calibration_error",
    "f1_at_threshold",
    "best_f1",
    "region_detection_metrics",
    "region_finding_auc",
]

ArrayLike = object  # numpy array, torch tensor or nested sequence


def _np(x: ArrayLike, name: str, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} could not be read as a {np.dtype(dtype).name} array") from e


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


# ----------------------------------------------------------------------------------------------
# Binary building blocks (1-D, labels already free of NaN)
# ----------------------------------------------------------------------------------------------

def _check_binary(y_true: np.ndarray, y_score: np.ndarray) -> None:
    if y_true.ndim != 1 or y_true.shape != y_score.shape:
        raise ValueError(f"y_true and y_score must be 1-D of one length, got {y_true.shape} and {y_score.shape}")
    if np.isnan(y_true).any() or not np.isin(y_true, (0.0, 1.0)).all():
        raise ValueError("y_true must hold only 0 and 1 (drop unknown labels first)")
    if np.isnan(y_score).any():
        raise ValueError("y_score holds NaN")


def binary_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """ROC AUC by mid-ranks (ties count 1/2); NaN when only one class is present.

    Shapes: y_true ``[N]`` in {0, 1}; y_score ``[N]``.
    """
    y, s = _np(y_true, "y_true"), _np(y_score, "y_score")
    _check_binary(y, s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # mid-rank of each run of equal scores (ranks start at 1)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = 0.5 * (a + 1 + b)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def f1_at_threshold(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    """F1 with ``score >= threshold`` positive; 0 when there is no TP (NaN when no positives at all
    and none predicted). Shapes: ``[N]``, ``[N]``."""
    y, s = _np(y_true, "y_true"), _np(y_score, "y_score")
    _check_binary(y, s)
    pred = s >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else float("nan")


def best_f1(y_true: ArrayLike, y_score: ArrayLike) -> tuple[float, float]:
    """The highest F1 over thresholds equal to an observed score, and that threshold (the highest
    one when several tie). NaN, NaN when there is no positive. Shapes: ``[N]``, ``[N]``."""
    y, s = _np(y_true, "y_true"), _np(y_score, "y_score")
    _check_binary(y, s)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan"), float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    last_of_run = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # threshold = this score keeps the whole run
    tp, fp, thr = tp[last_of_run], fp[last_of_run], s_sorted[last_of_run]
    f1 = 2 * tp / (tp + fp + n_pos)  # 2TP / (2TP + FP + FN) with FN = n_pos - TP
    k = int(np.argmax(f1))
    return float(f1[k]), float(thr[k])


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 15) -> float:
    """ECE over every entry with a known label (NaN labels skipped); see the module docstring.

    Shapes: any, the same for both (e.g. ``[N, C]``). NaN when no label is known.
    """
    y, p = _np(y_true, "y_true").ravel(), _np(y_prob, "y_prob").ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_prob must have one shape, got {np.shape(y_true)} and {np.shape(y_prob)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    known = ~np.isnan(y)
    y, p = y[known], p[known]
    if y.size == 0:
        return float("nan")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("y_prob must be probabilities in [0, 1] wherever the label is known")
    bins = np.clip(np.ceil(p * n_bins).astype(np.int64) - 1, 0, n_bins - 1)  # (k/n, (k+1)/n] -> k
    ece = 0.0
    for k in range(n_bins):
        in_bin = bins == k
        if in_bin.any():
            ece += in_bin.mean() * abs(float(y[in_bin].mean()) - float(p[in_bin].mean()))
    return float(ece)


# ----------------------------------------------------------------------------------------------
# Image-level classification
# ----------------------------------------------------------------------------------------------

@dataclass
class ClassMetrics:
    """One class's metrics (NaN where the class is single-label; see the module docstring)."""

    name: str  # the class (concept id or label name)
    n_pos: int  # images with a known positive label
    n_neg: int  # images with a known negative label
    auc: float  # ROC AUC (mid-ranks for ties)
    f1: float  # F1 at the report's threshold
    best_f1: float  # F1 at the best observed-score threshold (oracle, optimistic)
    best_threshold: float  # the threshold that gives best_f1
    sensitivity: float  # TP / (TP + FN) at the threshold
    specificity: float  # TN / (TN + FP) at the threshold
    bmac: float  # (sensitivity + specificity) / 2


@dataclass
class ClassificationReport:
    """Per-class metrics, their macro averages over scored classes, and the ECE."""

    classes: list[ClassMetrics]  # one per column, in column order
    threshold: float  # the decision threshold of f1, sensitivity, specificity and bmac
    macro_auc: float  # mean AUC over the scored (two-label) classes
    macro_f1: float  # mean F1 at the threshold over the scored classes
    macro_best_f1: float  # mean best F1 over the scored classes
    macro_bmac: float  # mean BMAC over the scored classes
    ece: float  # expected calibration error, 15 bins, over all known (image, class) pairs
    n_classes_scored: int  # classes with both labels among the known ones

    def rows(self) -> list[dict[str, object]]:
        """One row per class, then a ``"macro"`` row (its ece column holds the ECE)."""
        rows: list[dict[str, object]] = [{**asdict(c), "ece": float("nan")} for c in self.classes]
        rows.append({"name": "macro", "n_pos": sum(c.n_pos for c in self.classes),
                     "n_neg": sum(c.n_neg for c in self.classes), "auc": self.macro_auc, "f1": self.macro_f1,
                     "best_f1": self.macro_best_f1, "best_threshold": float("nan"),
                     "sensitivity": _nanmean([c.sensitivity for c in self.classes]),
                     "specificity": _nanmean([c.specificity for c in self.classes]),
                     "bmac": self.macro_bmac, "ece": self.ece})
        return rows

    def summary(self) -> dict[str, float]:
        return {"auc": self.macro_auc, "f1": self.macro_f1, "best_f1": self.macro_best_f1,
                "bmac": self.macro_bmac, "ece": self.ece, "n_classes_scored": float(self.n_classes_scored)}


def classification_metrics(y_true: ArrayLike, y_prob: ArrayLike, class_names: Sequence[str] | None = None,
                           threshold: float = 0.5, ece_bins: int = 15) -> ClassificationReport:
    """Image-level multi-label metrics.

    Shapes:
        y_true ``[N, C]`` in {0, 1} with NaN = unknown; y_prob ``[N, C]`` probabilities in [0, 1]
        (apply the sigmoid to logits first); class_names ``C`` names (default ``"0" .. "C-1"``).
    """
    y, p = _np(y_true, "y_true"), _np(y_prob, "y_prob")
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"y_true and y_prob must both be [N, C], got {y.shape} and {p.shape}")
    names = [str(i) for i in range(y.shape[1])] if class_names is None else [str(n) for n in class_names]
    if len(names) != y.shape[1]:
        raise ValueError(f"class_names has {len(names)} names for {y.shape[1]} columns")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    known_all = ~np.isnan(y)
    if not np.isin(y[known_all], (0.0, 1.0)).all():
        raise ValueError("y_true must hold only 0, 1 or NaN")
    if np.isnan(p[known_all]).any() or (p[known_all] < 0).any() or (p[known_all] > 1).any():
        raise ValueError("y_prob must be probabilities in [0, 1] wherever the label is known")
    classes: list[ClassMetrics] = []
    nan = float("nan")
    for j, name in enumerate(names):
        known = known_all[:, j]
        yj, pj = y[known, j], p[known, j]
        n_pos = int(yj.sum())
        n_neg = int(yj.size - n_pos)
        if n_pos == 0 or n_neg == 0:
            classes.append(ClassMetrics(name, n_pos, n_neg, nan, nan, nan, nan, nan, nan, nan))
            continue
        pred = pj >= threshold
        sens = float(np.sum(pred & (yj == 1)) / n_pos)
        spec = float(np.sum(~pred & (yj == 0)) / n_neg)
        bf1, bthr = best_f1(yj, pj)
        classes.append(ClassMetrics(name, n_pos, n_neg, binary_auc(yj, pj), f1_at_threshold(yj, pj, threshold),
                                    bf1, bthr, sens, spec, 0.5 * (sens + spec)))
    scored = [c for c in classes if not math.isnan(c.auc)]
    return ClassificationReport(
        classes=classes, threshold=float(threshold),
        macro_auc=_nanmean([c.auc for c in scored]), macro_f1=_nanmean([c.f1 for c in scored]),
        macro_best_f1=_nanmean([c.best_f1 for c in scored]), macro_bmac=_nanmean([c.bmac for c in scored]),
        ece=expected_calibration_error(y, p, ece_bins), n_classes_scored=len(scored))


# ----------------------------------------------------------------------------------------------
# Region localisation
# ----------------------------------------------------------------------------------------------

def _to_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    if box_format == "xyxy":
        return boxes
    if box_format == "cxcywh":
        return box_cxcywh_to_xyxy(torch.as_tensor(boxes)).numpy()
    raise ValueError(f"box_format must be 'xyxy' or 'cxcywh', got {box_format!r}")


def average_precision(scores: ArrayLike, is_tp: ArrayLike, num_gt: int) -> float:
    """All-point-interpolated AP of detections ranked by score (ties keep input order).

    Shapes: scores ``[D]``; is_tp ``[D]`` bool. NaN when ``num_gt`` is 0.
    """
    s, tp = _np(scores, "scores"), _np(is_tp, "is_tp", dtype=bool)
    if s.shape != tp.shape or s.ndim != 1:
        raise ValueError(f"scores and is_tp must be 1-D of one length, got {s.shape} and {tp.shape}")
    if num_gt <= 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    tp_sorted = tp[order].astype(np.float64)
    ctp, cfp = np.cumsum(tp_sorted), np.cumsum(1.0 - tp_sorted)
    recall = np.r_[0.0, ctp / num_gt, 1.0]  # VOC sentinels
    precision = np.r_[0.0, ctp / np.maximum(ctp + cfp, 1.0), 0.0]
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


@dataclass
class RegionDetection:
    """One region's localisation metrics."""

    name: str  # the region (Chest ImaGenome id or name)
    n_present: int  # images where the region is annotated present
    ap50: float  # AP at IoU 0.5 over images ranked by presence score (NaN when never present)
    mean_iou: float  # mean IoU(pred, GT) over the images where it is present (NaN when never present)


@dataclass
class DetectionReport:
    """Per-region AP@IoU and mean IoU, and their means over regions present at least once."""

    regions: list[RegionDetection]  # one per region, in region order
    iou_threshold: float  # the IoU at which a prediction counts as a true positive
    map50: float  # mean AP over regions present at least once
    miou: float  # mean of the per-region mean IoU, over the same regions

    def rows(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = [asdict(r) for r in self.regions]
        rows.append({"name": "mean", "n_present": sum(r.n_present for r in self.regions),
                     "ap50": self.map50, "mean_iou": self.miou})
        return rows

    def summary(self) -> dict[str, float]:
        return {"map50": self.map50, "miou": self.miou}


def region_detection_metrics(pred_boxes: ArrayLike, presence_scores: ArrayLike, gt_boxes: ArrayLike,
                             gt_present: ArrayLike, region_names: Sequence[str] | None = None,
                             iou_threshold: float = 0.5,
                             box_format: Literal["xyxy", "cxcywh"] = "xyxy") -> DetectionReport:
    """Region box mAP@``iou_threshold`` and mean IoU (see the module docstring for the rules).

    Shapes:
        pred_boxes ``[N, R, 4]`` and gt_boxes ``[N, R, 4]`` in one unit (pixels or normalised) and
        in ``box_format``; presence_scores ``[N, R]`` (probabilities or logits: only the order
        counts); gt_present ``[N, R]`` bool; region_names ``R`` names (default ``"0" .. "R-1"``).
    """
    pb, gb = _np(pred_boxes, "pred_boxes"), _np(gt_boxes, "gt_boxes")
    sc, present = _np(presence_scores, "presence_scores"), _np(gt_present, "gt_present", dtype=bool)
    if pb.ndim != 3 or pb.shape[-1] != 4:
        raise ValueError(f"pred_boxes must be [N, R, 4], got {pb.shape}")
    if gb.shape != pb.shape:
        raise ValueError(f"gt_boxes must be {list(pb.shape)}, got {list(gb.shape)}")
    if sc.shape != pb.shape[:2] or present.shape != pb.shape[:2]:
        raise ValueError(f"presence_scores and gt_present must be {list(pb.shape[:2])}, got {list(sc.shape)} "
                         f"and {list(present.shape)}")
    if np.isnan(sc).any():
        raise ValueError("presence_scores holds NaN")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    names = [str(i) for i in range(pb.shape[1])] if region_names is None else [str(n) for n in region_names]
    if len(names) != pb.shape[1]:
        raise ValueError(f"region_names has {len(names)} names for {pb.shape[1]} regions")
    iou = box_iou_numpy(_to_xyxy(pb, box_format), _to_xyxy(gb, box_format))  # [N, R]
    iou = np.where(present, np.nan_to_num(iou, nan=0.0), 0.0)
    regions = []
    for r, name in enumerate(names):
        n_present = int(present[:, r].sum())
        tp = present[:, r] & (iou[:, r] >= iou_threshold)
        ap = average_precision(sc[:, r], tp, n_present)
        miou = float(iou[present[:, r], r].mean()) if n_present else float("nan")
        regions.append(RegionDetection(name, n_present, ap, miou))
    return DetectionReport(regions, float(iou_threshold), _nanmean([r.ap50 for r in regions]),
                           _nanmean([r.mean_iou for r in regions]))


# ----------------------------------------------------------------------------------------------
# Region-wise anatomy-to-finding validation
# ----------------------------------------------------------------------------------------------

@dataclass
class RegionFindingScore:
    """How well one region's finding scores rank that region's finding labels."""

    name: str  # the region
    n_pos: int  # known positive (image, finding) pairs in this region
    n_neg: int  # known negative (image, finding) pairs in this region
    auc: float  # pooled AUC over all known (image, finding) pairs of the region
    macro_auc: float  # mean over findings (with both labels in this region) of the per-finding AUC
    n_findings_scored: int  # findings that entered macro_auc


@dataclass
class RegionFindingReport:
    """Per-region AUCs and their means over the regions that could be scored."""

    regions: list[RegionFindingScore]  # one per region, in region order
    mean_auc: float  # mean pooled AUC over regions with both labels
    mean_macro_auc: float  # mean macro AUC over regions with at least one scored finding

    def rows(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = [asdict(r) for r in self.regions]
        rows.append({"name": "mean", "n_pos": sum(r.n_pos for r in self.regions),
                     "n_neg": sum(r.n_neg for r in self.regions), "auc": self.mean_auc,
                     "macro_auc": self.mean_macro_auc,
                     "n_findings_scored": sum(r.n_findings_scored for r in self.regions)})
        return rows

    def summary(self) -> dict[str, float]:
        return {"region_auc": self.mean_auc, "region_macro_auc": self.mean_macro_auc}


def region_finding_auc(region_scores: ArrayLike, region_labels: ArrayLike,
                       region_names: Sequence[str] | None = None,
                       region_present: ArrayLike | None = None) -> RegionFindingReport:
    """The paper's region-wise anatomy-to-finding validation, averaged over regions.

    For region r, every (image, finding) pair with a known label (and, when ``region_present`` is
    given, only images where r is present) is scored: ``auc`` pools them all, ``macro_auc``
    averages the per-finding AUCs of the findings with both labels. Regions without both labels
    are NaN and left out of the means.

    Shapes:
        region_scores ``[N, R, F]`` (any monotone score: logits or probabilities);
        region_labels ``[N, R, F]`` in {0, 1}, NaN = unknown; region_present ``[N, R]`` bool.
    """
    s, y = _np(region_scores, "region_scores"), _np(region_labels, "region_labels")
    if s.ndim != 3 or s.shape != y.shape:
        raise ValueError(f"region_scores and region_labels must both be [N, R, F], got {s.shape} and {y.shape}")
    known = ~np.isnan(y)
    if region_present is not None:
        present = _np(region_present, "region_present", dtype=bool)
        if present.shape != s.shape[:2]:
            raise ValueError(f"region_present must be {list(s.shape[:2])}, got {list(present.shape)}")
        known &= present[:, :, None]
    if not np.isin(y[known], (0.0, 1.0)).all():
        raise ValueError("region_labels must hold only 0, 1 or NaN")
    if np.isnan(s[known]).any():
        raise ValueError("region_scores holds NaN where a label is known")
    names = [str(i) for i in range(s.shape[1])] if region_names is None else [str(n) for n in region_names]
    if len(names) != s.shape[1]:
        raise ValueError(f"region_names has {len(names)} names for {s.shape[1]} regions")
    regions = []
    for r, name in enumerate(names):
        k = known[:, r, :]  # [N, F]
        yr, sr = y[:, r, :][k], s[:, r, :][k]
        n_pos = int(yr.sum())
        per_finding = []
        for f in range(s.shape[2]):
            kf = k[:, f]
            if kf.any():
                per_finding.append(binary_auc(y[kf, r, f], s[kf, r, f]))
        scored = [a for a in per_finding if not math.isnan(a)]
        regions.append(RegionFindingScore(name, n_pos, int(yr.size - n_pos), binary_auc(yr, sr),
                                          _nanmean(scored), len(scored)))
    return RegionFindingReport(regions, _nanmean([r.auc for r in regions]),
                               _nanmean([r.macro_auc for r in regions]))

"""Evaluation metrics against tiny hand-computed examples."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch

from anatomy_vlm.encoder.box_ops import box_iou_numpy
from anatomy_vlm.training.metrics import (
    average_precision,
    best_f1,
    binary_auc,
    classification_metrics,
    expected_calibration_error,
    f1_at_threshold,
    region_detection_metrics,
    region_finding_auc,
)

Y = [1, 1, 0, 0, 1]
S = [0.9, 0.4, 0.6, 0.2, 0.7]


def test_auc_with_ties_by_hand():
    # pairs (pos, neg): (0.4, 0.1) 1, (0.4, 0.4) 1/2, (0.8, 0.1) 1, (0.8, 0.4) 1 -> 3.5 / 4
    assert binary_auc([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.8]) == pytest.approx(0.875)
    assert binary_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert binary_auc([0, 0, 1], [0.1, 0.2, 0.3]) == pytest.approx(1.0)
    assert binary_auc([1, 1, 0], [0.1, 0.2, 0.3]) == pytest.approx(0.0)
    assert math.isnan(binary_auc([1, 1], [0.1, 0.2]))
    assert binary_auc(torch.tensor([0.0, 1.0]), torch.tensor([0.2, 0.8])) == 1.0


def test_auc_equals_sklearn_on_random_ties():
    import sklearn.metrics as sklearn_metrics  # a test dependency: the reference implementation
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.integers(0, 10, 200) / 10.0  # many ties
    assert binary_auc(y, s) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)


def test_f1_and_best_f1_by_hand():
    # threshold 0.5: TP 2 (0.9, 0.7), FP 1 (0.6), FN 1 (0.4) -> 2*2 / (4 + 1 + 1)
    assert f1_at_threshold(Y, S, 0.5) == pytest.approx(4 / 6)
    # threshold 0.4: TP 3, FP 1, FN 0 -> 6 / 7, the best
    f1, thr = best_f1(Y, S)
    assert f1 == pytest.approx(6 / 7)
    assert thr == pytest.approx(0.4)
    assert f1_at_threshold([0, 0], [0.9, 0.1], 0.5) == 0.0


def test_classification_report_bmac_and_macro_skip_single_label_columns():
    y = np.array([Y, [1, 1, 1, 1, 1], [0, 1, float("nan"), 0, 1]], dtype=float).T  # [5, 3]
    p = np.array([S, [0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.9, 0.99, 0.3, 0.8]]).T
    report = classification_metrics(y, p, ["a", "only_pos", "c"])
    a, only_pos, c = report.classes
    assert a.sensitivity == pytest.approx(2 / 3) and a.specificity == pytest.approx(1 / 2)
    assert a.bmac == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert a.auc == pytest.approx(5 / 6)  # positives 0.9, 0.4, 0.7 vs negatives 0.6, 0.2: 5 of 6 pairs
    assert (only_pos.n_pos, only_pos.n_neg) == (5, 0)
    assert all(math.isnan(v) for v in (only_pos.auc, only_pos.f1, only_pos.bmac, only_pos.best_f1))
    assert (c.n_pos, c.n_neg) == (2, 2)  # the NaN row is skipped
    assert c.auc == 1.0 and c.f1 == 1.0 and c.bmac == 1.0
    assert report.n_classes_scored == 2
    assert report.macro_auc == pytest.approx((5 / 6 + 1) / 2)
    assert report.macro_bmac == pytest.approx(((2 / 3 + 1 / 2) / 2 + 1) / 2)
    assert report.macro_f1 == pytest.approx((4 / 6 + 1) / 2)
    rows = report.rows()
    assert [r["name"] for r in rows] == ["a", "only_pos", "c", "macro"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    assert buffer.getvalue().count("\n") == 5
    assert set(report.summary()) >= {"auc", "f1", "bmac", "ece"}


def test_ece_perfectly_calibrated_is_zero_and_overconfident_is_not():
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error([0, 0], [0.9, 0.9]) == pytest.approx(0.9)
    # NaN labels are skipped: the overconfident pair is unknown here
    assert expected_calibration_error(np.r_[y, np.nan, np.nan], np.r_[p, 0.9, 0.9]) == pytest.approx(0.0, abs=1e-12)
    # two bins: |1 - 0.9| * 1/2 + |0 - 0.1| * 1/2
    assert expected_calibration_error([1, 0], [0.9, 0.1]) == pytest.approx(0.1)
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([1, 0], [1.5, 0.0])


def _boxes(n: int = 3, r: int = 2) -> np.ndarray:
    base = np.array([[10.0, 10.0, 50.0, 60.0], [60.0, 20.0, 90.0, 80.0]])[:r]
    return np.repeat(base[None], n, axis=0) + np.arange(n)[:, None, None]  # [n, r, 4]


def test_map_is_one_for_perfect_boxes_and_drops_for_a_shifted_box():
    gt = _boxes()
    present = np.ones((3, 2), dtype=bool)
    present[2, 1] = False  # region 1 absent in image 2
    scores = np.where(present, 0.9, 0.1)
    report = region_detection_metrics(gt.copy(), scores, gt, present, ["r0", "r1"])
    assert report.map50 == pytest.approx(1.0)
    assert report.miou == pytest.approx(1.0)
    assert [r.n_present for r in report.regions] == [3, 2]
    shifted = gt.copy()
    shifted[0, 0] += np.array([30.0, 0.0, 30.0, 0.0])  # IoU = 10*50 / (2*40*50 - 10*50) = 1/7 < 0.5
    assert box_iou_numpy(shifted[0, 0], gt[0, 0]) == pytest.approx(1 / 7)
    report = region_detection_metrics(shifted, scores, gt, present)
    r0, r1 = report.regions
    assert r1.ap50 == pytest.approx(1.0)
    # ties keep image order: FP, TP, TP over 3 ground truths -> recall 1/3, 2/3 at precision 1/2, 2/3;
    # the envelope lifts the first to 2/3, and recall never reaches 1: AP = 2/3 * 2/3
    assert r0.ap50 == pytest.approx(4 / 9)
    assert r0.mean_iou == pytest.approx((1 / 7 + 2) / 3)
    assert report.map50 == pytest.approx((4 / 9 + 1) / 2)
    assert report.rows()[-1]["name"] == "mean"


def test_map_ranks_by_presence_score_and_accepts_cxcywh():
    gt_xyxy = _boxes(2, 1)
    gt = np.concatenate([(gt_xyxy[..., :2] + gt_xyxy[..., 2:]) / 2, gt_xyxy[..., 2:] - gt_xyxy[..., :2]], -1)
    present = np.array([[True], [False]])
    low_score_on_present = np.array([[0.2], [0.8]])  # the FP ranks first
    report = region_detection_metrics(torch.tensor(gt), torch.tensor(low_score_on_present), gt, present,
                                      box_format="cxcywh")
    assert report.map50 == pytest.approx(0.5)
    with pytest.raises(ValueError, match="box_format"):
        region_detection_metrics(gt, low_score_on_present, gt, present, box_format="xywh")  # type: ignore[arg-type]


def test_average_precision_hand_values():
    assert average_precision([0.9, 0.8, 0.7], [1, 0, 1], 3) == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)
    assert math.isnan(average_precision([0.5], [0], 0))


def test_region_finding_auc_averages_over_regions():
    # 3 images, 2 regions, 2 findings
    scores = np.array([
        [[0.9, 0.1], [0.5, 0.5]],
        [[0.2, 0.8], [0.5, 0.4]],
        [[0.3, 0.3], [0.1, 0.9]],
    ])
    labels = np.array([
        [[1, 0], [1, 0]],
        [[0, 1], [0, 0]],
        [[0, np.nan], [0, 1]],
    ], dtype=float)
    report = region_finding_auc(scores, labels, ["r0", "r1"])
    r0, r1 = report.regions
    assert r0.auc == pytest.approx(1.0) and r0.macro_auc == pytest.approx(1.0)
    # region 1 pooled: positives 0.5, 0.9; negatives 0.5, 0.5, 0.4, 0.1 -> (0.5 + 0.5 + 1 + 1 + 4) / 8
    assert r1.auc == pytest.approx(7 / 8)
    # per finding: f0 positive 0.5 vs negatives 0.5, 0.1 -> 0.75; f1 positive 0.9 vs 0.5, 0.4 -> 1
    assert r1.macro_auc == pytest.approx(0.875)
    assert report.mean_auc == pytest.approx((1.0 + 7 / 8) / 2)
    assert report.mean_macro_auc == pytest.approx((1.0 + 0.875) / 2)
    present = np.array([[True, True], [True, True], [True, False]])
    masked = region_finding_auc(scores, labels, region_present=present)
    assert masked.regions[1].n_pos == 1


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="1-D"):
        binary_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        binary_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        classification_metrics(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="class_names"):
        classification_metrics(np.zeros((2, 2)), np.zeros((2, 2)), ["a"])
    with pytest.raises(ValueError, match="probabilities"):
        classification_metrics(np.array([[0.0], [1.0]]), np.array([[0.2], [3.0]]))
    with pytest.raises(ValueError, match="gt_boxes"):
        region_detection_metrics(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((2, 2, 4)), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="iou_threshold"):
        region_detection_metrics(np.zeros((1, 1, 4)), np.zeros((1, 1)), np.zeros((1, 1, 4)), np.ones((1, 1), bool),
                                 iou_threshold=0.0)
    with pytest.raises(ValueError, match="region_present"):
        region_finding_auc(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), region_present=np.ones((2, 2), bool))

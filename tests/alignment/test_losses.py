"""CPU invariants of the alignment losses on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from anatomy_vlm.alignment.losses import (
    LOSS_TERMS,
    AlignmentCriterion,
    AlignmentLossConfig,
    anatomy_loss,
    build_criterion,
    default_weight_dict,
    fine_loss,
    global_loss,
)
from anatomy_vlm.encoder.box_ops import box_cxcywh_to_xyxy, elementwise_generalized_box_iou

B, R, E, NF = 2, 3, 8, 5


def make_targets(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 0.3 + 0.4 * torch.rand(B, R, 2, generator=g)
    sizes = 0.1 + 0.2 * torch.rand(B, R, 2, generator=g)
    present = torch.tensor([[True, True, False], [True, False, True]])
    region_labels = (torch.rand(B, R, NF, generator=g) > 0.6).float()
    region_labels[0, 0, 1] = float("nan")
    image_labels = (torch.rand(B, 4, generator=g) > 0.5).float()
    image_labels[1, 2] = float("nan")
    return {"boxes": torch.cat([centres, sizes], -1), "box_present": present, "region_labels": region_labels,
            "image_labels": image_labels, "image_label_index": torch.tensor([0, 2, 3, 4])}


def make_outputs(targets: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "boxes": (targets["boxes"] + 0.05 * torch.randn(B, R, 4, generator=g)).requires_grad_(),
        "presence_logits": torch.randn(B, R, generator=g, requires_grad=True),
        "region_embeddings": torch.randn(B, R, E, generator=g, requires_grad=True),
        "image_embedding": torch.randn(B, E, generator=g, requires_grad=True),
        "finding_embeddings": torch.randn(NF, E, generator=g, requires_grad=True),
        "logit_scale": torch.tensor(math.log(10.0), requires_grad=True),
    }


def test_identical_boxes_give_zero_box_losses_and_shifted_boxes_positive():
    t = make_targets()
    present_logits = torch.where(t["box_present"], 20.0, -20.0)
    out = anatomy_loss(t["boxes"].clone(), present_logits, t["boxes"], t["box_present"])
    assert out["box_l1_loss"].item() == 0.0
    assert out["box_giou_loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["presence_loss"].item() < 1e-6
    shifted = t["boxes"].clone()
    shifted[..., 0] += 0.1
    out = anatomy_loss(shifted, torch.zeros(B, R), t["boxes"], t["box_present"])
    n_present = int(t["box_present"].sum())
    assert out["box_l1_loss"].item() == pytest.approx(0.1, rel=1e-5)  # 0.1 per present box / n_present boxes
    assert out["box_giou_loss"].item() > 0
    assert out["presence_loss"].item() == pytest.approx(math.log(2), rel=1e-5)
    assert n_present == 4


def test_giou_matches_hand_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 3.0, 1.0]])
    giou = elementwise_generalized_box_iou(a, b)
    assert giou[0].item() == pytest.approx(1.0, abs=1e-6)
    assert giou[1].item() == pytest.approx(0.0 - (3.0 - 2.0) / 3.0, abs=1e-6)  # disjoint: -|C \ U| / |C|
    assert box_cxcywh_to_xyxy(torch.tensor([0.5, 0.5, 0.2, 0.4])).tolist() == pytest.approx([0.4, 0.3, 0.6, 0.7])


def test_absent_regions_contribute_no_box_loss():
    t = make_targets()
    pred = t["boxes"].clone()
    pred[~t["box_present"]] = torch.tensor([0.9, 0.9, 0.05, 0.05])  # wildly wrong where absent
    garbage = t["boxes"].clone()
    garbage[~t["box_present"]] = float("nan")  # absent targets are never read
    out = anatomy_loss(pred, torch.zeros(B, R), garbage, t["box_present"])
    assert out["box_l1_loss"].item() == 0.0
    assert out["box_giou_loss"].item() == pytest.approx(0.0, abs=1e-6)


def test_no_present_region_gives_zero_with_gradient():
    t = make_targets()
    pred = t["boxes"].clone().requires_grad_()
    out = anatomy_loss(pred, torch.zeros(B, R), t["boxes"], torch.zeros(B, R, dtype=torch.bool))
    (out["box_l1_loss"] + out["box_giou_loss"]).backward()
    assert pred.grad is not None and torch.all(pred.grad == 0)


@pytest.mark.parametrize("mode", ["sigmoid", "infonce"])
def test_fine_loss_ignores_nan_labels_and_absent_regions(mode):
    t = make_targets()
    o = make_outputs(t)
    labels = t["region_labels"].clone()
    labels[0, 1] = torch.tensor([1.0, 0.0, 0.0, float("nan"), 0.0])  # a single-positive region for infonce
    args = (o["region_embeddings"], o["finding_embeddings"])
    base = fine_loss(*args, labels, t["box_present"], o["logit_scale"], mode=mode)
    assert torch.isfinite(base) and base.item() > 0
    changed = o["region_embeddings"].detach().clone()
    changed[0, 2] = 100.0  # region 2 is absent in image 0
    assert fine_loss(changed, args[1], labels, t["box_present"], o["logit_scale"], mode=mode).item() == \
        pytest.approx(base.item(), rel=1e-6)
    other = labels.clone()
    other[0, 2] = 1.0 - torch.nan_to_num(other[0, 2])  # labels of an absent region
    assert fine_loss(*args, other, t["box_present"], o["logit_scale"], mode=mode).item() == \
        pytest.approx(base.item(), rel=1e-6)
    # a finding that is NaN everywhere: moving its embedding does not move the loss
    all_nan = labels.clone()
    all_nan[..., 4] = float("nan")
    ref = fine_loss(*args, all_nan, t["box_present"], o["logit_scale"], mode=mode)
    moved = o["finding_embeddings"].detach().clone()
    moved[4] = -moved[4] * 7.0
    assert fine_loss(args[0], moved, all_nan, t["box_present"], o["logit_scale"], mode=mode).item() == \
        pytest.approx(ref.item(), rel=1e-6)
    # filling the NaN entry does change it (the mask is what kept it out)
    filled = labels.clone()
    filled[0, 1, 3] = 1.0
    assert fine_loss(*args, filled, t["box_present"], o["logit_scale"], mode=mode).item() != \
        pytest.approx(base.item(), rel=1e-6)


def test_fine_loss_sigmoid_formula_by_hand():
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # [1, 2, 2]
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # [3, 2]
    labels = torch.tensor([[[1.0, 0.0, float("nan")], [0.0, 1.0, 1.0]]])
    present = torch.tensor([[True, True]])
    t = math.log(2.0)
    got = fine_loss(z, e, labels, present, torch.tensor(t), 0.5)
    cos = torch.nn.functional.normalize(z, dim=-1) @ torch.nn.functional.normalize(e, dim=-1).T
    s = 2.0 * cos + 0.5
    bce = torch.nn.functional.binary_cross_entropy_with_logits(s, torch.nan_to_num(labels), reduction="none")
    want = (bce.sum() - bce[0, 0, 2]) / 5
    assert got.item() == pytest.approx(want.item(), rel=1e-6)


def test_fine_loss_infonce_uses_single_positive_regions_only():
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    present = torch.tensor([[True, True]])
    one_pos = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])  # region 1 has two positives: skipped
    got = fine_loss(z, e, one_pos, present, 0.0, mode="infonce")
    want = -torch.log_softmax(torch.tensor([1.0, 0.0, -1.0]), 0)[0]
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    unknown = one_pos.clone()
    unknown[0, 0, 2] = float("nan")  # drops out of the denominator
    got = fine_loss(z, e, unknown, present, 0.0, mode="infonce")
    assert got.item() == pytest.approx(-torch.log_softmax(torch.tensor([1.0, 0.0]), 0)[0].item(), rel=1e-6)


def test_global_loss_masks_nan_and_uses_label_index():
    t = make_targets()
    o = make_outputs(t)
    base = global_loss(o["image_embedding"], o["finding_embeddings"], t["image_labels"], o["logit_scale"],
                       image_label_index=t["image_label_index"])
    assert torch.isfinite(base) and base.item() > 0
    flipped = t["image_labels"].clone()
    assert torch.isnan(flipped[1, 2])
    flipped[:, 1] = float("nan")  # column 1 scores against finding row 2
    ref = global_loss(o["image_embedding"], o["finding_embeddings"], flipped, o["logit_scale"],
                      image_label_index=t["image_label_index"])
    moved = o["finding_embeddings"].detach().clone()
    moved[2] = -3.0 * moved[2]
    assert global_loss(o["image_embedding"], moved, flipped, o["logit_scale"],
                       image_label_index=t["image_label_index"]).item() == pytest.approx(ref.item(), rel=1e-6)
    flipped = t["image_labels"].clone()
    emb = o["finding_embeddings"].detach().clone()
    emb[1] = 50.0  # row 1 is not in image_label_index
    same = global_loss(o["image_embedding"], emb, flipped, o["logit_scale"], image_label_index=t["image_label_index"])
    assert same.item() == pytest.approx(base.item(), rel=1e-6)
    with pytest.raises(ValueError, match="image_label_index"):
        global_loss(o["image_embedding"], o["finding_embeddings"], t["image_labels"], o["logit_scale"])
    with pytest.raises(ValueError, match="lie in"):
        global_loss(o["image_embedding"], o["finding_embeddings"], t["image_labels"], o["logit_scale"],
                    image_label_index=torch.tensor([0, 1, 2, 9]))


def test_global_loss_perfect_alignment_is_low():
    e = torch.eye(3)
    z = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    good = global_loss(z, e, y, math.log(100.0), logit_bias=-50.0)
    bad = global_loss(z, e, 1 - y, math.log(100.0), logit_bias=-50.0)
    assert good.item() < 1e-6 < bad.item()


@pytest.mark.parametrize("stage, expected", [
    (1, {"box_l1_loss", "box_giou_loss", "presence_loss"}),
    (2, {"box_l1_loss", "box_giou_loss", "presence_loss", "global_loss"}),
    (3, {"box_l1_loss", "box_giou_loss", "presence_loss", "global_loss", "fine_loss"}),
])
def test_stage_selects_terms_and_total_is_weighted_sum(stage, expected):
    t = make_targets()
    o = make_outputs(t)
    criterion = AlignmentCriterion(default_weight_dict(), stage)
    losses = criterion(o, t)
    assert set(losses) == expected | {"total_loss"}
    weights = default_weight_dict()
    want = sum(weights[k] * losses[k] for k in expected)
    assert losses["total_loss"].item() == pytest.approx(want.item(), rel=1e-6)
    losses["total_loss"].backward()
    grads = [o[k].grad for k in ("boxes", "presence_logits")]
    if stage >= 2:
        grads += [o["image_embedding"].grad, o["finding_embeddings"].grad, o["logit_scale"].grad]
    if stage >= 3:
        grads.append(o["region_embeddings"].grad)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if stage == 1:
        assert o["image_embedding"].grad is None and o["region_embeddings"].grad is None


def test_stage_one_needs_no_embeddings_and_kg_loss_passes_through():
    t = make_targets()
    o = make_outputs(t)
    detection_only = {"boxes": o["boxes"], "presence_logits": o["presence_logits"]}
    criterion = AlignmentCriterion({"box_l1_loss": 1.0}, 1)
    losses = criterion(detection_only, t)
    assert losses["total_loss"].item() == pytest.approx(losses["box_l1_loss"].item(), rel=1e-6)
    kg = torch.tensor(0.7, requires_grad=True)
    losses = AlignmentCriterion({"box_l1_loss": 1.0, "kg_loss": 2.0}, 1)({**detection_only, "kg_loss": kg}, t)
    assert losses["kg_loss"] is not None
    assert losses["total_loss"].item() == pytest.approx(losses["box_l1_loss"].item() + 1.4, rel=1e-6)
    losses["total_loss"].backward()
    assert kg.grad.item() == pytest.approx(2.0)


def test_fixed_logit_scale_when_outputs_lack_one():
    t = make_targets()
    o = make_outputs(t)
    del o["logit_scale"]
    with pytest.raises(ValueError, match="logit_scale"):
        AlignmentCriterion(default_weight_dict(), 2)(o, t)
    losses = build_criterion(AlignmentLossConfig(stage=3, logit_scale=math.log(10.0), fine_mode="infonce"))(o, t)
    assert torch.isfinite(losses["total_loss"])


def test_batch_equals_single_for_per_image_terms():
    """Sigmoid losses are means over known entries: with equal counts per image, the batch loss is
    the mean of the single-image losses."""
    t = make_targets()
    t["box_present"] = torch.ones(B, R, dtype=torch.bool)
    t["region_labels"] = torch.nan_to_num(t["region_labels"])
    t["image_labels"] = torch.nan_to_num(t["image_labels"])
    o = {k: v.detach() for k, v in make_outputs(t).items()}
    criterion = AlignmentCriterion(default_weight_dict(), 3)
    batch = criterion(o, t)
    singles = []
    for b in range(B):
        ob = {k: (v[b:b + 1] if k in ("boxes", "presence_logits", "region_embeddings", "image_embedding") else v)
              for k, v in o.items()}
        tb = {k: (v[b:b + 1] if k != "image_label_index" else v) for k, v in t.items()}
        singles.append(criterion(ob, tb))
    for k in LOSS_TERMS[:5]:
        assert batch[k].item() == pytest.approx(sum(s[k].item() for s in singles) / B, rel=1e-5)


def test_bad_arguments_raise_value_error():
    t = make_targets()
    o = make_outputs(t)
    with pytest.raises(ValueError, match="stage"):
        AlignmentCriterion(default_weight_dict(), 4)
    with pytest.raises(ValueError, match="unknown terms"):
        AlignmentCriterion({"box_loss": 1.0}, 1)
    with pytest.raises(ValueError, match=">= 0"):
        AlignmentCriterion({"box_l1_loss": -1.0}, 1)
    with pytest.raises(ValueError, match="fine_mode"):
        AlignmentCriterion({}, 3, fine_mode="softmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target_boxes"):
        anatomy_loss(o["boxes"], o["presence_logits"], t["boxes"][:, :2], t["box_present"])
    with pytest.raises(ValueError, match="presence_logits"):
        anatomy_loss(o["boxes"], o["presence_logits"][:, :2], t["boxes"], t["box_present"])
    with pytest.raises(ValueError, match="region_labels"):
        fine_loss(o["region_embeddings"], o["finding_embeddings"], t["region_labels"][..., :2], t["box_present"], 0.0)
    with pytest.raises(ValueError, match="finding_embeddings"):
        fine_loss(o["region_embeddings"], o["finding_embeddings"][:, :3], t["region_labels"], t["box_present"], 0.0)
    with pytest.raises(ValueError, match="image_labels"):
        global_loss(o["image_embedding"], o["finding_embeddings"], t["image_labels"][:1], 0.0)
    with pytest.raises(ValueError, match="lacks 'region_labels'"):
        AlignmentCriterion({}, 3)(o, {k: v for k, v in t.items() if k != "region_labels"})
    with pytest.raises(ValueError, match="scalar"):
        AlignmentCriterion({}, 2)({**o, "logit_scale": torch.zeros(2)}, t)


def test_aux_outputs_add_weighted_detection_terms():
    t = make_targets()
    o = make_outputs(t)
    aux = {"boxes": (t["boxes"] + 0.2).requires_grad_(), "presence_logits": torch.zeros(B, R, requires_grad=True)}
    weights = {"box_l1_loss": 5.0, "box_giou_loss": 2.0, "presence_loss": 1.0}
    losses = AlignmentCriterion(weights, 1)({**o, "aux_outputs": [aux]}, t)
    assert {"box_l1_loss_0", "box_giou_loss_0", "presence_loss_0"} <= set(losses)
    want = sum(w * (losses[k] + losses[f"{k}_0"]) for k, w in weights.items())
    assert losses["total_loss"].item() == pytest.approx(want.item(), rel=1e-6)
    losses["total_loss"].backward()
    assert torch.isfinite(aux["boxes"].grad).all() and aux["boxes"].grad.abs().sum() > 0


def test_pooled_loss_trains_the_reported_scores_and_ignores_unknown_labels():
    from anatomy_vlm.alignment.losses import pooled_loss

    logits = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, float("nan")]])
    loss = pooled_loss(logits, labels)
    moved = pooled_loss(logits.detach() + torch.tensor([[0.0, 0.0, 9.0]]), labels)
    assert torch.isclose(loss.detach(), moved)  # the NaN column does not count
    loss.backward()
    assert logits.grad[0, 2] == 0 and logits.grad[0, 0] < 0 and logits.grad[0, 1] > 0
    with pytest.raises(ValueError, match="image_label_index"):
        pooled_loss(torch.zeros(1, 2), torch.zeros(1, 3))

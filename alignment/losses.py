"""The training objective of the aligner: anatomy detection, global and fine-grained alignment.

DETR ``SetCriterion`` style: the model returns a dict of features, :class:`AlignmentCriterion`
turns it and the batch targets into a dict of named ``*_loss`` terms, and ``total_loss`` is the
``weight_dict``-weighted sum of the terms the training stage switches on. The paper's three-stage
schedule (Anatomy-VLM, Gu et al. 2025):

=====  =================================================================
stage  terms in ``total_loss``
=====  =================================================================
1      ``box_l1_loss``, ``box_giou_loss``, ``presence_loss`` (detection)
2      stage 1 + ``global_loss``
3      stage 2 + ``fine_loss``
=====  =================================================================

``kg_loss`` (a scalar the graph encoder computes, e.g. a link-prediction loss) is passed through
in every stage when the outputs carry it and its weight is non-zero.

Query ``i`` is region ``i`` (29 Chest ImaGenome regions): the assignment is fixed, so there is no
Hungarian matcher.

Shapes (``B`` images, ``R`` regions, ``E`` embedding width, ``F`` findings, ``C`` image labels):

outputs
    ``boxes`` ``[B, R, 4]`` (cx, cy, w, h) normalised to [0, 1];
    ``presence_logits`` ``[B, R]``;
    ``region_embeddings`` ``[B, R, E]`` (projected region features; stage 3);
    ``image_embedding`` ``[B, E]`` (projected CLS feature; stages 2-3);
    ``finding_embeddings`` ``[F, E]`` (text / graph-node embeddings; stages 2-3);
    ``logit_scale`` scalar, log-space like CLIP (the logits use ``exp(logit_scale)``);
    optional ``logit_bias`` scalar (added to the sigmoid logits, SigLIP style; default 0);
    optional ``kg_loss`` scalar;
    optional ``aux_outputs``: list of dicts with ``boxes`` and ``presence_logits`` (earlier layers).
targets
    ``boxes`` ``[B, R, 4]`` (cx, cy, w, h) normalised;
    ``box_present`` ``[B, R]`` bool;
    ``region_labels`` ``[B, R, F]`` float in {0, 1}, NaN = unknown (ignored) (stage 3);
    ``image_labels`` ``[B, C]`` float in {0, 1}, NaN = unknown (ignored) (stages 2-3);
    optional ``image_label_index`` ``[C]`` long: the rows of ``finding_embeddings`` that the
    ``C`` label columns score against (default: ``C == F`` and column ``c`` is row ``c``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anatomy_vlm.encoder.box_ops import box_cxcywh_to_xyxy, elementwise_generalized_box_iou

__all__ = [
    "LOSS_TERMS",
    "STAGE_TERMS",
    "AlignmentCriterion",
    "AlignmentLossConfig",
    "anatomy_loss",
    "build_criterion",
    "default_weight_dict",
    "fine_loss",
    "global_loss",
    "pooled_loss",
]

#: Every term the criterion knows, as named in ``weight_dict`` and in the returned dict.
LOSS_TERMS: tuple[str, ...] = (
    "box_l1_loss", "box_giou_loss", "presence_loss", "global_loss", "fine_loss", "pooled_loss", "kg_loss",
)

_DETECTION = ("box_l1_loss", "box_giou_loss", "presence_loss")
#: The terms each training stage adds to ``total_loss`` (``kg_loss`` is handled separately).
STAGE_TERMS: dict[int, tuple[str, ...]] = {
    1: _DETECTION,
    2: _DETECTION + ("global_loss",),
    3: _DETECTION + ("global_loss", "fine_loss", "pooled_loss"),
}

FineMode = Literal["sigmoid", "infonce"]


def default_weight_dict() -> dict[str, float]:
    """DETR's box weights (L1 5, GIoU 2) and 1 for every other term."""
    return {"box_l1_loss": 5.0, "box_giou_loss": 2.0, "presence_loss": 1.0,
            "global_loss": 1.0, "fine_loss": 1.0, "pooled_loss": 1.0, "kg_loss": 1.0}


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------

def _require(mapping: Mapping[str, Tensor], key: str, where: str) -> Tensor:
    if key not in mapping:
        raise ValueError(f"{where} lacks {key!r} (has {sorted(mapping)})")
    value = mapping[key]
    if not isinstance(value, Tensor):
        raise ValueError(f"{where}[{key!r}] must be a torch.Tensor, got {type(value).__name__}")
    return value


def _check_shape(name: str, tensor: Tensor, shape: tuple[int | None, ...]) -> None:
    ok = tensor.dim() == len(shape) and all(s is None or s == t for s, t in zip(shape, tensor.shape))
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {list(tensor.shape)}")


def _scalar(name: str, value: Tensor | float) -> Tensor | float:
    if isinstance(value, Tensor) and value.numel() != 1:
        raise ValueError(f"{name} must be a scalar, got shape {list(value.shape)}")
    return value.reshape(()) if isinstance(value, Tensor) else float(value)


def _zero(like: Tensor) -> Tensor:
    """A zero that stays attached to ``like``'s graph (so backward works when a term is empty)."""
    return like.sum() * 0.0


# ----------------------------------------------------------------------------------------------
# The three terms
# ----------------------------------------------------------------------------------------------

def anatomy_loss(pred_boxes: Tensor, presence_logits: Tensor, target_boxes: Tensor,
                 box_present: Tensor) -> dict[str, Tensor]:
    """Detection losses with the fixed assignment query ``i`` = region ``i``.

    Shapes:
        pred_boxes ``[B, R, 4]`` cxcywh normalised; presence_logits ``[B, R]``;
        target_boxes ``[B, R, 4]`` cxcywh normalised; box_present ``[B, R]`` bool.
        Returns three scalars.

    With ``P`` the set of present (image, region) pairs and ``N_P = max(|P|, 1)``:

    - ``box_l1_loss``   = sum_{(b,r) in P} ||pred_br - target_br||_1 / N_P   (summed over the four
      coordinates, as DETR does);
    - ``box_giou_loss`` = sum_{(b,r) in P} (1 - GIoU(xyxy(pred_br), xyxy(target_br))) / N_P;
    - ``presence_loss`` = mean over all B*R pairs of BCE-with-logits(presence_logit, present).

    Absent regions contribute to ``presence_loss`` only; their target boxes are never read.
    """
    if pred_boxes.dim() != 3 or pred_boxes.shape[-1] != 4:
        raise ValueError(f"pred_boxes must have shape [B, R, 4], got {list(pred_boxes.shape)}")
    batch, regions = pred_boxes.shape[:2]
    _check_shape("target_boxes", target_boxes, (batch, regions, 4))
    _check_shape("presence_logits", presence_logits, (batch, regions))
    _check_shape("box_present", box_present, (batch, regions))
    present = box_present.bool()  # [B, R]
    src = pred_boxes[present]  # [P, 4]
    tgt = target_boxes[present].to(src.dtype)  # [P, 4]
    num_present = max(int(present.sum()), 1)
    if src.shape[0]:
        l1 = (src - tgt).abs().sum() / num_present
        giou = elementwise_generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt))  # [P]
        giou = (1.0 - giou).sum() / num_present
    else:
        l1 = giou = _zero(pred_boxes)
    presence = F.binary_cross_entropy_with_logits(presence_logits, present.to(presence_logits.dtype))
    return {"box_l1_loss": l1, "box_giou_loss": giou, "presence_loss": presence}


def _similarity_logits(queries: Tensor, keys: Tensor, logit_scale: Tensor | float,
                       logit_bias: Tensor | float) -> Tensor:
    """``exp(logit_scale) * cos(q, k) + logit_bias``: ``[..., E]`` x ``[K, E]`` -> ``[..., K]``."""
    scale = logit_scale.exp() if isinstance(logit_scale, Tensor) else math.exp(logit_scale)
    return scale * (F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).transpose(0, 1)) + logit_bias


def fine_loss(region_embeddings: Tensor, finding_embeddings: Tensor, region_labels: Tensor,
              box_present: Tensor, logit_scale: Tensor | float, logit_bias: Tensor | float = 0.0,
              mode: FineMode = "sigmoid") -> Tensor:
    """Fine-grained alignment of each present region's feature with the finding embeddings.

    Shapes:
        region_embeddings ``[B, R, E]``; finding_embeddings ``[F, E]``;
        region_labels ``[B, R, F]`` float in {0, 1}, NaN = unknown; box_present ``[B, R]`` bool;
        logit_scale, logit_bias scalars. Returns a scalar.

    Logits ``s_brf = exp(t) * <z_br / |z_br|, e_f / |e_f|> + beta`` (t = ``logit_scale``,
    beta = ``logit_bias``). The valid set is ``V = {(b,r,f): region r present in image b and
    y_brf not NaN}``.

    ``mode="sigmoid"`` (multi-label contrastive, SigLIP-like, the default)::

        L = (1 / |V|) * sum_{(b,r,f) in V} BCE(sigmoid(s_brf), y_brf)
          = (1 / |V|) * sum_V [ -y log sigmoid(s) - (1 - y) log(1 - sigmoid(s)) ]

    ``mode="infonce"`` (softmax over findings, for regions with exactly one known positive; the
    other regions are skipped). With ``K_br = {f: (b,r,f) in V}`` the known findings of the region,
    ``p`` its positive and ``Q`` the eligible regions::

        L = (1 / |Q|) * sum_{(b,r) in Q} -log( exp(s_brp) / sum_{f in K_br} exp(s_brf) )

    Findings with unknown labels are left out of the denominator: they might be positive.
    ``logit_bias`` cancels in the softmax. An empty ``V`` (or ``Q``) gives a zero that keeps the
    graph.
    """
    if region_embeddings.dim() != 3:
        raise ValueError(f"region_embeddings must have shape [B, R, E], got {list(region_embeddings.shape)}")
    batch, regions, width = region_embeddings.shape
    if finding_embeddings.dim() != 2 or finding_embeddings.shape[1] != width:
        raise ValueError(f"finding_embeddings must have shape [F, {width}], got {list(finding_embeddings.shape)}")
    num_findings = finding_embeddings.shape[0]
    _check_shape("region_labels", region_labels, (batch, regions, num_findings))
    _check_shape("box_present", box_present, (batch, regions))
    if mode not in ("sigmoid", "infonce"):
        raise ValueError(f"mode must be 'sigmoid' or 'infonce', got {mode!r}")
    logits = _similarity_logits(region_embeddings, finding_embeddings, logit_scale, logit_bias)  # [B, R, F]
    known = ~torch.isnan(region_labels) & box_present.bool().unsqueeze(-1)  # [B, R, F]
    labels = torch.nan_to_num(region_labels, nan=0.0).to(logits.dtype)  # [B, R, F]
    if mode == "sigmoid":
        if not bool(known.any()):
            return _zero(logits)
        per_pair = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # [B, R, F]
        return per_pair[known].mean()
    positives = (labels > 0.5) & known  # [B, R, F]
    eligible = positives.sum(-1) == 1  # [B, R]
    if not bool(eligible.any()):
        return _zero(logits)
    masked = logits.masked_fill(~known, float("-inf"))[eligible]  # [Q, F]
    target = positives[eligible].float().argmax(-1)  # [Q]
    return F.cross_entropy(masked, target)


def global_loss(image_embedding: Tensor, finding_embeddings: Tensor, image_labels: Tensor,
                logit_scale: Tensor | float, logit_bias: Tensor | float = 0.0,
                image_label_index: Tensor | None = None) -> Tensor:
    """Multi-label alignment of the CLS feature with the label embeddings.

    Shapes:
        image_embedding ``[B, E]``; finding_embeddings ``[F, E]``; image_labels ``[B, C]`` float in
        {0, 1}, NaN = unknown; image_label_index ``[C]`` long into ``[0, F)`` (default: C == F and
        the identity). Returns a scalar.

    ``s_bc = exp(t) * cos(z_b, e_{index[c]}) + beta``;
    ``L = (1 / |V|) * sum_{(b,c) in V} BCE(sigmoid(s_bc), y_bc)`` over the known labels ``V``.
    """
    if image_embedding.dim() != 2:
        raise ValueError(f"image_embedding must have shape [B, E], got {list(image_embedding.shape)}")
    batch, width = image_embedding.shape
    if finding_embeddings.dim() != 2 or finding_embeddings.shape[1] != width:
        raise ValueError(f"finding_embeddings must have shape [F, {width}], got {list(finding_embeddings.shape)}")
    if image_labels.dim() != 2 or image_labels.shape[0] != batch:
        raise ValueError(f"image_labels must have shape [{batch}, C], got {list(image_labels.shape)}")
    num_labels = image_labels.shape[1]
    if image_label_index is None:
        if num_labels != finding_embeddings.shape[0]:
            raise ValueError(f"image_labels has {num_labels} columns but finding_embeddings has "
                             f"{finding_embeddings.shape[0]} rows: pass image_label_index")
        label_embeddings = finding_embeddings  # [C, E]
    else:
        _check_shape("image_label_index", image_label_index, (num_labels,))
        if image_label_index.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"image_label_index must be an integer tensor, got {image_label_index.dtype}")
        num_rows = finding_embeddings.shape[0]
        if num_labels and (int(image_label_index.min()) < 0 or int(image_label_index.max()) >= num_rows):
            raise ValueError(f"image_label_index must lie in [0, {finding_embeddings.shape[0]})")
        label_embeddings = finding_embeddings[image_label_index.long()]  # [C, E]
    logits = _similarity_logits(image_embedding, label_embeddings, logit_scale, logit_bias)  # [B, C]
    known = ~torch.isnan(image_labels)  # [B, C]
    if not bool(known.any()):
        return _zero(logits)
    labels = torch.nan_to_num(image_labels, nan=0.0).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none")[known].mean()


def pooled_loss(image_logits: Tensor, image_labels: Tensor, image_label_index: Tensor | None = None) -> Tensor:
    """BCE of the reported image scores: the region scores pooled with the evidence weights and mixed
    with the CLS score (``heads.AlignmentHeads``). Without it the pooling and the mix, which decide
    each ROI's evidence, would never be trained.

    Shapes: image_logits ``[B, F]``; image_labels ``[B, C]`` float, NaN = unknown; image_label_index
    ``[C]`` long into ``[0, F)`` (default: C == F). Returns a scalar averaged over the known labels.
    """
    if image_logits.dim() != 2 or image_labels.dim() != 2 or image_logits.shape[0] != image_labels.shape[0]:
        raise ValueError(f"image_logits [B, F] and image_labels [B, C] must share B, got "
                         f"{list(image_logits.shape)} and {list(image_labels.shape)}")
    if image_label_index is not None:
        image_logits = image_logits[:, image_label_index.long()]  # [B, C]
    elif image_logits.shape[1] != image_labels.shape[1]:
        raise ValueError(f"image_logits has {image_logits.shape[1]} columns, image_labels {image_labels.shape[1]}: "
                         f"pass image_label_index")
    known = ~torch.isnan(image_labels)  # [B, C]
    if not bool(known.any()):
        return _zero(image_logits)
    labels = torch.nan_to_num(image_labels, nan=0.0).to(image_logits.dtype)
    return F.binary_cross_entropy_with_logits(image_logits, labels, reduction="none")[known].mean()


# ----------------------------------------------------------------------------------------------
# The criterion
# ----------------------------------------------------------------------------------------------

@dataclass
class AlignmentLossConfig:
    """What :func:`build_criterion` needs; one object per training stage."""

    stage: int = 1  # 1 detection, 2 + global alignment, 3 + fine-grained (the paper's schedule)
    weight_dict: dict[str, float] = field(default_factory=default_weight_dict)  # each *_loss term's weight in the total
    fine_mode: FineMode = "sigmoid"  # "sigmoid": multi-label BCE over findings; "infonce": single-positive softmax
    logit_scale: float | None = None  # fixed log-space scale used when the outputs carry no "logit_scale"


class AlignmentCriterion(nn.Module):
    """Computes every active ``*_loss`` term and their weighted sum ``total_loss``.

    Args:
        weight_dict: weight of each term (keys from :data:`LOSS_TERMS`); a missing key weighs 0.
        stage: 1, 2 or 3 (see the module docstring); terms outside the stage are not computed.
        fine_mode: ``"sigmoid"`` or ``"infonce"`` (see :func:`fine_loss`).
        logit_scale: a fixed log-space scale, used only when the outputs carry no ``logit_scale``.

    ``forward(outputs, targets)`` returns the unweighted active terms plus ``total_loss``; the
    shapes are in the module docstring. When the outputs carry ``aux_outputs`` (a list of dicts with
    ``boxes`` and ``presence_logits`` from earlier decoder layers, DETR's auxiliary losses) each
    adds ``box_l1_loss_{i}``, ``box_giou_loss_{i}`` and ``presence_loss_{i}``, weighted like the
    final layer's terms. The terms are normalised per process (no all-reduce of
    the box count across DDP ranks).
    """

    def __init__(self, weight_dict: dict[str, float], stage: int, *, fine_mode: FineMode = "sigmoid",
                 logit_scale: float | None = None):
        super().__init__()
        if stage not in STAGE_TERMS:
            raise ValueError(f"stage must be one of {sorted(STAGE_TERMS)}, got {stage!r}")
        unknown = sorted(set(weight_dict) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"weight_dict has unknown terms {unknown}; known: {list(LOSS_TERMS)}")
        for name, weight in weight_dict.items():
            if not math.isfinite(float(weight)) or float(weight) < 0:
                raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight!r}")
        if fine_mode not in ("sigmoid", "infonce"):
            raise ValueError(f"fine_mode must be 'sigmoid' or 'infonce', got {fine_mode!r}")
        if logit_scale is not None and not math.isfinite(float(logit_scale)):
            raise ValueError(f"logit_scale must be finite, got {logit_scale!r}")
        self.weight_dict = {k: float(v) for k, v in weight_dict.items()}
        self.stage = stage
        self.fine_mode: FineMode = fine_mode
        self.logit_scale = logit_scale

    @property
    def active_terms(self) -> tuple[str, ...]:
        """The stage's terms (``kg_loss`` joins at forward time when the outputs carry it)."""
        return STAGE_TERMS[self.stage]

    def _scale(self, outputs: Mapping[str, Tensor]) -> Tensor | float:
        if "logit_scale" in outputs:
            return _scalar("outputs['logit_scale']", outputs["logit_scale"])
        if self.logit_scale is None:
            raise ValueError("outputs lack 'logit_scale' and the criterion was given none")
        return self.logit_scale

    def forward(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        boxes = _require(outputs, "boxes", "outputs")
        losses: dict[str, Tensor] = dict(anatomy_loss(
            boxes, _require(outputs, "presence_logits", "outputs"),
            _require(targets, "boxes", "targets"), _require(targets, "box_present", "targets")))
        present = targets["box_present"]
        if self.stage >= 2:
            scale = self._scale(outputs)
            bias = _scalar("outputs['logit_bias']", outputs.get("logit_bias", 0.0))
            findings = _require(outputs, "finding_embeddings", "outputs")
            losses["global_loss"] = global_loss(
                _require(outputs, "image_embedding", "outputs"), findings,
                _require(targets, "image_labels", "targets"), scale, bias, targets.get("image_label_index"))
        if self.stage >= 3:
            losses["fine_loss"] = fine_loss(
                _require(outputs, "region_embeddings", "outputs"), findings,
                _require(targets, "region_labels", "targets"), present, scale, bias, self.fine_mode)
            if "image_logits" in outputs:  # the pooled score exists once the heads are attached
                losses["pooled_loss"] = pooled_loss(
                    outputs["image_logits"], targets["image_labels"], targets.get("image_label_index"))
        aux_outputs = outputs.get("aux_outputs", [])
        if not isinstance(aux_outputs, (list, tuple)):
            raise ValueError(f"outputs['aux_outputs'] must be a list of dicts, got {type(aux_outputs).__name__}")
        for i, aux in enumerate(aux_outputs):  # DETR's auxiliary decoding losses, one set per earlier layer
            aux_terms = anatomy_loss(_require(aux, "boxes", f"outputs['aux_outputs'][{i}]"),
                                     _require(aux, "presence_logits", f"outputs['aux_outputs'][{i}]"),
                                     targets["boxes"], present)
            losses.update({f"{name}_{i}": value for name, value in aux_terms.items()})
        if "kg_loss" in outputs:
            kg = _scalar("outputs['kg_loss']", outputs["kg_loss"])
            if not isinstance(kg, Tensor):
                kg = boxes.new_tensor(kg)
            losses["kg_loss"] = kg
        total = _zero(boxes)
        for name, value in losses.items():
            base = name.rsplit("_", 1)[0] if name[-1].isdigit() else name  # box_l1_loss_0 -> box_l1_loss
            weight = self.weight_dict.get(base, 0.0)
            if weight:
                total = total + weight * value
        losses["total_loss"] = total
        return losses


def build_criterion(config: AlignmentLossConfig) -> AlignmentCriterion:
    """The one place a loss configuration becomes a criterion (DETR ``build`` style)."""
    return AlignmentCriterion(config.weight_dict, config.stage, fine_mode=config.fine_mode,
                              logit_scale=config.logit_scale)

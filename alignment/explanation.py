"""Predictions with their explanations: the ROIs and graph nodes behind every finding score.

``explain`` turns a batch of model outputs into one ``Prediction`` per image; ``to_provenance``
turns a ``Prediction`` into the ``ProvenanceRecord`` that ``GraphStore.write_provenance`` writes,
so a Cypher query can walk from a prediction to its evidence ROIs and the nodes they attended.

The outputs ``explain`` reads (the enrichment's and the heads' dicts merged):
    ``image_logits`` ``[B, F]``, ``evidence_weights`` ``[B, R, F]``, ``attention`` ``[B, R, K]``,
    and optionally ``key_index`` ``[R, K]`` / ``key_mask`` ``[R, K]`` (else the knowledge's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.kg.provenance import Box, PredictionRecord, ProvenanceRecord, RegionOfInterest
from anatomy_vlm.kg.types import DEFAULT_VARIANT

NodeWeight = tuple[str, float]  # (graph node id, attention weight)


@dataclass(frozen=True)
class FindingPrediction:
    """One scored finding of one image and what produced the score."""

    finding_id: str  # the Finding/Disease node scored
    probability: float  # sigmoid of the image logit
    top_regions: list[tuple[str, float, Box]] = field(default_factory=list)  # (region id, evidence weight, box xyxy), heaviest first
    per_region_nodes: dict[str, list[NodeWeight]] = field(default_factory=dict)  # top region -> its most attended nodes


@dataclass(frozen=True)
class Prediction:
    """Every finding scored for one image, with the ROIs and the attention over graph nodes."""

    image_id: str
    predictions: list[FindingPrediction]  # most probable first
    boxes: dict[str, Box]  # region id -> (x1, y1, x2, y2) pixels
    presence: dict[str, float]  # region id -> presence / localisation confidence
    graph_version: str  # content hash of the graph the knowledge came from
    variant: str = DEFAULT_VARIANT
    model: str = "anatomy-vlm"  # model name or checkpoint id
    region_nodes: dict[str, list[NodeWeight]] = field(default_factory=dict)  # region -> most attended nodes


Explanation = Prediction  # the same object: a prediction always carries its explanation


def _top_nodes(attention: Tensor, key_index: Tensor, key_mask: Tensor, node_ids: Sequence[str],
               top_nodes: int) -> list[NodeWeight]:
    """The ``top_nodes`` heaviest real keys of one region's attention row ``[K]``."""
    weights = attention.masked_fill(~key_mask, -1.0)
    count = min(top_nodes, int(key_mask.sum()))
    if count == 0:
        return []
    values, cols = weights.topk(count)
    return [(node_ids[int(key_index[c])], float(v)) for v, c in zip(values.tolist(), cols.tolist())]


@torch.no_grad()
def explain(
    outputs: Mapping[str, Tensor],
    knowledge: RegionKnowledge,
    boxes_xyxy: Tensor,
    top_k: int = 3,
    *,
    image_ids: Sequence[str] | None = None,
    presence: Tensor | None = None,
    top_nodes: int = 5,
    min_probability: float = 0.0,
    model: str = "anatomy-vlm",
) -> list[Prediction]:
    """One ``Prediction`` per image of the batch.

    For each finding: its probability, its ``top_k`` regions by evidence weight (regions with zero
    weight are left out) with their boxes, and for each of those regions its ``top_nodes`` most
    attended graph nodes. Findings below ``min_probability`` are left out.

    Shapes:
        boxes_xyxy: ``[B, R, 4]`` pixels; presence: ``[B, R]`` (bool or probabilities; 1 if None)
    """
    for key in ("image_logits", "evidence_weights", "attention"):
        if key not in outputs:
            raise ValueError(f"outputs lack {key!r}: merge the enrichment's and the heads' outputs")
    if top_k < 1 or top_nodes < 1:
        raise ValueError(f"top_k and top_nodes must be positive, got {top_k} and {top_nodes}")
    logits = outputs["image_logits"].detach().float().cpu()  # [B, F]
    evidence = outputs["evidence_weights"].detach().float().cpu()  # [B, R, F]
    attention = outputs["attention"].detach().float().cpu()  # [B, R, K]
    key_index = outputs.get("key_index", knowledge.key_index).cpu()  # [R, K]
    key_mask = outputs.get("key_mask", knowledge.key_mask).cpu()  # [R, K]
    batch, num_findings = logits.shape
    num_regions = knowledge.num_regions
    if num_findings != knowledge.num_findings:
        raise ValueError(f"image_logits has {num_findings} findings, the knowledge lists {knowledge.num_findings}")
    if evidence.shape != (batch, num_regions, num_findings):
        raise ValueError(f"evidence_weights must be [{batch}, {num_regions}, {num_findings}], got {tuple(evidence.shape)}")
    if attention.shape != (batch, *key_index.shape) or key_index.shape[0] != num_regions:
        raise ValueError(f"attention must be [{batch}, {num_regions}, K] matching key_index, got {tuple(attention.shape)}")
    if boxes_xyxy.shape != (batch, num_regions, 4):
        raise ValueError(f"boxes_xyxy must be [{batch}, {num_regions}, 4], got {tuple(boxes_xyxy.shape)}")
    if presence is not None and presence.shape != (batch, num_regions):
        raise ValueError(f"presence must be [{batch}, {num_regions}], got {tuple(presence.shape)}")
    if image_ids is None:
        image_ids = [str(i) for i in range(batch)]
    if len(image_ids) != batch:
        raise ValueError(f"{len(image_ids)} image ids for a batch of {batch}")

    probabilities = torch.sigmoid(logits)  # [B, F]
    boxes = boxes_xyxy.detach().float().cpu()
    present = torch.ones(batch, num_regions) if presence is None else presence.detach().float().cpu()
    regions = knowledge.region_ids
    results = []
    for b in range(batch):
        region_nodes = {
            region: _top_nodes(attention[b, r], key_index[r], key_mask[r], knowledge.node_ids, top_nodes)
            for r, region in enumerate(regions)
        }
        box_of = {region: tuple(boxes[b, r].tolist()) for r, region in enumerate(regions)}
        findings = []
        for f, finding_id in enumerate(knowledge.finding_ids):
            probability = float(probabilities[b, f])
            if probability < min_probability:
                continue
            weights, rows = evidence[b, :, f].topk(min(top_k, num_regions))
            top = [(regions[r], float(w), box_of[regions[r]]) for w, r in zip(weights.tolist(), rows.tolist()) if w > 0]
            findings.append(FindingPrediction(
                finding_id=finding_id,
                probability=probability,
                top_regions=top,
                per_region_nodes={region: region_nodes[region] for region, _, _ in top},
            ))
        findings.sort(key=lambda p: (-p.probability, p.finding_id))
        results.append(Prediction(
            image_id=str(image_ids[b]),
            predictions=findings,
            boxes=box_of,
            presence={region: float(present[b, r]) for r, region in enumerate(regions)},
            graph_version=knowledge.graph_version,
            variant=knowledge.variant,
            model=model,
            region_nodes=region_nodes,
        ))
    return results


def to_provenance(prediction: Prediction, image_sha256: str) -> ProvenanceRecord:
    """The record ``GraphStore.write_provenance`` writes: one ROI per region, one prediction per finding.

    ROI ``region`` and ``anatomy_id`` are both the region id; ROI ``attention`` is that region's
    most attended graph nodes; each prediction's ``evidence`` is its top regions by weight.
    """
    rois = tuple(
        RegionOfInterest(
            region=region,
            anatomy_id=region,
            box=box,
            score=prediction.presence.get(region, 1.0),
            attention=tuple(prediction.region_nodes.get(region, ())),
        )
        for region, box in prediction.boxes.items()
    )
    records = tuple(
        PredictionRecord(
            finding_id=p.finding_id,
            score=p.probability,
            evidence=tuple((region, weight) for region, weight, _ in p.top_regions),
        )
        for p in prediction.predictions
    )
    return ProvenanceRecord(
        image_id=prediction.image_id,
        image_sha256=image_sha256,
        model=prediction.model,
        graph_version=prediction.graph_version,
        variant=prediction.variant,
        rois=rois,
        predictions=records,
    )

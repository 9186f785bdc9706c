"""Post-processing: the model's output dict -> one ``ProvenanceRecord`` per image.

The record (``anatomy_vlm.kg.provenance``) is the one shape of a prediction: the CLI prints it,
the API maps it field for field, and the graph store writes it. For each image it holds every
region's box in the image's own pixels (through the preprocessing's inverse) with its presence
score and its most attended graph nodes, and for each scored finding its probability and the
regions whose evidence weights pooled it (heaviest first, regions with zero weight left out).

The outputs read (the model's flat dict): ``image_logits`` ``[B, F]``, ``evidence_weights``
``[B, R, F]``, ``attention`` ``[B, R, K]``, ``boxes_xyxy`` ``[B, R, 4]`` (normalised on the model
input), ``presence_logits`` ``[B, R]``, and ``key_index`` / ``key_mask`` ``[R, K]`` (else the
knowledge's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from anatomy_vlm.encoder.preprocess import ImageGeometry, Preprocess
from anatomy_vlm.kg.provenance import PredictionRecord, ProvenanceRecord, RegionOfInterest, image_id_for, pixel_sha256
from anatomy_vlm.knowledge import RegionKnowledge

REQUIRED_OUTPUTS = ("image_logits", "evidence_weights", "attention", "boxes_xyxy", "presence_logits")


def image_identity(image: Tensor) -> tuple[str, str]:
    """``(image_id, sha256)`` of a decoded image ``[1, H, W]``: the id every entry point gives it."""
    sha = pixel_sha256(image.detach().cpu().float().contiguous().numpy().tobytes())
    return image_id_for(sha), sha


def _top_nodes(attention: Tensor, key_index: Tensor, key_mask: Tensor, node_ids: Sequence[str],
               top_nodes: int) -> list[tuple[str, float]]:
    """The ``top_nodes`` heaviest real keys of one region's attention row ``[K]``."""
    weights = attention.masked_fill(~key_mask, -1.0)
    count = min(top_nodes, int(key_mask.sum()))
    if count == 0:
        return []
    values, cols = weights.topk(count)
    return [(node_ids[int(key_index[c])], float(v)) for v, c in zip(values.tolist(), cols.tolist())]


class PostProcess:
    """Callable: ``(outputs, knowledge, geometries, images, ...) -> list[ProvenanceRecord]``.

    Args (of ``__call__``):
        outputs: the model's dict for a batch of ``B`` images.
        knowledge: what the model scored against (finding, region and node ids; variant; version).
        geometries: one ``ImageGeometry`` per image (from ``Preprocess``): boxes go back to its pixels.
        identities: one ``(image_id, sha256)`` per image (``image_identity``).
        preprocess: the transform whose inverse maps the boxes.
        top_k: evidence regions kept per finding; top_nodes: attended nodes kept per region.
        model: the model's name (the provenance ``model``; the run id is ``<model>@<variant>``).
    """

    @torch.no_grad()
    def __call__(self, outputs: Mapping[str, Tensor], knowledge: RegionKnowledge, geometries: Sequence[ImageGeometry],
                 identities: Sequence[tuple[str, str]], preprocess: Preprocess, *, top_k: int = 3, top_nodes: int = 5,
                 model: str = "anatomy-vlm") -> list[ProvenanceRecord]:
        missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
        if missing:
            raise ValueError(f"model outputs lack {missing}")
        if top_k < 1 or top_nodes < 1:
            raise ValueError(f"top_k and top_nodes must be positive, got {top_k} and {top_nodes}")
        logits = outputs["image_logits"].detach().float().cpu()  # [B, F]
        evidence = outputs["evidence_weights"].detach().float().cpu()  # [B, R, F]
        attention = outputs["attention"].detach().float().cpu()  # [B, R, K]
        boxes = outputs["boxes_xyxy"].detach().float().cpu()  # [B, R, 4] normalised on the model input
        presence = torch.sigmoid(outputs["presence_logits"].detach().float().cpu())  # [B, R]
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
        if boxes.shape != (batch, num_regions, 4):
            raise ValueError(f"boxes_xyxy must be [{batch}, {num_regions}, 4], got {tuple(boxes.shape)}")
        if len(geometries) != batch or len(identities) != batch:
            raise ValueError(f"{len(geometries)} geometries and {len(identities)} identities for a batch of {batch}")

        probabilities = torch.sigmoid(logits)  # [B, F]
        regions = knowledge.region_ids
        records = []
        for b in range(batch):
            pixel_boxes = preprocess.boxes_to_image(boxes[b], geometries[b])  # [R, 4] original pixels
            rois = tuple(
                RegionOfInterest(region=region, anatomy_id=region, box=tuple(pixel_boxes[r].tolist()),
                                 score=float(presence[b, r]),
                                 attention=tuple(_top_nodes(attention[b, r], key_index[r], key_mask[r],
                                                            knowledge.node_ids, top_nodes)))
                for r, region in enumerate(regions)
            )
            predictions = []
            for f, finding_id in enumerate(knowledge.finding_ids):
                weights, rows = evidence[b, :, f].topk(min(top_k, num_regions))
                predictions.append(PredictionRecord(
                    finding_id=finding_id, score=float(probabilities[b, f]),
                    evidence=tuple((regions[r], float(w)) for w, r in zip(weights.tolist(), rows.tolist()) if w > 0)))
            image_id, sha = identities[b]
            height, width = geometries[b].original_hw
            records.append(ProvenanceRecord(
                image_id=image_id, image_sha256=sha, model=model, graph_version=knowledge.graph_version,
                variant=knowledge.variant, rois=rois, predictions=tuple(predictions), width=width, height=height))
        return records


__all__ = ["PostProcess", "image_identity"]

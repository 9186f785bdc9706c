"""The aligner: ViT -> anatomy decoder -> region features -> knowledge enrichment -> alignment heads.

``AnatomyVLM`` is assembled from injected parts (DETR style; ``alignment.factory.build_model`` is
the one place a configuration becomes these parts) and returns one flat dict holding everything
``alignment.losses.AlignmentCriterion`` and ``alignment.postprocess.PostProcess`` read. It holds no
per-finding parameter: the findings scored are whatever ``RegionKnowledge`` lists, so a finding
added to the graph is scored by a trained model without retraining.

Shapes (``B`` images, ``R`` regions, ``K`` keys per region, ``F`` findings, ``E`` joint width):
    input ``images`` ``[B, 1, H, W]``
    ``boxes`` ``[B, R, 4]`` (cx, cy, w, h) normalised; ``boxes_xyxy`` ``[B, R, 4]`` normalised, clamped to [0, 1]
    ``presence_logits`` ``[B, R]``; ``aux_outputs`` list of ``{boxes, presence_logits}`` (when aux_loss)
    ``region_features`` ``[B, R, D]`` (after enrichment when on), ``image_features`` ``[B, D_vit]``
    ``region_embeddings`` ``[B, R, E]``, ``image_embedding`` ``[B, E]``, ``finding_embeddings`` ``[F, E]``
    ``logit_scale`` ``[]`` (log-space), ``logit_bias`` ``[]``
    ``region_logits`` ``[B, R, F]``, ``global_logits`` ``[B, F]``, ``image_logits`` ``[B, F]``,
    ``evidence_weights`` ``[B, R, F]``, ``pool_mask`` ``[B, R, F]``
    ``attention`` ``[B, R, K]`` (all zero when enrichment is off), ``key_index`` / ``key_mask`` ``[R, K]``
"""

from __future__ import annotations

from torch import Tensor, nn

from anatomy_vlm.alignment.enrichment import KnowledgeEnrichment
from anatomy_vlm.alignment.heads import AlignmentHeads
from anatomy_vlm.encoder.anatomy_decoder import AnatomyDecoder
from anatomy_vlm.encoder.box_ops import box_cxcywh_to_xyxy
from anatomy_vlm.encoder.roi import RegionFeature
from anatomy_vlm.encoder.vit import ViT
from anatomy_vlm.knowledge import RegionKnowledge


class AnatomyVLM(nn.Module):
    """Region-level vision-knowledge aligner (see the module docstring for the output dict).

    Args:
        backbone: the ViT trunk (CLS + patch tokens).
        decoder: the anatomy decoder (one query per region: tokens, boxes, presence).
        region_feature: builds each region's feature from its query token, RoI and global context.
        enrichment: region features attend over their KG neighbourhood's node embeddings.
        heads: region/image scores against the finding-node embeddings.
        aux_loss: also return the decoder's earlier-layer boxes (``aux_outputs``).
        enrich: whether ``forward`` enriches regions with their KG neighbourhood by default.

    Shapes:
        images ``[B, 1, H, W]`` -> dict, see the module docstring.
    """

    def __init__(self, backbone: ViT, decoder: AnatomyDecoder, region_feature: RegionFeature,
                 enrichment: KnowledgeEnrichment, heads: AlignmentHeads, *, aux_loss: bool = True,
                 enrich: bool = True) -> None:
        super().__init__()
        if backbone.width != decoder.config.patch_dim:
            raise ValueError(f"backbone width {backbone.width} != decoder patch_dim {decoder.config.patch_dim}")
        if region_feature.config.query_dim != decoder.config.width or region_feature.config.patch_dim != backbone.width:
            raise ValueError("region_feature query_dim/patch_dim must match the decoder width and backbone width")
        if enrichment.dim != region_feature.config.out_dim or heads.region_dim != region_feature.config.out_dim:
            raise ValueError(f"enrichment dim {enrichment.dim} and heads region_dim {heads.region_dim} must equal "
                             f"the region feature width {region_feature.config.out_dim}")
        if heads.image_dim != backbone.width:
            raise ValueError(f"heads image_dim {heads.image_dim} != backbone width {backbone.width}")
        if heads.node_dim != enrichment.node_dim:
            raise ValueError(f"heads node_dim {heads.node_dim} != enrichment node_dim {enrichment.node_dim}")
        self.backbone = backbone
        self.decoder = decoder
        self.region_feature = region_feature
        self.enrichment = enrichment
        self.heads = heads
        self.aux_loss = aux_loss
        self.enrich = enrich  # the default of forward's ``enrich``

    @property
    def num_regions(self) -> int:
        return self.decoder.config.num_regions

    @property
    def node_dim(self) -> int:
        return self.enrichment.node_dim

    def forward(self, images: Tensor, knowledge: RegionKnowledge, enrich: bool | None = None) -> dict[str, object]:
        if not isinstance(knowledge, RegionKnowledge):
            raise ValueError(f"knowledge must be a RegionKnowledge, got {type(knowledge).__name__}")
        if knowledge.num_regions != self.num_regions:
            raise ValueError(f"knowledge has {knowledge.num_regions} regions, the model {self.num_regions}")
        if knowledge.node_embeddings.dim() != 2 or knowledge.node_embeddings.shape[1] != self.node_dim:
            raise ValueError(f"knowledge node embeddings must be [N, {self.node_dim}], "
                             f"got {tuple(knowledge.node_embeddings.shape)}")
        enrich = self.enrich if enrich is None else enrich
        device = images.device
        node_embeddings = knowledge.node_embeddings.to(device)  # [N, D_n]
        key_index = knowledge.key_index.to(device)  # [R, K]
        key_mask = knowledge.key_mask.to(device)  # [R, K]

        trunk = self.backbone(images)
        patches, cls, grid = trunk["patches"], trunk["cls"], trunk["grid"]  # [B, N, D_v], [B, D_v], (h, w)
        decoded = self.decoder(patches, return_intermediate=self.aux_loss)
        boxes = decoded["boxes"]  # [B, R, 4] cxcywh normalised
        boxes_xyxy = box_cxcywh_to_xyxy(boxes).clamp(0.0, 1.0)  # [B, R, 4]
        regions = self.region_feature(decoded["query_tokens"], patches, grid, boxes_xyxy, cls, images)  # [B, R, D]

        if enrich:
            enriched = self.enrichment(regions, node_embeddings, key_index, key_mask)
            regions, attention = enriched["enriched"], enriched["attention"]  # [B, R, D], [B, R, K]
        else:  # the "enrichment off" arm: no attention over the graph
            attention = regions.new_zeros(regions.shape[0], *key_index.shape)  # [B, R, K]

        scored = self.heads(regions, cls, knowledge.finding_embeddings(node_embeddings),
                            located_mask=knowledge.located_mask.to(device))
        out: dict[str, object] = {
            "boxes": boxes,  # [B, R, 4] cxcywh normalised
            "boxes_xyxy": boxes_xyxy,  # [B, R, 4] xyxy normalised
            "presence_logits": decoded["presence_logits"],  # [B, R]
            "region_features": regions,  # [B, R, D]
            "image_features": cls,  # [B, D_v]
            "attention": attention,  # [B, R, K]
            "key_index": key_index,  # [R, K]
            "key_mask": key_mask,  # [R, K]
            **scored,
        }
        if self.aux_loss:
            out["aux_outputs"] = decoded["aux_outputs"]
        return out

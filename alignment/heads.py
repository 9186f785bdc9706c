"""Alignment heads: region and image scores against finding-node embeddings (zero-shot by design)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POOLINGS = ("softmax", "mean")  # how region scores are pooled over regions per finding
COMBINES = ("mix", "logsumexp")  # how the pooled region score and the global CLS score are combined


@dataclass
class HeadsConfig:
    """Sizes and choices of ``AlignmentHeads``."""

    embed_dim: int = 128  # joint space E
    init_logit_scale: float = math.log(10.0)  # log of the initial cosine temperature
    max_logit_scale: float = math.log(100.0)  # clamp on the log scale, as CLIP does
    init_logit_bias: float = -5.0  # shared scalar bias; negative for rare positives in multi-label BCE
    pooling: str = "softmax"  # "softmax": learned-temperature softmax over regions; "mean": uniform
    init_pool_scale: float = 1.0  # initial softmax-pooling temperature (multiplies the region logits)
    combine: str = "mix"  # "mix": learned convex mix of pooled and global; "logsumexp": a smooth max
    restrict_to_located: bool = False  # pool a finding only over regions whose neighbourhood holds it
    region_dim: int | None = None  # width of the (enriched) region features; wired by the model factory
    image_dim: int | None = None  # width of the CLS feature; wired by the model factory
    node_dim: int | None = None  # width of the finding-node embeddings; wired from the knowledge


class AlignmentHeads(nn.Module):
    r"""Project regions, the CLS token and finding nodes to one space and score by cosine similarity.

    ``region_logits[b, r, f] = exp(logit_scale) * cos(region_{b,r}, finding_f) + logit_bias`` and
    ``global_logits[b, f]`` likewise from the CLS feature. Per finding, the region logits are
    pooled over regions with weights ``evidence_weights[b, :, f]`` (softmax of
    ``pool_scale * region_logits`` over regions, ``pool_scale`` learned and positive, so it moves
    between a mean and a max; or uniform for ``pooling="mean"``). These weights sum to 1 over the
    regions allowed for that finding and are kept as each ROI's evidence. The image logit then is

    - ``combine="mix"``: ``a * pooled + (1 - a) * global`` with ``a = sigmoid(mix_logit)`` learned
      (starting at 0.5, the plain average);
    - ``combine="logsumexp"``: ``logsumexp(pooled, global) - log 2``, a smooth max that equals
      both when they agree.

    Regions may be left out of pooling with ``region_mask`` (e.g. boxes not present) and, when
    ``restrict_to_located`` is set, with ``located_mask`` (finding f is LOCATED_IN region r's
    neighbourhood). ``region_logits`` themselves stay unmasked (the fine-grained loss and
    region-wise evaluation read them); the mask applied is returned as ``pool_mask``. A finding
    with no allowed region in an image is scored by its global logit alone and gets all-zero
    evidence weights.

    There is no per-class parameter: ``F`` is the number of finding embeddings passed in, so a
    finding added to the graph is scored without retraining.

    Shapes:
        region_features: ``[B, R, region_dim]``, image_features: ``[B, image_dim]``,
        finding_embeddings: ``[F, node_dim]``, region_mask: ``[B, R]`` bool, located_mask: ``[R, F]`` bool
        outputs: region_logits ``[B, R, F]``, global_logits ``[B, F]``, image_logits ``[B, F]``,
        evidence_weights ``[B, R, F]``, pool_mask ``[B, R, F]``, region_embeddings ``[B, R, E]``,
        image_embedding ``[B, E]``, finding_embeddings ``[F, E]`` (all three L2-normalised),
        logit_scale ``[]`` (log-space, clamped: the logits use ``exp(logit_scale)``, as
        ``alignment.losses`` expects), logit_bias ``[]``
    """

    def __init__(self, region_dim: int, image_dim: int, node_dim: int, embed_dim: int = 256, *,
                 init_logit_scale: float = math.log(10.0), max_logit_scale: float = math.log(100.0),
                 init_logit_bias: float = -5.0, pooling: str = "softmax", init_pool_scale: float = 1.0,
                 combine: str = "mix", restrict_to_located: bool = False) -> None:
        super().__init__()
        for name, value in (("region_dim", region_dim), ("image_dim", image_dim), ("node_dim", node_dim),
                            ("embed_dim", embed_dim)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
        if init_pool_scale <= 0:
            raise ValueError(f"init_pool_scale must be positive, got {init_pool_scale}")
        if init_logit_scale > max_logit_scale:
            raise ValueError(f"init_logit_scale ({init_logit_scale}) exceeds max_logit_scale ({max_logit_scale})")
        self.region_dim, self.image_dim, self.node_dim, self.embed_dim = region_dim, image_dim, node_dim, embed_dim
        self.pooling, self.combine, self.restrict_to_located = pooling, combine, restrict_to_located
        self.max_logit_scale = max_logit_scale

        self.region_proj = nn.Linear(region_dim, embed_dim)
        self.image_proj = nn.Linear(image_dim, embed_dim)
        self.finding_proj = nn.Sequential(nn.LayerNorm(node_dim), nn.Linear(node_dim, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(init_logit_bias)))
        self.log_pool_scale = nn.Parameter(torch.tensor(math.log(init_pool_scale)))
        self.mix_logit = nn.Parameter(torch.tensor(0.0))

    @classmethod
    def from_config(cls, config: HeadsConfig) -> "AlignmentHeads":
        if None in (config.region_dim, config.image_dim, config.node_dim):
            raise ValueError("HeadsConfig.region_dim, image_dim and node_dim must be set (the model factory wires them)")
        return cls(config.region_dim, config.image_dim, config.node_dim, config.embed_dim,
                   init_logit_scale=config.init_logit_scale, max_logit_scale=config.max_logit_scale,
                   init_logit_bias=config.init_logit_bias, pooling=config.pooling,
                   init_pool_scale=config.init_pool_scale, combine=config.combine,
                   restrict_to_located=config.restrict_to_located)

    def forward(self, region_features: Tensor, image_features: Tensor, finding_embeddings: Tensor, *,
                region_mask: Tensor | None = None, located_mask: Tensor | None = None) -> dict[str, Tensor]:
        if region_features.dim() != 3 or region_features.shape[-1] != self.region_dim:
            raise ValueError(f"region_features must be [B, R, {self.region_dim}], got {tuple(region_features.shape)}")
        batch, num_regions = region_features.shape[:2]
        if image_features.shape != (batch, self.image_dim):
            raise ValueError(f"image_features must be [{batch}, {self.image_dim}], got {tuple(image_features.shape)}")
        if finding_embeddings.dim() != 2 or finding_embeddings.shape[-1] != self.node_dim:
            raise ValueError(f"finding_embeddings must be [F, {self.node_dim}], got {tuple(finding_embeddings.shape)}")
        num_findings = finding_embeddings.shape[0]
        if region_mask is not None and (region_mask.shape != (batch, num_regions) or region_mask.dtype != torch.bool):
            raise ValueError(f"region_mask must be bool [{batch}, {num_regions}], got "
                             f"{region_mask.dtype} {tuple(region_mask.shape)}")
        if self.restrict_to_located and located_mask is None:
            raise ValueError("restrict_to_located is set: pass located_mask [R, F] (RegionKnowledge.located_mask)")
        if located_mask is not None and (located_mask.shape != (num_regions, num_findings)
                                         or located_mask.dtype != torch.bool):
            raise ValueError(f"located_mask must be bool [{num_regions}, {num_findings}], got "
                             f"{located_mask.dtype} {tuple(located_mask.shape)}")

        region_emb = F.normalize(self.region_proj(region_features), dim=-1)  # [B, R, E]
        image_emb = F.normalize(self.image_proj(image_features), dim=-1)  # [B, E]
        finding_emb = F.normalize(self.finding_proj(finding_embeddings), dim=-1)  # [F, E]
        log_scale = self.logit_scale.clamp(max=self.max_logit_scale)  # [] log-space, as the loss takes it
        scale = log_scale.exp()  # []

        region_logits = scale * torch.einsum("bre,fe->brf", region_emb, finding_emb) + self.logit_bias  # [B, R, F]
        global_logits = scale * image_emb @ finding_emb.t() + self.logit_bias  # [B, F]

        pool_mask = torch.ones_like(region_logits, dtype=torch.bool)  # [B, R, F]
        if region_mask is not None:
            pool_mask = pool_mask & region_mask[:, :, None]
        if self.restrict_to_located:
            pool_mask = pool_mask & located_mask[None]
        has_region = pool_mask.any(dim=1)  # [B, F]

        if self.pooling == "softmax":
            pool_scores = self.log_pool_scale.exp() * region_logits
        else:
            pool_scores = torch.zeros_like(region_logits)
        # -inf on masked pairs; findings with no allowed region get zeros (finite softmax), then
        # the mask zeroes their weights.
        pool_scores = pool_scores.masked_fill(~pool_mask, float("-inf")).masked_fill(~has_region[:, None, :], 0.0)
        evidence = torch.softmax(pool_scores, dim=1) * pool_mask  # [B, R, F]
        pooled = (evidence * region_logits).sum(dim=1)  # [B, F]
        pooled = torch.where(has_region, pooled, global_logits)

        if self.combine == "mix":
            alpha = torch.sigmoid(self.mix_logit)
            image_logits = alpha * pooled + (1 - alpha) * global_logits
        else:
            image_logits = torch.logaddexp(pooled, global_logits) - math.log(2.0)
        return {
            "region_logits": region_logits,  # [B, R, F]
            "global_logits": global_logits,  # [B, F]
            "image_logits": image_logits,  # [B, F]
            "evidence_weights": evidence,  # [B, R, F]
            "pool_mask": pool_mask,  # [B, R, F]
            "region_embeddings": region_emb,  # [B, R, E]
            "image_embedding": image_emb,  # [B, E]
            "finding_embeddings": finding_emb,  # [F, E]
            "logit_scale": log_scale,  # [] log-space: the logits use exp(logit_scale)
            "logit_bias": self.logit_bias,  # []
        }

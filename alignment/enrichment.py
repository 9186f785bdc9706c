"""Knowledge enrichment: each region feature attends over its own KG neighbourhood."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class EnrichmentConfig:
    """Sizes of ``KnowledgeEnrichment``."""

    heads: int = 4  # attention heads; must divide the region width
    mlp_ratio: float = 2.0  # hidden width of the feed-forward block, as a multiple of the region width; 0 drops it
    dropout: float = 0.0  # dropout on attention weights and on both residual branches
    dim: int | None = None  # region feature width D (queries and output); wired by the model factory
    node_dim: int | None = None  # node embedding width D_n; wired by the factory from the knowledge


class KnowledgeEnrichment(nn.Module):
    r"""Masked multi-head cross-attention from each region to its neighbourhood's node embeddings.

    Region ``r``'s query attends only over the nodes ``key_index[r]`` with ``key_mask[r]`` true
    (the anatomy node, its ``PART_OF`` ancestors and the findings located there; see
    ``RegionKnowledge``). The keys of all regions are gathered into one padded ``[R, K]`` block and
    masked, so there is no loop over regions. Pre-norm residual blocks::

        x = x + Attn(LN(x), LN_kv(nodes[key_index]))
        x = x + MLP(LN(x))

    A region whose neighbourhood is empty (its mask row all false) skips both blocks: its output
    equals its input exactly and its attention row is all zeros.

    Shapes:
        region_features: ``[B, R, D]``
        node_embeddings: ``[N, D_n]``
        key_index: ``[R, K]`` long, key_mask: ``[R, K]`` bool
        output ``enriched``: ``[B, R, D]``; ``attention``: ``[B, R, K]`` (mean over heads, zero where
        masked, summing to 1 over each non-empty region's keys); ``key_index``: ``[R, K]``;
        ``key_mask``: ``[R, K]``
    """

    def __init__(self, dim: int, heads: int = 8, *, node_dim: int | None = None, mlp_ratio: float = 4.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if dim <= 0 or heads <= 0:
            raise ValueError(f"dim and heads must be positive, got dim={dim}, heads={heads}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        if node_dim is not None and node_dim <= 0:
            raise ValueError(f"node_dim must be positive, got {node_dim}")
        if mlp_ratio < 0:
            raise ValueError(f"mlp_ratio must be non-negative, got {mlp_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        node_dim = dim if node_dim is None else node_dim
        self.dim, self.heads, self.node_dim = dim, heads, node_dim
        self.head_dim = dim // heads

        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(node_dim)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(node_dim, dim)
        self.v_proj = nn.Linear(node_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)
        self.drop = nn.Dropout(dropout)
        hidden = int(dim * mlp_ratio)
        if hidden > 0:
            self.norm_mlp = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        else:
            self.norm_mlp, self.mlp = None, None

    @classmethod
    def from_config(cls, config: EnrichmentConfig) -> "KnowledgeEnrichment":
        if config.dim is None:
            raise ValueError("EnrichmentConfig.dim must be set (the model factory wires it)")
        return cls(config.dim, config.heads, node_dim=config.node_dim, mlp_ratio=config.mlp_ratio,
                   dropout=config.dropout)

    def forward(self, region_features: Tensor, node_embeddings: Tensor, key_index: Tensor,
                key_mask: Tensor) -> dict[str, Tensor]:
        if region_features.dim() != 3 or region_features.shape[-1] != self.dim:
            raise ValueError(f"region_features must be [B, R, {self.dim}], got {tuple(region_features.shape)}")
        if node_embeddings.dim() != 2 or node_embeddings.shape[-1] != self.node_dim:
            raise ValueError(f"node_embeddings must be [N, {self.node_dim}], got {tuple(node_embeddings.shape)}")
        num_regions = region_features.shape[1]
        if key_index.dim() != 2 or key_index.shape[0] != num_regions or key_mask.shape != key_index.shape:
            raise ValueError(
                f"key_index and key_mask must both be [R={num_regions}, K], got "
                f"{tuple(key_index.shape)} and {tuple(key_mask.shape)}"
            )
        if key_mask.dtype != torch.bool:
            raise ValueError(f"key_mask must be bool, got {key_mask.dtype}")
        batch, heads, head_dim = region_features.shape[0], self.heads, self.head_dim
        num_keys = key_index.shape[1]

        keys = self.norm_kv(node_embeddings[key_index])  # [R, K, D_n]
        q = self.q_proj(self.norm_q(region_features)).view(batch, num_regions, heads, head_dim).transpose(1, 2)
        k = self.k_proj(keys).view(num_regions, num_keys, heads, head_dim).transpose(1, 2)  # [R, h, K, d]
        v = self.v_proj(keys).view(num_regions, num_keys, heads, head_dim).transpose(1, 2)  # [R, h, K, d]
        # q: [B, h, R, d]; every batch item shares its region's keys
        scores = torch.einsum("bhrd,rhkd->bhrk", q, k) / math.sqrt(head_dim)  # [B, h, R, K]

        mask = key_mask[None, None]  # [1, 1, R, K]
        has_keys = key_mask.any(dim=-1)  # [R]
        # Fill masked keys with -inf; rows with no key at all get zeros instead (so softmax stays
        # finite), and their weights are zeroed by the mask below.
        scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~has_keys[None, None, :, None], 0.0)
        attn = torch.softmax(scores, dim=-1) * mask  # [B, h, R, K]
        context = torch.einsum("bhrk,rhkd->bhrd", self.attn_drop(attn), v)  # [B, h, R, d]
        context = context.transpose(1, 2).reshape(batch, num_regions, self.dim)  # [B, R, D]

        gate = has_keys[None, :, None].to(region_features.dtype)  # [1, R, 1]: 0 skips empty regions
        x = region_features + gate * self.drop(self.out_proj(context))
        if self.mlp is not None:
            x = x + gate * self.drop(self.mlp(self.norm_mlp(x)))
        return {
            "enriched": x,  # [B, R, D]
            "attention": attn.mean(dim=1),  # [B, R, K]
            "key_index": key_index,  # [R, K]
            "key_mask": key_mask,  # [R, K]
        }

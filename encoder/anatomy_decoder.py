"""Anatomy decoder: one learnable query per anatomical region, decoded against the ViT patch tokens.

Query ``i`` IS region ``i`` (``ontology.seed.REGION_IDS`` order), a fixed assignment, so the box
losses compare query ``i`` with ground-truth box ``i`` directly: no Hungarian matching.

Queries. Without ``region_init`` each query is a free parameter (truncated normal, std 0.02).
With ``region_init [R, E]`` (e.g. the region nodes' text or GNN embeddings) the query is
``query_offset[i] + proj(LayerNorm(region_init[i]))``: ``region_init`` is kept as a buffer (saved in
the state dict), ``proj`` is learnt and ``query_offset`` starts at zero, so at initialisation the
queries are exactly the projected region embeddings and training may move them.

Layers: ``nn.TransformerDecoderLayer`` (batch_first, pre-norm, GELU): self-attention among the
queries, cross-attention to the patch tokens, MLP; then a final LayerNorm. Heads: a box MLP with a
sigmoid giving ``(cx, cy, w, h)`` normalised to ``[0, 1]``, and a presence logit per region.

Shapes:
    - input ``patches``: ``[B, N, D_p]`` (``D_p = config.patch_dim``; projected to ``width`` if it differs)
    - output ``query_tokens``: ``[B, R, D]`` (``D = config.width``, ``R = config.num_regions``)
    - output ``boxes``: ``[B, R, 4]`` ``(cx, cy, w, h)`` in ``[0, 1]``
    - output ``presence_logits``: ``[B, R]``
    - with ``return_intermediate=True`` also ``aux_outputs``: a list of ``depth - 1`` dicts with
      ``boxes`` and ``presence_logits`` from the earlier layers (same heads and final norm; DETR's
      auxiliary decoding losses)
"""

from __future__ import annotations

import torch
from torch import nn

from anatomy_vlm.encoder.configs import AnatomyDecoderConfig


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (DETR's box head)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class AnatomyDecoder(nn.Module):
    """Region queries -> decoder layers over patch tokens -> region tokens, boxes, presence logits.

    Args:
        config: the :class:`AnatomyDecoderConfig`.
        region_init: optional ``[R, E]`` region-node embeddings the queries start from; needs
            ``config.region_init_dim == E`` (set it without a tensor to rebuild a model whose
            state dict carries the embeddings).
    """

    def __init__(self, config: AnatomyDecoderConfig, region_init: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(config, AnatomyDecoderConfig):
            raise ValueError(f"config must be an AnatomyDecoderConfig, got {type(config).__name__}")
        r, width = config.num_regions, config.width
        if region_init is not None:
            if config.region_init_dim is None:
                raise ValueError("region_init given but config.region_init_dim is None; "
                                 "set it to region_init.shape[1]")
            expected = (r, config.region_init_dim)
            if region_init.ndim != 2 or tuple(region_init.shape) != expected:
                raise ValueError(f"region_init must be [num_regions, region_init_dim] = {list(expected)}, "
                                 f"got {list(region_init.shape)}")
            if not torch.isfinite(region_init).all():
                raise ValueError("region_init has non-finite values")
        self.config = config

        self.query_offset = nn.Parameter(torch.zeros(r, width))  # [R, D]
        if config.region_init_dim is not None:
            e = config.region_init_dim
            init = region_init.detach().float().clone() if region_init is not None else torch.zeros(r, e)
            self.register_buffer("region_init", init)  # [R, E]
            self.init_proj: nn.Module | None = nn.Sequential(nn.LayerNorm(e), nn.Linear(e, width))
        else:
            self.register_buffer("region_init", None)
            self.init_proj = None
        self.memory_proj = nn.Linear(config.patch_dim, width) if config.patch_dim != width else nn.Identity()
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(width, config.heads, dim_feedforward=int(width * config.mlp_ratio),
                                       dropout=config.dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(width)
        self.box_head = MLP(width, width, 4, config.box_head_layers)
        self.presence_head = nn.Linear(width, 1)
        self._init_weights(zero_offset=region_init is not None)

    def _init_weights(self, zero_offset: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if not zero_offset:  # free queries (or embeddings still to be loaded): break the symmetry
            nn.init.trunc_normal_(self.query_offset, std=0.02)

    def queries(self) -> torch.Tensor:
        """The region queries ``[R, D]`` fed to the first decoder layer."""
        q = self.query_offset
        if self.init_proj is not None:
            q = q + self.init_proj(self.region_init.to(q.dtype))
        return q

    def _heads(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        boxes = self.box_head(tokens).sigmoid()  # [B, R, 4] (cx, cy, w, h) in [0, 1]
        presence = self.presence_head(tokens).squeeze(-1)  # [B, R]
        return boxes, presence

    def forward(self, patches: torch.Tensor, return_intermediate: bool = False) -> dict[str, object]:
        """``patches [B, N, D_p]`` -> ``dict(query_tokens [B,R,D], boxes [B,R,4], presence_logits [B,R])``."""
        if patches.ndim != 3 or patches.shape[-1] != self.config.patch_dim or patches.shape[1] == 0:
            raise ValueError(f"patches must be [B, N>0, {self.config.patch_dim}], "
                             f"got shape {tuple(patches.shape)}")
        memory = self.memory_proj(patches)  # [B, N, D]
        x = self.queries()[None].expand(patches.shape[0], -1, -1)  # [B, R, D]
        aux: list[dict[str, torch.Tensor]] = []
        for i, layer in enumerate(self.layers):
            x = layer(x, memory)  # [B, R, D]
            if return_intermediate and i < len(self.layers) - 1:
                boxes, presence = self._heads(self.norm(x))
                aux.append({"boxes": boxes, "presence_logits": presence})
        tokens = self.norm(x)  # [B, R, D]
        boxes, presence = self._heads(tokens)
        out: dict[str, object] = {"query_tokens": tokens, "boxes": boxes, "presence_logits": presence}
        if return_intermediate:
            out["aux_outputs"] = aux
        return out

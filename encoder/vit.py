"""A compact Vision Transformer trunk for 1-channel radiographs (plain torch; nothing downloaded).

Conv patch embedding, a CLS token, learnable position embeddings, pre-norm transformer blocks
using ``torch.nn.functional.scaled_dot_product_attention``, and a final LayerNorm.

**Position interpolation.** The position grid is learnt for ``config.image_size``. An input of
another size (still divisible by the patch size) gets the patch position embeddings resized
bicubically on their 2-D grid (``align_corners=False``, as timm/DINO do); the CLS position is kept
as is. The configured size uses the learnt table unchanged.

Shapes:
    - input ``images``: ``[B, C, H, W]`` with ``C = config.in_channels`` (1) and ``H``, ``W``
      divisible by ``config.patch_size``; intensity in ``[0, 1]`` (``datasets.sample`` convention)
    - output ``cls``: ``[B, D]``; ``patches``: ``[B, h*w, D]`` in row-major grid order;
      ``grid``: ``(h, w) = (H / patch, W / patch)``
    - with ``return_multiscale=True`` also ``patches_coarse``: ``[B, h2*w2, D]``, the patch tokens
      2x2 average-pooled on the grid, and ``grid_coarse``: ``(h2, w2) = (ceil(h/2), ceil(w/2))``
      (a trailing odd row/column is averaged over the cells that exist)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anatomy_vlm.encoder.configs import Size, ViTConfig


class PatchEmbed(nn.Module):
    """Non-overlapping conv patch embedding: ``[B, C, H, W]`` -> ``[B, h*w, D]`` and ``(h, w)``."""

    def __init__(self, in_channels: int, width: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, Size]:
        x = self.proj(images)  # [B, D, h, w]
        grid = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2), grid  # [B, h*w, D]


class Attention(nn.Module):
    """Multi-head self-attention with fused qkv and ``scaled_dot_product_attention``."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, N, d_head]
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(b, n, d)  # [B, N, D]
        return self.proj_drop(self.proj(out))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def interpolate_pos_embed(pos_embed: torch.Tensor, grid: Size, new_grid: Size) -> torch.Tensor:
    """Resize patch position embeddings ``[1, h*w, D]`` on their grid to ``[1, h'*w', D]`` (bicubic)."""
    if tuple(grid) == tuple(new_grid):
        return pos_embed
    d = pos_embed.shape[-1]
    table = pos_embed.reshape(1, grid[0], grid[1], d).permute(0, 3, 1, 2)  # [1, D, h, w]
    table = F.interpolate(table, size=new_grid, mode="bicubic", align_corners=False)  # [1, D, h', w']
    return table.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], d)


class ViT(nn.Module):
    """ViT trunk returning the CLS token and the patch tokens (see the module docstring for shapes).

    Args:
        config: the :class:`ViTConfig` (use ``ViTConfig.preset("tiny")`` for tests).
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        if not isinstance(config, ViTConfig):
            raise ValueError(f"config must be a ViTConfig, got {type(config).__name__}")
        self.config = config
        self.width = config.width
        self.patch_embed = PatchEmbed(config.in_channels, config.width, config.patch_size)
        gh, gw = config.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + gh * gw, config.width))  # [1, 1 + h*w, D]
        self.pos_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.width, config.heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.width)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
        if images.shape[1] != self.config.in_channels:
            raise ValueError(f"images must have {self.config.in_channels} channel(s), got {images.shape[1]} "
                             f"(shape {tuple(images.shape)})")
        p = self.config.patch_size
        h, w = images.shape[-2:]
        if h % p or w % p or h == 0 or w == 0:
            raise ValueError(f"image size {(h, w)} must be positive and divisible by the patch size {p}")

    def position_embedding(self, grid: Size) -> torch.Tensor:
        """Position embeddings ``[1, 1 + h*w, D]`` for a patch grid ``(h, w)`` (interpolated if needed)."""
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patch_pos = interpolate_pos_embed(patch_pos, self.config.grid_size, grid)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(self, images: torch.Tensor, return_multiscale: bool = False) -> dict[str, object]:
        """``images [B, C, H, W]`` -> ``dict(cls [B, D], patches [B, h*w, D], grid (h, w))`` (+ coarse)."""
        self._check_images(images)
        x, grid = self.patch_embed(images)  # [B, h*w, D]
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # [B, 1, D]
        x = torch.cat([cls, x], dim=1) + self.position_embedding(grid)  # [B, 1 + h*w, D]
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        out: dict[str, object] = {"cls": x[:, 0], "patches": x[:, 1:], "grid": grid}
        if return_multiscale:
            patches = x[:, 1:]
            b, _, d = patches.shape
            fmap = patches.transpose(1, 2).reshape(b, d, grid[0], grid[1])  # [B, D, h, w]
            coarse = F.avg_pool2d(fmap, kernel_size=2, stride=2, ceil_mode=True)  # [B, D, h2, w2]
            out["patches_coarse"] = coarse.flatten(2).transpose(1, 2)  # [B, h2*w2, D]
            out["grid_coarse"] = (coarse.shape[-2], coarse.shape[-1])
        return out

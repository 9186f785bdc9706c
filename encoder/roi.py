"""Region (RoI) features pooled from the ViT patch grid.

Boxes follow ``encoder.box_ops`` (normalised ``xyxy`` here).

:func:`region_features` RoI-aligns each normalised box on the patch grid (``aligned=True``, so
grid coordinate 0 is the left edge of the first patch) and averages the
``output_size x output_size`` bins. Gradients flow to the patch tokens, not to the boxes: the boxes
are learnt through the box losses only (as in Faster R-CNN's RoI heads).

:class:`RegionFeature` builds the feature each region is aligned with:
``concat(query token, RoI-pooled patches, global context)`` -> LayerNorm per part -> linear.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_align

from anatomy_vlm.encoder.box_ops import Size, box_xyxy_to_cxcywh
from anatomy_vlm.encoder.configs import RegionFeatureConfig


def _check_grid_tokens(patches: torch.Tensor, grid: Size) -> None:
    if patches.ndim != 3:
        raise ValueError(f"patches must be [B, N, D], got shape {tuple(patches.shape)}")
    if len(grid) != 2 or grid[0] * grid[1] != patches.shape[1]:
        raise ValueError(f"grid {tuple(grid)} does not hold the {patches.shape[1]} patch tokens")


def region_features(patches: torch.Tensor, grid: Size, boxes: torch.Tensor, output_size: int = 2) -> torch.Tensor:
    """RoI-align pooled patch features of normalised xyxy boxes.

    Shapes:
        - ``patches``: ``[B, N, D]`` with ``N = h * w`` (row-major, as ``ViT`` returns them)
        - ``grid``: ``(h, w)``
        - ``boxes``: ``[B, R, 4]`` normalised ``(x1, y1, x2, y2)``; clamped to ``[0, 1]``, detached
        - output: ``[B, R, D]``, the mean of the ``output_size x output_size`` RoI-align bins

    A constant patch grid gives that constant for every box, degenerate (zero-area) boxes included
    (a fixed ``sampling_ratio=2``, so every bin has samples). The pooling runs in float32 and the
    result is cast back to the dtype of ``patches``.
    """
    _check_grid_tokens(patches, grid)
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != patches.shape[0]:
        raise ValueError(f"boxes must be [B, R, 4] with B = {patches.shape[0]}, got shape {tuple(boxes.shape)}")
    if output_size <= 0:
        raise ValueError(f"output_size must be positive, got {output_size}")
    b, n, d = patches.shape
    r = boxes.shape[1]
    h, w = grid
    # float32 for the op: box coordinates in bf16/fp16 would be rounded to a fraction of a patch
    fmap = patches.float().transpose(1, 2).reshape(b, d, h, w)  # [B, D, h, w]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=fmap.device)
    grid_boxes = boxes.detach().float().clamp(0.0, 1.0) * scale  # [B, R, 4] grid coordinates
    batch_index = torch.arange(b, device=fmap.device, dtype=torch.float32).repeat_interleave(r)[:, None]
    rois = torch.cat([batch_index, grid_boxes.reshape(b * r, 4)], dim=1)  # [B*R, 5]
    pooled = roi_align(fmap, rois, output_size=output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return pooled.mean(dim=(-2, -1)).reshape(b, r, d).to(patches.dtype)  # [B, R, D]


def pixel_region_features(images: torch.Tensor, boxes: torch.Tensor, output_size: int) -> torch.Tensor:
    """The image's own pixels inside each box, RoI-aligned to ``output_size x output_size`` bins.

    Shapes: ``images`` ``[B, C, H, W]``; ``boxes`` ``[B, R, 4]`` normalised xyxy (clamped, detached);
    output ``[B, R, C * output_size**2]`` (float32 pooling, cast back to the images' dtype).
    """
    if images.ndim != 4 or images.shape[0] != boxes.shape[0]:
        raise ValueError(f"images must be [B, C, H, W] with B = {boxes.shape[0]}, got {tuple(images.shape)}")
    b, c, h, w = images.shape
    r = boxes.shape[1]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=images.device)
    pixel_boxes = boxes.detach().float().clamp(0.0, 1.0) * scale  # [B, R, 4] pixels
    batch_index = torch.arange(b, device=images.device, dtype=torch.float32).repeat_interleave(r)[:, None]
    rois = torch.cat([batch_index, pixel_boxes.reshape(b * r, 4)], dim=1)  # [B*R, 5]
    pooled = roi_align(images.float(), rois, output_size=output_size, spatial_scale=1.0, sampling_ratio=2,
                       aligned=True)  # [B*R, C, s, s]
    return pooled.reshape(b, r, c * output_size * output_size).to(images.dtype)


class RegionFeature(nn.Module):
    """Region feature = proj(concat(LN(query token), LN(RoI-pooled patches), LN(global context)))
    [+ pixel_proj(concat(pixels in the box - 0.5, box cx, cy, w, h)) when ``pixel_roi_size`` > 0].

    Why the pixel term: a ViT trained from scratch on a few hundred images localises regions well
    long before its tokens carry intensity and size (measured on the phantoms: a linear probe of
    its CLS token and region tokens stayed at AUC 0.5-0.55 for cardiomegaly after 1,200 steps, while
    a linear model on 32x32 pixels reached 0.96). The box geometry (a wider cardiac silhouette)
    and the pixels inside it (fluid at the costophrenic angle) are what a reader looks at first.
    Not layer-normalised: the absolute brightness is the signal.

    Args:
        config: :class:`RegionFeatureConfig` (dims, RoI output size, context "cls" or "mean").

    Shapes:
        - ``query_tokens``: ``[B, R, D_q]`` (the anatomy decoder's output)
        - ``patches``: ``[B, N, D_p]``, ``grid``: ``(h, w)``
        - ``boxes``: ``[B, R, 4]`` normalised ``(x1, y1, x2, y2)``
        - ``cls``: ``[B, D_p]``; required when ``config.context == "cls"``, ignored otherwise
        - ``images``: ``[B, C, H, W]``; required when ``config.pixel_roi_size`` > 0
        - output: ``[B, R, D_out]``
    """

    def __init__(self, config: RegionFeatureConfig):
        super().__init__()
        if not isinstance(config, RegionFeatureConfig):
            raise ValueError(f"config must be a RegionFeatureConfig, got {type(config).__name__}")
        if config.query_dim is None or config.patch_dim is None:
            raise ValueError("RegionFeatureConfig.query_dim and patch_dim must be set (the model factory wires them)")
        self.config = config
        self.norm_query = nn.LayerNorm(config.query_dim)
        self.norm_roi = nn.LayerNorm(config.patch_dim)
        self.norm_context = nn.LayerNorm(config.patch_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.query_dim + 2 * config.patch_dim, config.out_dim)
        self.pixel_proj = None
        if config.pixel_roi_size:
            # one input channel (the ViT's); 4 box numbers (cx, cy, w, h)
            self.pixel_proj = nn.Sequential(
                nn.Linear(config.pixel_roi_size ** 2 + 4, config.out_dim), nn.GELU(),
                nn.Linear(config.out_dim, config.out_dim))

    def forward(self, query_tokens: torch.Tensor, patches: torch.Tensor, grid: Size, boxes: torch.Tensor,
                cls: torch.Tensor | None = None, images: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        _check_grid_tokens(patches, grid)
        b, _, dp = patches.shape
        if query_tokens.ndim != 3 or query_tokens.shape[0] != b or query_tokens.shape[-1] != cfg.query_dim:
            raise ValueError(f"query_tokens must be [{b}, R, {cfg.query_dim}], "
                             f"got shape {tuple(query_tokens.shape)}")
        if dp != cfg.patch_dim:
            raise ValueError(f"patches must have dimension {cfg.patch_dim}, got {dp}")
        if boxes.shape[:2] != query_tokens.shape[:2]:
            raise ValueError(f"boxes {tuple(boxes.shape)} and query_tokens {tuple(query_tokens.shape)} "
                             "must agree on [B, R]")
        if cfg.context == "cls":
            if cls is None or cls.shape != (b, dp):
                got = None if cls is None else tuple(cls.shape)
                raise ValueError(f"context 'cls' needs cls of shape [{b}, {dp}], got {got}")
            context = cls  # [B, D_p]
        else:
            context = patches.mean(dim=1)  # [B, D_p]
        roi = region_features(patches, grid, boxes, cfg.roi_output_size)  # [B, R, D_p]
        context = context[:, None, :].expand(-1, query_tokens.shape[1], -1)  # [B, R, D_p]
        parts = [self.norm_query(query_tokens), self.norm_roi(roi), self.norm_context(context)]
        out = self.proj(self.dropout(torch.cat(parts, dim=-1)))  # [B, R, D_out]
        if self.pixel_proj is not None:
            if images is None or images.shape[1] != 1:
                raise ValueError("pixel_roi_size > 0 needs the one-channel images [B, 1, H, W]")
            pixels = pixel_region_features(images, boxes, cfg.pixel_roi_size) - 0.5  # [B, R, s*s], centred
            geometry = box_xyxy_to_cxcywh(boxes.detach().clamp(0.0, 1.0)).to(pixels.dtype)  # [B, R, 4]
            out = out + self.pixel_proj(torch.cat([pixels, geometry], dim=-1))  # [B, R, D_out]
        return out

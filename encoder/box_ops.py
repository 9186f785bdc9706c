"""Box operations in one place (as DETR's ``util/box_ops.py``): conversions, scaling, IoU, GIoU.

Conventions: ``xyxy`` is ``(x1, y1, x2, y2)`` in continuous pixel-edge coordinates (``x`` runs from
0, the left edge of the first column, to ``W``); ``cxcywh`` is ``(centre x, centre y, width,
height)`` in the same units; *normalised* boxes divide ``x`` by ``W`` and ``y`` by ``H`` so they lie
in ``[0, 1]``. Every function takes tensors (or arrays, converted) of shape ``[..., 4]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from anatomy_vlm.typing import Box, Size


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (cx, cy, w, h) -> ``[..., 4]`` (x1, y1, x2, y2)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``[..., 4]`` (x1, y1, x2, y2) -> ``[..., 4]`` (cx, cy, w, h)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def _scale(image_hw: Size, like: Tensor) -> Tensor:
    h, w = image_hw
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {image_hw!r}")
    return torch.tensor([w, h, w, h], dtype=like.dtype, device=like.device)  # [4]


def normalize_boxes(boxes: Tensor, image_hw: Size) -> Tensor:
    """Pixel boxes ``[..., 4]`` (xyxy or cxcywh) of an ``(H, W)`` image -> normalised to ``[0, 1]``."""
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [..., 4], got shape {tuple(boxes.shape)}")
    return boxes / _scale(image_hw, boxes)


def denormalize_boxes(boxes: Tensor, image_hw: Size) -> Tensor:
    """Normalised boxes ``[..., 4]`` (xyxy or cxcywh) -> pixels of an ``(H, W)`` image."""
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [..., 4], got shape {tuple(boxes.shape)}")
    return boxes * _scale(image_hw, boxes)


def box_area(boxes: Tensor) -> Tensor:
    """``[..., 4]`` xyxy -> ``[...]``; an inverted box has area 0."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def _pairs(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Intersection and union of matching pairs ``[..., 4]`` -> ``[...]``, ``[...]``."""
    if boxes1.shape != boxes2.shape or boxes1.shape[-1:] != (4,):
        raise ValueError(f"boxes must share a [..., 4] shape, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    wh = (torch.minimum(boxes1[..., 2:], boxes2[..., 2:]) - torch.maximum(boxes1[..., :2], boxes2[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, box_area(boxes1) + box_area(boxes2) - inter


def elementwise_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of matching pairs (not all pairs): ``[..., 4]`` xyxy twice -> ``[...]`` (0 for an empty union)."""
    inter, union = _pairs(boxes1, boxes2)
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(union))


def elementwise_generalized_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Generalized IoU of matching pairs: ``[..., 4]`` xyxy twice -> ``[...]``.

    GIoU = IoU - |C \\ (A u B)| / |C| with C the smallest box enclosing both (Rezatofighi et al.
    2019). ``eps`` bounds the denominators so degenerate (zero-area) boxes stay finite; identical
    boxes of positive area give 1.
    """
    inter, union = _pairs(boxes1, boxes2)
    iou = inter / union.clamp(min=eps)
    wh_c = (torch.maximum(boxes1[..., 2:], boxes2[..., 2:]) - torch.minimum(boxes1[..., :2], boxes2[..., :2])).clamp(min=0)
    enclosing = wh_c[..., 0] * wh_c[..., 1]
    return iou - (enclosing - union) / enclosing.clamp(min=eps)


def box_iou_numpy(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """``elementwise_box_iou`` for NumPy arrays (what the evaluation metrics hold), float64 out."""
    return elementwise_box_iou(torch.as_tensor(np.asarray(boxes1, dtype=np.float64)),
                               torch.as_tensor(np.asarray(boxes2, dtype=np.float64))).numpy()


__all__ = ["Box", "Size", "box_area", "box_cxcywh_to_xyxy", "box_iou_numpy", "box_xyxy_to_cxcywh", "denormalize_boxes",
           "elementwise_box_iou", "elementwise_generalized_box_iou", "normalize_boxes"]

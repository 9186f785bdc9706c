"""Image transforms that keep an image, its boxes and its masks consistent (MONAI style).

Each transform comes twice: an **array transform** ``X`` working on one tensor, and a
**dictionary wrapper** ``Xd`` that only loops over the keys it is given and calls ``X``.

Geometric transforms (:class:`Resize`, :class:`LetterboxPad`) change the pixel grid, so they also
map what lives on that grid:

- ``transform(image)``: ``[C, H, W]`` -> ``[C, H', W']`` (the image, float);
- ``transform.apply_boxes(boxes, (H, W))``: ``[N, 4]`` ``(x1, y1, x2, y2)`` in pixels -> ``[N, 4]``;
- ``transform.apply_mask(mask, (H, W))``: ``[H, W]`` or ``[C, H, W]`` -> ``[H', W']`` / ``[C, H', W']``,
  nearest neighbour, so a binary mask stays binary and a label map keeps its labels;
- ``transform.apply_pixel_spacing(spacing, (H, W))``: (row, column) mm per pixel after the transform.

Intensity transforms (:class:`ClipIntensity`, :class:`CheckIntensity`) keep the grid. The one
intensity convention (``[1, H, W]`` float32 in ``[0, 1]``, bright = dense; see
``anatomy_vlm.datasets.sample``) is checked by :class:`CheckIntensity`.

Box coordinates are continuous pixel-edge coordinates: ``x`` runs from 0 (left edge of the first
column) to ``W`` (right edge of the last), so a resize by ``W'/W`` scales them exactly, matching
``interpolate(..., align_corners=False)``.

:func:`apply_to_sample` runs a chain of these on an :class:`XraySample` (image, present boxes,
every mask, pixel spacing) and returns a new, re-validated sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from anatomy_vlm.datasets.sample import XraySample

Size = tuple[int, int]  # (height, width)
KeysCollection = Hashable | Sequence[Hashable]


@runtime_checkable
class GeometricTransform(Protocol):
    """A transform that changes the pixel grid and maps boxes, masks and pixel spacing with it."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...

    def apply_boxes(self, boxes: torch.Tensor, image_hw: Size) -> torch.Tensor: ...

    def apply_mask(self, mask: torch.Tensor, image_hw: Size) -> torch.Tensor: ...

    def apply_pixel_spacing(self, spacing: tuple[float, float], image_hw: Size) -> tuple[float, float]: ...


def _as_size(size: int | Sequence[int]) -> Size:
    """``int`` -> square ``(s, s)``; ``(h, w)`` kept; checked positive."""
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _check_image(image: torch.Tensor, who: str) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{who}: expected an image [C, H, W], got {shape}")


def _check_boxes(boxes: torch.Tensor, who: str) -> None:
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{who}: expected boxes [N, 4] (x1, y1, x2, y2), got {tuple(boxes.shape)}")


def _resize_mask(mask: torch.Tensor, size: Size) -> torch.Tensor:
    """Nearest-neighbour resize of ``[H, W]`` or ``[C, H, W]`` keeping dtype (bool stays bool)."""
    if mask.dim() not in (2, 3):
        raise ValueError(f"expected a mask [H, W] or [C, H, W], got {tuple(mask.shape)}")
    if tuple(mask.shape[-2:]) == size:
        return mask.clone()
    batched = mask.reshape(1, -1, *mask.shape[-2:])
    # nearest-exact samples pixel centres (the same geometry as the bilinear image resize);
    # plain "nearest" shifts by half a pixel. float32 holds label ids up to 2**24 exactly.
    out = F.interpolate(batched.to(torch.float32), size=size, mode="nearest-exact")
    out = out.reshape(*mask.shape[:-2], *size)
    return out.to(torch.bool) if mask.dtype == torch.bool else out.round().to(mask.dtype)


# -- Resize ------------------------------------------------------------------------------------
class Resize:
    """Resize to ``size`` (``(H', W')``, or ``s`` for ``(s, s)``): antialiased bilinear on the image.

    Aspect ratio is not kept; put :class:`LetterboxPad` first to keep it.

    Shapes:
        image ``[C, H, W]`` -> ``[C, H', W']`` (float; clamped to the input's range so the
        [0, 1] convention survives); boxes ``[N, 4]`` -> ``[N, 4]`` scaled by ``(W'/W, H'/H)``;
        mask ``[H, W]`` / ``[C, H, W]`` -> ``[H', W']`` / ``[C, H', W']`` (nearest).
    """

    def __init__(self, size: int | Sequence[int], antialias: bool = True):
        self.size = _as_size(size)
        self.antialias = antialias

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, antialias={self.antialias})"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _check_image(image, "Resize")
        if tuple(image.shape[-2:]) == self.size:
            return image.clone()
        if not image.is_floating_point():
            raise ValueError(f"Resize: expected a floating-point image, got {image.dtype}")
        out = F.interpolate(image[None], size=self.size, mode="bilinear", align_corners=False,
                            antialias=self.antialias)[0]
        # Bilinear weights are non-negative but rounding can step past 1.0 by an ulp.
        return out.clamp_(float(image.min()), float(image.max())) if image.numel() else out

    def apply_boxes(self, boxes: torch.Tensor, image_hw: Size) -> torch.Tensor:
        """``[N, 4]`` pixel boxes on an ``image_hw`` image -> the same boxes on the resized grid."""
        _check_boxes(boxes, "Resize")
        (h, w), (new_h, new_w) = image_hw, self.size
        scale = boxes.new_tensor([new_w / w, new_h / h, new_w / w, new_h / h])
        return boxes * scale

    def apply_mask(self, mask: torch.Tensor, image_hw: Size) -> torch.Tensor:
        """``[H, W]`` / ``[C, H, W]`` -> ``[H', W']`` / ``[C, H', W']`` by nearest neighbour."""
        if tuple(mask.shape[-2:]) != tuple(image_hw):
            raise ValueError(f"Resize: mask {tuple(mask.shape)} does not match the image {tuple(image_hw)}")
        return _resize_mask(mask, self.size)

    def apply_pixel_spacing(self, spacing: tuple[float, float], image_hw: Size) -> tuple[float, float]:
        """Millimetres per pixel grow as pixels get fewer: ``spacing * (H/H', W/W')``."""
        (h, w), (new_h, new_w) = image_hw, self.size
        return float(spacing[0]) * h / new_h, float(spacing[1]) * w / new_w


# -- LetterboxPad ------------------------------------------------------------------------------
class LetterboxPad:
    """Pad to a square (side ``max(H, W)``, or ``side`` if larger) keeping the aspect ratio.

    The image is placed in the centre (``align="center"``; an odd remainder goes right/bottom) or
    at the top-left (``align="top_left"``). Padding takes ``value`` (default 0.0: air is dark under
    the bright = dense convention, so the padding reads as "nothing there"); masks are padded with
    0 / False.

    Shapes:
        image ``[C, H, W]`` -> ``[C, S, S]``; boxes ``[N, 4]`` -> ``[N, 4]`` shifted by ``(left, top)``;
        mask ``[H, W]`` / ``[C, H, W]`` -> ``[S, S]`` / ``[C, S, S]``.
    """

    def __init__(self, side: int | None = None, align: Literal["center", "top_left"] = "center",
                 value: float = 0.0):
        if side is not None and side <= 0:
            raise ValueError(f"LetterboxPad: side must be positive, got {side}")
        if align not in ("center", "top_left"):
            raise ValueError(f"LetterboxPad: align must be 'center' or 'top_left', got {align!r}")
        self.side, self.align, self.value = side, align, float(value)

    def __repr__(self) -> str:
        return f"LetterboxPad(side={self.side}, align={self.align!r}, value={self.value})"

    def padding(self, image_hw: Size) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` pixels of padding for an ``image_hw`` image."""
        h, w = int(image_hw[0]), int(image_hw[1])
        side = max(h, w) if self.side is None else self.side
        if side < max(h, w):
            raise ValueError(f"LetterboxPad: side {side} is smaller than the image {(h, w)}; resize first")
        extra_w, extra_h = side - w, side - h
        if self.align == "top_left":
            return 0, extra_w, 0, extra_h
        return extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _check_image(image, "LetterboxPad")
        return F.pad(image, self.padding(tuple(image.shape[-2:])), mode="constant", value=self.value)

    def apply_boxes(self, boxes: torch.Tensor, image_hw: Size) -> torch.Tensor:
        """``[N, 4]`` boxes shifted by the left/top padding."""
        _check_boxes(boxes, "LetterboxPad")
        left, _, top, _ = self.padding(image_hw)
        return boxes + boxes.new_tensor([left, top, left, top])

    def apply_mask(self, mask: torch.Tensor, image_hw: Size) -> torch.Tensor:
        """``[H, W]`` / ``[C, H, W]`` padded with zeros (False) like the image."""
        if tuple(mask.shape[-2:]) != tuple(image_hw):
            raise ValueError(f"LetterboxPad: mask {tuple(mask.shape)} does not match the image {tuple(image_hw)}")
        pad = self.padding(image_hw)
        if mask.dtype == torch.bool:  # F.pad has no bool kernel
            return F.pad(mask.to(torch.uint8), pad, mode="constant", value=0).to(torch.bool)
        return F.pad(mask, pad, mode="constant", value=0)

    def apply_pixel_spacing(self, spacing: tuple[float, float], image_hw: Size) -> tuple[float, float]:
        """Padding adds pixels of the same size."""
        return float(spacing[0]), float(spacing[1])


# -- intensity ---------------------------------------------------------------------------------
class ClipIntensity:
    """Clamp values to ``[low, high]`` (default the convention's ``[0, 1]``). Shape kept: ``[C, H, W]``."""

    def __init__(self, low: float = 0.0, high: float = 1.0):
        if not low < high:
            raise ValueError(f"ClipIntensity: need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def __repr__(self) -> str:
        return f"ClipIntensity(low={self.low}, high={self.high})"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.clamp(self.low, self.high)


class CheckIntensity:
    """Raise ``ValueError`` unless the image is the convention: ``[1, H, W]`` float32 in ``[0, 1]``.

    Returns the image unchanged, so it can sit in a chain. ``channels=None`` accepts any ``C``.
    """

    def __init__(self, channels: int | None = 1):
        self.channels = channels

    def __repr__(self) -> str:
        return f"CheckIntensity(channels={self.channels})"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _check_image(image, "CheckIntensity")
        if self.channels is not None and image.shape[0] != self.channels:
            raise ValueError(f"CheckIntensity: expected {self.channels} channel(s), got {tuple(image.shape)}")
        if image.dtype != torch.float32:
            raise ValueError(f"CheckIntensity: expected float32, got {image.dtype}")
        if image.numel():
            low, high = float(image.min()), float(image.max())
            if not (0.0 <= low and high <= 1.0):  # also catches NaN
                raise ValueError(f"CheckIntensity: values must lie in [0, 1], got [{low:.4g}, {high:.4g}]")
        return image


# -- dictionary wrappers -----------------------------------------------------------------------
def _keys(keys: KeysCollection | None) -> tuple[Hashable, ...]:
    if keys is None:
        return ()
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        return (keys,)
    return tuple(keys)


class _MapTransform:
    """Loops an array transform over ``keys``; a missing key is an error unless ``allow_missing_keys``."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False):
        self.keys = _keys(keys)
        if not self.keys:
            raise ValueError(f"{type(self).__name__}: keys must name at least one entry")
        self.allow_missing_keys = allow_missing_keys

    def key_iterator(self, data: Mapping, keys: tuple[Hashable, ...]) -> Iterable[Hashable]:
        for key in keys:
            if key in data:
                yield key
            elif not self.allow_missing_keys:
                raise KeyError(f"{type(self).__name__}: key {key!r} not in the data (has {list(data)})")


class _GeometricMapTransform(_MapTransform):
    """Dict wrapper for a :class:`GeometricTransform`: images under ``keys``, boxes under
    ``box_keys`` and masks under ``mask_keys``. Boxes and masks are mapped with the grid of the
    first image key (read before it is transformed); every image key must share that grid."""

    transform: GeometricTransform

    def __init__(self, keys: KeysCollection, box_keys: KeysCollection | None = None,
                 mask_keys: KeysCollection | None = None, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.box_keys, self.mask_keys = _keys(box_keys), _keys(mask_keys)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        image_keys = list(self.key_iterator(d, self.keys))
        if not image_keys:
            return d
        image_hw: Size = tuple(d[image_keys[0]].shape[-2:])  # type: ignore[assignment]
        for key in image_keys:
            if tuple(d[key].shape[-2:]) != image_hw:
                raise ValueError(f"{type(self).__name__}: image {key!r} is {tuple(d[key].shape)}, "
                                 f"the first image is {image_hw}")
            d[key] = self.transform(d[key])
        for key in self.key_iterator(d, self.box_keys):
            d[key] = self.transform.apply_boxes(d[key], image_hw)
        for key in self.key_iterator(d, self.mask_keys):
            d[key] = self.transform.apply_mask(d[key], image_hw)
        return d


class Resized(_GeometricMapTransform):
    """Dictionary wrapper of :class:`Resize` (images, ``box_keys`` boxes ``[N, 4]``, ``mask_keys`` masks)."""

    def __init__(self, keys: KeysCollection, size: int | Sequence[int], box_keys: KeysCollection | None = None,
                 mask_keys: KeysCollection | None = None, antialias: bool = True,
                 allow_missing_keys: bool = False):
        super().__init__(keys, box_keys, mask_keys, allow_missing_keys)
        self.transform = Resize(size, antialias=antialias)


class LetterboxPadd(_GeometricMapTransform):
    """Dictionary wrapper of :class:`LetterboxPad`."""

    def __init__(self, keys: KeysCollection, side: int | None = None, box_keys: KeysCollection | None = None,
                 mask_keys: KeysCollection | None = None, align: Literal["center", "top_left"] = "center",
                 value: float = 0.0, allow_missing_keys: bool = False):
        super().__init__(keys, box_keys, mask_keys, allow_missing_keys)
        self.transform = LetterboxPad(side, align=align, value=value)


class ClipIntensityd(_MapTransform):
    """Dictionary wrapper of :class:`ClipIntensity`."""

    def __init__(self, keys: KeysCollection, low: float = 0.0, high: float = 1.0, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.transform = ClipIntensity(low, high)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d, self.keys):
            d[key] = self.transform(d[key])
        return d


class CheckIntensityd(_MapTransform):
    """Dictionary wrapper of :class:`CheckIntensity`."""

    def __init__(self, keys: KeysCollection, channels: int | None = 1, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.transform = CheckIntensity(channels)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d, self.keys):
            try:
                d[key] = self.transform(d[key])
            except ValueError as e:
                raise ValueError(f"key {key!r}: {e}") from e
        return d


# -- XraySample --------------------------------------------------------------------------------
def apply_to_sample(sample: XraySample, transform: object | Sequence[object]) -> XraySample:
    """Apply one transform, or a chain, to an :class:`XraySample`'s image, boxes, masks and spacing.

    A :class:`GeometricTransform` maps the image ``[1, H, W]``, the present boxes ``[29, 4]``
    (absent ones stay zero boxes, so ``box_present`` keeps its meaning), every mask ``[H, W]`` and
    ``meta["pixel_spacing"]`` if present; any other callable is taken as an intensity transform and
    must keep the image's shape. Returns a new sample (validated again by ``XraySample``); the
    input is not modified. ``meta["transforms"]`` lists what was applied.
    """
    chain = list(transform) if isinstance(transform, Sequence) else [transform]
    image, boxes, masks = sample.image, sample.boxes, dict(sample.masks)
    meta = dict(sample.meta)
    present = sample.box_present
    applied = list(meta.get("transforms", []))  # type: ignore[arg-type]
    for step in chain:
        image_hw: Size = tuple(image.shape[-2:])  # type: ignore[assignment]
        if isinstance(step, GeometricTransform):
            image = step(image)
            mapped = step.apply_boxes(boxes, image_hw)
            boxes = torch.where(present[:, None], mapped, torch.zeros_like(mapped))
            masks = {name: step.apply_mask(mask, image_hw) for name, mask in masks.items()}
            spacing = meta.get("pixel_spacing")
            if spacing is not None:
                meta["pixel_spacing"] = step.apply_pixel_spacing(spacing, image_hw)  # type: ignore[arg-type]
        elif callable(step):
            out = step(image)
            if tuple(out.shape) != tuple(image.shape):
                raise ValueError(f"{sample.source}/{sample.source_id}: {step!r} changed the image shape "
                                 f"{tuple(image.shape)} -> {tuple(out.shape)} but is not a "
                                 "GeometricTransform (it cannot map the boxes and masks)")
            image = out
        else:
            raise TypeError(f"apply_to_sample: {step!r} is not a transform")
        applied.append(repr(step))
    meta["transforms"] = applied
    return dataclasses.replace(sample, image=image, boxes=boxes.to(torch.float32), masks=masks, meta=meta)

"""The one input contract: any radiograph -> the model's square input, and boxes back again.

``Preprocess`` is used by training, evaluation, the CLI and the service alike, so the same file
always becomes the same tensor. It is built from MONAI transforms (``Resize``; with
``keep_aspect`` a longest-side ``Resize`` then a symmetric ``SpatialPad``) and records the geometry
of each image it maps (``ImageGeometry``), so boxes predicted on the model input are mapped back
to the uploaded image's pixels by the transform's inverse (:meth:`Preprocess.boxes_to_image`),
and ground-truth boxes and masks of a training sample go forward through the same geometry
(:meth:`Preprocess.sample`).

Intensity: the input follows the one convention (``[1, H, W]`` float32 in ``[0, 1]``, bright =
dense; checked by ``datasets.XraySample`` and by ``__call__``), and resampling keeps it there.

Shapes: ``__call__``: image ``[1, H, W]`` -> ``([1, S, S], ImageGeometry)``; ``boxes_to_image``:
``[..., 4]`` normalised xyxy on the model input -> ``[..., 4]`` pixels of the original image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from monai.transforms import Resize, SpatialPad
from torch import Tensor

from anatomy_vlm.encoder.box_ops import Size


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes the model's input (stored in checkpoints with the model)."""

    image_size: int = 64  # side S of the square model input; the ViT's position grid is sized for it
    keep_aspect: bool = False  # True: resize the longest side to S and pad (letterbox); False: stretch to S x S
    antialias: bool = True  # smooth before shrinking (MONAI's Gaussian anti-aliasing)

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"PreprocessConfig.image_size must be positive, got {self.image_size}")


@dataclass(frozen=True)
class ImageGeometry:
    """Where an image went: original size, scale per axis, and the padding offset on the model input."""

    original_hw: Size  # (H, W) of the image as given
    scale_xy: tuple[float, float]  # model-input pixels per original pixel, (x, y)
    offset_xy: tuple[float, float]  # padding before the image on the model input, (left, top) pixels
    size: int  # S


class Preprocess:
    """Image -> model input, recording its geometry; see the module docstring."""

    def __init__(self, config: PreprocessConfig | None = None):
        self.config = config or PreprocessConfig()
        side = self.config.image_size
        if self.config.keep_aspect:
            self._resize = Resize(side, size_mode="longest", mode="bilinear", anti_aliasing=self.config.antialias)
            self._pad = SpatialPad((side, side), method="symmetric", value=0.0)
        else:
            self._resize = Resize((side, side), mode="bilinear", anti_aliasing=self.config.antialias)
            self._pad = None

    @classmethod
    def from_config(cls, config: PreprocessConfig) -> "Preprocess":
        return cls(config)

    def __repr__(self) -> str:
        return f"Preprocess({self.config})"

    def geometry(self, image_hw: Size) -> ImageGeometry:
        """The geometry ``__call__`` gives an image of ``image_hw``, without touching pixels."""
        h, w = int(image_hw[0]), int(image_hw[1])
        side = self.config.image_size
        if h <= 0 or w <= 0:
            raise ValueError(f"image size must be positive, got {(h, w)}")
        if not self.config.keep_aspect:
            return ImageGeometry((h, w), (side / w, side / h), (0.0, 0.0), side)
        # MONAI's longest-side resize rounds the other side; the pad splits the rest (odd pixel after)
        scale = side / max(h, w)
        new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        return ImageGeometry((h, w), (new_w / w, new_h / h), (float((side - new_w) // 2), float((side - new_h) // 2)), side)

    def __call__(self, image: Tensor) -> tuple[Tensor, ImageGeometry]:
        if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 1:
            shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"Preprocess: expected an image [1, H, W], got {shape}")
        if not image.is_floating_point():
            raise ValueError(f"Preprocess: expected a float image in [0, 1], got {image.dtype}")
        geometry = self.geometry(tuple(image.shape[-2:]))
        out = self._resample(image.float(), self._resize)
        return out.clamp_(0.0, 1.0), geometry

    def _resample(self, data: Tensor, resize: Resize) -> Tensor:
        out = resize(data)
        if self._pad is not None:
            out = self._pad(out)
        # MONAI returns a MetaTensor; the library passes plain tensors (collate, hashing, DDP)
        return (out.as_tensor() if hasattr(out, "as_tensor") else out).contiguous()

    # -- boxes and masks ---------------------------------------------------------------------
    def boxes_to_input(self, boxes: Tensor, geometry: ImageGeometry) -> Tensor:
        """``[..., 4]`` pixel xyxy boxes of the original image -> pixel boxes on the model input."""
        sx, sy = geometry.scale_xy
        ox, oy = geometry.offset_xy
        return boxes * boxes.new_tensor([sx, sy, sx, sy]) + boxes.new_tensor([ox, oy, ox, oy])

    def boxes_to_image(self, boxes: Tensor, geometry: ImageGeometry) -> Tensor:
        """The inverse: ``[..., 4]`` NORMALISED xyxy boxes on the model input -> pixels of the original image,
        clipped to it (a box the model put on the padding shrinks to the image's edge)."""
        sx, sy = geometry.scale_xy
        ox, oy = geometry.offset_xy
        side = float(geometry.size)
        pixels = boxes * side - boxes.new_tensor([ox, oy, ox, oy])
        out = pixels / boxes.new_tensor([sx, sy, sx, sy])
        h, w = geometry.original_hw
        return torch.stack([out[..., 0].clamp(0, w), out[..., 1].clamp(0, h), out[..., 2].clamp(0, w),
                            out[..., 3].clamp(0, h)], dim=-1)

    def mask(self, mask: Tensor) -> Tensor:
        """``[H, W]`` bool/label mask -> ``[S, S]`` by nearest neighbour (stays binary), padded with 0."""
        if mask.dim() != 2:
            raise ValueError(f"Preprocess: expected a mask [H, W], got {tuple(mask.shape)}")
        resize = Resize(self._resize.spatial_size, size_mode=self._resize.size_mode, mode="nearest-exact")
        out = self._resample(mask[None].float(), resize)[0]
        return out > 0.5 if mask.dtype == torch.bool else out.round().to(mask.dtype)

    def sample(self, sample):
        """An ``XraySample`` at the model's input size: image, present boxes and masks mapped, the
        pixel spacing (``meta["pixel_spacing"]``, mm per pixel) rescaled; the geometry kept in
        ``meta["geometry"]``. A sample already at the input size comes back unchanged."""
        height, width = sample.image.shape[-2:]
        if (height, width) == (self.config.image_size, self.config.image_size):
            return sample
        image, geometry = self(sample.image)
        boxes = torch.where(sample.box_present[:, None], self.boxes_to_input(sample.boxes, geometry),
                            torch.zeros_like(sample.boxes))
        meta = dict(sample.meta, geometry=geometry)
        if "pixel_spacing" in meta:
            row, col = meta["pixel_spacing"]
            meta["pixel_spacing"] = (float(row) / geometry.scale_xy[1], float(col) / geometry.scale_xy[0])
        return dataclasses.replace(sample, image=image, boxes=boxes,
                                   masks={name: self.mask(m) for name, m in sample.masks.items()}, meta=meta)


__all__ = ["ImageGeometry", "Preprocess", "PreprocessConfig"]

"""The image side: image IO and transforms, the ViT backbone, anatomy queries, box heads, RoI pooling."""

from anatomy_vlm.encoder.anatomy_decoder import AnatomyDecoder
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig, RegionFeatureConfig, ViTConfig
from anatomy_vlm.encoder.io import ImageRead, read_dicom, read_image, read_png_jpeg
from anatomy_vlm.encoder.roi import (
    RegionFeature,
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    denormalize_boxes,
    normalize_boxes,
    region_features,
)
from anatomy_vlm.encoder.vit import ViT
from anatomy_vlm.exceptions import ImageReadError

__all__ = [
    "AnatomyDecoder", "AnatomyDecoderConfig", "ImageRead", "ImageReadError", "RegionFeature", "RegionFeatureConfig",
    "ViT", "ViTConfig", "box_cxcywh_to_xyxy", "box_xyxy_to_cxcywh", "denormalize_boxes", "normalize_boxes",
    "read_dicom", "read_image", "read_png_jpeg", "region_features",
]

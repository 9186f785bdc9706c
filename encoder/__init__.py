"""The image side: image IO, the one preprocessing transform, box ops, the ViT trunk, anatomy queries,
region features."""

from anatomy_vlm.encoder.anatomy_decoder import AnatomyDecoder
from anatomy_vlm.encoder.box_ops import (
    box_cxcywh_to_xyxy, box_xyxy_to_cxcywh, denormalize_boxes, elementwise_box_iou, elementwise_generalized_box_iou,
    normalize_boxes,
)
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig, RegionFeatureConfig, ViTConfig
from anatomy_vlm.encoder.io import ImageRead, read_dicom, read_image, read_png_jpeg
from anatomy_vlm.encoder.preprocess import ImageGeometry, Preprocess, PreprocessConfig
from anatomy_vlm.encoder.roi import RegionFeature, region_features
from anatomy_vlm.encoder.vit import ViT
from anatomy_vlm.exceptions import ImageReadError

__all__ = [
    "AnatomyDecoder", "AnatomyDecoderConfig", "ImageGeometry", "ImageRead", "ImageReadError", "Preprocess",
    "PreprocessConfig", "RegionFeature", "RegionFeatureConfig", "ViT", "ViTConfig", "box_cxcywh_to_xyxy",
    "box_xyxy_to_cxcywh", "denormalize_boxes", "elementwise_box_iou", "elementwise_generalized_box_iou",
    "normalize_boxes", "read_dicom", "read_image", "read_png_jpeg", "region_features",
]

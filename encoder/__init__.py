"""Image IO and transforms (the ViT backbone, anatomy queries and box heads come with the model issue)."""

from anatomy_vlm.encoder.io import ImageRead, read_dicom, read_image, read_png_jpeg
from anatomy_vlm.exceptions import ImageReadError

__all__ = ["ImageRead", "ImageReadError", "read_dicom", "read_image", "read_png_jpeg"]

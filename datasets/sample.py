"""The one sample type every reader returns, and the fixed order of the 29 anatomical regions.

Intensity convention (checked once, in ``XraySample.__post_init__``): the image is a float32
tensor ``[1, H, W]`` with values in ``[0, 1]``, bright = dense (the DICOM MONOCHROME2 display
convention: bone and heart bright, air dark). Readers bring every source to it (MONOCHROME1
inverted, rescale and VOI LUT / window applied, 8/12/16-bit scaled by the stored bit depth).

Boxes are ``(x1, y1, x2, y2)`` in pixels of ``image`` (after any resizing the reader did), in the
index order of ``REGION_IDS`` (the Chest ImaGenome order); a region the source does not give has
``box_present`` False and a zero box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from anatomy_vlm.ontology.seed import REGION_IDS

# The 29 Chest ImaGenome region names, as the data set spells them, in REGION_IDS order.
REGION_NAMES: tuple[str, ...] = tuple(region_id.replace("_", " ") for region_id in REGION_IDS)
NUM_REGIONS = len(REGION_IDS)

# Label values: 1.0 positive, 0.0 negative; an uncertain mention becomes what the reader's
# uncertainty policy says (see datasets/labels.py), never a silent guess.
LabelMap = dict[str, float]  # ontology concept id -> label value


@dataclass
class XraySample:
    image: torch.Tensor  # [1, H, W] float32 in [0, 1], bright = dense
    source: str  # the data set, e.g. "mimic-cxr", "vindr-cxr", "phantom"
    source_id: str  # the source's own id of the image (dicom_id, image file name, ...)
    boxes: torch.Tensor = None  # type: ignore[assignment]  # [29, 4] float32 (x1, y1, x2, y2) pixels
    box_present: torch.Tensor = None  # type: ignore[assignment]  # [29] bool
    image_labels: LabelMap = field(default_factory=dict)  # finding/disease id -> value, whole image
    region_labels: dict[str, LabelMap] = field(default_factory=dict)  # region id -> {finding id: value}
    masks: dict[str, torch.Tensor] = field(default_factory=dict)  # name (e.g. "heart") -> [H, W] bool
    meta: dict[str, object] = field(default_factory=dict)  # anything else the source gives (view, study id ...)

    def __post_init__(self) -> None:
        image = self.image
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 1:
            raise ValueError(f"{self.source}/{self.source_id}: image must be a [1, H, W] tensor, got "
                             f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
        if image.dtype != torch.float32:
            raise ValueError(f"{self.source}/{self.source_id}: image must be float32, got {image.dtype}")
        if image.numel() and (float(image.min()) < 0.0 or float(image.max()) > 1.0):
            raise ValueError(f"{self.source}/{self.source_id}: image values must lie in [0, 1], "
                             f"got [{float(image.min()):.3g}, {float(image.max()):.3g}]")
        if self.boxes is None:
            self.boxes = torch.zeros(NUM_REGIONS, 4, dtype=torch.float32)
        if self.box_present is None:
            self.box_present = torch.zeros(NUM_REGIONS, dtype=torch.bool)
        if tuple(self.boxes.shape) != (NUM_REGIONS, 4) or tuple(self.box_present.shape) != (NUM_REGIONS,):
            raise ValueError(f"{self.source}/{self.source_id}: boxes must be [{NUM_REGIONS}, 4] and "
                             f"box_present [{NUM_REGIONS}]")
        for region in self.region_labels:
            if region not in REGION_IDS:
                raise ValueError(f"{self.source}/{self.source_id}: unknown region id {region!r}")
        height, width = image.shape[1:]
        for name, mask in self.masks.items():
            if tuple(mask.shape) != (height, width):
                raise ValueError(f"{self.source}/{self.source_id}: mask {name!r} is {tuple(mask.shape)}, "
                                 f"the image is {(height, width)}")

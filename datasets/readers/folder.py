"""A folder of DICOM, PNG and JPEG files (searched recursively), without labels.

For inference on images that come with no annotation: ``source_id`` is the path relative to the
folder (POSIX separators), ``image_labels``/``region_labels`` are empty and no box is present.
Files are matched by suffix (``suffixes``, case-insensitive); which reader decodes one is decided
by its content (``read_image``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anatomy_vlm.datasets.labels import DataError
from anatomy_vlm.datasets.readers.base import ReaderConfig, Record, Transform, XrayDataset


@dataclass
class FolderConfig(ReaderConfig):
    root: Path = Path(".")
    suffixes: tuple[str, ...] = (".dcm", ".dicom", ".png", ".jpg", ".jpeg")  # lower case, with the dot


class FolderDataset(XrayDataset):
    """Every image file under ``root``, sorted by relative path."""

    source = "folder"

    def __init__(self, config: FolderConfig, transform: Transform | None = None):
        root = Path(config.root)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder")
        suffixes = {s.lower() for s in config.suffixes}
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        records = [Record(image_path=p, source_id=p.relative_to(root).as_posix()) for p in paths]
        super().__init__(records, config, transform)

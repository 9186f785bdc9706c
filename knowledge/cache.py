"""A folder of cached embeddings, keyed by graph version and by what produced them.

    cache = EmbeddingCache("~/.cache/anatomy_vlm/embeddings")
    features = cache.get_or_compute(index.version, encoder.name, lambda: torch.cat(...))

One file per ``(version, key)``: ``<version>__<slug of key>-<hash of key>.pt``. ``version`` is the
graph's content hash (``GraphIndex.version``); ``key`` names the producer, e.g. the text encoder's
``name`` or ``"gnn-" + checkpoint hash``. Any change of graph content gives a new version and so a
miss, never stale embeddings.

Writes are atomic: the tensor goes to a temporary file in the same folder, is flushed to disk and
then ``os.replace``-d over the target, so a reader sees the old file or the new one, never half of
one. A file that cannot be read back (truncated, not a tensor, or recorded under another version or
key) raises ``EmbeddingCacheError`` naming the file: it is an error, not a silent miss, because a
damaged cache usually means a disk or concurrency problem worth seeing. ``discard`` removes it.
Tensors are stored detached on the CPU and loaded with ``weights_only=True`` (no code runs on load).
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from anatomy_vlm.atomic import write_atomically
from anatomy_vlm.exceptions import AnatomyVLMError

_VERSION_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_FORMAT = 1  # bumped if the file layout changes; older files then read as corrupt


class EmbeddingCacheError(AnatomyVLMError):
    """A cached embedding file exists but cannot be read back; the message names the file."""


class EmbeddingCache:
    """Tensors on disk under ``folder``, one file per (graph version, key)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()

    def path(self, version: str, key: str) -> Path:
        """The file that holds ``(version, key)``; ``ValueError`` for an unusable version or key."""
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise ValueError(f"version must be 1-128 characters of [A-Za-z0-9._-], got {version!r}")
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:64]
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
        return self.folder / f"{version}__{slug}-{digest}.pt"

    def get(self, version: str, key: str) -> Tensor | None:
        """The cached tensor (on the CPU), ``None`` if there is none; ``EmbeddingCacheError`` if corrupt."""
        path = self.path(version, key)
        if not path.is_file():
            return None
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for truncated or foreign files
            raise EmbeddingCacheError(f"cached embeddings {path} cannot be read ({e.__class__.__name__}: {e})") from e
        if (
            not isinstance(record, dict) or record.get("format") != _FORMAT
            or not isinstance(record.get("tensor"), Tensor)
        ):
            raise EmbeddingCacheError(f"cached embeddings {path} are not in the cache's format")
        if record.get("version") != version or record.get("key") != key:
            raise EmbeddingCacheError(
                f"cached embeddings {path} were written for version {record.get('version')!r}, key "
                f"{record.get('key')!r}, not {version!r}, {key!r}"
            )
        return record["tensor"]

    def put(self, version: str, key: str, tensor: Tensor) -> Path:
        """Store ``tensor`` (detached, on the CPU) atomically; returns its file."""
        if not isinstance(tensor, Tensor):
            raise ValueError(f"only tensors are cached, got {type(tensor).__name__}")
        path = self.path(version, key)
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"format": _FORMAT, "version": version, "key": key, "tensor": tensor.detach().cpu().contiguous()}
        buffer = io.BytesIO()
        torch.save(record, buffer)
        write_atomically(path, buffer.getvalue())
        return path

    def get_or_compute(self, version: str, key: str, compute: Callable[[], Tensor]) -> Tensor:
        """The cached tensor (on the CPU), or on a miss ``compute()`` stored and returned as it is."""
        cached = self.get(version, key)
        if cached is not None:
            return cached
        tensor = compute()
        self.put(version, key, tensor)
        return tensor

    def discard(self, version: str, key: str) -> bool:
        """Remove one entry (e.g. a corrupt one); ``True`` if a file was removed."""
        path = self.path(version, key)
        if path.is_file():
            path.unlink()
            return True
        return False

    def versions(self) -> list[str]:
        """Graph versions with at least one cached entry, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted({p.name.split("__", 1)[0] for p in self.folder.glob("*__*.pt")})

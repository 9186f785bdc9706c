"""Files replaced whole or not at all: write beside the target, fsync, then ``os.replace``."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644  # mkstemp would leave a new file readable by its owner only


def write_temp_beside(path: Path, data: bytes) -> Path:
    """``data`` in a fsynced temporary file in ``path``'s folder, with ``path``'s mode; the caller renames it."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: a reader sees the old file or the new one, never half of either."""
    temp = write_temp_beside(path, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise

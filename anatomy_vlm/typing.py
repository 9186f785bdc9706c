"""Type aliases shared across packages (PyG's ``typing`` module idea): one name per shape."""

from __future__ import annotations

Size = tuple[int, int]  # (height, width) in pixels
Box = tuple[float, float, float, float]  # (x1, y1, x2, y2) in continuous pixel-edge coordinates

__all__ = ["Box", "Size"]

"""Uploaded images: what kind of file it is, and how big, read from its header before any decoding.

A 50,000 x 50,000 PNG is a few hundred bytes of header and 2.5 GB once decoded, so its size must
be refused from the header: the PNG IHDR chunk, the JPEG SOFn segment, or the DICOM Rows, Columns
and Number of Frames (read with ``stop_before_pixels``, every pixel-module tag checked, a deflated
data set inflated as a stream within the budget). The readers check the same :class:`ImageBudget`
again before they allocate, and Pillow's decompression-bomb guard stays as a last line.

Status codes: 415 not an image we take, 413 over a limit, 422 a header or pixel data that is cut,
corrupt or malformed; every message names the client's file and the problem (the tag, for DICOM).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.exceptions import ImageReadError, ImageTooLargeError

if TYPE_CHECKING:  # the readers pull in torch; the service imports them when the first upload arrives
    from anatomy_vlm.encoder.io import ImageBudget

ImageKind = Literal["png", "jpeg", "dicom"]
SUFFIX: dict[str, str] = {"png": ".png", "jpeg": ".jpg", "dicom": ".dcm"}

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Declared part types we accept; anything else is refused (415) before the bytes are looked at.
ACCEPTED_TYPES = frozenset({
    "image/png", "image/jpeg", "image/jpg", "application/dicom", "image/dicom", "application/octet-stream", "",
})
_DICOM_TYPES = frozenset({"application/dicom", "image/dicom"})
# JPEG start-of-frame markers (they carry the size); C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class ImageHeader:
    kind: ImageKind
    width: int
    height: int
    frames: int = 1


def sniff(head: bytes, filename: str, content_type: str) -> ImageKind:
    """The file's kind from its first 132 bytes (then a DICOM type or suffix); 415 when it is none."""
    declared = content_type.split(";")[0].strip().lower()
    if declared not in ACCEPTED_TYPES:
        raise ServiceError(415, f"unsupported content type {declared!r} for the upload; send PNG, JPEG or DICOM "
                                "(image/png, image/jpeg, application/dicom)")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if declared in _DICOM_TYPES or Path(filename).suffix.lower() in {".dcm", ".dicom", ".dic"}:
        return "dicom"  # a DICOM without its 128-byte preamble: the reader still takes it
    if not head:
        raise ServiceError(422, f"{filename or 'the upload'}: the uploaded file is empty")
    raise ServiceError(415, f"{filename or 'the upload'} is not a PNG, JPEG or DICOM file "
                            "(no PNG/JPEG signature, no DICM preamble)")


def read_header(path: Path, kind: ImageKind, filename: str, budget: "ImageBudget | None" = None) -> ImageHeader:
    """The image's size from its header only; 422 when the header is cut or malformed, 413 over ``budget``."""
    with path.open("rb") as handle:
        if kind == "png":
            return _png_header(handle, filename)
        if kind == "jpeg":
            return _jpeg_header(handle, filename)
    return _dicom_header(path, filename, budget)


def decode(path: Path, filename: str, header: ImageHeader, budget: "ImageBudget"):
    """Decode a checked upload to ``[1, H, W]`` float32 in ``[0, 1]``; 413/422 naming the client's file."""
    from anatomy_vlm.encoder.io import read_image

    try:
        image = read_image(path, budget=budget).image
    except ImageReadError as error:
        raise _service_error(error, path, filename) from error
    if tuple(image.shape[1:]) != (header.height, header.width):
        raise ServiceError(422, f"{filename}: decoded {tuple(image.shape[1:])} pixels, the header said "
                                f"{(header.height, header.width)}")
    return image


def _service_error(error: ImageReadError, path: Path, filename: str) -> ServiceError:
    # The reader names the temp file; the client knows its file by the name it sent.
    status = 413 if isinstance(error, ImageTooLargeError) else 422
    return ServiceError(status, str(error).replace(str(path), filename))


def check_size(header: ImageHeader, max_side: int, max_pixels: int, filename: str) -> None:
    """413 when a side or the pixel count is over the limit (before anything is decoded)."""
    if header.width < 1 or header.height < 1:
        raise ServiceError(422, f"{filename}: the header gives an empty image ({header.width} x {header.height})")
    side = max(header.width, header.height)
    pixels = header.width * header.height * header.frames
    if side > max_side:
        raise ServiceError(413, f"{filename}: image is {header.width} x {header.height} pixels; "
                                f"the limit is {max_side} pixels per side")
    if pixels > max_pixels:
        raise ServiceError(413, f"{filename}: image has {pixels:,} pixels ({header.width} x {header.height}"
                                f"{f' x {header.frames} frames' if header.frames > 1 else ''}); the limit is {max_pixels:,}")


def _png_header(handle: BinaryIO, filename: str) -> ImageHeader:
    data = handle.read(24)
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ServiceError(422, f"{filename}: PNG is truncated or has no IHDR chunk first")
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader("png", width, height)


def _jpeg_header(handle: BinaryIO, filename: str) -> ImageHeader:
    handle.seek(2)  # after SOI
    while True:
        byte = handle.read(1)
        if not byte:
            break
        if byte != b"\xff":
            continue  # entropy-coded data or padding between segments
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes
            marker = handle.read(1)
        if not marker:
            break
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # standalone markers carry no length
            continue
        if code in (0xD9, 0xDA):  # end of image, or start of scan before any frame header
            break
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            break
        length = struct.unpack(">H", length_bytes)[0]
        if code in _SOF_MARKERS:
            frame = handle.read(5)
            if len(frame) < 5:
                break
            _, height, width = struct.unpack(">BHH", frame)
            return ImageHeader("jpeg", width, height)
        handle.seek(length - 2, 1)
    raise ServiceError(422, f"{filename}: JPEG is truncated or has no frame header (SOFn) before its scan data")


def _dicom_header(path: Path, filename: str, budget: "ImageBudget | None") -> ImageHeader:
    from anatomy_vlm.encoder.io import read_dicom_header

    try:
        module = read_dicom_header(path, budget=budget)
    except ImageReadError as error:
        raise _service_error(error, path, filename) from error
    return ImageHeader("dicom", module.columns, module.rows, module.frames)

"""Read a chest radiograph (DICOM, PNG or JPEG) into the project's one intensity convention.

Every reader returns an :class:`ImageRead` whose ``image`` is a float32 tensor ``[1, H, W]`` with
values in ``[0, 1]``, bright = dense (the MONOCHROME2 display convention: bone and heart bright,
air dark), the convention :class:`anatomy_vlm.datasets.sample.XraySample` checks.

DICOM pipeline (PS3.3 C.11 order, pydicom 3 doing the arithmetic):

1. stored values -> **Modality LUT** (Rescale Slope/Intercept, or a Modality LUT Sequence);
2. -> **VOI** when ``window="auto"`` and the file has one: a VOI LUT Sequence (preferred, as
   pydicom does) or Window Center/Width under its VOI LUT Function (LINEAR, LINEAR_EXACT or
   SIGMOID); the VOI output range (the LUT's bit depth, or pydicom's windowing output range) is
   mapped to ``[0, 1]``;
   otherwise (no VOI in the file, or ``window="none"``) -> **min-max over the stored bit range**:
   the range ``[0, 2**BitsStored - 1]`` (signed: ``[-2**(BitsStored-1), 2**(BitsStored-1) - 1]``)
   pushed through the Modality LUT. We scale 12-bit data by 4095, not by the image's own maximum,
   so one pixel value means one intensity in every image of a scanner and an underexposed image
   stays dark instead of being stretched; an explicit ``window=(center, width)`` applies that
   LINEAR window instead of the file's;
3. -> **MONOCHROME1 inverted** (``1 - x``), after windowing, because the window is defined on the
   stored (MONOCHROME1) values.

Colour DICOMs (RGB; YBR, which pydicom's decoder hands back as RGB) and colour PNG/JPEG are turned
to gray with the ITU-R BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B``: a scanned or exported
radiograph stored as colour has R = G = B, for which Y is exactly that gray; a genuinely coloured
image (annotations burnt in) is flagged in ``meta["converted_from_color"]``. A multi-frame DICOM
is refused unless a ``frame`` is named.

PNG/JPEG: 8-bit gray is scaled by 255, 16-bit gray by 65535, or by ``2**s - 1`` when the PNG's
``sBIT`` chunk says only ``s`` bits are significant (a 12-bit detector saved as 16-bit PNG).
An alpha channel is dropped when it is fully opaque and refused otherwise (a transparent pixel
has no radiographic meaning). PNG/JPEG carry no photometric interpretation: they are taken as
bright = dense, as every public chest X-ray PNG/JPEG release (CheXpert, NIH, VinDr exports) is.

Errors: every failure is an :class:`ImageReadError` whose message names the file and the problem
(truncated pixel data, BitsStored > BitsAllocated, an unsupported BitsAllocated, a compressed
transfer syntax with no installed decoder, not an image at all).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

import numpy as np
import pydicom
import torch
from PIL import Image, ImageFile
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID

from anatomy_vlm.exceptions import ImageReadError

log = logging.getLogger(__name__)

# "auto": the file's VOI (LUT or window) if any, else the stored bit range; "none": always the
# stored bit range; (center, width): this LINEAR window on the Modality LUT output.
Window = Union[Literal["auto", "none"], tuple[float, float]]

# ITU-R BT.601 luma weights for R, G, B.
LUMA_601 = (0.299, 0.587, 0.114)
# BitsAllocated values a radiograph can have here (1-bit overlays and 32-bit float data are not X-rays).
SUPPORTED_BITS_ALLOCATED = (8, 16)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


@dataclass
class ImageRead:
    """One decoded image and what was done to it.

    ``image``: ``[1, H, W]`` float32 in ``[0, 1]``, bright = dense.
    ``meta``: ``path``, ``format`` ("dicom" / "png" / "jpeg"), ``photometric_interpretation``,
    ``bits_stored``, ``original_dtype``, ``original_shape``, ``window`` (a dict saying which
    mapping to [0, 1] was used), ``inverted``, ``converted_from_color`` and, when the file gives
    it, ``pixel_spacing`` ((row, column) mm per pixel; DICOMs say which attribute gave it in
    ``pixel_spacing_source``); DICOMs add ``bits_allocated``,
    ``modality``, ``sop_instance_uid``, ``transfer_syntax``.
    """

    image: torch.Tensor
    meta: dict[str, object] = field(default_factory=dict)


# -- dispatch ----------------------------------------------------------------------------------
def read_image(path: str | Path, *, window: Window = "auto", frame: int | None = None) -> ImageRead:
    """Read a DICOM, PNG or JPEG file, choosing the reader by content (magic bytes), then suffix.

    ``window`` and ``frame`` apply to DICOMs only (see :func:`read_dicom`).
    Returns an :class:`ImageRead` with ``image`` ``[1, H, W]`` float32 in ``[0, 1]``.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot open ({e})") from e
    if len(head) >= 132 and head[128:132] == b"DICM":
        return read_dicom(path, window=window, frame=frame)
    if head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC):
        return read_png_jpeg(path)
    if path.suffix.lower() in _DICOM_SUFFIXES:
        # A DICOM without the 128-byte preamble (old or hand-written files) is still read.
        return read_dicom(path, window=window, frame=frame)
    raise ImageReadError(f"{path}: not a DICOM, PNG or JPEG file (no DICM preamble, no PNG/JPEG signature)")


# -- DICOM -------------------------------------------------------------------------------------
def read_dicom(path: str | Path, *, window: Window = "auto", frame: int | None = None) -> ImageRead:
    """Read a DICOM radiograph: Modality LUT, then VOI (or the stored bit range), then MONOCHROME1 inversion.

    Args:
        path: the DICOM file.
        window: ``"auto"`` (the file's VOI LUT Sequence, else its Window Center/Width, else the
            stored bit range), ``"none"`` (the stored bit range even when the file has a VOI),
            or ``(center, width)``: a DICOM LINEAR window on the Modality LUT output.
        frame: which frame of a multi-frame file to read; a multi-frame file without it is refused.

    Returns:
        :class:`ImageRead`, ``image`` ``[1, Rows, Columns]`` float32 in ``[0, 1]``, bright = dense.
    """
    path = Path(path)
    window = _check_window(path, window)
    try:
        ds = pydicom.dcmread(path, force=path.suffix.lower() in _DICOM_SUFFIXES)
    except InvalidDicomError as e:
        raise ImageReadError(f"{path}: not a DICOM file ({e})") from e
    except Exception as e:  # pydicom raises EOFError, struct.error, ValueError ... on a cut file
        raise ImageReadError(f"{path}: cannot parse the DICOM file, it may be truncated or corrupt "
                             f"({type(e).__name__}: {e})") from e
    if "PixelData" not in ds:
        raise ImageReadError(f"{path}: the DICOM has no Pixel Data (7FE0,0010): not an image, or the file "
                             "is truncated before it")
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PhotometricInterpretation"):
        if keyword not in ds:
            raise ImageReadError(f"{path}: the DICOM lacks {keyword}")

    photometric = str(ds.PhotometricInterpretation).upper()
    bits_allocated, bits_stored = int(ds.BitsAllocated), int(ds.BitsStored)
    samples = int(ds.get("SamplesPerPixel", 1))
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if bits_allocated not in SUPPORTED_BITS_ALLOCATED:
        raise ImageReadError(f"{path}: BitsAllocated {bits_allocated} is not supported "
                             f"(supported: {', '.join(map(str, SUPPORTED_BITS_ALLOCATED))})")
    if not 1 <= bits_stored <= bits_allocated:
        raise ImageReadError(f"{path}: BitsStored {bits_stored} is not in 1..BitsAllocated ({bits_allocated})")
    if n_frames > 1 and frame is None:
        raise ImageReadError(f"{path}: multi-frame DICOM ({n_frames} frames); pass frame=<index> to read one")
    if frame is not None and not 0 <= frame < n_frames:
        raise ImageReadError(f"{path}: frame {frame} out of range (the file has {n_frames} frame(s))")
    is_mono = photometric in ("MONOCHROME1", "MONOCHROME2")
    is_color = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")
    if not (is_mono and samples == 1) and not (is_color and samples == 3):
        raise ImageReadError(f"{path}: photometric interpretation {photometric} with {samples} sample(s) "
                             "per pixel is not a radiograph this reader handles")

    transfer_syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    _check_decodable(path, ds, transfer_syntax, n_frames)
    try:
        stored = ds.pixel_array
    except Exception as e:  # decoders raise ValueError/RuntimeError/NotImplementedError ...
        ts_name = f"{transfer_syntax.name} ({transfer_syntax})" if transfer_syntax else "unknown transfer syntax"
        raise ImageReadError(f"{path}: cannot decode the pixel data ({ts_name}): {type(e).__name__}: {e}") from e
    original_dtype, original_shape = str(stored.dtype), tuple(stored.shape)
    if n_frames > 1:
        stored = stored[frame]

    meta: dict[str, object] = {
        "path": str(path),
        "format": "dicom",
        "photometric_interpretation": photometric,
        "bits_allocated": bits_allocated,
        "bits_stored": bits_stored,
        "original_dtype": original_dtype,
        "original_shape": original_shape,
        "transfer_syntax": str(transfer_syntax) if transfer_syntax else None,
        "modality": str(ds.get("Modality", "")) or None,
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")) or None,
        "inverted": False,
        "converted_from_color": False,
    }
    if frame is not None:
        meta["frame"] = frame
    # Pixel Spacing is calibrated to the patient; Imager Pixel Spacing is at the detector (larger by
    # the geometric magnification). Prefer the first and say which one was used.
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = ds.get(keyword)
        if spacing is not None and len(spacing) == 2:
            meta["pixel_spacing"] = (float(spacing[0]), float(spacing[1]))
            meta["pixel_spacing_source"] = keyword
            break

    if is_color:
        # The decoder returns RGB for YBR data (pydicom's as_rgb default); VOI/windowing is
        # defined for monochrome only, so colour is scaled by its stored bit range.
        rgb = stored.astype(np.float64) / float(2**bits_stored - 1)
        gray = _luma(rgb)
        meta["converted_from_color"] = True
        meta["window"] = {"kind": "bit_range", "low": 0.0, "high": float(2**bits_stored - 1)}
        return ImageRead(image=_to_tensor(path, gray), meta=meta)

    unit = _dicom_to_unit(path, stored, ds, window, meta)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit  # after the window: MONOCHROME1 windows are defined on its own values
        meta["inverted"] = True
    return ImageRead(image=_to_tensor(path, unit), meta=meta)


def _check_window(path: Path, window: Window) -> Window:
    """Validate ``window`` up front; returns it with a tuple's values as floats."""
    if isinstance(window, str):
        if window not in ("auto", "none"):
            raise ValueError(f"{path}: window must be 'auto', 'none' or (center, width), got {window!r}")
        return window
    if len(window) != 2 or not float(window[1]) >= 1:  # DICOM LINEAR needs width >= 1 (PS3.3 C.11.2.1.2.1)
        raise ValueError(f"{path}: window (center, width) needs width >= 1, got {window!r}")
    return (float(window[0]), float(window[1]))


def _check_decodable(path: Path, ds: Dataset, transfer_syntax: UID | None, n_frames: int) -> None:
    """Refuse a compressed transfer syntax with no installed decoder, and short native pixel data."""
    if transfer_syntax is None:
        return
    if transfer_syntax.is_compressed:
        try:
            decoder = get_decoder(transfer_syntax)
        except NotImplementedError as e:
            raise ImageReadError(f"{path}: no pixel data decoder for transfer syntax "
                                 f"{transfer_syntax.name} ({transfer_syntax})") from e
        if not decoder.is_available:
            missing = "; ".join(str(dep) for dep in decoder.missing_dependencies)
            raise ImageReadError(f"{path}: transfer syntax {transfer_syntax.name} ({transfer_syntax}) is "
                                 f"compressed and no installed plugin can decode it (missing: {missing})")
        return
    # Native (uncompressed) data: the exact number of bytes is known, so a cut file is caught here
    # with a clear message rather than as a reshape error deep inside the decoder.
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1))
    # Native YBR_FULL_422 stores chroma for every second pixel: 2 samples per pixel, not 3 (PS3.3 C.7.6.3.1.2).
    stored_samples = 2 if str(ds.PhotometricInterpretation).upper() == "YBR_FULL_422" else samples
    expected = rows * cols * stored_samples * n_frames * int(ds.BitsAllocated) // 8
    got = len(ds.PixelData)
    if got < expected:
        raise ImageReadError(f"{path}: truncated pixel data: {got} bytes, expected {expected} "
                             f"(Rows {rows} x Columns {cols} x {stored_samples} stored sample(s) x "
                             f"{n_frames} frame(s) x BitsAllocated {int(ds.BitsAllocated)}/8)")


def _stored_range_after_modality(ds: Dataset, bits_stored: int) -> tuple[float, float]:
    """The stored bit range pushed through the Modality LUT: ``(low, high)`` of its possible output."""
    if ds.get("ModalityLUTSequence"):
        bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits_stored - 1)
    else:
        low, high = float(-(2 ** (bits_stored - 1))), float(2 ** (bits_stored - 1) - 1)
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    low, high = low * slope + intercept, high * slope + intercept
    return min(low, high), max(low, high)


def _dicom_to_unit(path: Path, stored: np.ndarray, ds: Dataset, window: Window, meta: dict) -> np.ndarray:
    """Monochrome stored values ``[H, W]`` -> float64 ``[H, W]`` in ``[0, 1]`` (before any inversion)."""
    bits_stored = int(ds.BitsStored)
    try:
        values = apply_modality_lut(stored, ds)
    except Exception as e:
        raise ImageReadError(f"{path}: cannot apply the Modality LUT ({type(e).__name__}: {e})") from e

    has_lut = bool(ds.get("VOILUTSequence"))
    has_window = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
    if isinstance(window, tuple):
        center, width = window
        meta["window"] = {"kind": "window", "center": center, "width": width, "function": "LINEAR",
                          "source": "argument"}
        return _linear_window(np.asarray(values, dtype=np.float64), center, width)

    if window == "auto" and has_lut:
        item = ds.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2])
        if np.issubdtype(values.dtype, np.floating) and np.all(np.equal(np.mod(values, 1), 0)):
            values = values.astype(np.int64)  # a VOI LUT indexes integers; rescale may have made floats
        try:
            out = apply_voi_lut(values, ds, prefer_lut=True)
        except Exception as e:
            raise ImageReadError(f"{path}: cannot apply the VOI LUT Sequence ({type(e).__name__}: {e})") from e
        meta["window"] = {"kind": "voi_lut", "lut_bits": bits,
                          "explanation": str(item.get("LUTExplanation", "")) or None}
        return _to_unit(path, out, 0.0, float(2**bits - 1))

    if window == "auto" and has_window:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        center, width = _first_value(ds.WindowCenter), _first_value(ds.WindowWidth)
        try:
            out = apply_voi_lut(values, ds, prefer_lut=True)
        except Exception as e:
            raise ImageReadError(f"{path}: cannot apply the window (center {center}, width {width}, "
                                 f"function {function}): {e}") from e
        # pydicom's windowing output spans the stored range after the Modality LUT (PS3.3 C.11.2.1.2).
        y_min, y_max = _windowing_output_range(ds, bits_stored)
        meta["window"] = {"kind": "window", "center": center, "width": width, "function": function,
                          "source": "file"}
        if y_max == y_min:
            raise ImageReadError(f"{path}: empty windowing output range (RescaleSlope 0?)")
        # Not _to_unit: with a negative slope y_min > y_max, and "below the window" (y_min) must still be 0.
        return np.clip((np.asarray(out, dtype=np.float64) - y_min) / (y_max - y_min), 0.0, 1.0)

    low, high = _stored_range_after_modality(ds, bits_stored)
    meta["window"] = {"kind": "bit_range", "low": low, "high": high}
    return _to_unit(path, np.asarray(values, dtype=np.float64), low, high)


def _windowing_output_range(ds: Dataset, bits_stored: int) -> tuple[float, float]:
    """``(y_min, y_max)`` exactly as ``pydicom.pixels.apply_windowing`` computes them."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        y_min, y_max = 0.0, float(2**bits_stored - 1)
    else:
        y_min, y_max = float(-(2 ** (bits_stored - 1))), float(2 ** (bits_stored - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        y_min, y_max = y_min * float(slope) + float(intercept), y_max * float(slope) + float(intercept)
    return y_min, y_max


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM LINEAR window (PS3.3 C.11.2.1.2.1) straight to ``[0, 1]``; ``values`` any shape."""
    if width < 1:
        raise ValueError(f"a LINEAR window needs width >= 1, got {width}")
    c, w = center - 0.5, width - 1.0
    if w == 0:  # width 1: a hard threshold at the centre
        return (values > c).astype(np.float64)
    return np.clip((values - c) / w + 0.5, 0.0, 1.0)


def _first_value(value: object) -> float:
    """Window Center/Width may be multi-valued (alternative views); the first is the default view."""
    if isinstance(value, (list, tuple, MultiValue)):
        return float(value[0])
    return float(value)  # type: ignore[arg-type]


def _to_unit(path: Path, values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` to ``[0, 1]``; values outside (high bits set beyond BitsStored) are clipped, logged."""
    if high == low:
        raise ImageReadError(f"{path}: empty intensity range [{low}, {high}]")
    if high < low:  # a negative rescale slope / decreasing LUT range
        low, high = high, low
    unit = (np.asarray(values, dtype=np.float64) - low) / (high - low)
    outside = int(np.count_nonzero((unit < 0.0) | (unit > 1.0)))
    if outside:
        log.warning("%s: %d pixel(s) outside the declared range [%g, %g] were clipped", path, outside, low, high)
    return np.clip(unit, 0.0, 1.0)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` RGB -> ``[H, W]`` ITU-R BT.601 luma (same scale as the input)."""
    r, g, b = LUMA_601
    return r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]


def _to_tensor(path: Path, unit: np.ndarray) -> torch.Tensor:
    """``[H, W]`` float in ``[0, 1]`` -> ``[1, H, W]`` float32, clamped against float rounding."""
    if unit.ndim != 2:
        raise ImageReadError(f"{path}: expected a 2-D image after decoding, got shape {unit.shape}")
    return torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32)).clamp_(0.0, 1.0).unsqueeze(0)


# -- PNG / JPEG --------------------------------------------------------------------------------
def read_png_jpeg(path: str | Path) -> ImageRead:
    """Read a PNG or JPEG radiograph (taken as bright = dense).

    8-bit gray / 1-bit: scaled by 255 (1); 16-bit gray PNG: by 65535, or ``2**s - 1`` with an sBIT
    chunk of ``s`` bits; RGB / palette: BT.601 luma; alpha: dropped if fully opaque, else refused.
    Returns :class:`ImageRead`, ``image`` ``[1, H, W]`` float32 in ``[0, 1]``.
    """
    path = Path(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone set Pillow's global flag: a cut file would then decode silently as a grey stripe.
        log.warning("%s: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated JPEGs are not detected", path)
    try:
        with Image.open(path) as probe:
            fmt = probe.format
            if fmt == "PNG":
                probe.verify()  # walks every chunk and checks its CRC: catches cut and corrupt PNGs
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            arr = np.asarray(img) if mode not in ("P", "PA", "1") else None
            if mode == "1":
                arr = np.asarray(img.convert("L"))
            elif mode in ("P", "PA"):
                arr = np.asarray(img.convert("RGBA"))
    except ImageReadError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, struct.error ...
        raise ImageReadError(f"{path}: cannot read the image, it may be truncated or corrupt "
                             f"({type(e).__name__}: {e})") from e
    if fmt not in ("PNG", "JPEG"):
        raise ImageReadError(f"{path}: format {fmt} is not supported (PNG or JPEG only)")

    meta: dict[str, object] = {
        "path": str(path),
        "format": fmt.lower(),
        "photometric_interpretation": "MONOCHROME2",  # assumed: PNG/JPEG carry none
        "original_dtype": str(arr.dtype),
        "original_shape": tuple(arr.shape),
        "pil_mode": mode,
        "inverted": False,
        "converted_from_color": False,
    }
    width, height = size

    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit gray PNG (Pillow >= 10 gives "I;16"; older versions "I" holding 16-bit values).
        if fmt != "PNG":
            raise ImageReadError(f"{path}: {mode} data in a {fmt} file is not supported")
        sbit = _png_sbit(path) if fmt == "PNG" else None
        bits = sbit if sbit is not None and 1 <= sbit <= 16 else 16
        if mode == "I" and arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise ImageReadError(f"{path}: 32-bit integer image with values outside 16 bits is not supported")
        high = float(2**bits - 1)
        meta.update(bits_stored=bits, window={"kind": "bit_range", "low": 0.0, "high": high,
                                              "source": "sBIT" if sbit is not None else "bit depth"})
        return ImageRead(image=_to_tensor(path, _to_unit(path, arr.astype(np.float64), 0.0, high)), meta=meta)

    if mode in ("L", "LA", "RGB", "RGBA", "P", "PA", "1"):
        arr = arr.astype(np.float64)
        if mode in ("LA", "RGBA", "P", "PA"):
            alpha = arr[..., -1]
            if np.any(alpha < 255):
                raise ImageReadError(f"{path}: the image has a non-opaque alpha channel "
                                     f"({int(np.count_nonzero(alpha < 255))} pixel(s)); refusing to guess "
                                     "what a transparent pixel means")
            arr = arr[..., :-1]
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim == 3:
            arr = _luma(arr)
            meta["converted_from_color"] = True
        meta.update(bits_stored=8, window={"kind": "bit_range", "low": 0.0, "high": 255.0})
        image = _to_tensor(path, _to_unit(path, arr, 0.0, 255.0))
        if tuple(image.shape[1:]) != (height, width):
            raise ImageReadError(f"{path}: decoded shape {tuple(image.shape)} does not match {(height, width)}")
        return ImageRead(image=image, meta=meta)

    raise ImageReadError(f"{path}: Pillow mode {mode!r} ({fmt}) is not supported "
                         "(8/16-bit gray, RGB, or opaque RGBA/LA/palette)")


def _png_sbit(path: Path) -> int | None:
    """The gray significant-bits value of a PNG's ``sBIT`` chunk, or None (chunks before IDAT only)."""
    with path.open("rb") as handle:
        if handle.read(8) != _PNG_MAGIC:
            return None
        color_type = None
        while True:
            header = handle.read(8)
            if len(header) < 8:
                return None
            length, kind = struct.unpack(">I4s", header)
            data = handle.read(length)
            handle.read(4)  # CRC (checked by Pillow's verify)
            if kind == b"IHDR" and len(data) >= 10:
                color_type = data[9]
            elif kind == b"sBIT" and data and color_type in (0, 4):  # gray / gray+alpha: first byte is gray
                return int(data[0])
            elif kind in (b"IDAT", b"IEND"):
                return None

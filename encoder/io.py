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
transfer syntax with no installed decoder, not an image at all). A DICOM's header is checked tag by
tag before its pixels are touched (a multi-valued, empty or non-numeric attribute, an unknown VR or
transfer syntax: the message names the tag); a JPEG whose coded data is shorter than its frame is
refused rather than decoded as libjpeg's grey fill.

Budget: ``read_image(path, budget=ImageBudget(max_pixels, max_bytes))`` refuses, from the header and
before anything is allocated, an image larger than the budget (:class:`ImageTooLargeError`), and a
deflated DICOM that inflates past it (checked as a stream). Without a budget nothing is limited.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

import numpy as np
import pydicom
import torch
from PIL import Image, ImageFile
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import (UID, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian)

from anatomy_vlm.exceptions import ImageReadError, ImageTooLargeError

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
_COLOR_PHOTOMETRIC = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")
# Uncompressed transfer syntaxes pydicom decodes itself; compressed ones need an installed decoder.
_NATIVE_TRANSFER_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                             DeflatedExplicitVRLittleEndian)
# What a deflated data set may hold besides its pixels (the header elements) within a budget.
_DEFLATE_HEADER_ALLOWANCE = 1 << 20
_PIXEL_DATA_TAG = 0x7FE00010


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


# -- budget ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageBudget:
    """The most one image may cost to decode, checked from its header before any pixel is allocated.

    A 130 KB PNG or a 66 KB deflated DICOM can declare 8192 x 8192 16-bit pixels and cost gigabytes
    once decoded, so the readers compare the header's promise with this budget first.

    ``max_pixels``: width x height x frames. ``max_bytes``: the decoded stored array, width x height x
    frames x samples per pixel x bytes per sample (None: two bytes per pixel, a 16-bit gray image);
    it also caps what a deflated DICOM data set may inflate to.
    """

    max_pixels: int
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or (self.max_bytes is not None and self.max_bytes < 1):
            raise ValueError(f"an image budget needs positive limits, got {self}")

    @property
    def byte_limit(self) -> int:
        return self.max_bytes if self.max_bytes is not None else 2 * self.max_pixels

    def check(self, path: Path, *, width: int, height: int, frames: int = 1, samples: int = 1,
              bytes_per_sample: int = 1) -> None:
        """Raise :class:`ImageTooLargeError` when the declared image is over the budget."""
        pixels = width * height * frames
        size = f"{width} x {height}" + (f" x {frames} frames" if frames > 1 else "")
        if pixels > self.max_pixels:
            raise ImageTooLargeError(f"{path}: the header declares {pixels:,} pixels ({size}); the budget is "
                                     f"{self.max_pixels:,} pixels")
        decoded = pixels * samples * bytes_per_sample
        if decoded > self.byte_limit:
            raise ImageTooLargeError(f"{path}: the header declares {decoded:,} bytes of decoded pixels ({size}, "
                                     f"{samples} sample(s) of {bytes_per_sample} byte(s)); the budget is "
                                     f"{self.byte_limit:,} bytes")


# -- dispatch ----------------------------------------------------------------------------------
def read_image(path: str | Path, *, window: Window = "auto", frame: int | None = None,
               budget: ImageBudget | None = None) -> ImageRead:
    """Read a DICOM, PNG or JPEG file, choosing the reader by content (magic bytes), then suffix.

    ``window`` and ``frame`` apply to DICOMs only (see :func:`read_dicom`); ``budget`` (none by
    default) refuses, from the header, an image that would cost more to decode.
    Returns an :class:`ImageRead` with ``image`` ``[1, H, W]`` float32 in ``[0, 1]``.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot open ({e})") from e
    if len(head) >= 132 and head[128:132] == b"DICM":
        return read_dicom(path, window=window, frame=frame, budget=budget)
    if head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC):
        return read_png_jpeg(path, budget=budget)
    if path.suffix.lower() in _DICOM_SUFFIXES:
        # A DICOM without the 128-byte preamble (old or hand-written files) is still read.
        return read_dicom(path, window=window, frame=frame, budget=budget)
    raise ImageReadError(f"{path}: not a DICOM, PNG or JPEG file (no DICM preamble, no PNG/JPEG signature)")


# -- DICOM header --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DicomPixelModule:
    """The Image Pixel module attributes the reader relies on, each checked (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    transfer_syntax: UID | None

    @property
    def is_color(self) -> bool:
        return self.photometric in _COLOR_PHOTOMETRIC


def read_dicom_header(path: str | Path, *, budget: ImageBudget | None = None) -> DicomPixelModule:
    """The checked pixel module of a DICOM, read without its pixel data (and, if deflated, within ``budget``)."""
    path = Path(path)
    ds = _open_dicom(path, budget, stop_before_pixels=True)
    return _guarded(path, lambda: _pixel_module(path, ds, header_only=True))


def _open_dicom(path: Path, budget: ImageBudget | None, *, stop_before_pixels: bool) -> Dataset:
    """Parse the file meta first: refuse a transfer syntax nothing here decodes, and a deflated data
    set that inflates past the budget (pydicom inflates it whole in memory), before the data set."""
    force = path.suffix.lower() in _DICOM_SUFFIXES
    try:
        with path.open("rb") as handle:
            read_preamble(handle, force)
            file_meta = _read_file_meta_info(handle)
            data_start = handle.tell()
    except InvalidDicomError as e:
        raise ImageReadError(f"{path}: not a DICOM file ({e})") from e
    except MemoryError:
        raise
    except Exception as e:  # EOFError, struct.error, ValueError, NotImplementedError (unknown VR) ...
        raise ImageReadError(f"{path}: cannot parse the DICOM file meta information, it may be truncated or "
                             f"corrupt ({type(e).__name__}: {e})") from e
    transfer_syntax = _guarded(path, lambda: _checked_transfer_syntax(path, file_meta))
    deflated = transfer_syntax is not None and transfer_syntax.is_deflated
    if deflated and budget is not None:
        _check_inflated_size(path, data_start, budget.byte_limit + _DEFLATE_HEADER_ALLOWANCE)
    try:
        if deflated and stop_before_pixels:
            # pydicom would inflate the whole data set for its header: inflate only the start of it.
            prefix = DicomBytesIO(_inflated_prefix(path, data_start, _DEFLATE_HEADER_ALLOWANCE))
            ds = read_dataset(prefix, is_implicit_VR=False, is_little_endian=True,
                              stop_when=lambda tag, vr, length: tag >= _PIXEL_DATA_TAG)
            ds.file_meta = file_meta
            return ds
        return pydicom.dcmread(path, force=force, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as e:
        raise ImageReadError(f"{path}: not a DICOM file ({e})") from e
    except MemoryError:
        raise
    except Exception as e:  # pydicom raises EOFError, struct.error, ValueError, zlib.error ... on a cut file
        raise ImageReadError(f"{path}: cannot parse the DICOM file, it may be truncated or corrupt "
                             f"({type(e).__name__}: {e})") from e


def _checked_transfer_syntax(path: Path, file_meta: Dataset) -> UID | None:
    """The file's Transfer Syntax UID if this reader can decode it; None when the file names none."""
    value = _value(path, file_meta, "TransferSyntaxUID")
    if value is None:
        return None  # no file meta: pydicom guesses the encoding, and the pixel data is native
    if isinstance(value, (MultiValue, list, tuple)):
        raise ImageReadError(f"{path}: TransferSyntaxUID has {len(value)} values, expected one UID")
    uid = UID(str(value).strip())
    if uid in _NATIVE_TRANSFER_SYNTAXES:
        return uid
    if not uid.is_transfer_syntax or uid.is_private:
        raise ImageReadError(f"{path}: TransferSyntaxUID {str(uid)!r} is not a transfer syntax this reader can "
                             f"decode (native: {', '.join(str(t) for t in _NATIVE_TRANSFER_SYNTAXES)}; or a "
                             "compressed one with an installed decoder)")
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as e:
        raise ImageReadError(f"{path}: no pixel data decoder for transfer syntax {uid.name} ({uid})") from e
    if not decoder.is_available:
        missing = "; ".join(str(dep) for dep in decoder.missing_dependencies)
        raise ImageReadError(f"{path}: transfer syntax {uid.name} ({uid}) is compressed and no installed plugin "
                             f"can decode it (missing: {missing})")
    return uid


def _check_inflated_size(path: Path, offset: int, limit: int) -> None:
    """Stream-inflate a deflated data set, keeping no output, and refuse it past ``limit`` bytes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        while not inflater.eof and (chunk := handle.read(1 << 16)):
            while chunk:
                try:
                    total += len(inflater.decompress(chunk, 1 << 20))  # at most 1 MiB held at a time
                except zlib.error as e:
                    raise ImageReadError(f"{path}: the deflated data set is corrupt (zlib: {e})") from e
                if total > limit:
                    raise ImageTooLargeError(f"{path}: the deflated data set inflates to more than {limit:,} bytes, "
                                             "over the image budget (a decompression bomb?)")
                chunk = inflater.unconsumed_tail


def _inflated_prefix(path: Path, offset: int, size: int) -> bytes:
    """The first ``size`` bytes (or fewer) of the deflated data set starting at ``offset``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    with path.open("rb") as handle:
        handle.seek(offset)
        while len(out) < size and not inflater.eof and (chunk := handle.read(1 << 16)):
            while chunk and len(out) < size:
                out += inflater.decompress(chunk, size - len(out))
                chunk = inflater.unconsumed_tail
    return bytes(out)


def _pixel_module(path: Path, ds: Dataset, *, header_only: bool = False) -> DicomPixelModule:
    """Check every Image Pixel module attribute the decoder uses; each problem names its tag.

    ``header_only``: ``ds`` was read without its pixel data (so its absence is not an error)."""
    if not header_only and "PixelData" not in ds:
        raise ImageReadError(f"{path}: the DICOM has no Pixel Data (7FE0,0010): not an image, or the file "
                             "is truncated before it")
    rows = _int(path, ds, "Rows", low=1, high=65535)
    columns = _int(path, ds, "Columns", low=1, high=65535)
    bits_allocated = _int(path, ds, "BitsAllocated")
    if bits_allocated not in SUPPORTED_BITS_ALLOCATED:
        raise ImageReadError(f"{path}: BitsAllocated {bits_allocated} is not supported "
                             f"(supported: {', '.join(map(str, SUPPORTED_BITS_ALLOCATED))})")
    bits_stored = _int(path, ds, "BitsStored")
    if not 1 <= bits_stored <= bits_allocated:
        raise ImageReadError(f"{path}: BitsStored {bits_stored} is not in 1..BitsAllocated ({bits_allocated})")
    # High Bit is BitsStored - 1 in every current IOD; older files may align the data higher in the word.
    _int(path, ds, "HighBit", default=bits_stored - 1, low=bits_stored - 1, high=bits_allocated - 1)
    pixel_representation = _int(path, ds, "PixelRepresentation", default=0, low=0, high=1)
    samples = _int(path, ds, "SamplesPerPixel", default=1, low=1, high=3)
    frames = _int(path, ds, "NumberOfFrames", default=1, low=1)
    photometric = _text(path, ds, "PhotometricInterpretation").upper()
    if not photometric:
        raise ImageReadError(f"{path}: the DICOM lacks PhotometricInterpretation")
    is_mono = photometric in ("MONOCHROME1", "MONOCHROME2")
    if not (is_mono and samples == 1) and not (photometric in _COLOR_PHOTOMETRIC and samples == 3):
        raise ImageReadError(f"{path}: photometric interpretation {photometric} with {samples} sample(s) "
                             "per pixel is not a radiograph this reader handles")
    if samples == 3:
        _int(path, ds, "PlanarConfiguration", default=0, low=0, high=1)
    file_meta = getattr(ds, "file_meta", None)
    transfer_syntax = _checked_transfer_syntax(path, file_meta) if file_meta is not None else None
    return DicomPixelModule(rows=rows, columns=columns, frames=frames, samples=samples,
                            bits_allocated=bits_allocated, bits_stored=bits_stored,
                            pixel_representation=pixel_representation, photometric=photometric,
                            transfer_syntax=transfer_syntax)


def _check_intensity_attributes(path: Path, ds: Dataset) -> None:
    """The attributes that map stored values to intensities: numbers where numbers are due, before any pixel."""
    slope = _number(path, ds, "RescaleSlope")
    _number(path, ds, "RescaleIntercept")
    if slope == 0:
        raise ImageReadError(f"{path}: RescaleSlope is 0: every pixel would have the same value")
    function = _text(path, ds, "VOILUTFunction").upper() or "LINEAR"
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        raise ImageReadError(f"{path}: VOILUTFunction is {function!r}, not LINEAR, LINEAR_EXACT or SIGMOID")
    centers = _numbers(path, ds, "WindowCenter")
    widths = _numbers(path, ds, "WindowWidth")
    if centers and widths:
        # pydicom's windowing (PS3.3 C.11.2.1.2) needs LINEAR width >= 1, the others width > 0.
        if (function == "LINEAR" and widths[0] < 1) or widths[0] <= 0:
            raise ImageReadError(f"{path}: WindowWidth {widths[0]:g} is not valid for a {function} window "
                                 f"(LINEAR needs >= 1, the others > 0)")
    for sequence in ("ModalityLUTSequence", "VOILUTSequence"):
        items = _value(path, ds, sequence)
        if not items:
            continue
        descriptor = _value(path, items[0], "LUTDescriptor")
        values = list(descriptor) if isinstance(descriptor, (MultiValue, list, tuple)) else [descriptor]
        if len(values) != 3 or not all(isinstance(v, (int, np.integer)) for v in values):
            raise ImageReadError(f"{path}: {sequence}[0].LUTDescriptor is {descriptor!r}, not three integers")
        if not 1 <= int(values[2]) <= 16:
            raise ImageReadError(f"{path}: {sequence}[0].LUTDescriptor gives {values[2]} bits per entry, not 1..16")
        if _value(path, items[0], "LUTData") is None:
            raise ImageReadError(f"{path}: {sequence}[0] has no LUTData")


def _value(path: Path, ds: Dataset, keyword: str) -> object:
    """``ds.get(keyword)``, with pydicom's lazy conversion errors (an unknown VR, bad bytes) naming the tag."""
    try:
        value = ds.get(keyword)
    except MemoryError:
        raise
    except Exception as e:
        raise ImageReadError(f"{path}: {keyword} cannot be read ({type(e).__name__}: {e})") from e
    return None if value is None or value == "" else value


def _int(path: Path, ds: Dataset, keyword: str, *, default: int | None = None, low: int | None = None,
         high: int | None = None) -> int:
    """One integer attribute within ``[low, high]``; a missing one is ``default`` (or refused)."""
    value = _value(path, ds, keyword)
    if value is None:
        _refuse_if_empty(path, ds, keyword)
        if default is None:
            raise ImageReadError(f"{path}: the DICOM lacks {keyword}")
        return default
    if isinstance(value, (MultiValue, list, tuple)):
        raise ImageReadError(f"{path}: {keyword} has {len(value)} values ({_short(value)}), expected one integer")
    number: int | None = None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, (str, float)):
        try:
            as_float = float(value)
        except ValueError:
            as_float = math.nan
        if math.isfinite(as_float) and as_float == int(as_float):
            number = int(as_float)
    if number is None:
        raise ImageReadError(f"{path}: {keyword} is {_short(value)}, not an integer")
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise ImageReadError(f"{path}: {keyword} is {number}, not in {bounds}")
    return number


def _numbers(path: Path, ds: Dataset, keyword: str) -> list[float]:
    """A numeric (possibly multi-valued) attribute as finite floats; [] when absent."""
    value = _value(path, ds, keyword)
    if value is None:
        return []
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    numbers = []
    for item in values:
        try:
            number = float(item)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ImageReadError(f"{path}: {keyword} is {_short(value)}, not a finite number")
        numbers.append(number)
    return numbers


def _number(path: Path, ds: Dataset, keyword: str) -> float | None:
    """A single-valued numeric attribute, or None when absent."""
    numbers = _numbers(path, ds, keyword)
    if not numbers:
        _refuse_if_empty(path, ds, keyword)
    if len(numbers) > 1:
        raise ImageReadError(f"{path}: {keyword} has {len(numbers)} values, expected one number")
    return numbers[0] if numbers else None


def _refuse_if_empty(path: Path, ds: Dataset, keyword: str) -> None:
    """An attribute that is present with no value: pydicom's LUT and decoder code would take it as None."""
    if keyword in ds:
        raise ImageReadError(f"{path}: {keyword} is present but empty")


def _text(path: Path, ds: Dataset, keyword: str) -> str:
    """A single-valued text attribute ("" when absent)."""
    value = _value(path, ds, keyword)
    if value is None:
        return ""
    if isinstance(value, (MultiValue, list, tuple)):
        raise ImageReadError(f"{path}: {keyword} has {len(value)} values ({_short(value)}), expected one")
    if isinstance(value, bytes):
        raise ImageReadError(f"{path}: {keyword} is undecoded bytes {_short(value)}, not text")
    return str(value).strip()


def _short(value: object, limit: int = 60) -> str:
    text = repr(list(value) if isinstance(value, MultiValue) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _guarded(path: Path, read):
    """Run ``read``; anything pydicom raises while converting a malformed element becomes an ImageReadError."""
    try:
        return read()
    except (ImageReadError, MemoryError):
        raise
    except Exception as e:
        raise ImageReadError(f"{path}: malformed DICOM ({type(e).__name__}: {e})") from e


# -- DICOM -------------------------------------------------------------------------------------
def read_dicom(path: str | Path, *, window: Window = "auto", frame: int | None = None,
               budget: ImageBudget | None = None) -> ImageRead:
    """Read a DICOM radiograph: Modality LUT, then VOI (or the stored bit range), then MONOCHROME1 inversion.

    Args:
        path: the DICOM file.
        window: ``"auto"`` (the file's VOI LUT Sequence, else its Window Center/Width, else the
            stored bit range), ``"none"`` (the stored bit range even when the file has a VOI),
            or ``(center, width)``: a DICOM LINEAR window on the Modality LUT output.
        frame: which frame of a multi-frame file to read; a multi-frame file without it is refused.
        budget: refuse, before decoding, an image (or a deflated data set) larger than this.

    Every header problem (a missing, multi-valued or non-numeric Rows, BitsStored, Window Width ...,
    an unknown transfer syntax, an unknown VR) is an :class:`ImageReadError` naming the file and
    the tag, raised before the pixel data is touched.

    Returns:
        :class:`ImageRead`, ``image`` ``[1, Rows, Columns]`` float32 in ``[0, 1]``, bright = dense.
    """
    path = Path(path)
    window = _check_window(path, window)
    ds = _open_dicom(path, budget, stop_before_pixels=False)
    # pydicom converts elements lazily: a malformed value anywhere surfaces on first access.
    return _guarded(path, lambda: _read_dicom_dataset(path, ds, window, frame, budget))


def _read_dicom_dataset(path: Path, ds: Dataset, window: Window, frame: int | None,
                        budget: ImageBudget | None) -> ImageRead:
    module = _pixel_module(path, ds)
    _check_intensity_attributes(path, ds)
    n_frames, transfer_syntax = module.frames, module.transfer_syntax
    if n_frames > 1 and frame is None:
        raise ImageReadError(f"{path}: multi-frame DICOM ({n_frames} frames); pass frame=<index> to read one")
    if frame is not None and not 0 <= frame < n_frames:
        raise ImageReadError(f"{path}: frame {frame} out of range (the file has {n_frames} frame(s))")
    if budget is not None:
        budget.check(path, width=module.columns, height=module.rows, frames=n_frames, samples=module.samples,
                     bytes_per_sample=module.bits_allocated // 8)
    _check_native_length(path, ds, module)
    try:
        stored = ds.pixel_array
    except MemoryError:
        raise
    except Exception as e:  # decoders raise ValueError/RuntimeError/NotImplementedError ...
        ts_name = f"{transfer_syntax.name} ({transfer_syntax})" if transfer_syntax else "unknown transfer syntax"
        raise ImageReadError(f"{path}: cannot decode the pixel data ({ts_name}): {type(e).__name__}: {e}") from e
    original_dtype, original_shape = str(stored.dtype), tuple(stored.shape)
    if n_frames > 1:
        stored = stored[frame]
    expected_shape = (module.rows, module.columns) + ((3,) if module.samples == 3 else ())
    if tuple(stored.shape) != expected_shape:  # a compressed stream may hold another size than the header says
        raise ImageReadError(f"{path}: decoded pixel data has shape {tuple(stored.shape)}, the header says "
                             f"{expected_shape} (Rows, Columns, SamplesPerPixel)")
    photometric, bits_allocated, bits_stored = module.photometric, module.bits_allocated, module.bits_stored

    meta: dict[str, object] = {
        "path": str(path),
        "format": "dicom",
        "photometric_interpretation": photometric,
        "bits_allocated": bits_allocated,
        "bits_stored": bits_stored,
        "original_dtype": original_dtype,
        "original_shape": original_shape,
        "transfer_syntax": str(transfer_syntax) if transfer_syntax else None,
        "modality": _text(path, ds, "Modality") or None,
        "sop_instance_uid": _text(path, ds, "SOPInstanceUID") or None,
        "inverted": False,
        "converted_from_color": False,
    }
    if frame is not None:
        meta["frame"] = frame
    # Pixel Spacing is calibrated to the patient; Imager Pixel Spacing is at the detector (larger by
    # the geometric magnification). Prefer the first and say which one was used.
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = _numbers(path, ds, keyword)
        if len(spacing) == 2:
            meta["pixel_spacing"] = (spacing[0], spacing[1])
            meta["pixel_spacing_source"] = keyword
            break

    if module.is_color:
        # The decoder returns RGB for YBR data (pydicom's as_rgb default); VOI/windowing is
        # defined for monochrome only, so colour is scaled by its stored bit range.
        gray = _luma(stored) / float(2**bits_stored - 1)
        meta["converted_from_color"] = True
        meta["window"] = {"kind": "bit_range", "low": 0.0, "high": float(2**bits_stored - 1)}
        return ImageRead(image=_to_tensor(path, gray), meta=meta)

    unit = _dicom_to_unit(path, stored, ds, window, meta)
    if photometric == "MONOCHROME1":
        unit = np.subtract(1.0, unit, out=unit)  # after the window: MONOCHROME1 windows are defined on its own values
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


def _check_native_length(path: Path, ds: Dataset, module: DicomPixelModule) -> None:
    """Refuse short native pixel data (compressed syntaxes were checked against their decoders already)."""
    transfer_syntax = module.transfer_syntax
    if transfer_syntax is None or transfer_syntax.is_compressed:
        return
    # Native (uncompressed) data: the exact number of bytes is known, so a cut file is caught here
    # with a clear message rather than as a reshape error deep inside the decoder.
    # Native YBR_FULL_422 stores chroma for every second pixel: 2 samples per pixel, not 3 (PS3.3 C.7.6.3.1.2).
    stored_samples = 2 if module.photometric == "YBR_FULL_422" else module.samples
    expected = module.rows * module.columns * stored_samples * module.frames * module.bits_allocated // 8
    pixel_data = _value(path, ds, "PixelData")
    if not isinstance(pixel_data, (bytes, bytearray)):
        raise ImageReadError(f"{path}: PixelData is {type(pixel_data).__name__}, not bytes")
    got = len(pixel_data)
    if got < expected:
        raise ImageReadError(f"{path}: truncated pixel data: {got} bytes, expected {expected} "
                             f"(Rows {module.rows} x Columns {module.columns} x {stored_samples} stored sample(s) x "
                             f"{module.frames} frame(s) x BitsAllocated {module.bits_allocated}/8)")


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
        # In place on the window's own output (a new array): no extra float64 copies of a large image.
        unit = np.asarray(out, dtype=np.float64)
        if np.may_share_memory(unit, stored):  # never write into the decoded pixel data
            unit = unit.copy()
        unit -= y_min
        unit /= y_max - y_min
        return np.clip(unit, 0.0, 1.0, out=unit)

    low, high = _stored_range_after_modality(ds, bits_stored)
    meta["window"] = {"kind": "bit_range", "low": low, "high": high}
    return _to_unit(path, values, low, high)


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
    # One float64 working copy, changed in place: a 25-megapixel image costs 200 MB here, not 600.
    unit = np.subtract(values, low, dtype=np.float64)
    unit /= high - low
    outside = int(np.count_nonzero(unit < 0.0)) + int(np.count_nonzero(unit > 1.0))
    if outside:
        log.warning("%s: %d pixel(s) outside the declared range [%g, %g] were clipped", path, outside, low, high)
    return np.clip(unit, 0.0, 1.0, out=unit)


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
# (samples, bytes per sample) of the array a Pillow mode decodes to (palette images become RGBA).
_PIL_SAMPLES = {"1": (1, 1), "L": (1, 1), "P": (4, 1), "PA": (4, 1), "LA": (2, 1), "RGB": (3, 1), "RGBA": (4, 1),
                "CMYK": (4, 1), "YCbCr": (3, 1), "I;16": (1, 2), "I;16B": (1, 2), "I;16L": (1, 2), "I": (1, 4),
                "F": (1, 4)}


def read_png_jpeg(path: str | Path, *, budget: ImageBudget | None = None) -> ImageRead:
    """Read a PNG or JPEG radiograph (taken as bright = dense).

    8-bit gray / 1-bit: scaled by 255 (1); 16-bit gray PNG: by 65535, or ``2**s - 1`` with an sBIT
    chunk of ``s`` bits; RGB / palette: BT.601 luma; alpha: dropped if fully opaque, else refused.
    ``budget`` is checked against the header's size before any pixel is decoded. A JPEG whose scan
    data is too short for the frame its header declares is refused (libjpeg would fill the rest
    with grey and only warn).
    Returns :class:`ImageRead`, ``image`` ``[1, H, W]`` float32 in ``[0, 1]``.
    """
    path = Path(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone set Pillow's global flag: a cut file would then decode silently as a grey stripe.
        log.warning("%s: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated JPEGs are not detected", path)
    try:
        with Image.open(path) as probe:  # lazy: reads the header only
            fmt, mode, size = probe.format, probe.mode, probe.size
            if fmt not in ("PNG", "JPEG"):
                raise ImageReadError(f"{path}: format {fmt} is not supported (PNG or JPEG only)")
            if budget is not None:
                samples, bytes_per_sample = _PIL_SAMPLES.get(mode, (4, 4))
                budget.check(path, width=size[0], height=size[1], samples=samples, bytes_per_sample=bytes_per_sample)
            if fmt == "PNG":
                probe.verify()  # walks every chunk and checks its CRC: catches cut and corrupt PNGs
        if fmt == "JPEG":
            _check_jpeg_scan_data(path)
        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img) if mode not in ("P", "PA", "1") else None
            if mode == "1":
                arr = np.asarray(img.convert("L"))
            elif mode in ("P", "PA"):
                arr = np.asarray(img.convert("RGBA"))
        if fmt == "JPEG":
            _check_jpeg_complete(path, arr)
    except ImageReadError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, struct.error ...
        raise ImageReadError(f"{path}: cannot read the image, it may be truncated or corrupt "
                             f"({type(e).__name__}: {e})") from e

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
        return ImageRead(image=_to_tensor(path, _to_unit(path, arr, 0.0, high)), meta=meta)

    if mode in ("L", "LA", "RGB", "RGBA", "P", "PA", "1"):
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


# JPEG frame types: baseline/extended sequential Huffman, progressive Huffman (lossless and
# arithmetic-coded frames get no checks below: Pillow refuses the first, the second is rare).
_SEQUENTIAL_SOF = (0xC0, 0xC1)
_PROGRESSIVE_SOF = (0xC2,)
_ANY_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Bytes put before a JPEG's end marker to see whether the decoder still wanted coded data (no 0xFF in them).
_JPEG_PROBE = bytes((37 * i + 11) % 255 for i in range(512))


@dataclass
class _JpegFrame:
    sof: int
    height: int
    width: int
    components: dict[int, tuple[int, int]]  # component id -> (h, v) sampling factors


@dataclass
class _JpegScan:
    header: bytes  # the SOS segment: Ns, (component, tables) pairs, Ss, Se, Ah/Al
    start: int  # entropy-coded data: data[start:end]
    end: int
    coded: int  # its bytes less stuffed zeros and restart markers
    huffman: dict[tuple[int, int], tuple[bytes, bytes]]  # (class, id) -> (16 counts, symbols) in force
    restart_interval: int


def _jpeg_structure(data: bytes) -> tuple[_JpegFrame | None, list[_JpegScan]]:
    """The frame header and the scans of a JPEG, read marker by marker (nothing is decoded)."""
    frame: _JpegFrame | None = None
    scans: list[_JpegScan] = []
    huffman: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    restart_interval, pos = 0, 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break  # not at a marker: a malformed stream Pillow reports on its own
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xD9:
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos + 4:pos + 2 + length]
        pos += 2 + length
        if marker in _ANY_SOF and len(segment) >= 6:
            n = segment[5]
            frame = _JpegFrame(marker, int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big"),
                               {segment[6 + 3 * i]: (segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 15)
                                for i in range(n) if 8 + 3 * i <= len(segment)})
        elif marker == 0xC4:
            offset = 0
            while offset + 17 <= len(segment):
                counts = segment[offset + 1:offset + 17]
                huffman[(segment[offset] >> 4, segment[offset] & 15)] = (
                    counts, segment[offset + 17:offset + 17 + sum(counts)])
                offset += 17 + sum(counts)
        elif marker == 0xDD and len(segment) >= 2:
            restart_interval = int.from_bytes(segment[:2], "big")
        elif marker == 0xDA:
            end, coded = _scan_extent(data, pos)
            scans.append(_JpegScan(segment, pos, end, coded, dict(huffman), restart_interval))
            pos = end
    return frame, scans


def _scan_extent(data: bytes, start: int) -> tuple[int, int]:
    """``(end, coded bytes)`` of the entropy-coded data from ``start``: up to the next marker, not
    counting stuffed zero bytes and restart markers."""
    pos, skipped = start, 0
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            end = len(data)
            break
        following = data[pos + 1]
        if following == 0x00:
            skipped += 1
            pos += 2
        elif 0xD0 <= following <= 0xD7:
            skipped += 2
            pos += 2
        elif following == 0xFF:  # fill bytes before a marker
            skipped += 1
            pos += 1
        else:
            end = pos
            break
    return end, end - start - skipped


def _scan_layout(frame: _JpegFrame, header: bytes) -> tuple[int, list[tuple[int, int]]] | None:
    """``(MCUs, [(DC table, AC table) of each block of one MCU])`` of a scan, or None if unreadable."""
    n = header[0] if header else 0
    if not frame.components or n < 1 or len(header) < 1 + 2 * n + 3:
        return None
    h_max = max(h for h, _ in frame.components.values()) or 1
    v_max = max(v for _, v in frame.components.values()) or 1
    blocks: list[tuple[int, int]] = []
    for i in range(n):
        component, tables = header[1 + 2 * i], header[2 + 2 * i]
        h, v = frame.components.get(component, (1, 1))
        if n == 1:  # a non-interleaved scan codes the component's own blocks, one per MCU
            mcus = (math.ceil(math.ceil(frame.width * h / h_max) / 8)
                    * math.ceil(math.ceil(frame.height * v / v_max) / 8))
            return mcus, [(tables >> 4, tables & 15)]
        blocks += [(tables >> 4, tables & 15)] * (h * v)
    return math.ceil(frame.width / (8 * h_max)) * math.ceil(frame.height / (8 * v_max)), blocks


def _scan_lower_bound_bits(frame: _JpegFrame, scan: _JpegScan) -> int:
    """The fewest bits a scan can take for the frame's size: every block of a sequential scan
    holds a DC and an AC code, every block of a progressive DC scan a DC code (or one raw bit when
    refining), each at least as long as the shortest code of its table."""
    layout = _scan_layout(frame, scan.header)
    if layout is None or frame.sof not in _SEQUENTIAL_SOF + _PROGRESSIVE_SOF:
        return 0
    mcus, blocks = layout
    n = scan.header[0]
    ss, ah = scan.header[1 + 2 * n], scan.header[3 + 2 * n] >> 4

    def shortest(kind: int, table: int) -> int:
        counts = scan.huffman.get((kind, table), (b"", b""))[0]
        return next((i + 1 for i, count in enumerate(counts) if count), 1)

    if frame.sof in _SEQUENTIAL_SOF:
        return mcus * sum(shortest(0, dc) + shortest(1, ac) for dc, ac in blocks)
    if ss == 0:
        return mcus * sum(shortest(0, dc) if ah == 0 else 1 for dc, _ in blocks)
    return 0  # progressive AC scans: one end-of-band run may cover thousands of blocks


def _check_jpeg_scan_data(path: Path) -> None:
    """Refuse a JPEG whose entropy-coded data is shorter than the least its frame header needs.

    libjpeg decodes a scan that ends early (a frame header patched to a larger size, or a cut file
    with its end marker put back) by filling the missing blocks with grey, and only warns; Pillow
    then returns that grey image. This bound catches the first before anything is decoded; the
    second is caught after decoding by :func:`_check_jpeg_complete`.
    """
    frame, scans = _jpeg_structure(path.read_bytes())
    if frame is None:
        return
    for number, scan in enumerate(scans, 1):
        needed = _scan_lower_bound_bits(frame, scan)
        if scan.coded * 8 < needed:
            raise ImageReadError(
                f"{path}: truncated JPEG: scan {number} of the {frame.width} x {frame.height} frame needs at least "
                f"{(needed + 7) // 8:,} bytes of coded data, the file holds {scan.coded:,}")


def _check_jpeg_complete(path: Path, arr: np.ndarray) -> None:
    """After decoding: refuse a JPEG whose coded data ran out before its last block.

    A complete scan is decoded to its last block before the decoder reaches the end marker, so bytes
    put just before that marker are skipped (libjpeg warns of "extraneous bytes") and change
    nothing. When the data ran out, libjpeg filled the rest with grey; decoded again, those same
    bytes are taken as coded data and the missing blocks come out different. One more decode of a
    JPEG that is within the budget already: exact for sequential files, and for progressive ones
    unless the probe bytes happen to code "no change" for every missing block.
    """
    data = path.read_bytes()
    end = data.rfind(b"\xff\xd9")
    if end < 0:
        return  # no end marker: Pillow has refused the file already
    with Image.open(io.BytesIO(data[:end] + _JPEG_PROBE + data[end:])) as probe:
        probe.load()
        again = np.asarray(probe)
    if again.shape != arr.shape or not np.array_equal(again, arr):
        raise ImageReadError(f"{path}: truncated JPEG: its coded data ends before the last block of the "
                             f"{arr.shape[1]} x {arr.shape[0]} frame (libjpeg would fill the rest with grey)")


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

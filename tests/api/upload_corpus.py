"""A seeded corpus of malformed uploads: the inputs of tests/api/test_upload_fuzz.py and of
benchmarks/upload_memory.py.

Every case starts from a small valid PNG, JPEG or DICOM and breaks it one way: random bit flips,
truncation (with or without the end marker put back), a mutated PNG IHDR or JPEG SOF field, a DICOM
attribute replaced with a wrong type, several values, an out-of-range number or another VR (written
with pydicom), a VR code patched in the byte stream, an unknown or undecodable transfer syntax, or a
deflate bomb. ``malformed_uploads(seed)`` always yields the same cases for the same seed.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Upload:
    family: str  # which mutation made it (the fuzz report counts per family)
    case: str  # what exactly was changed, for a failure message
    filename: str
    content_type: str
    data: bytes


# -- valid seeds -------------------------------------------------------------------------------
def _png(arr: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _jpeg(arr: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def deflate_zeros(size: int, *, prefix: bytes = b"", raw: bool = False) -> bytes:
    """``prefix`` then ``size`` zero bytes deflated (zlib format, or raw deflate) in milliseconds.

    Each 1 MiB of zeros after a full flush compresses to the same bytes, so one block is made and
    repeated instead of compressing hundreds of megabytes. The zlib trailer is the Adler-32 of the
    whole: for zero bytes after ``prefix`` it follows from the prefix's in closed form.
    """
    chunk = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15 if raw else 15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "zlib did not reset at the full flush"
    blocks, rest = divmod(size, chunk)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    if not raw:  # replace the trailer: Adler-32 of prefix + size zeros (a stays, b grows by a per byte)
        a0 = zlib.adler32(prefix)
        a, b = a0 & 0xFFFF, ((a0 >> 16) + (a0 & 0xFFFF) * size) % 65521
        tail = tail[:-4] + struct.pack(">I", (b << 16) | a)
    # head holds prefix + nothing; the two test blocks are dropped; blocks copies of the 1 MiB block.
    return head + block * blocks + tail


def png16(width: int, height: int) -> bytes:
    """A 16-bit gray PNG of zeros (a filter byte 0 and zero samples per row): 8192 x 8192 is about 130 KB."""
    idat = deflate_zeros(height * (1 + 2 * width))
    return (PNG_MAGIC + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
            + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def dicom_dataset(width: int = 24, height: int = 20, *, bits: int = 16, photometric: str = "MONOCHROME2",
                  samples: int = 1, frames: int = 1, seed: int = 0) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = bits, 12 if bits == 16 else 8, 0
    ds.HighBit = ds.BitsStored - 1
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelSpacing = [0.2, 0.2]
    dtype = np.uint16 if bits == 16 else np.uint8
    rng = np.random.default_rng(seed)
    shape = (frames, height, width, samples)
    ds.PixelData = rng.integers(0, 2 ** int(ds.BitsStored), shape, dtype=dtype).tobytes()
    return ds


def dicom_bytes(ds: Dataset, transfer_syntax: str | None = None) -> bytes:
    if transfer_syntax is not None:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)  # the encoding follows the file meta's transfer syntax
    return buffer.getvalue()


def deflated_dicom(width: int, height: int, *, bits: int = 16, pixel_bytes: int | None = None) -> bytes:
    """A deflated DICOM whose header says ``width`` x ``height`` and whose pixel data is
    ``pixel_bytes`` zeros (default: exactly that many pixels): 8192 x 8192 x 16 bit is about 130 KB."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = dicom_dataset(4, 4, bits=bits)
    ds.Rows, ds.Columns = height, width
    del ds.PixelData
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    size = width * height * bits // 8 if pixel_bytes is None else pixel_bytes
    header = body.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, size)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    out.write(bytes(128) + b"DICM")
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    return out.getvalue() + deflate_zeros(size, prefix=header, raw=True)


def _seeds() -> list[tuple[str, str, str, bytes]]:
    """``(name, filename, content type, bytes)`` of the valid images the mutations start from."""
    rng = np.random.default_rng(14)
    gray = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    return [
        ("png8", "chest.png", "image/png", _png(gray)),
        ("png16", "chest16.png", "image/png", _png(rng.integers(0, 4096, (20, 24), dtype=np.uint16))),
        ("png-rgb", "rgb.png", "image/png", _png(rgb)),
        ("png-palette", "pal.png", "image/png", _png(gray, optimize=True)),
        ("jpeg", "chest.jpg", "image/jpeg", _jpeg(gray, quality=90)),
        ("jpeg-rgb", "rgb.jpg", "image/jpeg", _jpeg(rgb, quality=90)),
        ("jpeg-progressive", "prog.jpg", "image/jpeg", _jpeg(gray, progressive=True)),
        ("dicom16", "chest.dcm", "application/dicom", dicom_bytes(dicom_dataset())),
        ("dicom8-mono1", "mono1.dcm", "application/dicom",
         dicom_bytes(dicom_dataset(bits=8, photometric="MONOCHROME1"))),
        ("dicom-rgb", "rgb.dcm", "application/dicom",
         dicom_bytes(dicom_dataset(bits=8, photometric="RGB", samples=3))),
        ("dicom-deflated", "deflated.dcm", "application/dicom",
         dicom_bytes(dicom_dataset(), DeflatedExplicitVRLittleEndian)),
        ("dicom-implicit", "implicit.dcm", "application/dicom", dicom_bytes(dicom_dataset(), ImplicitVRLittleEndian)),
    ]


# -- mutation families -------------------------------------------------------------------------
def _bit_flips(rng: random.Random, seeds) -> Iterator[Upload]:
    for i in range(360):
        name, filename, ctype, data = seeds[i % len(seeds)]
        mutated = bytearray(data)
        flips = rng.choice((1, 1, 2, 4, 16))
        for _ in range(flips):
            # Half the flips land in the first 400 bytes, where the headers are.
            index = rng.randrange(min(len(mutated), 400)) if rng.random() < 0.5 else rng.randrange(len(mutated))
            mutated[index] ^= 1 << rng.randrange(8)
        yield Upload("bit flip", f"{name}: {flips} flip(s)", filename, ctype, bytes(mutated))


def _truncations(rng: random.Random, seeds) -> Iterator[Upload]:
    end_marker = {"image/png": png_chunk(b"IEND", b""), "image/jpeg": b"\xff\xd9", "application/dicom": b""}
    for i in range(160):
        name, filename, ctype, data = seeds[i % len(seeds)]
        cut = rng.randrange(1, len(data))
        tail = end_marker[ctype] if rng.random() < 0.5 else b""
        yield Upload("truncation", f"{name}: cut at {cut} of {len(data)}{' + end marker' if tail else ''}",
                     filename, ctype, data[:cut] + tail)


_SIZES = (0, 1, 3, 8192, 8193, 65535, 100_000, 2**31 - 1, 2**32 - 1)


def _png_ihdr(rng: random.Random, seeds) -> Iterator[Upload]:
    pngs = [s for s in seeds if s[2] == "image/png"]
    for i in range(130):
        name, filename, ctype, data = pngs[i % len(pngs)]
        width, height, depth, color, compression, filter_, interlace = struct.unpack(">IIBBBBB", data[16:29])
        field = rng.choice(("width", "height", "both", "depth", "color", "compression", "filter", "interlace"))
        if field in ("width", "both"):
            width = rng.choice(_SIZES)
        if field in ("height", "both"):
            height = rng.choice(_SIZES)
        if field == "depth":
            depth = rng.choice((0, 1, 2, 3, 4, 7, 8, 16, 32, 255))
        if field == "color":
            color = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 255))
        if field == "compression":
            compression = rng.choice((1, 255))
        if field == "filter":
            filter_ = rng.choice((1, 255))
        if field == "interlace":
            interlace = rng.choice((1, 2, 255))
        ihdr = struct.pack(">IIBBBBB", width, height, depth, color, compression, filter_, interlace)
        fix_crc = rng.random() < 0.8
        chunk = png_chunk(b"IHDR", ihdr) if fix_crc else data[8:12] + b"IHDR" + ihdr + data[29:33]
        yield Upload("PNG IHDR", f"{name}: {field} -> {width}x{height} depth {depth} color {color} "
                     f"({'CRC fixed' if fix_crc else 'stale CRC'})", filename, ctype, data[:8] + chunk + data[33:])


def _jpeg_sof(rng: random.Random, seeds) -> Iterator[Upload]:
    jpegs = [s for s in seeds if s[2] == "image/jpeg"]
    for i in range(130):
        name, filename, ctype, data = jpegs[i % len(jpegs)]
        mutated = bytearray(data)
        sof = next(p for p in range(2, len(data) - 1) if data[p] == 0xFF and data[p + 1] in (0xC0, 0xC1, 0xC2))
        field = rng.choice(("size", "size", "precision", "components", "sampling", "quant", "marker", "dht"))
        if field == "size":
            mutated[sof + 5:sof + 9] = struct.pack(">HH", rng.choice(_SIZES[:6]), rng.choice(_SIZES[:6]))
        elif field == "precision":
            mutated[sof + 4] = rng.choice((0, 1, 12, 16, 255))
        elif field == "components":
            mutated[sof + 9] = rng.choice((0, 2, 3, 4, 255))
        elif field == "sampling":
            mutated[sof + 11] = rng.choice((0x00, 0x44, 0x0F, 0xF0, 0xFF))
        elif field == "quant":
            mutated[sof + 12] = rng.choice((3, 4, 255))
        elif field == "marker":
            mutated[sof + 1] = rng.choice((0xC3, 0xC5, 0xC9, 0xCB, 0xCF, 0xF7))
        else:  # a byte inside the first Huffman table definition
            dht = data.find(b"\xff\xc4")
            mutated[dht + 4 + rng.randrange(1, 20)] = rng.randrange(256)
        yield Upload("JPEG SOF/DHT", f"{name}: {field}", filename, ctype, bytes(mutated))


# (keyword, VR to write it with, value) replacements of DICOM attributes.
_BAD_VALUES: list[tuple[str, str | None, object]] = []
for _keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                 "SamplesPerPixel", "PlanarConfiguration"):
    _BAD_VALUES += [(_keyword, None, [2, 3]), (_keyword, "LO", "abc"), (_keyword, "LO", ""), (_keyword, "DS", "12.5"),
                    (_keyword, None, 0), (_keyword, None, 65535), (_keyword, "OB", b"\x01\x02"),
                    (_keyword, "SS", -1), (_keyword, "UL", 2**32 - 1), (_keyword, "FD", float("nan"))]
for _keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
    _BAD_VALUES += [(_keyword, "LO", "abc"), (_keyword, "DS", [1, 2]), (_keyword, "DS", "0"), (_keyword, "DS", "-5"),
                    (_keyword, "LO", "nan"), (_keyword, "LO", "1e400"), (_keyword, "OB", b"\xff" * 3),
                    (_keyword, "DS", "")]
_BAD_VALUES += [
    ("NumberOfFrames", "IS", "0"), ("NumberOfFrames", "IS", "-3"), ("NumberOfFrames", "LO", "abc"),
    ("NumberOfFrames", "IS", [1, 2]), ("NumberOfFrames", "IS", "100000"), ("NumberOfFrames", "IS", "2"),
    ("PhotometricInterpretation", "CS", "PALETTE COLOR"), ("PhotometricInterpretation", "CS", ["MONOCHROME2", "RGB"]),
    ("PhotometricInterpretation", "CS", ""), ("PhotometricInterpretation", "OB", b"\x00\xff"),
    ("PhotometricInterpretation", "CS", "RGB"), ("PhotometricInterpretation", "CS", "YBR_FULL_422"),
    ("VOILUTFunction", "CS", "CUBIC"), ("VOILUTFunction", "CS", ["LINEAR", "SIGMOID"]),
    ("PixelSpacing", "DS", ["abc", "1"]), ("PixelSpacing", "LO", "x\\y"), ("PixelSpacing", "DS", [0.1, 0.2, 0.3]),
    ("ImagerPixelSpacing", "OB", b"\x00"), ("Modality", "OB", b"\x00\x01"), ("SOPInstanceUID", "UI", ["1.2", "1.3"]),
    ("PixelData", "OB", b""), ("PixelData", "OB", b"\x00" * 7), ("PixelData", "LO", "pixels"),
    ("PixelData", "UN", b"\x00" * 5000),
]


def _dicom_tags(rng: random.Random, seeds) -> Iterator[Upload]:
    dicoms = [s for s in seeds if s[0] in ("dicom16", "dicom8-mono1", "dicom-rgb", "dicom-implicit")]
    import pydicom
    import pydicom.datadict
    from pydicom.datadict import tag_for_keyword

    for i, (keyword, vr, value) in enumerate(_BAD_VALUES):
        for repeat in range(2):
            name, filename, ctype, data = dicoms[(2 * i + repeat) % len(dicoms)]
            ds = pydicom.dcmread(io.BytesIO(data))
            tag = tag_for_keyword(keyword)
            if tag in ds:
                del ds[tag]
            try:
                ds.add_new(tag, vr or pydicom.datadict.dictionary_VR(tag), value)
                mutated = dicom_bytes(ds)
            except Exception:  # pydicom refuses this VR/value pair: write the same text as LO instead
                if tag in ds:
                    del ds[tag]
                text = "\\".join(map(str, value)) if isinstance(value, list) else str(value)
                ds.add_new(tag, "LO", text[:64])
                mutated = dicom_bytes(ds)
            yield Upload("DICOM attribute", f"{name}: {keyword} as {vr or 'its VR'} = {value!r:.40}", filename, ctype,
                         mutated)


_TRANSFER_SYNTAXES = (
    "1.2.3.4", "1.3.6.1.4.1.9590.100.1.2.999", "1.2.840.10008.1.2.4.52", "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.6.1", "", "abc", "1.2.840.10008.1.2.1.99\\1.2.840.10008.1.2", "1.2.840.10008.5.1.4.1.1.7",
    str(JPEGLSLossless), str(RLELossless), str(JPEGBaseline8Bit), str(ExplicitVRBigEndian),
    str(DeflatedExplicitVRLittleEndian), str(ImplicitVRLittleEndian), "1.2.840.10008.1.2.4.201",
)


def _transfer_syntaxes(rng: random.Random, seeds) -> Iterator[Upload]:
    """The file meta names a syntax the data set is not in (or no syntax at all)."""
    dicoms = [s for s in seeds if s[2] == "application/dicom"]
    for i, uid in enumerate(_TRANSFER_SYNTAXES):
        for name, filename, ctype, data in dicoms[i % 3:: 3]:
            old = data.find(b"1.2.840.10008.1.2.1\x00")
            if old < 0:
                old = data.find(b"1.2.840.10008.1.2.1.99")
            if old < 0:
                continue
            length = struct.unpack("<H", data[old - 2:old])[0]
            value = uid.encode() + (b"\x00" if len(uid) % 2 else b"")
            # Keep the meta's group length honest so only the syntax itself is wrong.
            mutated = bytearray(data[:old - 2] + struct.pack("<H", len(value)) + value + data[old + length:])
            group = mutated.find(b"\x02\x00\x00\x00UL\x04\x00")
            if group >= 0:
                old_length = struct.unpack("<I", mutated[group + 8:group + 12])[0]
                mutated[group + 8:group + 12] = struct.pack("<I", old_length + len(value) - length)
            yield Upload("transfer syntax", f"{name}: TransferSyntaxUID {uid!r}", filename, ctype, bytes(mutated))


_ODD_VRS = (b"QS", b"ZZ", b"\x00\x00", b"UN", b"SQ", b"OB", b"AT", b"xx", b"UT", b"OF", b"US", b"FD")


def _odd_vrs(rng: random.Random, seeds) -> Iterator[Upload]:
    """A VR code in the explicit-VR byte stream replaced (what a bit flip there does)."""
    dicoms = [s for s in seeds if s[0] in ("dicom16", "dicom8-mono1", "dicom-rgb")]
    for i in range(110):
        name, filename, ctype, data = dicoms[i % len(dicoms)]
        start = data.find(b"\x08\x00", 132 + 12)  # past the preamble, in the data set (group 0008 onwards)
        positions = [p for p in range(max(start, 0), len(data) - 8, 2)
                     if data[p + 1] in (0x00,) and data[p] in (0x08, 0x18, 0x20, 0x28) and data[p + 4:p + 6].isalpha()
                     and data[p + 4:p + 6].isupper()]
        if not positions:
            continue
        p = rng.choice(positions)
        vr = rng.choice(_ODD_VRS)
        mutated = bytearray(data)
        mutated[p + 4:p + 6] = vr
        yield Upload("odd VR", f"{name}: element at {p} ({data[p + 4:p + 6].decode()}) -> {vr!r}", filename, ctype,
                     bytes(mutated))


def _wrong_types(rng: random.Random, seeds) -> Iterator[Upload]:
    """The right bytes under a wrong name or content type, empty files, and other formats."""
    others = []
    for fmt in ("GIF", "BMP", "TIFF", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format=fmt)
        others.append((fmt, buffer.getvalue()))
    for i, (name, filename, ctype, data) in enumerate(seeds):
        yield Upload("wrong type", f"{name} sent as text/plain", filename, "text/plain", data)
        yield Upload("wrong type", f"{name} sent as image/png named .dcm", "x.dcm", "image/png", data)
        yield Upload("wrong type", f"{name} with no preamble", "x.dcm", "application/dicom", data[128:])
    for fmt, data in others:
        yield Upload("wrong type", f"{fmt} named .png", "x.png", "image/png", data)
        yield Upload("wrong type", f"{fmt} named .dcm", "x.dcm", "application/dicom", data)
    for size in (0, 1, 4, 131, 132):
        yield Upload("wrong type", f"{size} zero bytes", "zero.dcm", "application/dicom", bytes(size))
        yield Upload("wrong type", f"{size} junk bytes", "junk.png", "image/png", b"\x89" * size)
    yield Upload("wrong type", "preamble and DICM only", "head.dcm", "application/dicom", bytes(128) + b"DICM")
    yield Upload("wrong type", "PNG signature only", "sig.png", "image/png", PNG_MAGIC)
    yield Upload("wrong type", "JPEG SOI only", "soi.jpg", "image/jpeg", b"\xff\xd8\xff")


def _huge_declared(rng: random.Random, seeds) -> Iterator[Upload]:
    """Small files that declare or inflate to large images (the memory attacks)."""
    yield Upload("huge", "16-bit PNG 8192 x 8192 of zeros", "bomb16.png", "image/png", png16(8192, 8192))
    yield Upload("huge", "16-bit PNG 6000 x 6000 of zeros (over 25 MP)", "p36.png", "image/png", png16(6000, 6000))
    yield Upload("huge", "deflated DICOM 8192 x 8192 zeros", "bomb.dcm", "application/dicom",
                 deflated_dicom(8192, 8192))
    yield Upload("huge", "deflated DICOM 5000 x 5000 zeros, 8-bit", "d25.dcm", "application/dicom",
                 deflated_dicom(5000, 5000, bits=8, pixel_bytes=2 * 5000 * 5000))
    # Headers that say 16 x 16 but data sets that inflate to 200 MB / 4 GB.
    yield Upload("huge", "deflated DICOM, 16 x 16 header, 200 MB inflated", "infl.dcm", "application/dicom",
                 deflated_dicom(16, 16, pixel_bytes=200 * 2**20))
    yield Upload("huge", "deflated DICOM, 16 x 16 header, 4 GB inflated", "infl4g.dcm", "application/dicom",
                 deflated_dicom(16, 16, pixel_bytes=4_000_000_000))
    gray = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    data = bytearray(_jpeg(gray))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 8192, 8192)
    yield Upload("huge", "JPEG with its SOF patched to 8192 x 8192", "patched.jpg", "image/jpeg", bytes(data))
    data[sof + 5:sof + 9] = struct.pack(">HH", 4000, 4000)
    yield Upload("huge", "JPEG with its SOF patched to 4000 x 4000", "patched4k.jpg", "image/jpeg", bytes(data))
    multi = dicom_dataset(4, 4)
    multi.NumberOfFrames = 2_000_000
    yield Upload("huge", "DICOM of 4 x 4 x 2,000,000 frames", "frames.dcm", "application/dicom", dicom_bytes(multi))


FAMILIES: tuple[Callable[[random.Random, list], Iterator[Upload]], ...] = (
    _bit_flips, _truncations, _png_ihdr, _jpeg_sof, _dicom_tags, _transfer_syntaxes, _odd_vrs, _wrong_types,
    _huge_declared,
)


def malformed_uploads(seed: int = 14) -> list[Upload]:
    """Every case of every family, the same list for the same seed."""
    rng = random.Random(seed)
    seeds = _seeds()
    return [upload for family in FAMILIES for upload in family(rng, seeds)]

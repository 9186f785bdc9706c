"""encoder.io: DICOM (Modality LUT, VOI, MONOCHROME1, bit depths, errors) and PNG/JPEG reading.

Every DICOM here is written by pydicom in the real Part 10 format; images are synthetic.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, generate_uid

from anatomy_vlm.encoder.io import ImageRead, ImageReadError, read_dicom, read_image, read_png_jpeg
from anatomy_vlm.exceptions import AnatomyVLMError

DX_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def write_dicom(path: Path, pixels: np.ndarray, *, bits_stored: int, photometric: str = "MONOCHROME2",
                bits_allocated: int | None = None, transfer_syntax: str = ExplicitVRLittleEndian,
                pixel_bytes: bytes | None = None, **attrs: object) -> Path:
    """Write ``pixels`` ``[H, W]`` (or ``[F, H, W]`` / ``[H, W, 3]`` with attrs saying so) as a DX DICOM."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_SOP_CLASS, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[-2:] if pixels.ndim == 2 or "NumberOfFrames" in attrs else pixels.shape[:2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated or pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixel_bytes if pixel_bytes is not None else pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def pixel(result: ImageRead, row: int, col: int) -> float:
    return float(result.image[0, row, col])


def check_convention(result: ImageRead) -> None:
    image = result.image
    assert image.dtype == torch.float32 and image.dim() == 3 and image.shape[0] == 1
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


# -- DICOM values ------------------------------------------------------------------------------
def test_monochrome2_rescale_and_window(tmp_path: Path) -> None:
    # stored 500/1000/1500/0 -> modality (2x - 1000) = 0/1000/2000/-1000; window c=1000.5, w=2001
    # (DICOM LINEAR: (x - (c - 0.5)) / (w - 1) + 0.5) -> 0.5 at 1000, 1.0 at 2000, 0 at/below 0.
    stored = np.array([[500, 1000], [1500, 0]], dtype=np.uint16)
    path = write_dicom(tmp_path / "m2.dcm", stored, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1000,
                       WindowCenter=1000.5, WindowWidth=2001, PixelSpacing=[0.139, 0.14])
    result = read_image(path)
    check_convention(result)
    assert result.image.shape == (1, 2, 2)
    torch.testing.assert_close(result.image[0], torch.tensor([[0.0, 0.5], [1.0, 0.0]]))
    assert result.meta["window"]["kind"] == "window" and result.meta["window"]["center"] == 1000.5
    assert result.meta["pixel_spacing"] == (0.139, 0.14)
    assert result.meta["photometric_interpretation"] == "MONOCHROME2" and result.meta["bits_stored"] == 12
    assert result.meta["original_dtype"] == "uint16" and result.meta["original_shape"] == (2, 2)


def test_window_argument_overrides_and_none_uses_bit_range(tmp_path: Path) -> None:
    stored = np.array([[500, 1000], [1500, 0]], dtype=np.uint16)
    path = write_dicom(tmp_path / "m2.dcm", stored, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1000,
                       WindowCenter=1000.5, WindowWidth=2001)
    # modality values 0/1000/2000/-1000 under (x - 500) / 1000 + 0.5, clipped; the file's window would give 0.5 at 1000
    narrow = read_dicom(path, window=(500.5, 1001))
    torch.testing.assert_close(narrow.image[0], torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert narrow.meta["window"]["source"] == "argument"
    # none: the 12-bit stored range [0, 4095] through the rescale is [-1000, 7190]
    raw = read_dicom(path, window="none")
    expected = (2 * stored.astype(np.float64) - 1000 + 1000) / (2 * 4095)
    torch.testing.assert_close(raw.image[0], torch.from_numpy(expected).float())
    assert raw.meta["window"] == {"kind": "bit_range", "low": -1000.0, "high": 7190.0}
    with pytest.raises(ValueError, match="window"):
        read_dicom(path, window="soft")


def test_sigmoid_voi_function(tmp_path: Path) -> None:
    stored = np.array([[0, 100, 200, 300]], dtype=np.uint16)
    path = write_dicom(tmp_path / "sig.dcm", stored, bits_stored=16, WindowCenter=150, WindowWidth=200,
                       VOILUTFunction="SIGMOID")
    result = read_image(path)
    expected = 1.0 / (1.0 + np.exp(-4.0 * (stored[0] - 150.0) / 200.0))
    torch.testing.assert_close(result.image[0, 0], torch.from_numpy(expected).float())
    assert result.meta["window"]["function"] == "SIGMOID"


def test_monochrome1_is_inverted_after_windowing(tmp_path: Path) -> None:
    stored = np.array([[0, 255], [255, 64]], dtype=np.uint8)
    path = write_dicom(tmp_path / "m1.dcm", stored, bits_stored=8, photometric="MONOCHROME1")
    result = read_image(path)
    check_convention(result)
    assert pixel(result, 0, 1) == 0.0  # bright in the stored data = air in MONOCHROME1 -> dark
    assert pixel(result, 0, 0) == 1.0
    assert pixel(result, 1, 1) == pytest.approx(1 - 64 / 255)
    assert result.meta["inverted"] is True
    # with a window: the window applies to the stored values, then the result is inverted
    path = write_dicom(tmp_path / "m1w.dcm", stored, bits_stored=8, photometric="MONOCHROME1",
                       WindowCenter=64.5, WindowWidth=129)  # 0 -> 0, 64 -> 0.5, 255 -> 1
    windowed = read_image(path)
    assert pixel(windowed, 1, 1) == pytest.approx(0.5)
    assert pixel(windowed, 0, 1) == 0.0 and pixel(windowed, 0, 0) == 1.0


def test_12_bit_scaled_by_4095_not_by_image_max(tmp_path: Path) -> None:
    stored = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)
    result = read_image(write_dicom(tmp_path / "b12.dcm", stored, bits_stored=12))
    torch.testing.assert_close(result.image[0], torch.from_numpy(stored / 4095.0).float())
    dim = read_image(write_dicom(tmp_path / "dim.dcm", np.array([[0, 2048]], dtype=np.uint16), bits_stored=12))
    assert pixel(dim, 0, 1) == pytest.approx(2048 / 4095)  # not stretched to 1.0


def test_8_bit_and_signed_16_bit(tmp_path: Path) -> None:
    stored = np.array([[0, 128, 255]], dtype=np.uint8)
    result = read_image(write_dicom(tmp_path / "b8.dcm", stored, bits_stored=8))
    torch.testing.assert_close(result.image[0], torch.from_numpy(stored / 255.0).float())
    signed = np.array([[-32768, 0, 32767]], dtype=np.int16)
    result = read_image(write_dicom(tmp_path / "s16.dcm", signed, bits_stored=16))
    torch.testing.assert_close(result.image[0], torch.from_numpy((signed + 32768.0) / 65535.0).float())


def test_voi_lut_sequence_is_preferred(tmp_path: Path) -> None:
    item = Dataset()
    item.add_new(0x00283002, "US", [4, 0, 8])  # LUT Descriptor: 4 entries, first mapped value 0, 8-bit output
    item.add_new(0x00283006, "US", [0, 50, 200, 255])  # LUT Data
    item.LUTExplanation = "test LUT"
    stored = np.array([[0, 1, 2, 3, 10]], dtype=np.uint16)
    path = write_dicom(tmp_path / "lut.dcm", stored, bits_stored=12, VOILUTSequence=Sequence([item]),
                       WindowCenter=2000, WindowWidth=4000)  # present too: the LUT wins
    result = read_image(path)
    torch.testing.assert_close(result.image[0, 0], torch.tensor([0.0, 50 / 255, 200 / 255, 1.0, 1.0]))
    assert result.meta["window"]["kind"] == "voi_lut" and result.meta["window"]["lut_bits"] == 8


def test_rgb_dicom_becomes_bt601_gray(tmp_path: Path) -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [100, 100, 100]]], dtype=np.uint8)
    path = write_dicom(tmp_path / "rgb.dcm", rgb, bits_stored=8, photometric="RGB", SamplesPerPixel=3,
                       PlanarConfiguration=0)
    result = read_image(path)
    torch.testing.assert_close(result.image[0], torch.tensor([[0.299, 0.587], [0.114, 100 / 255]]))
    assert result.meta["converted_from_color"] is True


def test_multi_frame_needs_a_frame(tmp_path: Path) -> None:
    frames = np.stack([np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8)])
    path = write_dicom(tmp_path / "mf.dcm", frames, bits_stored=8, NumberOfFrames=2)
    with pytest.raises(ImageReadError, match=r"mf\.dcm.*multi-frame.*2 frames"):
        read_image(path)
    assert float(read_image(path, frame=1).image.min()) == 1.0


# -- DICOM errors --------------------------------------------------------------------------------
def test_truncated_dicom_names_file(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "cut.dcm", np.zeros((64, 64), np.uint16), bits_stored=12)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ImageReadError, match=r"cut\.dcm.*truncated") as info:
        read_image(path)
    assert isinstance(info.value, AnatomyVLMError)


def test_dicom_cut_inside_the_header_names_file(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "head.dcm", np.zeros((8, 8), np.uint16), bits_stored=12)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match=r"head\.dcm"):
        read_image(path)


def test_bits_stored_above_bits_allocated(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "bits.dcm", np.zeros((4, 4), np.uint8), bits_stored=12, bits_allocated=8)
    with pytest.raises(ImageReadError, match=r"bits\.dcm.*BitsStored 12"):
        read_image(path)


def test_unsupported_bits_allocated(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "b32.dcm", np.zeros((4, 4), np.uint32), bits_stored=32)
    with pytest.raises(ImageReadError, match=r"b32\.dcm.*BitsAllocated 32"):
        read_image(path)


def test_compressed_without_decoder_names_transfer_syntax(tmp_path: Path) -> None:
    from pydicom.pixels import get_decoder

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder (pyjpegls) is installed here; the refusal path cannot be exercised")
    path = write_dicom(tmp_path / "jls.dcm", np.zeros((4, 4), np.uint16), bits_stored=12,
                       transfer_syntax=JPEGLSLossless, pixel_bytes=encapsulate([b"\x00" * 16]))
    with pytest.raises(ImageReadError, match=r"jls\.dcm.*JPEG-LS Lossless.*1\.2\.840\.10008\.1\.2\.4\.80"):
        read_image(path)


def test_undecodable_compressed_data_names_transfer_syntax(tmp_path: Path) -> None:
    # JPEG 2000 has a decoder (Pillow's) here, but the fragment is not a codestream.
    path = write_dicom(tmp_path / "j2k.dcm", np.zeros((4, 4), np.uint16), bits_stored=12,
                       transfer_syntax=JPEG2000Lossless, pixel_bytes=encapsulate([b"\x00" * 16]))
    with pytest.raises(ImageReadError, match=r"j2k\.dcm.*JPEG 2000.*1\.2\.840\.10008\.1\.2\.4\.90"):
        read_image(path)


def test_not_an_image_names_file(tmp_path: Path) -> None:
    for name in ("notes.dcm", "notes.txt"):
        path = tmp_path / name
        path.write_text("patient notes, not an image\n" * 10)
        with pytest.raises(ImageReadError, match=name.replace(".", r"\.")):
            read_image(path)


# -- PNG / JPEG ----------------------------------------------------------------------------------
def test_png_8_bit(tmp_path: Path) -> None:
    arr = np.array([[0, 51], [204, 255]], dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    result = read_image(tmp_path / "a.png")
    check_convention(result)
    torch.testing.assert_close(result.image[0], torch.from_numpy(arr / 255.0).float())
    assert result.meta["format"] == "png" and result.meta["bits_stored"] == 8


def _png_16(path: Path, arr: np.ndarray, sbit: int | None = None) -> Path:
    """A 16-bit gray PNG written chunk by chunk (so an sBIT chunk can be added)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = arr.shape
    raw = b"".join(b"\x00" + arr[row].astype(">u2").tobytes() for row in range(h))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
    if sbit is not None:
        body += chunk(b"sBIT", bytes([sbit]))
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_png_16_bit_and_sbit(tmp_path: Path) -> None:
    arr = np.array([[0, 4095], [32768, 65535]], dtype=np.uint16)
    result = read_image(_png_16(tmp_path / "b16.png", arr))
    torch.testing.assert_close(result.image[0], torch.from_numpy(arr / 65535.0).float())
    twelve = np.array([[0, 1000, 4095]], dtype=np.uint16)
    result = read_png_jpeg(_png_16(tmp_path / "b12.png", twelve, sbit=12))
    torch.testing.assert_close(result.image[0], torch.from_numpy(twelve / 4095.0).float())
    assert result.meta["bits_stored"] == 12


def test_jpeg(tmp_path: Path) -> None:
    arr = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (16, 1))
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    result = read_image(tmp_path / "a.jpg")
    check_convention(result)
    assert result.meta["format"] == "jpeg" and result.image.shape == (1, 16, 16)
    assert torch.allclose(result.image[0], torch.from_numpy(arr / 255.0).float(), atol=0.03)


def test_rgb_png_to_gray_and_alpha_policy(tmp_path: Path) -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90]]], dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    result = read_image(tmp_path / "rgb.png")
    torch.testing.assert_close(result.image[0, 0], torch.tensor([0.299, 0.587, 0.114, 90 / 255]))
    assert result.meta["converted_from_color"] is True
    opaque = np.concatenate([rgb, np.full((1, 4, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(opaque).save(tmp_path / "opaque.png")
    torch.testing.assert_close(read_image(tmp_path / "opaque.png").image, result.image)
    opaque[0, 0, 3] = 10
    Image.fromarray(opaque).save(tmp_path / "see_through.png")
    with pytest.raises(ImageReadError, match=r"see_through\.png.*alpha"):
        read_image(tmp_path / "see_through.png")


def test_corrupt_and_truncated_png(tmp_path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image(tmp_path / "cut.png")
    flipped = bytearray(data)
    flipped[60] ^= 0xFF  # inside IDAT: the chunk CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(flipped))
    with pytest.raises(ImageReadError, match=r"bad\.png"):
        read_image(tmp_path / "bad.png")


def test_truncated_jpeg(tmp_path: Path) -> None:
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.jpg"):
        read_image(tmp_path / "cut.jpg")


# -- files pydicom ships (real encoders' output; read from the installed package, never copied) ------
def _pydicom_test_file(name: str) -> Path:
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / name
    if not path.exists():
        pytest.skip(f"pydicom does not ship {name} in this version")
    return path


def test_pydicom_truncated_file_is_refused() -> None:
    with pytest.raises(ImageReadError, match=r"MR_truncated\.dcm.*truncated pixel data"):
        read_image(_pydicom_test_file("MR_truncated.dcm"))


def test_native_ybr_full_422_is_read_as_luma() -> None:
    # Native 4:2:2 stores 2 bytes per pixel, not 3: the truncation check must not refuse it.
    path = _pydicom_test_file("SC_ybr_full_422_uncompressed.dcm")
    result = read_image(path)
    check_convention(result)
    assert result.image.shape == (1, 100, 100) and result.meta["converted_from_color"] is True
    from pydicom.pixels import pixel_array

    y = pixel_array(path, as_rgb=False)[..., 0] / 255.0  # the stored luma channel
    assert torch.allclose(result.image[0], torch.from_numpy(y).float(), atol=0.02)


# -- header validation: every problem names the file and the tag (issue 14, R4) ----------------------
def _dicom_with(tmp_path: Path, name: str, keyword: str, vr: str, value: object) -> Path:
    """A valid 16-bit DICOM with one attribute replaced (``vr`` forces the VR it is written with)."""
    import pydicom
    from pydicom.datadict import tag_for_keyword

    path = write_dicom(tmp_path / name, np.zeros((4, 5), np.uint16), bits_stored=12, WindowCenter=100,
                       WindowWidth=200, RescaleSlope=1, RescaleIntercept=0)
    ds = pydicom.dcmread(path)
    tag = tag_for_keyword(keyword)
    if tag in ds:
        del ds[tag]
    ds.add_new(tag, vr, value)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("keyword, vr, value, message", [
    ("BitsStored", "LO", "abc", "BitsStored is 'abc', not an integer"),
    ("BitsAllocated", "US", [16, 8], "BitsAllocated has 2 values ([16, 8]), expected one integer"),
    ("Rows", "US", [4, 4], "Rows has 2 values"),
    ("Columns", "LO", "five", "Columns is 'five', not an integer"),
    ("Rows", "US", 0, "Rows is 0, not in 1..65535"),
    ("HighBit", "US", 3, "HighBit is 3, not in 11..15"),
    ("PixelRepresentation", "US", 2, "PixelRepresentation is 2, not in 0..1"),
    ("PixelRepresentation", "LO", "", "PixelRepresentation is present but empty"),
    ("SamplesPerPixel", "OB", b"\x01\x00", "SamplesPerPixel is b'\\x01\\x00', not an integer"),
    ("PhotometricInterpretation", "CS", ["MONOCHROME2", "RGB"], "PhotometricInterpretation has 2 values"),
    ("PhotometricInterpretation", "CS", "PALETTE COLOR", "photometric interpretation PALETTE COLOR"),
    ("NumberOfFrames", "IS", "0", "NumberOfFrames is 0, not in 1..inf"),
    ("NumberOfFrames", "LO", "many", "NumberOfFrames is 'many', not an integer"),
    ("WindowCenter", "LO", "abc", "WindowCenter is 'abc', not a finite number"),
    ("WindowWidth", "LO", "abc", "WindowWidth is 'abc', not a finite number"),
    ("WindowWidth", "DS", "0", "WindowWidth 0 is not valid for a LINEAR window"),
    ("RescaleSlope", "DS", [1, 2], "RescaleSlope has 2 values, expected one number"),
    ("RescaleSlope", "DS", "0", "RescaleSlope is 0"),
    ("RescaleIntercept", "LO", "nan", "RescaleIntercept is 'nan', not a finite number"),
    ("RescaleIntercept", "DS", "", "RescaleIntercept is present but empty"),
    ("VOILUTFunction", "CS", "CUBIC", "VOILUTFunction is 'CUBIC'"),
])
def test_malformed_dicom_attribute_names_the_tag(tmp_path: Path, keyword, vr, value, message) -> None:
    path = _dicom_with(tmp_path, "upload.dcm", keyword, vr, value)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), str(info.value)


@pytest.mark.parametrize("uid, message", [
    ("1.2.3.4", "TransferSyntaxUID '1.2.3.4' is not a transfer syntax this reader can decode"),
    ("1.3.6.1.4.1.9590.100.1.2.999", "TransferSyntaxUID '1.3.6.1.4.1.9590.100.1.2.999' is not a transfer syntax"),
    ("1.2.840.10008.5.1.4.1.1.7", "is not a transfer syntax"),  # a UID, but a SOP class
    ("1.2.840.10008.1.2.4.52", "no pixel data decoder for transfer syntax JPEG Extended (Process 3 and 5)"),
])
def test_unknown_or_undecodable_transfer_syntax_is_refused(tmp_path: Path, uid, message) -> None:
    path = write_dicom(tmp_path / "ts.dcm", np.zeros((4, 4), np.uint16), bits_stored=12)
    data = path.read_bytes()
    old = b"1.2.840.10008.1.2.1\x00"
    value = uid.encode() + (b"\x00" if len(uid) % 2 else b"")
    at = data.index(old)
    data = data[:at - 2] + struct.pack("<H", len(value)) + value + data[at + len(old):]
    path.write_bytes(data)  # the meta's group length is now off: pydicom reads on, as it does for real files
    with pytest.raises(ImageReadError, match=r"ts\.dcm: ") as info:
        read_image(path)
    assert message in str(info.value)


def test_unknown_vr_names_the_tag(tmp_path: Path) -> None:
    # A bit flip in the VR of Rows (US -> QS): pydicom raises only when the value is first used.
    path = write_dicom(tmp_path / "vr.dcm", np.zeros((4, 4), np.uint16), bits_stored=12)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x28\x00\x10\x00US")
    data[at + 4:at + 6] = b"QS"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"vr\.dcm: Rows cannot be read .*Unknown Value Representation 'QS'"):
        read_image(path)


# -- the pixel budget, checked before anything is decoded -------------------------------------------
def test_budget_refuses_from_the_header_before_decoding(tmp_path: Path) -> None:
    from anatomy_vlm.encoder.io import ImageBudget
    from anatomy_vlm.exceptions import ImageTooLargeError

    # Headers over the budget whose pixel data is garbage or missing: the budget error comes first,
    # so nothing was decoded (a decode would have failed on the data).
    png = bytearray(_png_16(tmp_path / "big.png", np.zeros((300, 200), np.uint16)).read_bytes())
    png[-20:-12] = b"\x00" * 8  # inside the IDAT: now corrupt
    (tmp_path / "big.png").write_bytes(bytes(png))
    with pytest.raises(ImageTooLargeError, match=r"big\.png: the header declares 60,000 pixels \(200 x 300\); "
                                                 r"the budget is 10,000"):
        read_image(tmp_path / "big.png", budget=ImageBudget(max_pixels=10_000))
    dicom = write_dicom(tmp_path / "big.dcm", np.zeros((300, 200), np.uint16), bits_stored=12,
                        pixel_bytes=b"\x00" * 10)  # truncated pixel data
    with pytest.raises(ImageTooLargeError, match=r"big\.dcm: .*60,000 pixels"):
        read_image(dicom, budget=ImageBudget(max_pixels=10_000))
    rgb = write_dicom(tmp_path / "rgb.dcm", np.zeros((100, 100, 3), np.uint8), bits_stored=8, photometric="RGB",
                      SamplesPerPixel=3, PlanarConfiguration=0)
    with pytest.raises(ImageTooLargeError, match=r"30,000 bytes of decoded pixels .*3 sample\(s\) of 1 byte"):
        read_image(rgb, budget=ImageBudget(max_pixels=10_000, max_bytes=20_000))
    # within the budget the same reader decodes as before
    assert read_image(rgb, budget=ImageBudget(max_pixels=10_000, max_bytes=30_000)).image.shape == (1, 100, 100)
    with pytest.raises(ValueError, match="positive"):
        ImageBudget(max_pixels=0)


def test_deflated_dicom_bomb_is_refused_while_streaming(tmp_path: Path) -> None:
    import tracemalloc

    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from anatomy_vlm.encoder.io import ImageBudget, read_dicom_header
    from anatomy_vlm.exceptions import ImageTooLargeError

    # A 16 x 16 header over 32 MB of zero pixel data: a few tens of KB on disk.
    path = write_dicom(tmp_path / "bomb.dcm", np.zeros((16, 16), np.uint16), bits_stored=12,
                       transfer_syntax=DeflatedExplicitVRLittleEndian, pixel_bytes=bytes(32 << 20))
    assert path.stat().st_size < 100_000
    budget = ImageBudget(max_pixels=1_000_000, max_bytes=4 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match=r"bomb\.dcm: the deflated data set inflates to more than "
                                                     r"5,242,880 bytes"):
            read_image(path, budget=budget)
        with pytest.raises(ImageTooLargeError):
            read_dicom_header(path, budget=budget)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"refusing the bomb held {peak:,} bytes"
    # Its header alone (no budget) is read from the first MiB inflated, not from all 32 MB.
    module = read_dicom_header(path)
    assert (module.rows, module.columns, module.bits_allocated) == (16, 16, 16)


# -- JPEG scan data shorter than the frame: an error, not grey fill ----------------------------------
def _jpeg(tmp_path: Path, name: str, arr: np.ndarray, **save) -> bytes:
    Image.fromarray(arr).save(tmp_path / name, format="JPEG", **save)
    return (tmp_path / name).read_bytes()


def test_jpeg_with_frame_patched_larger_is_truncated(tmp_path: Path) -> None:
    data = bytearray(_jpeg(tmp_path, "ok.jpg", np.random.default_rng(2).integers(0, 255, (64, 64), dtype=np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 2048, 2048)
    (tmp_path / "patched.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"patched\.jpg: truncated JPEG: scan 1 of the 2048 x 2048 frame needs "
                                             r"at least 32,768 bytes of coded data"):
        read_image(tmp_path / "patched.jpg")


@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"restart_marker_blocks": 4}], ids=str)
def test_jpeg_cut_with_its_end_marker_put_back_is_truncated(tmp_path: Path, save) -> None:
    rng = np.random.default_rng(3)
    for mode, shape in (("L", (48, 56)), ("RGB", (48, 56, 3))):
        data = _jpeg(tmp_path, "ok.jpg", rng.integers(0, 255, shape, dtype=np.uint8), **save)
        assert read_image(tmp_path / "ok.jpg").image.shape == (1, 48, 56)
        (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3] + b"\xff\xd9")
        with pytest.raises(ImageReadError, match=r"cut\.jpg: truncated JPEG"):
            read_image(tmp_path / "cut.jpg")


def test_flat_grey_jpeg_is_not_mistaken_for_fill(tmp_path: Path) -> None:
    # libjpeg's fill value is 128: a whole image of it must still read.
    for save in ({}, {"progressive": True}):
        _jpeg(tmp_path, "grey.jpg", np.full((40, 40), 128, np.uint8), **save)
        result = read_image(tmp_path / "grey.jpg")
        torch.testing.assert_close(result.image, torch.full((1, 40, 40), 128 / 255))

"""Photo metadata (crossmodal/library/metadata.py) on real files: EXIF written by Pillow and EXIF built byte by byte
with the wrong types, zero denominators and garbage dates that cameras and editors really write."""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageFile
from PIL.TiffImagePlugin import IFDRational

from crossmodal.library.metadata import PhotoMetadataError, read_photo_metadata
from crossmodal.media.formats import exif_upright, register_heif

DATA = Path(__file__).parent / "data"
MTIME_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20Z
ASCII, SHORT, LONG, RATIONAL = 2, 3, 4, 5


def _ascii(tag: int, text: str | bytes) -> tuple[int, int, int, bytes]:
    payload = (text.encode() if isinstance(text, str) else text) + b"\0"
    return tag, ASCII, len(payload), payload


def _short(tag: int, value: int) -> tuple[int, int, int, bytes]:
    return tag, SHORT, 1, struct.pack("<H", value)


def _rationals(tag: int, *pairs: tuple[int, int]) -> tuple[int, int, int, bytes]:
    return tag, RATIONAL, len(pairs), b"".join(struct.pack("<II", n, d) for n, d in pairs)


def _ifd(entries: list[tuple[int, int, int, bytes]], offset: int) -> bytes:
    count = len(entries)
    data_start = offset + 2 + 12 * count + 4
    head, data = struct.pack("<H", count), b""
    for tag, kind, n, payload in sorted(entries):
        if len(payload) <= 4:
            head += struct.pack("<HHI", tag, kind, n) + payload.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, kind, n, data_start + len(data))
            data += payload + b"\0" * (len(payload) % 2)
    return head + struct.pack("<I", 0) + data


def raw_exif(ifd0: list, exif: list | None = None, gps: list | None = None) -> bytes:
    """An APP1 EXIF payload built by hand, so tags can have any type Pillow would refuse to write."""

    def build(pointers: dict[int, int]) -> bytes:
        entries = ifd0 + [(tag, LONG, 1, struct.pack("<I", where)) for tag, where in pointers.items()]
        return _ifd(entries, 8)

    subs = [(0x8769, exif), (0x8825, gps)]
    pointers = {tag: 0 for tag, entries in subs if entries is not None}
    offset = 8 + len(build(pointers))
    blobs = b""
    for tag, entries in subs:
        if entries is not None:
            pointers[tag] = offset + len(blobs)
            blobs += _ifd(entries, offset + len(blobs))
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + build(pointers) + blobs


def write_jpeg(path: Path, size: tuple[int, int] = (40, 20), exif: bytes | Image.Exif | None = None) -> Path:
    image = Image.new("RGB", size, (20, 120, 200))
    image.paste((255, 0, 0), (0, 0, 8, 8))  # a red top-left block (one JPEG block: no colour bleeding)
    image.save(path, "JPEG", quality=95, **({"exif": exif} if exif is not None else {}))
    os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return path


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D Mark IV"
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = "2023:07:14 16:20:05"
    exif_ifd[0x9011] = "+02:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (IFDRational(48), IFDRational(51), IFDRational(296, 10))
    gps[3], gps[4] = "W", (IFDRational(2), IFDRational(17), IFDRational(402, 10))
    return exif


def test_jpeg_with_camera_exif_gives_every_field(tmp_path: Path) -> None:
    (tmp_path / "trips").mkdir()
    photo = write_jpeg(tmp_path / "trips" / "paris.jpg", exif=camera_exif())
    meta = read_photo_metadata(photo, tmp_path)
    assert meta.as_dict() == {
        "path": "trips/paris.jpg",
        "folder": "trips",
        "size_bytes": photo.stat().st_size,
        "width": 20,  # stored 40x20, orientation 6: displayed 20x40
        "height": 40,
        "taken": "2023-07-14T16:20:05+02:00",
        "taken_source": "exif",
        "camera": "Canon EOS 5D Mark IV",
        "lat": pytest.approx(48 + 51 / 60 + 29.6 / 3600, abs=1e-6),
        "lon": pytest.approx(-(2 + 17 / 60 + 40.2 / 3600), abs=1e-6),
        # at sea: 25.4 km off Saint-Cast-le-Guildo (over the 25 km cap), with Jersey within 100 km: no place told
        "place": None,
    }


def test_png_without_exif_falls_back_to_mtime_in_utc(tmp_path: Path) -> None:
    photo = tmp_path / "scan.png"
    Image.new("RGB", (30, 10)).save(photo)
    os.utime(photo, ns=(MTIME_NS, MTIME_NS))
    meta = read_photo_metadata(photo, tmp_path, photo.stat())
    assert (meta.path, meta.folder, meta.width, meta.height) == ("scan.png", "", 30, 10)
    assert (meta.taken, meta.taken_source) == ("2023-11-14T22:13:20+00:00", "mtime")
    assert (meta.camera, meta.lat, meta.lon) == (None, None, None)


def test_date_without_offset_is_local_wall_clock_and_later_tags_are_fallbacks(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0132] = "2019:01:02 03:04:05"  # DateTime in IFD0
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"  # garbage DateTimeOriginal
    meta = read_photo_metadata(write_jpeg(tmp_path / "a.jpg", exif=exif), tmp_path)
    assert (meta.taken, meta.taken_source) == ("2019-01-02T03:04:05", "exif")
    exif.get_ifd(0x8769)[0x9004] = "2018:05:06 07:08:09"  # DateTimeDigitized comes before DateTime
    exif.get_ifd(0x8769)[0x9012] = "-05:30"
    meta = read_photo_metadata(write_jpeg(tmp_path / "b.jpg", exif=exif), tmp_path)
    assert meta.taken == "2018-05-06T07:08:09-05:30"


@pytest.mark.parametrize(
    "ifd0, exif, gps",
    [
        # Orientation as text, Make as a number, Model with NULs and spaces; every date garbage.
        (
            [_ascii(0x0112, "six"), _short(0x010F, 7), _ascii(0x0110, b"  Phone\0\0 X "), _ascii(0x0132, "    :  :  ")],
            [_ascii(0x9003, "0000:00:00 00:00:00"), _ascii(0x9004, "2021:13:40 25:61:61"), _short(0x9011, 3)],
            # Zero denominators in the latitude, longitude without reference.
            [_ascii(1, "N"), _rationals(2, (48, 1), (0, 0), (1, 0)), _rationals(4, (2, 1), (17, 1), (40, 1))],
        ),
        (
            [_short(0x0112, 99), _ascii(0x010F, ""), _ascii(0x0132, "2020:02:30 10:00:00")],
            [_ascii(0x9003, "not a date at all")],
            # Reference of the wrong type, latitude out of range, longitude a string.
            [_short(1, 78), _rationals(2, (91, 1), (0, 1), (0, 1)), _ascii(3, "E"), _ascii(4, "2.5")],
        ),
        ([_short(0x0112, 1)], [], [_ascii(1, "N"), _rationals(2, (0, 1)), _ascii(3, "E"), _rationals(4, (0, 1))]),
    ],
)
def test_broken_exif_never_raises_and_each_field_falls_back(tmp_path: Path, ifd0: list, exif: list, gps: list) -> None:
    photo = write_jpeg(tmp_path / "broken.jpg", exif=raw_exif(ifd0, exif, gps))
    meta = read_photo_metadata(photo, tmp_path)
    assert (meta.width, meta.height) == (40, 20)
    assert (meta.taken, meta.taken_source) == ("2023-11-14T22:13:20+00:00", "mtime")
    assert (meta.lat, meta.lon) == (None, None)  # the last case is 0/0: a device without a fix
    assert meta.camera in (None, "Phone X")


def test_exif_that_pillow_cannot_parse_at_all(tmp_path: Path) -> None:
    garbage = b"Exif\0\0II*\0" + struct.pack("<I", 0x7FFFFFF0) + os.urandom(64)
    meta = read_photo_metadata(write_jpeg(tmp_path / "g.jpg", exif=garbage), tmp_path)
    assert (meta.width, meta.height, meta.taken_source, meta.camera) == (40, 20, "mtime", None)


@pytest.mark.parametrize(
    "make, model, camera",
    [
        ("Canon", "Canon EOS R5", "Canon EOS R5"),
        ("NIKON CORPORATION", "NIKON D750", "NIKON D750"),
        ("Apple", "iPhone 12", "Apple iPhone 12"),
        ("  SONY ", "ILCE-7M3\0", "SONY ILCE-7M3"),
        (None, "Pixel 7", "Pixel 7"),
        ("Fujifilm", None, "Fujifilm"),
    ],
)
def test_camera_is_make_and_model_without_repeating_the_make(
    tmp_path: Path, make: str | None, model: str | None, camera: str
) -> None:
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    assert read_photo_metadata(write_jpeg(tmp_path / "c.jpg", exif=exif), tmp_path).camera == camera


@pytest.mark.parametrize(
    "fmt, suffix", [("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif"), ("GIF", "gif"), ("BMP", "bmp")]
)
def test_other_formats_give_their_dimensions(tmp_path: Path, fmt: str, suffix: str) -> None:
    photo = tmp_path / f"p.{suffix}"
    Image.new("RGB", (33, 17), "green").save(photo, fmt)
    meta = read_photo_metadata(photo, tmp_path)
    assert (meta.width, meta.height, meta.path) == (33, 17, f"p.{suffix}")


def test_png_and_webp_exif_is_read(tmp_path: Path) -> None:
    for fmt in ("PNG", "WEBP"):
        photo = tmp_path / f"x.{fmt.lower()}"
        Image.new("RGB", (40, 20)).save(photo, fmt, exif=camera_exif())
        meta = read_photo_metadata(photo, tmp_path)
        assert (meta.width, meta.height, meta.taken) == (20, 40, "2023-07-14T16:20:05+02:00")
        assert meta.camera == "Canon EOS 5D Mark IV"


def test_only_headers_are_read_no_pixel_is_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jpeg = write_jpeg(tmp_path / "a.jpg", exif=camera_exif())
    png = tmp_path / "b.png"
    Image.new("RGB", (8, 8)).save(png)
    png_exif = tmp_path / "c.png"
    Image.new("RGB", (8, 8)).save(png_exif, exif=camera_exif())

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for photo in (jpeg, png, png_exif):
        read_photo_metadata(photo, tmp_path)


def test_truncated_jpeg_still_has_metadata_but_a_cut_header_or_non_image_raises(tmp_path: Path) -> None:
    noisy = Image.frombytes("RGB", (320, 240), os.urandom(320 * 240 * 3))
    noisy.save(tmp_path / "whole.jpg", exif=camera_exif())
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(whole[: len(whole) // 2 + 200])
    meta = read_photo_metadata(tmp_path / "half.jpg", tmp_path)
    assert (meta.width, meta.height, meta.taken_source) == (240, 320, "exif")
    (tmp_path / "cut.jpg").write_bytes(whole[:40])
    (tmp_path / "notes.jpg").write_text("not a photo")
    for name in ("cut.jpg", "notes.jpg", "missing.jpg"):
        with pytest.raises(PhotoMetadataError):
            read_photo_metadata(tmp_path / name, tmp_path)


def test_a_symlink_or_a_path_outside_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    outside = write_jpeg(tmp_path / "secret.jpg")
    (root / "link.jpg").symlink_to(outside)
    with pytest.raises(PhotoMetadataError, match="symlink"):
        read_photo_metadata(root / "link.jpg", root)
    with pytest.raises(PhotoMetadataError, match="not inside"):
        read_photo_metadata(outside, root)


def test_exif_upright_turns_the_pixels_as_displayed(tmp_path: Path) -> None:
    photo = write_jpeg(tmp_path / "r.jpg", exif=camera_exif())
    with Image.open(photo) as image:
        upright = exif_upright(image)
        assert upright.size == (20, 40)
        red_corner = upright.getpixel((17, 2))  # orientation 6: the stored top-left is displayed top-right
        assert red_corner[0] > 200 and red_corner[2] < 80
    broken = write_jpeg(tmp_path / "b.jpg", exif=raw_exif([_ascii(0x0112, "six")]))
    with Image.open(broken) as image:
        assert exif_upright(image) is image
    with Image.open(write_jpeg(tmp_path / "g.jpg", exif=b"Exif\0\0II*\0\xff\xff\xff\x7f")) as image:
        assert exif_upright(image).size == (40, 20)


def test_heic_photo_from_a_phone(tmp_path: Path) -> None:
    if not register_heif():
        pytest.skip("no HEIC decoder installed (pi-heif)")
    # 48x32 stored with orientation 6 by the encoder, which moves it into the HEIF transform: displayed 32x48.
    photo = tmp_path / "IMG_0001.HEIC"
    photo.write_bytes((DATA / "library_photo.heic").read_bytes())
    meta = read_photo_metadata(photo, tmp_path)
    assert (meta.width, meta.height) == (32, 48)
    assert (meta.taken, meta.camera) == ("2023-07-14T16:20:05+02:00", "Apple iPhone 12")
    with Image.open(io.BytesIO(photo.read_bytes())) as image:
        assert exif_upright(image).size == (32, 48)

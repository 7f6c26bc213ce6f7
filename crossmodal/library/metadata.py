"""Per-photo metadata from the file's header and EXIF: size, displayed dimensions, when, which camera, where.

`read_photo_metadata` reads headers only: `Image.open` is lazy and no pixel is decoded (a PNG's EXIF is only taken
from an eXIf chunk that comes before the pixel data, because reading one that comes after would decode the image).
EXIF is untrusted input: a tag of the wrong type, a zero denominator, a date such as "0000:00:00 00:00:00", or a
blob Pillow cannot parse never raises; the field falls back (`taken` to the file's mtime, the others to None). Only a
file that cannot be opened as an image at all raises `PhotoMetadataError`, whose message is the reason to report.

Field rules (the `metadata` object of issue 11):
- `path`: POSIX path relative to the library root; `folder`: its parent ("" at the root).
- `width`/`height`: as displayed, after EXIF orientation (orientations 5-8 swap them).
- `taken`: ISO 8601 from EXIF DateTimeOriginal, else DateTimeDigitized, else DateTime (`taken_source` "exif"),
  each with its own OffsetTime* tag when present ("2023-07-14T16:20:05+02:00"); without an offset it is the
  camera's local wall-clock time with no zone ("2023-07-14T16:20:05"). Otherwise the file's mtime in UTC
  ("2024-01-02T03:04:05+00:00", `taken_source` "mtime").
- `camera`: "Make Model" with whitespace collapsed, and the make dropped when the model already starts with it (or
  with its first word: "NIKON CORPORATION" + "NIKON D750" is "NIKON D750"); None when both are absent.
- `lat`/`lon`: decimal degrees from the GPS IFD with their N/S/E/W references; None when absent, of the wrong type,
  out of range, without a reference, or exactly 0/0 (what devices without a fix write).
- `place`: {"city", "region", "country", "country_code"} named offline from `lat`/`lon`
  (`crossmodal.library.places`: city and region None when only the country can be told); None without coordinates
  or when no place can be told (mid-ocean).

The file is opened with `crossmodal.library.open_library_file` (no symlink followed, regular files only), and
HEIC/HEIF is read when `crossmodal.media.formats.register_heif()` found a decoder.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from crossmodal.library.files import open_library_file
from crossmodal.library.places import place_of
from crossmodal.media.formats import orientation, photo_formats, safe_exif

# EXIF tags (IFD0, the Exif sub-IFD, the GPS sub-IFD).
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_TIME, _OFFSET_TIME_ORIGINAL, _OFFSET_TIME_DIGITIZED = 0x9010, 0x9011, 0x9012
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
# Orientations that rotate by 90 or 270 degrees: the displayed width is the stored height.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_DATE = re.compile(r"^(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_MAX_CAMERA_CHARS = 120

class PhotoMetadataError(ValueError):
    """The file cannot be opened as an image; the message says why."""


@dataclass(frozen=True)
class PhotoMetadata:
    path: str
    folder: str
    size_bytes: int
    width: int
    height: int
    taken: str
    taken_source: str  # "exif" or "mtime"
    camera: str | None
    lat: float | None
    lon: float | None
    place: dict[str, str | None] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of the API's `metadata` (plain str/int/float/None values)."""
        return asdict(self)


def read_photo_metadata(path: Path, root: Path, stat: os.stat_result | None = None) -> PhotoMetadata:
    """Metadata of the photo at `path` (inside `root`); `stat` saves a syscall when the scan already has it."""
    relative = PurePosixPath(Path(os.path.relpath(path, root)).as_posix())
    if relative.is_absolute() or ".." in relative.parts:
        raise PhotoMetadataError(f"{path} is not inside {root}")
    try:
        with open_library_file(root, relative.as_posix()) as handle:
            stat = stat if stat is not None else os.fstat(handle.fileno())
            with Image.open(handle, formats=photo_formats()) as image:
                width, height = image.size
                exif = safe_exif(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoMetadataError(f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise PhotoMetadataError(f"not an image ({', '.join(photo_formats())})") from exc
    except OSError as exc:  # permission denied, vanished, a symlink or FIFO swapped in, an I/O error
        raise PhotoMetadataError(f"cannot read the file: {exc}") from exc
    except (SyntaxError, ValueError, EOFError) as exc:  # Pillow's plugins raise these on malformed headers
        raise PhotoMetadataError(f"corrupt image header: {exc}") from exc
    if orientation(exif) in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    exif_ifd = _safe_ifd(exif, _EXIF_IFD)
    taken = _exif_taken(exif, exif_ifd)
    lat_lon = _gps(_safe_ifd(exif, _GPS_IFD))
    folder = relative.parent.as_posix()
    return PhotoMetadata(
        path=relative.as_posix(),
        folder="" if folder == "." else folder,
        size_bytes=stat.st_size,
        width=width,
        height=height,
        taken=taken if taken is not None else _mtime_iso(stat),
        taken_source="exif" if taken is not None else "mtime",
        camera=_camera(exif.get(_MAKE), exif.get(_MODEL)),
        lat=lat_lon[0] if lat_lon else None,
        lon=lat_lon[1] if lat_lon else None,
        place=_place(lat_lon),
    )






def _place(lat_lon: tuple[float, float] | None) -> dict[str, str | None] | None:
    place = place_of(*lat_lon) if lat_lon else None
    return place.as_dict() if place is not None else None


def _safe_ifd(exif: Image.Exif, tag: int) -> Mapping[int, Any]:
    try:
        ifd = exif.get_ifd(tag)
    except Exception:  # an IFD offset pointing anywhere
        return {}
    return ifd if isinstance(ifd, Mapping) else {}




def _text(value: Any) -> str | None:
    """An EXIF ASCII value as clean text (NULs, control characters and runs of spaces removed), or None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    cleaned = " ".join(_CONTROL_CHARS.sub(" ", value).split())
    return cleaned or None


def _exif_taken(exif: Mapping[int, Any], exif_ifd: Mapping[int, Any]) -> str | None:
    candidates = (
        (exif_ifd.get(_DATETIME_ORIGINAL), exif_ifd.get(_OFFSET_TIME_ORIGINAL)),
        (exif_ifd.get(_DATETIME_DIGITIZED), exif_ifd.get(_OFFSET_TIME_DIGITIZED)),
        (exif.get(_DATETIME), exif_ifd.get(_OFFSET_TIME)),
    )
    for date_value, offset_value in candidates:
        taken = _parse_exif_date(_text(date_value), _text(offset_value))
        if taken is not None:
            return taken
    return None


def _parse_exif_date(date: str | None, offset: str | None) -> str | None:
    match = _EXIF_DATE.match(date or "")
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00", month 13, February 30, hour 24
        return None
    offset_match = _EXIF_OFFSET.match(offset or "")
    if offset_match is not None:
        sign, hours, minutes = offset_match.groups()
        if int(hours) <= 14 and int(minutes) < 60:
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            moment = moment.replace(tzinfo=timezone(-delta if sign == "-" else delta))
    return moment.isoformat()


def _mtime_iso(stat: os.stat_result) -> str:
    try:
        moment = datetime.fromtimestamp(stat.st_mtime_ns // 1_000_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # an mtime outside what datetime can hold
        moment = datetime.fromtimestamp(0, tz=UTC)
    return moment.isoformat()


def _camera(make_value: Any, model_value: Any) -> str | None:
    make, model = _text(make_value), _text(model_value)
    camera: str | None
    if make and model:
        first_word = make.split()[0]
        if model.lower().startswith(make.lower()) or model.lower().startswith(first_word.lower() + " "):
            camera = model
        else:
            camera = f"{make} {model}"
    else:
        camera = make or model
    return camera[:_MAX_CAMERA_CHARS] if camera else None


def _gps(gps: Mapping[int, Any]) -> tuple[float, float] | None:
    lat = _coordinate(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), positive="N", negative="S", limit=90.0)
    lon = _coordinate(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), positive="E", negative="W", limit=180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        return None
    return lat, lon


def _coordinate(value: Any, ref_value: Any, positive: str, negative: str, limit: float) -> float | None:
    ref = (_text(ref_value) or "").upper()[:1]
    if ref not in (positive, negative):
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    degrees = 0.0
    try:
        for part, scale in zip(parts, (1.0, 60.0, 3600.0)):
            number = float(part)  # IFDRational; a zero denominator gives nan
            if not math.isfinite(number) or number < 0:
                return None
            degrees += number / scale
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if degrees > limit:
        return None
    return round(-degrees if ref == negative else degrees, 7)

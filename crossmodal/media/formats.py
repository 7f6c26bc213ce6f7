"""What a photo file may be and how it is shown: the formats Pillow may parse, HEIF where a decoder is installed,
and the EXIF orientation applied.

The bottom of the media code: decoding (`imaging`), the folder scan (`library`), the metadata reader
(`library.metadata`) and the perceptual hash all use it, and it imports none of them (only Pillow), so they form no
import circle.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageOps

# Common photo formats only: fewer parsers exposed to untrusted input, and never EPS (which runs Ghostscript).
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
# ISO base media "ftyp" brands of HEIF still images and sequences (HEVC and generic), as phones write them.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_ORIENTATION = 0x0112  # the EXIF tag of IFD0
_heif: dict[str, str | None] = {}


def is_heif(data: bytes) -> bool:
    """Whether the bytes start like a HEIF file (an ISO base media `ftyp` box with a HEIF brand)."""
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def register_heif() -> bool:
    """Register the HEIC/HEIF opener with Pillow once; False when no decoder is installed.

    `pi-heif` is the decode-only build of libheif + libde265 (LGPLv3 wheels); `pillow-heif`'s wheels also bundle the
    x265 encoder and are GPLv2 as a whole, which a search engine that only decodes does not need.
    """
    if "reason" not in _heif:
        try:
            import pi_heif

            pi_heif.register_heif_opener()
            _heif["reason"] = None
        except Exception as exc:  # ImportError, or a wheel whose native library does not load here
            _heif["reason"] = f"HEIC/HEIF not supported: no decoder ({type(exc).__name__}: {exc})"
    return _heif["reason"] is None


def heif_unavailable_reason() -> str | None:
    """Why HEIC files are skipped, or None when they are decoded."""
    register_heif()
    return _heif["reason"]


def photo_formats() -> tuple[str, ...]:
    """Pillow formats a library photo may have: the decoder's safe list, plus HEIF when it is registered."""
    return (*ALLOWED_FORMATS, "HEIF") if register_heif() else ALLOWED_FORMATS


def safe_exif(image: Image.Image) -> Image.Exif:
    """The image's EXIF, empty when it cannot be parsed (it is untrusted input) or would cost a pixel decode."""
    if image.format == "PNG" and "exif" not in image.info:
        return Image.Exif()  # Pillow would decode the pixels looking for an eXIf chunk after them
    try:
        return image.getexif()
    except Exception:  # a third-party parser on untrusted bytes: struct.error, SyntaxError, TypeError, ...
        return Image.Exif()


def orientation(exif: Mapping[int, Any]) -> int | None:
    """The EXIF orientation (1-8), or None when absent or not a valid value."""
    value = exif.get(_ORIENTATION)
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def exif_upright(image: Image.Image) -> Image.Image:
    """The image as displayed (EXIF orientation applied); unchanged when the orientation is absent or unusable.

    Errors reading the pixels (a truncated file) propagate, so the decoder reports them; a broken EXIF does not.
    """
    if orientation(safe_exif(image)) in (None, 1):
        return image
    return ImageOps.exif_transpose(image)

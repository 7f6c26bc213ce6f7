"""Safe image decoding: untrusted bytes, base64, data URIs and files to upright RGB images.

Sizes are checked before pixels are decoded, so a decompression bomb never allocates, and every failure is an
ImageDecodeError whose message says what is wrong with the input. Photos come out as displayed: the EXIF orientation
is applied (`crossmodal.media.formats.exif_upright`, which ignores a broken EXIF block). HEIC/HEIF is decoded when
the bytes are HEIF and a decoder is installed (`crossmodal.media.formats.register_heif`, tried only then).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from crossmodal.media.formats import ALLOWED_FORMATS, exif_upright, is_heif, photo_formats

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class ImageDecodeError(ValueError):
    """The input is not a usable image; the message says why."""


class ImageTooLargeError(ImageDecodeError):
    """The input is over a byte or pixel limit (a decompression bomb included): HTTP 413 where it is answered."""


def decode_image_bytes(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES, min_side: int | None = None
) -> Image.Image:
    """Decode encoded image bytes to an upright RGB image, enforcing the byte and pixel limits.

    With `min_side` (what a model's preprocessing resizes the shorter side to), a JPEG whose shorter side is over
    twice that is decoded at 1/2, 1/4 or 1/8 scale, the smallest that keeps the shorter side at least `min_side`
    (libjpeg's DCT scaling, `Image.draft`): a 12-megapixel camera photo decodes and preprocesses in 26 ms instead
    of 164 ms, for the same model input within 0.03 per pixel (bench/index_bench.py --megapixels)."""
    if not isinstance(data, (bytes, bytearray)):
        raise ImageDecodeError(f"expected image bytes, got {type(data).__name__}")
    _check_byte_count(len(data), max_bytes)
    formats = _formats_for(data)
    try:
        image: Image.Image = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"not an image (cannot identify image file; supported formats: {', '.join(formats)})"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning when -W error
        raise ImageTooLargeError(f"image too large: {exc}") from exc
    width, height = image.size
    _check_pixel_count(width, height, max_pixels)
    shorter = min(width, height)
    if min_side and image.format == "JPEG" and shorter > 2 * min_side:
        image.draft("RGB", (-(-width * min_side // shorter), -(-height * min_side // shorter)))  # sizes rounded up
    try:
        image.load()
        image = exif_upright(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if "truncated" in str(exc):
            raise ImageDecodeError(f"truncated image: {exc}") from exc
        raise ImageDecodeError(f"corrupt image: {exc}") from exc
    return _to_rgb(image)


def check_image_file(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[str, tuple[int, int]]:
    """(format, (width, height)) of an image file, from its size on disk and its header only: the checks of
    `decode_image_bytes` that need no pixels (empty or too many bytes, not an allowed format, too many pixels: a
    decompression bomb never allocates). Truncated or corrupt pixel data is found only by the one full decode, in the
    encoder. Raises ImageDecodeError with the same messages as `decode_image_bytes`."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            return _check_header(file, os.fstat(file.fileno()).st_size, max_pixels, max_bytes)
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ImageDecodeError(f"cannot read {path}: is a directory") from exc
    except ImageDecodeError:
        raise
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc


def check_image_bytes(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[str, tuple[int, int]]:
    """`check_image_file` for bytes in memory (an upload the gateway checks before the encoder decodes it once)."""
    if not isinstance(data, (bytes, bytearray)):
        raise ImageDecodeError(f"expected image bytes, got {type(data).__name__}")
    return _check_header(io.BytesIO(data), len(data), max_pixels, max_bytes)


def _check_header(file: BinaryIO, size: int, max_pixels: int, max_bytes: int) -> tuple[str, tuple[int, int]]:
    _check_byte_count(size, max_bytes)
    formats = _formats_for(file.read(16))
    file.seek(0)
    try:
        with Image.open(file, formats=formats) as image:
            width, height = image.size
            kind = str(image.format)
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"not an image (cannot identify image file; supported formats: {', '.join(formats)})"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image too large: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:  # a header Pillow cannot parse
        raise ImageDecodeError(f"corrupt image: {exc}") from exc
    _check_pixel_count(width, height, max_pixels)
    return kind, (width, height)


def image_bytes_from_base64(value: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Raw bytes of plain or URL-safe base64, or of a base64 data URI; whitespace and missing padding are fine."""
    if not isinstance(value, str):
        raise ImageDecodeError(f"expected a base64 string, got {type(value).__name__}")
    payload = value.strip()
    if payload[:5].lower() == "data:":
        header, comma, payload = payload.partition(",")
        if not comma:
            raise ImageDecodeError("invalid data URI: missing ',' after the media type")
        if not header.lower().endswith(";base64"):
            raise ImageDecodeError(f"invalid data URI: {header!r} is not base64-encoded")
    payload = "".join(payload.split()).translate(_URLSAFE_TO_STANDARD).rstrip("=")
    _check_byte_count(len(payload) * 3 // 4, max_bytes)  # before decoding, so a huge string never doubles in memory
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII characters
        raise ImageDecodeError(f"invalid base64: {exc}") from exc
    _check_byte_count(len(data), max_bytes)
    return data


def decode_base64_image(
    value: str, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Image.Image:
    """Decode plain base64 or a data URI to an upright RGB image."""
    return decode_image_bytes(image_bytes_from_base64(value, max_bytes), max_pixels, max_bytes)


def read_image_file(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, expected_sha256: str | None = None) -> bytes:
    """Read an image file's bytes, at most ``max_bytes`` + 1 of them, with errors that name the problem. With
    ``expected_sha256`` (the hash of the bytes a photo-folder sync read), a file that has changed since is refused."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"file not found: {path}") from exc
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"image file too large: {path} is over the limit of {max_bytes} bytes")
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ImageDecodeError(f"the file changed since it was scanned: {path} (indexed by the next sync)")
    return data


def load_image_file(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Image.Image:
    """Read and decode an image file, reading at most ``max_bytes`` + 1 bytes."""
    return decode_image_bytes(read_image_file(path, max_bytes), max_pixels, max_bytes)


def _formats_for(data: bytes) -> tuple[str, ...]:
    """The Pillow formats to try: the safe list, plus HEIF for HEIF bytes when a decoder registers (never loaded
    for other files, so processes that never see a HEIC file never import it)."""
    return photo_formats() if is_heif(data) else ALLOWED_FORMATS


def _check_byte_count(size: int, max_bytes: int) -> None:
    if size == 0:
        raise ImageDecodeError("empty image data")
    if size > max_bytes:
        raise ImageTooLargeError(f"image data too large: {size} bytes exceeds the limit of {max_bytes}")


def _check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB whatever the mode: transparency composited on white, 16-bit samples scaled rather than clipped."""
    if image.mode.startswith("I;16"):
        samples = np.asarray(image).astype(np.uint16)
        return Image.fromarray((samples >> 8).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")

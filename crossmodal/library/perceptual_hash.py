"""A photo's perceptual signature: a 64-bit DCT hash (pHash) of its upright grayscale thumbnail, as 16 hex digits.

Resized, re-encoded, brightened or slightly cropped copies of a photo keep most of its bits; different photos differ
in about half of them. `crossmodal.library.duplicates` combines the Hamming distance of two signatures with the cosine
of the two photos' vectors (a model that embeds *what* a photo shows moves a re-encoded copy further from its original
than the pixels do).

The algorithm is ImageHash's `phash` (hash_size 8, highfreq_factor 4): the image in grayscale, resized to 32 x 32
(Lanczos), a 2-D DCT-II, the 8 x 8 lowest frequencies compared with their median, bit i of the hash (most significant
first) set when coefficient i (row-major) is above it; the thumbnail is reduced differently (below), so a hash may
differ from ImageHash's in a few bits. Written here over numpy and scipy (both installed) instead of depending on
ImageHash, which would add PyWavelets for a 20-line function and decode every photo in full. Reading is cheap: a
JPEG is decoded at a reduced scale by its own decoder (`Image.draft`, down to 1/8, in grayscale), other formats are
decoded and reduced; EXIF orientation is applied, so a photo and its upright copy hash alike.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy.fft import dct

from crossmodal.media.formats import exif_upright

SIGNATURE_TAG = "phash"  # the record tag (outside `metadata`) that holds a photo's signature
HASH_BITS = 64
_MIN_BITS_SET = 16  # fewer: a flat image (ties at the median), whose hash says nothing about it
_SIDE = 8  # the hash is _SIDE x _SIDE bits
_SAMPLE = _SIDE * 4  # of a _SAMPLE x _SAMPLE grayscale thumbnail
_WEIGHTS = 1 << np.arange(HASH_BITS - 1, -1, -1, dtype=np.uint64)


def image_signature(image: Image.Image) -> str:
    """The signature of an image (any mode; not yet loaded is best: a JPEG is then decoded at a reduced scale).
    Raises what Pillow raises on pixels it cannot decode."""
    if image.format == "JPEG":
        image.draft("L", (_SAMPLE, _SAMPLE))  # the decoder's own downscale (1/2 .. 1/8), still >= 32 x 32
    image = exif_upright(image)
    gray = image.convert("L").resize((_SAMPLE, _SAMPLE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    pixels = np.asarray(gray, dtype=np.float64)
    low = dct(dct(pixels, axis=0), axis=1)[:_SIDE, :_SIDE]
    bits = (low > np.median(low)).ravel()
    return f"{int((bits.astype(np.uint64) * _WEIGHTS).sum()):016x}"


def bytes_signature(data: bytes) -> str:
    """The signature of an encoded photo (its file's bytes): a JPEG decoded at a reduced scale, another format
    decoded here (a photo-folder sync decodes nothing else: the encoder reads and decodes the photo itself)."""
    with Image.open(io.BytesIO(data)) as image:
        return image_signature(image)


def signature_bits(signatures: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 values, has-a-signature mask) of hex signatures; None, "" or a malformed one has none, and so has
    the hash of a flat image (a blank page, a black frame: under 16 of 64 bits set), which matches any other."""
    values = np.zeros(len(signatures), dtype=np.uint64)
    known = np.zeros(len(signatures), dtype=bool)
    for position, signature in enumerate(signatures):
        if isinstance(signature, str) and len(signature) == HASH_BITS // 4:
            try:
                values[position] = np.uint64(int(signature, 16))
            except ValueError:
                continue
            known[position] = values[position].bit_count() >= _MIN_BITS_SET
    return values, known


def hamming(first: str, second: str) -> int:
    """How many bits two signatures differ in."""
    return (int(first, 16) ^ int(second, 16)).bit_count()

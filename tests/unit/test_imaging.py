"""Safe image decoding of untrusted bytes, base64, data URIs and files."""

import base64
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossmodal.media.decoding import (
    ImageDecodeError,
    check_image_bytes,
    check_image_file,
    decode_base64_image,
    decode_image_bytes,
    image_bytes_from_base64,
    load_image_file,
)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions in a few dozen bytes, like a decompression bomb's header."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def pixel(image: Image.Image, xy=(0, 0)) -> tuple:
    return image.getpixel(xy)


RED_PNG = encode(Image.new("RGB", (8, 6), (255, 0, 0)), "PNG")


def test_png_bytes():
    image = decode_image_bytes(RED_PNG)
    assert (image.mode, image.size, pixel(image)) == ("RGB", (8, 6), (255, 0, 0))


def test_jpeg_bytes():
    image = decode_image_bytes(encode(Image.new("RGB", (32, 16), (0, 0, 255)), "JPEG", quality=95))
    assert (image.mode, image.size) == ("RGB", (32, 16))
    red, green, blue = pixel(image, (16, 8))
    assert blue > 240 and red < 15 and green < 15


def test_plain_base64_with_whitespace_and_missing_padding():
    encoded = base64.b64encode(RED_PNG).decode().rstrip("=")
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
    assert pixel(decode_base64_image(f"  {wrapped}\n")) == (255, 0, 0)


def test_data_uri():
    uri = "data:image/png;base64," + base64.b64encode(RED_PNG).decode()
    assert decode_base64_image(uri).size == (8, 6)
    assert image_bytes_from_base64(uri) == RED_PNG


def test_url_safe_base64():
    data = bytes(range(256))  # encodes to every base64 character, '-' and '_' included in the URL-safe alphabet
    assert image_bytes_from_base64(base64.urlsafe_b64encode(data).decode()) == data


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64 at all!", "invalid base64"),
        ("QUJD$RA==", "invalid base64"),
        ("data:image/png,rawdata", "not base64-encoded"),
        ("data:image/png;base64", "missing ','"),
        ("   ", "empty image data"),
    ],
)
def test_invalid_base64(value, message):
    with pytest.raises(ImageDecodeError, match=message):
        image_bytes_from_base64(value)


def test_base64_of_something_else_is_not_an_image():
    with pytest.raises(ImageDecodeError, match=r"not an image \(cannot identify image file"):
        decode_base64_image(base64.b64encode(b"hello, this is text").decode())


def test_base64_over_the_byte_limit_is_refused_before_decoding():
    with pytest.raises(ImageDecodeError, match="image data too large: 750 bytes exceeds the limit of 100"):
        image_bytes_from_base64("A" * 1000, max_bytes=100)


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (0, 255, 0, 255))
    decoded = decode_image_bytes(encode(image, "PNG"))
    assert decoded.mode == "RGB"
    assert [pixel(decoded, (0, 0)), pixel(decoded, (1, 0))] == [(255, 255, 255), (0, 255, 0)]


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    image.putpixel((1, 0), 1)
    decoded = decode_image_bytes(encode(image, "PNG", transparency=0))
    assert [pixel(decoded, (0, 0)), pixel(decoded, (1, 0))] == [(255, 255, 255), (200, 10, 10)]


def test_grey_with_alpha_is_composited_on_white():
    decoded = decode_image_bytes(encode(Image.new("LA", (3, 3), (0, 0)), "PNG"))
    assert pixel(decoded) == (255, 255, 255)


@pytest.mark.parametrize(
    ("mode", "color", "fmt", "expected"),
    [
        ("L", 128, "PNG", (128, 128, 128)),
        ("1", 1, "PNG", (255, 255, 255)),
        ("CMYK", (0, 0, 0, 0), "JPEG", (255, 255, 255)),
        ("RGB", (10, 20, 30), "BMP", (10, 20, 30)),
    ],
)
def test_other_modes_become_rgb(mode, color, fmt, expected):
    decoded = decode_image_bytes(encode(Image.new(mode, (4, 4), color), fmt))
    assert decoded.mode == "RGB"
    assert pixel(decoded) == pytest.approx(expected, abs=2)


def test_16_bit_grey_is_scaled_not_clipped():
    samples = np.array([[0, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(samples), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    decoded = decode_image_bytes(data)
    assert [pixel(decoded, (x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_image_bytes(encode(image, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (20, 40)


@pytest.mark.parametrize("size, orientation, expected", [
    ((4000, 3000), 1, (500, 375)),  # 1/8: the smallest scale that keeps the shorter side >= 256
    ((3000, 4000), 1, (375, 500)),
    ((1000, 700), 1, (500, 350)),  # 1/2 (1/4 would leave 175 < 256)
    ((4000, 3000), 6, (375, 500)),  # rotated for display after the reduced decode
    ((600, 500), 1, (600, 500)),  # not over twice the side: decoded whole
])
def test_a_large_jpeg_is_decoded_at_the_scale_the_model_needs(size, orientation, expected):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.new("RGB", size, (200, 40, 40)), "JPEG", quality=90, exif=exif.tobytes())
    reduced = decode_image_bytes(data, min_side=256)
    assert reduced.size == expected and reduced.mode == "RGB"
    assert decode_image_bytes(data).size == (size if orientation == 1 else size[::-1])  # whole without min_side
    red, green, blue = pixel(reduced, (reduced.width // 2, reduced.height // 2))
    assert red > 180 and green < 60 and blue < 60


def test_other_formats_and_the_limits_are_unaffected_by_min_side():
    png = encode(Image.new("RGB", (1200, 900), (0, 255, 0)), "PNG")
    assert decode_image_bytes(png, min_side=256).size == (1200, 900)
    jpeg = encode(Image.new("RGB", (1200, 900)), "JPEG")
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image_bytes(jpeg, max_pixels=1_000_000, min_side=256)  # the pixel limit reads the full size


def test_a_broken_exif_block_does_not_refuse_the_photo():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    for exif in (b"Exif\0\0II*\0\xff\xff\xff\x7f", b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x02"):
        assert decode_image_bytes(encode(image, "JPEG", exif=exif)).size == (40, 20)


def test_heic_from_a_phone_is_decoded_upright_when_a_decoder_is_installed():
    from crossmodal.media.formats import register_heif

    data = (Path(__file__).parent / "data" / "library_photo.heic").read_bytes()
    if not register_heif():
        pytest.skip("no HEIC decoder installed (pi-heif)")
    decoded = decode_image_bytes(data)
    assert decoded.size == (32, 48) and decoded.mode == "RGB"  # stored 48x32 with orientation 6


def test_truncated_jpeg():
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG")
    with pytest.raises(ImageDecodeError, match="truncated image"):
        decode_image_bytes(data[: len(data) // 2])


def test_zero_bytes():
    with pytest.raises(ImageDecodeError, match="empty image data"):
        decode_image_bytes(b"")


def test_random_bytes():
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image_bytes(np.random.default_rng(0).bytes(4096))


def test_unsupported_format_is_refused():
    with pytest.raises(ImageDecodeError, match="supported formats: JPEG, PNG"):
        decode_image_bytes(encode(Image.new("RGB", (4, 4)), "PCX"))


def test_not_bytes():
    with pytest.raises(ImageDecodeError, match="expected image bytes, got str"):
        decode_image_bytes("/etc/passwd")


def test_decompression_bomb_header_is_refused_before_decoding():
    with pytest.raises(ImageDecodeError, match="image too large"):
        decode_image_bytes(png_header_only(100_000, 100_000))


def test_pixel_limit_of_our_own():
    with pytest.raises(ImageDecodeError, match="image too large: 8000x8000 pixels exceeds the limit of 40000000"):
        decode_image_bytes(png_header_only(8000, 8000))
    with pytest.raises(ImageDecodeError, match="image too large: 8x6 pixels exceeds the limit of 47"):
        decode_image_bytes(RED_PNG, max_pixels=47)
    assert decode_image_bytes(RED_PNG, max_pixels=48).size == (8, 6)


def test_byte_limit():
    with pytest.raises(ImageDecodeError, match=f"image data too large: {len(RED_PNG)} bytes exceeds the limit of 10"):
        decode_image_bytes(RED_PNG, max_bytes=10)


def test_image_decode_error_is_a_value_error():
    assert issubclass(ImageDecodeError, ValueError)


def test_load_image_file(tmp_path):
    path = tmp_path / "red.png"
    path.write_bytes(RED_PNG)
    assert pixel(load_image_file(path)) == (255, 0, 0)
    assert pixel(load_image_file(str(path))) == (255, 0, 0)


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="file not found: .*missing.jpg"):
        load_image_file(tmp_path / "missing.jpg")


def test_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("just some text pretending to be a photo\n")
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image_file(path)


def test_directory_is_not_readable_as_image(tmp_path):
    with pytest.raises(ImageDecodeError, match="cannot read"):
        load_image_file(tmp_path)


def test_large_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(RED_PNG + os.urandom(1000))
    with pytest.raises(ImageDecodeError, match="image file too large: .*big.png is over the limit of 100 bytes"):
        load_image_file(path, max_bytes=100)


def test_non_ascii_base64_is_a_decode_error():
    with pytest.raises(ImageDecodeError, match="invalid base64"):
        image_bytes_from_base64("iVBORw0KGgo\u00e9\u00e9")


# --- header checks without a decode (the gateway's uploads, the dataset readers' files) -----------------------------

@pytest.fixture(params=["bytes", "file"])
def check_header(request, tmp_path):
    """check_image_bytes, or check_image_file on the same bytes written to a file: the same rules either way."""
    def check(data: bytes, **limits):
        if request.param == "bytes":
            return check_image_bytes(data, **limits)
        path = tmp_path / "photo"
        path.write_bytes(data)
        return check_image_file(path, **limits)
    return check


def test_the_header_gives_format_and_size_and_truncated_pixels_pass(check_header):
    data = encode(Image.effect_noise((256, 128), 64).convert("RGB"), "JPEG")
    assert check_header(data) == ("JPEG", (256, 128))
    assert check_header(data[: len(data) // 2]) == ("JPEG", (256, 128))  # found by the one decode, later
    assert check_header(RED_PNG) == ("PNG", (8, 6))


@pytest.mark.parametrize("data, limits, message", [
    (b"", {}, "empty image data"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, {}, "corrupt image|not an image"),
    (encode(Image.new("RGB", (4, 4)), "PCX"), {}, "supported formats: JPEG, PNG"),
    (png_header_only(100_000, 100_000), {}, "image too large"),
    (png_header_only(3000, 3000), {"max_pixels": 1_000_000}, "3000x3000 pixels exceeds the limit of 1000000"),
    (RED_PNG, {"max_bytes": 10}, "too large|limit"),
])
def test_what_the_header_refuses(check_header, data, limits, message):
    with pytest.raises(ImageDecodeError, match=message):
        check_header(data, **limits)


def test_header_check_of_what_is_not_bytes_or_not_a_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="expected image bytes"):
        check_image_bytes("/etc/passwd")  # type: ignore[arg-type]
    with pytest.raises(ImageDecodeError, match="file not found"):
        check_image_file(tmp_path / "missing.jpg")
    with pytest.raises(ImageDecodeError, match="is a directory"):
        check_image_file(tmp_path)


def test_every_size_refusal_is_an_image_too_large_error_and_nothing_else_is(tmp_path):
    """The gateway and the image encoder answer 413 for this one type, 400 for the other refusals."""
    from crossmodal.media.decoding import ImageTooLargeError, read_image_file

    jpeg = encode(Image.new("RGB", (1200, 900)), "JPEG")
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg)
    too_large = [
        lambda: decode_image_bytes(jpeg, max_bytes=100),
        lambda: decode_image_bytes(jpeg, max_pixels=1_000_000),
        lambda: check_image_bytes(png_header_only(30_000, 30_000)),
        lambda: check_image_file(path, max_pixels=1_000_000),
        lambda: read_image_file(path, max_bytes=100),
        lambda: image_bytes_from_base64(base64.b64encode(jpeg).decode(), max_bytes=100),
    ]
    for refusal in too_large:
        with pytest.raises(ImageTooLargeError):
            refusal()
    for other in (b"", b"not an image", jpeg[: len(jpeg) // 2]):
        with pytest.raises(ImageDecodeError) as refused:
            decode_image_bytes(other)
        assert not isinstance(refused.value, ImageTooLargeError)

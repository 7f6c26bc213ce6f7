"""A user's folder full of awkward files: every photo is indexed correctly or skipped and reported; the run
completes."""
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossmodal.index import read_record, stored_ids
from crossmodal.index.ids import caption_doc_id, image_doc_id

REPO_ROOT = Path(__file__).resolve().parents[2]


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def photo(size=(64, 48)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def make_folder(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Returns (photos that must be indexed, photos that must be skipped) mapped to a note."""
    root.mkdir()
    good = {
        "plain.jpg": "ordinary RGB JPEG",
        "cmyk.jpg": "CMYK JPEG",
        "grey16.png": "16-bit greyscale PNG",
        "palette.png": "palette PNG with a transparent colour",
        "rgba.png": "RGBA PNG",
        "rotated.jpg": "EXIF orientation 6",
        "nested/deep.jpg": "in a subfolder",
    }
    bad = {
        "empty.jpg": "zero bytes",
        "noise.jpg": "random bytes",
        "truncated.jpg": "first half of a JPEG",
        "bomb.png": "decompression bomb (20000 x 20000 pixels)",
        "notes.jpg": "a text file named .jpg",
        "missing.jpg": "named in the captions, not on disk",
    }
    (root / "nested").mkdir()
    photo().save(root / "plain.jpg")
    photo().convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).save(root / "grey16.png")
    palette = photo().convert("P")
    palette.info["transparency"] = 0
    palette.save(root / "palette.png", transparency=0)
    photo().convert("RGBA").save(root / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "rotated.jpg").write_bytes(jpeg_bytes(photo((80, 40)), exif=exif))
    photo().save(root / "nested" / "deep.jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    whole = jpeg_bytes(photo((400, 300)), quality=95)
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    Image.new("1", (20000, 20000)).save(root / "bomb.png")
    (root / "notes.jpg").write_text("not a photo at all\n")
    captions = {
        "plain.jpg": ["A plain photo.", "Émile’s café — naïve résumé ☕ 🐈 with a zero-width\u200bspace"],
        "cmyk.jpg": ["ערב טוב, a caption in Hebrew and English", "   "],
        "grey16.png": ["x" * 20000],
        "palette.png": ["A palette image.\twith a tab"],
        "rgba.png": ["An image with an alpha channel"],
        "rotated.jpg": ["A photo taken sideways"],
        "nested/deep.jpg": ["A photo in a subfolder"],
    }
    captions.update({name: [f"caption of {name}"] for name in bad})
    with (root / "captions.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image", "caption"])
        for name, lines in captions.items():
            for line in lines:
                writer.writerow([name, line])
        file.write("\n\n")
    return good, bad


@pytest.mark.slow
def test_every_awkward_file_is_indexed_or_reported(tmp_path):
    good, bad = make_folder(tmp_path / "photos")
    workspace = tmp_path / "workspace"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py"), "-t", "index", "-d", "folder",
         "--data-dir", str(tmp_path / "photos"),
         "--workspace", str(workspace), "-b", "4"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"indexed {len(good)} images" in result.stdout, result.stdout
    for name in bad:
        assert name in result.stdout, f"{name} ({bad[name]}) not reported:\n{result.stdout}"

    pair_ids = {name: f"folder/photos/{name}" for name in {**good, **bad}}
    images = stored_ids(workspace / "image_index")
    assert images == {image_doc_id(pair_ids[name]) for name in good}
    # Captions of skipped photos are not indexed: no caption may point at a photo that is not there.
    captions = stored_ids(workspace / "text_index")
    assert all(read_record(workspace / "text_index", doc_id).tags["image_id"] in images for doc_id in captions)
    assert caption_doc_id(pair_ids["plain.jpg"], 1) in captions
    stored = read_record(workspace / "text_index", caption_doc_id(pair_ids["plain.jpg"], 1))
    assert stored.text == "Émile’s café — naïve résumé ☕ 🐈 with a zero-width\u200bspace"
    assert read_record(workspace / "text_index", caption_doc_id(pair_ids["grey16.png"], 0)).text == "x" * 20000

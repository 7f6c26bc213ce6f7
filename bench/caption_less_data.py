"""Caption-less photo sets (issue 21): the calibration set that fits `text->image+no_text`, and the held-out test set.

Both are photos with no captions, as a user's own folder is. Neither holds a demo photo, and they share no photo
(`overlaps` checks it on the pixels, by perceptual hash; bench/caption_less_report.py refuses to report otherwise):

- calibration (bench/relevance/caption_less_calibration.json): photos that ship in Debian packages
  (mate-backgrounds, plasma-workspace-wallpapers: real photos, as a user's folder holds, no illustrations), one of
  scikit-image's sample photos that is not a demo photo, and a few compositions drawn here with PIL. Labelled like
  the demo's text->image calibration set: each query against all the photos (one true match), against the photos
  without its own (leave-one-out: unanswerable), and the unanswerable queries against all the photos; the DEPTH
  best matches by cosine, the distribution over all. Without the packages (`apt-get install` the file's
  `packages`) the mapping cannot be refitted: `available` says so, and tests/unit/test_offline_calibration.py then
  checks the demo mappings only.
- held-out test (bench/relevance/caption_less_heldout.json): real photos of plasma-workspace-wallpapers and
  mate-backgrounds, copied by `build_heldout` under camera-style names into three folders, with a resized `_small`
  copy, a byte `copy` and an `edit`. Not committed (the wallpapers are 1-6 MB each); bench/caption_less_report.py
  indexes them and asks the gateway's ranking and relevance code for its answers.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance
from relevance_data import DATA, DEPTH, MODEL, QuerySet, labelled

from crossmodal.library.perceptual_hash import hamming, image_signature
from dataset import DemoReader

CALIBRATION = DATA / "caption_less_calibration.json"
HELDOUT = DATA / "caption_less_heldout.json"
PLASMA_WALLPAPERS = Path("/usr/share/wallpapers")  # plasma-workspace-wallpapers
DEBIAN_BACKGROUNDS = Path("/usr/share/backgrounds")  # mate-backgrounds (mate/...)
MAX_SIDE = 2048  # the copies of the wallpapers are re-encoded as JPEG at most this wide, as a phone's photo is
SMALL_SIDE = 320
COPY_KINDS = ("copy", "small", "edit")  # held-out files made from another held-out file
# Perceptual hashes this close (of 64 bits) are the same photo: a resized copy is 0 bits from its photo, an edit as
# `build_heldout` makes one (5 % cropped a side, brighter) 14; the nearest two different photos of the sets and the
# demo are 18 apart.
SAME_PHOTO_BITS = 15


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source_path(source: str) -> Path | None:
    """The file of a `<package>:<name>` source (None for a composition)."""
    package, _, name = source.partition(":")
    if package == "compose":
        return None
    if package == "skimage":
        import skimage

        return Path(skimage.__file__).parent / "data" / name
    if package == "debian":
        return DEBIAN_BACKGROUNDS / name
    if package == "plasma":
        images = PLASMA_WALLPAPERS / name / "contents" / "images"
        if not images.is_dir():
            return images / "missing"
        return max((p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                   key=lambda p: (p.stat().st_size < 8_000_000, p.stat().st_size))
    raise ValueError(f"unknown photo source {source!r}")


def photo_sources(path: Path) -> list[str]:
    """The photos' sources of a set (CALIBRATION, or HELDOUT without its copies of its own photos)."""
    data = read(path)
    if "photos" in data:
        return [photo["source"] for photo in data["photos"].values()]
    return [source for source in data["files"].values() if source.partition(":")[0] not in COPY_KINDS]


def available(path: Path) -> bool:
    """Whether every photo of a set (CALIBRATION or HELDOUT) is on this machine."""
    return all(file is None or file.is_file() for file in map(source_path, photo_sources(path)))


def overlaps() -> list[tuple[str, str]]:
    """Pairs of photos that are the same photo (perceptual hashes within SAME_PHOTO_BITS) across the calibration
    set, the held-out set and the demo: empty when the three are disjoint, as the fit and the report need."""
    signatures: dict[str, str] = {}
    for name, path in (("calibration", CALIBRATION), ("held-out", HELDOUT)):
        for source in photo_sources(path):
            signatures[f"{name} {source}"] = image_signature(package_photo(source))
    with tempfile.TemporaryDirectory() as workspace:
        for item in DemoReader(Path(workspace)):
            with Image.open(item.image_path) as image:
                signatures[f"demo {item.image_path.name}"] = image_signature(image.convert("RGB"))
    names = sorted(signatures)
    return [(first, second) for i, first in enumerate(names) for second in names[i + 1:]
            if first.split()[0] != second.split()[0]
            and hamming(signatures[first], signatures[second]) <= SAME_PHOTO_BITS]


def package_photo(source: str) -> Image.Image:
    """An RGB photo from `<package>:<name>` (skimage, debian, plasma) or `compose:<name>`."""
    path = source_path(source)
    if path is None:
        return compose(source.partition(":")[2])
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: apt-get install {' '.join(read(CALIBRATION)['packages'])}")
    with Image.open(path) as image:
        return image.convert("RGB")


def compose(name: str) -> Image.Image:
    """A few deterministic compositions, for shapes and colours the packages' photos lack."""
    image = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(image)
    if name == "circle":
        draw.rectangle((0, 0, 640, 480), fill=(40, 70, 170))
        draw.ellipse((220, 140, 420, 340), fill=(210, 30, 30))
    elif name == "stripes":
        for x in range(0, 640, 80):
            draw.rectangle((x, 0, x + 39, 480), fill="black")
    elif name == "sunset":
        for y in range(300):
            draw.line((0, y, 640, y), fill=(255, 120 + y // 4, 40 + y // 6))
        draw.ellipse((260, 220, 380, 340), fill=(255, 200, 60))
        draw.rectangle((0, 300, 640, 480), fill=(20, 30, 60))
    elif name == "checkerboard":
        for row in range(8):
            for column in range(8):
                if (row + column) % 2:
                    draw.rectangle((column * 80, row * 60, column * 80 + 79, row * 60 + 59), fill="black")
    else:
        raise ValueError(f"unknown composition {name!r}")
    return image


@dataclass
class CaptionLessCalibration:
    """The calibration photos encoded by the offline model, and their labelled text->image queries."""

    photos: list[str]
    images: np.ndarray
    query_texts: list[str]
    owners: list[str]
    unanswerable: list[str]
    vectors: np.ndarray
    unanswerable_vectors: np.ndarray

    @classmethod
    def encode(cls, backend=None) -> CaptionLessCalibration:
        if backend is None:
            from crossmodal.backends import create_backend

            backend = create_backend(MODEL, towers=("image", "text"))
        data = read(CALIBRATION)
        photos = list(data["photos"])
        images = backend.encode_images([package_photo(data["photos"][name]["source"]) for name in photos])
        texts = [(name, text) for name in photos for text in data["photos"][name]["queries"]]
        unanswerable = list(data["unanswerable"])
        return cls(photos, images, [t for _, t in texts], [n for n, _ in texts], unanswerable,
                   backend.encode_texts([t for _, t in texts]), backend.encode_texts(unanswerable))

    def query_sets(self) -> list[QuerySet]:
        """Answerable, leave-one-out and unanswerable queries (DEPTH matches each, distribution over the index)."""
        answerable, left_out = [], []
        for vector, owner in zip(self.vectors, self.owners):
            answerable.append(labelled(vector, self.images, [photo == owner for photo in self.photos]))
            keep = [i for i, photo in enumerate(self.photos) if photo != owner]
            left_out.append(labelled(vector, self.images[keep], [False] * len(keep)))
        unanswerable = [labelled(vector, self.images, [False] * len(self.photos))
                        for vector in self.unanswerable_vectors]
        return [QuerySet(self.query_texts, answerable),
                QuerySet([f"{t} (without {o})" for t, o in zip(self.query_texts, self.owners)], left_out),
                QuerySet(self.unanswerable, unanswerable)]


def caption_less_description() -> str:
    """What the `+no_text` mapping was fitted on, with the data's counts."""
    data = read(CALIBRATION)
    queries = sum(len(photo["queries"]) for photo in data["photos"].values())
    return (f"text->image+no_text (photos without captions): the caption-less calibration set "
            f"(bench/relevance/caption_less_calibration.json): {len(data['photos'])} photos of Debian packages and "
            f"scikit-image, and PIL compositions (not the demo, not the held-out caption-less set), {queries} queries "
            f"each against all photos and against the photos without its own (leave-one-out), and "
            f"{len(data['unanswerable'])} unanswerable queries; top {DEPTH} matches by cosine, distribution over the "
            f"whole index")


def build_heldout(folder: Path) -> list[str]:
    """Copy the held-out photos under their camera-style names into `folder` (emptied first); the files made."""
    files = read(HELDOUT)["files"]
    if folder.exists():
        shutil.rmtree(folder)
    for name, source in files.items():  # the copies' sources come before them in the file
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        kind, _, rest = source.partition(":")
        if kind == "copy":
            shutil.copyfile(folder / rest, target)
            continue
        if kind in COPY_KINDS[1:]:
            with Image.open(folder / rest) as original:
                image = original.convert("RGB")
            if kind == "small":
                image.thumbnail((SMALL_SIDE, SMALL_SIDE))
            else:
                width, height = image.size
                image = ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(1.12)).enhance(1.1)
                image = image.crop((width // 20, height // 20, width - width // 20, height - height // 20))
        else:
            image = package_photo(source)
            image.thumbnail((MAX_SIDE, MAX_SIDE))
        image.save(target, "JPEG", quality=90)
    return list(files)

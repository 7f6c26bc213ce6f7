"""Caption-less photo sets (issue 21): the calibration set that fits `text->image+no_text`, and the held-out test set.

Both are photos with no captions, as a user's own folder is. Neither holds a demo photo, and they share no photo:

- calibration (bench/relevance/caption_less_calibration.json): photos that ship with the venv's packages
  (scikit-image's skimage.data, scikit-learn's sample images, matplotlib's sample data) and a few compositions
  drawn here with PIL, so the shipped calibration can be refitted on any machine with the venv (the unit test
  tests/unit/test_offline_calibration.py does). Labelled like the demo's text->image calibration set: each query
  against all the photos (one true match), against the photos without its own (leave-one-out: unanswerable), and
  the unanswerable queries against all the photos; the DEPTH best matches by cosine, the distribution over all.
- held-out test (bench/relevance/caption_less_heldout.json): real photos of Debian's plasma-workspace-wallpapers
  package (`apt-get install plasma-workspace-wallpapers`) and three of skimage.data's, copied by `build_heldout`
  under camera-style names into three folders, with a resized `_small` copy, a byte `copy` and an `edit`. Not
  committed (the wallpapers are 1-6 MB each); bench/caption_less_report.py indexes it as a plain folder library
  and queries it through the HTTP API.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance
from relevance_data import DATA, DEPTH, MODEL, QuerySet, labelled

CALIBRATION = DATA / "caption_less_calibration.json"
HELDOUT = DATA / "caption_less_heldout.json"
PLASMA_WALLPAPERS = Path("/usr/share/wallpapers")
MAX_SIDE = 2048  # the copies of the wallpapers are re-encoded as JPEG at most this wide, as a phone's photo is
SMALL_SIDE = 320


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def package_photo(source: str) -> Image.Image:
    """An RGB photo from `<package>:<name>` (skimage, sklearn, matplotlib, plasma) or `compose:<name>`."""
    package, _, name = source.partition(":")
    if package == "compose":
        return compose(name)
    if package == "skimage":
        import skimage

        path = Path(skimage.__file__).parent / "data" / name
    elif package == "sklearn":
        import sklearn

        path = Path(sklearn.__file__).parent / "datasets" / "images" / name
    elif package == "matplotlib":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / name
    elif package == "plasma":
        images = PLASMA_WALLPAPERS / name / "contents" / "images"
        if not images.is_dir():
            raise FileNotFoundError(f"{images} is missing: apt-get install plasma-workspace-wallpapers")
        path = max((p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                   key=lambda p: (p.stat().st_size < 8_000_000, p.stat().st_size))
    else:
        raise ValueError(f"unknown photo source {source!r}")
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

    @classmethod
    def encode(cls, backend=None) -> CaptionLessCalibration:
        if backend is None:
            from crossmodal.backends import create_backend

            backend = create_backend(MODEL, towers=("image", "text"))
        data = read(CALIBRATION)
        photos = list(data["photos"])
        images = backend.encode_images([package_photo(data["photos"][name]["source"]) for name in photos])
        texts = [(name, text) for name in photos for text in data["photos"][name]["queries"]]
        calibration = cls(photos, images, [t for _, t in texts], [n for n, _ in texts], list(data["unanswerable"]))
        calibration._vectors = backend.encode_texts(calibration.query_texts)  # type: ignore[attr-defined]
        calibration._unanswerable_vectors = backend.encode_texts(calibration.unanswerable)  # type: ignore[attr-defined]
        return calibration

    def query_sets(self) -> list[QuerySet]:
        """Answerable, leave-one-out and unanswerable queries (DEPTH matches each, distribution over the index)."""
        answerable, left_out = [], []
        for vector, owner in zip(self._vectors, self.owners):  # type: ignore[attr-defined]
            answerable.append(labelled(vector, self.images, [photo == owner for photo in self.photos]))
            keep = [i for i, photo in enumerate(self.photos) if photo != owner]
            left_out.append(labelled(vector, self.images[keep], [False] * len(keep)))
        unanswerable = [labelled(vector, self.images, [False] * len(self.photos))
                        for vector in self._unanswerable_vectors]  # type: ignore[attr-defined]
        return [QuerySet(self.query_texts, answerable),
                QuerySet([f"{t} (without {o})" for t, o in zip(self.query_texts, self.owners)], left_out),
                QuerySet(self.unanswerable, unanswerable)]


def caption_less_description() -> str:
    """What the `+no_text` mapping was fitted on, with the data's counts."""
    data = read(CALIBRATION)
    queries = sum(len(photo["queries"]) for photo in data["photos"].values())
    return (f"text->image+no_text (photos without captions): the caption-less calibration set "
            f"(bench/relevance/caption_less_calibration.json): {len(data['photos'])} photos from the venv's packages "
            f"and PIL compositions (not the demo, not the held-out caption-less set), {queries} queries each against "
            f"all photos and against the photos without its own (leave-one-out), and {len(data['unanswerable'])} "
            f"unanswerable queries; top {DEPTH} matches by cosine, distribution over the whole index")


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
        if kind in ("small", "edit"):
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

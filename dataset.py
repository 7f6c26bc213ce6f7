"""Dataset readers: yield image/caption pairs with a stable pair id and split.

Every source (the built-in demo, Flickr8k, Flickr30k, a user's folder) is read into the same
`ImageCaptions` records so indexing and evaluation never care where the data came from. Readers are
lazy and never fatal on bad items: a missing or unreadable image is recorded in `skipped` and the
rest is still read.
"""

from __future__ import annotations

import csv
import importlib.resources
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from crossmodal.media.decoding import ImageDecodeError, check_image_file
from crossmodal.unicode_text import invalid_unicode

SPLITS = ("train", "val", "test", "restval")
NO_SPLIT = "all"  # the split of an item whose source says nothing about splits
DATASETS = ("demo", "f8k", "f30k", "folder")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEMO_MANIFEST = Path(__file__).resolve().parent / "demo" / "manifest.json"

F8K_LAYOUT = (
    "expected the Kaggle Flickr8k layout: <dir>/captions.txt (CSV, header 'image,caption') and "
    "<dir>/Images/*.jpg (or images/*.jpg); optional <dir>/dataset_flickr8k.json (Karpathy splits)"
)
F30K_LAYOUT = (
    "expected <dir>/dataset_flickr30k.json (Karpathy format) and the images in <dir>/images/ "
    "(or <dir>/flickr30k_images/, as in the Kaggle copy)"
)
FOLDER_LAYOUT = (
    "expected a folder of images (subfolders allowed), optionally with <dir>/captions.csv (header "
    "'image,caption' and optional 'split', one caption per line) or <dir>/captions.json "
    "({\"image.jpg\": [\"caption\", ...]}), image paths relative to the folder"
)


@dataclass(frozen=True)
class ImageCaptions:
    """One image with all of its captions: the unit that gets an image doc and caption docs."""

    pair_id: str
    image_path: Path
    captions: tuple[str, ...]
    dataset: str
    split: str


@dataclass(frozen=True)
class Skipped:
    """An item left out while reading, kept so the CLI can report it instead of hiding it."""

    item: str
    reason: str


def _clean_captions(captions: list[str]) -> tuple[str, ...]:
    stripped = (caption.strip() for caption in captions)
    return tuple(caption for caption in stripped if caption)


def _image_problem(path: Path) -> str | None:
    """Cheap header-level check, without decoding the pixels (`crossmodal.media.decoding.check_image_file`: byte count,
    format, dimensions, decompression bomb); truncated or corrupt pixel data is caught by the one full decode, in the
    encoder, which reports it per photo."""
    reason = invalid_unicode(str(path))
    if reason:
        return f"file name is {reason}"
    if not path.is_file():
        return "image file missing"
    try:
        check_image_file(path)
    except ImageDecodeError as exc:
        return f"image unreadable: {exc}"
    except Exception as exc:  # PIL raises many types for bad headers; all mean "unreadable"
        return f"image unreadable: {exc}"
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def _require_dir(path: Path, layout: str) -> None:
    if not path.is_dir():
        raise ValueError(f"data directory {path} does not exist; {layout}")


def _first_existing_dir(root: Path, names: tuple[str, ...], layout: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise ValueError(f"no images folder in {root} (looked for {', '.join(names)}); {layout}")


def _karpathy_splits(path: Path) -> dict[str, str]:
    """Map image path (filepath/filename) -> split from a Karpathy-format JSON."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path} is not in Karpathy format: no 'images' list")
    return {
        _karpathy_path(entry): entry.get("split", NO_SPLIT)
        for entry in data["images"]
        if isinstance(entry, dict) and entry.get("filename")
    }


def _karpathy_path(entry: dict[str, Any]) -> str:
    filename = str(entry["filename"])
    return f"{entry['filepath']}/{filename}" if entry.get("filepath") else filename


class DatasetReader:
    """Base reader: subclasses implement `_items`; this class filters splits and checks images."""

    name: str = ""

    def __init__(self, split: str | None = None) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        self.split = split
        self.skipped: list[Skipped] = []

    def __iter__(self) -> Iterator[ImageCaptions]:
        """Yield readable items of the requested split in a stable order; restarts `skipped`."""
        self.skipped = []
        for item in self._items():
            if self.split is not None and item.split != self.split:
                continue
            problem = _image_problem(item.image_path)
            if problem:
                self._skip(item.pair_id.encode("utf-8", "backslashreplace").decode(), problem)
                continue
            yield self._without_invalid_captions(item)

    def _without_invalid_captions(self, item: ImageCaptions) -> ImageCaptions:
        """Drop (and report) captions that no index can store: text that is not valid Unicode."""
        kept = []
        for number, caption in enumerate(item.captions):
            reason = invalid_unicode(caption)
            if reason:
                self._skip(f"{item.pair_id} caption {number + 1}", f"caption is {reason}")
            else:
                kept.append(caption)
        return item if len(kept) == len(item.captions) else replace(item, captions=tuple(kept))

    def _items(self) -> Iterator[ImageCaptions]:
        """All items of the source, sorted, images not yet checked."""
        raise NotImplementedError

    def _skip(self, item: str, reason: str) -> None:
        self.skipped.append(Skipped(item, reason))

    def _check_split_value(self, item: str, value: str) -> str | None:
        if value in SPLITS:
            return value
        self._skip(item, f"unknown split {value!r} (expected one of {', '.join(SPLITS)})")
        return None


_QUOTED_FIELD = re.compile(r'^"(?:[^"]|"")*"$')


def parse_f8k_line(line: str) -> tuple[str, str] | None:
    """Split a captions.txt line on its FIRST comma; unquote a CSV-quoted caption.

    Captions contain commas and quotes, so a plain CSV reader misreads unquoted lines; a caption
    is only unquoted when the whole field is a well-formed CSV quoted string.
    """
    image, sep, caption = line.rstrip("\r\n").partition(",")
    if not sep:
        return None
    caption = caption.strip()
    if _QUOTED_FIELD.match(caption):
        caption = caption[1:-1].replace('""', '"')
    return image.strip(), caption


class Flickr8kReader(DatasetReader):
    """Kaggle Flickr8k: captions.txt + Images/; splits from an optional Karpathy JSON.

    With `dataset_flickr8k.json` present, each image gets its Karpathy split and images the JSON
    does not list get "all" (they belong to no standard split, so split filters exclude them).
    Without it every image is "all" and asking for a split is an error.
    """

    name = "f8k"

    def __init__(self, data_dir: Path, split: str | None = None) -> None:
        super().__init__(split)
        _require_dir(data_dir, F8K_LAYOUT)
        self.captions_file = data_dir / "captions.txt"
        if not self.captions_file.is_file():
            raise ValueError(f"missing {self.captions_file}; {F8K_LAYOUT}")
        self.images_dir = _first_existing_dir(data_dir, ("Images", "images"), F8K_LAYOUT)
        splits_file = data_dir / "dataset_flickr8k.json"
        self.splits = _karpathy_splits(splits_file) if splits_file.is_file() else None
        if split is not None and self.splits is None:
            raise ValueError(
                f"split {split!r} requested but {data_dir} has no split information; "
                f"add the Karpathy split file {splits_file.name} to {data_dir}"
            )

    def _items(self) -> Iterator[ImageCaptions]:
        captions: dict[str, list[str]] = {}
        with self.captions_file.open(encoding="utf-8-sig", newline="") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip() or (number == 1 and line.strip().lower() == "image,caption"):
                    continue
                parsed = parse_f8k_line(line)
                if parsed is None or not parsed[0]:
                    self._skip(f"captions.txt line {number}", "expected 'image,caption'")
                    continue
                captions.setdefault(parsed[0], []).append(parsed[1])
        for image in sorted(captions):
            split = NO_SPLIT if self.splits is None else self.splits.get(image, NO_SPLIT)
            if split != NO_SPLIT and not self._check_split_value(image, split):
                continue
            cleaned = _clean_captions(captions[image])
            if not cleaned:
                self._skip(image, "no captions")
                continue
            yield ImageCaptions(f"f8k/{image}", self.images_dir / image, cleaned, "f8k", split)


class Flickr30kReader(DatasetReader):
    """Flickr30k (or any Karpathy-format JSON): images/, dataset_flickr30k.json with splits."""

    name = "f30k"

    def __init__(self, data_dir: Path, split: str | None = None) -> None:
        super().__init__(split)
        _require_dir(data_dir, F30K_LAYOUT)
        self.json_file = data_dir / "dataset_flickr30k.json"
        if not self.json_file.is_file():
            raise ValueError(f"missing {self.json_file}; {F30K_LAYOUT}")
        self.images_dir = _first_existing_dir(
            data_dir,
            ("images", "flickr30k_images/flickr30k_images", "flickr30k_images"),
            F30K_LAYOUT,
        )

    def _items(self) -> Iterator[ImageCaptions]:
        data = _read_json(self.json_file)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(f"{self.json_file} is not in Karpathy format: no 'images' list")
        entries: dict[str, dict[str, Any]] = {}
        for position, entry in enumerate(data["images"]):
            if not isinstance(entry, dict) or not entry.get("filename"):
                self._skip(f"images[{position}]", "entry has no filename")
                continue
            entries[_karpathy_path(entry)] = entry
        for image in sorted(entries):
            entry = entries[image]
            split = self._check_split_value(image, str(entry.get("split")))
            if split is None:
                continue
            sentences = entry.get("sentences") or []
            raw = [str(s.get("raw", "")) for s in sentences if isinstance(s, dict)]
            cleaned = _clean_captions(raw)
            if not cleaned:
                self._skip(image, "no captions")
                continue
            yield ImageCaptions(f"f30k/{image}", self.images_dir / image, cleaned, "f30k", split)


def _relative_image_path(name: str) -> str | None:
    """Normalise a captions-file image path; None when it is absolute or leaves the folder."""
    path = PurePosixPath(name.strip().replace("\\", "/"))
    if not path.parts or path.is_absolute() or ".." in path.parts:
        return None
    return path.as_posix()


class FolderReader(DatasetReader):
    """A user's folder: every image in it, with captions from captions.csv or captions.json if it has one.

    Images without captions are still yielded (with no captions): they remain findable by text.
    Captions naming a missing image are skipped. Pair ids include the folder's name (`library`), so two
    folders indexed into one workspace do not collide and moving a folder keeps its ids.

    A folder without a captions file is a plain photo library (`is_library`): `-t index` syncs it with
    `serving.jobs.sync` (content-derived ids, crossmodal/library/) instead of iterating this reader; iterating it
    still yields every image with no captions.
    """

    name = "folder"

    def __init__(self, data_dir: Path, split: str | None = None) -> None:
        super().__init__(split)
        _require_dir(data_dir, FOLDER_LAYOUT)
        self.root = data_dir.resolve()
        csv_file, json_file = data_dir / "captions.csv", data_dir / "captions.json"
        if csv_file.is_file() and json_file.is_file():
            raise ValueError(f"both {csv_file} and {json_file} exist; keep only one")
        self.captions_file: Path | None = (
            csv_file if csv_file.is_file() else json_file if json_file.is_file() else None
        )
        if split is not None and not self._has_split_column():
            where = self.captions_file or f"{data_dir} (no captions file)"
            raise ValueError(
                f"split {split!r} requested but {where} has no split information "
                "(add a 'split' column to captions.csv)"
            )

    @property
    def library(self) -> str:
        """The library name: the folder's name, as in the pair ids."""
        return self.root.name

    @property
    def is_library(self) -> bool:
        """No captions file: a plain photo folder, indexed as a synced library."""
        return self.captions_file is None

    def _has_split_column(self) -> bool:
        if self.captions_file is None or self.captions_file.suffix != ".csv":
            return False
        with self.captions_file.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
        return "split" in (column.strip().lower() for column in header)

    def _items(self) -> Iterator[ImageCaptions]:
        captions: dict[str, list[str]]
        splits: dict[str, str]
        if self.captions_file is None:
            captions, splits = {}, {}
        elif self.captions_file.suffix == ".csv":
            captions, splits = self._read_csv()
        else:
            captions, splits = self._read_json(), {}
        on_disk = {
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES
            and path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(self.root).parts)
        }
        prefix = f"folder/{self.root.name}"
        for image in sorted(on_disk | captions.keys()):
            yield ImageCaptions(
                f"{prefix}/{image}",
                self.root / image,
                _clean_captions(captions.get(image, [])),
                "folder",
                splits.get(image, NO_SPLIT),
            )

    def _read_csv(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Captions and splits per image; a line contradicting an earlier split is skipped."""
        assert self.captions_file is not None
        captions: dict[str, list[str]] = {}
        splits: dict[str, str] = {}
        with self.captions_file.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            if "image" not in columns or "caption" not in columns:
                raise ValueError(
                    f"{self.captions_file} needs a header with 'image' and 'caption' columns, "
                    f"found {reader.fieldnames}"
                )
            for row in reader:
                where = f"captions.csv line {reader.line_num}"
                image = _relative_image_path(row.get(columns["image"]) or "")
                if image is None:
                    self._skip(where, "image path empty, absolute or outside the folder")
                    continue
                split = (row.get(columns.get("split", ""), "") or "").strip().lower()
                if split and not self._check_split_value(where, split):
                    continue
                if split and splits.setdefault(image, split) != split:
                    self._skip(where, f"split {split!r} contradicts earlier {splits[image]!r}")
                    continue
                captions.setdefault(image, []).append(row.get(columns["caption"]) or "")
        return captions, splits

    def _read_json(self) -> dict[str, list[str]]:
        assert self.captions_file is not None
        data = _read_json(self.captions_file)
        if not isinstance(data, dict):
            raise ValueError(f"{self.captions_file} must map image paths to lists of captions")
        captions: dict[str, list[str]] = {}
        for name, value in data.items():
            image = _relative_image_path(name)
            if image is None:
                self._skip(name, "image path empty, absolute or outside the folder")
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self._skip(name, "captions must be a list of strings")
            else:
                captions.setdefault(image, []).extend(value)
        return captions


# The demo loaders are a fixed whitelist: the manifest names a loader, never code to run.
_SKIMAGE_CALLS = frozenset(
    {
        "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
        "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
        "stereo_motorcycle", "text",
    }
)
_PACKAGE_FILES = {
    "sklearn": frozenset({"china.jpg", "flower.jpg"}),
    "matplotlib": frozenset({"grace_hopper.jpg"}),
}


def _package_file(package: str, filename: str) -> Path:
    if package == "sklearn":
        return Path(str(importlib.resources.files("sklearn.datasets.images") / filename))
    from matplotlib import cbook

    return Path(cbook.get_sample_data(filename, asfileobj=False))


def _demo_target(photo: dict[str, Any], images_dir: Path) -> Path:
    loader = photo["loader"]
    if loader.get("package") == "skimage" and loader.get("call") in _SKIMAGE_CALLS:
        return images_dir / f"{photo['name']}.png"
    if loader.get("file") in _PACKAGE_FILES.get(loader.get("package"), ()):
        return images_dir / f"{photo['name']}{Path(loader['file']).suffix}"
    raise ValueError(f"demo photo {photo.get('name')!r}: loader {loader} is not in the whitelist")


def _write_demo_image(loader: dict[str, str], target: Path) -> None:
    """Write the photo to a temporary file beside `target`, then rename: readers never see half."""
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=target.suffix)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        if loader["package"] == "skimage":
            import skimage.data

            pixels = getattr(skimage.data, loader["call"])()
            if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
                pixels = pixels[0]
            Image.fromarray(pixels).convert("RGB").save(tmp, format="PNG")
        else:
            shutil.copyfile(_package_file(loader["package"], loader["file"]), tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class DemoReader(DatasetReader):
    """The built-in demo: photos shipped inside installed wheels, so it works with no network.

    Images are materialised once into <workspace>/demo_images/ and reused afterwards.
    """

    name = "demo"

    def __init__(self, workspace: Path, split: str | None = None) -> None:
        super().__init__(split)
        self.images_dir = workspace / "demo_images"
        manifest = _read_json(DEMO_MANIFEST)
        self.photos: list[dict[str, Any]] = manifest["photos"]

    def _items(self) -> Iterator[ImageCaptions]:
        self.images_dir.mkdir(parents=True, exist_ok=True)
        for photo in sorted(self.photos, key=lambda p: p["name"]):
            target = _demo_target(photo, self.images_dir)
            if not target.is_file():
                try:
                    _write_demo_image(photo["loader"], target)
                except (ImportError, OSError, ValueError) as exc:
                    self._skip(photo["name"], f"cannot load from its package: {exc}")
                    continue
            captions = _clean_captions(photo["captions"])
            yield ImageCaptions(f"demo/{target.name}", target, captions, "demo", "test")


def open_dataset(
    name: str,
    data_dir: str | Path | None = None,
    workspace: str | Path = "workspace",
    split: str | None = None,
) -> DatasetReader:
    """Open a reader by dataset name; data_dir defaults to data/<name> (the demo ignores it)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if name == "demo":
        return DemoReader(Path(workspace), split)
    if data_dir is None:
        if name == "folder":
            raise ValueError(f"the folder dataset needs a data directory; {FOLDER_LAYOUT}")
        data_dir = Path("data") / name
    readers = {"f8k": Flickr8kReader, "f30k": Flickr30kReader, "folder": FolderReader}
    return readers[name](Path(data_dir), split)

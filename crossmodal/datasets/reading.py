"""What every reader yields and how it checks: `ImageCaptions` (one image with its captions, a stable pair id and
a split), `Skipped` items with their reason, and `DatasetReader`, which filters the split and checks each image's
header so that a bad item is reported and the rest still read.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crossmodal.media.decoding import ImageDecodeError, check_image_file
from crossmodal.media.text import invalid_unicode

SPLITS = ("train", "val", "test", "restval")
NO_SPLIT = "all"  # the split of an item whose source says nothing about splits


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


def clean_captions(captions: list[str]) -> tuple[str, ...]:
    stripped = (caption.strip() for caption in captions)
    return tuple(caption for caption in stripped if caption)


def image_problem(path: Path) -> str | None:
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


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def require_dir(path: Path, layout: str) -> None:
    if not path.is_dir():
        raise ValueError(f"data directory {path} does not exist; {layout}")


def first_existing_dir(root: Path, names: tuple[str, ...], layout: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise ValueError(f"no images folder in {root} (looked for {', '.join(names)}); {layout}")


class DatasetReader:
    """Base reader: subclasses implement `_items`; this class filters splits and checks images."""

    name: str = ""

    @property
    def is_library(self) -> bool:
        """Whether the source is a plain photo folder that `-t index` syncs as a library (`FolderReader` without a
        captions file) rather than a set of image/caption pairs that it indexes as read."""
        return False

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
            problem = image_problem(item.image_path)
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

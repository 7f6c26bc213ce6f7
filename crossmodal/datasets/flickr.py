"""Flickr8k (the Kaggle layout: captions.txt, Images/) and Flickr30k (Karpathy's dataset_flickr30k.json), with
Karpathy's splits where the file is there. shared/reference/datasets.md has the published formats.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .reading import NO_SPLIT, DatasetReader, ImageCaptions, clean_captions, first_existing_dir, read_json, require_dir

F8K_LAYOUT = (
    "expected the Kaggle Flickr8k layout: <dir>/captions.txt (CSV, header 'image,caption') and "
    "<dir>/Images/*.jpg (or images/*.jpg); optional <dir>/dataset_flickr8k.json (Karpathy splits)"
)
F30K_LAYOUT = (
    "expected <dir>/dataset_flickr30k.json (Karpathy format) and the images in <dir>/images/ "
    "(or <dir>/flickr30k_images/, as in the Kaggle copy)"
)


def _karpathy_splits(path: Path) -> dict[str, str]:
    """Map image path (filepath/filename) -> split from a Karpathy-format JSON."""
    data = read_json(path)
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
        require_dir(data_dir, F8K_LAYOUT)
        self.captions_file = data_dir / "captions.txt"
        if not self.captions_file.is_file():
            raise ValueError(f"missing {self.captions_file}; {F8K_LAYOUT}")
        self.images_dir = first_existing_dir(data_dir, ("Images", "images"), F8K_LAYOUT)
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
            cleaned = clean_captions(captions[image])
            if not cleaned:
                self._skip(image, "no captions")
                continue
            yield ImageCaptions(f"f8k/{image}", self.images_dir / image, cleaned, "f8k", split)


class Flickr30kReader(DatasetReader):
    """Flickr30k (or any Karpathy-format JSON): images/, dataset_flickr30k.json with splits."""

    name = "f30k"

    def __init__(self, data_dir: Path, split: str | None = None) -> None:
        super().__init__(split)
        require_dir(data_dir, F30K_LAYOUT)
        self.json_file = data_dir / "dataset_flickr30k.json"
        if not self.json_file.is_file():
            raise ValueError(f"missing {self.json_file}; {F30K_LAYOUT}")
        self.images_dir = first_existing_dir(
            data_dir,
            ("images", "flickr30k_images/flickr30k_images", "flickr30k_images"),
            F30K_LAYOUT,
        )

    def _items(self) -> Iterator[ImageCaptions]:
        data = read_json(self.json_file)
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
            cleaned = clean_captions(raw)
            if not cleaned:
                self._skip(image, "no captions")
                continue
            yield ImageCaptions(f"f30k/{image}", self.images_dir / image, cleaned, "f30k", split)

"""A user's folder: every image in it, with captions from captions.csv or captions.json when it has one.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .reading import NO_SPLIT, DatasetReader, ImageCaptions, clean_captions, read_json, require_dir

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
FOLDER_LAYOUT = (
    "expected a folder of images (subfolders allowed), optionally with <dir>/captions.csv (header "
    "'image,caption' and optional 'split', one caption per line) or <dir>/captions.json "
    "({\"image.jpg\": [\"caption\", ...]}), image paths relative to the folder"
)


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
        require_dir(data_dir, FOLDER_LAYOUT)
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
            captions, splits = self.read_json(), {}
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
                clean_captions(captions.get(image, [])),
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

    def read_json(self) -> dict[str, list[str]]:
        assert self.captions_file is not None
        data = read_json(self.captions_file)
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

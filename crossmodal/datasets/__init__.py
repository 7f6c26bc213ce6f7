"""Dataset readers: yield image/caption pairs with a stable pair id and split.

Every source (the built-in demo, Flickr8k, Flickr30k, a user's folder) is read into the same
`ImageCaptions` records so indexing and evaluation never care where the data came from. Readers are
lazy and never fatal on bad items: a missing or unreadable image is recorded in `skipped` and the
rest is still read.

`open_dataset(name, ...)` picks the reader; `reading` has what they share, `demo`, `flickr` and `folder` one source
each. The package reads files and checks image headers (`crossmodal.media`); it imports no model, index or
`serving/`.
"""
from __future__ import annotations

from pathlib import Path

from .demo import DEMO_MANIFEST, DemoReader, demo_target
from .flickr import F8K_LAYOUT, F30K_LAYOUT, Flickr8kReader, Flickr30kReader, parse_f8k_line
from .folder import FOLDER_LAYOUT, IMAGE_SUFFIXES, FolderReader
from .reading import NO_SPLIT, SPLITS, DatasetReader, ImageCaptions, Skipped

DATASETS = ("demo", "f8k", "f30k", "folder")


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


__all__ = [
    "DATASETS", "DEMO_MANIFEST", "F8K_LAYOUT", "F30K_LAYOUT", "FOLDER_LAYOUT", "IMAGE_SUFFIXES", "NO_SPLIT", "SPLITS",
    "DatasetReader", "DemoReader", "Flickr8kReader", "Flickr30kReader", "FolderReader", "ImageCaptions", "Skipped",
    "demo_target", "open_dataset", "parse_f8k_line",
]

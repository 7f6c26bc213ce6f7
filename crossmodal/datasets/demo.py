"""The built-in demo: photos shipped inside installed wheels (scikit-image, scikit-learn, matplotlib), named by a
manifest (demo/manifest.json) whose loaders are a fixed whitelist, so it works with no network.
"""
from __future__ import annotations

import importlib.resources
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from .reading import DatasetReader, ImageCaptions, clean_captions, read_json

DEMO_MANIFEST = Path(__file__).resolve().parents[2] / "demo" / "manifest.json"


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


def demo_target(photo: dict[str, Any], images_dir: Path) -> Path:
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
        manifest = read_json(DEMO_MANIFEST)
        self.photos: list[dict[str, Any]] = manifest["photos"]

    def _items(self) -> Iterator[ImageCaptions]:
        self.images_dir.mkdir(parents=True, exist_ok=True)
        for photo in sorted(self.photos, key=lambda p: p["name"]):
            target = demo_target(photo, self.images_dir)
            if not target.is_file():
                try:
                    _write_demo_image(photo["loader"], target)
                except (ImportError, OSError, ValueError) as exc:
                    self._skip(photo["name"], f"cannot load from its package: {exc}")
                    continue
            captions = clean_captions(photo["captions"])
            yield ImageCaptions(f"demo/{target.name}", target, captions, "demo", "test")

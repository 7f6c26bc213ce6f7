"""JPEG thumbnails of indexed photos, in a few fixed sizes, kept in a small in-memory LRU cache."""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image

from crossmodal.media.decoding import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image_file

THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)


def thumbnail_size(requested: int) -> int:
    """The smallest fixed size at least as large as the one requested (so the cache holds a bounded set)."""
    return next((size for size in THUMBNAIL_SIZES if size >= requested), THUMBNAIL_SIZES[-1])


class ThumbnailCache:
    """Thread-safe LRU of encoded thumbnails, bounded by total bytes; keyed by file identity and size."""

    def __init__(self, max_bytes: int = 32 * 2**20, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_file_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.max_pixels = int(max_pixels)
        self.max_file_bytes = int(max_file_bytes)
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(path: str | Path, size: int) -> tuple:
        stat = Path(path).stat()
        return (str(path), stat.st_mtime_ns, stat.st_size, size)

    def get(self, path: str | Path, size: int) -> bytes:
        """The JPEG bytes of ``path`` scaled to fit ``size`` x ``size`` (never enlarged). Blocking: call in a thread."""
        key = self.key(path, size)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        data = self._render(path, size)
        with self._lock:
            if key not in self._entries and len(data) <= self.max_bytes:
                self._entries[key] = data
                self._size += len(data)
                while self._size > self.max_bytes:
                    _, evicted = self._entries.popitem(last=False)
                    self._size -= len(evicted)
        return data

    def _render(self, path: str | Path, size: int) -> bytes:
        image = load_image_file(path, max_pixels=self.max_pixels, max_bytes=self.max_file_bytes)
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85, optimize=True)
        return buffer.getvalue()

    def __len__(self) -> int:
        return len(self._entries)

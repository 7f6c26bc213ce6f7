"""Reading a library file safely: no symlink followed on the way, regular files only, hashed in chunks.

The scan, the sync plan and the gateway that serves a library's photos read files only through these.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_module
from pathlib import Path
from typing import BinaryIO

HASH_CHUNK = 1 << 20


class NotARegularFile(OSError):
    """The path is a symlink, a FIFO, a socket or a device: never read."""


def open_library_file(root: Path, relative: str) -> BinaryIO:
    """Open root/relative for reading without following any symlink on the way, and only if it is a regular file.

    Every component is opened with O_NOFOLLOW relative to the previous one, so nothing outside `root` can be reached
    even if a folder or the file is replaced by a link after the scan. Raises NotARegularFile (an OSError) for a
    link or a special file, FileNotFoundError, PermissionError or another OSError otherwise.
    """
    parts = relative.split("/")
    if not relative or relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise NotARegularFile(errno.EINVAL, f"not a relative path inside the library: {relative!r}")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    directory_flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow | getattr(os, "O_CLOEXEC", 0)
    folder = os.open(os.path.realpath(root), directory_flags)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, directory_flags, dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotARegularFile(exc.errno, f"{relative}: a folder on the way is a symlink or a file") from exc
                raise
            os.close(folder)
            folder = inner
        try:
            # O_NONBLOCK: a FIFO swapped in after the scan opens at once instead of blocking; fstat then refuses it.
            descriptor = os.open(parts[-1], os.O_RDONLY | nofollow | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotARegularFile(exc.errno, f"{relative} is a symlink") from exc
            raise
    finally:
        os.close(folder)
    if not stat_module.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise NotARegularFile(errno.EINVAL, f"{relative} is not a regular file")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def sha256_file(root: Path, relative: str) -> str:
    """sha256 hex of a library file's bytes, read in 1 MiB chunks through `open_library_file`."""
    digest = hashlib.sha256()
    with open_library_file(root, relative) as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

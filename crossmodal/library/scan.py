"""The folder scan: every photo under a root with its size and mtime (os.scandir and one lstat per photo; no file
is opened), and every fault skipped with a reason and counted, never raised.

Faults (each skipped with a `Skip`: path, kind, detail; counted by kind)
----------------------------------------------------------------------
- Permission denied or an I/O error on a folder or a file: skipped and *kept*: what was indexed under it stays
  (an unmounted or unreadable subfolder does not empty the index). A scan that finds no photo at all while the
  state has some is refused by `plan_sync` unless `allow_empty=True` (an unmounted drive looks like an empty folder).
- A file that vanishes between the listing and its stat or hash: skipped (and, if it was indexed, deleted).
- Symlinks are never followed, to files or folders: each is reported, resolved only to say why (a loop, broken,
  pointing outside the folder, or to a file inside it that is indexed at its own path). Nothing outside the folder
  is ever indexed, and following links inside it would only add second routes to the same files. Files are read
  through `open_library_file`, which opens every path component with O_NOFOLLOW relative to the root, so a path
  swapped for a link after the scan is refused, not followed (the gateway serves files the same way).
- Names that are not valid UTF-8 (Linux names are bytes; Python shows the bad ones as surrogate escapes): skipped,
  with the name shown with \\x escapes. A path is the photo's identity in JSON, SQLite and captions.csv, all UTF-8
  text, and the API refuses lone surrogates; such names come from legacy encodings and are fixed by renaming
  (`convmv -f latin1 -t utf8`), which the reason says. A folder with such a name is skipped whole.
- FIFOs, sockets and devices with a photo suffix: skipped, never opened (opening a FIFO blocks).
- Hidden files and folders (name starting with "."), and files that are not photos, are ignored and only counted.
- HEIC/HEIF: indexed when `pi-heif` is installed (`photo_formats.register_heif`), otherwise skipped with a reason.
- Files whose decoding failed (truncated, not an image): recorded by `commit` with their stat and reason, and
  reported again without being read until their size or mtime changes.
"""
from __future__ import annotations

import errno
import os
import stat as stat_module
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from crossmodal.media.formats import register_heif

BASE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"})

# Skip kinds: stable, short, used to count. TRANSIENT kinds keep what was indexed (the file is probably still there).
PERMISSION_DENIED = "permission denied"
READ_ERROR = "read error"
VANISHED = "vanished during the sync"
SYMLINK_LOOP = "symlink loop"
SYMLINK_BROKEN = "broken symlink"
SYMLINK_OUTSIDE = "symlink to outside the folder"
SYMLINK_INSIDE = "symlink inside the folder (not followed: its target is indexed at its own path)"
NOT_UTF8 = "name is not valid UTF-8"
SPECIAL_FILE = "not a regular file (FIFO, socket or device)"
NO_HEIF_DECODER = "HEIC/HEIF without a decoder"
NOT_INDEXABLE = "could not be indexed"
TRANSIENT_KINDS = frozenset({PERMISSION_DENIED, READ_ERROR})
HEIF_SUFFIXES = frozenset({".heic", ".heif"})


def library_suffixes() -> frozenset[str]:
    """File suffixes (lower case) that are photos of a library: HEIC/HEIF only when a decoder is registered."""
    return BASE_SUFFIXES | HEIF_SUFFIXES if register_heif() else BASE_SUFFIXES


class FileStat(NamedTuple):
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skip:
    path: str  # relative POSIX path ("" for the root folder); non-UTF-8 bytes shown as \x escapes
    kind: str
    detail: str = ""
    is_folder: bool = False

    def __str__(self) -> str:
        where = (self.path or ".") + ("/" if self.is_folder else "")
        return f"{where}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Scan:
    root: Path  # resolved
    files: dict[str, FileStat]
    skipped: list[Skip] = field(default_factory=list)
    ignored: int = 0  # hidden entries and files that are not photos
    seconds: float = 0.0

    def skipped_counts(self) -> dict[str, int]:
        return dict(Counter(skip.kind for skip in self.skipped))

    def kept_folders(self) -> tuple[str, ...]:
        """Prefixes ("a/b/", or "" for the root) of folders that could not be read: their indexed files stay."""
        unreadable = (skip for skip in self.skipped if skip.is_folder and skip.kind in TRANSIENT_KINDS)
        return tuple(f"{skip.path}/" if skip.path else "" for skip in unreadable)

    def kept_files(self) -> frozenset[str]:
        return frozenset(s.path for s in self.skipped if not s.is_folder and s.kind in TRANSIENT_KINDS)


def scan_folder(root: Path, suffixes: frozenset[str] | None = None) -> Scan:
    """Every photo under `root` with its size and mtime; faults skipped with reasons (see the module docstring)."""
    started = time.perf_counter()
    root_dir = os.path.realpath(root)
    if not os.path.isdir(root_dir):
        raise NotADirectoryError(f"{root} is not a folder")
    wanted = library_suffixes() if suffixes is None else suffixes
    heif_skipped = HEIF_SUFFIXES - wanted
    scan = Scan(Path(root_dir), {})
    files, skipped = scan.files, scan.skipped
    ignored = 0
    stack: list[tuple[str, str]] = [("", root_dir)]  # (relative prefix ending in "/" or "", absolute folder)
    while stack:
        prefix, directory = stack.pop()
        try:
            listing = os.scandir(directory)
        except OSError as exc:
            skipped.append(fault_skip(prefix.rstrip("/"), exc, is_folder=True))
            continue
        with listing:
            try:
                for entry in listing:
                    name = entry.name
                    if name[0] == ".":
                        ignored += 1
                        continue
                    if not name.isascii() and not _is_utf8(name):
                        skipped.append(_not_utf8(prefix + name, entry))
                        continue
                    relative = prefix + name
                    dot = name.rfind(".")
                    suffix = name[dot:].lower() if dot > 0 else ""
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append((relative + "/", entry.path))
                            continue
                        if entry.is_symlink():
                            link_skip = _symlink_skip(relative, entry.path, root_dir, suffix in wanted)
                            if link_skip is not None:
                                skipped.append(link_skip)
                            else:
                                ignored += 1
                            continue
                        if suffix not in wanted:
                            if suffix in heif_skipped and entry.is_file(follow_symlinks=False):
                                skipped.append(Skip(relative, NO_HEIF_DECODER, "install pi-heif to index it"))
                            else:
                                ignored += 1
                            continue
                        if not entry.is_file(follow_symlinks=False):
                            skipped.append(Skip(relative, SPECIAL_FILE))
                            continue
                        info = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        skipped.append(fault_skip(relative, exc))
                        continue
                    if not stat_module.S_ISREG(info.st_mode):  # replaced between the listing and the stat
                        skipped.append(Skip(relative, SPECIAL_FILE))
                        continue
                    files[relative] = FileStat(info.st_size, info.st_mtime_ns)
            except OSError as exc:  # readdir failing part-way (EIO on a dying disk)
                skipped.append(fault_skip(prefix.rstrip("/"), exc, is_folder=True))
    scan.ignored = ignored
    scan.seconds = time.perf_counter() - started
    return scan


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A name with undecodable bytes as \\x escapes: printable, storable, and never mistaken for the real name."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _not_utf8(relative: str, entry: os.DirEntry[str]) -> Skip:
    try:
        is_folder = entry.is_dir(follow_symlinks=False)
    except OSError:
        is_folder = False
    what = "folder skipped with everything in it" if is_folder else "rename it to index it"
    return Skip(_shown(relative), NOT_UTF8, f"{what}, e.g. convmv -f latin1 -t utf8", is_folder)


def fault_skip(relative: str, exc: OSError, is_folder: bool = False) -> Skip:
    """The skip of a path whose listing, stat or read failed with `exc`; its kind says whether what was indexed
    under it is kept."""
    if isinstance(exc, PermissionError):
        kind = PERMISSION_DENIED
    elif isinstance(exc, FileNotFoundError | NotADirectoryError):
        kind = VANISHED
    elif exc.errno == errno.ELOOP:
        kind = SYMLINK_LOOP
    else:
        kind = READ_ERROR
    return Skip(relative, kind, exc.strerror or str(exc), is_folder)


def _symlink_skip(relative: str, path: str, root_dir: str, photo_suffix: bool) -> Skip | None:
    """Why a symlink is not followed; None for a link that is neither to a folder nor named like a photo."""
    try:
        target_stat = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skip(relative, SYMLINK_LOOP)
        return Skip(relative, SYMLINK_BROKEN, exc.strerror or "") if photo_suffix else None
    is_folder = stat_module.S_ISDIR(target_stat.st_mode)
    if not (is_folder or photo_suffix):
        return None
    target = os.path.realpath(path)
    if target != root_dir and not target.startswith(root_dir.rstrip(os.sep) + os.sep):
        return Skip(relative, SYMLINK_OUTSIDE, "", is_folder)
    if is_folder and (root_dir + os.sep + relative).startswith(target + os.sep):
        return Skip(relative, SYMLINK_LOOP, "points to a folder above it", True)
    return Skip(relative, SYMLINK_INSIDE, "", is_folder)

"""A plain photo folder as a library: the scan, what was indexed last time, and the plan that syncs the index to it.

Three steps, none of them needing Jina:

1. `scan_folder(root)` lists every photo under `root` with its size and mtime (os.scandir and one lstat per photo;
   no file is opened). Faults are skipped with a reason and counted, never raised (see "Faults" below).
2. `LibraryState` (one SQLite file per library) holds, per relative path, the size, mtime_ns and sha256 of the bytes
   that were indexed, and the photo id they belong to.
3. `plan_sync(scan, state)` classifies every path (unchanged, new, changed, moved, copies, deleted; touch-only
   changes count as unchanged) and turns that into per-photo work (`PhotoChange`: embed, update paths, remove),
   cut into `SyncBatch`es that the indexing job applies with `state.applying(batch)` around its index write.

Photo identity (the rule the indexing job, the store and the gateway share)
--------------------------------------------------------------------------
A photo of a plain-folder library is its *content*: `photo_pair_id(library, sha256)` is
"folder/<library>/sha256:<hex>" and the image document id is `photo_id(library, sha256)` =
`crossmodal.ids.image_doc_id(photo_pair_id(...))`, so caption ids follow from the same pair id
(`ids.caption_doc_id`). Paths are metadata: `metadata.path` is the photo's first path in sorted order and
`metadata.paths` all of them. Hence:
- a move or rename keeps the id, so the vector stays and only the metadata changes (no encoder call);
- exact copies (same bytes) are one photo with several paths, also no encoder call;
- a modified file is new content: a new id is embedded, and the old id is removed once no path holds it;
- links (`/?image=<id>`) survive renames; the same photo in two libraries is two photos (the library name is in
  the id), so each library can be synced and removed on its own.
- captions from captions.csv / captions.json are keyed by path: a photo's captions are those of all its paths
  (in path order, then file order), so they follow whichever path the file has now.
The library name is the caller's (the default: the root folder's name, as `dataset.FolderReader` uses); renaming
it re-embeds everything. Existing folder indexes built with path-derived ids (`folder/<name>/<path>`) are not
recognised: the integrator removes them (or re-indexes) when a folder first becomes a synced library.

Crash safety (a sync killed at any instruction resumes without losing or duplicating a photo)
------------------------------------------------------------------------------------------
Invariant: the state records a path only for content the index holds under that path's photo id. Each batch:
  1. `state.begin(batch)`: commits the batch's photo ids to a `pending` table (write-ahead intent);
  2. the index write, idempotent by id: embed and upsert (skip the encoder when the store already holds the id),
     update paths, delete photos left without paths;
  3. `state.commit(batch)`: one SQLite transaction deletes the forgotten paths, writes the new path records, records
     files that could not be indexed, and clears the batch's pending rows.
A crash before 1 changes nothing. A crash between 1 and 3 leaves pending ids: the next `plan_sync` re-plans every
pending photo from what is on disk now (its paths, or its removal when none has its content), whatever the other
classes say, so an upsert that happened is reconciled with the disk and one that did not is redone; nothing is
left behind in the index that no path justifies. The index never holds a photo twice because ids are derived from
content. Every path change that links two photos (a changed file: old photo loses the path, new photo gains it) is
in the same batch as both photos, so no commit leaves a record pointing at a photo another commit removed.
The records keep the stat the *scan* saw, taken before the file was hashed: a file modified during the sync has a
newer stat next time and is hashed again.

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
import hashlib
import os
import sqlite3
import stat as stat_module
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, NamedTuple

from crossmodal.ids import image_doc_id
from crossmodal.photo_formats import register_heif

SCHEMA_VERSION = 1
BASE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"})
HASH_CHUNK = 1 << 20

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

# Path classes of a plan.
UNCHANGED, TOUCHED, NEW, CHANGED = "unchanged", "touched", "new", "changed"
MOVED, COPY, DELETED = "moved", "copy", "deleted"


def library_suffixes() -> frozenset[str]:
    """File suffixes (lower case) that are photos of a library: HEIC/HEIF only when a decoder is registered."""
    return BASE_SUFFIXES | HEIF_SUFFIXES if register_heif() else BASE_SUFFIXES


def photo_pair_id(library: str, sha256: str) -> str:
    """The pair id of a library photo: its content, within its library (see the module docstring)."""
    return f"folder/{library}/sha256:{sha256}"


def photo_id(library: str, sha256: str) -> str:
    """The image document id of a library photo; caption ids derive from `photo_pair_id` the usual way."""
    return image_doc_id(photo_pair_id(library, sha256))


# ---------------------------------------------------------------------------------------------------------------
# Scan


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
            skipped.append(_fault(prefix.rstrip("/"), exc, is_folder=True))
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
                        skipped.append(_fault(relative, exc))
                        continue
                    if not stat_module.S_ISREG(info.st_mode):  # replaced between the listing and the stat
                        skipped.append(Skip(relative, SPECIAL_FILE))
                        continue
                    files[relative] = FileStat(info.st_size, info.st_mtime_ns)
            except OSError as exc:  # readdir failing part-way (EIO on a dying disk)
                skipped.append(_fault(prefix.rstrip("/"), exc, is_folder=True))
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


def _fault(relative: str, exc: OSError, is_folder: bool = False) -> Skip:
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


# ---------------------------------------------------------------------------------------------------------------
# Reading files safely


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


# ---------------------------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class PathRecord:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    photo_id: str


class Failure(NamedTuple):
    size: int
    mtime_ns: int
    reason: str


class LibraryStateError(RuntimeError):
    """The state file belongs to another library or to a newer version."""


class LibraryState:
    """What the index holds of one library, in SQLite (WAL, synchronous=FULL: a committed batch survives a crash)."""

    def __init__(self, path: Path, library: str) -> None:
        self.path, self.library = Path(path), library
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, photo_id TEXT NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS files_by_sha256 ON files (sha256)")
            self._db.execute("CREATE TABLE IF NOT EXISTS pending (photo_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS failed (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL)"
            )
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                meta = {"schema_version": str(SCHEMA_VERSION), "library": library}
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
        problem = None
        if int(meta.get("schema_version", "0")) > SCHEMA_VERSION:
            problem = f"{self.path} was written by a newer version of crossmodal-search"
        elif meta.get("library") != library:
            problem = f"{self.path} is the state of library {meta.get('library')!r}, not {library!r}"
        if problem is not None:
            self._db.close()
            raise LibraryStateError(problem)
        self.records: dict[str, PathRecord] = {}
        self.pending: dict[str, str] = {}
        self.failures: dict[str, Failure] = {}
        self.load()

    def load(self) -> None:
        """(Re)read the records, the pending photo ids and the recorded failures."""
        self.records = {
            row[0]: PathRecord(*row)
            for row in self._db.execute("SELECT path, size, mtime_ns, sha256, photo_id FROM files")
        }
        self.pending = dict(self._db.execute("SELECT photo_id, sha256 FROM pending").fetchall())
        self.failures = {
            row[0]: Failure(*row[1:]) for row in self._db.execute("SELECT path, size, mtime_ns, reason FROM failed")
        }

    def begin(self, batch: SyncBatch) -> None:
        """Step 1: commit the intent (the batch's photo ids) before the index is written."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?)", [(p.photo_id, p.sha256) for p in batch.photos]
            )
        self.pending.update((p.photo_id, p.sha256) for p in batch.photos)

    def commit(self, batch: SyncBatch) -> None:
        """Step 3, after the index holds the batch: path records, failures and the end of the intent, atomically."""
        records = batch.records()
        with self._transaction():
            self._db.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in batch.forget()])
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                [(r.path, r.size, r.mtime_ns, r.sha256, r.photo_id) for r in records],
            )
            self._db.executemany("DELETE FROM failed WHERE path = ?", [(path,) for path in batch.clear_failures])
            self._db.executemany("DELETE FROM failed WHERE path = ?", [(r.path,) for r in records])
            self._db.executemany(
                "INSERT OR REPLACE INTO failed VALUES (?, ?, ?, ?)",
                [(path, *failure) for path, failure in batch.failures.items()],
            )
            self._db.executemany("DELETE FROM pending WHERE photo_id = ?", [(p.photo_id,) for p in batch.photos])
        for path in batch.forget():
            self.records.pop(path, None)
        self.records.update((r.path, r) for r in records)
        for path in [*batch.clear_failures, *(r.path for r in records)]:
            self.failures.pop(path, None)
        self.failures.update(batch.failures)
        for photo in batch.photos:
            self.pending.pop(photo.photo_id, None)

    @contextmanager
    def applying(self, batch: SyncBatch) -> Iterator[None]:
        """`with state.applying(batch): <write the index>`: begin, then commit only if the write returned."""
        self.begin(batch)
        yield
        self.commit(batch)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LibraryState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


# ---------------------------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True)
class PathChange:
    kind: str  # touched, new, changed, moved, copy, deleted
    path: str
    record: PathRecord | None  # what the state records for `path` once applied (None: deleted)
    previous: PathRecord | None = None  # what it replaces: same path (touched, changed, deleted), the source (moved)

    @property
    def forgets(self) -> str | None:
        """A path whose record goes: a deleted path, or where a moved file came from."""
        if self.kind == DELETED and self.previous is not None:
            return self.previous.path
        if self.kind == MOVED and self.previous is not None:
            return self.previous.path
        return None


@dataclass(frozen=True)
class PhotoChange:
    """One photo of the index to bring in line with the folder. `paths` empty: remove it with its captions."""

    photo_id: str
    sha256: str
    paths: tuple[str, ...]
    embed: bool  # the index may lack its vector: embed `path` (skip the encoder if the store holds photo_id)

    @property
    def path(self) -> str | None:
        """The path its image is read from and shown as `metadata.path`."""
        return self.paths[0] if self.paths else None

    @property
    def removed(self) -> bool:
        return not self.paths


@dataclass
class SyncBatch:
    photos: list[PhotoChange]
    changes: list[PathChange]
    failures: dict[str, Failure] = field(default_factory=dict)  # paths that could not be indexed, with their stat
    clear_failures: list[str] = field(default_factory=list)  # recorded failures whose file is gone

    def forget(self) -> list[str]:
        return [path for change in self.changes if (path := change.forgets) is not None]

    def records(self) -> list[PathRecord]:
        return [change.record for change in self.changes if change.record is not None]

    def without(self, failed: Mapping[str, str]) -> SyncBatch:
        """The batch less the photos (id -> reason) whose embedding failed: their paths are recorded as failures
        (not read again until their stat changes), and a path that held other content before is forgotten."""
        photos = [photo for photo in self.photos if photo.photo_id not in failed]
        changes: list[PathChange] = []
        failures = dict(self.failures)
        for change in self.changes:
            record = change.record
            if record is None or record.photo_id not in failed:
                changes.append(change)
                continue
            failures[record.path] = Failure(record.size, record.mtime_ns, failed[record.photo_id])
            if change.previous is not None:  # the path's old content is no longer what is on disk
                changes.append(replace(change, kind=DELETED, record=None))
        return SyncBatch(photos, changes, failures, list(self.clear_failures))


@dataclass
class SyncPlan:
    library: str
    root: Path
    unchanged: list[str]
    touched: list[PathChange]
    new: list[PathChange]
    changed: list[PathChange]
    moved: list[PathChange]
    copies: list[PathChange]
    deleted: list[PathChange]
    skipped: list[Skip]
    photos: dict[str, PhotoChange]
    stale_failures: list[str]
    seconds: float = 0.0
    ignored: int = 0  # files of the folder that are not photos (other suffixes, hidden entries)

    def has_photos(self) -> bool:
        """Whether the folder holds a photo the library indexes (or keeps, under a folder it could not read)."""
        return bool(self.unchanged or self.touched or self.new or self.changed or self.moved or self.copies
                    or any(skip.kind in TRANSIENT_KINDS for skip in self.skipped))

    def summary(self) -> dict[str, int]:
        return {
            "unchanged": len(self.unchanged) + len(self.touched),
            "touched": len(self.touched),
            "new": len(self.new),
            "changed": len(self.changed),
            "moved": len(self.moved),
            "copies": len(self.copies),
            "deleted": len(self.deleted),
            "skipped": len(self.skipped),
            "photos_to_embed": sum(photo.embed for photo in self.photos.values()),
            "photos_removed": sum(photo.removed for photo in self.photos.values()),
        }

    def batches(self, max_photos: int = 64) -> list[SyncBatch]:
        """The plan in batches of about `max_photos` photos, each applied with `state.applying(batch)`.

        Photos linked by a path (a changed file: the old photo loses it, the new one gains it) are always in one
        batch with that path's change; photo-less state updates (touched files, stale failures) come last.
        """
        changes = [*self.deleted, *self.moved, *self.changed, *self.new, *self.copies]
        parent: dict[str, str] = {photo: photo for photo in self.photos}

        def find(photo: str) -> str:
            while parent[photo] != photo:
                parent[photo] = parent[parent[photo]]
                photo = parent[photo]
            return photo

        for change in changes:
            ids = {record.photo_id for record in (change.record, change.previous) if record is not None}
            first, *others = sorted(ids)
            for other in others:
                parent[find(other)] = find(first)
        groups: dict[str, list[PhotoChange]] = {}
        for photo in sorted(self.photos.values(), key=lambda p: (p.embed, p.path or "", p.photo_id)):
            groups.setdefault(find(photo.photo_id), []).append(photo)
        changes_by_group: dict[str, list[PathChange]] = {}
        for change in changes:
            anchor = change.record or change.previous
            assert anchor is not None
            changes_by_group.setdefault(find(anchor.photo_id), []).append(change)
        batches: list[SyncBatch] = []
        current = SyncBatch([], [])
        for group, photos in groups.items():
            if current.photos and len(current.photos) + len(photos) > max_photos:
                batches.append(current)
                current = SyncBatch([], [])
            current.photos.extend(photos)
            current.changes.extend(changes_by_group.get(group, []))
        if current.photos:
            batches.append(current)
        if self.touched or self.stale_failures:
            batches.append(SyncBatch([], list(self.touched), clear_failures=list(self.stale_failures)))
        return batches


class SyncRefused(RuntimeError):
    """The scan looks like a missing folder rather than a library to empty."""


# Hash errors meaning the file is not there any more (as opposed to unreadable for now).
_GONE_ERRORS = (FileNotFoundError, NotADirectoryError, NotARegularFile)


def plan_sync(
    scan: Scan,
    state: LibraryState,
    hash_file: Callable[[Path, str], str] = sha256_file,
    allow_empty: bool = False,
) -> SyncPlan:
    """Classify every path of `scan` against `state` and derive the photo changes (see the module docstring).

    Only files that are new or whose size or mtime changed are hashed; the others are not read at all.
    """
    started = time.perf_counter()
    if not scan.files and state.records and not allow_empty and not scan.kept_folders():
        raise SyncRefused(
            f"{scan.root} holds no photo but {len(state.records)} files of library {state.library!r} are indexed: "
            "is the folder mounted? (allow_empty=True removes them all)"
        )
    library, records = state.library, state.records
    unchanged: list[str] = []
    touched: list[PathChange] = []
    changed: list[PathChange] = []
    skipped = list(scan.skipped)
    present_sha: dict[str, str] = {}  # every path that keeps or gets content, with that content
    candidates: list[tuple[str, FileStat, str]] = []  # unrecorded paths with their hash
    for path, info in scan.files.items():
        record = records.get(path)
        if record is not None and record.size == info.size and record.mtime_ns == info.mtime_ns:
            unchanged.append(path)
            present_sha[path] = record.sha256
            continue
        failure = state.failures.get(path)
        if record is None and failure is not None and (failure.size, failure.mtime_ns) == info:
            skipped.append(Skip(path, NOT_INDEXABLE, failure.reason))
            continue
        try:
            sha = hash_file(scan.root, path)
        except _GONE_ERRORS as exc:
            skipped.append(Skip(path, VANISHED if isinstance(exc, FileNotFoundError) else SPECIAL_FILE, str(exc)))
            continue
        except OSError as exc:
            skip = _fault(path, exc)
            skipped.append(skip)
            if record is not None and skip.kind in TRANSIENT_KINDS:
                present_sha[path] = record.sha256  # still there, unreadable for now: keep what is indexed
            continue
        if record is None:
            candidates.append((path, info, sha))
            continue
        present_sha[path] = sha
        if record.sha256 == sha:
            touched.append(PathChange(TOUCHED, path, replace(record, size=info.size, mtime_ns=info.mtime_ns), record))
        else:
            new_record = PathRecord(path, info.size, info.mtime_ns, sha, photo_id(library, sha))
            changed.append(PathChange(CHANGED, path, new_record, record))

    kept_files, kept_folders = scan.kept_files(), scan.kept_folders()
    gone_by_sha: dict[str, list[PathRecord]] = {}
    for path, record in records.items():
        if path in present_sha:  # a recorded path that failed to hash as gone is not in present_sha
            continue
        if path in kept_files or (kept_folders and path.startswith(kept_folders)):
            present_sha[path] = record.sha256
            continue
        gone_by_sha.setdefault(record.sha256, []).append(record)

    content_present = set(present_sha.values())
    new: list[PathChange] = []
    moved: list[PathChange] = []
    copies: list[PathChange] = []
    for path, info, sha in sorted(candidates):
        record = PathRecord(path, info.size, info.mtime_ns, sha, photo_id(library, sha))
        present_sha[path] = sha
        sources = gone_by_sha.get(sha)
        if sources:
            name = path.rsplit("/", 1)[-1]
            source = next((s for s in sources if s.path.rsplit("/", 1)[-1] == name), sources[0])
            sources.remove(source)
            moved.append(PathChange(MOVED, path, record, source))
        elif sha in content_present:
            copies.append(PathChange(COPY, path, record))
        else:
            new.append(PathChange(NEW, path, record))
        content_present.add(sha)
    deleted = [
        PathChange(DELETED, record.path, None, record) for sources in gone_by_sha.values() for record in sources
    ]
    deleted.sort(key=lambda change: change.path)

    affected: dict[str, str] = dict(state.pending)  # photo id -> sha256: an interrupted batch is re-planned
    for change in (*changed, *moved, *copies, *new, *deleted):
        for record in (change.record, change.previous):
            if record is not None:
                affected[record.photo_id] = record.sha256
    paths_by_sha: dict[str, list[str]] = {sha: [] for sha in affected.values()}
    if paths_by_sha:
        for path, sha in present_sha.items():
            if sha in paths_by_sha:
                paths_by_sha[sha].append(path)
    indexed = {record.sha256 for record in records.values()}
    photos: dict[str, PhotoChange] = {}
    for photo, sha in affected.items():
        paths = tuple(sorted(paths_by_sha[sha]))
        embed = bool(paths) and (sha not in indexed or photo in state.pending)
        photos[photo] = PhotoChange(photo, sha, paths, embed)
    stale_failures = sorted(path for path in state.failures if path not in scan.files)
    return SyncPlan(
        library=library,
        root=scan.root,
        unchanged=unchanged,
        touched=touched,
        new=new,
        changed=changed,
        moved=moved,
        copies=copies,
        deleted=deleted,
        skipped=skipped,
        photos=photos,
        stale_failures=stale_failures,
        seconds=time.perf_counter() - started,
        ignored=scan.ignored,
    )


"""`plan_sync(scan, state)`: every path classified against the state (unchanged, touched, new, changed, moved,
copies, deleted; touch-only changes count as unchanged), turned into per-photo work (`PhotoChange`: embed, update
paths, remove) and cut into `SyncBatch`es.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .batch import (
    CHANGED,
    COPY,
    DELETED,
    MOVED,
    NEW,
    TOUCHED,
    PathChange,
    PathRecord,
    PhotoChange,
    SyncBatch,
)
from .files import NotARegularFile, sha256_file
from .identity import photo_id
from .scan import NOT_INDEXABLE, SPECIAL_FILE, TRANSIENT_KINDS, VANISHED, FileStat, Scan, Skip, fault_skip
from .state import LibraryState


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
            skip = fault_skip(path, exc)
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

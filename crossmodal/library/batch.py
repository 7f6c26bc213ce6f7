"""What one sync batch changes: the path records the state keeps, the path and photo changes, and the batch
that `LibraryState.applying` writes around the index write.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

# Path classes of a plan.
UNCHANGED, TOUCHED, NEW, CHANGED = "unchanged", "touched", "new", "changed"
MOVED, COPY, DELETED = "moved", "copy", "deleted"


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

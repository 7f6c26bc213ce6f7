"""Keeps the index in line with a plain photo folder (a library, crossmodal/library/): `-t index` and `-t watch`.

One sync = scan the folder (size and mtime only) + plan (`crossmodal.library.plan_sync`: only new or changed files
are hashed) + apply the plan batch by batch through the index flow, each batch inside the state's crash-safe
begin -> index write -> commit (see crossmodal/library/state.py, "Crash safety"). Per batch:

- removed photos (no path has their content any more): `/delete` with one `image` document (the photo id and its
  pair id) and one `text` document (`del-<photo id>`, the pair id: its captions), routed by modality like `/index`;
- photos whose vector the store holds (moved, renamed, copied, a path deleted from a group of copies, or a photo an
  interrupted sync stored already): sent pre-embedded (`embedding` = the stored vector, `tags["model"]` = the store's
  model), so the encoders pass them on (`serving.wire.is_embedded`) and the indexer upserts them with their new
  paths: no encoder call;
- other photos: read through `open_library_file`, checked against the planned sha256 (a file rewritten since it was
  hashed is left for the next sync), and sent by path with that sha256 (`tags["content_sha256"]`): the index flow's
  image encoder reads and decodes the file once and refuses it when its bytes have changed since, or when its
  pixels do not decode (a refusal after the begin: see `_apply_batch`).

Every photo document carries `tags["metadata"]`: `read_photo_metadata(...).as_dict()` plus `"paths"` (all its paths,
sorted), `tags["phash"]`: its perceptual signature (crossmodal/library/perceptual_hash.py, for near-duplicates; from the
bytes read for the hash, or the stored record's for a photo sent pre-embedded, or read once from the file when that
record has none), and `uri` = the absolute path of its first path (what the gateway serves as `/images/{id}`).

Photos stored before places were named (issue 24: metadata with coordinates and no `place` key) are added to the
plan as unchanged photos sent pre-embedded, so their metadata is read again with its place; nothing is encoded.

When the plan holds no photo work the sync needs no flow (`LibrarySync.needs_flow`): `-t index` then says the library
is up to date without starting one. `watch_library` keeps one flow and syncs on file-system events (watchdog,
debounced) and on a periodic full scan, which also catches what events miss (network drives, a watcher limit).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from docarray import DocList
from PIL import Image
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from crossmodal.index import read_records, read_vectors, stored_ids, stored_settings
from crossmodal.index.reads import located_without_place
from crossmodal.index.shards import shard_folders
from crossmodal.index.tags import CONTENT_SHA256_TAG, ERROR_TAG, METADATA_TAG, MODEL_TAG
from crossmodal.index.workspace import index_folder
from crossmodal.library import (
    NOT_INDEXABLE,
    LibraryState,
    PhotoChange,
    Skip,
    SyncBatch,
    SyncPlan,
    SyncRefused,
    library_suffixes,
    open_library_file,
    photo_pair_id,
    plan_sync,
    scan_folder,
)
from crossmodal.library.metadata import PhotoMetadataError, read_photo_metadata
from crossmodal.library.perceptual_hash import SIGNATURE_TAG, bytes_signature
from crossmodal.media.decoding import DEFAULT_MAX_BYTES, ImageDecodeError
from crossmodal.modality import IMAGE, TEXT
from serving.jobs.indexing import ERRORS_ONLY
from serving.wire import CrossModalDoc

LIBRARY_FOLDER = "library"  # <workspace>/library/<library name>.sqlite: each library's sync state
FOLDER_DATASET, NO_SPLIT = "folder", "all"  # the record tags of a library photo (dataset.FolderReader's values)
DELETED_CAPTIONS_PREFIX = "del-"  # the id of the text document that removes a photo's captions
DEFAULT_SCAN_INTERVAL = 60.0
DEFAULT_DEBOUNCE = 1.0
MAX_DEBOUNCE = 10.0  # a folder that never stops changing is still synced this often


class SyncError(ValueError):
    """The index refused part of a sync (e.g. a read-only index); the batch stays pending and is redone."""


def library_state_path(workspace: str | Path, library: str) -> Path:
    return Path(workspace) / LIBRARY_FOLDER / f"{library}.sqlite"


@dataclass
class SyncSummary:
    library: str
    root: Path
    counts: dict[str, int] = field(default_factory=dict)  # SyncPlan.summary(): files by class
    skipped: list[Skip] = field(default_factory=list)
    encoded: int = 0  # photos embedded by the image encoder
    reused: int = 0  # photos stored again with their stored vector (moves, renames, copies): no encoder call
    removed: int = 0  # photos removed from both indexes
    legacy_removed: int = 0  # photos of this folder indexed with path ids before it became a library
    flow_used: bool = False
    scan_seconds: float = 0.0
    plan_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def changed_anything(self) -> bool:
        return bool(self.encoded or self.reused or self.removed or self.legacy_removed
                    or any(self.counts.get(kind) for kind in ("new", "changed", "moved", "copies", "deleted")))

    def line(self) -> str:
        c = self.counts
        files = (f"{c.get('new', 0)} new, {c.get('changed', 0)} changed, {c.get('moved', 0)} moved or renamed, "
                 f"{c.get('copies', 0)} copies, {c.get('deleted', 0)} deleted, {c.get('unchanged', 0)} unchanged, "
                 f"{len(self.skipped)} skipped")
        if not self.flow_used:
            return (f"library {self.library!r} is up to date: {files} (scan {self.scan_seconds:.2f} s, plan "
                    f"{self.plan_seconds:.2f} s)")
        legacy = f", {self.legacy_removed} path-id photos of the folder removed" if self.legacy_removed else ""
        return (f"synced library {self.library!r} in {self.seconds:.1f} s: {files}; photos: {self.encoded} encoded, "
                f"{self.reused} updated without encoding, {self.removed} removed{legacy}")

    def report(self, limit: int = 20) -> str:
        lines = [self.line()]
        lines += [f"  skipped {skip}" for skip in self.skipped[:limit]]
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)


class LibrarySync:
    """One library (a folder, its name) synced into one workspace; holds the library's state file open."""

    def __init__(self, workspace: str | Path, root: str | Path, library: str | None = None,
                 batch_size: int = 32) -> None:
        self.workspace = Path(workspace)
        self.root = Path(root).resolve()
        self.library = library or self.root.name
        self.batch_size = max(1, int(batch_size))
        self.state = LibraryState(library_state_path(self.workspace, self.library), self.library)
        self._image_index = index_folder(self.workspace, IMAGE)
        self._scan_seconds = 0.0
        self._legacy: list[tuple[str, str]] | None = None  # looked for once per LibrarySync

    def close(self) -> None:
        self.state.close()

    def __enter__(self) -> LibrarySync:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plan -------------------------------------------------------------------------------------------------

    def plan(self, allow_empty: bool = False) -> SyncPlan:
        """Scan and plan; raises SyncRefused for an empty folder while photos are indexed (unless allowed)."""
        scan = scan_folder(self.root)
        plan = plan_sync(scan, self.state, allow_empty=allow_empty)
        self._scan_seconds = scan.seconds
        self._name_places(plan)
        return plan

    def _name_places(self, plan: SyncPlan) -> None:
        """Add this library's unchanged photos stored before places were named to `plan` (see the module docstring):
        one query on the metadata index per sync, a photo's header read once."""
        unnamed = located_without_place(self._image_index) - plan.photos.keys()
        paths: dict[str, list[str]] = {}
        contents: dict[str, str] = {}
        for path, record in self.state.records.items():
            if record.photo_id in unnamed:
                paths.setdefault(record.photo_id, []).append(path)
                contents[record.photo_id] = record.sha256
        for photo_id, photo_paths in paths.items():
            plan.photos[photo_id] = PhotoChange(photo_id, contents[photo_id], tuple(sorted(photo_paths)), embed=False)

    def legacy_photos(self) -> list[tuple[str, str]]:
        """(id, pair id) of photos of this folder indexed with path-derived ids (`folder/<name>/<path>`, before it
        became a library): removed, with their captions, by its first sync. Looked for only while the state is
        empty (a first sync, or one interrupted before its first commit)."""
        if self.state.records or self.state.pending:
            return []
        if self._legacy is None:
            ids = stored_ids(self._image_index)
            records = read_records(self._image_index, sorted(ids)).values() if ids else ()
            prefix, content_prefix = f"folder/{self.library}/", f"folder/{self.library}/sha256:"
            self._legacy = sorted((record.id, record.pair_id) for record in records
                                  if record.pair_id and record.pair_id.startswith(prefix)
                                  and not record.pair_id.startswith(content_prefix))
        return self._legacy

    def needs_flow(self, plan: SyncPlan) -> bool:
        return bool(plan.photos) or bool(self.legacy_photos())

    # --- apply ------------------------------------------------------------------------------------------------

    def apply(self, flow: Any, plan: SyncPlan, progress: Callable[[int], None] | None = None) -> SyncSummary:
        """Bring the index in line with `plan`; `flow` (anything with Jina's `post`) may be None when
        `needs_flow(plan)` is False."""
        started = time.perf_counter()
        summary = self._summary(plan)
        legacy = self.legacy_photos() if flow is not None else []
        if legacy:
            self._delete(flow, legacy)
            summary.legacy_removed = len(legacy)
            self._legacy = []
        for batch in plan.batches(self.batch_size):
            if batch.photos and flow is None:
                raise RuntimeError("this sync has photos to write: it needs the index flow")
            self._apply_batch(flow, batch, summary)
            if progress is not None:
                progress(len(batch.photos))
        if flow is not None:
            summary.flow_used = True
            flow.post("/flush", inputs=DocList[CrossModalDoc]())
        summary.seconds = time.perf_counter() - started + self._scan_seconds + plan.seconds
        return summary

    def sync(self, flow: Any, allow_empty: bool = False) -> SyncSummary:
        """Plan and apply (the watch loop's step; `flow` is started already)."""
        plan = self.plan(allow_empty)
        return self.apply(flow if self.needs_flow(plan) else None, plan)

    def _summary(self, plan: SyncPlan) -> SyncSummary:
        counts = plan.summary()
        return SyncSummary(self.library, self.root, counts, list(plan.skipped), scan_seconds=self._scan_seconds,
                           plan_seconds=plan.seconds)

    def _apply_batch(self, flow: Any, batch: SyncBatch, summary: SyncSummary) -> None:
        if not batch.photos:  # state only: touched files, failures whose file is gone
            with self.state.applying(batch):
                pass
            return
        documents, failed = self._documents(batch)
        if failed:
            batch = batch.without(failed)
        self.state.begin(batch)
        removed = [(photo.photo_id, photo_pair_id(self.library, photo.sha256))
                   for photo in batch.photos if photo.removed]
        if removed:
            self._delete(flow, removed)
        late: dict[str, str] = {}
        if documents:
            encoded = {doc.id for doc in documents if doc.embedding is None}
            reused = {doc.id for doc in documents} - encoded
            results = flow.post("/index", inputs=DocList[CrossModalDoc](documents), request_size=len(documents),
                                parameters=dict(ERRORS_ONLY), return_type=DocList[CrossModalDoc])
            for doc in results:
                if ERROR_TAG in doc.tags:
                    late[doc.id] = doc.tags[ERROR_TAG]
            summary.encoded += len(encoded - late.keys())
            summary.reused += len(reused - late.keys())
        if late:  # refused after the begin: make sure nothing of them is stored, then record them as failures
            photos = {photo.photo_id: photo for photo in batch.photos}
            self._delete(flow, [(id_, photo_pair_id(self.library, photos[id_].sha256)) for id_ in late])
            kept = batch.without(late)
            kept.photos += [replace(photos[id_], paths=(), embed=False) for id_ in late]  # their pending row goes
            batch = kept
        self.state.commit(batch)
        summary.removed += len(removed)
        summary.skipped += [Skip(path, NOT_INDEXABLE, failure.reason) for path, failure in batch.failures.items()]

    def _documents(self, batch: SyncBatch) -> tuple[list[CrossModalDoc], dict[str, str]]:
        """The photo documents of a batch's kept photos, and the photos (id -> reason) that cannot be indexed."""
        live = [photo for photo in batch.photos if not photo.removed]
        vectors = read_vectors(self._image_index, [photo.photo_id for photo in live]) if live else {}
        model = self._stored_model() if vectors else None
        stored = read_records(self._image_index, list(vectors)) if model else {}
        documents: list[CrossModalDoc] = []
        failed: dict[str, str] = {}
        for photo in live:
            record = stored.get(photo.photo_id)
            signature = record.tags.get(SIGNATURE_TAG) if record is not None else None
            try:
                documents.append(self._document(photo, vectors.get(photo.photo_id) if model else None, model,
                                                signature if isinstance(signature, str) else None))
            except (PhotoMetadataError, ImageDecodeError, OSError) as error:
                failed[photo.photo_id] = str(error) or type(error).__name__
        return documents, failed

    def _document(self, photo: PhotoChange, vector: Any, model: str | None,
                  signature: str | None = None) -> CrossModalDoc:
        """The photo's document: pre-embedded when its vector is stored (``signature``: its stored record's),
        else its path for the index flow's encoder to read (`read_files`), with the hash of the bytes read here:
        the encoder refuses a file that has changed since, so the vector is always of the bytes hashed. The sync
        reads each new photo once for its hash and its signature (a JPEG's at a reduced scale), and does not decode
        it in full: corrupt pixels are refused by the encoder (see `_apply_batch`)."""
        assert photo.path is not None
        metadata = read_photo_metadata(self.root / photo.path, self.root).as_dict()
        metadata["paths"] = list(photo.paths)
        tags = {"pair_id": photo_pair_id(self.library, photo.sha256), "dataset": FOLDER_DATASET, "split": NO_SPLIT,
                METADATA_TAG: json.dumps(metadata, ensure_ascii=False)}
        uri = str(self.root / photo.path)
        if vector is not None and model:
            signature = signature or self._file_signature(photo)
            return CrossModalDoc(id=photo.photo_id, modality=IMAGE, uri=uri, embedding=vector,
                                 tags={**tags, MODEL_TAG: model, **({SIGNATURE_TAG: signature} if signature else {})})
        data = self._read(photo.path)
        if hashlib.sha256(data).hexdigest() != photo.sha256:
            raise ImageDecodeError("the file changed during the sync (indexed by the next one)")
        signature = _signature(data)
        if signature:
            tags[SIGNATURE_TAG] = signature
        return CrossModalDoc(id=photo.photo_id, modality=IMAGE, uri=uri,
                             tags={**tags, CONTENT_SHA256_TAG: photo.sha256})

    def _file_signature(self, photo: PhotoChange) -> str | None:
        """The signature of a stored photo whose record has none (stored before signatures were): read once; None
        when the file changed since it was hashed or cannot be read (the photo keeps pairing by its vector)."""
        assert photo.path is not None
        try:
            data = self._read(photo.path)
        except (ImageDecodeError, OSError):
            return None
        return _signature(data) if hashlib.sha256(data).hexdigest() == photo.sha256 else None

    def _read(self, relative: str) -> bytes:
        with open_library_file(self.root, relative) as handle:
            data = handle.read(DEFAULT_MAX_BYTES + 1)
        if len(data) > DEFAULT_MAX_BYTES:
            raise ImageDecodeError(f"image file too large: over the limit of {DEFAULT_MAX_BYTES} bytes")
        return data

    def _stored_model(self) -> str | None:
        for folder in shard_folders(self._image_index):
            settings = stored_settings(folder)
            if settings is not None:
                return settings.model_name
        return None

    def _delete(self, flow: Any, photos: Iterable[tuple[str, str | None]]) -> None:
        docs: list[CrossModalDoc] = []
        for photo_id, pair_id in photos:
            tags = {"pair_id": pair_id} if pair_id else {}
            docs.append(CrossModalDoc(id=photo_id, modality=IMAGE, tags=dict(tags)))
            if pair_id:
                docs.append(CrossModalDoc(id=DELETED_CAPTIONS_PREFIX + photo_id, modality=TEXT, tags=dict(tags)))
        if not docs:
            return
        results = flow.post("/delete", inputs=DocList[CrossModalDoc](docs), request_size=len(docs),
                            return_type=DocList[CrossModalDoc])
        errors = sorted({doc.tags[ERROR_TAG] for doc in results if ERROR_TAG in doc.tags})
        if errors:
            raise SyncError(f"the index refused to remove photos: {'; '.join(errors)}")


# --- watch ------------------------------------------------------------------------------------------------------


class FolderChanges(FileSystemEventHandler):
    """File-system events of a library folder that may change it: photo files, and folders (a moved or deleted
    folder carries photos). Hidden entries and other files (the workspace's own, if it lies inside) are ignored."""

    def __init__(self, root: Path, ignore: Iterable[Path] = ()) -> None:
        super().__init__()
        self.root = root
        self.ignore = tuple(str(path.resolve()) for path in ignore)
        self.suffixes = library_suffixes()
        self.event = threading.Event()
        self.last = 0.0
        self.first = 0.0

    def relevant(self, path: str, is_directory: bool) -> bool:
        if not path or any(path == ignored or path.startswith(ignored.rstrip("/") + "/") for ignored in self.ignore):
            return False
        try:
            parts = Path(path).relative_to(self.root).parts
        except ValueError:
            return False
        if any(part.startswith(".") for part in parts):
            return False
        return is_directory or Path(path).suffix.lower() in self.suffixes

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(self.relevant(_text(path), event.is_directory) for path in paths if path):
            now = time.monotonic()
            if not self.event.is_set():
                self.first = now
            self.last = now
            self.event.set()

    def settled(self, debounce: float) -> bool:
        """Quiet for `debounce` seconds since the last event (or changing for MAX_DEBOUNCE already)."""
        now = time.monotonic()
        return now - self.last >= debounce or now - self.first >= MAX_DEBOUNCE

    def take(self) -> None:
        self.event.clear()


def _signature(data: bytes) -> str | None:
    """A photo's perceptual signature, or None when its pixels do not decode (it still pairs by its vector)."""
    try:
        return bytes_signature(data)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


def _text(path: str | bytes) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path


def watch_library(sync: LibrarySync, flow: Any, report: Callable[[str], None], scan_interval: float,
                  debounce: float = DEFAULT_DEBOUNCE, should_stop: Callable[[], bool] = lambda: False,
                  poll: float = 0.25) -> None:
    """Sync now, then on events (debounced) and every `scan_interval` seconds, until `should_stop()` or a
    KeyboardInterrupt (SIGINT/SIGTERM under `serving.runtime.flows.running`). `report` gets each sync's line: the
    first one's, and then those of syncs that changed something. A sync the library refuses (an empty folder that
    looks unmounted, a missing folder) is reported and retried at the next event or scan; the index is left as it
    is."""
    from watchdog.observers import Observer

    changes = FolderChanges(sync.root, ignore=[sync.workspace])
    observer = Observer()
    observer.schedule(changes, str(sync.root), recursive=True)
    observer.daemon = True
    observer.start()
    try:
        first = True
        while not should_stop():
            changes.take()
            try:
                summary = sync.sync(flow)
            except (SyncRefused, NotADirectoryError, FileNotFoundError) as error:
                report(f"library {sync.library!r} not synced: {error}")
            else:
                if first or summary.changed_anything:
                    report(summary.report())
            first = False
            due = time.monotonic() + scan_interval
            while not should_stop() and time.monotonic() < due:
                if not changes.event.is_set():
                    changes.event.wait(poll)  # in slices: the main thread must run for a stop signal's handler
                elif changes.settled(debounce):
                    break
                else:
                    time.sleep(min(poll, debounce))
    finally:
        observer.stop()
        observer.join(timeout=5)

"""Indexer executor: a thin adapter that stores embedded docs in a VectorStore and answers nearest-neighbour queries."""
import asyncio
import functools
from pathlib import Path
from typing import Any

import numpy as np
from docarray import DocList

from crossmodal.index import Hit, VectorStore, stored_settings
from crossmodal.index.photo_filter import PhotoFilter
from crossmodal.index.shards import shard_folder, shard_of
from crossmodal.index.tags import (
    CANDIDATES_TAG,
    ERROR_TAG,
    FILTER_TAG,
    MODEL_TAG,
    record_from_document,
    refuse,
    wire_tags_of_record,
)
from crossmodal.modality import MODALITIES
from serving.runtime.executor import CrossModalExecutor, requests
from serving.wire import CrossModalDoc, MatchDoc


class Indexer(CrossModalExecutor):
    """Holds one modality's index (`modality`) in `folder`; answers queries of the other modality with matches.

    The model is not configured here: the encoders tag every embedding with the backend that made it, the store
    records the first one it sees, and a document or query from another model is refused with both names.
    """

    def __init__(self, modality: str, folder: str, index_type: str = "flat", hnsw_m: int = 32, ef_search: int = 64,
                 read_only: bool = False, num_shards: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality
        self.num_shards = int(num_shards)
        self.shard_id = int(getattr(self.runtime_args, "shard_id", None) or 0)
        self.folder = shard_folder(Path(folder), self.num_shards, self.shard_id)
        self.index_type, self.hnsw_m, self.ef_search = index_type, int(hnsw_m), int(ef_search)
        self.read_only = bool(read_only)
        self.store: VectorStore | None = None
        self._open_existing_store()
        self.started()

    def _open_existing_store(self) -> VectorStore | None:
        """Open the store if one was written to `folder` (perhaps by an index flow started after us)."""
        settings = stored_settings(self.folder)
        if settings is not None:
            self._open_store(settings.model_name, settings.dim)
        return self.store

    def _open_store(self, model_name: str, dim: int) -> VectorStore:
        """Raises ModelMismatchError when the folder was built by another model or dimension."""
        self.store = VectorStore(self.folder, self.modality, model_name, dim, index_type=self.index_type,
                                 hnsw_m=self.hnsw_m, ef_search=self.ef_search, read_only=self.read_only)
        return self.store

    @requests(on="/index")
    def index(self, docs: DocList[CrossModalDoc], parameters: dict | None = None,
              **kwargs: Any) -> DocList[CrossModalDoc]:
        """Every shard sees every document (polling ALL) and keeps the ones it owns, so an id always lands in the
        same shard and re-indexing replaces it instead of duplicating it in another shard.

        Answers with every document (without embedding and image bytes), or with `parameters={"reply": "errors"}`
        only the refused ones, stripped to id, modality and tags (serving/jobs/indexing.py counts the rest)."""
        accepted = []
        for doc in docs:
            if doc.modality != self.modality:
                refuse(doc.tags, f"{self.modality} index received a {doc.modality!r} document", 500)
            elif doc.embedding is not None and ERROR_TAG not in doc.tags:
                if shard_of(doc.id, self.num_shards) == self.shard_id:
                    accepted.append(doc)
        if accepted:
            vectors = np.stack([np.asarray(doc.embedding, dtype=np.float32) for doc in accepted])
            models = {doc.tags.get(MODEL_TAG, "unknown") for doc in accepted}
            if len(models) > 1:
                raise ValueError(f"one batch holds embeddings of several models: {sorted(models)}")
            model = models.pop()
            store = self.store
            if store is None or store.model_name != model:
                store = self._open_store(model, vectors.shape[1])
            records, kept = [], []
            for position, doc in enumerate(accepted):
                try:
                    records.append(record_from_document(doc.id, doc.modality, doc.text, doc.uri, doc.tags))
                    kept.append(position)
                except ValueError as error:  # a metadata tag that is not a JSON object
                    refuse(doc.tags, str(error), 400)
            if records:
                store.add(records, vectors[kept])
        for doc in docs:
            doc.embedding = None
            doc.image_b64 = None
        if (parameters or {}).get("reply") == "errors":
            refused = [doc for doc in docs if ERROR_TAG in doc.tags]
            for doc in refused:
                doc.text = doc.uri = None
            return DocList[CrossModalDoc](refused)
        return docs

    @requests(on="/search")
    async def search(self, docs: DocList[CrossModalDoc], parameters: dict | None = None,
                     **kwargs: Any) -> DocList[CrossModalDoc]:
        """Each query's best `limit` matches in this shard, on the event loop (see `CrossModalExecutor`). A search
        takes under a ms on the demo and about 150 ms on a flat index of a million vectors (docs/scale-out.md), but
        the store runs one search at a time under its lock whichever thread calls it, so a thread would add its
        handoff and no parallelism. The exception is a search that must first load the index another process wrote (a
        read-only indexer after a sync: seconds on a large index): that one runs in a thread."""
        limit = int((parameters or {}).get("limit", 10))
        store = self.store or self._open_existing_store()
        queries = []
        for doc in docs:
            if doc.embedding is None or store is None:
                continue
            model = doc.tags.get(MODEL_TAG)
            if model != store.model_name:
                refuse(doc.tags, f"the {self.modality} index in {self.folder} was built with model "
                                 f"{store.model_name!r}, but this query was embedded with {model!r}; "
                                 "query with the model that built it, or index into another workspace", 409)
            else:
                queries.append(doc)
        by_filter: dict[str, list[CrossModalDoc]] = {}  # one search per filter (a /search/batch mixes them)
        for doc in queries:
            by_filter.setdefault(doc.tags.get(FILTER_TAG, ""), []).append(doc)
        for filter_json, group in by_filter.items():
            if store is None:
                break
            try:
                photo_filter = PhotoFilter.from_json(filter_json)
            except (TypeError, ValueError) as error:
                for doc in group:
                    refuse(doc.tags, f"unusable photo filter: {error}", 400)
                continue
            vectors = np.stack([np.asarray(doc.embedding, dtype=np.float32) for doc in group])
            search = functools.partial(store.search_counted, vectors, limit, photo_filter)
            if store.search_is_ready():
                found, candidates = search()
            else:  # a new snapshot to load or a write to wait for: in a thread, the loop answers health checks
                found, candidates = await asyncio.to_thread(search)
            for doc, hits in zip(group, found):
                doc.matches = DocList[MatchDoc]([_to_match(hit) for hit in hits])
                doc.tags[f"{CANDIDATES_TAG}:{self.shard_id}"] = str(candidates)  # distinct keys: shards' tags merge
        for doc in docs:
            doc.image_b64 = None  # the query's embedding goes back: the gateway calibrates and explains with it
        return docs

    @requests(on="/encode")
    async def pass_on(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Composed queries' parts, embedded by the encoders, go back to the gateway untouched. Jina 3.34 refuses
        to start a flow where an executor does not expose an endpoint that the executor before it exposes."""
        return docs

    @requests(on="/delete")
    def delete(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Remove, in this shard, the record of each document's id and every record of its `pair_id` tag (a photo
        with its captions), in one transaction. Every shard sees every document (polling ALL) and removes what it
        holds; a document of either modality that reaches this indexer is applied to its own index."""
        ids = [doc.id for doc in docs if doc.id]
        pair_ids = [doc.tags["pair_id"] for doc in docs if doc.tags.get("pair_id")]
        store = self.store or self._open_existing_store()
        if self.read_only:
            for doc in docs:
                refuse(doc.tags, f"the {self.modality} index in {self.folder} is opened read-only", 409)
        elif store is not None and (ids or pair_ids):
            store.delete(ids, pair_ids)
        for doc in docs:
            doc.embedding = None
            doc.image_b64 = None
        return docs

    @requests(on="/flush")
    def flush(self, **kwargs: Any) -> None:
        if self.store is not None:
            self.store.flush()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        super().close()


def _to_match(hit: Hit) -> MatchDoc:
    record = hit.record
    return MatchDoc(id=record.id, modality=record.modality, score=hit.score, text=record.text, uri=record.uri,
                    tags=wire_tags_of_record(record))

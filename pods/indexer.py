"""Indexer executor: a thin adapter that stores embedded docs in a VectorStore and answers nearest-neighbour queries."""

from pathlib import Path
from typing import Any

import numpy as np
from docarray import DocList
from jina import Executor, requests

from crossmodal.backends import DEFAULT_BACKEND
from crossmodal.store import Hit, Record, VectorStore, stored_settings
from serving.schema import MODALITIES, CrossModalDoc, MatchDoc

RECORD_TAGS = ("pair_id", "dataset", "split")


class Indexer(Executor):
    """Holds one modality's index (`modality`) in `folder`; answers queries of the other modality with matches."""

    def __init__(self, modality: str, folder: str, model: str = DEFAULT_BACKEND, index_type: str = "flat",
                 hnsw_m: int = 32, ef_search: int = 64, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality
        self.folder = Path(folder)
        self.model = model
        self.store_options = {"index_type": index_type, "hnsw_m": int(hnsw_m), "ef_search": int(ef_search),
                              "read_only": bool(read_only)}
        self.store: VectorStore | None = None
        # Opening with our model name raises ModelMismatchError now, at start-up, not at the first query.
        self._open_existing_store()

    def _open_existing_store(self) -> VectorStore | None:
        """Open the store if one was written to `folder` (perhaps by an index flow started after us)."""
        settings = stored_settings(self.folder)
        if settings is not None:
            self._open_store(dim=settings.dim)
        return self.store

    def _open_store(self, dim: int) -> VectorStore:
        self.store = VectorStore(self.folder, self.modality, self.model, dim, **self.store_options)
        return self.store

    @requests(on="/index")
    def index(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        accepted = []
        for doc in docs:
            if doc.modality != self.modality:
                doc.tags["error"] = f"{self.modality} index received a {doc.modality!r} document"
            elif doc.embedding is not None and "error" not in doc.tags:
                accepted.append(doc)
        if accepted:
            vectors = np.stack([np.asarray(doc.embedding, dtype=np.float32) for doc in accepted])
            store = self.store or self._open_store(dim=vectors.shape[1])
            store.add([_to_record(doc) for doc in accepted], vectors)
        for doc in docs:
            doc.embedding = None
            doc.image_b64 = None
        return docs

    @requests(on="/search")
    def search(self, docs: DocList[CrossModalDoc], parameters: dict | None = None, **kwargs: Any) -> DocList[CrossModalDoc]:
        limit = int((parameters or {}).get("limit", 10))
        queries = [doc for doc in docs if doc.embedding is not None]
        store = self.store or self._open_existing_store()
        if queries and store is not None and store.count():
            vectors = np.stack([np.asarray(doc.embedding, dtype=np.float32) for doc in queries])
            for doc, hits in zip(queries, store.search(vectors, limit)):
                doc.matches = DocList[MatchDoc]([_to_match(hit) for hit in hits])
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


def _to_record(doc: CrossModalDoc) -> Record:
    extra = {key: value for key, value in doc.tags.items() if key not in RECORD_TAGS}
    return Record(id=doc.id, modality=doc.modality, text=doc.text, uri=doc.uri, pair_id=doc.tags.get("pair_id"),
                  dataset=doc.tags.get("dataset"), split=doc.tags.get("split"), tags=extra)


def _to_match(hit: Hit) -> MatchDoc:
    record = hit.record
    tags = {key: str(value) for key, value in record.tags.items()}
    tags.update({key: value for key in RECORD_TAGS if (value := getattr(record, key)) is not None})
    return MatchDoc(id=record.id, modality=record.modality, score=hit.score, text=record.text, uri=record.uri, tags=tags)

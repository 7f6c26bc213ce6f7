"""Indexer executor: a thin adapter that stores embedded docs in a VectorStore and answers nearest-neighbour queries."""
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from docarray import DocList
from jina import Executor, requests

from crossmodal.store import SHARD_PREFIX, Hit, Record, VectorStore, shard_folders, shard_of, stored_settings
from serving import jina_patches
from serving.schema import MODALITIES, MODEL_TAG, CrossModalDoc, MatchDoc

jina_patches.apply()  # before this process builds its gRPC server (see serving/jina_patches.py)

RECORD_TAGS = ("pair_id", "dataset", "split")
SHARD_LAYOUT_FILE = "shards.json"


class Indexer(Executor):
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
        self.folder = _shard_folder(Path(folder), self.num_shards, self.shard_id)
        self.store_options = {"index_type": index_type, "hnsw_m": int(hnsw_m), "ef_search": int(ef_search),
                              "read_only": bool(read_only)}
        self.store: VectorStore | None = None
        self._open_existing_store()

    def _open_existing_store(self) -> VectorStore | None:
        """Open the store if one was written to `folder` (perhaps by an index flow started after us)."""
        settings = stored_settings(self.folder)
        if settings is not None:
            self._open_store(settings.model_name, settings.dim)
        return self.store

    def _open_store(self, model_name: str, dim: int) -> VectorStore:
        """Raises ModelMismatchError when the folder was built by another model or dimension."""
        self.store = VectorStore(self.folder, self.modality, model_name, dim, **self.store_options)
        return self.store

    @requests(on="/index")
    def index(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Every shard sees every document (polling ALL) and keeps the ones it owns, so an id always lands in the
        same shard and re-indexing replaces it instead of duplicating it in another shard."""
        accepted = []
        for doc in docs:
            if doc.modality != self.modality:
                doc.tags["error"] = f"{self.modality} index received a {doc.modality!r} document"
            elif doc.embedding is not None and "error" not in doc.tags:
                if shard_of(doc.id, self.num_shards) == self.shard_id:
                    accepted.append(doc)
        if accepted:
            vectors = np.stack([np.asarray(doc.embedding, dtype=np.float32) for doc in accepted])
            models = {doc.tags.get(MODEL_TAG, "unknown") for doc in accepted}
            if len(models) > 1:
                raise ValueError(f"one batch holds embeddings of several models: {sorted(models)}")
            model = models.pop()
            if self.store is None or self.store.model_name != model:
                self._open_store(model, vectors.shape[1])
            self.store.add([_to_record(doc) for doc in accepted], vectors)
        for doc in docs:
            doc.embedding = None
            doc.image_b64 = None
        return docs

    @requests(on="/search")
    def search(self, docs: DocList[CrossModalDoc], parameters: dict | None = None, **kwargs: Any) -> DocList[CrossModalDoc]:
        limit = int((parameters or {}).get("limit", 10))
        store = self.store or self._open_existing_store()
        queries = []
        for doc in docs:
            if doc.embedding is None or store is None:
                continue
            model = doc.tags.get(MODEL_TAG)
            if model != store.model_name:
                doc.tags["error"] = (f"the {self.modality} index in {self.folder} was built with model "
                                     f"{store.model_name!r}, but this query was embedded with {model!r}; "
                                     "query with the model that built it, or index into another workspace")
            else:
                queries.append(doc)
        if queries and store.count():
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


def _shard_folder(root: Path, num_shards: int, shard_id: int) -> Path:
    """`root` itself for one shard, `root/shard-N` for several.

    Documents are partitioned by a hash of their id modulo the shard count, so an index can only be opened with
    the shard count that built it (recorded in `root/shards.json`); anything else is refused.
    """
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"invalid sharding: shard {shard_id} of {num_shards}")
    layout = root / SHARD_LAYOUT_FILE
    existing = shard_folders(root)
    built = json.loads(layout.read_text())["shards"] if layout.is_file() else (1 if existing else None)
    if built is not None and built != num_shards:
        raise ValueError(f"the index in {root} was built with {built} shard(s), not {num_shards}; "
                         "start the flow with that many shards or index into another workspace")
    if built is None:
        root.mkdir(parents=True, exist_ok=True)
        temporary = root / f".{SHARD_LAYOUT_FILE}.{shard_id}.tmp"
        temporary.write_text(json.dumps({"shards": num_shards}) + "\n")
        os.replace(temporary, layout)
    return root / f"{SHARD_PREFIX}{shard_id}" if num_shards > 1 else root


def _to_record(doc: CrossModalDoc) -> Record:
    extra = {key: value for key, value in doc.tags.items() if key not in RECORD_TAGS and key != MODEL_TAG}
    return Record(id=doc.id, modality=doc.modality, text=doc.text, uri=doc.uri, pair_id=doc.tags.get("pair_id"),
                  dataset=doc.tags.get("dataset"), split=doc.tags.get("split"), tags=extra)


def _to_match(hit: Hit) -> MatchDoc:
    record = hit.record
    tags = {key: str(value) for key, value in record.tags.items()}
    tags.update({key: value for key in RECORD_TAGS if (value := getattr(record, key)) is not None})
    return MatchDoc(id=record.id, modality=record.modality, score=hit.score, text=record.text, uri=record.uri, tags=tags)

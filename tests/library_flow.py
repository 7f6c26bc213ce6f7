"""An in-process stand-in for the index flow (flows/index.yml) for library sync tests: what the encoders and the
indexers do with `/index`, `/delete` and `/flush` documents, on real `VectorStore`s in the workspace, without Jina.

The image "encoder" embeds the decoded pixels (an 8x8 thumbnail, normalised) and passes pre-embedded documents on
(`serving.wire.is_embedded`), as img_emb/executor.py does; it records every photo it encoded. The "indexers" apply
`record_from_document` and `VectorStore.add` / `VectorStore.delete(ids, pair_ids)` as pods/indexer.py does.
`kill_at` (endpoint, n): the n-th post to that endpoint (1-based) kills the process with SIGKILL right after the
index wrote it (or before, with `before=True`), to test crash safety with a real kill.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np

from crossmodal.index import VectorStore
from crossmodal.index.shards import shard_folder
from crossmodal.index.tags import CONTENT_SHA256_TAG, ERROR_TAG, MODEL_TAG, record_from_document
from crossmodal.index.workspace import index_folder
from crossmodal.media.decoding import decode_image_bytes, image_bytes_from_base64, read_image_file
from crossmodal.modality import IMAGE, TEXT
from serving.wire import is_embedded

MODEL = "fake-pixels"
DIM = 8 * 8 * 3


def pixel_vector(data: bytes) -> np.ndarray:
    image = decode_image_bytes(data).resize((8, 8))
    vector = np.asarray(image, dtype=np.float32).reshape(-1) - 127.5
    return vector / (np.linalg.norm(vector) or 1.0)


class FakeIndexFlow:
    def __init__(self, workspace: Path, kill_at: tuple[str, int] | None = None, before: bool = False) -> None:
        self.workspace = Path(workspace)
        self.encoded: list[str] = []  # ids of photos the encoder embedded
        self.posts: list[str] = []
        self.kill_at, self.before = kill_at, before
        self.stores: dict[str, VectorStore] = {}

    def store(self, modality: str) -> VectorStore:
        if modality not in self.stores:
            folder = shard_folder(index_folder(self.workspace, modality), 1, 0)
            self.stores[modality] = VectorStore(folder, modality, MODEL, DIM)
        return self.stores[modality]

    def post(self, endpoint: str, inputs=(), request_size=None, parameters=None, return_type=None):
        self.posts.append(endpoint)
        kill = self.kill_at is not None and self.kill_at == (endpoint, self.posts.count(endpoint))
        if kill and self.before:
            os.kill(os.getpid(), signal.SIGKILL)
        docs = list(inputs)
        if endpoint == "/index":
            self._index(docs)
        elif endpoint == "/delete":
            for modality in (IMAGE, TEXT):
                mine = [doc for doc in docs if doc.modality == modality]
                if mine:
                    self.store(modality).delete([doc.id for doc in mine],
                                                [doc.tags["pair_id"] for doc in mine if doc.tags.get("pair_id")])
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return docs

    def _index(self, docs) -> None:
        for doc in docs:
            if doc.modality == IMAGE and not is_embedded(doc):
                try:  # bytes, or a path with the hash its bytes must have (as img_emb/executor.py reads it)
                    data = (image_bytes_from_base64(doc.image_b64) if doc.image_b64 else
                            read_image_file(doc.uri or "", expected_sha256=doc.tags.pop(CONTENT_SHA256_TAG, None)))
                    doc.embedding = pixel_vector(data)
                except ValueError as error:
                    doc.tags[ERROR_TAG] = f"image unreadable: {error}"
                    continue
                doc.image_b64 = None
                doc.tags[MODEL_TAG] = MODEL
                self.encoded.append(doc.id)
        for modality in (IMAGE, TEXT):
            mine = [doc for doc in docs if doc.modality == modality and doc.embedding is not None
                    and ERROR_TAG not in doc.tags]
            if mine:
                records = [record_from_document(doc.id, doc.modality, doc.text, doc.uri, doc.tags) for doc in mine]
                self.store(modality).add(records, np.stack([np.asarray(doc.embedding) for doc in mine]))

    def close(self) -> None:
        for store in self.stores.values():
            store.close()

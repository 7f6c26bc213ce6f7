"""Text encoder executor: embeds captions and text queries in batches with the chosen backend."""

from typing import Any

from docarray import DocList

from crossmodal.backends import DEFAULT_BACKEND
from crossmodal.modality import TEXT
from serving.runtime.executor import CrossModalExecutor, InputRefused, embed_documents, encoder_backend, requests
from serving.wire import CrossModalDoc

MAX_TEXTS_PER_CALL = 512


class TextEncoder(CrossModalExecutor):
    """Sets `embedding` on caption docs; an empty caption gets `tags['error']` and no embedding.

    A doc that arrives embedded already (a composed query the gateway combined from parts) passes through.
    """

    runs_model = True  # torch is importable in its process (serving.runtime.processes)

    def __init__(self, model: str = DEFAULT_BACKEND, model_options: dict | str | None = None, batch_size: int = 64,
                 cpu_share: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = encoder_backend(model, model_options, TEXT, float(cpu_share),
                                       self.local_replicas)  # its tower only
        self.batch_size = int(batch_size)
        # Load the weights now, so the flow is ready only when the first query can be answered at full speed.
        self.backend.encode_texts(["warm up"])
        self.started()

    @requests(on="/index")
    def encode(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Captions to index: batches that take a while, in Jina's thread pool (the event loop stays free)."""
        return self._embed(docs)

    @requests(on=["/search", "/encode"])
    async def encode_queries(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Text queries (a few ms each): on the event loop, see `CrossModalExecutor`."""
        return self._embed(docs)

    def _embed(self, docs: DocList[CrossModalDoc]) -> DocList[CrossModalDoc]:
        # The backend batches by itself (the offline model's ONNX tower by similar lengths, which pads least): it
        # gets a whole request's captions, up to `chunk` at a time so that memory stays bounded.
        chunk = max(self.batch_size, MAX_TEXTS_PER_CALL)
        embed_documents(docs, TEXT, _caption, self.backend.encode_texts, chunk, self.backend.name)
        return docs

    @requests(on="/delete")
    def pass_deletions(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Deletions (a library sync's removed photos) go on to the indexer untouched: nothing to encode."""
        return docs


def _caption(doc: CrossModalDoc) -> str:
    text = doc.text or ""
    if not text.strip():
        raise InputRefused("empty text")
    return text

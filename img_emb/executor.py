"""Image encoder executor: decodes image bytes safely and embeds them in batches with the chosen backend."""

from typing import Any

from docarray import DocList
from PIL import Image

from crossmodal.backends import DEFAULT_BACKEND
from crossmodal.index.tags import CONTENT_SHA256_TAG
from crossmodal.media.decoding import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    ImageTooLargeError,
    decode_image_bytes,
    image_bytes_from_base64,
    read_image_file,
)
from crossmodal.modality import IMAGE
from serving.runtime.executor import CrossModalExecutor, InputRefused, embed_documents, encoder_backend, requests
from serving.wire import CrossModalDoc


class ImageEncoder(CrossModalExecutor):
    """Sets `embedding` on image docs; a doc whose bytes do not decode gets `tags['error']` and no embedding.

    A doc that arrives embedded already (a composed query the gateway combined from parts) passes through.
    With `read_files` (the index flow only: its gateway and executors listen on the loopback, and only the indexing
    job on the same machine or container sends to it), a photo without bytes is read from its `uri`, a file path, so
    a camera's 3 MB photo no longer travels as 4 MB of base64 through the job, the gateway (which parses every
    request to route it) and the encoder. The query flow never reads a file a request names.
    """

    runs_model = True  # torch is importable in its process (serving.runtime.processes)

    def __init__(self, model: str = DEFAULT_BACKEND, model_options: dict | str | None = None, batch_size: int = 32,
                 max_pixels: int = DEFAULT_MAX_PIXELS, read_files: bool = False, cpu_share: float = 0.5,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = encoder_backend(model, model_options, IMAGE, float(cpu_share),
                                       self.local_replicas)  # its tower only
        self.batch_size = int(batch_size)
        self.max_pixels = int(max_pixels)
        self.read_files = bool(read_files)
        # Load the weights now, so the flow is ready only when the first query can be answered at full speed.
        self.backend.encode_images([Image.new("RGB", (32, 32))])
        self.started()

    @requests(on=["/index", "/search", "/encode"])
    def encode(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        embedded = embed_documents(docs, IMAGE, self._decoded, self.backend.encode_images, self.batch_size,
                                   self.backend.name)
        for doc in embedded:
            doc.image_b64 = None  # the vector is what travels on
        return docs

    def _decoded(self, doc: CrossModalDoc) -> Image.Image:
        try:
            return decode_image_bytes(self._image_bytes(doc), max_pixels=self.max_pixels,
                                      min_side=self.backend.image_side)
        except ImageDecodeError as error:
            raise InputRefused(f"image unreadable: {error}",
                               413 if isinstance(error, ImageTooLargeError) else 400) from None

    def _image_bytes(self, doc: CrossModalDoc) -> bytes:
        if doc.image_b64:
            return image_bytes_from_base64(doc.image_b64)
        if self.read_files and doc.uri:
            return read_image_file(doc.uri, expected_sha256=doc.tags.pop(CONTENT_SHA256_TAG, None))
        raise ImageDecodeError("no image data in the document")

    @requests(on="/delete")
    def pass_deletions(self, docs: DocList[CrossModalDoc], **kwargs: Any) -> DocList[CrossModalDoc]:
        """Deletions (a library sync's removed photos) go on to the indexer untouched: nothing to encode."""
        return docs

"""The image encoder reads a photo's file only in the index flow (`read_files`), and never a path a query names."""
from __future__ import annotations

import numpy as np
import pytest
from docarray import DocList
from PIL import Image

from crossmodal.index.tags import ERROR_TAG
from serving.wire import CrossModalDoc


@pytest.fixture(scope="module")
def encoders():
    from img_emb.executor import ImageEncoder

    return {read_files: ImageEncoder(model="offline", read_files=read_files) for read_files in (True, False)}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "red.jpg"
    pixels = np.zeros((300, 400, 3), dtype=np.uint8)
    pixels[..., 0] = 200
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


def encode(encoder, *docs: CrossModalDoc) -> DocList[CrossModalDoc]:
    return encoder.encode(DocList[CrossModalDoc](list(docs)))


def test_the_index_flow_encoder_reads_the_file_once_and_embeds_as_from_bytes(encoders, photo):
    import base64

    by_path = encode(encoders[True], CrossModalDoc(id="a", modality="image", uri=str(photo)))[0]
    by_bytes = encode(encoders[False], CrossModalDoc(id="b", modality="image",
                                                     image_b64=base64.b64encode(photo.read_bytes()).decode()))[0]
    assert ERROR_TAG not in by_path.tags and by_path.uri == str(photo) and by_path.image_b64 is None
    np.testing.assert_allclose(by_path.embedding, by_bytes.embedding, atol=1e-6)


def test_a_missing_file_is_refused_and_the_others_encoded(encoders, photo, tmp_path):
    docs = encode(encoders[True], CrossModalDoc(id="gone", modality="image", uri=str(tmp_path / "gone.jpg")),
                  CrossModalDoc(id="ok", modality="image", uri=str(photo)))
    assert "file not found" in docs[0].tags[ERROR_TAG] and docs[0].embedding is None
    assert ERROR_TAG not in docs[1].tags and docs[1].embedding is not None


def test_the_query_flow_encoder_never_reads_a_path(encoders, photo):
    doc = encode(encoders[False], CrossModalDoc(id="q", modality="image", uri=str(photo)))[0]
    assert doc.tags[ERROR_TAG] == "image unreadable: no image data in the document" and doc.embedding is None


def test_a_photo_sent_by_path_must_still_have_the_bytes_the_sync_hashed(encoders, photo):
    """A photo-folder sync sends the hash of the bytes it read: the vector is of those bytes or of none."""
    import hashlib

    from crossmodal.index.tags import CONTENT_SHA256_TAG

    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    same = encode(encoders[True], CrossModalDoc(id="same", modality="image", uri=str(photo),
                                                tags={CONTENT_SHA256_TAG: digest}))[0]
    assert same.embedding is not None and CONTENT_SHA256_TAG not in same.tags  # checked, not stored
    changed = encode(encoders[True], CrossModalDoc(id="changed", modality="image", uri=str(photo),
                                                   tags={CONTENT_SHA256_TAG: "0" * 64}))[0]
    assert changed.embedding is None and "the file changed since it was scanned" in changed.tags[ERROR_TAG]

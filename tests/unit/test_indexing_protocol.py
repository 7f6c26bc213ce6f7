"""The indexing job's protocol with the index flow, against a stand-in flow (no Jina): one read and one decode per
photo (the job sends its path and neither reads nor decodes it; the reader checks headers only; the index flow's
image encoder reads it), captions one request after their photo was stored,
only refused documents come back (counts are what was sent minus what was refused)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import crossmodal.media.decoding as imaging
from crossmodal.index.ids import CAPTION_ID_PREFIX, IMAGE_ID_PREFIX, image_doc_id
from dataset import FolderReader
from serving.jobs.indexing import ERRORS_ONLY, index_dataset


def jpeg(size=(64, 48), seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


class StandInFlow:
    """Answers /index like the index flow with `reply: errors`: the image documents it cannot decode are refused."""

    def __init__(self) -> None:
        self.requests: list[tuple[list, dict]] = []

    def post(self, endpoint, inputs, parameters=None, **kwargs):
        if endpoint == "/flush":
            return []
        docs = list(inputs)
        self.requests.append(([(doc.modality, doc.id) for doc in docs], dict(parameters or {})))
        refused = []
        for doc in docs:
            if doc.modality == "image":
                try:
                    assert not doc.image_b64  # the encoder reads the file: no bytes travel
                    imaging.decode_image_bytes(imaging.read_image_file(doc.uri))
                except imaging.ImageDecodeError as error:
                    doc.tags["error"] = f"image unreadable: {error}"
                    refused.append(doc)
        return refused


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    names = [f"p{n}.jpg" for n in range(5)]
    for n, name in enumerate(names):
        (root / name).write_bytes(jpeg(seed=n))
    whole = jpeg((400, 300), seed=9)
    (root / "p2.jpg").write_bytes(whole[: len(whole) // 2])  # a truncated photo: its header is fine
    (root / "notes.jpg").write_text("not a photo\n")
    (root / "captions.csv").write_text("image,caption\n" + "".join(f"{name},caption {n} of {name}\n"
                                                                    for name in [*names, "notes.jpg"]
                                                                    for n in range(3)))
    return root


def test_photos_are_decoded_once_and_captions_follow_their_stored_photo(folder, tmp_path, monkeypatch):
    decodes = []
    real_decode = imaging.decode_image_bytes
    monkeypatch.setattr(imaging, "decode_image_bytes", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    flow = StandInFlow()
    summary = index_dataset(flow, FolderReader(folder), tmp_path / "workspace", batch_size=2)

    # the reader refused the text file by its header; the truncated photo reached the flow, decoded there only
    assert len(decodes) == 5  # one decode per photo sent, all of them in the (stand-in) encoder
    assert (summary.images, summary.captions) == (4, 12)
    reasons = {item.item.rsplit("/", 1)[-1]: item.reason for item in summary.skipped}
    assert set(reasons) == {"notes.jpg", "p2.jpg"} and "truncated" in reasons["p2.jpg"]
    assert all(parameters == ERRORS_ONLY for _, parameters in flow.requests)

    sent = [docs for docs, _ in flow.requests]
    assert len(sent) == 4  # 3 batches of photos (2, 2, 1), then the last batch's captions
    truncated = image_doc_id(next(item.item for item in summary.skipped if item.item.endswith("p2.jpg")))
    stored_photos: set[str] = set()
    for n, docs in enumerate(sent):
        photos_now = [doc_id for modality, doc_id in docs if modality == "image"]
        assert len(photos_now) <= 2
        previous = [doc_id for modality, doc_id in sent[n - 1] if modality == "image"] if n else []
        # the captions of the previous request's stored photos: not one of a refused photo
        assert {photo_of(doc_id) for modality, doc_id in docs if modality == "text"} == set(previous) - {truncated}
        stored_photos |= set(photos_now) - {truncated}
    assert truncated in {doc_id for docs in sent for modality, doc_id in docs if modality == "image"}
    assert sum(modality == "text" for docs in sent for modality, _ in docs) == 12 and len(stored_photos) == 4


def photo_of(caption_id: str) -> str:
    return IMAGE_ID_PREFIX + caption_id.removeprefix(CAPTION_ID_PREFIX).rsplit("-", 1)[0]


def test_a_reading_failure_still_sends_the_captions_of_the_stored_photos(folder, tmp_path):
    class Broken(FolderReader):
        def __iter__(self):
            for number, pair in enumerate(super().__iter__()):
                if number == 2:
                    raise RuntimeError("reading stopped")
                yield pair

    flow = StandInFlow()
    with pytest.raises(RuntimeError, match="reading stopped"):
        index_dataset(flow, Broken(folder), tmp_path / "workspace", batch_size=2)
    sent = [docs for docs, _ in flow.requests]
    assert [sum(modality == "image" for modality, _ in docs) for docs in sent] == [2, 0]
    assert sum(modality == "text" for docs in sent for modality, _ in docs) == 6

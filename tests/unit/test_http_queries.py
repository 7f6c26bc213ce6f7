"""Turning what a client sends into flow queries, and the jinabox answer shape, without a flow.

The same checks run over real HTTP in tests/integration; these pin each rule to the function that owns it.
"""
import base64
import io

import pytest
from fastapi import HTTPException
from PIL import Image

from crossmodal.modality import IMAGE, TEXT
from serving.http import jinabox
from serving.http.queries import QueryBuilder


@pytest.fixture
def builder(tmp_path):
    return QueryBuilder(tmp_path / "image_index", max_image_bytes=1 << 20, max_pixels=10_000_000)


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def status_of(call) -> int:
    with pytest.raises(HTTPException) as refused:
        call()
    return refused.value.status_code


def test_a_lone_surrogate_in_any_text_is_a_400_that_says_so(builder):
    for text in ("\ud800", "a cup of \udfff coffee"):
        with pytest.raises(HTTPException) as refused:
            builder.text(text)
        assert refused.value.status_code == 400 and "not valid Unicode" in refused.value.detail
        assert status_of(lambda text=text: builder.jinabox_item(text, 0)) == 400
    text_uri = "data:text/plain;base64," + base64.b64encode("caf\u00e9".encode()).decode()
    assert builder.jinabox_item(text_uri, 0).text == "caf\u00e9"


def test_a_data_uri_of_another_media_type_is_415_in_every_field(builder):
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 not a photo").decode()
    assert status_of(lambda: builder.image_base64(pdf)) == 415
    assert status_of(lambda: builder.jinabox_item(pdf, 0)) == 415
    assert status_of(lambda: builder.image_base64("data:image/png;base64,bm90IGEgcGhvdG8=")) == 400  # claims a photo


def test_photos_and_texts_become_queries_of_their_modality_searching_the_other(builder):
    photo = builder.jinabox_item(png_data_uri(), 0)
    assert (photo.modality, photo.target, photo.mime_type) == (IMAGE, TEXT, "image/png")
    text = builder.text("  a cup of coffee ")
    assert (text.modality, text.target, text.text) == (TEXT, IMAGE, "a cup of coffee")
    assert builder.text("a cat", target=TEXT).target == TEXT


def test_the_jinabox_answer_carries_what_every_published_build_reads():
    docs = [{"id": "q0", "mimeType": "text/plain", "mime_type": "text/plain", "matches": []}]
    answer = jinabox.widget_response(docs, 16)
    assert answer["search"]["docs"] == answer["data"]["docs"] == docs  # 2020 and 0.1.49 / 0.1.50
    assert answer["parameters"] == {"top_k": 16}
    error = jinabox.jinabox_error_extras("no index")
    assert error["search"]["docs"] == error["data"]["docs"] == []
    assert error["status"] == {"code": "ERROR", "description": "no index"}

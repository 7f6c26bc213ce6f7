"""jinabox.js contract tests: the exact bodies the widget posts, over real HTTP, against a real query flow.

Contract: shared/reference/rest-contracts.md. The Jina 0.5 widget posts `{"data", "top_k", "mode"}` to
`/api/search` and reads `search.docs[i].matches` (sorted by `score.value`, a similarity; `uri` for photos, `text`
for captions). The Jina 2.x widget posts `{"data", "parameters": {"top_k"}}` to `/search` and reads
`data.docs[i].matches`. The widget runs on another origin, so CORS must answer its preflight.
"""
import base64
from urllib.parse import urlsplit

import pytest

from crossmodal.index.ids import image_doc_id

CAT = "demo/chelsea_cat.png"
COFFEE = "demo/coffee.png"
WIDGET_ORIGIN = "http://localhost:3000"


@pytest.fixture(scope="module")
def workspace(demo_workspace):
    """The demo collection, indexed once per session (tests/integration/conftest.py)."""
    return demo_workspace


@pytest.fixture(scope="module")
def cat_data_uri(workspace) -> str:
    """What the widget's FileReader.readAsDataURL makes of a dropped PNG."""
    photo = (workspace / "demo_images" / "chelsea_cat.png").read_bytes()
    return "data:image/png;base64," + base64.b64encode(photo).decode()


def widget_post(client, path, body):
    """Posted as the widget does: JSON from another origin."""
    response = client.post(path, json=body, headers={"origin": WIDGET_ORIGIN})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in ("*", WIDGET_ORIGIN)
    return response.json()


def check_matches(matches, top_k):
    assert 0 < len(matches) <= top_k
    values = [match["score"]["value"] for match in matches]
    assert values == sorted(values, reverse=True) and all(-1.0 <= value <= 1.0001 for value in values)
    for match in matches:
        assert match["id"] and match["mimeType"] and match["scores"]["cosine"]["value"] == match["score"]["value"]
        if match["modality"] == "image":
            assert match["mimeType"].startswith("image/") and match["uri"].endswith(f"/images/{match['id']}")
        else:
            assert match["mimeType"] == "text/plain" and match["text"]


def pair_ids(matches):
    return [match["tags"]["pair_id"] for match in matches]


# --- Jina 0.5 widget: POST /api/search ------------------------------------------------------------------------------

def test_text_query_answers_photos_in_the_0_5_shape(client):
    body = widget_post(client, "/api/search", {"data": ["a cup of coffee"], "top_k": 16, "mode": "search"})
    [doc] = body["search"]["docs"]
    assert doc["mimeType"] == "text/plain" and doc["text"] == "a cup of coffee"
    check_matches(doc["matches"], 16)
    assert len(doc["matches"]) == 16
    assert pair_ids(doc["matches"])[0] == COFFEE
    assert all(match["modality"] == "image" for match in doc["matches"])
    # the oldest widget versions read topkResults[].matchDoc: the same matches
    assert [result["matchDoc"] for result in doc["topkResults"]] == doc["matches"]
    assert [result["score"]["value"] for result in doc["topkResults"]] == [m["score"]["value"] for m in doc["matches"]]


def test_photo_uris_are_absolute_urls_the_widget_can_load(client):
    body = widget_post(client, "/api/search", {"data": ["a cup of coffee"], "top_k": 2, "mode": "search"})
    uri = body["search"]["docs"][0]["matches"][0]["uri"]
    assert uri.startswith(str(client.base_url).rstrip("/") + "/images/img-")
    photo = client.get(urlsplit(uri).path, headers={"origin": WIDGET_ORIGIN})
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"


def test_data_uri_photo_answers_captions(client, cat_data_uri):
    body = widget_post(client, "/api/search", {"data": [cat_data_uri], "top_k": 5, "mode": "search"})
    [doc] = body["search"]["docs"]
    assert doc["mimeType"] == "image/png" and doc["uri"] == cat_data_uri  # the widget previews the query from it
    check_matches(doc["matches"], 5)
    assert all(match["modality"] == "text" for match in doc["matches"])
    assert CAT in pair_ids(doc["matches"])[:3]
    cat_caption = next(match for match in doc["matches"] if match["tags"]["pair_id"] == CAT)
    assert "cat" in cat_caption["text"].lower()
    assert cat_caption["tags"]["image_url"].endswith(f"/images/{image_doc_id(CAT)}")


def test_text_and_photo_in_one_request_come_back_in_order(client, cat_data_uri):
    data = ["a cup of coffee", cat_data_uri, "a tabby cat with green eyes"]
    docs = widget_post(client, "/api/search", {"data": data, "top_k": 3, "mode": "search"})["search"]["docs"]
    assert [doc["mimeType"] for doc in docs] == ["text/plain", "image/png", "text/plain"]
    assert docs[0]["text"] == data[0] and docs[2]["text"] == data[2]
    assert pair_ids(docs[0]["matches"])[0] == COFFEE
    assert CAT in pair_ids(docs[1]["matches"]) and docs[1]["matches"][0]["modality"] == "text"
    assert pair_ids(docs[2]["matches"])[0] == CAT
    assert len({doc["id"] for doc in docs}) == 3
    for doc in docs:
        check_matches(doc["matches"], 3)


def test_other_strings_the_widget_may_send(client, workspace):
    cat_id = image_doc_id(CAT)
    text_file = "data:text/plain;base64," + base64.b64encode(b"a cup of coffee").decode()
    own_url = f"{client.base_url}/images/{cat_id}"
    body = {"data": [text_file, own_url], "top_k": 2, "mode": "search"}
    docs = widget_post(client, "/api/search", body)["search"]["docs"]
    assert docs[0]["text"] == "a cup of coffee" and pair_ids(docs[0]["matches"])[0] == COFFEE
    assert docs[1]["uri"] == own_url and CAT in pair_ids(docs[1]["matches"])


def test_top_k_above_the_maximum_is_capped(client):
    body = widget_post(client, "/api/search", {"data": ["a cat"], "top_k": 1000, "mode": "search"})
    assert len(body["search"]["docs"][0]["matches"]) == 19  # every photo; the cap is 100
    body = widget_post(client, "/api/search", {"data": ["a cat"], "top_k": "2"})
    assert len(body["search"]["docs"][0]["matches"]) == 2


@pytest.mark.parametrize("body, status, words", [
    ({"data": ["a cat"], "top_k": 16, "mode": "index"}, 400, ["only 'search'"]),
    ({"data": [], "top_k": 16, "mode": "search"}, 400, ["no query"]),
    ({"data": ["a cat"] * 33, "top_k": 16, "mode": "search"}, 400, ["at most 32"]),
    ({"data": ["data:image/png;base64,bm90IGFuIGltYWdl"], "top_k": 16}, 400, ["data[0]", "not a usable image"]),
    ({"data": ["a cat", "https://example.com/cat.jpg"], "top_k": 16}, 400, ["data[1]", "not downloaded"]),
    ({"data": ["data:video/mp4;base64,AAAA"], "top_k": 16}, 415, ["video/mp4"]),
    ({"data": ["   "], "top_k": 16}, 400, ["empty"]),
    ({"data": "a cat", "top_k": 16}, 422, ["data"]),
    ({"top_k": 16}, 422, ["data"]),
])
def test_refusals_carry_the_error_shape_and_the_widget_status(client, body, status, words):
    response = client.post("/api/search", json=body, headers={"origin": WIDGET_ORIGIN})
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"]["status"] == status
    for word in words:
        assert word in answer["error"]["message"]
    # jinabox reads search.docs, then shows status.description when status.code is ERROR
    assert answer["search"] == {"docs": []}
    assert answer["status"] == {"code": "ERROR", "description": answer["error"]["message"]}
    assert response.headers["access-control-allow-origin"] in ("*", WIDGET_ORIGIN)


# --- Jina 2.x widget: POST /search with parameters ------------------------------------------------------------------

def test_newer_widget_body_on_search_answers_data_docs(client, cat_data_uri):
    body = widget_post(client, "/search", {"data": ["a cup of coffee", cat_data_uri], "parameters": {"top_k": 4},
                                           "mode": "search"})
    docs = body["data"]["docs"]
    assert len(docs) == 2 and body["parameters"] == {"top_k": 4}
    assert docs[0]["text"] == "a cup of coffee" and pair_ids(docs[0]["matches"])[0] == COFFEE
    assert docs[1]["mimeType"] == "image/png" and CAT in pair_ids(docs[1]["matches"])
    for doc in docs:
        check_matches(doc["matches"], 4)
        # the 2020 widget (Jina 0.5 shape) pointed at /search reads topkResults[].matchDoc: there too
        assert [result["matchDoc"] for result in doc["topkResults"]] == doc["matches"]
    plain = widget_post(client, "/search", {"data": ["a cup of coffee"]})["data"]["docs"][0]
    assert len(plain["matches"]) == 10  # default top_k


def test_the_simple_api_and_the_widget_agree(client):
    simple = client.post("/search", json={"text": "a cup of coffee", "limit": 5}).json()["matches"]
    widget = widget_post(client, "/search", {"data": ["a cup of coffee"], "parameters": {"top_k": 5}})
    assert [m["id"] for m in simple] == [m["id"] for m in widget["data"]["docs"][0]["matches"]]
    widget_scores = [m["score"]["value"] for m in widget["data"]["docs"][0]["matches"]]
    assert [m["score"] for m in simple] == pytest.approx(widget_scores)


def test_widget_preflight_from_another_origin(client):
    for path in ("/api/search", "/search"):
        response = client.options(path, headers={"origin": WIDGET_ORIGIN, "access-control-request-method": "POST",
                                                 "access-control-request-headers": "content-type"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] in ("*", WIDGET_ORIGIN)
        assert "POST" in response.headers["access-control-allow-methods"]
        assert "content-type" in response.headers["access-control-allow-headers"].lower()

"""The gateway's REST API over real HTTP, against a real query flow on the indexed demo collection."""
import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from crossmodal.index import Record, VectorStore, stored_ids
from crossmodal.index.ids import image_doc_id
from serving.http.gateway import parse_origins
from tests.servers import cli_env, start_query_server

# Same-modality search (text -> captions, photo -> photos) needs flows/query.yml to route by the query's tags.target.
CAT = "demo/chelsea_cat.png"
COFFEE = "demo/coffee.png"
ERROR_STATUSES = {"400", "404", "409", "413", "422", "500", "501", "503"}


@pytest.fixture(scope="module")
def workspace(demo_workspace):
    """The demo collection, indexed once per session (tests/integration/conftest.py)."""
    return demo_workspace


@pytest.fixture(scope="module")
def cat_png(workspace) -> bytes:
    return (workspace / "demo_images" / "chelsea_cat.png").read_bytes()


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"} and body["error"]["status"] == status
    for word in words:
        assert word in body["error"]["message"], body


def assert_sorted(matches):
    scores = [match["score"] for match in matches]
    assert scores == sorted(scores, reverse=True)


# --- search ---------------------------------------------------------------------------------------------------------

def test_text_query_returns_photos_with_scores_best_first(client):
    body = client.post("/search", json={"text": "a cup of coffee", "limit": 5, "mode": "semantic"}).json()
    assert (body["query_modality"], body["modality"], body["mode"]) == ("text", "image", "semantic")
    matches = body["matches"]
    assert len(matches) == 5 and all(match["modality"] == "image" for match in matches)
    assert matches[0]["tags"]["pair_id"] == COFFEE
    assert all(isinstance(match["score"], float) for match in matches)
    assert_sorted(matches)


def test_multipart_photo_upload_returns_captions_of_the_cat(client, cat_png):
    response = client.post("/search", files={"image": ("chelsea_cat.png", cat_png, "image/png")}, data={"limit": "3"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["query_modality"], body["modality"]) == ("image", "text")
    assert len(body["matches"]) == 3
    assert any(match["tags"]["pair_id"] == CAT for match in body["matches"])
    assert all(match["text"] and match["image_url"].startswith("/images/img-") for match in body["matches"])
    assert_sorted(body["matches"])


def test_multipart_text_field_and_urlencoded_form(client):
    requests = ({"files": {"text": (None, "a cup of coffee")}}, {"data": {"text": "a cup of coffee", "limit": "2"}})
    for request in requests:
        matches = client.post("/search", **request).json()["matches"]
        assert matches[0]["tags"]["pair_id"] == COFFEE


def test_indexed_photo_id_is_a_query(client):
    cat_id = image_doc_id(CAT)
    body = client.post("/search", json={"image_id": cat_id, "limit": 3}).json()
    assert body["modality"] == "text"
    assert body["matches"][0]["tags"]["pair_id"] == CAT
    assert_error(client.post("/search", json={"image_id": "img-doesnotexist"}), 404, "no indexed photo")
    assert_error(client.post("/search", json={"image_id": "../../etc/passwd"}), 404)


def test_an_indexed_photo_is_searched_by_its_stored_vector_as_if_uploaded(client, cat_png):
    """The id query uses the vector stored at indexing (no file read, no encoder call): the same answer as an
    upload of the same photo, in both directions and as a plus part."""
    cat_id = image_doc_id(CAT)
    for modality in ("text", "image"):
        by_id = client.post("/search", json={"image_id": cat_id, "limit": 5, "modality": modality}).json()
        uploaded = client.post("/search", files={"image": ("cat.png", cat_png, "image/png")},
                               data={"limit": "5", "modality": modality}).json()
        assert [m["id"] for m in by_id["matches"]] == [m["id"] for m in uploaded["matches"]]
        assert all(abs(a["score"] - b["score"]) < 1e-4 for a, b in zip(by_id["matches"], uploaded["matches"]))
    steered = client.post("/search", json={"text": "an animal", "plus": [{"image_id": cat_id}], "limit": 3,
                                           "mode": "semantic"}).json()
    assert steered["matches"][0]["tags"]["pair_id"] == CAT


def test_same_modality_search_text_to_captions_and_photo_to_photos(client):
    body = client.post("/search", json={"text": "a tabby cat with green eyes", "modality": "text", "limit": 3}).json()
    assert (body["query_modality"], body["modality"]) == ("text", "text")
    assert all(match["modality"] == "text" for match in body["matches"])
    assert body["matches"][0]["tags"]["pair_id"] == CAT
    body = client.post("/search", json={"image_id": image_doc_id(CAT), "modality": "image", "limit": 3}).json()
    assert [match["modality"] for match in body["matches"]] == ["image"] * 3
    assert body["matches"][0]["id"] == image_doc_id(CAT) and body["matches"][0]["score"] > 0.99
    # explicit cross-modal works the same as the default
    body = client.post("/search", json={"text": "a cup of coffee", "modality": "image", "limit": 1}).json()
    assert body["matches"][0]["tags"]["pair_id"] == COFFEE


def test_limit_bounds(client):
    assert len(client.post("/search", json={"text": "a cat", "limit": 1}).json()["matches"]) == 1
    assert len(client.post("/search", json={"text": "a cat", "limit": 100}).json()["matches"]) == 19  # all photos
    assert_error(client.post("/search", json={"text": "a cat", "limit": 0}), 422, "limit")
    assert_error(client.post("/search", json={"text": "a cat", "limit": 101}), 400, "between 1 and 100")
    assert_error(client.post("/search", data={"text": "a cat", "limit": "many"}), 422, "limit")
    assert_error(client.post("/search", json={"text": "a cat", "modality": "audio"}), 422, "modality")


def test_uploads_that_are_not_usable_photos(client, cat_png):
    text_file = {"image": ("notes.txt", b"just some words", "text/plain")}
    assert_error(client.post("/search", files=text_file), 400, "notes.txt", "not a usable image")
    assert_error(client.post("/search", files={"image": ("empty.png", b"", "image/png")}), 400, "empty")
    # A valid header over half the pixels passes the gateway's header check; the encoder's one decode refuses it,
    # and the refusal comes back as 400 (not 409), on every route, with the service unharmed.
    half = cat_png[: len(cat_png) // 2]
    truncated = {"image": ("half.png", half, "image/png")}
    assert_error(client.post("/search", files=truncated), 400, "image unreadable", "truncated")
    half_b64 = base64.b64encode(half).decode()
    assert_error(client.post("/search", json={"image": half_b64}), 400, "truncated")
    assert_error(client.post("/search/batch", json={"queries": [{"text": "a cat"}, {"image": half_b64}]}), 400,
                 "truncated")
    assert_error(client.post("/search", json={"text": "a cat", "plus": [{"image": half_b64}]}), 400, "truncated")
    widget = client.post("/api/search", json={"data": [f"data:image/png;base64,{half_b64}"], "top_k": 3})
    assert widget.status_code == 400 and "truncated" in widget.json()["status"]["description"]
    assert client.post("/search", files={"image": ("cat.png", cat_png, "image/png")}).status_code == 200
    huge = {"image": ("huge.png", b"\x89PNG" + b"\0" * (21 * 2**20), "image/png")}
    assert_error(client.post("/search", files=huge), 413, "too large", "limit")
    both = client.post("/search", files={"image": ("cat.png", cat_png, "image/png")}, data={"text": "a cat"})
    assert_error(both, 400, "exactly one")
    assert_error(client.post("/search", data={"limit": "3"}), 400, "exactly one")
    assert_error(client.post("/search", data={"text": "a cat", "colour": "red"}), 422, "colour")


def test_a_too_large_base64_photo_is_413(client):
    data = base64.b64encode(b"\0" * (21 * 2**20)).decode()
    assert_error(client.post("/search", json={"image": data}), 413, "too large")


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(client):
    def chunks():
        for _ in range(41):
            yield b" " * 2**20

    response = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413, "larger than")
    assert client.get("/health").status_code == 200


# --- photos, documents, stats, health -------------------------------------------------------------------------------

def test_thumbnails_have_bounded_sizes_and_are_cached(client):
    cat_id = image_doc_id(CAT)
    original = Image.open(io.BytesIO(client.get(f"/images/{cat_id}").content))
    for requested, bucket in [(64, 64), (100, 128), (256, 256), (4000, 1024)]:
        response = client.get(f"/images/{cat_id}", params={"size": requested})
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        thumb = Image.open(io.BytesIO(response.content))
        assert max(thumb.size) == min(bucket, max(original.size)), (requested, thumb.size)
        assert abs(thumb.size[0] / thumb.size[1] - original.size[0] / original.size[1]) < 0.02
    first = client.get(f"/images/{cat_id}", params={"size": 128})
    again = client.get(f"/images/{cat_id}", params={"size": 120}, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get(f"/images/{cat_id}", params={"size": 128}).content == first.content
    assert_error(client.get(f"/images/{cat_id}", params={"size": 8}), 422, "size")
    assert_error(client.get(f"/images/{cat_id}", params={"size": "big"}), 422, "size")
    assert_error(client.get("/images/img-nope", params={"size": 64}), 404, "img-nope")


def test_documents_give_a_photo_its_captions_and_a_caption_its_photo(client, workspace):
    cat_id = image_doc_id(CAT)
    photo = client.get(f"/documents/{cat_id}").json()
    assert photo["modality"] == "image" and photo["tags"]["pair_id"] == CAT
    assert photo["image_url"] == f"/images/{cat_id}"
    assert len(photo["captions"]) == 3 and any("cat" in caption["text"] for caption in photo["captions"])
    assert "uri" not in photo  # server paths stay private
    caption_id = photo["captions"][1]["id"]
    assert caption_id in stored_ids(workspace / "text_index")
    caption = client.get(f"/documents/{caption_id}").json()
    assert caption["modality"] == "text" and caption["text"] == photo["captions"][1]["text"]
    assert caption["image_id"] == cat_id and caption["captions"] is None
    assert_error(client.get("/documents/txt-nope"), 404, "txt-nope")
    assert_error(client.get("/documents/..%2F..%2Fetc%2Fpasswd"), 404)


def test_stats_count_each_modality_with_model_and_dimension(client):
    stats = client.get("/stats").json()
    assert (stats["images"], stats["captions"]) == (19, 57)
    assert stats["model"] == "offline" and stats["dim"] > 0
    assert stats["indexes"]["image"] == {"count": 19, "model": "offline", "dim": stats["dim"]}
    assert stats["indexes"]["text"]["count"] == 57
    assert stats["limits"]["max_limit"] == 100 and stats["limits"]["max_image_bytes"] == 20 * 2**20


def test_health_and_the_page(client):
    assert client.get("/health").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text and "cdn" not in page.text.lower()
    for asset, kind in [("/static/app.js", "javascript"), ("/static/style.css", "text/css")]:
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert_error(client.get("/static/../serving/gateway.py"), 404)


# --- errors, OpenAPI, CORS --------------------------------------------------------------------------------------------

def test_every_error_has_the_one_shape(client):
    assert_error(client.get("/no/such/route"), 404)
    assert_error(client.get("/search"), 405)
    malformed = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(malformed, 422, "JSON")
    assert_error(client.post("/search", content=b"x" * (41 * 2**20)), 413)


LONE_SURROGATE = b"\\ud800"  # as JSON escapes it: valid JSON, not encodable as UTF-8


def raw_json(client, path: str, body: bytes):
    return client.post(path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("path, body", [
    ("/search", b'{"text": "a cup of %s coffee"}'),
    ("/search", b'{"image_id": "img-%s"}'),
    ("/search", b'{"text": "a cup of coffee", "modality": "%s"}'),
    ("/search", b'{"image": "data:image/png;base64,%s"}'),
    ("/search", b'{"data": ["a cup of %s coffee"], "parameters": {"top_k": 3}}'),
    ("/search", b'{"text": "a cup of coffee", "%s": 1}'),
    ("/search/batch", b'{"queries": [{"text": "ok"}, {"text": "%s"}]}'),
    ("/api/search", b'{"data": ["%s"], "top_k": 3, "mode": "search"}'),
    ("/api/search", b'{"data": ["a cup of coffee"], "top_k": 3, "mode": "%s"}'),
])
def test_a_lone_surrogate_in_any_string_field_is_a_4xx_that_says_so(client, path, body):
    response = raw_json(client, path, body.replace(b"%s", LONE_SURROGATE))
    assert response.status_code == 400, response.text
    assert "not valid Unicode" in response.json()["error"]["message"], response.text
    assert client.post("/search", json={"text": "a cup of coffee"}).status_code == 200  # still serving


def test_a_form_field_that_is_not_utf8_is_never_a_5xx(client):
    """A form field is bytes, so it cannot hold a lone surrogate; its nearest kin, the UTF-8 form of one (CESU-8) or
    other invalid bytes, is read by Starlette as Latin-1: a query that finds nothing much, never a 5xx."""
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    for value in (b"a cup \xed\xa0\x80 coffee", b"\xff\xfe", b"caf\xc3\xa9"):
        for request in ({"files": {"text": (None, value)}}, {"content": b"text=" + value, "headers": urlencoded}):
            response = client.post("/search", **request)
            assert response.status_code < 500, response.text
    assert client.post("/search", json={"text": "a cup of coffee"}).status_code == 200


def test_a_data_uri_that_is_not_a_photo_is_415_on_every_route(client):
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4").decode()
    assert_error(client.post("/search", json={"image": pdf}), 415, "application/pdf")
    assert_error(client.post("/search/batch", json={"queries": [{"image": pdf}]}), 415, "application/pdf")
    assert_error(client.post("/api/search", json={"data": [pdf]}), 415, "application/pdf")


def test_a_batch_answers_each_query_in_order_with_its_own_limit(client, cat_png):
    cat = base64.b64encode(cat_png).decode()
    body = {"queries": [{"text": "a cup of coffee", "limit": 2}, {"image": cat, "limit": 4},
                        {"text": "a cat", "modality": "text", "limit": 1}]}
    response = client.post("/search/batch", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["query_modality"], r["modality"], len(r["matches"])) for r in results] == [
        ("text", "image", 2), ("image", "text", 4), ("text", "text", 1)]
    single = client.post("/search", json={"text": "a cup of coffee", "limit": 2}).json()["matches"]
    assert [m["id"] for m in results[0]["matches"]] == [m["id"] for m in single]
    assert results[1]["matches"][0]["tags"]["pair_id"] == CAT
    assert_error(client.post("/search/batch", json={"queries": []}), 400, "1 to 32")
    assert_error(client.post("/search/batch", json={"queries": [{"text": "a"}] * 33}), 400, "1 to 32")
    assert_error(client.post("/search/batch", json={"queries": [{"text": "a"}, {"text": "b", "image_id": "x"}]}),
                 400, "queries[1].")


def test_photo_matches_carry_their_first_caption(client):
    matches = client.post("/search", json={"text": "a cup of coffee", "limit": 3}).json()["matches"]
    coffee = matches[0]
    assert coffee["tags"]["pair_id"] == COFFEE
    captions = client.get(f"/documents/{coffee['id']}").json()["captions"]
    assert coffee["caption"] == captions[0]["text"]
    text_matches = client.post("/search", json={"text": "a cup of coffee", "modality": "text"}).json()["matches"]
    assert all(match["caption"] is None for match in text_matches)


def test_the_sample_shows_what_is_indexed(client, workspace):
    photos = client.get("/sample", params={"limit": 5}).json()["photos"]
    assert len(photos) == 5 and len({photo["id"] for photo in photos}) == 5
    indexed = stored_ids(workspace / "image_index")
    for photo in photos:
        assert photo["id"] in indexed and photo["image_url"] == f"/images/{photo['id']}"
        assert photo["caption"] and (workspace / "demo_images" / photo["name"]).is_file()
    assert len(client.get("/sample", params={"limit": 48}).json()["photos"]) == 19
    assert_error(client.get("/sample", params={"limit": 0}), 422)


def test_api_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "http" not in page.text.split("<body")[1].split("openapi")[0]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000, asset


def test_openapi_documents_models_examples_and_the_error_shape(client):
    schema = client.get("/openapi.json").json()
    for path in ["/search", "/search/batch", "/api/search", "/images/{doc_id}", "/documents/{doc_id}", "/sample",
                 "/stats", "/health"]:
        assert path in schema["paths"], path
    components = schema["components"]["schemas"]
    for name in ["SearchRequest", "SearchUpload", "SearchResponse", "Match", "WidgetSearchRequest", "JinaboxRequest",
                 "JinaboxResponse", "BatchSearchRequest", "BatchSearchResponse", "SampleResponse", "DocumentResponse",
                 "StatsResponse", "ErrorResponse"]:
        assert name in components, name
    search = schema["paths"]["/search"]["post"]
    content = search["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    assert content["application/json"]["examples"]["text"]["value"] == {"text": "a cup of coffee", "limit": 5}
    assert components["SearchRequest"]["examples"] and components["SearchResponse"]["examples"]
    for path in ["/search", "/api/search", "/documents/{doc_id}"]:
        operation = next(iter(schema["paths"][path].values()))
        errors = {status: value for status, value in operation["responses"].items() if status in ERROR_STATUSES}
        assert errors, path
        for response in errors.values():
            assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert content["multipart/form-data"]["schema"]["$ref"].endswith("/SearchUpload")
    assert "binary" in str(components["SearchUpload"]["properties"]["image"])


def test_cors_lets_another_origin_search(client):
    preflight = client.options("/search", headers={"origin": "http://widget.example:8000",
                                                  "access-control-request-method": "POST",
                                                  "access-control-request-headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "http://widget.example:8000")
    response = client.post("/search", json={"text": "a cat", "limit": 1}, headers={"origin": "http://widget.example:8000"})
    assert response.headers["access-control-allow-origin"] == "*"
    error = client.post("/search", json={}, headers={"origin": "http://widget.example:8000"})
    assert error.status_code == 400 and error.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("value, origins", [
    ("*", ["*"]), (None, ["*"]), ("", []), ("none", []),
    ("https://a.example, https://b.example/", ["https://a.example", "https://b.example"]),
])
def test_cors_origins_setting(value, origins):
    assert parse_origins(value) == origins


def test_configured_origins_and_a_model_mismatch_over_http(tmp_path):
    """A second server: CORS limited to one origin, and an image index built by another model (409, both names)."""
    workspace = tmp_path / "workspace"
    with VectorStore(workspace / "image_index", "image", "other-model", 384) as store:
        store.add([Record(id="img-x", modality="image", uri=str(workspace / "x.png"))], np.ones((1, 384), np.float32))
    server = start_query_server(workspace, tmp_path / "server.log",
                                env=cli_env(CROSSMODAL_CORS_ORIGINS="http://allowed.example"))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            allowed = http.get("/health", headers={"origin": "http://allowed.example"})
            assert allowed.headers["access-control-allow-origin"] == "http://allowed.example"
            other = http.get("/health", headers={"origin": "http://evil.example"})
            assert "access-control-allow-origin" not in other.headers
            response = http.post("/search", json={"text": "a cat"})
            assert_error(response, 409, "'other-model'", "'offline'")
            assert http.get("/stats").json()["indexes"]["text"] == {"count": 0, "model": None, "dim": None}
    finally:
        server.stop()

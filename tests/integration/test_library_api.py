"""Issue 11 over real HTTP on the shared demo server: `metadata` on matches and documents (null for the demo photos,
which come from a captioned dataset), filters refused with the field named, filters that no demo photo passes (in
every mode: keyword hits are filtered too), and pages: offset, total, next_offset, in JSON, multipart and batches.

The filters themselves are checked against a brute-force reference in tests/unit/test_photo_filters.py; the
folder-library end to end (real metadata from real files) belongs to the sync tests."""
import pytest

DEMO_PHOTOS = 19


def search(client, **body) -> dict:
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def refused(response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert field in message, message
    return message


def test_demo_photos_have_null_metadata_in_matches_and_documents(client):
    answer = search(client, text="a cat", limit=3, mode="semantic")
    assert answer["matches"] and all("metadata" in match and match["metadata"] is None for match in answer["matches"])
    assert all("metadata" not in match["tags"] for match in answer["matches"])
    document = client.get(f"/documents/{answer['matches'][0]['id']}").json()
    assert "metadata" in document and document["metadata"] is None
    caption = search(client, image_id=answer["matches"][0]["id"], limit=1)["matches"][0]
    assert caption["modality"] == "text" and caption["metadata"] is None


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_pages_concatenate_with_total_and_next_offset(client, mode):
    whole = search(client, text="an animal", limit=DEMO_PHOTOS, mode=mode)
    assert whole["total"] == DEMO_PHOTOS and whole["offset"] == 0 and whole["next_offset"] is None
    pages, offset, seen = [], 0, []
    while offset is not None:
        answer = search(client, text="an animal", limit=5, offset=offset, mode=mode)
        assert answer["total"] == DEMO_PHOTOS and answer["offset"] == offset
        seen.append(answer["next_offset"])
        pages += [match["id"] for match in answer["matches"]]
        offset = answer["next_offset"]
    assert seen == [5, 10, 15, None]
    assert pages == [match["id"] for match in whole["matches"]]
    beyond = search(client, text="an animal", limit=5, offset=40, mode=mode)
    assert beyond["matches"] == [] and beyond["total"] == DEMO_PHOTOS and beyond["next_offset"] is None


@pytest.mark.parametrize("mode", ["semantic", "hybrid", "keyword"])
@pytest.mark.parametrize("filters", [{"folder": "2024"}, {"taken_after": "2000-01-01"}, {"has_location": False},
                                     {"camera": "a"}, {"place": "Lisbon"}])
def test_no_demo_photo_passes_a_filter_in_any_mode(client, mode, filters):
    answer = search(client, text="a cat", limit=10, mode=mode, **filters)
    assert answer["matches"] == [] and answer["total"] == 0 and answer["next_offset"] is None
    assert answer["no_good_match"] is True
    assert search(client, text="a cat", limit=10, mode=mode)["matches"]  # the same query unfiltered finds some


def test_sort_by_date_keeps_the_relevant_demo_photos_and_pages_them(client):
    by_relevance = search(client, text="a cat", limit=DEMO_PHOTOS, mode="semantic")
    by_date = search(client, text="a cat", limit=DEMO_PHOTOS, mode="semantic", sort="taken")
    relevant = [m["id"] for m in by_relevance["matches"]
                if by_relevance["matches"][0]["relevance"] is None or m["relevance"] >= 0.5]
    assert [m["id"] for m in by_date["matches"]] == relevant  # no dates: relevance order kept
    assert by_date["total"] == len(relevant)
    page = search(client, text="a cat", limit=1, offset=0, mode="semantic", sort="taken")
    assert page["next_offset"] == (1 if len(relevant) > 1 else None)


def test_filters_sort_and_pages_in_multipart_and_batches(client, demo_workspace):
    cat = demo_workspace / "demo_images" / "chelsea_cat.png"
    with cat.open("rb") as photo:
        response = client.post("/search", files={"image": ("cat.png", photo, "image/png")},
                               data={"modality": "image", "limit": "2", "offset": "2"})
    assert response.status_code == 200, response.text
    assert response.json()["offset"] == 2 and response.json()["next_offset"] == 4
    with cat.open("rb") as photo:
        response = client.post("/search", files={"image": ("cat.png", photo, "image/png")},
                               data={"modality": "image", "has_location": "true", "folder": "x"})
    assert response.status_code == 200, response.text
    assert response.json()["matches"] == [] and response.json()["total"] == 0
    response = client.post("/search", data={"text": "a cat", "has_location": "false", "limit": "3"})
    assert response.status_code == 200 and response.json()["matches"] == []
    with cat.open("rb") as photo:
        refused(client.post("/search", files={"image": ("cat.png", photo, "image/png")},
                            data={"modality": "image", "taken_before": "last week"}), 400, "taken_before")
    results = client.post("/search/batch", json={"queries": [
        {"text": "a cat", "limit": 2, "mode": "semantic"},
        {"text": "a cat", "limit": 2, "mode": "semantic", "camera": "canon"},
        {"text": "a cat", "limit": 2, "offset": 2, "mode": "semantic"},
    ]}).json()["results"]
    assert len(results[0]["matches"]) == 2 and results[1]["matches"] == [] and results[1]["total"] == 0
    assert [m["id"] for m in results[2]["matches"]] == [
        m["id"] for m in search(client, text="a cat", limit=4, mode="semantic")["matches"][2:]]


@pytest.mark.parametrize("body, status, field", [
    ({"taken_after": "yesterday"}, 400, "taken_after"),
    ({"taken_before": "2024-02-30"}, 400, "taken_before"),
    ({"taken_after": "2024-07-01T10:00:00Z"}, 400, "taken_after"),
    ({"taken_after": "2024-08-01", "taken_before": "2024-07-01"}, 400, "taken_after"),
    ({"folder": "../etc"}, 400, "folder"),
    ({"has_location": "maybe"}, 422, "has_location"),
    ({"camera": 7}, 422, "camera"),
    ({"place": 5}, 422, "place"),
    ({"place": ""}, 400, "place"),
    ({"place": "x" * 10_000}, 400, "place"),
    ({"place": "?!"}, 400, "place"),
    ({"modality": "text", "place": "Lisbon"}, 400, "place"),
    ({"offset": -1}, 422, "offset"),
    ({"offset": 995, "limit": 10}, 400, "offset"),
    ({"sort": "date"}, 422, "sort"),
    ({"modality": "text", "folder": "2024"}, 400, "folder"),
    ({"modality": "text", "sort": "taken"}, 400, "sort"),
])
def test_unusable_filters_sort_and_pages_are_refused_with_the_field_named(client, body, status, field):
    refused(client.post("/search", json={"text": "a cat", **body}), status, field)


def test_a_batch_names_the_query_whose_filter_is_refused(client):
    response = client.post("/search/batch", json={"queries": [{"text": "a"}, {"text": "b", "taken_after": "soon"}]})
    assert "queries[1].taken_after" in refused(response, 400, "taken_after")


def test_a_place_that_is_not_valid_unicode_is_refused_with_the_field_named(client):
    body = b'{"text": "a cat", "place": "Lisbo\\ud800n"}'  # valid JSON: a lone surrogate as JSON escapes it
    message = refused(client.post("/search", content=body, headers={"content-type": "application/json"}), 400,
                      "place")
    assert "not valid Unicode" in message

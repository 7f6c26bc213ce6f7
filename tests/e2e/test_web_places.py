"""Places end to end (issue 24, item 2): a photo folder of JPEGs with real EXIF GPS, synced by `app.py -t index`, served
by `app.py -t query-restful`: each photo's stored place, the `place` filter and keyword search by place names over
real HTTP, `-t query --place` in the CLI, and the web page's Place box and result card in a real headless Chromium.
"""
from __future__ import annotations

import hashlib

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from crossmodal.library import photo_id
from dataset import DemoReader
from tests.e2e.test_web_library import open_page, query_params, save_photo, settled
from tests.servers import INDEX_TIMEOUT, describe, run_cli, start_query_server
from tests.web_page import keep_screenshot, record_searches, shown_search

ALBUM = "trips"
COOBER_PEDY_30_KM_SOUTH = (-29.01415 - 30 / 111.2, 134.75495)
# path -> (demo photo, GPS, the place it gets: (city, region, country) or None)
PLACES = {
    "lisbon/tram.jpg": ("coffee", (38.7223, -9.1393), ("Lisbon", "Lisbon", "Portugal")),
    "lisbon/castle.jpg": ("flower", (38.7139, -9.1334), ("Lisbon", "Lisbon", "Portugal")),
    "porto/river.jpg": ("rocket", (41.1496, -8.6110), ("Porto", "Porto", "Portugal")),
    "kyoto/kinkakuji.jpg": ("chelsea_cat", (35.0394, 135.7292), ("Kyoto", "Kyoto", "Japan")),
    "paris/eiffel.jpg": ("astronaut", (48.85837, 2.29448), ("Paris", "Île-de-France", "France")),
    "outback.jpg": ("gravel", COOBER_PEDY_30_KM_SOUTH, (None, None, "Australia")),
    "home/moon.jpg": ("moon", None, None),
}


@pytest.fixture(scope="module")
def trips(tmp_path_factory) -> dict:
    """The folder indexed and served: {"url", "ids": {path: id}, "workspace"}."""
    root = tmp_path_factory.mktemp("web-places")
    demo = {item.image_path.stem: item.image_path for item in DemoReader(root / "demo-source")}
    album, workspace = root / ALBUM, root / "workspace"
    for path, (photo, gps, _) in PLACES.items():
        save_photo(demo[photo], album / path, "2024:05:01 12:00:00", gps)
    result = run_cli("-t", "index", "-d", "folder", "--data-dir", album, "--workspace", workspace,
                     timeout=INDEX_TIMEOUT)
    assert result.returncode == 0, describe(result)
    ids = {path: photo_id(ALBUM, hashlib.sha256((album / path).read_bytes()).hexdigest()) for path in PLACES}
    server = start_query_server(workspace, root / "server.log")
    try:
        yield {"url": server.url, "ids": ids, "workspace": workspace}
    finally:
        server.stop()


def post(trips: dict, body: dict) -> httpx.Response:
    with httpx.Client(base_url=trips["url"], timeout=60) as client:
        return client.post("/search", json=body)


def paths(trips: dict, **body) -> set[str]:
    answer = post(trips, {"text": "a photo", "limit": 20, **body})
    assert answer.status_code == 200, answer.text
    return {match["metadata"]["path"] for match in answer.json()["matches"]}


def test_the_sync_stores_each_photos_place_and_none_without_gps(trips):
    with httpx.Client(base_url=trips["url"], timeout=60) as client:
        for path, (_, _, expected) in PLACES.items():
            place = client.get(f"/documents/{trips['ids'][path]}").json()["metadata"]["place"]
            assert (place if expected is None else (place["city"], place["region"], place["country"])) == expected


@pytest.mark.parametrize("place, expected", [
    ("Lisbon", {"lisbon/tram.jpg", "lisbon/castle.jpg"}),
    ("portugal", {"lisbon/tram.jpg", "lisbon/castle.jpg", "porto/river.jpg"}),
    ("Kyōto", {"kyoto/kinkakuji.jpg"}),
    ("Paris, France", {"paris/eiffel.jpg"}),
    ("Australia", {"outback.jpg"}),
    ("Atlantis", set()),
])
def test_the_place_filter_over_http(trips, place, expected):
    assert paths(trips, place=place) == expected


def test_keyword_search_finds_photos_by_place_name(trips):
    assert paths(trips, text="Portugal", mode="keyword") == {"lisbon/tram.jpg", "lisbon/castle.jpg",
                                                            "porto/river.jpg"}
    assert paths(trips, text="Kyoto", mode="keyword") == {"kyoto/kinkakuji.jpg"}


@pytest.mark.parametrize("value, status", [(5, 422), ("", 400), ("x" * 10_000, 400), ("...", 400)])
def test_a_bad_place_is_refused_with_the_field_named(trips, value, status):
    answer = post(trips, {"text": "a photo", "place": value})
    assert answer.status_code == status and "place" in answer.json()["error"]["message"], answer.text


@pytest.mark.slow
def test_the_cli_filters_by_place_and_names_the_place_of_each_result(trips):
    result = run_cli("-t", "query", "--text", "a photo", "--place", "Portugal", "--workspace", trips["workspace"])
    assert result.returncode == 0, describe(result)
    lines = [line for line in result.stdout.splitlines() if "[image]" in line]
    assert len(lines) == 3 and all("in Lisbon, Portugal" in line or "in Porto, Portugal" in line for line in lines)
    refused = run_cli("-t", "query", "--text", "a photo", "--place", "", "--workspace", trips["workspace"])
    assert refused.returncode != 0 and "--place: is empty" in refused.stderr, describe(refused)


def test_the_place_box_filters_the_page_and_the_card_shows_the_place(desktop, trips, tmp_path):
    open_page(desktop, trips["url"] + "/?q=a+photo&modality=image")
    assert len(settled(desktop)) == len(PLACES)
    record_searches(desktop)
    desktop.find_element(By.ID, "place").send_keys("Lisbon", Keys.ENTER)
    search = shown_search(desktop, 1)
    assert search["body"]["place"] == "Lisbon"
    shown = settled(desktop, 2)
    assert sorted(card["path"] for card in shown) == ["lisbon/castle.jpg", "lisbon/tram.jpg"]
    places = desktop.execute_script(
        "return [...document.querySelectorAll('#result-list .photo-info .place')].map((p) => p.textContent)")
    assert places == ["Lisbon, Portugal", "Lisbon, Portugal"]
    assert query_params(desktop)["place"] == ["Lisbon"]
    desktop.execute_script("document.getElementById('filters').scrollIntoView()")
    keep_screenshot(desktop, tmp_path, "web-place-filter.png")
    # the GPS select is still there: photos without a location, with the place box cleared
    desktop.find_element(By.ID, "place").clear()
    desktop.find_element(By.ID, "place").send_keys(Keys.ENTER)
    shown_search(desktop, 2)
    desktop.find_element(By.CSS_SELECTOR, "#located option[value='no']").click()
    search = shown_search(desktop, 3)
    assert search["body"]["has_location"] is False and "place" not in search["body"]
    assert [card["path"] for card in settled(desktop, 1)] == ["home/moon.jpg"]


def test_a_search_by_a_place_name_marks_it_on_the_cards(desktop, trips):
    open_page(desktop, trips["url"] + "/?q=Portugal&mode=keyword&modality=image")
    shown = settled(desktop, 3)
    assert sorted(card["path"] for card in shown) == ["lisbon/castle.jpg", "lisbon/tram.jpg", "porto/river.jpg"]
    marks = desktop.execute_script(
        "return [...document.querySelectorAll('#result-list .photo-info .place mark')].map((m) => m.textContent)")
    assert marks == ["Portugal"] * 3
    assert desktop.find_elements(By.CSS_SELECTOR, "#result-list .why-words") == []  # no "Words:" line repeating it

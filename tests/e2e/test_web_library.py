"""The search page on a photo library (a plain folder, no captions file: photos with dates, folders, cameras and
places; issue 11, item 6), in a real headless Chromium against `app.py -t query-restful` on it: filters narrow the
results and are kept in the address, "Newest first" orders by the day a photo was taken, "More results" appends the
next page without repeating a photo, a refused filter is named, an uploaded photo is searched within the filters,
and the duplicates view lists the groups of near-duplicates, page by page (search folds a group into one result with
a "1 similar" badge); on a phone the filters fold away.

The library is built once for the module (17 JPEGs made from the demo photos, EXIF dates from 2022 to 2024 in
three folders, GPS on three; two near-duplicates: a slightly cropped copy and a re-encoded copy; an exact copy of
another photo, which is the same photo at two paths), indexed by
`app.py -t index -d folder` and served by its own query server (tests/servers.py: no flow is forked from the test
process).
Screenshots go to the test's tmp folder; with CROSSMODAL_UPDATE_SCREENSHOTS=1 they also replace
docs/screenshot-library.png (newest first) and docs/screenshot-duplicates.png.
"""
from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from crossmodal.library import photo_id
from dataset import DemoReader
from tests.servers import INDEX_TIMEOUT, describe, run_cli, start_query_server
from tests.web_page import WAIT, keep_screenshot, record_searches, shown_search

# path in the library -> (demo photo, EXIF DateTimeOriginal, GPS (lat, lon) or None)
LIBRARY = {
    "2022/winter/moon.jpg": ("moon", "2022:01:15 21:00:00", None),
    "2022/winter/coins.jpg": ("coins", "2022:02:03 10:00:00", None),
    "2022/rocket.jpg": ("rocket", "2022:06:01 19:30:00", (28.5, -80.6)),
    "2023/summer/coffee.jpg": ("coffee", "2023:07:14 08:00:00", (48.85, 2.35)),
    "2023/summer/cat.jpg": ("chelsea_cat", "2023:07:20 16:20:05", None),
    "2023/summer/flower.jpg": ("flower", "2023:08:02 12:00:00", None),
    "2023/motorcycle.jpg": ("motorcycle", "2023:10:10 10:10:10", None),
    "2024/china.jpg": ("china", "2024:04:01 09:00:00", (30.2, 120.1)),
    "2024/astronaut.jpg": ("astronaut", "2024:05:05 05:05:05", None),
    "2024/camera.jpg": ("camera", "2024:06:06 06:06:06", None),
    "2024/gravel.jpg": ("gravel", "2024:07:07 07:07:07", None),
    "2024/brick.jpg": ("brick", "2024:08:08 08:08:08", None),
    "2024/grace_hopper.jpg": ("grace_hopper", "2024:09:09 09:09:09", None),
    "2024/hubble.jpg": ("hubble_deep_field", "2024:10:10 10:10:10", None),
}
NEAR_COPY = "2024/coffee-edit.jpg"  # coffee.jpg cropped by 2 pixels and re-encoded: a near-duplicate
EXACT_COPY = "backup/rocket.jpg"  # the same bytes as 2022/rocket.jpg: one photo with two paths
SECOND_COPY = "2024/motorcycle-copy.jpg"  # motorcycle.jpg re-encoded: a second group, for the view's pages
PHOTOS = len(LIBRARY) + 2  # photos in the index (the exact copy is not another photo)
ALBUM = "album"  # the library's name: its folder's


def degrees(value: float) -> tuple[float, float, float]:
    whole = int(value)
    minutes = int((value - whole) * 60)
    return (whole, minutes, round(((value - whole) * 60 - minutes) * 60, 2))


def save_photo(source: Path, target: Path, taken: str, gps: tuple[float, float] | None = None,
               crop: int = 0, quality: int = 90) -> None:
    """A JPEG with EXIF (camera, date taken, optionally GPS) made from a demo photo, less `crop` pixels each side."""
    image = Image.open(source).convert("RGB")
    if crop:
        image = image.crop((crop, crop, image.width - crop, image.height - crop))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"
    exif.get_ifd(0x8769)[0x9003] = taken
    if gps is not None:
        lat, lon = gps
        place = exif.get_ifd(0x8825)
        place[1], place[2] = ("N" if lat >= 0 else "S"), degrees(abs(lat))
        place[3], place[4] = ("E" if lon >= 0 else "W"), degrees(abs(lon))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, format="JPEG", quality=quality, exif=exif.tobytes())


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict:
    """The library folder indexed by `app.py -t index -d folder` and served: {"url", "ids": {path: id}} (the first
    path of each photo), "album": the folder, "workspace"}."""
    root = tmp_path_factory.mktemp("web-library")
    demo = {item.image_path.stem: item.image_path for item in DemoReader(root / "demo-source")}
    album, workspace = root / ALBUM, root / "workspace"
    for path, (photo, taken, gps) in LIBRARY.items():
        save_photo(demo[photo], album / path, taken, gps)
    save_photo(album / "2023" / "summer" / "coffee.jpg", album / NEAR_COPY, "2024:11:11 11:11:11", crop=2)
    save_photo(album / "2023" / "motorcycle.jpg", album / SECOND_COPY, "2024:12:01 12:00:00", quality=95)
    (album / EXACT_COPY).parent.mkdir()
    shutil.copyfile(album / "2022" / "rocket.jpg", album / EXACT_COPY)
    result = run_cli("-t", "index", "-d", "folder", "--data-dir", album, "--workspace", workspace,
                     timeout=INDEX_TIMEOUT)
    assert result.returncode == 0, describe(result)
    ids = {path: photo_id(ALBUM, hashlib.sha256((album / path).read_bytes()).hexdigest())
           for path in [*LIBRARY, NEAR_COPY, SECOND_COPY]}
    assert len(set(ids.values())) == PHOTOS
    server = start_query_server(workspace, root / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for path, doc_id in ids.items():  # every photo indexed, at its path
                assert client.get(f"/documents/{doc_id}").json()["metadata"]["path"] == path
        yield {"url": server.url, "ids": ids, "album": album, "workspace": workspace}
    finally:
        server.stop()


def api_search(library: dict, **body) -> dict:
    """The server's answer to a search, asked directly."""
    with httpx.Client(base_url=library["url"], timeout=60) as client:
        answer = client.post("/search", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- reading the page -------------------------------------------------------------------------------------------------

def open_page(driver, url: str) -> None:
    """Loads the page and waits until it has found out that the collection is a library (its Duplicates link)."""
    driver.get(url)
    WebDriverWait(driver, WAIT).until(lambda d: "indexed" in d.find_element(By.ID, "stats").text)
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "site-nav").is_displayed())


def query_params(driver) -> dict:
    return parse_qs(urlsplit(driver.current_url).query)


def console_errors(driver) -> list:
    """SEVERE console entries, less the network log of an answer the test asked the server to refuse and of the
    favicon a photo opened on its own asks for (the gateway has none)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
            and "the server responded with a status of 400" not in entry["message"]
            and "/favicon.ico" not in entry["message"]]


CARDS = """
    return [...document.querySelectorAll('#result-list > li.card')].map((card) => ({
        id: card.dataset.id,
        taken: (card.querySelector('time.taken') || {}).dateTime || null,
        path: (card.querySelector('.photo-info .path') || {}).textContent || null,
        similar: (card.querySelector('.similar-badge') || {}).textContent || null,
    }));"""


def cards(driver) -> list[dict]:
    """The photo cards in page order: id, the date shown (its `datetime`), the path shown, the similar badge."""
    return driver.execute_script(CARDS)


def settled(driver, count: int | None = None) -> list[dict]:
    """The cards once the page is not busy (and, with `count`, once that many are shown)."""
    def ready(d):
        busy = d.find_element(By.ID, "results").get_attribute("aria-busy") == "true"
        shown = cards(d)
        return shown if not busy and (count is None or len(shown) == count) else False
    try:
        return WebDriverWait(driver, WAIT).until(ready)
    except TimeoutException:
        raise AssertionError(f"{count} cards not shown: {len(cards(driver))}; error shown: "
                             f"{driver.find_element(By.ID, 'error').text!r}") from None


PICK_DAY = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))"


def type_date(driver, element_id: str, day: str) -> None:
    """Types an ISO day into an empty date input as a user does (month, day and year of Chromium's en-US: a change
    event at every digit of the year), then leaves it; a day already there is replaced as the calendar does (the
    keys land in whichever part of a filled box had the focus)."""
    box = driver.find_element(By.ID, element_id)
    year, month, date = day.split("-")
    if box.get_attribute("value"):
        driver.execute_script(PICK_DAY, box, day)
    else:
        box.send_keys(month + date + year)
        box.send_keys(Keys.TAB)
    WebDriverWait(driver, WAIT).until(lambda d: box.get_attribute("value") == day)


def save_screenshot(driver, tmp_path: Path, name: str, top: str) -> Path:
    """The window scrolled to element `top` (its id), under the page header."""
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, document.getElementById(arguments[0])"
                          ".getBoundingClientRect().top + scrollY - 12);", top)
    return keep_screenshot(driver, tmp_path, name)


# --- filters ---------------------------------------------------------------------------------------------------------

def test_filters_narrow_the_results_show_date_and_path_and_the_address_restores_them(desktop, library, tmp_path):
    open_page(desktop, library["url"] + "/?q=" + quote("a photo") + "&limit=20&mode=semantic")
    unfiltered = api_search(library, text="a photo", limit=20, mode="semantic")["matches"]
    everything = settled(desktop, len(unfiltered))
    assert len(everything) >= PHOTOS - 2  # all of them (near-duplicates folded into one)
    assert desktop.find_element(By.ID, "filters").is_displayed() and desktop.find_element(By.ID, "sort").is_displayed()
    # every photo shows the day it was taken and its path (the first of its paths)
    by_path = {card["path"]: card for card in everything}
    assert set(by_path) <= set(library["ids"]) and len(by_path) == len(everything)
    assert by_path["2022/rocket.jpg"]["id"] == library["ids"]["2022/rocket.jpg"]  # exact copies: one photo
    assert by_path["2023/summer/cat.jpg"]["taken"] == "2023-07-20T16:20:05"
    assert by_path["2023/summer/cat.jpg"]["id"] == library["ids"]["2023/summer/cat.jpg"]
    record_searches(desktop)
    # a folder: only the photos under it (subfolders too), not those of other folders
    folder = desktop.find_element(By.ID, "folder")
    folder.send_keys("2023", Keys.ENTER)
    search = shown_search(desktop, 1)
    assert search["body"]["folder"] == "2023" and search["body"]["text"] == "a photo"
    in_2023 = settled(desktop, 4)
    assert sorted(card["path"] for card in in_2023) == [
        "2023/motorcycle.jpg", "2023/summer/cat.jpg", "2023/summer/coffee.jpg", "2023/summer/flower.jpg"]
    # and a day range on top: up to the end of 31 July 2023 (inclusive)
    type_date(desktop, "taken-before", "2023-07-31")
    search = shown_search(desktop, 2)
    assert search["body"]["taken_before"] == "2023-07-31" and search["body"]["folder"] == "2023"
    narrowed = settled(desktop, 2)
    assert sorted(card["path"] for card in narrowed) == ["2023/summer/cat.jpg", "2023/summer/coffee.jpg"]
    assert "(filtered)" in desktop.find_element(By.ID, "status").text
    assert desktop.find_element(By.ID, "filters-active").text == "(2 on)"
    params = query_params(desktop)
    assert params["folder"] == ["2023"] and params["to"] == ["2023-07-31"] and params["q"] == ["a photo"]
    # the address is the search: a reload shows the same filters and the same photos
    desktop.refresh()
    WebDriverWait(desktop, WAIT).until(lambda d: d.find_element(By.ID, "site-nav").is_displayed())
    assert [card["id"] for card in settled(desktop, 2)] == [card["id"] for card in narrowed]
    assert desktop.find_element(By.ID, "folder").get_attribute("value") == "2023"
    assert desktop.find_element(By.ID, "taken-before").get_attribute("value") == "2023-07-31"
    # the GPS filter: the photos with GPS coordinates
    record_searches(desktop)
    desktop.find_element(By.ID, "filters-clear").click()
    shown_search(desktop, 1)
    assert settled(desktop, len(unfiltered))
    desktop.find_element(By.CSS_SELECTOR, "#located option[value='yes']").click()
    search = shown_search(desktop, 2)
    assert search["body"]["has_location"] is True and "folder" not in search["body"]
    assert sorted(card["path"] for card in settled(desktop, 3)) == [
        "2022/rocket.jpg", "2023/summer/coffee.jpg", "2024/china.jpg"]
    assert query_params(desktop)["located"] == ["yes"]
    assert console_errors(desktop) == []


def test_newest_first_orders_the_relevant_photos_by_the_day_they_were_taken(desktop, library, tmp_path):
    # "2024" is a folder name: the keyword search finds the eight photos of that folder, all relevant
    open_page(desktop, library["url"] + "/?q=2024&mode=keyword")
    best = settled(desktop)
    count = len(best)
    assert count >= 7 and {card["path"].split("/")[0] for card in best} == {"2024"}  # 8, or 7 with a copy folded
    record_searches(desktop)
    desktop.find_element(By.CSS_SELECTOR, "#sort option[value='taken']").click()
    search = shown_search(desktop, 1)
    assert search["body"]["sort"] == "taken"
    newest = settled(desktop, count)
    taken = [card["taken"] for card in newest]
    assert taken == sorted(taken, reverse=True) and len(set(taken)) == count, taken
    assert taken != [card["taken"] for card in best]  # the order changed: the best match was not newest first
    assert [card["id"] for card in newest] == [match["id"] for match in search["answer"]["matches"]]
    assert newest[-1]["path"] == "2024/china.jpg"  # the oldest of 2024
    WebDriverWait(desktop, WAIT).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#result-list img')].every(i => i.complete && i.naturalWidth > 0)"))
    save_screenshot(desktop, tmp_path, "screenshot-library.png", "sort-field")
    assert "newest first" in desktop.find_element(By.ID, "status").text
    assert query_params(desktop)["sort"] == ["taken"]
    desktop.refresh()
    WebDriverWait(desktop, WAIT).until(lambda d: d.find_element(By.ID, "site-nav").is_displayed())
    assert [card["id"] for card in settled(desktop, count)] == [card["id"] for card in newest]
    assert desktop.find_element(By.ID, "sort").get_attribute("value") == "taken"
    # back to the best match first
    record_searches(desktop)
    desktop.find_element(By.CSS_SELECTOR, "#sort option[value='relevance']").click()
    assert "sort" not in shown_search(desktop, 1)["body"]
    assert "sort" not in query_params(desktop)
    assert console_errors(desktop) == []


# --- pages -----------------------------------------------------------------------------------------------------------

def test_more_results_appends_the_next_page_without_repeating_a_photo(desktop, library):
    open_page(desktop, library["url"] + "/?q=" + quote("a photo") + "&mode=semantic")
    first = settled(desktop, 10)
    total = api_search(library, text="a photo", limit=10, mode="semantic")["total"]
    assert 10 < total <= 20, total  # two pages
    count = desktop.find_element(By.ID, "more-count")
    assert count.text == f"Showing 10 of {total}"
    record_searches(desktop)
    more = desktop.find_element(By.ID, "more")
    assert more.is_displayed()
    more.click()
    search = shown_search(desktop, 1)
    assert search["body"]["offset"] == 10 and search["body"]["limit"] == 10
    assert search["answer"]["next_offset"] is None
    both = settled(desktop, total)
    ids = [card["id"] for card in both]
    assert ids[:10] == [card["id"] for card in first]  # the first page stays, in place
    assert len(set(ids)) == total and set(ids) <= set(library["ids"].values())  # no photo twice
    ranks = [rank.text for rank in desktop.find_elements(By.CSS_SELECTOR, "#result-list .card .rank")]
    assert ranks == [f"#{i}" for i in range(1, total + 1)]
    assert not more.is_displayed()  # the end
    assert count.text == f"Showing {total} of {total}"
    # the focus moves to the first photo of the page that was added
    focused = desktop.switch_to.active_element
    assert focused.get_attribute("class") == "thumb"
    assert focused.find_element(By.XPATH, "./ancestor::li").get_attribute("data-id") == ids[10]
    # the same photos in the same order as one request for all of them
    with httpx.Client(base_url=library["url"], timeout=60) as client:
        whole = client.post("/search", json={"text": "a photo", "limit": total, "mode": "semantic"}).json()
    assert ids == [match["id"] for match in whole["matches"]]
    assert console_errors(desktop) == []


# --- errors ----------------------------------------------------------------------------------------------------------

def test_a_refused_filter_is_named_and_marked_until_it_is_corrected(desktop, library):
    open_page(desktop, library["url"] + "/?q=coffee")
    settled(desktop)
    folder = desktop.find_element(By.ID, "folder")
    folder.send_keys("../elsewhere", Keys.ENTER)
    error = WebDriverWait(desktop, WAIT).until(lambda d: d.find_element(By.ID, "error").text)
    assert error.startswith("The filter \u201cFolder\u201d was refused"), error
    assert folder.get_attribute("aria-invalid") == "true"
    # a day range that cannot hold anything: the server names the first day
    folder.clear()
    folder.send_keys(Keys.ENTER)
    settled(desktop)
    type_date(desktop, "taken-after", "2024-08-01")
    type_date(desktop, "taken-before", "2024-07-01")
    WebDriverWait(desktop, WAIT).until(lambda d: "\u201cFrom\u201d was refused" in d.find_element(By.ID, "error").text)
    assert desktop.find_element(By.ID, "taken-after").get_attribute("aria-invalid") == "true"
    assert folder.get_attribute("aria-invalid") is None
    # corrected: the photos of the range, the error and the mark gone
    type_date(desktop, "taken-before", "2024-12-31")
    WebDriverWait(desktop, WAIT).until(lambda d: not d.find_element(By.ID, "error").is_displayed())
    assert all(card["taken"] >= "2024-08-01" for card in settled(desktop))
    assert desktop.find_element(By.ID, "taken-after").get_attribute("aria-invalid") is None
    assert console_errors(desktop) == []


# --- near-duplicates -------------------------------------------------------------------------------------------------

GROUPS = """
    return [...document.querySelectorAll('#duplicate-groups > li.duplicate-group')].map((group) => ({
        id: group.dataset.id,
        title: group.querySelector('.group-title').textContent,
        members: [...group.querySelectorAll('.duplicate-member')].map((member) => ({
            id: member.dataset.id,
            href: member.querySelector('a.member-photo').getAttribute('href'),
            path: member.querySelector('.member-path').textContent,
            note: (member.querySelector('.member-similarity') || {}).textContent || null,
            thumb: member.querySelector('img').complete && member.querySelector('img').naturalWidth > 0,
        })),
    }));"""


def test_a_result_folds_its_near_duplicate_and_the_duplicates_view_lists_the_group(desktop, library, tmp_path):
    coffee, copy = library["ids"]["2023/summer/coffee.jpg"], library["ids"][NEAR_COPY]
    open_page(desktop, library["url"] + "/?q=" + quote("a cup of coffee"))
    shown = settled(desktop)
    # search shows one photo of the group, with a badge counting the other
    folded = [card for card in shown if card["id"] in (coffee, copy)]
    assert len(folded) == 1, shown
    assert folded[0]["similar"] == "1 similar"
    assert all(card["similar"] is None for card in shown if card is not folded[0])
    # the badge opens the duplicates view, in the address
    desktop.find_element(By.CSS_SELECTOR, f"#result-list li[data-id='{folded[0]['id']}'] a.similar-badge").click()
    WebDriverWait(desktop, WAIT).until(lambda d: query_params(d).get("view") == ["duplicates"])
    assert "q" not in query_params(desktop)
    groups = WebDriverWait(desktop, WAIT).until(
        lambda d: d.execute_script(GROUPS) if d.execute_script(GROUPS)
        and all(m["thumb"] for g in d.execute_script(GROUPS) for m in g["members"]) else False)
    assert not desktop.find_element(By.ID, "results").is_displayed()
    assert not desktop.find_element(By.ID, "filters").is_displayed()  # every group is listed: nothing to filter
    assert desktop.find_element(By.ID, "nav-duplicates").get_attribute("aria-current") == "page"
    group = next(group for group in groups if {member["id"] for member in group["members"]} == {coffee, copy})
    assert group["title"].startswith("2 photos")
    assert group["id"] == group["members"][0]["id"] and group["members"][0]["note"] == "best of the group"
    other = group["members"][1]
    assert other["note"].startswith("similarity 0.99"), other
    assert sorted(member["path"] for member in group["members"]) == sorted(["2023/summer/coffee.jpg", NEAR_COPY])
    assert "2 groups of near-duplicate photos" in desktop.find_element(By.ID, "duplicates-status").text
    assert {tuple(sorted(member["path"] for member in group["members"])) for group in groups} == {
        ("2023/summer/coffee.jpg", NEAR_COPY), ("2023/motorcycle.jpg", SECOND_COPY)}
    assert not desktop.find_element(By.ID, "duplicates-more").is_displayed()  # one desktop of 20 holds both
    save_screenshot(desktop, tmp_path, "screenshot-duplicates.png", "duplicates")
    # a member opens its photo (in a new tab)
    link = desktop.find_element(By.CSS_SELECTOR, f"#duplicate-groups .duplicate-member[data-id='{copy}'] a")
    search_tab = desktop.current_window_handle
    link.click()
    WebDriverWait(desktop, WAIT).until(lambda d: len(d.window_handles) == 2)
    desktop.switch_to.window(next(handle for handle in desktop.window_handles if handle != search_tab))
    try:
        WebDriverWait(desktop, WAIT).until(lambda d: d.current_url.endswith(f"/images/{copy}"))
        assert desktop.execute_script("return document.images.length && document.images[0].naturalWidth") > 0
    finally:
        desktop.close()
        desktop.switch_to.window(search_tab)
    # the address restores the view; back returns to the search
    desktop.refresh()
    WebDriverWait(desktop, WAIT).until(lambda d: d.execute_script(GROUPS))
    assert desktop.find_element(By.ID, "duplicates").is_displayed()
    desktop.back()
    WebDriverWait(desktop, WAIT).until(lambda d: query_params(d).get("q") == ["a cup of coffee"])
    assert folded[0]["id"] in [card["id"] for card in settled(desktop)]
    assert not desktop.find_element(By.ID, "duplicates").is_displayed()
    assert console_errors(desktop) == []


# --- a phone ---------------------------------------------------------------------------------------------------------

def test_on_a_phone_the_filters_fold_away_and_nothing_sticks_out(desktop, library):
    desktop.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 400, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    try:
        open_page(desktop, library["url"] + "/?q=" + quote("a cup of coffee") + "&folder=2023")
        settled(desktop)
        filters = desktop.find_element(By.ID, "filters")
        assert filters.is_displayed() and filters.get_attribute("open") == "true"  # a filter is on: shown open
        assert desktop.find_element(By.ID, "filters-active").text == "(1 on)"
        overflow = desktop.execute_script("return document.documentElement.scrollWidth - "
                                       "document.documentElement.clientWidth")
        assert overflow <= 0
        for element in desktop.find_elements(By.CSS_SELECTOR, "#filters input, #filters select, #sort"):
            box = element.rect
            assert 0 <= box["x"] and box["x"] + box["width"] <= 400, element.get_attribute("id")
        open_page(desktop, library["url"] + "/?q=" + quote("a cup of coffee"))
        settled(desktop)
        assert desktop.find_element(By.ID, "filters").get_attribute("open") is None  # folded: the results come first
        first = desktop.find_element(By.CSS_SELECTOR, "#result-list > li")
        assert first.rect["y"] + 120 <= 800, first.rect  # at least 120 px of the first photo on the first screen
    finally:
        desktop.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# --- a photo of your own, filtered ------------------------------------------------------------------------------------

def test_an_uploaded_photo_finds_similar_photos_within_the_filters(desktop, library, tmp_path):
    """A photo from disk goes as a multipart upload: the filters go as form fields with it."""
    photo = tmp_path / "my-coffee.jpg"
    Image.new("RGB", (64, 64), (150, 60, 40)).save(photo)  # any photo: the filter decides what may come back
    open_page(desktop, library["url"] + "/?modality=image&folder=2022&located=no")
    desktop.find_element(By.ID, "file").send_keys(str(photo))
    shown = settled(desktop, 2)
    assert sorted(card["path"] for card in shown) == ["2022/winter/coins.jpg", "2022/winter/moon.jpg"]
    assert "my-coffee.jpg" in desktop.find_element(By.ID, "query-title").text
    # the same photo searched again in another folder (still without a location: not coffee.jpg)
    folder = desktop.find_element(By.ID, "folder")
    folder.clear()
    folder.send_keys("2023/summer", Keys.ENTER)
    shown = settled(desktop)
    assert {card["path"] for card in shown} <= {"2023/summer/cat.jpg", "2023/summer/flower.jpg"}, shown
    assert shown and not desktop.find_element(By.ID, "error").is_displayed()
    assert console_errors(desktop) == []


PAGES_OF_ONE = """
    const original = window.fetch;
    window.fetch = function (url, options) {
        return original.call(this, String(url).replace(/^\\/duplicates\\?limit=\\d+/, '/duplicates?limit=1'), options);
    };"""


def test_more_groups_appends_the_next_page_of_duplicates(desktop, library):
    open_page(desktop, library["url"] + "/")
    desktop.execute_script(PAGES_OF_ONE)  # pages of one group: two pages
    desktop.find_element(By.ID, "nav-duplicates").click()
    WebDriverWait(desktop, WAIT).until(lambda d: len(d.execute_script(GROUPS)) == 1)
    more = desktop.find_element(By.ID, "duplicates-more")
    WebDriverWait(desktop, WAIT).until(lambda d: more.is_displayed())
    assert desktop.find_element(By.ID, "duplicates-status").text.startswith("1 of 2 groups")
    more.click()
    WebDriverWait(desktop, WAIT).until(lambda d: len(d.execute_script(GROUPS)) == 2)
    groups = desktop.execute_script(GROUPS)
    assert len({group["id"] for group in groups}) == 2
    WebDriverWait(desktop, WAIT).until(lambda d: not more.is_displayed())
    assert desktop.find_element(By.ID, "duplicates-status").text.startswith("2 groups")
    # the focus moves to the first photo of the group added
    assert desktop.switch_to.active_element.get_attribute("href").endswith("/images/" + groups[1]["members"][0]["id"])
    assert console_errors(desktop) == []


# --- photo queries on a library without captions (issue 21) -----------------------------------------------------------

def test_a_photo_query_without_a_modality_answers_the_photos_like_it_over_every_route(library, tmp_path):
    """No captions are indexed, so the cross-modal default (captions) would be empty: the photos like it come back,
    with a note saying why; asking for captions still gets (no) captions, without the note."""
    coffee = library["ids"]["2023/summer/coffee.jpg"]
    answer = api_search(library, image_id=coffee, limit=5)
    assert answer["modality"] == "image" and "no captions are indexed" in answer["note"], answer
    assert answer["matches"][0]["id"] == coffee
    asked = api_search(library, image_id=coffee, limit=5, modality="text")
    assert asked["modality"] == "text" and asked["matches"] == [] and asked["note"] is None
    assert api_search(library, text="a cup of coffee", limit=3)["note"] is None  # a text query finds photos anyway
    photo = tmp_path / "mine.jpg"  # the coffee photo re-saved, as a user's own copy of it would be
    Image.open(library["album"] / "2023" / "summer" / "coffee.jpg").save(photo, quality=80)
    near = {coffee, library["ids"][NEAR_COPY]}  # either may be the one shown: the other is folded into it
    with httpx.Client(base_url=library["url"], timeout=60) as client, photo.open("rb") as upload:
        uploaded = client.post("/search", files={"image": ("mine.jpg", upload, "image/jpeg")}, data={"limit": "3"})
        data_uri = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode("ascii")
        widget = client.post("/api/search", json={"data": [data_uri], "top_k": 3})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["modality"] == "image" and uploaded.json()["matches"][0]["id"] in near
    assert widget.status_code == 200, widget.text
    found = widget.json()["search"]["docs"][0]["matches"]
    assert found and found[0]["id"] in near and found[0]["modality"] == "image"


def test_a_photo_dropped_on_the_page_shows_the_photos_like_it_and_says_so(desktop, library, tmp_path):
    photo = tmp_path / "my-flower.jpg"
    Image.open(library["album"] / "2023" / "summer" / "flower.jpg").save(photo, quality=80)
    open_page(desktop, library["url"] + "/")
    desktop.find_element(By.ID, "file").send_keys(str(photo))
    shown = settled(desktop)
    assert shown and shown[0]["path"] == "2023/summer/flower.jpg", shown
    WebDriverWait(desktop, WAIT).until(lambda d: d.find_element(By.ID, "query-shows").is_displayed())
    assert "No captions are indexed here" in desktop.find_element(By.ID, "query-shows").text
    assert not desktop.find_element(By.ID, "query-other").is_displayed()  # no captions to offer instead
    assert "found" not in desktop.find_element(By.ID, "status").text
    # a result's photo searched in turn ("search with this photo") finds the photos like that one
    desktop.find_element(By.CSS_SELECTOR, f"#result-list > li.card[data-id='{shown[1]['id']}'] button.thumb").click()
    again = settled(desktop)
    assert again and again[0]["id"] == shown[1]["id"], (shown, again)
    assert console_errors(desktop) == []


@pytest.mark.slow
def test_a_photo_query_in_the_cli_lists_the_photos_like_it(library, tmp_path):
    photo = tmp_path / "mine.jpg"
    Image.open(library["album"] / "2022" / "rocket.jpg").save(photo, quality=80)
    result = run_cli("-t", "query", "--image", photo, "--limit", "3", "--workspace", library["workspace"])
    assert result.returncode == 0, describe(result)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert any("no captions are indexed" in line for line in lines), result.stdout
    results = [line for line in lines if "[image]" in line]
    assert len(results) == 3 and "2022/rocket.jpg" in results[0], result.stdout
    captions = run_cli("-t", "query", "--image", photo, "--modality", "text", "--workspace", library["workspace"])
    assert captions.returncode == 0 and "no results" in captions.stdout, describe(captions)

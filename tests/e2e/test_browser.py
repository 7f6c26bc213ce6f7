"""The search page in a real headless Chromium (Debian's chromium + chromium-driver), driven by Selenium.

The run's shared query server (`app.py -t query-restful`, tests/conftest.py) serves the indexed demo collection;
the browser types, uploads, clicks and reads what a user sees.
Screenshots of a text query and a photo query are written to the test's tmp folder; with
CROSSMODAL_UPDATE_SCREENSHOTS=1 they also replace docs/screenshot-text-query.png and docs/screenshot-image-query.png.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from crossmodal.index.ids import image_doc_id
from tests.web_page import WAIT, keep_screenshot, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CAT, COFFEE = "demo/chelsea_cat.png", "demo/coffee.png"


def demo_captions(name: str) -> list[str]:
    manifest = json.loads((REPO_ROOT / "demo" / "manifest.json").read_text())
    return next(photo["captions"] for photo in manifest["photos"] if photo["name"] == name)


@pytest.fixture(scope="module")
def server(demo_server, demo_workspace):
    """The run's shared query server on the indexed demo collection (tests/conftest.py)."""
    return {"url": demo_server, "workspace": demo_workspace}


@pytest.fixture
def page(server, browser):
    """A fresh load of the page at desktop size."""
    browser.set_window_size(1280, 1000)
    browser.get(server["url"] + "/")
    WebDriverWait(browser, WAIT).until(lambda d: "indexed" in d.find_element(By.ID, "stats").text)
    browser.get_log("browser")  # start each test with an empty console
    return browser


def error_text(driver) -> str:
    return WebDriverWait(driver, WAIT).until(EC.visibility_of_element_located((By.ID, "error"))).text


def query_params(driver) -> dict:
    return parse_qs(urlsplit(driver.current_url).query)


def console_errors(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    return keep_screenshot(driver, tmp_path, name)


def test_typing_a_query_shows_the_coffee_photo_first(page, server, tmp_path):
    box = page.find_element(By.ID, "q")
    box.send_keys("a cup of coffee", Keys.ENTER)
    cards = wait_for(page, "#result-list .card", 10)
    assert cards[0].get_attribute("data-id") == image_doc_id(COFFEE)
    assert "coffee.png" in cards[0].text and "#1" in cards[0].text  # the caption first (tests/e2e/test_web_page.py)
    scores = [float(card.find_element(By.CLASS_NAME, "score").text) for card in cards]
    assert scores == sorted(scores, reverse=True)
    assert "10 photos" in page.find_element(By.ID, "status").text
    thumb = cards[0].find_element(By.TAG_NAME, "img")
    # The thumbnail loads after the card appears (a busy machine makes it late): it must load, with pixels.
    WebDriverWait(page, WAIT).until(
        lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) > 0)
    assert query_params(page)["q"] == ["a cup of coffee"]
    shot = save_screenshot(page, tmp_path, "screenshot-text-query.png")
    assert shot.stat().st_size > 10_000
    assert console_errors(page) == []
    # The address is the search: reloading (or sharing) it shows the same results.
    page.refresh()
    cards = wait_for(page, "#result-list .card", 10)
    assert cards[0].get_attribute("data-id") == image_doc_id(COFFEE)
    assert page.find_element(By.ID, "q").get_attribute("value") == "a cup of coffee"


def test_uploading_the_cat_photo_shows_one_of_its_captions(page, server, tmp_path):
    page.find_element(By.ID, "file").send_keys(str(server["workspace"] / "demo_images" / "chelsea_cat.png"))
    items = wait_for(page, "#result-list .caption-card", 3)
    top3 = [item.find_element(By.CLASS_NAME, "caption-text").text for item in items[:3]]
    assert set(top3) & set(demo_captions("chelsea_cat")), top3
    assert all(item.find_elements(By.CSS_SELECTOR, "button.thumb img") for item in items)  # each caption's photo
    assert page.find_element(By.ID, "query").is_displayed()
    assert "chelsea_cat.png" in page.find_element(By.ID, "query-title").text
    shot = save_screenshot(page, tmp_path, "screenshot-image-query.png")
    assert shot.stat().st_size > 10_000
    assert console_errors(page) == []


def test_clicking_a_result_photo_searches_by_it_and_back_returns(page, server):
    page.find_element(By.ID, "q").send_keys("a cup of coffee", Keys.ENTER)
    wait_for(page, "#result-list .card", 10)[0].find_element(By.CSS_SELECTOR, "button.thumb").click()
    WebDriverWait(page, WAIT).until(lambda d: query_params(d).get("image") == [image_doc_id(COFFEE)])
    items = wait_for(page, "#result-list .caption-card", 3)
    top3 = [item.find_element(By.CLASS_NAME, "caption-text").text for item in items[:3]]
    assert set(top3) & set(demo_captions("coffee")), top3
    page.back()
    cards = wait_for(page, "#result-list .card", 10)
    assert cards[0].get_attribute("data-id") == image_doc_id(COFFEE)


DISPATCH_PHOTO = """
    const [kind, url, done] = arguments;
    fetch(url).then(r => r.blob()).then(blob => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], kind + '.png', {type: 'image/png'}));
        const event = kind === 'dropped'
            ? new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true})
            : new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true, cancelable: true});
        document.getElementById(kind === 'dropped' ? 'dropzone' : 'q').dispatchEvent(event);
        done(true);
    });"""


@pytest.mark.parametrize("kind", ["dropped", "pasted"])
def test_a_dropped_or_pasted_photo_searches_by_photo(page, kind):
    url = f"/images/{image_doc_id(CAT)}"
    assert page.execute_async_script(DISPATCH_PHOTO, kind, url)
    items = wait_for(page, "#result-list .caption-card", 3)
    top3 = [item.find_element(By.CLASS_NAME, "caption-text").text for item in items[:3]]
    assert set(top3) & set(demo_captions("chelsea_cat")), top3
    assert f"{kind}.png" in page.find_element(By.ID, "query-title").text


def test_more_results_appends_the_next_page_and_the_limit_is_kept_in_the_address(page):
    page.find_element(By.ID, "q").send_keys("a cat", Keys.ENTER)
    first = [card.get_attribute("data-id") for card in wait_for(page, "#result-list .card", 10)]
    more = page.find_element(By.ID, "more")
    assert more.is_displayed()
    assert page.find_element(By.ID, "more-count").text == "Showing 10 of 19"
    more.click()
    WebDriverWait(page, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#result-list .card")) == 19)
    shown = [card.get_attribute("data-id") for card in page.find_elements(By.CSS_SELECTOR, "#result-list .card")]
    assert shown[:10] == first and len(set(shown)) == 19  # the next page appended, no photo twice
    assert "limit" not in query_params(page)  # pages of the default 10
    assert not page.find_element(By.ID, "more").is_displayed()  # all 19 photos are shown
    # the limit is the page size, kept in the address
    limit = page.find_element(By.ID, "limit")
    page.execute_script("arguments[0].value = '20'; arguments[0].dispatchEvent(new Event('change'))", limit)
    WebDriverWait(page, WAIT).until(lambda d: query_params(d).get("limit") == ["20"])
    wait_for(page, "#result-list .card", 19)
    assert not page.find_element(By.ID, "more").is_displayed()


def test_a_text_file_gives_a_readable_error(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    page.find_element(By.ID, "file").send_keys(str(notes))
    message = error_text(page)
    assert "notes.txt" in message and "not a photo" in message


def test_a_broken_photo_is_refused_by_the_server_with_a_readable_error(page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"these bytes are not a PNG at all")
    page.find_element(By.ID, "file").send_keys(str(fake))
    message = error_text(page)
    assert "holiday.png" in message and "could not be read as a photo" in message


def test_a_too_large_photo_is_refused_before_upload(page, tmp_path):
    big = tmp_path / "big.jpg"
    with big.open("wb") as file:
        file.truncate(21 * 2**20)
    page.find_element(By.ID, "file").send_keys(str(big))
    message = error_text(page)
    assert "big.jpg" in message and "too large" in message and "20 MB" in message


def test_an_unreachable_server_gives_a_readable_error(page):
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        page.find_element(By.ID, "q").send_keys("a cup of coffee", Keys.ENTER)
        assert "Cannot reach the search server" in error_text(page)
    finally:
        page.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        page.execute_cdp_cmd("Network.disable", {})


def test_keyboard_labels_and_a_phone_sized_viewport(browser, server):
    browser.set_window_size(390, 844)
    browser.get(server["url"] + "/")
    WebDriverWait(browser, WAIT).until(lambda d: "indexed" in d.find_element(By.ID, "stats").text)
    # every control has an accessible name
    unnamed = browser.execute_script("""
        return [...document.querySelectorAll('input, select, button')].filter(el =>
            !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim()
        ).map(el => el.outerHTML);""")
    assert unnamed == []
    # "/" jumps to the search box; Enter searches
    browser.find_element(By.ID, "stats").click()  # plain text: not a control (the body's middle is a sample photo)
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    browser.switch_to.active_element.send_keys("a cup of coffee", Keys.ENTER)
    cards = wait_for(browser, "#result-list .card", 10)
    assert cards[0].get_attribute("data-id") == image_doc_id(COFFEE)
    # a result photo is a button: focus it and press Enter to search by it
    thumb = cards[0].find_element(By.CSS_SELECTOR, "button.thumb")
    browser.execute_script("arguments[0].focus()", thumb)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, WAIT).until(lambda d: query_params(d).get("image") == [image_doc_id(COFFEE)])
    wait_for(browser, "#result-list .caption-card", 3)
    # nothing sticks out sideways on a phone
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    card = browser.find_element(By.CSS_SELECTOR, "#result-list .caption-card")
    assert card.rect["x"] >= 0 and card.rect["x"] + card.rect["width"] <= 390

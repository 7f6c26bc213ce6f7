"""The search page as a user sees it, in a real headless Chromium against the run's shared query server: photo
results labelled with what is in them, a search by an indexed photo headed with its name and caption, a compact
phone layout, a sample of the collection on the home page, the offline API docs, and relevance and steering (issue
12): weak matches dimmed after a divider or under "No good match", "not" terms, more / less like this, the mode;
and, the demo having no photo metadata, no filters, order or duplicates view (those are tested on a photo library in
tests/e2e/test_web_library.py).

The steering tests read the requests the page sent by wrapping `window.fetch` in the page (`record_searches`).
Screenshots go to the test's tmp folder; with CROSSMODAL_UPDATE_SCREENSHOTS=1 they also replace docs/<name>
(docs/screenshot-phone.png, docs/screenshot-phone-photo.png, docs/screenshot-home.png,
docs/screenshot-no-good-match.png).
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from crossmodal.index.ids import image_doc_id
from tests.web_page import WAIT, keep_screenshot, record_searches, shown_search, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CAT, COFFEE = "demo/chelsea_cat.png", "demo/coffee.png"
PHONE = (400, 800)
SAMPLE_SIZE = 8


@pytest.fixture(scope="module")
def captions(demo_workspace) -> dict[str, list[str]]:
    """Photo file name (as indexed) -> its captions, in index order (the first is the API's `caption`)."""
    manifest = json.loads((REPO_ROOT / "demo" / "manifest.json").read_text())
    names = {path.stem: path.name for path in (demo_workspace / "demo_images").iterdir()}
    return {names[photo["name"]]: photo["captions"] for photo in manifest["photos"]}


def all_captions(captions: dict[str, list[str]]) -> set[str]:
    return {caption for texts in captions.values() for caption in texts}


@pytest.fixture
def phone(browser):
    """A 400 x 800 CSS-pixel touch viewport (Chromium's device emulation), reset afterwards."""
    width, height = PHONE
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    browser.get_log("browser")
    try:
        yield browser
    finally:
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def open_page(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, WAIT).until(lambda d: "indexed" in d.find_element(By.ID, "stats").text)


def query_params(driver) -> dict:
    return parse_qs(urlsplit(driver.current_url).query)


def console_errors(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def loaded(driver, image) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    return keep_screenshot(driver, tmp_path, name)


# --- photo results: what is in the photo first, the file name second ------------------------------------------------

def test_a_photo_result_is_labelled_with_its_caption_then_its_file_name(desktop, demo_server, captions):
    open_page(desktop, demo_server + "/?q=" + quote("a cup of coffee"))
    cards = wait_for(desktop, "#result-list .card", 10)
    first = cards[0]
    assert first.get_attribute("data-id") == image_doc_id(COFFEE)
    caption = first.find_element(By.CLASS_NAME, "photo-caption")
    name = first.find_element(By.CLASS_NAME, "label")
    assert caption.text == captions["coffee.png"][0]
    assert name.text == "coffee.png"
    assert caption.rect["y"] < name.rect["y"]  # the caption comes first
    size = "return parseFloat(getComputedStyle(arguments[0]).fontSize)"
    assert desktop.execute_script(size, name) < desktop.execute_script(size, caption)  # the name is smaller
    thumb = first.find_element(By.CSS_SELECTOR, "button.thumb")
    assert thumb.get_attribute("aria-label").startswith(captions["coffee.png"][0])
    # every photo of the demo has captions: every card shows one of its photo's captions
    for card in cards:
        text = card.find_element(By.CLASS_NAME, "photo-caption").text
        assert text in captions[card.find_element(By.CLASS_NAME, "label").text], text
    assert console_errors(desktop) == []


# --- a search by an indexed photo is headed by its name and caption, not its id -------------------------------------

def test_a_search_by_an_indexed_photo_is_headed_with_its_name_and_caption(desktop, demo_server, captions):
    cat = image_doc_id(CAT)
    open_page(desktop, f"{demo_server}/?image={cat}")  # from the address: the page asks /documents/{id}
    wait_for(desktop, "#result-list .caption-card", 3)
    title, caption = desktop.find_element(By.ID, "query-title"), desktop.find_element(By.ID, "query-caption")
    WebDriverWait(desktop, WAIT).until(lambda d: "chelsea_cat.png" in title.text)
    assert caption.is_displayed() and captions["chelsea_cat.png"][0] in caption.text
    assert cat not in desktop.find_element(By.ID, "query").text
    # clicked from a text search's results: the same heading, from what the result already said
    desktop.find_element(By.ID, "q").clear()
    desktop.find_element(By.ID, "q").send_keys("a cup of coffee", Keys.ENTER)
    cards = wait_for(desktop, "#result-list .card", 10)
    cards[0].find_element(By.CSS_SELECTOR, "button.thumb").click()
    WebDriverWait(desktop, WAIT).until(lambda d: query_params(d).get("image") == [image_doc_id(COFFEE)])
    wait_for(desktop, "#result-list .caption-card", 3)
    assert desktop.find_element(By.ID, "query-title").text == "Photo coffee.png"
    assert captions["coffee.png"][0] in desktop.find_element(By.ID, "query-caption").text
    assert console_errors(desktop) == []


# --- the phone layout -----------------------------------------------------------------------------------------------

LAYOUT = """
    const width = document.documentElement.clientWidth;
    const canvas = document.createElement('canvas').getContext('2d');
    const problems = [];
    for (const el of document.querySelectorAll('input, select, button, a')) {
        const box = el.getBoundingClientRect();
        if (!box.width || el.matches('.skip-link:not(:focus), .visually-hidden')) continue;  // not shown
        if (box.left < 0 || box.right > width + 0.5) problems.push(el.id || el.textContent.trim() + ': sticks out');
        if (el.tagName === 'SELECT') {  // no option's text is clipped
            const style = getComputedStyle(el);
            canvas.font = style.font;
            const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 16;
            for (const option of el.options) {
                const need = canvas.measureText(option.text).width;
                if (need > room) problems.push(el.id + ': "' + option.text + '" needs ' + need + ' px of ' + room);
            }
        }
    }
    const first = document.querySelector('#result-list > li');
    return {
        problems,
        overflow: document.documentElement.scrollWidth - width,
        firstTop: first ? first.getBoundingClientRect().top : null,
        viewport: window.innerHeight,
        width,
    };"""


@pytest.mark.parametrize("query, css", [("q=" + quote("a cup of coffee"), ".card"),
                                        (f"image={image_doc_id(CAT)}", ".caption-card")],
                         ids=["text", "photo"])
def test_on_a_phone_the_first_results_are_on_the_first_screen(phone, demo_server, tmp_path, query, css):
    open_page(phone, f"{demo_server}/?{query}")
    wait_for(phone, "#result-list " + css, 3)
    layout = phone.execute_script(LAYOUT)
    assert layout["width"] == PHONE[0] and layout["viewport"] == PHONE[1], layout
    assert layout["problems"] == [] and layout["overflow"] <= 0, layout
    # at least 120 px of the first result (its photo) are on the first screen, without scrolling
    assert layout["firstTop"] + 120 <= layout["viewport"], layout
    thumb = phone.find_element(By.CSS_SELECTOR, "#result-list > li img")
    assert loaded(phone, thumb)
    save_screenshot(phone, tmp_path, "screenshot-phone.png" if css == ".card" else "screenshot-phone-photo.png")
    assert console_errors(phone) == []


def test_the_home_page_fits_a_phone(phone, demo_server):
    open_page(phone, demo_server + "/")
    WebDriverWait(phone, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sample-list .sample-item img"))
    layout = phone.execute_script(LAYOUT)
    assert layout["problems"] == [] and layout["overflow"] <= 0, layout
    first = phone.find_element(By.CSS_SELECTOR, "#sample-list .sample-item")
    assert first.rect["y"] + 120 <= PHONE[1]  # the collection shows on the first screen too


# --- the home page: a sample of the collection ----------------------------------------------------------------------

def sample_items(driver):
    """The sample's photos once all of them are shown."""
    def shown(d):
        found = d.find_elements(By.CSS_SELECTOR, "#sample-list .sample-item")
        return found if len(found) == SAMPLE_SIZE and d.find_element(By.ID, "sample").is_displayed() else False
    return WebDriverWait(driver, WAIT).until(shown)


def test_the_home_page_shows_a_sample_of_the_collection_and_example_descriptions(desktop, demo_server, captions,
                                                                                   tmp_path):
    open_page(desktop, demo_server + "/")
    items = sample_items(desktop)
    assert desktop.find_element(By.ID, "sample").is_displayed()
    ids = [item.get_attribute("data-id") for item in items]
    assert len(set(ids)) == SAMPLE_SIZE and all(photo_id.startswith("img-") for photo_id in ids)
    for item in items:
        WebDriverWait(desktop, WAIT).until(lambda d, item=item: loaded(d, item.find_element(By.TAG_NAME, "img")))
        caption = item.find_element(By.CLASS_NAME, "sample-caption").get_attribute("textContent")
        assert caption in all_captions(captions), caption
        assert item.find_element(By.CSS_SELECTOR, "button.thumb").get_attribute("aria-label").endswith(caption)
    examples = desktop.find_elements(By.CSS_SELECTOR, "#examples button.example")
    assert len(examples) == 3 and all(example.text in all_captions(captions) for example in examples)
    save_screenshot(desktop, tmp_path, "screenshot-home.png")
    # "Show others" draws another sample
    desktop.find_element(By.ID, "sample-more").click()
    read_ids = "return [...document.querySelectorAll('#sample-list .sample-item')].map(item => item.dataset.id)"
    WebDriverWait(desktop, WAIT).until(
        lambda d: (now := d.execute_script(read_ids)) != ids and len(now) == SAMPLE_SIZE)
    assert console_errors(desktop) == []


def test_clicking_a_sample_photo_searches_by_it_and_back_shows_the_sample(desktop, demo_server, captions):
    open_page(desktop, demo_server + "/")
    first = sample_items(desktop)[0]
    photo_id = first.get_attribute("data-id")
    caption = first.find_element(By.CLASS_NAME, "sample-caption").get_attribute("textContent")
    first.find_element(By.CSS_SELECTOR, "button.thumb").click()
    WebDriverWait(desktop, WAIT).until(lambda d: query_params(d).get("image") == [photo_id])
    wait_for(desktop, "#result-list .caption-card", 3)
    assert not desktop.find_element(By.ID, "sample").is_displayed()
    photo_of = {text: name for name, texts in captions.items() for text in texts}
    assert desktop.find_element(By.ID, "query-title").text == "Photo " + photo_of[caption]
    assert caption in desktop.find_element(By.ID, "query-caption").text
    desktop.back()
    WebDriverWait(desktop, WAIT).until(lambda d: d.find_element(By.ID, "sample").is_displayed())
    assert desktop.find_elements(By.CSS_SELECTOR, "#result-list > li") == []
    assert not desktop.find_element(By.ID, "query").is_displayed()
    # with the keyboard: a sample photo is a button, Enter searches by it
    thumb = sample_items(desktop)[1].find_element(By.CSS_SELECTOR, "button.thumb")
    other = sample_items(desktop)[1].get_attribute("data-id")
    desktop.execute_script("arguments[0].focus()", thumb)
    desktop.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(desktop, WAIT).until(lambda d: query_params(d).get("image") == [other])
    wait_for(desktop, "#result-list .caption-card", 3)
    assert console_errors(desktop) == []


def test_an_example_description_searches_by_it(desktop, demo_server):
    open_page(desktop, demo_server + "/")
    sample_items(desktop)
    example = desktop.find_element(By.CSS_SELECTOR, "#examples button.example")
    text = example.text
    example.click()
    WebDriverWait(desktop, WAIT).until(lambda d: query_params(d).get("q") == [text])
    wait_for(desktop, "#result-list .card", 10)
    assert desktop.find_element(By.ID, "q").get_attribute("value") == text
    assert f"10 photos for \u201c{text}\u201d" in desktop.find_element(By.ID, "status").text
    assert not desktop.find_element(By.ID, "sample").is_displayed()
    assert console_errors(desktop) == []


# --- the API docs ---------------------------------------------------------------------------------------------------

def test_the_api_docs_link_opens_swagger_ui_served_by_the_gateway(desktop, demo_server):
    open_page(desktop, demo_server + "/")
    link = desktop.find_element(By.ID, "api-docs")
    assert link.get_attribute("href") == demo_server + "/docs"
    link.click()
    try:
        WebDriverWait(desktop, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
    except TimeoutException:
        shown = desktop.find_element(By.ID, "swagger-ui").text[:400]
        raise AssertionError(f"Swagger UI at /docs lists no operations; it shows: {shown!r}") from None
    assert "/search" in desktop.find_element(By.ID, "swagger-ui").text
    resources = desktop.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    foreign = [url for url in resources if not url.startswith(demo_server) and not url.startswith("data:")]
    assert foreign == [], "the API docs load files from elsewhere (they must work offline)"


# --- relevance: weak matches dimmed after a divider, "No good match" --------------------------------------------------

RESULTS = """
    return [...document.querySelectorAll('#result-list > li')].map((item) => ({
        id: item.dataset.id || null,
        divider: item.classList.contains('weak-divider'),
        weak: item.classList.contains('weak'),
        opacity: parseFloat(getComputedStyle(item).opacity),
        relevance: (item.querySelector('.relevance') || {}).textContent || null,
        top: item.getBoundingClientRect().top,
    }));"""


def results(driver) -> list[dict]:
    """The result list in page order: each card's id, whether it is dimmed, its relevance label; and the divider."""
    return driver.execute_script(RESULTS)


def relevance_percent(label: str) -> int:
    assert label.startswith("relevance ") and label.endswith("%"), label
    return int(label[len("relevance "):-1])


def chips(driver) -> list[str]:
    return [chip.text.rstrip("\u00d7").strip() for chip in driver.find_elements(By.CSS_SELECTOR, "#chips .chip")]


def test_a_query_the_collection_cannot_answer_says_no_good_match_and_dims_every_result(desktop, demo_server,
                                                                                        tmp_path):
    open_page(desktop, demo_server + "/?q=" + quote("a dog catching a frisbee"))  # no dog in the demo
    record_searches(desktop)
    wait_for(desktop, "#result-list .card", 10)
    banner = desktop.find_element(By.ID, "no-good-match")
    assert banner.is_displayed() and banner.text.startswith("No good match"), banner.text
    assert "a dog catching a frisbee" in banner.text
    shown = results(desktop)
    assert not any(item["divider"] for item in shown)  # nothing good to divide from
    assert all(item["weak"] and item["opacity"] < 0.8 for item in shown), shown
    assert all(relevance_percent(item["relevance"]) < 50 for item in shown), shown
    assert banner.rect["y"] + banner.rect["height"] <= shown[0]["top"] + desktop.execute_script("return scrollY")
    # a "not" term typed and entered becomes a chip, and the search is sent again with it as `minus`
    box = desktop.find_element(By.ID, "not")
    box.send_keys("people", Keys.ENTER)
    search = shown_search(desktop, 1)
    assert search["body"]["text"] == "a dog catching a frisbee" and search["body"]["minus"] == [{"text": "people"}]
    assert chips(desktop) == ["\u2212 people"] and box.get_attribute("value") == ""
    assert query_params(desktop)["not"] == ["people"]
    assert banner.is_displayed() == bool(search["answer"]["no_good_match"])
    save_screenshot(desktop, tmp_path, "screenshot-no-good-match.png")
    assert console_errors(desktop) == []


def test_an_answerable_query_shows_its_photo_first_undimmed_above_the_weak_ones(desktop, demo_server):
    open_page(desktop, demo_server + "/?q=" + quote("a cup of coffee"))
    cards = wait_for(desktop, "#result-list .card", 10)
    assert not desktop.find_element(By.ID, "no-good-match").is_displayed()
    shown = results(desktop)
    first = shown[0]
    assert first["id"] == image_doc_id(COFFEE) and not first["weak"] and first["opacity"] == 1, first
    assert relevance_percent(first["relevance"]) >= 50
    dividers = [i for i, item in enumerate(shown) if item["divider"]]
    assert len(dividers) <= 1
    if dividers:  # good matches above it, undimmed; weak ones below, dimmed
        cut = dividers[0]
        assert all(not item["weak"] and relevance_percent(item["relevance"]) >= 50 for item in shown[:cut])
        assert all(item["weak"] and relevance_percent(item["relevance"]) < 50 for item in shown[cut + 1:])
        assert "Weak matches" in desktop.find_elements(By.CSS_SELECTOR, "#result-list > li")[cut].text
    # why it matched: the query's words are marked on the card
    marked = {mark.text.lower() for mark in cards[0].find_elements(By.TAG_NAME, "mark")}
    assert marked & {"coffee", "cup"}, marked
    assert console_errors(desktop) == []


NO_CALIBRATION = """
    const original = window.fetch;
    window.fetch = async function (url, options) {
        const response = await original.apply(this, arguments);
        if (!String(url).endsWith('/search') || !response.ok) return response;
        const body = await response.json();
        body.no_good_match = null;
        body.matches.forEach((match) => { match.relevance = null; });
        return new Response(JSON.stringify(body), {status: 200, headers: {'Content-Type': 'application/json'}});
    };"""


def test_without_a_calibration_there_is_no_divider_no_dimming_and_no_relevance(desktop, demo_server):
    open_page(desktop, demo_server + "/")
    desktop.execute_script(NO_CALIBRATION)  # a model without calibration answers relevance null
    desktop.find_element(By.ID, "q").send_keys("a dog catching a frisbee", Keys.ENTER)
    wait_for(desktop, "#result-list .card", 10)
    shown = results(desktop)
    assert not desktop.find_element(By.ID, "no-good-match").is_displayed()
    assert not any(item["divider"] or item["weak"] or item["relevance"] for item in shown), shown
    assert all(item["opacity"] == 1 for item in shown)
    assert "cosine" in desktop.find_element(By.ID, "status").text
    assert console_errors(desktop) == []


# --- steering: "not" terms, more / less like this, the mode ----------------------------------------------------------

def test_a_not_term_sends_minus_and_takes_the_cat_off_the_top_until_it_is_removed(desktop, demo_server):
    open_page(desktop, demo_server + "/?q=" + quote("an animal"))
    assert wait_for(desktop, "#result-list .card")[0].get_attribute("data-id") == image_doc_id(CAT)
    record_searches(desktop)
    desktop.find_element(By.ID, "not").send_keys("a cat")
    desktop.find_element(By.ID, "not-add").click()
    search = shown_search(desktop, 1)
    assert search["body"]["text"] == "an animal" and search["body"]["minus"] == [{"text": "a cat"}]
    assert "plus" not in search["body"]
    first = wait_for(desktop, "#result-list .card")[0].get_attribute("data-id")
    assert first != image_doc_id(CAT) and first == search["answer"]["matches"][0]["id"]
    assert chips(desktop) == ["\u2212 a cat"]
    # the chip is removable: without it the cat is back on top
    desktop.find_element(By.CSS_SELECTOR, "#chips .chip-remove").click()
    search = shown_search(desktop, 2)
    assert "minus" not in search["body"]
    assert wait_for(desktop, "#result-list .card")[0].get_attribute("data-id") == image_doc_id(CAT)
    assert chips(desktop) == [] and not desktop.find_element(By.ID, "steering").is_displayed()
    assert "not" not in query_params(desktop)
    assert console_errors(desktop) == []


def test_more_and_less_like_this_send_the_result_as_plus_and_minus_and_show_chips(desktop, demo_server):
    open_page(desktop, demo_server + "/?q=" + quote("a cup of coffee"))
    wait_for(desktop, "#result-list .card", 10)
    before = [item["id"] for item in results(desktop) if item["id"]]
    record_searches(desktop)
    third = desktop.find_elements(By.CSS_SELECTOR, "#result-list .card")[2]
    liked, liked_name = third.get_attribute("data-id"), third.find_element(By.CLASS_NAME, "label").text
    third.find_element(By.CSS_SELECTOR, "button.steer-more").click()
    search = shown_search(desktop, 1)
    assert search["body"]["text"] == "a cup of coffee" and search["body"]["plus"] == [{"image_id": liked}]
    after = [item["id"] for item in results(desktop) if item["id"]]
    assert after != before and sorted(after) == sorted(match["id"] for match in search["answer"]["matches"])
    assert after.index(liked) < before.index(liked)  # the photo liked moved up
    assert chips(desktop) == ["+ photo " + liked_name]
    assert query_params(desktop)["plus"] == ["photo:" + liked]
    # less like this: another photo is subtracted, beside the one added
    card = next(c for c in desktop.find_elements(By.CSS_SELECTOR, "#result-list .card")
                if c.get_attribute("data-id") not in (liked, image_doc_id(COFFEE)))
    disliked, disliked_name = card.get_attribute("data-id"), card.find_element(By.CLASS_NAME, "label").text
    card.find_element(By.CSS_SELECTOR, "button.steer-less").click()
    search = shown_search(desktop, 2)
    assert search["body"]["plus"] == [{"image_id": liked}] and search["body"]["minus"] == [{"image_id": disliked}]
    assert chips(desktop) == ["+ photo " + liked_name, "\u2212 photo " + disliked_name]
    # back undoes the last step
    desktop.back()
    search = shown_search(desktop, 3)
    assert "minus" not in search["body"] and chips(desktop) == ["+ photo " + liked_name]
    assert console_errors(desktop) == []


def test_more_like_this_on_a_caption_sends_its_text(desktop, demo_server):
    open_page(desktop, f"{demo_server}/?image={image_doc_id(CAT)}")
    items = wait_for(desktop, "#result-list .caption-card", 3)
    record_searches(desktop)
    caption = items[0].find_element(By.CLASS_NAME, "caption-text").text
    items[0].find_element(By.CSS_SELECTOR, "button.steer-more").click()
    search = shown_search(desktop, 1)
    assert search["body"]["image_id"] == image_doc_id(CAT) and search["body"]["plus"] == [{"text": caption}]
    assert chips(desktop) == [f"+ \u201c{caption}\u201d"]
    assert console_errors(desktop) == []


def test_the_mode_selector_sends_mode_and_is_kept_in_the_address(desktop, demo_server):
    open_page(desktop, demo_server + "/?q=chelsea")
    wait_for(desktop, "#result-list .card")
    mode = desktop.find_element(By.ID, "mode")
    assert mode.get_attribute("value") == "hybrid"  # the default
    record_searches(desktop)
    desktop.execute_script("arguments[0].value = 'keyword'; arguments[0].dispatchEvent(new Event('change'))", mode)
    search = shown_search(desktop, 1)
    assert search["body"] == {"text": "chelsea", "limit": 10, "mode": "keyword"}
    assert search["answer"]["mode"] == "keyword"
    # "chelsea" is only a file name (chelsea_cat.png): the keyword search finds it, its word marked
    first = wait_for(desktop, "#result-list .card")[0]
    assert first.get_attribute("data-id") == image_doc_id(CAT)
    assert "chelsea" in {mark.text.lower() for mark in first.find_elements(By.TAG_NAME, "mark")}
    assert query_params(desktop)["mode"] == ["keyword"]
    desktop.refresh()
    WebDriverWait(desktop, WAIT).until(lambda d: "indexed" in d.find_element(By.ID, "stats").text)
    wait_for(desktop, "#result-list .card")
    assert desktop.find_element(By.ID, "mode").get_attribute("value") == "keyword"
    assert console_errors(desktop) == []


# --- photo-library controls on a collection without metadata ---------------------------------------------------------

def test_the_demo_has_no_metadata_so_filters_order_and_duplicates_are_not_offered(desktop, demo_server):
    open_page(desktop, demo_server + "/?q=" + quote("a cup of coffee"))
    cards = wait_for(desktop, "#result-list .card", 10)
    # the page asked the server whether any photo has a date (none of the demo's has): nothing to filter by
    WebDriverWait(desktop, WAIT).until(lambda d: d.execute_script(
        "return performance.getEntriesByType('resource').filter(r => r.name.endsWith('/search')).length >= 2"))
    for hidden in ("filters", "sort-field", "site-nav"):
        assert not desktop.find_element(By.ID, hidden).is_displayed(), hidden
    assert not cards[0].find_elements(By.CSS_SELECTOR, ".photo-info, .similar-badge")
    # filters given in the address are shown, so that what narrows the search can be seen and cleared
    open_page(desktop, demo_server + "/?q=" + quote("a cup of coffee") + "&folder=2024")
    WebDriverWait(desktop, WAIT).until(lambda d: "No photos found" in d.find_element(By.ID, "status").text)
    assert "filters" in desktop.find_element(By.ID, "status").text
    assert desktop.find_element(By.ID, "filters").is_displayed()
    assert desktop.find_element(By.ID, "folder").get_attribute("value") == "2024"
    desktop.find_element(By.ID, "filters-clear").click()
    wait_for(desktop, "#result-list .card", 10)
    assert "folder" not in query_params(desktop)
    assert not desktop.find_element(By.ID, "filters").is_displayed()
    assert console_errors(desktop) == []


# --- the page's ES modules (issue 22) -------------------------------------------------------------------------------

def test_the_page_loads_every_module_served_as_javascript_with_no_console_error(desktop, demo_server, client):
    web = REPO_ROOT / "web"
    modules = sorted("/static/" + path.relative_to(web).as_posix() for path in web.rglob("*.js"))
    open_page(desktop, demo_server + "/")  # the footer's counts: the entry module and what it imports ran
    WebDriverWait(desktop, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sample-list .sample-item"))
    fetched = desktop.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname)")
    assert [module for module in modules if module not in fetched] == []  # none is left out of the import graph
    for module in modules:  # a module script needs a JavaScript MIME type; an upgrade is seen at once (no-cache)
        response = client.get(module)
        assert response.status_code == 200, module
        assert "javascript" in response.headers["content-type"], (module, response.headers["content-type"])
        assert response.headers["cache-control"] == "no-cache", module
    assert console_errors(desktop) == []

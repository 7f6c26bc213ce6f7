"""Reading the product's web page (web/) in a browser test: waiting for its results the way a user waits."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 30  # seconds for a search to show up (the first query also warms the models)


def wait_for(driver, css: str, count: int = 1):
    """The result items once at least `count` are shown and the page is no longer busy."""
    def ready(d):
        items = d.find_elements(By.CSS_SELECTOR, css)
        busy = d.find_element(By.ID, "results").get_attribute("aria-busy") == "true"
        return items if len(items) >= count and not busy else False
    try:
        return WebDriverWait(driver, WAIT).until(ready)
    except TimeoutException:
        error = driver.find_element(By.ID, "error")
        raise AssertionError(f"no {css!r} results; error shown: {error.text!r}") from None


RECORD_SEARCHES = """
    window.__searches = [];
    const original = window.fetch;
    window.fetch = function (url, options) {
        const answer = original.apply(this, arguments);
        if (String(url).endsWith('/search')) {
            const record = {body: options && typeof options.body === 'string' ? JSON.parse(options.body) : null};
            window.__searches.push(record);
            answer.then((response) => response.clone().json()).then(
                (json) => { record.answer = json; }, () => { record.answer = null; });
        }
        return answer;
    };"""

SHOWN = """
    const searches = window.__searches, count = arguments[0];
    const busy = document.getElementById('results').getAttribute('aria-busy') === 'true';
    return searches.length >= count && searches[count - 1].answer !== undefined && !busy
        ? searches[count - 1] : null;"""


def record_searches(driver) -> None:
    """From now on the page's POST /search requests (their JSON bodies) and answers are kept in the page."""
    driver.execute_script(RECORD_SEARCHES)


def shown_search(driver, count: int) -> dict:
    """The `count`-th search since `record_searches`, once its answer is on the page: {"body", "answer"}."""
    try:
        return WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(SHOWN, count))
    except TimeoutException:
        sent = driver.execute_script("return window.__searches.map(s => s.body)")
        error = driver.find_element(By.ID, "error").text
        raise AssertionError(f"search {count} not shown; sent {sent!r}; error shown: {error!r}") from None


DOCS = Path(__file__).resolve().parents[1] / "docs"


def keep_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """The window as it is, saved in the test's tmp folder; with CROSSMODAL_UPDATE_SCREENSHOTS=1 it also replaces
    docs/<name> (the screenshots README.md and docs/web.md show)."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    if os.environ.get("CROSSMODAL_UPDATE_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / name)
    return path

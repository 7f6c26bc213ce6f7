"""Reading the product's web page (web/) in a browser test: waiting for its results the way a user waits."""
from __future__ import annotations

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

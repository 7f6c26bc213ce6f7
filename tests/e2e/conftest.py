"""Browser fixtures of the web page tests: one headless Chromium per test module, a desktop-sized window."""
import pytest

from tests.chromium import chromium


@pytest.fixture(scope="module")
def browser():
    with chromium("--hide-scrollbars") as driver:
        yield driver


@pytest.fixture
def desktop(browser):
    """The browser at desktop size, its console log emptied (tests read the errors their page logs)."""
    browser.set_window_size(1280, 1000)
    browser.get_log("browser")
    return browser

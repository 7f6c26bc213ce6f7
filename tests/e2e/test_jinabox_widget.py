"""The published jinabox.js widget (npm `jinabox@0.1.49` and `@0.1.50`) in a real headless Chromium, against the
run's shared query server, on both routes it may be pointed at (`/api/search`, `/search`).

The builds are fetched at test time with `npm pack` (never committed; once per run) and unpacked into a temporary
site that a static HTTP server serves on another loopback port, so every request the widget makes is cross-origin,
as for a real user. Each host page embeds the build the way its README says (`<script src=".../jinabox.umd.min.js">`,
the file the `unpkg` CDN link loads, then `JinaBox.init(url)`, then a `<jina-searchbar>`), with one difference
the builds force: the script comes after the element. Their components read their own children with
`document.querySelector` and set `innerHTML` in the constructor, which throws (`NotSupportedError`) when the element
is created by the parser with the definition already loaded (script in `<head>`): only an upgrade works.
`init`'s second argument raises the request timeout from 5 s to 60 s: the shared server may be busy on 2 cores.

Each build renders a photo match as `<img src=uri>` and a caption match as text; the tests check both, and that the
page had no JavaScript error (a window.onerror / unhandledrejection collector installed before the widget, and
the browser's console log). 0.1.49's stylesheet @imports Google Fonts: that request is blocked, so the tests never
go online.
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from crossmodal.index.ids import image_doc_id
from tests.chromium import chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("0.1.49", "0.1.50")
ROUTES = ("/api/search", "/search")
TOP_K = 16  # what every build asks for (JinaSettings.top_k)
COFFEE = "demo/coffee.png"
WAIT = 60  # seconds for the widget to show its results
NPM_TIMEOUT = 180
BLOCKED_URLS = ["*fonts.googleapis.com*", "*fonts.gstatic.com*"]

HOST_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>jinabox {version} on {route}</title>
  <link rel="icon" href="data:,">
  <script>
    window.jsErrors = [];
    window.addEventListener('error', (event) => window.jsErrors.push('error: ' + event.message));
    window.addEventListener('unhandledrejection', (event) =>
      window.jsErrors.push('unhandled rejection: ' + String(event.reason && (event.reason.stack || event.reason))));
  </script>
</head>
<body>
  <h1>A page that embeds jinabox {version}</h1>
  <jina-searchbar id="box"></jina-searchbar>
  <script src="jinabox-{version}/dist/jinabox.umd.min.js"></script>
  <script>window.JinaBox.init({url}, {{timeout: 60000}});</script>
</body>
</html>
"""

DROP_FILE = """
    const [name, type, data] = arguments;
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, {type}));
    const input = document.querySelector('#box .jina-search-input');
    input.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
"""


def demo_captions(name: str) -> list[str]:
    manifest = json.loads((REPO_ROOT / "demo" / "manifest.json").read_text())
    return next(photo["captions"] for photo in manifest["photos"] if photo["name"] == name)


# --- the builds, their host pages and the static server -------------------------------------------------------------

def npm_pack(version: str, destination: Path) -> Path:
    """`npm pack jinabox@VERSION` into `destination`; a failure fails the test (CI must fetch the real builds)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the jinabox widget tests fetch the published builds with `npm pack` "
                    "(apt-get install nodejs npm)")
    command = [npm, "pack", f"jinabox@{version}", "--pack-destination", str(destination)]
    try:
        result = subprocess.run(command, cwd=destination, capture_output=True, text=True, timeout=NPM_TIMEOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, "npm_config_update_notifier": "false"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(command[1:])}` did not finish in {NPM_TIMEOUT} s (is the npm registry reachable?)")
    tarball = destination / f"jinabox-{version}.tgz"
    if result.returncode != 0 or not tarball.is_file():
        pytest.fail(f"`npm pack jinabox@{version}` failed (exit {result.returncode}); the widget tests need the "
                    f"published build from the npm registry.\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return tarball


@pytest.fixture(scope="session")
def jinabox_site(tmp_path_factory) -> Path:
    """A folder with each build unpacked as `jinabox-VERSION/` (the npm tarball's `package/`), fetched once a run."""
    root = tmp_path_factory.mktemp("jinabox")
    site = root / "site"
    site.mkdir()
    for version in VERSIONS:
        tarball = npm_pack(version, root)
        with tarfile.open(tarball) as archive:
            archive.extractall(root / version, filter="data")
        (root / version / "package").rename(site / f"jinabox-{version}")
        script = site / f"jinabox-{version}" / "dist" / "jinabox.umd.min.js"
        assert script.is_file(), f"jinabox@{version} has no dist/jinabox.umd.min.js"
    return site


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the base class names it `format`
        pass


@pytest.fixture(scope="session")
def static_site(jinabox_site):
    """The site on its own loopback port: another origin than the query server."""
    handler = functools.partial(QuietHandler, directory=str(jinabox_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"root": jinabox_site, "url": f"http://127.0.0.1:{server.server_port}"}
    finally:
        server.shutdown()
        server.server_close()


def host_page(site: dict, version: str, server_url: str, route: str) -> str:
    """Write the page embedding `version` pointed at `server_url + route`; its URL."""
    name = f"jinabox-{version}{route.replace('/', '-')}.html"
    page = HOST_PAGE.format(version=version, route=route, url=json.dumps(server_url + route))
    (site["root"] / name).write_text(page)
    return f"{site['url']}/{name}"


# --- the browser ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED_URLS})
        yield driver


@pytest.fixture
def open_widget(browser, static_site, demo_server):
    """Load the host page of one build pointed at one route of the shared server; the search input."""
    def open_page(version: str, route: str):
        browser.get_log("browser")  # forget the previous page's console
        browser.get(host_page(static_site, version, demo_server, route))
        inputs = browser.find_elements(By.CSS_SELECTOR, "#box .jina-search-input")
        assert len(inputs) == 1, f"jinabox {version} rendered no search input; JS errors: {js_errors(browser)}"
        return inputs[0]
    return open_page


def js_errors(driver, expected: tuple[str, ...] = ()) -> list[str]:
    """JavaScript errors of the page: its own collector, and every SEVERE console entry (a failed request too),
    except the blocked font and the failed requests whose line holds one of `expected`."""
    errors = list(driver.execute_script("return window.jsErrors || ['the error collector is gone']"))
    for entry in driver.get_log("browser"):
        allowed = entry["source"] == "network" and any(
            text in entry["message"] for text in ("fonts.googleapis.com", *expected))
        if entry["level"] == "SEVERE" and not allowed:
            errors.append(f"console {entry['source']}: {entry['message']}")
    return errors


def widget_results(driver, css: str):
    """The widget's rendered results once at least one is shown; its error message fails the test."""
    def shown(d):
        if d.find_elements(By.CSS_SELECTOR, "#box .jina-error"):
            return "error"
        return d.find_elements(By.CSS_SELECTOR, css) or False
    try:
        found = WebDriverWait(driver, WAIT).until(shown)
    except TimeoutException:
        raise AssertionError(f"no {css!r} after {WAIT} s; the widget shows "
                             f"{driver.find_element(By.ID, 'box').text!r}; JS errors: {js_errors(driver)}") from None
    if found == "error":
        raise AssertionError(f"the widget shows an error: {driver.find_element(By.ID, 'box').text!r}; "
                             f"JS errors: {js_errors(driver)}")
    return found


def loaded(driver, image) -> bool:
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))


# --- the matrix -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("version", VERSIONS)
def test_a_text_query_shows_the_photos(open_widget, browser, demo_server, version, route):
    open_widget(version, route).send_keys("a cup of coffee", Keys.ENTER)
    images = widget_results(browser, "#box img.jina-result-image")
    sources = [image.get_attribute("src") for image in images]
    assert len(sources) == TOP_K, sources
    assert sources[0] == f"{demo_server}/images/{image_doc_id(COFFEE)}", sources[:3]
    WebDriverWait(browser, WAIT).until(lambda d: all(loaded(d, image) for image in images),
                                       "the result photos did not load")
    assert f"{TOP_K} results" in browser.find_element(By.CSS_SELECTOR, "#box .jina-results-label").text
    assert js_errors(browser) == []


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("version", VERSIONS)
def test_a_dropped_photo_shows_its_captions(open_widget, browser, demo_workspace, version, route):
    open_widget(version, route)
    photo = (demo_workspace / "demo_images" / "chelsea_cat.png").read_bytes()
    # As a file dropped from the desktop: the widget reads it with FileReader and sends a data: URI.
    browser.execute_script(DROP_FILE, "chelsea_cat.png", "image/png", base64.b64encode(photo).decode())
    items = widget_results(browser, "#box .jina-text-result")
    texts = [item.text for item in items]
    assert len(texts) == TOP_K, texts
    assert set(texts[:3]) & set(demo_captions("chelsea_cat")), texts[:3]
    # The dropped photo is shown as the query (the search icon becomes it).
    icon = browser.find_element(By.CSS_SELECTOR, "#box .jina-search-icon")
    assert icon.get_attribute("src").startswith("data:image/png;base64,")
    assert js_errors(browser) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_refused_query_shows_the_servers_message(open_widget, browser, version):
    box = open_widget(version, "/api/search")
    browser.execute_script("arguments[0].value = 'x'.repeat(1001)", box)
    box.send_keys(Keys.ENTER)
    message = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#box .jina-error p"))[0].get_attribute("textContent")
    assert "longer than 1000 characters" in message, message
    assert js_errors(browser, expected=("/api/search - Failed to load resource: the server responded with a "
                                        "status of 400",)) == []

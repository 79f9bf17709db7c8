# SPDX-License-Identifier: MIT
"""Uploaded files with scripts stay inert in a real browser (headless Chromium).

HTML, SVG, XHTML and XML files whose scripts would call a beacon URL of the
test server are uploaded to a record, then opened in Debian's Chromium
(driven by Playwright, never with a browser of Playwright's own) through the
record files object URL, inline and with ``?download``, and through the
``file_download_ui`` view, inline and with ``?download``. The beacon must
never be hit. The same bytes served as HTML by a control route do hit it:
the payloads work, and the test can fail. Where the record files endpoints
serve the members of an uploaded zip (``?member=<name>``), the payloads are
also opened as members of a zip, inline and with ``&download``.

Without Chromium or Playwright the tests are skipped, saying why; with
``RECORDS_FILES_REQUIRE_BROWSER`` set (``run-tests.sh`` sets it in CI) they
fail instead.
"""

import importlib.util
import os
import shutil
import threading
import time
import zipfile
from io import BytesIO

import pytest
import requests
from invenio_db import db
from invenio_files_rest.models import Location
from werkzeug.serving import make_server

from examples.app import QuietHandler

from .helpers import create_app, create_record

pytestmark = pytest.mark.database_independent

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

PAYLOADS = {
    "page.html": (
        b"<!DOCTYPE html><html><body><p>hello</p>"
        b"<script>fetch('/beacon/html-script')</script>"
        b"<img src='/beacon/html-img' onerror=\"fetch('/beacon/html-onerror')\">"
        b"</body></html>"
    ),
    "image.svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" '
        b"onload=\"fetch('/beacon/svg-onload')\">"
        b"<script>fetch('/beacon/svg-script')</script>"
        b'<image href="/beacon/svg-image" width="1" height="1"/></svg>'
    ),
    "page.xhtml": (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        b"<script>fetch('/beacon/xhtml-script')</script></body></html>"
    ),
    "data.xml": (
        b'<?xml version="1.0" encoding="UTF-8"?><root>'
        b'<html:script xmlns:html="http://www.w3.org/1999/xhtml">'
        b"fetch('/beacon/xml-script')</html:script></root>"
    ),
    "no-extension": (
        b"<!DOCTYPE html><html><body>"
        b"<script>fetch('/beacon/sniffed-script')</script></body></html>"
    ),
}

CONTROL_TYPES = {
    "page.html": "text/html",
    "image.svg": "image/svg+xml",
    "page.xhtml": "application/xhtml+xml",
    "data.xml": "application/xml",
    "no-extension": "text/html",
}
"""How a careless server would send each payload (the control route)."""

URLS = {
    "object": "/api/records/1/files/{key}",
    "object ?download": "/api/records/1/files/{key}?download",
    "download view": "/records/1/files/{key}",
    "download view ?download": "/records/1/files/{key}?download",
}

MEMBER_URLS = {
    "zip member": "/api/records/1/files/payloads.zip?member={key}",
    "zip member &download": "/api/records/1/files/payloads.zip?member={key}&download",
}

HAS_MEMBERS = importlib.util.find_spec("invenio_records_files.rest.members") is not None
"""Whether this tree serves the members of uploaded zips (``?member=``)."""

SAFE_TYPES = {"text/plain", "application/octet-stream"}


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def browser_missing() -> str | None:
    """Say why the browser cannot run here (``None`` if it can)."""
    if not os.access(CHROMIUM, os.X_OK):
        return (
            f"Chromium not found at {CHROMIUM} (apt-get install chromium; "
            "run-tests.sh installs it where it may)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[browser]')"
    return None


@pytest.fixture(scope="module")
def chromium():
    reason = browser_missing()
    if reason:
        if os.environ.get("RECORDS_FILES_REQUIRE_BROWSER"):
            pytest.fail(f"the browser test must run here: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            # Root may not use Chromium's sandbox; nothing else is relaxed.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


class Beacon:
    """What the scripts would call: records every hit."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.lock = threading.Lock()

    def hit(self, what: str) -> str:
        with self.lock:
            self.hits.append(what)
        return ""

    def take(self) -> list[str]:
        with self.lock:
            hits, self.hits = self.hits, []
        return hits


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The example application, with the payloads, on a threaded server."""
    directory = tmp_path_factory.mktemp("browser")
    app = create_app(f"sqlite:///{directory}/browser.db")
    beacon = Beacon()
    app.add_url_rule(
        "/beacon/<path:what>", "beacon", beacon.hit, methods=["GET", "POST"]
    )

    def control(key):
        return PAYLOADS[key], 200, {"Content-Type": CONTROL_TYPES[key]}

    app.add_url_rule("/control/<path:key>", "control", control)
    with app.app_context():
        db.create_all()
        db.session.add(
            Location(name="browser", uri=str(directory / "files"), default=True)
        )
        record = create_record("1")
        for key, payload in PAYLOADS.items():
            record.files[key] = BytesIO(payload)
        record.files["payloads.zip"] = BytesIO(zip_of(PAYLOADS))
        record.commit()
        db.session.commit()
    http = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", beacon
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


class Tab:
    """One browser page, opening URL after URL (new pages are slow to make)."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(accept_downloads=True)
        self.page = self.context.new_page()
        self.downloads: list = []
        self.page.on("download", lambda download: self.downloads.append(download))

    def open(self, url: str) -> str:
        """Open ``url``; return ``"page"``, or ``"download"`` if it was one."""
        from playwright.sync_api import Error

        self.downloads.clear()
        try:
            self.page.goto(url, wait_until="load")
        except Error as error:
            # Chromium aborts the navigation of a download.
            message = str(error)
            if "Download is starting" not in message and "ERR_ABORTED" not in message:
                raise
        self.page.wait_for_timeout(250)  # time for any script to call out
        if self.downloads:
            for download in self.downloads:
                download.cancel()
            return "download"
        return "page"

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def tab(chromium):
    tab = Tab(chromium)
    yield tab
    tab.close()


def wait_for_hits(beacon: Beacon, seconds: float = 5.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hits = beacon.take()
        if hits:
            return hits
        time.sleep(0.05)
    return []


@pytest.mark.parametrize("key", ["page.html", "image.svg", "page.xhtml", "data.xml"])
def test_the_payloads_run_when_served_carelessly(tab, server, key):
    base_url, beacon = server
    beacon.take()
    assert tab.open(f"{base_url}/control/{key}") == "page"
    assert wait_for_hits(beacon), f"the {key} payload did not call the beacon"


def check_never_run(tab, server, key, urls):
    base_url, beacon = server
    beacon.take()
    for name, template in urls.items():
        url = base_url + template.format(key=key)
        opened = tab.open(url)
        if name.endswith("download") or key == "no-extension":
            assert opened == "download", name
        else:
            assert opened == "page", name
        assert beacon.take() == [], (key, name)
    # Anything delayed would have arrived by now.
    time.sleep(0.3)
    assert beacon.take() == []


@pytest.mark.parametrize("key", list(PAYLOADS))
def test_uploaded_scripts_never_run(tab, server, key):
    check_never_run(tab, server, key, URLS)


@pytest.mark.skipif(not HAS_MEMBERS, reason="this tree serves no zip members")
@pytest.mark.parametrize("key", list(PAYLOADS))
def test_scripts_in_zip_members_never_run(tab, server, key):
    check_never_run(tab, server, key, MEMBER_URLS)


@pytest.mark.parametrize("key", list(PAYLOADS))
@pytest.mark.parametrize(
    "name",
    [
        *URLS,
        *(
            pytest.param(
                name,
                marks=pytest.mark.skipif(
                    not HAS_MEMBERS, reason="this tree serves no zip members"
                ),
            )
            for name in MEMBER_URLS
        ),
    ],
)
def test_headers_make_downloads_inert(server, key, name):
    base_url, _ = server
    url = {**URLS, **MEMBER_URLS}[name].format(key=key)
    response = requests.get(base_url + url, timeout=30)
    assert response.status_code == 200
    assert response.content == PAYLOADS[key]
    headers = response.headers
    assert headers["Content-Type"].split(";")[0] in SAFE_TYPES, headers["Content-Type"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none';"
    assert headers["X-Frame-Options"] == "deny"
    assert headers["X-Download-Options"] == "noopen"
    disposition = headers["Content-Disposition"]
    if (
        name.endswith("download")
        or headers["Content-Type"] == "application/octet-stream"
    ):
        assert disposition.startswith("attachment")
    else:
        assert disposition == "inline"

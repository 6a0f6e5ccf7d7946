"""The live page in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright; no browser download):
drop a PDF, see class, confidence, page thumbnails and page classes; a bad file shows the service's message."""

from __future__ import annotations

import base64
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import World

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


@pytest.fixture(scope="module")
def live_url(world: World) -> Iterator[str]:
    """The service's ASGI app under uvicorn in a thread on a free loopback port."""
    import os
    import socket

    import uvicorn

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make system-deps) to run browser tests")
    pytest.importorskip("playwright.sync_api", reason="python playwright not installed")
    old = {key: os.environ.get(key) for key in world.env()}
    os.environ.update(world.env())
    world.promote(world.v1)
    from tests.serving.test_http import make_client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_client().app
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def drop_file(page, name: str, data: bytes, mime: str) -> None:
    """Dispatch a real drop event carrying the file on the drop zone."""
    handle = page.evaluate_handle(
        """([name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            return dt;
        }""",
        [name, base64.b64encode(data).decode(), mime],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": handle})


def test_drop_a_document_and_see_its_class(live_url: str, world: World) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which(str(CHROMIUM))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{live_url}/ui")
            page.wait_for_function("document.getElementById('champion').textContent.includes('1.')")
            assert page.text_content("#champion") == f"champion: 1.{world.v1}"
            doc = world.doc("invoice")
            drop_file(page, doc.name, doc.read_bytes(), "application/pdf")
            page.wait_for_selector("[data-testid=document]", timeout=30000)
            assert page.text_content("[data-testid=label]") == "invoice"
            assert page.text_content("[data-testid=confidence]").endswith("%")
            pages = page.query_selector_all("[data-testid=page]")
            assert len(pages) >= 1
            assert "invoice" in pages[0].text_content()
            width = page.evaluate("document.querySelector('[data-testid=page] img').naturalWidth")
            assert width > 0  # the thumbnail really decoded
            assert f"model 1.{world.v1}" in page.text_content("#status")

            drop_file(page, "notes.txt", b"plain text, not a document", "text/plain")
            page.wait_for_selector("#status.error", timeout=30000)
            assert "415" in page.text_content("#status") and "unsupported file type" in page.text_content("#status")
        finally:
            browser.close()

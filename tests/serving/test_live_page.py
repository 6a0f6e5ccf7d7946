"""The live page and the API documentation in a real headless Chromium (Debian's /usr/bin/chromium driven by
playwright; no browser download): drop a PDF, see class, confidence, page thumbnails and page classes; a bad file
shows the service's message; needs_review and the top three classes are shown; the "split" toggle shows the
documents of a bundle with their page ranges; the page at ``/`` explains the API and loads nothing from outside
the server."""

from __future__ import annotations

import base64
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.docs import EXAMPLE_ANSWER, VERSIONS_EXAMPLE, statuses
from tests.params import serve_config
from tests.serving.conftest import World, zip_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def live_url(world: World) -> Iterator[str]:
    """The service's ASGI app under uvicorn in a thread on a free loopback port."""
    import os
    import socket

    import uvicorn

    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (make system-deps) to run browser tests"
        )
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
            top = [item.text_content() for item in page.query_selector_all("[data-testid=top-class]")]
            assert len(top) == 3 and top[0].startswith("invoice ")
            assert page.text_content("[data-testid=review]") in ("needs review", "no review needed")
            assert page.query_selector("[data-testid=segments]") is None  # split is off
            width = page.evaluate("document.querySelector('[data-testid=page] img').naturalWidth")
            assert width > 0  # the thumbnail really decoded
            assert f"model 1.{world.v1}" in page.text_content("#status")

            drop_file(page, "notes.txt", b"plain text, not a document", "text/plain")
            page.wait_for_selector("#status.error", timeout=30000)
            assert "415" in page.text_content("#status") and "unsupported file type" in page.text_content(
                "#status"
            )
        finally:
            browser.close()


def bundle(world: World) -> bytes:
    """One PDF holding an invoice and then a W-9 (a scanned bundle as a mail room would send it)."""
    import pymupdf

    out = pymupdf.open()
    for label in ("invoice", "w9"):
        with pymupdf.open(world.doc(label)) as part:
            out.insert_pdf(part)
    return out.tobytes()


def test_the_split_toggle_shows_the_documents_of_a_bundle_with_review_and_top_three(
    live_url: str, world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With "split" on, the page shows each segment's page range, class and confidence, exactly as the service
    answers them; needs_review and the top three classes are shown for the document."""
    import httpx
    from playwright.sync_api import sync_playwright

    data = bundle(world)
    expected = httpx.post(
        f"{live_url}/classify", params={"split": "auto"}, files={"file": ("bundle.pdf", data)}, timeout=60
    )
    assert expected.status_code == 200, expected.text
    [answer] = expected.json()["documents"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{live_url}/ui")
            page.check("[data-testid=split-toggle]")
            drop_file(page, "bundle.pdf", data, "application/pdf")
            page.wait_for_selector("[data-testid=segments]", timeout=30000)
            rows = [
                [cell.text_content() for cell in row.query_selector_all("td")]
                for row in page.query_selector_all("[data-testid=segment]")
            ]

            def pages(s: dict) -> str:
                first, last = s["first_page"], s["last_page"]
                return f"page {first}" if first == last else f"pages {first}\u2013{last}"

            assert rows == [
                [pages(s), s["label"], f"{100 * s['confidence']:.1f}%"] for s in answer["segments"]
            ]
            assert answer["segments"][-1]["last_page"] == answer["n_pages"] >= 2
            shown_top = [item.text_content() for item in page.query_selector_all("[data-testid=top-class]")]
            assert shown_top == [f"{t['label']} {100 * t['score']:.1f}%" for t in answer["top"]]
            review = page.text_content("[data-testid=review]")
            assert review == ("needs review" if answer["needs_review"] else "no review needed")
            title = page.get_attribute("[data-testid=review]", "title")
            assert f"review score {answer['review_score']:.3f}" in title
            assert f"review threshold {answer['review_threshold']:.3f}" in title
            shot = tmp_path_factory.mktemp("live-page") / "split.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            # the toggle is remembered for the session and switched off again
            page.reload()
            assert page.is_checked("[data-testid=split-toggle]")
            page.uncheck("[data-testid=split-toggle]")
            drop_file(page, "bundle.pdf", data, "application/pdf")
            page.wait_for_selector("[data-testid=document]", timeout=30000)
            page.wait_for_function("!document.querySelector('[data-testid=segments]')")
        finally:
            browser.close()


def shape(value: object) -> object:
    """The keys of a JSON answer, recursively (lists by their first element), without the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items() if key != "scores"}
    if isinstance(value, list):
        return [shape(value[0])] if value and isinstance(value[0], dict) else "list"
    return type(value).__name__ if isinstance(value, bool) else "value"


def test_the_documented_answers_have_the_fields_of_real_ones(live_url: str, world: World) -> None:
    """The example answers on ``/`` have exactly the fields of real ones (``/classify?split=auto``, ``/versions``)."""
    import httpx

    upload = zip_bytes({"invoice.pdf": world.doc("invoice").read_bytes(), "notes.txt": b"plain text"})
    response = httpx.post(
        f"{live_url}/classify", params={"split": "auto"}, files={"file": ("batch.zip", upload)}, timeout=60
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["documents"] and answer["rejected"] and answer["documents"][0]["segments"]
    assert shape(answer) == shape(EXAMPLE_ANSWER)
    versions = httpx.get(f"{live_url}/versions", timeout=30)
    assert versions.status_code == 200 and versions.json()["versions"], versions.text
    assert shape(versions.json()) == shape(VERSIONS_EXAMPLE)


def test_the_api_page_explains_the_api_and_loads_nothing_from_outside(
    live_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            page.goto(f"{live_url}/", wait_until="networkidle")
            assert page.title() == "docclass API"
            text = page.inner_text("main")
            for needle in [
                "POST /classify",
                "multipart/form-data",
                "version",
                "split",
                "split=auto",
                "thumbnails",
                "Authorization: Bearer",
                "DOCCLASS_API_KEY",
                "GET /versions",
                "/readyz",
                "/livez",
                "/metrics",
                "/docs.json",
                f"curl -s -F file=@invoice.pdf {live_url}/classify",
            ]:
                assert needle in text, needle
            assert "Machine Learning Service created with BentoML" not in page.content()
            shown = {
                int(row.get_attribute("data-status")) for row in page.query_selector_all("tr[data-status]")
            }
            assert shown == {status.code for status in statuses(serve_config())}
            # This server's limits (serve.max_upload_mb: 5 in the test params) are in the examples.
            assert "the limit is 5 MB per request" in page.inner_text("#statuses")
            # The stylesheet really applied (so the request log below is not empty by accident).
            header = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
            assert header == "rgb(36, 50, 63)"
            shot = tmp_path_factory.mktemp("api-page") / "api.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            page.click("text=live page")
            page.wait_for_url(f"{live_url}/ui")
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    assert f"{live_url}/" in requests and f"{live_url}/ui/static/api.css" in requests
    outside = [url for url in requests if not url.startswith((f"{live_url}/", "data:"))]
    assert not outside, f"the pages loaded from outside the server: {outside}"

"""The API documentation (``/`` and ``/docs.json``): it documents exactly the statuses the service's code answers,
describes /classify's fields, and the page loads nothing from outside the server."""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from serving.docs import EXAMPLE_ANSWER, FORM_FIELDS, render_page, statuses
from tests.params import serve_config

SERVING = Path(__file__).parents[2] / "serving"
# Statuses BentoML answers itself: 200 (the API's return value) and 500 (an unexpected exception).
FROM_BENTOML = {200, 500}


def answered_statuses() -> dict[int, list[str]]:
    """Every HTTP status literal in the serving code: ``HTTPError(<code>, ...)``, ``status_code=<code>``,
    ``x.status_code = <code>`` and the returns of ``rejection_status``."""
    found: dict[int, list[str]] = {}

    def add(value: ast.expr, where: str) -> None:
        if isinstance(value, ast.Constant) and isinstance(value.value, int) and 100 <= value.value < 600:
            found.setdefault(value.value, []).append(where)

    for path in sorted(SERVING.glob("*.py")):
        if path.name in ("docs.py", "bench.py"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name) and node.func.id == "HTTPError" and node.args:
                    add(node.args[0], where)
                for keyword in node.keywords:
                    if keyword.arg in ("status_code", "status"):
                        add(keyword.value, where)
            elif isinstance(node, ast.Assign):
                if any(isinstance(t, ast.Attribute) and t.attr == "status_code" for t in node.targets):
                    add(node.value, where)
            elif isinstance(node, ast.FunctionDef) and node.name == "rejection_status":
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and inner.value is not None:
                        add(inner.value, where)
    return found


def test_the_scan_finds_the_statuses_of_the_service() -> None:
    found = answered_statuses()
    # A scan that found nothing would make the next test pass vacuously.
    assert {401, 413, 415, 422, 503, 504} <= set(found), found


def test_every_status_the_service_answers_is_documented_and_no_other() -> None:
    documented = {status.code for status in statuses(serve_config())}
    found = answered_statuses()
    undocumented = {code: found[code] for code in sorted(set(found) - documented)}
    assert not undocumented, f"statuses answered but not in serving.docs.statuses(): {undocumented}"
    stale = sorted(documented - set(found) - FROM_BENTOML)
    assert not stale, f"statuses documented in serving.docs but answered nowhere in serving/: {stale}"


class Loads(HTMLParser):
    """Every URL the page would load by itself (not links a reader may follow) and every ``<a href>``."""

    LOADING = {
        ("link", "href"),
        ("script", "src"),
        ("img", "src"),
        ("iframe", "src"),
        ("source", "src"),
        ("video", "src"),
        ("audio", "src"),
        ("embed", "src"),
        ("object", "data"),
        ("image", "href"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if value is None:
                continue
            if (tag, name) in self.LOADING or name in ("srcset", "style"):
                self.loads.append(value)
            elif tag == "a" and name == "href":
                self.links.append(value)


def local(url: str) -> bool:
    return url.startswith(("/", "#", "data:")) and not url.startswith("//")


def test_the_page_loads_nothing_from_outside() -> None:
    page = render_page(serve_config(), "http://127.0.0.1:3000/")
    parser = Loads()
    parser.feed(page)
    assert "/ui/static/api.css" in parser.loads
    assert all(local(url) for url in parser.loads), parser.loads
    assert all(local(url) for url in parser.links), parser.links
    assert "script" not in parser.tags and "@import" not in page
    css = (SERVING / "static" / "api.css").read_text()
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_the_page_explains_classify() -> None:
    config = serve_config(max_upload_mb=7, max_pages=9, request_timeout_s=33, review_threshold=0.55)
    page = render_page(config, "http://10.1.2.3:3123/")
    text = re.sub(r"<[^>]+>", "", page).replace("&amp;", "&").replace("&quot;", '"')
    for needle in [
        "POST /classify",
        "multipart/form-data",
        "PDF, PNG, JPEG, TIFF, WebP or ZIP",
        "Authorization: Bearer",
        "DOCCLASS_API_KEY",
        "split=auto",
        "?version=1.10",
        "GET /versions",
        "/ui",
        "/readyz",
        "/livez",
        "/metrics",
        "/docs.json",
        "needs_review",
        "segments",
        "rejected",
        "timings_ms",
    ]:
        assert needle in text, needle
    for field in FORM_FIELDS:
        assert f"<code>{field}</code>" in page
    assert "curl -s -F file=@invoice.pdf http://10.1.2.3:3123/classify" in text
    assert 'curl -s -H "Authorization: Bearer $DOCCLASS_API_KEY"' in text
    assert (
        "7 MB" in text and "at most 9 for all documents" in text and "after 33 s" in text and "0.55" in text
    )
    for status in statuses(config):
        assert f'data-status="{status.code}"' in page
    for key in EXAMPLE_ANSWER:
        assert f'"{key}"' in text and f"<code>{key}" in page


def test_the_page_escapes_the_address_it_was_called_at() -> None:
    page = render_page(serve_config(), 'http://evil"><script>alert(1)</script>/')
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.timeout(60)
def test_openapi_describes_docclass() -> None:
    from serving.service import DocClassifier

    spec = DocClassifier.openapi_spec.asdict()
    info = spec["info"]
    assert info["title"] == "docclass" and "contact" not in info
    assert "Machine Learning Service created with BentoML" not in info["description"]
    assert "http" not in info["description"]  # no badges or links to outside
    assert "/classify" in info["description"] and "Authorization: Bearer" in info["description"]
    post = spec["paths"]["/classify"]["post"]
    codes = {str(status.code) for status in statuses(serve_config()) if "/classify" in status.routes}
    assert set(post["responses"]) == codes
    assert post["responses"]["200"]["content"]["application/json"]["example"] == EXAMPLE_ANSWER
    [form] = post["requestBody"]["content"].values()
    properties = form["schema"]["properties"]
    assert set(properties) == set(FORM_FIELDS)
    assert "auto" in properties["split"]["description"] and "1.N" in properties["version"]["description"]
    assert set(spec["paths"]["/versions"]["get"]["responses"]) == {"200", "401", "500", "503"}
    assert "/" not in spec["paths"]

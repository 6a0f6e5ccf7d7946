"""The service's request path in-process (the ASGI app under Starlette's TestClient, no server): one answer per
uploaded document whatever fails, and OCR bounded (per-page limit; a request that timed out starts no more pages).

A fake `tesseract` (tests/failure_cases.py) stands in for the binary; the service has no extraction cache, so the
cache failure kind does not apply here (tests/flows/test_predict_cli.py covers it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytesseract
import pytest
import yaml

from pipelines.ocr import ocr_pool
from tests.failure_cases import (
    FAIL_WIDTH,
    HANG_WIDTH,
    OK_WIDTH,
    FakeTesseract,
    decode_failures,
    fake_tesseract,
    scanned_png,
    zip_of,
)
from tests.pipelines.conftest import text_pdf
from tests.serving.conftest import World, serve_params
from tests.serving.test_http import make_client, post

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STATUS = {
    "EmptyFileError": 422,
    "UnsupportedTypeError": 415,
    "EmptyArchiveError": 422,
    "CorruptDocumentError": 422,
    "ImageBombError": 422,
    "EncryptedDocumentError": 422,
    "OcrTimeoutError": 422,
    "OcrFailedError": 422,
    "OcrUnavailableError": 503,
}


def use_params(world: World, folder: Path, monkeypatch: pytest.MonkeyPatch, **serve: Any) -> None:
    """Point the next service instance at a params.yaml with a short OCR limit (and ``serve`` overrides)."""
    params = serve_params(**serve)
    params["extract"]["ocr_timeout_s"] = 1.5
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("DOCCLASS_PARAMS", str(path))


@pytest.fixture
def fake(service_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTesseract]:
    service_env.promote(service_env.v1)
    use_params(service_env, tmp_path, monkeypatch)
    tesseract = fake_tesseract(tmp_path / "fake", {HANG_WIDTH: "hang", FAIL_WIDTH: "fail"})
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tesseract.command))
    yield tesseract
    deadline = time.monotonic() + 10
    while tesseract.alive() and time.monotonic() < deadline:  # leave no fake running for the next test
        time.sleep(0.1)


def uploads() -> dict[str, tuple[str, bytes]]:
    """Expected answer -> one upload: "document" for a good one, else the rejection kind."""
    cases = dict(decode_failures())
    cases["OcrTimeoutError"] = ("scan-hang.png", scanned_png(HANG_WIDTH))
    cases["OcrFailedError"] = ("scan-fail.png", scanned_png(FAIL_WIDTH))
    return cases


def test_every_upload_gets_one_answer(fake: FakeTesseract, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_client() as client:
        for name, data in (("good.pdf", text_pdf()), ("scan.png", scanned_png(OK_WIDTH))):
            response = post(client, name, data)
            assert response.status_code == 200, response.text
            body = response.json()
            assert [d["name"] for d in body["documents"]] == [name] and body["rejected"] == []
        for kind, (name, data) in uploads().items():
            response = post(client, name, data)
            assert response.status_code == STATUS[kind], (kind, response.text)
            body = response.json()
            assert [(r["name"], r["kind"]) for r in body["rejected"]] == [(name, kind)], body
            assert "expected" in body["error"], body["error"]
        # One archive holding every kind: one entry per member, documents and rejections together.
        members = {name: data for name, data in uploads().values()}
        members |= {"good.pdf": text_pdf(), "scan.png": scanned_png(OK_WIDTH, height=750)}
        response = post(client, "all.zip", zip_of(members))
        assert response.status_code == 200, response.text
        body = response.json()
        assert sorted(d["name"] for d in body["documents"]) == ["all.zip/good.pdf", "all.zip/scan.png"]
        rejected = {r["name"]: r["kind"] for r in body["rejected"]}
        assert rejected == {f"all.zip/{name}": kind for kind, (name, _) in uploads().items()}
        # Tesseract missing: a server fault (503) for a scan, while born-digital documents are still served.
        monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
        response = post(client, "scan.png", scanned_png(OK_WIDTH, height=760))
        assert response.status_code == 503, response.text
        assert response.json()["rejected"][0]["kind"] == "OcrUnavailableError"
        assert post(client, "good.pdf", text_pdf()).status_code == 200


def test_a_timed_out_request_starts_no_more_ocr(
    service_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_env.promote(service_env.v1)
    use_params(service_env, tmp_path, monkeypatch, request_timeout_s=1)
    tesseract = fake_tesseract(tmp_path / "fake", sleep=3.0)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tesseract.command))
    scans = {f"scan-{n}.png": scanned_png(OK_WIDTH, height=700 + n) for n in range(6)}
    with make_client() as client:
        start = time.monotonic()
        response = post(client, "scans.zip", zip_of(scans))
        assert response.status_code == 504, response.text
        assert time.monotonic() - start < 5
        time.sleep(4.5)  # the pages running at the timeout finish (3 s each); queued ones must never start
        assert tesseract.alive() == 0
        assert 1 <= len(tesseract.runs()) <= ocr_pool().size, tesseract.runs()

"""OCR is bounded (defect 4): a per-page time limit, one process-wide pool of one Tesseract per core shared by
concurrent extractions, and the pages of an extraction its caller gave up on never start.

A fake `tesseract` (tests/failure_cases.py) stands in for the binary, so hangs and concurrency are exact."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytesseract
import pytest

from pipelines.document import Document
from pipelines.extract import ExtractConfig, ExtractionCancelledError, extract_documents
from pipelines.ingest import RawDocument, Rejected, sha256_of
from pipelines.ocr import OcrTimeoutError, OcrUnavailableError, ocr_pool
from tests.failure_cases import FAIL_WIDTH, HANG_WIDTH, OK_WIDTH, fake_tesseract, scanned_png
from tests.params import PARAMS, extract_config, ingest_limits


def scans(count: int, width: int = OK_WIDTH, prefix: str = "scan") -> list[RawDocument]:
    """``count`` distinct one-page scanned documents (PNG) of the given width."""
    docs = []
    for number in range(count):
        data = scanned_png(width, height=700 + number)  # other height, other bytes, other sha256
        docs.append(RawDocument(f"{prefix}-{number}.png", data, "image/png", sha256_of(data)))
    return docs


def test_a_hanging_tesseract_is_stopped_at_the_page_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_tesseract(tmp_path, {HANG_WIDTH: "hang", FAIL_WIDTH: "fail"})
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))
    config = extract_config(ocr_timeout_s=1.5)
    batch = [*scans(1, HANG_WIDTH, "hang"), *scans(1, OK_WIDTH, "ok"), *scans(1, FAIL_WIDTH, "fail")]
    start = time.monotonic()
    hung, good, failed = extract_documents(batch, config, ingest_limits())
    elapsed = time.monotonic() - start
    assert isinstance(hung, Rejected) and isinstance(hung.error, OcrTimeoutError), hung
    assert hung.kind == "OcrTimeoutError"
    assert (
        "page 1: Tesseract took longer than 1.5 s" in hung.reason and "extract.ocr_timeout_s" in hung.reason
    )
    assert isinstance(good, Document) and "invoice" in good.pages[0].text
    assert (
        isinstance(failed, Rejected)
        and failed.kind == "OcrFailedError"
        and "pixReadStreamPng" in failed.reason
    )
    # pytesseract sends SIGTERM at the limit and waits at most 1 s more; nothing waits for the hour of sleep.
    assert elapsed < 1.5 + 1.0 + 3.0, elapsed
    deadline = time.monotonic() + 3
    while fake.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.alive() == 0, "the hanging tesseract process must have been stopped"


def test_missing_tesseract_rejects_the_scans_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.pipelines.conftest import text_pdf

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-such-tesseract"))
    pdf = text_pdf()
    born_digital = RawDocument("digital.pdf", pdf, "application/pdf", sha256_of(pdf))
    scanned, digital = extract_documents([*scans(1), born_digital], extract_config(), ingest_limits())
    assert isinstance(scanned, Rejected) and isinstance(scanned.error, OcrUnavailableError)
    assert "tesseract is not installed" in scanned.reason and "no-such-tesseract" in scanned.reason
    assert isinstance(digital, Document) and digital.pages[0].source == "text"


def test_concurrent_extractions_share_one_pool_bounded_by_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_tesseract(tmp_path, sleep=0.4)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))
    pool = ocr_pool()
    assert ocr_pool() is pool  # one per process
    callers = 3
    results: list[list[Document | Rejected]] = []
    errors: list[BaseException] = []

    def extract(number: int) -> None:
        try:
            # workers=0 asks for one per core: each caller alone could fill the pool.
            results.append(
                extract_documents(scans(2, prefix=f"caller{number}"), extract_config(), ingest_limits())
            )
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=extract, args=(n,)) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(results) == callers and all(isinstance(doc, Document) for docs in results for doc in docs)
    runs = fake.runs()
    assert len(runs) == 2 * callers
    # Before: one pool per call, 3 callers x one Tesseract per core at once.
    assert max(alive for alive, _ in runs) <= pool.size
    assert max(alive for alive, _ in runs) == pool.size  # and the pool was used to the full


def test_a_caller_giving_up_drops_its_pages_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_tesseract(tmp_path, sleep=1.0)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))
    pool = ocr_pool()
    cancel = threading.Event()
    outcome: list[object] = []

    def extract() -> None:
        try:
            outcome.append(
                extract_documents(
                    scans(6, prefix="given-up"), extract_config(), ingest_limits(), cancel=cancel
                )
            )
        except ExtractionCancelledError as error:
            outcome.append(error)

    thread = threading.Thread(target=extract)
    thread.start()
    time.sleep(0.5)  # the first pages are running
    cancel.set()
    thread.join(2)
    assert not thread.is_alive(), "the caller must get control back without waiting for its pages"
    assert len(outcome) == 1 and isinstance(outcome[0], ExtractionCancelledError)
    time.sleep(2.5)  # what was running has finished; nothing else may start
    assert fake.alive() == 0
    assert 1 <= len(fake.runs()) <= pool.size, fake.runs()


def test_config_checks_the_time_limit() -> None:
    with pytest.raises(ValueError, match="extract.ocr_timeout_s: expected a number > 0, found 0"):
        ExtractConfig.from_params({**PARAMS["extract"], "ocr_timeout_s": 0})
    assert ExtractConfig.from_params({**PARAMS["extract"], "ocr_timeout_s": 5}).ocr_timeout_s == 5.0
    # The limit does not change what a page reads as: cached extractions stay valid.
    assert extract_config(ocr_timeout_s=5).cache_key() == extract_config().cache_key()

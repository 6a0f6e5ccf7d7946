"""The process-wide OCR pool: its backlog count (what the service's admission control reads) and its size, the
bound on Tesseract processes, set from ``extract.workers`` (:func:`pipelines.ocr.configure_ocr_pool`).

A fake `tesseract` (tests/failure_cases.py) stands in for the binary, so concurrency is exact."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytesseract
import pytest

from pipelines.document import Document
from pipelines.extract import extract_documents
from pipelines.ingest import RawDocument, sha256_of
from pipelines.ocr import OcrPool, configure_ocr_pool, core_count, ocr_pool
from tests.failure_cases import OK_WIDTH, fake_tesseract, scanned_png
from tests.params import extract_config, ingest_limits


def scans(count: int, prefix: str) -> list[RawDocument]:
    """``count`` distinct one-page scanned documents (PNG)."""
    docs = []
    for number in range(count):
        data = scanned_png(OK_WIDTH, height=700 + number)
        docs.append(RawDocument(f"{prefix}-{number}.png", data, "image/png", sha256_of(data)))
    return docs


@pytest.fixture
def default_pool() -> Iterator[None]:
    """Whatever a test configures, the next test gets the default pool (one worker per core) back."""
    yield
    configure_ocr_pool(0)


def test_the_pool_counts_the_jobs_waiting_for_a_worker() -> None:
    pool = OcrPool(1)
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(10)

    running = pool.submit(block)
    assert started.wait(5)
    assert pool.queued == 0  # started: no longer waiting
    waiting = [pool.submit(lambda: None) for _ in range(3)]
    assert pool.queued == 3
    assert waiting[1].cancel()
    assert pool.queued == 2  # a cancelled job no longer counts
    release.set()
    running.result(5)
    for future in (waiting[0], waiting[2]):
        future.result(5)
    assert pool.queued == 0
    pool.shutdown()


def test_the_pool_size_is_extract_workers_for_concurrent_extractions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_pool: None
) -> None:
    """extract.workers: 1 bounds the process, not only each extraction: three concurrent extractions (three
    requests of the service) ran two Tesseract processes at once on two cores before the pool took the setting."""
    fake = fake_tesseract(tmp_path, sleep=0.4)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))
    config = extract_config(workers=1)
    pool = configure_ocr_pool(config.workers)
    assert pool is ocr_pool() and pool.size == 1
    results: list[list[object]] = []
    errors: list[BaseException] = []

    def extract(number: int) -> None:
        try:
            results.append(list(extract_documents(scans(2, f"caller{number}"), config, ingest_limits())))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=extract, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert all(isinstance(doc, Document) for docs in results for doc in docs) and len(results) == 3
    runs = fake.runs()
    assert len(runs) == 6
    assert max(alive for alive, _ in runs) == 1, runs


def test_zero_workers_is_one_per_core_and_a_negative_count_is_refused(default_pool: None) -> None:
    assert configure_ocr_pool(0).size == core_count()
    with pytest.raises(ValueError, match=r"extract.workers must be >= 0 .*got -1"):
        configure_ocr_pool(-1)

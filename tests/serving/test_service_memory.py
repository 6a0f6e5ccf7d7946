"""The service's extraction gives its memory back when it is done (defects the soak, flows/bench_soak.py, found:
the service's RSS grew by ~200 MB per rejected huge-text-layer PDF, and by the sum of concurrent peaks).

In-process, on the function the service runs in its extraction threads (:func:`serving.service.extract_upload`)."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from serving.postprocess import forget_traceback
from tests.hostile import huge_text_layer
from tests.params import extract_config, ingest_limits

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MB = 2**20


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


@pytest.fixture(scope="module")
def text_pdf() -> bytes:
    """A one-page PDF drawing 5.8 million characters: refused (TextLayerTooLargeError) after MuPDF built its
    display list of ~200 MB."""
    return huge_text_layer()


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector off, as between its rare full collections: only reference counting frees."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def test_forget_traceback_drops_the_whole_chain() -> None:
    def fail() -> None:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner

    with pytest.raises(ValueError) as caught:
        fail()
    error = caught.value
    assert error.__traceback__ is not None and error.__cause__ is not None
    assert error.__cause__.__traceback__ is not None
    forget_traceback(error)
    assert error.__traceback__ is None and error.__cause__.__traceback__ is None
    assert str(error) == "outer" and type(error.__cause__) is KeyError  # what a rejection reports is kept


def test_a_rejected_upload_holds_no_memory_once_answered(text_pdf: bytes, no_cyclic_gc: None) -> None:
    """Before: each rejection's traceback kept the extraction's frames (and the page's display list) in a cycle."""
    from serving.service import extract_upload

    config, limits = extract_config(), ingest_limits()
    extract_upload(text_pdf, "warm-up.pdf", config, limits)
    before = rss_mb()
    for number in range(3):
        docs, rejected = extract_upload(text_pdf, f"text-{number}.pdf", config, limits)
        assert docs == [] and [r.kind for r in rejected] == ["TextLayerTooLargeError"]
        assert "text layer" in rejected[0].reason
        del docs, rejected
    grown = rss_mb() - before
    assert grown < 100, f"RSS grew by {grown:.0f} MB over 3 rejected uploads (~200 MB each when kept)"


def test_concurrent_extractions_give_their_peak_back(text_pdf: bytes) -> None:
    """Before: glibc kept what four concurrent extractions freed in its per-thread arenas (~800 MB here)."""
    from serving.service import extract_upload

    config, limits = extract_config(), ingest_limits()
    extract_upload(text_pdf, "warm-up.pdf", config, limits)
    gc.collect()
    before = rss_mb()
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            answers = list(pool.map(lambda n: extract_upload(text_pdf, f"{n}.pdf", config, limits), range(4)))
            assert all(rejected[0].kind == "TextLayerTooLargeError" for _, rejected in answers)
            del answers
    grown = rss_mb() - before
    assert grown < 150, f"RSS stayed {grown:.0f} MB above its level before four concurrent extractions"


def test_mupdf_keeps_no_resources_of_answered_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: MuPDF's store kept every scanned page's decoded image (up to its 256 MB default), so the service's
    RSS grew with every new scan for minutes (~3.7 MB a page here). The store is emptied at most every 5 s: here
    after every extraction, so that a dozen pages show it."""
    import numpy as np
    import pymupdf
    import pytesseract
    from PIL import Image

    import serving.service
    from serving.service import extract_upload
    from tests.failure_cases import fake_tesseract

    monkeypatch.setattr(serving.service, "STORE_SHRINK_EVERY_S", 0.0)
    fake = fake_tesseract(tmp_path / "fake")  # reads nothing: the cost is in decoding the page image
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))

    def scan(seed: int) -> bytes:
        noise = np.random.default_rng(seed).integers(0, 255, (2200, 1700), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, "PNG", compress_level=1)
        pdf = pymupdf.open()
        page = pdf.new_page(width=612, height=792)
        page.insert_image(page.rect, stream=buffer.getvalue())
        return pdf.tobytes()

    scans = [scan(seed) for seed in range(13)]
    config, limits = extract_config(), ingest_limits()
    extract_upload(scans[0], "warm-up.pdf", config, limits)
    gc.collect()
    before = rss_mb()
    for number, data in enumerate(scans[1:]):
        docs, rejected = extract_upload(data, f"scan-{number}.pdf", config, limits)
        assert [doc.pages[0].source for doc in docs] == ["ocr"] and not rejected
    grown = rss_mb() - before
    assert grown < 15, f"RSS grew by {grown:.0f} MB over 12 scanned pages already answered"

"""The title view: largest-set lines and the top band of a page, from PDF span sizes and from Tesseract's TSV."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pymupdf
import pytest
from PIL import Image

from pipelines.document import Document, Page
from pipelines.extract import EXTRACTOR_VERSION, ExtractionCache, extract_documents
from pipelines.ingest import RawDocument, check_bytes, sha256_of
from pipelines.title import ocr_title, pdf_title, title_from_lines
from tests.params import extract_config, ingest_limits, ocr_read

BODY = [f"Body line {k}: the payee agrees to the terms of section {k}." for k in range(30)]


def heading_pdf(heading: str = "Request for Taxpayer Identification", fontsize: float = 26) -> bytes:
    """A one-page PDF: a large heading in the middle of the page (below the top band), three section headings
    in smaller sizes, small body text around them."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=612, height=792)
    y = 200.0
    for line in BODY[:10]:
        page.insert_text((50, y), line, fontsize=9)
        y += 12
    page.insert_text((50, y + 30), heading, fontsize=fontsize)
    y += 70
    for k, size in enumerate((18, 14, 12)):
        page.insert_text((50, y), f"Part {k + 1}", fontsize=size)
        y += size + 4
        for line in BODY[10 + 6 * k : 16 + 6 * k]:
            page.insert_text((50, y), line, fontsize=9)
            y += 12
    return pdf.tobytes()


def extract(data: bytes) -> Document:
    raw = RawDocument(
        name="doc.pdf", data=data, mime=check_bytes(data, "doc.pdf", ingest_limits()), sha256=sha256_of(data)
    )
    (document,) = extract_documents([raw], extract_config(workers=1), ingest_limits())
    assert isinstance(document, Document)
    return document


# --------------------------------------------------------------------------------------------- pure


def test_title_keeps_large_lines_then_top_band_lines():
    lines = [(10.0, 20.0, "Acme Ltd letterhead"), (24.0, 300.0, "INVOICE"), (14.0, 330.0, "Bill to")]
    lines += [(10.0, 350.0 + 10 * k, f"item {k}") for k in range(20)] + [(12.0, 600.0, "Total")]
    parts = title_from_lines(lines, page_height=792).split(" \n")
    assert parts == ["INVOICE", "Bill to", "Total", "Acme Ltd letterhead"]  # large ones, then the top band


def test_title_of_a_page_without_text_is_empty():
    assert title_from_lines([], 792) == ""
    assert title_from_lines([(12.0, 10.0, "   ")], 792) == ""


def test_a_page_in_three_sizes_or_fewer_is_all_title():
    """Measured choice (pipelines.title.title_from_lines): the three largest sizes count even when one of them
    is the body's, so a plain page's title is its first lines."""
    lines = [(20.0, 200.0, "Letter")] + [(9.0, 300.0 + 12 * k, f"body {k}") for k in range(50)]
    parts = title_from_lines(lines, page_height=792).split(" \n")
    assert parts[:3] == ["Letter", "body 0", "body 1"] and len(parts) == 40


def test_pdf_title_from_span_sizes():
    with pymupdf.open(stream=heading_pdf(), filetype="pdf") as pdf:
        page = pdf[0]
        title = pdf_title(page.get_text("dict"), page.rect.height)
    assert "Request for Taxpayer Identification" in title.split(" \n")
    assert not any("Body line 25" in part for part in title.split(" \n"))


def tsv(words: list[tuple[str, int, int, int, float]]) -> dict[str, list]:
    """A Tesseract image_to_data dict: (text, line number, top, height, confidence) per word, one block."""
    return {
        "text": [w[0] for w in words],
        "block_num": [1] * len(words),
        "par_num": [1] * len(words),
        "line_num": [w[1] for w in words],
        "top": [w[2] for w in words],
        "height": [w[3] for w in words],
        "conf": [w[4] for w in words],
    }


def test_ocr_title_from_word_heights():
    words = [("Form", 1, 900, 60, 95.0), ("W-9", 1, 905, 58, 92.0)]  # large, mid-page
    words += [("Request", 2, 980, 40, 90.0), ("Part", 3, 1040, 30, 90.0)]  # headings
    words += [(f"word{k}", 4 + k, 1100 + 40 * k, 20, 90.0) for k in range(12)]  # body
    words += [("noise", 30, 10, 80, 5.0)]  # tall but unreadable: left out
    title = ocr_title(tsv(words), image_height=2200)
    assert title.split(" \n") == ["Form W-9", "Request", "Part"]
    assert "noise" not in title and "word11" not in title


# --------------------------------------------------------------------------------------------- extraction


def test_extraction_gives_text_pages_a_title():
    document = extract(heading_pdf("Form 1099-NEC Nonemployee Compensation"))
    (page,) = document.pages
    assert page.source == "text"
    assert "Form 1099-NEC Nonemployee Compensation" in page.title
    assert "Body line 25" not in page.title
    assert page.title.split(" \n")[1:4] == ["Part 1", "Part 2", "Part 3"]


def test_cache_keeps_the_title(tmp_path):
    document = extract(heading_pdf())
    cache = ExtractionCache(tmp_path)
    cache.put(document, "k")
    raw = RawDocument(name=document.name, data=b"", mime=document.mime, sha256=document.sha256)
    loaded = cache.get(raw, "k")
    assert loaded is not None
    assert loaded.pages[0].title == document.pages[0].title != ""


def test_entries_written_before_titles_still_load(tmp_path):
    """An extracted dataset of extractor version 1 (no title) loads with an empty title."""
    sha = "ab" * 32
    path = tmp_path / sha[:2] / f"{sha}-old.npz"
    path.parent.mkdir(parents=True)
    meta = {
        "pages": [{"index": 0, "text": "Invoice 12", "source": "text", "rotation": 0, "ocr_confidence": None}]
    }
    with path.open("wb") as handle:
        np.savez_compressed(
            handle,
            images=np.full((1, 128, 96), 255, dtype=np.uint8),
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        )
    assert zipfile.is_zipfile(path)
    loaded = ExtractionCache(tmp_path).get(
        RawDocument(name="old.pdf", data=b"", mime="application/pdf", sha256=sha), "old"
    )
    assert loaded is not None
    (page,) = loaded.pages
    assert page == Page(index=0, text="Invoice 12", source="text", image=page.image)
    assert page.title == ""


def test_extractor_version_changes_the_cache_key():
    assert EXTRACTOR_VERSION >= 2  # titles: caches of version 1 are extracted again
    assert extract_config().cache_key() != extract_config(thumb_width=95).cache_key()


# --------------------------------------------------------------------------------------------- OCR


def heading_image() -> Image.Image:
    with pymupdf.open(stream=heading_pdf("CERTIFICATE OF ORIGIN", fontsize=30), filetype="pdf") as pdf:
        pix = pdf[0].get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
    return Image.frombytes("L", (pix.width, pix.height), pix.samples)


@pytest.mark.integration
def test_ocr_title_from_tesseract_tsv():
    result = ocr_read(heading_image(), "eng")
    assert result.title.split(" \n")[0] == "CERTIFICATE OF ORIGIN"
    assert "Body line 25" not in result.title


@pytest.mark.integration
def test_scanned_page_gets_its_title_from_the_same_reading(monkeypatch):
    """The OCR page's title comes from the image_to_data call that reads the text: one Tesseract pass."""
    import pytesseract

    calls: list[str] = []
    real = pytesseract.image_to_data

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("image_to_data")
        return real(*args, **kwargs)

    monkeypatch.setattr(pytesseract, "image_to_data", counting)
    monkeypatch.setattr(pytesseract, "image_to_string", lambda *a, **k: pytest.fail("a second reading ran"))
    from tests.pipelines.conftest import scanned_pdf

    document = extract(scanned_pdf([heading_image()]))
    (page,) = document.pages
    assert page.source == "ocr" and "CERTIFICATE OF ORIGIN" in page.title
    assert calls == ["image_to_data"]


def test_bundles_of_the_split_benchmark_keep_page_titles():
    from pipelines.bench.split import concatenate

    image = np.full((128, 96), 255, dtype=np.uint8)
    first = Document("a" * 64, "a.pdf", "application/pdf", (Page(0, "x", "text", image, title="Form W-9"),))
    second = Document("b" * 64, "b.pdf", "application/pdf", (Page(0, "y", "text", image, title="Invoice"),))
    bundle = concatenate([first, second])
    assert [(page.index, page.title) for page in bundle.pages] == [(0, "Form W-9"), (1, "Invoice")]

import numpy as np
import pymupdf
import pytest
from PIL import Image

from pipelines import extract as extract_module
from pipelines.document import Document
from pipelines.extract import ExtractConfig, ExtractionCache, extract_documents, usable_text
from pipelines.ingest import (
    CorruptDocumentError,
    EncryptedDocumentError,
    ImageBombError,
    Limits,
    RawDocument,
    Rejected,
    TooManyPagesError,
    check_bytes,
    sha256_of,
)
from pipelines.params import ParamsError
from tests.params import PARAMS, extract_config, ingest_limits
from tests.pipelines.conftest import image_bytes, page_image, scanned_pdf, text_pdf

CONFIG = extract_config(workers=2)


def raw(data: bytes, name: str = "doc") -> RawDocument:
    return RawDocument(
        name=name, data=data, mime=check_bytes(data, name, ingest_limits()), sha256=sha256_of(data)
    )


def extract_one(
    data: bytes, config: ExtractConfig = CONFIG, limits: Limits = ingest_limits()
) -> Document | Rejected:
    (result,) = extract_documents([raw(data)], config, limits)
    return result


def test_usable_text():
    assert usable_text("Invoice number 12345 total due", 20)
    assert not usable_text("   \n  12 ", 20)
    assert not usable_text(
        "\x00\x01\x02\x03 abcdefghijklmnopqrstuvwxyz \x05\x06\x07\x08\x0b\x0c\x0e\x0f" * 3, 20
    )


def test_text_layer_pages_skip_ocr(monkeypatch):
    monkeypatch.setattr(extract_module, "ocr_image", lambda *a, **k: pytest.fail("OCR must not run"))
    document = extract_one(text_pdf(pages=3))
    assert isinstance(document, Document)
    assert [page.source for page in document.pages] == ["text"] * 3
    assert "Northwind Traders" in document.pages[0].text and "Page 3" in document.pages[2].text
    image = document.pages[0].image
    assert image.shape == (CONFIG.thumb_height, CONFIG.thumb_width) and image.dtype == np.uint8
    assert image.min() < 128 < image.max()  # ink on paper


@pytest.mark.integration
def test_scanned_pdf_is_ocrd(ocr_page):
    document = extract_one(scanned_pdf([ocr_page]))
    (page,) = document.pages
    assert page.source == "ocr" and page.rotation == 0
    assert "INVOICE" in page.text and "Northwind" in page.text
    assert page.ocr_confidence > 80


@pytest.mark.integration
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_scan_reads_upright(rotation):
    document = extract_one(image_bytes(page_image(rotate=rotation), "PNG"))
    (page,) = document.pages
    assert page.rotation == (360 - rotation) % 360
    assert "Northwind" in page.text
    assert page.image.shape == (CONFIG.thumb_height, CONFIG.thumb_width)


@pytest.mark.integration
def test_image_formats_and_multipage_tiff():
    image = page_image(dpi=150)
    for fmt in ("PNG", "JPEG", "WEBP"):
        document = extract_one(image_bytes(image, fmt))
        assert "INVOICE" in document.pages[0].text, fmt
    second = page_image("PAYSLIP Earnings statement for pay period March 2024 gross pay net pay", dpi=150)
    tiff = image_bytes(image, "TIFF", save_all=True, append_images=[second])
    document = extract_one(tiff)
    assert document.n_pages == 2 and "Earnings" in document.pages[1].text


def test_blank_image_page_is_not_ocrd(monkeypatch):
    monkeypatch.setattr(extract_module, "ocr_image", lambda *a, **k: pytest.fail("OCR must not run"))
    document = extract_one(image_bytes(Image.new("L", (600, 800), 255), "PNG"))
    assert document.pages[0].source == "none" and document.pages[0].text == ""


def test_encrypted_pdf_rejected():
    pdf = pymupdf.open(stream=text_pdf(), filetype="pdf")
    locked = pdf.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    result = extract_one(locked)
    assert isinstance(result, Rejected) and isinstance(result.error, EncryptedDocumentError)
    assert "password-protected PDF" in result.reason


@pytest.mark.parametrize("cut", [20, 200])
def test_truncated_pdf_rejected_or_repaired(cut):
    result = extract_one(text_pdf()[:cut])
    # MuPDF repairs what it can; what it cannot read must come back as a typed rejection.
    if isinstance(result, Rejected):
        assert isinstance(result.error, CorruptDocumentError) and "PDF" in result.reason
    else:
        assert isinstance(result, Document)


def test_garbage_after_pdf_header_rejected():
    result = extract_one(b"%PDF-1.7\n" + b"\x13\x37" * 200)
    assert isinstance(result, Rejected) and isinstance(result.error, CorruptDocumentError)


def test_too_many_pages():
    result = extract_one(text_pdf(pages=4), limits=ingest_limits(max_pages=3))
    assert isinstance(result.error, TooManyPagesError) and "4 pages: the limit is 3" in result.reason


def test_image_bomb_rejected():
    result = extract_one(
        image_bytes(Image.new("L", (4000, 4000), 255), "PNG"), limits=ingest_limits(max_image_pixels=10**6)
    )
    assert isinstance(result.error, ImageBombError) and "16,000,000 pixels" in result.reason


def test_corrupt_image_rejected():
    data = image_bytes(page_image(dpi=30), "PNG")
    result = extract_one(data[: len(data) // 2])
    assert isinstance(result, Rejected) and isinstance(result.error, CorruptDocumentError)


def test_one_bad_document_never_sinks_the_batch():
    good, other = text_pdf("first good document text here"), text_pdf("second good document text here")
    batch = [raw(good, "good"), raw(b"%PDF-1.7\n" + b"\x00" * 50, "bad"), raw(other, "other")]
    results = extract_documents(batch, CONFIG, ingest_limits())
    assert [type(r).__name__ for r in results] == ["Document", "Rejected", "Document"]
    assert [r.name for r in results] == ["good", "bad", "other"]


def test_cache_hit_skips_work(tmp_path, monkeypatch):
    cache = ExtractionCache(tmp_path)
    data = text_pdf(pages=2)
    (first,) = extract_documents([raw(data, "a.pdf")], CONFIG, ingest_limits(), cache=cache)
    monkeypatch.setattr(extract_module, "_plan", lambda *a, **k: pytest.fail("must come from the cache"))
    (second,) = extract_documents([raw(data, "renamed.pdf")], CONFIG, ingest_limits(), cache=cache)
    assert second.name == "renamed.pdf" and second.sha256 == first.sha256
    assert [p.text for p in second.pages] == [p.text for p in first.pages]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first.pages, second.pages, strict=True))
    # Other settings -> other key -> no hit.
    assert extract_config(ocr_dpi=300).cache_key() != CONFIG.cache_key()
    assert extract_config(workers=7).cache_key() == CONFIG.cache_key()


def test_config_from_params_takes_every_key_and_refuses_others():
    extract = {**PARAMS["extract"], "ocr_dpi": 150, "thumb_width": 64}
    config = ExtractConfig.from_params(extract)
    assert config.ocr_dpi == 150 and config.thumb_width == 64
    # A typo used to be dropped silently (the setting kept its default): now it names itself.
    with pytest.raises(
        ParamsError, match=r"extract.ocr_dpy: unknown key; expected one of min_text_chars, ocr_dpi"
    ):
        ExtractConfig.from_params({**extract, "ocr_dpy": 300})
    with pytest.raises(ParamsError, match=r"extract.ocr_dpi: expected an integer, found '150'"):
        ExtractConfig.from_params({**extract, "ocr_dpi": "150"})


def test_a_page_with_a_huge_text_layer_is_refused_before_its_text_is_built():
    """Found by the hostile-file suite: a 1 MB PDF drawing 5.8 million characters on one page took 1.3 GB."""
    from pipelines.ingest import TextLayerTooLargeError
    from tests.hostile import huge_text_layer, peak_rss_mb, reset_peak_rss, rss_mb

    data = huge_text_layer()
    config = extract_config(workers=1, max_text_chars=2000)  # the limit is 25 x 2,000 = 50,000 characters
    reset_peak_rss()
    before = rss_mb()
    bad, good = extract_documents(
        [raw(data, "huge.pdf"), raw(text_pdf(), "good.pdf")], config, ingest_limits()
    )
    assert peak_rss_mb() - before < 200  # building its text took ~900 MB more
    assert isinstance(bad, Rejected) and isinstance(bad.error, TextLayerTooLargeError)
    assert bad.reason == (
        "huge.pdf: page 1 has a text layer of more than 50,000 characters: expected at most 50,000 per page "
        "(25 x extract.max_text_chars)"
    )
    assert isinstance(good, Document) and "INVOICE" in good.text
    # 25 x max_text_chars is far above any real page: a dense page of 8-point text still reads.
    dense = text_pdf("Description Quantity Unit price Amount " * 300, fontsize=4)
    assert isinstance(extract_one(dense), Document)

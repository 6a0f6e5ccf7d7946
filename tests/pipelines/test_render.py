"""One rendering path (pipelines.render) for extraction and Label Studio import: page images at a dpi, the same
typed error for the same damaged document, and images turned into PDF pages for `docclass split`."""

from __future__ import annotations

import io

import pymupdf
import pytest
from PIL import Image

from pipelines.extract import extract_documents
from pipelines.ingest import (
    CorruptDocumentError,
    ImageBombError,
    IngestError,
    RawDocument,
    Rejected,
    check_bytes,
    sha256_of,
)
from pipelines.render import image_to_pdf, iter_pages, render_pages
from tests.failure_cases import bomb_png, cycle_pdf, decode_failures
from tests.params import extract_config, ingest_limits
from tests.pipelines.conftest import image_bytes, page_image, text_pdf


def raw(data: bytes, name: str) -> RawDocument:
    return RawDocument(name, data, check_bytes(data, name, ingest_limits()), sha256_of(data))


def test_pages_at_a_dpi_capped_to_a_page() -> None:
    (page,) = render_pages(raw(text_pdf(), "a.pdf"), dpi=72, limits=ingest_limits())
    assert page.size == (612, 792) and page.mode == "RGB"
    (gray,) = render_pages(raw(text_pdf(), "a.pdf"), dpi=36, limits=ingest_limits(), gray=True)
    assert gray.size == (306, 396) and gray.mode == "L"
    poster = pymupdf.open()
    poster.new_page(width=72 * 100, height=72 * 50).insert_text((72, 72), "a poster-sized page")
    (big,) = render_pages(raw(poster.tobytes(), "poster.pdf"), dpi=100, limits=ingest_limits())
    assert max(big.size) == pytest.approx(11.7 * 100, abs=2)  # an A4 long side at 100 dpi, not 10,000 pixels
    (small,) = render_pages(
        raw(poster.tobytes(), "poster.pdf"), dpi=100, limits=ingest_limits(max_image_pixels=10_000)
    )
    assert small.width * small.height <= 10_000 * 1.05


@pytest.mark.parametrize(
    ("data", "name", "error", "message"),
    [
        (cycle_pdf(), "cycle.pdf", CorruptDocumentError, "cycle in page tree: expected an undamaged PDF"),
        (bomb_png(), "bomb.png", ImageBombError, "too large to decode safely"),
    ],
    ids=["mupdf-fz-error", "pillow-decompression-bomb"],
)
def test_decoder_errors_become_the_documents_typed_error(
    data: bytes, name: str, error: type[IngestError], message: str
) -> None:
    document = raw(data, name)
    with pytest.raises(error, match=message):
        render_pages(document, dpi=50, limits=ingest_limits())
    # Extraction goes through the same opening and rendering: same kind.
    (result,) = extract_documents([document], extract_config(), ingest_limits())
    assert isinstance(result, Rejected) and isinstance(result.error, error)


def test_every_decode_failure_is_typed_in_both_paths() -> None:
    for kind, (name, data) in decode_failures().items():
        try:
            mime = check_bytes(data, name, ingest_limits())
        except IngestError:
            continue  # refused before any decoder (empty, unsupported type)
        if mime == "application/zip":
            continue
        document = RawDocument(name, data, mime, sha256_of(data))
        with pytest.raises(IngestError) as rendered:
            list(iter_pages(document, 50, ingest_limits()))
        (extracted,) = extract_documents([document], extract_config(), ingest_limits())
        assert isinstance(extracted, Rejected)
        assert type(rendered.value).__name__ == extracted.kind == kind


def test_image_to_pdf_one_page_per_frame_upright() -> None:
    scan = page_image(dpi=100)
    pdf = image_to_pdf(raw(image_bytes(scan, "PNG", dpi=(100, 100)), "scan.png"), ingest_limits())
    with pymupdf.open(stream=pdf, filetype="pdf") as document:
        assert document.page_count == 1
        assert document[0].rect.width == pytest.approx(
            scan.width * 72 / 100, abs=0.5
        )  # PNG keeps dots per metre
    second = page_image("PAYSLIP net pay", dpi=100)
    tiff = image_bytes(scan, "TIFF", save_all=True, append_images=[second])
    with pymupdf.open(stream=image_to_pdf(raw(tiff, "two.tif"), ingest_limits()), filetype="pdf") as document:
        assert document.page_count == 2
    # A phone photo stored sideways with an EXIF orientation: the PDF page is upright (portrait).
    sideways = scan.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", exif=exif.tobytes())
    with pymupdf.open(
        stream=image_to_pdf(raw(buffer.getvalue(), "photo.jpg"), ingest_limits()), filetype="pdf"
    ) as doc:
        assert doc[0].rect.height > doc[0].rect.width
    with pytest.raises(ValueError, match="is a PDF already"):
        image_to_pdf(raw(text_pdf(), "a.pdf"), ingest_limits())
    with pytest.raises(ImageBombError):
        image_to_pdf(raw(bomb_png(), "bomb.png"), ingest_limits())

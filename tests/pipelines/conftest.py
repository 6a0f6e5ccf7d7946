"""Tiny documents generated inline for ingestion and extraction tests."""

from __future__ import annotations

import io
import zipfile

import pymupdf
import pytest
from PIL import Image

TEXT = (
    "INVOICE No. 2024-117\nAcme Supplies Ltd, 12 Market Street, Springfield\n"
    "Bill to: Northwind Traders\nDescription Quantity Unit price Amount\n"
    "Paper A4 box 4 12.50 50.00\nToner cartridge 2 60.00 120.00\nTotal due 170.00 USD\n"
)


def text_pdf(text: str = TEXT, pages: int = 1, fontsize: float = 12) -> bytes:
    """A born-digital PDF with a text layer."""
    pdf = pymupdf.open()
    for number in range(pages):
        page = pdf.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(50, 50, 560, 740), f"{text}\nPage {number + 1}", fontsize=fontsize)
    return pdf.tobytes()


def page_image(text: str = TEXT, dpi: int = 200, rotate: int = 0) -> Image.Image:
    """A rendered page as a grayscale image, optionally rotated clockwise."""
    pdf = pymupdf.open(stream=text_pdf(text, fontsize=14), filetype="pdf")
    pix = pdf[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    return image.rotate(-rotate, expand=True, fillcolor=255) if rotate else image


def image_bytes(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def scanned_pdf(images: list[Image.Image]) -> bytes:
    """An image-only PDF (no text layer)."""
    pdf = pymupdf.open()
    for image in images:
        page = pdf.new_page(width=612, height=792 if image.height >= image.width else 612)
        page.insert_image(page.rect, stream=image_bytes(image, "PNG"))
    return pdf.tobytes()


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def ocr_page() -> Image.Image:
    return page_image()

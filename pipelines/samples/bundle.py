"""Several documents as one PDF: :func:`make_bundle` concatenates PDFs and scanned images, in order."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pymupdf
from PIL import Image, ImageSequence, UnidentifiedImageError

from pipelines.samples.canvas import pdf_bytes
from pipelines.samples.scan import SCAN_DPI


def make_bundle(parts: Sequence[bytes]) -> bytes:
    """Concatenate PDFs and PNG/JPEG/TIFF images (as image pages) into one PDF, in order.

    Raises:
        ValueError: when parts is empty or a part is neither a PDF nor a PNG, JPEG or TIFF image.
    """
    if not parts:
        raise ValueError("make_bundle needs at least one part: got none")
    bundle = pymupdf.open()
    for number, part in enumerate(parts):
        if part[:5] == b"%PDF-":
            with pymupdf.open(stream=part, filetype="pdf") as source:
                bundle.insert_pdf(source)
            continue
        try:
            image = Image.open(io.BytesIO(part))
        except UnidentifiedImageError:
            image = None
        if image is None or image.format not in ("PNG", "JPEG", "TIFF"):
            found = image.format if image is not None else repr(part[:8])
            raise ValueError(f"part {number} is not a PDF, PNG, JPEG or TIFF file: found {found}")
        for frame in ImageSequence.Iterator(image):
            dpi = float(frame.info.get("dpi", (SCAN_DPI, SCAN_DPI))[0]) or SCAN_DPI
            if image.format == "JPEG":
                data = part
            else:
                buffer = io.BytesIO()
                mode = "L" if frame.mode in ("L", "1", "I;16") else "RGB"
                frame.convert(mode).save(buffer, format="PNG", compress_level=3)
                data = buffer.getvalue()
            page = bundle.new_page(width=frame.width * 72 / dpi, height=frame.height * 72 / dpi)
            page.insert_image(page.rect, stream=data)
    return pdf_bytes(bundle)

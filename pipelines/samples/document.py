"""One sample document: :func:`make_document` draws a document of a class and writes it born-digital or scanned.

The classes and the module that draws each: ``w9`` (:mod:`~pipelines.samples.w9`), ``1040``
(:mod:`~pipelines.samples.form1040`), ``invoice`` (:mod:`~pipelines.samples.invoice`), ``payslip``
(:mod:`~pipelines.samples.payslip`) and ``other`` (:mod:`~pipelines.samples.other`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pymupdf

from pipelines.samples import form1040, invoice, other, payslip, w9
from pipelines.samples.canvas import Builder, pdf_bytes
from pipelines.samples.scan import SCAN_DPI, encode, image_pdf, scan_page

CLASSES: tuple[str, ...] = ("w9", "1040", "invoice", "payslip", "other")
KINDS: tuple[str, ...] = ("born-digital", "scanned")
FORMATS: tuple[str, ...] = ("pdf", "png", "jpeg", "tiff")
ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)


@dataclass(frozen=True)
class SampleSpec:
    """What was generated: class label, variant, file format, page count and clockwise page rotation."""

    label: str
    kind: str
    fmt: str
    n_pages: int
    rotation: int


BUILDERS: dict[str, Builder] = {
    "w9": w9.build,
    "1040": form1040.build,
    "invoice": invoice.build,
    "payslip": payslip.build,
    "other": other.build,
}


def _check_args(label: str, kind: str, fmt: str, rotation: int) -> None:
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}: expected one of {', '.join(CLASSES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown fmt {fmt!r}: expected one of {', '.join(FORMATS)}")
    if kind == "born-digital" and fmt != "pdf":
        raise ValueError(f"born-digital documents are PDFs: got fmt {fmt!r}")
    if rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of 0, 90, 180, 270 (degrees clockwise): got {rotation!r}")


def make_document(
    label: str, rng: np.random.Generator, *, kind: str = "born-digital", fmt: str = "pdf", rotation: int = 0
) -> tuple[bytes, SampleSpec]:
    """Generate one sample document.

    Args:
        label: one of ``CLASSES``.
        rng: source of all randomness; the same generator state gives the same bytes.
        kind: ``"born-digital"`` (PDF with a text layer) or ``"scanned"`` (raster pages, no text layer).
        fmt: ``"pdf"``; scans may also be ``"png"``, ``"jpeg"`` (first page only) or ``"tiff"`` (all pages).
        rotation: clockwise page rotation in degrees; scans are rasterised rotated, born-digital pages get
            a ``/Rotate`` entry.

    Returns:
        The file's bytes and a ``SampleSpec`` describing it.

    Raises:
        ValueError: for an unknown label, kind, fmt or rotation, or a born-digital non-PDF.
    """
    _check_args(label, kind, fmt, rotation)
    pdf = pymupdf.open()
    BUILDERS[label](pdf, rng)
    if kind == "born-digital":
        if rotation:
            for number in range(pdf.page_count):
                pdf[number].set_rotation(rotation)
        return pdf_bytes(pdf), SampleSpec(label, kind, fmt, pdf.page_count, rotation)
    pages = [pdf[0]] if fmt in ("png", "jpeg") else [pdf[i] for i in range(pdf.page_count)]
    images = [scan_page(page, rng, rotation) for page in pages]
    quality = int(rng.integers(70, 93))
    if fmt == "pdf":
        data = image_pdf([(encode(im, "jpeg", quality), im.width, im.height, SCAN_DPI) for im in images])
    elif fmt == "tiff":
        buffer = io.BytesIO()
        images[0].save(
            buffer,
            format="TIFF",
            save_all=True,
            append_images=images[1:],
            compression="tiff_lzw",
            dpi=(SCAN_DPI, SCAN_DPI),
        )
        data = buffer.getvalue()
    else:
        data = encode(images[0], fmt, quality)
    return data, SampleSpec(label, kind, fmt, len(images), rotation)

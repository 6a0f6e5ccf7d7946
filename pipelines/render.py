"""Page images of a document: one way to open, check and render PDFs and images, with one exception list.

Extraction (:mod:`pipelines.extract`, page images for OCR and thumbnails) and Label Studio import
(:mod:`labeling.importer`, page images for annotators) both open documents and render pages here, so a document
one of them rejects the other rejects the same way, with the same message. Every failure of a decoder (MuPDF's own
``FzErrorBase`` family, Pillow's ``DecompressionBombError`` and the many errors its decoders raise on malformed
files) becomes a typed :class:`~pipelines.ingest.IngestError` of the document (see :func:`decoding`).
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from pipelines.ingest import (
    JPEG,
    PDF,
    CorruptDocumentError,
    EncryptedDocumentError,
    ImageBombError,
    Limits,
    RawDocument,
    TooManyPagesError,
)

if TYPE_CHECKING:
    import pymupdf

# A4's long side (also covers US Letter): pages are rendered at most this long at the requested dpi, so a huge
# page (a photo placed on a poster-sized PDF page) is rendered page-sized, not poster-sized.
LONG_SIDE_INCHES = 11.7

# Resolution assumed for an image that does not record one (typical of scanners) when it becomes a PDF page.
DEFAULT_IMAGE_DPI = 200.0

_EXIF_ORIENTATION = 0x0112

# What Pillow's decoders raise on malformed files (fuzzing found each of them).
IMAGE_DECODE_ERRORS: tuple[type[Exception], ...] = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    SyntaxError,
    EOFError,
    struct.error,
    ZeroDivisionError,
)


def pdf_errors() -> tuple[type[Exception], ...]:
    """What MuPDF raises on damaged PDFs: its own errors (``FzErrorFormat``: "cycle in page tree"...) do not
    derive from RuntimeError."""
    import pymupdf

    return (pymupdf.FileDataError, RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)


@contextmanager
def decoding(name: str, problem: str, expected: str) -> Iterator[None]:
    """Turn a decoder failure inside the block into the document's typed error.

    Args:
        name: the document's name, first word of the message.
        problem: what went wrong, e.g. "is not a readable PDF"; the decoder's own message follows.
        expected: what a readable input is, e.g. "an undamaged PDF", closing the message.

    Raises:
        ImageBombError: Pillow refused to decode an image that large.
        CorruptDocumentError: any other MuPDF or Pillow decoding error.
    """
    try:
        yield
    except Image.DecompressionBombError as error:
        raise ImageBombError(
            f"{name} is too large to decode safely ({error}): expected an image of at most "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels"
        ) from error
    except (*pdf_errors(), *IMAGE_DECODE_ERRORS) as error:
        raise CorruptDocumentError(f"{name} {problem}: {error}: expected {expected}") from error


UNDAMAGED_PDF = "an undamaged PDF"


def _undamaged(raw: RawDocument) -> str:
    return UNDAMAGED_PDF if raw.mime == PDF else f"an undamaged {raw.mime} image"


@contextmanager
def open_pdf(raw: RawDocument, limits: Limits) -> Iterator[pymupdf.Document]:
    """Open a PDF document and check it (password, no pages, too many pages); closed on exit.

    Errors raised by the caller's block are not translated: wrap page work in :func:`decoding`.

    Raises:
        CorruptDocumentError, EncryptedDocumentError, TooManyPagesError.
    """
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    with decoding(raw.name, "is not a readable PDF (truncated or damaged)", UNDAMAGED_PDF):
        pdf = pymupdf.open(stream=raw.data, filetype="pdf")
    with pdf:
        with decoding(raw.name, "is a damaged PDF", UNDAMAGED_PDF):
            needs_pass, page_count = pdf.needs_pass, pdf.page_count
        if needs_pass:
            raise EncryptedDocumentError(
                f"{raw.name} is a password-protected PDF: expected an unencrypted PDF "
                "(remove the password and upload again)"
            )
        if page_count == 0:
            raise CorruptDocumentError(
                f"{raw.name} is a PDF with no readable pages: expected at least one page"
            )
        if page_count > limits.max_pages:
            raise TooManyPagesError(
                f"{raw.name} has {page_count} pages: the limit is {limits.max_pages} pages per document"
            )
        yield pdf


def render_zoom(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """Zoom (pixels per point) rendering a page at ``dpi``, capped to an A4 long side and to ``max_pixels``."""
    zoom = dpi / 72.0
    zoom = min(zoom, LONG_SIDE_INCHES * dpi / max(width_pt, height_pt, 1.0))
    return min(zoom, (max_pixels / max(width_pt * height_pt, 1.0)) ** 0.5)


def render_page(page: Any, dpi: float, max_pixels: int, *, gray: bool) -> Image.Image:
    """Render one PDF page as a PIL image at ``dpi`` (see :func:`render_zoom` for the caps).

    Args:
        page: a ``pymupdf.Page``, or its ``pymupdf.DisplayList`` when the page was parsed once already.
        dpi: resolution.
        max_pixels: the most pixels the image may have (``ingest.max_image_pixels``).
        gray: 8-bit grayscale ("L") for OCR, else RGB for people.

    Raises:
        Whatever MuPDF raises: call it inside :func:`decoding`.
    """
    import pymupdf

    rect = page.rect
    zoom = render_zoom(rect.width, rect.height, dpi, max_pixels)
    pix = page.get_pixmap(
        matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY if gray else pymupdf.csRGB, alpha=False
    )
    return Image.frombytes("L" if gray else "RGB", (pix.width, pix.height), pix.samples)


def text_layer_chars(display: Any, limit: int) -> int:
    """Characters a page's text layer draws, counted without building its text (MuPDF's structured text takes
    ~70 bytes a character); the count stops a little past ``limit``.

    Args:
        display: the page's ``pymupdf.DisplayList``.
        limit: stop counting once past it.

    Raises:
        Whatever MuPDF raises: call it inside :func:`decoding`.
    """
    from pymupdf import mupdf

    cookie = mupdf.FzCookie()
    device = _text_counter()(limit, cookie)
    infinite = mupdf.FzRect(mupdf.FzRect.Fixed_INFINITE)
    mupdf.fz_run_display_list(display.this, device, mupdf.FzMatrix(), infinite, cookie)
    mupdf.fz_close_device(device)
    return int(device.chars)


@functools.cache
def _text_counter() -> type:
    """A MuPDF device counting the characters of every text drawn to it; past its limit it aborts the run."""
    from pymupdf import mupdf

    class TextCounter(mupdf.FzDevice2):
        def __init__(self, limit: int, cookie: Any) -> None:
            super().__init__()
            for use in ("fill_text", "stroke_text", "clip_text", "clip_stroke_text", "ignore_text"):
                getattr(self, f"use_virtual_{use}")()
            self.chars = 0
            self.limit = limit
            self.cookie = cookie

        def _count(self, text: Any) -> None:
            span = text.head
            while span:
                self.chars += span.len
                span = span.next
            if self.chars > self.limit:
                self.cookie.set_abort()

        def fill_text(self, ctx: Any, text: Any, *args: Any) -> None:
            self._count(text)

        def stroke_text(self, ctx: Any, text: Any, *args: Any) -> None:
            self._count(text)

        def clip_text(self, ctx: Any, text: Any, *args: Any) -> None:
            self._count(text)

        def clip_stroke_text(self, ctx: Any, text: Any, *args: Any) -> None:
            self._count(text)

        def ignore_text(self, ctx: Any, text: Any, *args: Any) -> None:
            self._count(text)

    return TextCounter


def _check_frame(raw: RawDocument, index: int, frame: Image.Image, limits: Limits) -> None:
    width, height = frame.size
    if width * height > limits.max_image_pixels:
        raise ImageBombError(
            f"{raw.name}: page {index + 1} is {width}x{height} = {width * height:,} pixels: "
            f"the limit is {limits.max_image_pixels:,} pixels per page"
        )


@contextmanager
def open_image(raw: RawDocument, limits: Limits) -> Iterator[Image.Image]:
    """Open an image document (not decoded yet) and check its frame count; closed on exit.

    Raises:
        ImageBombError, CorruptDocumentError, TooManyPagesError.
    """
    with decoding(raw.name, f"is not a readable {raw.mime} image", _undamaged(raw)):
        opened = Image.open(io.BytesIO(raw.data))
    with opened:
        with decoding(raw.name, f"is a damaged {raw.mime} image", _undamaged(raw)):
            n_frames = getattr(opened, "n_frames", 1)
        if n_frames > limits.max_pages:
            raise TooManyPagesError(
                f"{raw.name} has {n_frames} pages: the limit is {limits.max_pages} pages per document"
            )
        yield opened


def image_pages(raw: RawDocument, dpi: float, limits: Limits, *, gray: bool) -> Iterator[Image.Image]:
    """Every frame of an image document as a page: upright (EXIF orientation), at most an A4 long side at ``dpi``.

    Raises:
        ImageBombError: a frame has more than ``limits.max_image_pixels`` pixels, or Pillow refused it.
        CorruptDocumentError, TooManyPagesError.
    """
    longest = int(LONG_SIDE_INCHES * dpi)
    with (
        open_image(raw, limits) as opened,
        decoding(raw.name, f"is a damaged {raw.mime} image", _undamaged(raw)),
    ):
        for index, frame in enumerate(ImageSequence.Iterator(opened)):
            _check_frame(raw, index, frame, limits)
            image = ImageOps.exif_transpose(frame) if index == 0 else frame
            if gray:
                image = image.convert("L")
            elif image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            else:
                image = image.copy()  # the frame iterator reuses its image
            if max(image.size) > longest:
                image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
            yield image


def iter_pages(raw: RawDocument, dpi: float, limits: Limits, *, gray: bool = False) -> Iterator[Image.Image]:
    """Page images of a document, one at a time: PDF pages rendered at ``dpi``, image frames scaled to that size.

    Raises:
        IngestError: encrypted, corrupt, too many pages, or a page with too many pixels.
    """
    if raw.mime != PDF:
        yield from image_pages(raw, dpi, limits, gray=gray)
        return
    with open_pdf(raw, limits) as pdf:
        for index in range(pdf.page_count):
            with decoding(raw.name, f"page {index + 1} cannot be rendered", UNDAMAGED_PDF):
                image = render_page(pdf[index], dpi, limits.max_image_pixels, gray=gray)
            yield image


def render_pages(raw: RawDocument, dpi: float, limits: Limits, *, gray: bool = False) -> list[Image.Image]:
    """Every page image of a document (see :func:`iter_pages`)."""
    return list(iter_pages(raw, dpi, limits, gray=gray))


def image_to_pdf(raw: RawDocument, limits: Limits) -> bytes:
    """An image document as a PDF with one page per frame, upright, sized by the image's own resolution.

    A JPEG that needs no turning is embedded as it is (no re-encoding); other frames are embedded as PNG.

    Raises:
        ValueError: ``raw`` is a PDF already.
        ImageBombError, CorruptDocumentError, TooManyPagesError.
    """
    import pymupdf

    if raw.mime == PDF:
        raise ValueError(f"{raw.name} is a PDF already: expected an image")
    out = pymupdf.open()
    with (
        open_image(raw, limits) as opened,
        decoding(raw.name, f"is a damaged {raw.mime} image", _undamaged(raw)),
    ):
        for index, frame in enumerate(ImageSequence.Iterator(opened)):
            _check_frame(raw, index, frame, limits)
            turned = index == 0 and frame.getexif().get(_EXIF_ORIENTATION, 1) not in (0, 1)
            upright = ImageOps.exif_transpose(frame) if turned else frame
            dpi = _image_dpi(frame)
            if raw.mime == JPEG and not turned and getattr(opened, "n_frames", 1) == 1:
                stream = raw.data
            else:
                buffer = io.BytesIO()
                upright.convert("L" if upright.mode in ("1", "L", "I;16") else "RGB").save(
                    buffer, format="PNG"
                )
                stream = buffer.getvalue()
            page = out.new_page(width=upright.width * 72 / dpi, height=upright.height * 72 / dpi)
            page.insert_image(page.rect, stream=stream)
    with out:
        return out.tobytes(garbage=3, deflate=True)


def _image_dpi(frame: Image.Image) -> float:
    """The frame's recorded horizontal resolution when plausible (72-2400 dpi), else :data:`DEFAULT_IMAGE_DPI`."""
    recorded = frame.info.get("dpi")
    try:
        dpi = float(recorded[0]) if recorded else 0.0
    except (TypeError, ValueError, IndexError):
        dpi = 0.0
    return dpi if 72.0 <= dpi <= 2400.0 else DEFAULT_IMAGE_DPI

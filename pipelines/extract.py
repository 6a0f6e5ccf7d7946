"""Pages of a raw document -> text (PDF text layer, else Tesseract OCR) and a small page image.

OCR pages of all documents in a batch are spread over one Tesseract process per core, and every result is
cached on disk by content hash, so nothing is OCR'd twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import struct
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from pipelines.document import Document, Page
from pipelines.ingest import (
    PDF,
    CorruptDocumentError,
    EncryptedDocumentError,
    ImageBombError,
    IngestError,
    Limits,
    RawDocument,
    Rejected,
    TooManyPagesError,
)
from pipelines.ocr import ocr_image

logger = logging.getLogger(__name__)

# Bump when extraction output changes for the same input and settings: invalidates the cache.
EXTRACTOR_VERSION = 1

_LETTER_LONG_SIDE_INCHES = 11.7  # A4; also covers US Letter
_BLANK_INK_SHARE = 0.002  # pages with less dark ink than this are blank: no OCR


@dataclass(frozen=True)
class ExtractConfig:
    """Extraction settings, from the ``extract:`` section of params.yaml."""

    min_text_chars: int = 20
    ocr_dpi: int = 200
    ocr_lang: str = "eng"
    ocr_min_confidence: float = 60.0
    max_text_chars: int = 20000
    thumb_width: int = 96
    thumb_height: int = 128
    workers: int = 0

    @classmethod
    def from_params(cls, extract: dict[str, Any]) -> ExtractConfig:
        fields = cls.__dataclass_fields__
        return cls(**{key: type(getattr(cls, key))(value) for key, value in extract.items() if key in fields})

    def cache_key(self) -> str:
        """Hash of every setting that changes the output (not the worker count)."""
        settings = asdict(self)
        settings.pop("workers")
        settings["version"] = EXTRACTOR_VERSION
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def n_workers(self) -> int:
        if self.workers > 0:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)


# Control characters (bar whitespace), replacement character, private use area: a broken font encoding.
_JUNK = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd\ue000-\uf8ff]")
_SPACE = re.compile(r"\s")
_ALNUM = re.compile(r"[0-9A-Za-z\u00C0-\u024F]")


class OcrFailedError(IngestError):
    """Tesseract could not read a page image (its message is kept)."""


def usable_text(text: str, min_chars: int) -> bool:
    """Whether a text layer is worth using instead of OCR.

    Text drawn as outlines has no characters; broken font encodings give control, replacement or
    private-use characters. Both fall back to OCR.
    """
    if sum(1 for _ in islice(_ALNUM.finditer(text), min_chars)) < min_chars:
        return False
    visible = len(text) - len(_SPACE.findall(text))
    return len(_JUNK.findall(text)) / max(1, visible) < 0.1


class ExtractionCache:
    """Extracted documents on disk, keyed by sha256 and the extraction settings."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str, key: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}-{key}.npz"

    def get(self, raw: RawDocument, key: str) -> Document | None:
        path = self._path(raw.sha256, key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(stored["meta"].tobytes().decode())
                images = stored["images"]
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
            logger.warning("ignoring unreadable cache entry %s: %s", path, error)
            return None
        pages = tuple(
            Page(
                index=page["index"],
                text=page["text"],
                source=page["source"],
                image=images[i],
                rotation=page["rotation"],
                ocr_confidence=page["ocr_confidence"],
            )
            for i, page in enumerate(meta["pages"])
        )
        return Document(sha256=raw.sha256, name=raw.name, mime=raw.mime, pages=pages)

    def put(self, document: Document, key: str) -> None:
        path = self._path(document.sha256, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "pages": [
                {
                    "index": page.index,
                    "text": page.text,
                    "source": page.source,
                    "rotation": page.rotation,
                    "ocr_confidence": page.ocr_confidence,
                }
                for page in document.pages
            ]
        }
        images = np.stack([page.image for page in document.pages])
        # Write then rename, so a crash never leaves a half-written entry behind.
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            np.savez_compressed(
                handle, images=images, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
            )
        os.replace(handle.name, path)


def thumbnail(image: Image.Image, config: ExtractConfig) -> np.ndarray:
    """Grayscale page image resized to the configured thumbnail size."""
    small = image.convert("L").resize((config.thumb_width, config.thumb_height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).copy()


def _is_blank(image: Image.Image) -> bool:
    pixels = np.asarray(image.convert("L").reduce(4))
    return float((pixels < 128).mean()) < _BLANK_INK_SHARE


def _ocr_page(index: int, image: Image.Image, config: ExtractConfig, prefix: str = "") -> Page:
    if _is_blank(image):
        return Page(
            index=index, text=prefix, source="text" if prefix else "none", image=thumbnail(image, config)
        )
    import pytesseract

    try:
        result = ocr_image(image, lang=config.ocr_lang, min_confidence=config.ocr_min_confidence)
    except pytesseract.TesseractError as error:
        raise OcrFailedError(f"page {index + 1}: Tesseract failed: {error}") from error
    upright = image.rotate(-result.rotation, expand=True) if result.rotation else image
    text = "\n".join(part for part in (prefix, result.text) if part)[: config.max_text_chars]
    return Page(
        index=index,
        text=text,
        source="ocr" if result.words else ("text" if prefix else "none"),
        image=thumbnail(upright, config),
        rotation=result.rotation,
        ocr_confidence=round(result.confidence, 2),
    )


def _ocr_zoom(width_pt: float, height_pt: float, config: ExtractConfig, max_pixels: int) -> float:
    """Render zoom for OCR: the configured dpi, capped so huge pages (photos) stay page-sized."""
    zoom = config.ocr_dpi / 72.0
    long_side_px = _LETTER_LONG_SIDE_INCHES * config.ocr_dpi
    zoom = min(zoom, long_side_px / max(width_pt, height_pt, 1.0))
    zoom = min(zoom, (max_pixels / max(width_pt * height_pt, 1.0)) ** 0.5)
    return zoom


def _pdf_pages(
    raw: RawDocument, config: ExtractConfig, limits: Limits, submit: Callable[..., Future[Page]]
) -> list[Page | Future[Page]]:
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    try:
        pdf = pymupdf.open(stream=raw.data, filetype="pdf")
    except (pymupdf.FileDataError, RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase) as error:
        raise CorruptDocumentError(
            f"{raw.name} is not a readable PDF (truncated or damaged): {error}"
        ) from error
    with pdf:
        try:
            if pdf.needs_pass:
                raise EncryptedDocumentError(
                    f"{raw.name} is a password-protected PDF: expected an unencrypted PDF "
                    "(remove the password and upload again)"
                )
            if pdf.page_count == 0:
                raise CorruptDocumentError(
                    f"{raw.name} is a PDF with no readable pages: expected at least one page"
                )
            if pdf.page_count > limits.max_pages:
                raise TooManyPagesError(
                    f"{raw.name} has {pdf.page_count} pages: the limit is {limits.max_pages} pages per document"
                )
            pages: list[Page | Future[Page]] = []
            for index in range(pdf.page_count):
                try:
                    pages.append(_pdf_page(pdf[index], index, config, limits, submit))
                # MuPDF's own errors (FzErrorFormat: "malformed page tree"...) do not derive from RuntimeError.
                except (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase) as error:
                    raise CorruptDocumentError(f"{raw.name}: page {index + 1} cannot be read: {error}") from error
        except (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase) as error:
            raise CorruptDocumentError(f"{raw.name} is a damaged PDF: {error}") from error
        return pages


def _pdf_page(
    page: Any, index: int, config: ExtractConfig, limits: Limits, submit: Callable[..., Future[Page]]
) -> Page | Future[Page]:
    import pymupdf

    # One display list serves both the text and the thumbnail: the page's content stream is parsed once.
    display = page.get_displaylist()
    text = pymupdf.TextPage(display.get_textpage(flags=pymupdf.TEXTFLAGS_TEXT)).extractText()
    rect = page.rect
    if usable_text(text, config.min_text_chars) and not _mostly_scanned(page, text):
        matrix = pymupdf.Matrix(config.thumb_width / rect.width, config.thumb_height / rect.height)
        pix = display.get_pixmap(matrix=matrix, colorspace=pymupdf.csGRAY, alpha=False)
        image = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width)
        if image.shape != (config.thumb_height, config.thumb_width):
            image = thumbnail(Image.fromarray(image), config)
        return Page(index=index, text=text[: config.max_text_chars], source="text", image=image.copy())
    zoom = _ocr_zoom(rect.width, rect.height, config, limits.max_image_pixels)
    pix = display.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    prefix = text.strip() if usable_text(text, config.min_text_chars) else ""
    return submit(_ocr_page, index, image, config, prefix)


def _mostly_scanned(page: Any, text: str) -> bool:
    """A page whose only text is a stamp or a scanner's caption over a full-page scan still needs OCR."""
    import pymupdf

    if len(text.strip()) > 150:  # a real text layer, even over a full-page image (labels, letterheads)
        return False
    area = abs(page.rect)
    covered = sum(abs(pymupdf.Rect(info["bbox"]) & page.rect) for info in page.get_image_info())
    return area > 0 and covered / area > 0.5


# What Pillow's decoders raise on malformed files (fuzzing found each of them).
_IMAGE_DECODE_ERRORS = (
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


def _image_pages(
    raw: RawDocument, config: ExtractConfig, limits: Limits, submit: Callable[..., Future[Page]]
) -> list[Page | Future[Page]]:
    try:
        opened = Image.open(io.BytesIO(raw.data))
    except Image.DecompressionBombError as error:
        raise ImageBombError(
            f"{raw.name}: image too large to decode safely: the limit is {limits.max_image_pixels:,} pixels"
        ) from error
    except _IMAGE_DECODE_ERRORS as error:
        raise CorruptDocumentError(f"{raw.name} is not a readable {raw.mime} image: {error}") from error
    pages: list[Page | Future[Page]] = []
    long_side = int(_LETTER_LONG_SIDE_INCHES * config.ocr_dpi)
    with opened:
        try:
            n_frames = getattr(opened, "n_frames", 1)
            if n_frames > limits.max_pages:
                raise TooManyPagesError(
                    f"{raw.name} has {n_frames} pages: the limit is {limits.max_pages} pages per document"
                )
            for index, frame in enumerate(ImageSequence.Iterator(opened)):
                width, height = frame.size
                if width * height > limits.max_image_pixels:
                    raise ImageBombError(
                        f"{raw.name}: page {index + 1} is {width}x{height} = {width * height:,} pixels: "
                        f"the limit is {limits.max_image_pixels:,} pixels per page"
                    )
                image = ImageOps.exif_transpose(frame) if index == 0 else frame
                image = image.convert("L")
                if max(image.size) > long_side:
                    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
                pages.append(submit(_ocr_page, index, image, config))
        except Image.DecompressionBombError as error:
            raise ImageBombError(f"{raw.name}: image too large to decode safely: {error}") from error
        except _IMAGE_DECODE_ERRORS as error:
            raise CorruptDocumentError(f"{raw.name} is a damaged {raw.mime} image: {error}") from error
    return pages


def _plan(
    raw: RawDocument, config: ExtractConfig, limits: Limits, submit: Callable[..., Future[Page]]
) -> list[Page | Future[Page]]:
    if raw.mime == PDF:
        return _pdf_pages(raw, config, limits, submit)
    return _image_pages(raw, config, limits, submit)


def _collect(raw: RawDocument, plan: list[Page | Future[Page]]) -> Document:
    pages = tuple(item.result() if isinstance(item, Future) else item for item in plan)
    return Document(sha256=raw.sha256, name=raw.name, mime=raw.mime, pages=pages)


def extract_documents(
    raws: Sequence[RawDocument],
    config: ExtractConfig,
    limits: Limits,
    cache: ExtractionCache | None = None,
    on_done: Callable[[RawDocument, Document | Rejected], None] | None = None,
) -> list[Document | Rejected]:
    """Extract every document, in input order; a bad document is returned as :class:`Rejected`.

    OCR pages from all documents share one pool of ``config.n_workers()`` Tesseract processes; at most a
    few pages per worker wait rendered in memory at any time.

    Args:
        raws: documents from :mod:`pipelines.ingest`.
        config: extraction settings.
        limits: page and pixel limits.
        cache: optional on-disk cache; hits skip all work, new results are stored.
        on_done: called once per document as it completes (for progress bars).

    Returns:
        One :class:`Document` or :class:`Rejected` per input, same order.
    """
    key = config.cache_key()
    results: list[Document | Rejected | None] = [None] * len(raws)
    workers = config.n_workers()
    max_pending_pages = 4 * workers
    pending: deque[tuple[int, RawDocument, list[Page | Future[Page]]]] = deque()

    def finish(position: int, raw: RawDocument, plan: list[Page | Future[Page]]) -> None:
        try:
            document: Document | Rejected = _collect(raw, plan)
        except IngestError as error:
            document = Rejected(raw.name, error)
        else:
            if cache is not None:
                cache.put(document, key)
        results[position] = document
        if on_done is not None:
            on_done(raw, document)

    def n_pending() -> int:
        return sum(
            1 for _, _, plan in pending for item in plan if isinstance(item, Future) and not item.done()
        )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
        for position, raw in enumerate(raws):
            cached = cache.get(raw, key) if cache is not None else None
            if cached is not None:
                results[position] = cached
                if on_done is not None:
                    on_done(raw, cached)
                continue
            try:
                plan = _plan(raw, config, limits, pool.submit)
            except IngestError as error:
                results[position] = Rejected(raw.name, error)
                if on_done is not None:
                    on_done(raw, results[position])
                continue
            pending.append((position, raw, plan))
            while pending and (n_pending() > max_pending_pages or _all_done(pending[0][2])):
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
    return [result for result in results if result is not None]


def _all_done(plan: Iterable[Page | Future[Page]]) -> bool:
    return all(not isinstance(item, Future) or item.done() for item in plan)

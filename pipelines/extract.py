"""Pages of a raw document -> text (PDF text layer, else Tesseract OCR) and a small page image.

OCR pages go to the process-wide OCR pool (:func:`pipelines.ocr.ocr_pool`, one Tesseract per core, shared by every
extraction of the process); one call uses at most ``extract.workers`` of it. Every result is cached on disk by
content hash, so nothing is OCR'd twice. A caller can give up (a request that timed out): pages of its documents
that have not started are then dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.document import Document, Page
from pipelines.ingest import (
    PDF,
    IngestError,
    Limits,
    RawDocument,
    Rejected,
    StorageError,
    TextLayerTooLargeError,
)
from pipelines.ocr import (
    OcrError,
    OcrFailedError,
    OcrPool,
    core_count,
    ocr_image,
    ocr_pool,
)
from pipelines.ocr_lang import OcrLanguages, Pairs
from pipelines.params import ExtractParams, validate_section
from pipelines.render import UNDAMAGED_PDF, decoding, image_pages, open_pdf, render_page, text_layer_chars
from pipelines.title import pdf_title

__all__ = [
    "EXTRACTOR_VERSION",
    "ExtractConfig",
    "ExtractionCache",
    "ExtractionCancelledError",
    "OcrFailedError",
    "extract_documents",
    "thumbnail",
    "usable_text",
]

logger = logging.getLogger(__name__)

# Bump when extraction output changes for the same input and settings: invalidates the cache.
EXTRACTOR_VERSION = 4  # 4: page titles (2 and 3 were working versions of it)

# A page's text is cut to extract.max_text_chars; a text layer this many times longer is refused before MuPDF builds
# its structured text (~70 bytes a character: a 1 MB PDF drawing 6 million characters on one page took 1.3 GB).
TEXT_LAYER_FACTOR = 25
_BLANK_INK_SHARE = 0.002  # pages with less dark ink than this are blank: no OCR
_POLL_S = 0.1  # how often a waiting extraction looks whether its caller gave up


@dataclass(frozen=True)
class ExtractConfig:
    """Extraction settings: the ``extract:`` section of params.yaml (no defaults here: build with
    :meth:`from_params`, which validates the section; a test overrides fields with ``dataclasses.replace``)."""

    min_text_chars: int
    ocr_dpi: int
    ocr_lang: str
    ocr_scripts: Pairs  # params give a mapping: turned into sorted pairs by __post_init__
    ocr_latin_languages: Pairs
    ocr_min_confidence: float
    max_text_chars: int
    thumb_width: int
    thumb_height: int
    workers: int  # 0 = one per core
    ocr_timeout_s: float

    def __post_init__(self) -> None:
        languages = self.ocr_languages()  # raises on a malformed language setting
        object.__setattr__(self, "ocr_scripts", languages.scripts)
        object.__setattr__(self, "ocr_latin_languages", languages.latin)

    @classmethod
    def from_params(cls, extract: Mapping[str, Any]) -> ExtractConfig:
        """Build from the ``extract:`` params section.

        Raises:
            ParamsError: a key of the section is unknown, missing or mistyped.
            ValueError: a malformed language setting (``ocr_lang``, ``ocr_scripts``...).
        """
        section = validate_section(ExtractParams, extract, "extract")
        return cls(**section.model_dump())

    def ocr_languages(self) -> OcrLanguages:
        """How the Tesseract languages of each OCR page are chosen."""
        return OcrLanguages(self.ocr_lang, self.ocr_scripts, self.ocr_latin_languages)

    def cache_key(self) -> str:
        """Hash of every setting that changes the output (not the worker count or the time limit)."""
        settings = asdict(self)
        settings.pop("workers")
        settings.pop("ocr_timeout_s")
        settings["version"] = EXTRACTOR_VERSION
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def n_workers(self) -> int:
        """OCR workers one extraction asks for: ``workers``, or one per core when 0."""
        return self.workers if self.workers > 0 else core_count()


# Control characters (bar whitespace), replacement character, private use area: a broken font encoding.
_JUNK = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd\ue000-\uf8ff]")
_SPACE = re.compile(r"\s")
_ALNUM = re.compile(r"[0-9A-Za-z\u00C0-\u024F]")


class ExtractionCancelledError(Exception):
    """The caller gave up on an extraction (its ``cancel`` event was set); its pages not yet started were dropped."""


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
        # The last write failed (see :meth:`try_put`). Threads race on it harmlessly: at worst a warning twice.
        self._failing = False

    def _path(self, sha256: str, key: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}-{key}.npz"

    def get(self, raw: RawDocument, key: str) -> Document | None:
        """The cached extraction of ``raw``, or None.

        An entry that cannot be read back whole counts as missing (logged): truncated, a damaged zip or deflate
        stream (each member's CRC-32 is checked), or metadata that does not match its page images. The caller
        extracts the document again and :meth:`put` replaces the entry.
        """
        path = self._path(raw.sha256, key)
        try:
            if not path.exists():
                return None
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(stored["meta"].tobytes().decode())
                images = stored["images"]
            pages = _pages_of(meta, images)
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as error:
            logger.warning("ignoring unreadable cache entry %s: %s: %s", path, type(error).__name__, error)
            return None
        return Document(sha256=raw.sha256, name=raw.name, mime=raw.mime, pages=pages)

    def put(self, document: Document, key: str) -> None:
        """Store an extraction.

        Raises:
            StorageError: the entry cannot be written (permissions, full disk, a folder in the way).
        """
        path = self._path(document.sha256, key)
        meta = {
            "pages": [
                {
                    "index": page.index,
                    "text": page.text,
                    "source": page.source,
                    "rotation": page.rotation,
                    "ocr_confidence": page.ocr_confidence,
                    "title": page.title,
                }
                for page in document.pages
            ]
        }
        images = np.stack([page.image for page in document.pages])
        temporary: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a half-written entry behind.
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
                temporary = handle.name
                np.savez_compressed(
                    handle, images=images, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
                )
            os.replace(temporary, path)
        except OSError as error:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise StorageError(
                f"{document.name}: its extraction cannot be stored in the cache at {path}: "
                f"{error.strerror or error}: expected a writable cache folder"
            ) from error

    def try_put(self, document: Document, key: str) -> bool:
        """Store an extraction if the cache can take it; returns whether it did.

        The cache only saves work: when the entry cannot be written (full disk, no permission, a file in the
        way) the extraction goes on without it, and the failure is logged as a warning once, until a write
        succeeds again. Nothing half-written is ever left (see :meth:`put`).
        """
        try:
            self.put(document, key)
        except StorageError as error:
            first, self._failing = not self._failing, True
            if first:
                logger.warning(
                    "%s; going on without the cache (extraction cache writes that fail are not logged again "
                    "until one succeeds)",
                    error,
                )
            return False
        recovered, self._failing = self._failing, False
        if recovered:
            logger.info("the extraction cache at %s takes entries again", self.root)
        return True


def _pages_of(meta: Any, images: np.ndarray) -> tuple[Page, ...]:
    """The pages of a cache entry, checked to match: one 2-D uint8 image per listed page.

    Raises:
        ValueError, KeyError, TypeError: the entry is not one :meth:`ExtractionCache.put` wrote.
    """
    listed = meta["pages"]
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(listed):
        raise ValueError(
            f"expected one 2-D uint8 image per page for {len(listed)} page(s), found {images.dtype} images of "
            f"shape {images.shape}"
        )
    return tuple(
        Page(
            index=int(page["index"]),
            text=str(page["text"]),
            source=page["source"],
            image=images[i],
            rotation=int(page["rotation"]),
            ocr_confidence=page["ocr_confidence"],
            title=str(page.get("title", "")),  # entries of version 1 (extracted datasets) have none
        )
        for i, page in enumerate(listed)
    )


def thumbnail(image: Image.Image, config: ExtractConfig) -> np.ndarray:
    """Grayscale page image resized to the configured thumbnail size."""
    small = image.convert("L").resize((config.thumb_width, config.thumb_height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).copy()


def _is_blank(image: Image.Image) -> bool:
    pixels = np.asarray(image.convert("L").reduce(4))
    return float((pixels < 128).mean()) < _BLANK_INK_SHARE


def _ocr_page(index: int, image: Image.Image, config: ExtractConfig, prefix: str = "") -> Page:
    """OCR one page image (runs in the OCR pool).

    Raises:
        OcrError: Tesseract failed, is missing, or took longer than ``config.ocr_timeout_s``.
    """
    if _is_blank(image):
        return Page(
            index=index, text=prefix, source="text" if prefix else "none", image=thumbnail(image, config)
        )
    import pytesseract

    try:
        result = ocr_image(
            image,
            lang=config.ocr_languages(),
            min_confidence=config.ocr_min_confidence,
            timeout_s=config.ocr_timeout_s,
        )
    except pytesseract.TesseractError as error:
        raise OcrFailedError(
            f"page {index + 1}: Tesseract failed: {error}: expected a page image Tesseract can read"
        ) from error
    except OcrError as error:
        raise type(error)(f"page {index + 1}: {error}") from error
    upright = image.rotate(-result.rotation, expand=True) if result.rotation else image
    text = "\n".join(part for part in (prefix, result.text) if part)[: config.max_text_chars]
    return Page(
        index=index,
        text=text,
        source="ocr" if result.words else ("text" if prefix else "none"),
        image=thumbnail(upright, config),
        rotation=result.rotation,
        ocr_confidence=round(result.confidence, 2),
        title=result.title,
    )


class _PageJobs:
    """The OCR pages of one extraction in the shared pool: at most ``limit`` of them queued or running at once
    (the caller blocks for a free slot, never a pool worker), all dropped when the caller gives up.

    Args:
        pool: the process-wide OCR pool.
        limit: pages of this extraction in the pool at once.
        cancel: set by the caller to give up; checked while waiting and between pages.
    """

    def __init__(self, pool: OcrPool, limit: int, cancel: threading.Event | None) -> None:
        self._pool = pool
        self._slots = threading.BoundedSemaphore(limit)
        self._cancel = cancel
        self._futures: list[Future[Page]] = []

    def check(self) -> None:
        """Raises ExtractionCancelledError (after dropping the pages not started) when the caller gave up."""
        if self._cancel is not None and self._cancel.is_set():
            self.drop()
            raise ExtractionCancelledError(
                "extraction cancelled by its caller: pages not started were dropped"
            )

    def submit(self, function: Callable[..., Page], *args: Any) -> Future[Page]:
        """Queue one page in the pool once this extraction has a free slot."""
        while not self._slots.acquire(timeout=_POLL_S):
            self.check()
        try:
            self.check()
            future = self._pool.submit(function, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(future)
        return future

    def result(self, future: Future[Page]) -> Page:
        """The page, waiting for it (and watching for the caller giving up)."""
        while not future.done():
            self.check()
            wait_futures([future], timeout=_POLL_S)
        return future.result()

    def drop(self) -> None:
        """Cancel every page of this extraction that has not started (running ones finish, within their limit)."""
        for future in self._futures:
            future.cancel()


Plan = list[Page | Future[Page]]


def _pdf_pages(raw: RawDocument, config: ExtractConfig, limits: Limits, jobs: _PageJobs, plan: Plan) -> None:
    with open_pdf(raw, limits) as pdf:
        for index in range(pdf.page_count):
            jobs.check()
            with decoding(f"{raw.name}: page {index + 1}", "cannot be read", UNDAMAGED_PDF):
                page = _pdf_page(pdf[index], index, config, limits, raw.name)
            if isinstance(page, Page):
                plan.append(page)
            else:
                image, prefix = page
                plan.append(jobs.submit(_ocr_page, index, image, config, prefix))


def _pdf_page(
    page: Any, index: int, config: ExtractConfig, limits: Limits, name: str
) -> Page | tuple[Image.Image, str]:
    """A text-layer page, or what an OCR job of the page needs: its image and the text-layer prefix to keep.

    Raises:
        TextLayerTooLargeError: the text layer has more than ``TEXT_LAYER_FACTOR * config.max_text_chars`` characters.
    """
    import pymupdf

    # One display list serves the text, the title and the page image: the page's content stream is parsed once.
    display = page.get_displaylist()
    most = TEXT_LAYER_FACTOR * config.max_text_chars
    if text_layer_chars(display, most) > most:
        raise TextLayerTooLargeError(
            f"{name}: page {index + 1} has a text layer of more than {most:,} characters: expected at most {most:,} "
            f"per page ({TEXT_LAYER_FACTOR} x extract.max_text_chars)"
        )
    text_page = pymupdf.TextPage(display.get_textpage(flags=pymupdf.TEXTFLAGS_TEXT))
    text = text_page.extractText()
    rect = page.rect
    if usable_text(text, config.min_text_chars) and not _mostly_scanned(page, text):
        matrix = pymupdf.Matrix(config.thumb_width / rect.width, config.thumb_height / rect.height)
        pix = display.get_pixmap(matrix=matrix, colorspace=pymupdf.csGRAY, alpha=False)
        image = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width)
        if image.shape != (config.thumb_height, config.thumb_width):
            image = thumbnail(Image.fromarray(image), config)
        return Page(
            index=index,
            text=text[: config.max_text_chars],
            source="text",
            image=image.copy(),
            title=pdf_title(text_page.extractDICT(), rect.height),
        )
    rendered = render_page(display, config.ocr_dpi, limits.max_image_pixels, gray=True)
    prefix = text.strip() if usable_text(text, config.min_text_chars) else ""
    return rendered, prefix


def _mostly_scanned(page: Any, text: str) -> bool:
    """A page whose only text is a stamp or a scanner's caption over a full-page scan still needs OCR."""
    import pymupdf

    if len(text.strip()) > 150:  # a real text layer, even over a full-page image (labels, letterheads)
        return False
    area = abs(page.rect)
    covered = sum(abs(pymupdf.Rect(info["bbox"]) & page.rect) for info in page.get_image_info())
    return area > 0 and covered / area > 0.5


def _plan(raw: RawDocument, config: ExtractConfig, limits: Limits, jobs: _PageJobs, plan: Plan) -> None:
    """Read every page of ``raw`` into ``plan``: text-layer pages done, OCR pages queued in the pool.

    Raises:
        IngestError: the document cannot be read (``plan`` then holds the pages queued so far).
    """
    if raw.mime == PDF:
        _pdf_pages(raw, config, limits, jobs, plan)
        return
    for index, image in enumerate(image_pages(raw, config.ocr_dpi, limits, gray=True)):
        jobs.check()
        plan.append(jobs.submit(_ocr_page, index, image, config))


def extract_documents(
    raws: Sequence[RawDocument],
    config: ExtractConfig,
    limits: Limits,
    cache: ExtractionCache | None = None,
    on_done: Callable[[RawDocument, Document | Rejected], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Document | Rejected]:
    """Extract every document, in input order; a document that fails is returned as :class:`Rejected`.

    The policy: whatever goes wrong with one document (a damaged or encrypted file, a decompression bomb, too
    many pages, Tesseract missing, failing or out of time on a page) is a typed
    :class:`~pipelines.ingest.IngestError`, and that document becomes a :class:`Rejected`; the others go on. A
    cache that cannot be written (full disk, no permission) costs only the saving: the document is returned
    uncached and a warning logged (see :meth:`ExtractionCache.try_put`); a damaged entry is extracted again.

    OCR pages go to the process-wide pool (:func:`pipelines.ocr.ocr_pool`); this call has at most
    ``config.n_workers()`` of them there at once (never more than the pool's size), so at most that many rendered
    pages wait in memory.

    Args:
        raws: documents from :mod:`pipelines.ingest`.
        config: extraction settings.
        limits: page and pixel limits.
        cache: optional on-disk cache; hits skip all work, new results are stored when it can take them.
        on_done: called once per document as it completes (for progress bars).
        cancel: set it (from any thread) to give up: pages not started are dropped and the call raises.

    Returns:
        One :class:`Document` or :class:`Rejected` per input, same order.

    Raises:
        ExtractionCancelledError: ``cancel`` was set before the extraction finished.
    """
    key = config.cache_key()
    pool = ocr_pool()
    jobs = _PageJobs(pool, min(config.n_workers(), pool.size), cancel)
    results: list[Document | Rejected | None] = [None] * len(raws)
    pending: deque[tuple[int, RawDocument, Plan]] = deque()

    def done(position: int, raw: RawDocument, result: Document | Rejected) -> None:
        results[position] = result
        if on_done is not None:
            on_done(raw, result)

    def finish(position: int, raw: RawDocument, plan: Plan) -> None:
        try:
            pages = tuple(jobs.result(item) if isinstance(item, Future) else item for item in plan)
            document = Document(sha256=raw.sha256, name=raw.name, mime=raw.mime, pages=pages)
        except IngestError as error:
            _drop(plan)
            done(position, raw, Rejected(raw.name, error))
            return
        if cache is not None:
            cache.try_put(document, key)  # a cache that cannot take it costs the saving, never the document
        done(position, raw, document)

    try:
        for position, raw in enumerate(raws):
            jobs.check()
            cached = cache.get(raw, key) if cache is not None else None
            if cached is not None:
                done(position, raw, cached)
                continue
            plan: Plan = []
            try:
                _plan(raw, config, limits, jobs, plan)
            except IngestError as error:
                _drop(plan)
                done(position, raw, Rejected(raw.name, error))
                continue
            pending.append((position, raw, plan))
            while pending and _all_done(pending[0][2]):
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
    finally:
        jobs.drop()  # nothing is left on success; after an error or a cancellation, queued pages never start
    return [result for result in results if result is not None]


def _drop(plan: Plan) -> None:
    """Cancel the queued pages of a document that failed: their work would be thrown away."""
    for item in plan:
        if isinstance(item, Future):
            item.cancel()


def _all_done(plan: Iterable[Page | Future[Page]]) -> bool:
    return all(not isinstance(item, Future) or item.done() for item in plan)

"""Tesseract OCR of page images, with orientation detection for sideways and upside-down scans.

Every Tesseract run of the process goes through one shared pool (:func:`ocr_pool`) of one worker per core, or of
``extract.workers`` workers once :func:`configure_ocr_pool` was called (the service does at start), so concurrent
extractions (requests of the service, several CLI batches in one process) never start more Tesseract processes than
that bound; each page has a time limit, after which its Tesseract process is killed.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from pipelines.ingest import IngestError
from pipelines.ocr_lang import LATIN, OcrLanguages, ScriptDetection
from pipelines.title import ocr_title

logger = logging.getLogger(__name__)

T = TypeVar("T")


class OcrError(IngestError):
    """A page image Tesseract could not read: the document is rejected, the batch goes on."""


class OcrFailedError(OcrError):
    """Tesseract ran and failed on a page image (its message is kept)."""


class OcrUnavailableError(OcrError):
    """Tesseract is not installed, cannot be started, or its language data is missing."""


class OcrTimeoutError(OcrError):
    """Reading one page took longer than ``extract.ocr_timeout_s``; its Tesseract process was killed."""


@dataclass(frozen=True)
class OcrResult:
    """Text of one page image, the clockwise rotation applied to read it, mean word confidence, the
    Tesseract languages of the reading kept, and its title (:func:`pipelines.title.ocr_title`)."""

    text: str
    rotation: int
    confidence: float
    words: int
    languages: str = ""
    title: str = ""


def core_count() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OcrPool:
    """A thread pool whose every worker runs at most one Tesseract process at a time.

    Args:
        size: workers, so the most Tesseract processes that run at once.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"an OCR pool needs at least 1 worker: got {size}")
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ocr")
        self._lock = threading.Lock()
        self._queued = 0

    @property
    def queued(self) -> int:
        """Jobs submitted and not started yet (a cancelled one no longer counts): the OCR backlog."""
        return self._queued

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Queue ``fn(*args)``; it starts when a worker is free (queued work can still be cancelled)."""
        waiting = [True]  # until the job starts or is cancelled, whichever comes first

        def leave_queue() -> None:
            with self._lock:
                if waiting[0]:
                    waiting[0] = False
                    self._queued -= 1

        def run() -> T:
            leave_queue()
            return fn(*args)

        with self._lock:
            self._queued += 1
        try:
            future = self._executor.submit(run)
        except BaseException:
            leave_queue()
            raise
        future.add_done_callback(lambda _: leave_queue())
        return future

    def shutdown(self) -> None:
        """Take no more jobs; the ones queued still run, then the workers end."""
        self._executor.shutdown(wait=False)


_pool: OcrPool | None = None
_pool_pid = 0
_pool_size: int | None = None  # set by configure_ocr_pool; None = one worker per core
_pool_lock = threading.Lock()


def ocr_pool() -> OcrPool:
    """The process-wide OCR pool, created on first use (thread-safe): one worker per core, or the size given to
    :func:`configure_ocr_pool`.

    A forked child gets its own pool: the parent's worker threads do not exist there.
    """
    global _pool, _pool_pid
    pool = _pool
    if pool is not None and _pool_pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = OcrPool(_pool_size or core_count())
            _pool_pid = os.getpid()
            logger.debug("OCR pool of %d workers", _pool.size)
        return _pool


def configure_ocr_pool(workers: int) -> OcrPool:
    """Bound the Tesseract processes of this process by ``workers`` (params ``extract.workers``; 0 = one per core).

    Each extraction already asks for at most ``extract.workers`` pages at once, but concurrent extractions (the
    service's requests) share the pool, so the pool's size is the bound of the whole process. Call it before the
    first extraction: a pool of another size is replaced (pages running in it finish, queued ones still run).

    Raises:
        ValueError: ``workers`` is negative.
    """
    global _pool, _pool_size
    if workers < 0:
        raise ValueError(f"extract.workers must be >= 0 (0 = one per core): got {workers}")
    size = workers or core_count()
    with _pool_lock:
        _pool_size = size
        if _pool is not None and _pool_pid == os.getpid() and _pool.size != size:
            logger.debug("OCR pool resized from %d to %d workers", _pool.size, size)
            _pool.shutdown()
            _pool = None
    return ocr_pool()


def check_tesseract(lang: str) -> None:
    """Fail early with an actionable message when Tesseract or a language is missing.

    Raises:
        OcrUnavailableError: binary or language data missing.
    """
    import pytesseract

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise OcrUnavailableError(
            "tesseract is not installed: expected the 'tesseract' binary on PATH "
            "(run `make install`, or `apt-get install tesseract-ocr tesseract-ocr-eng`)"
        )
    available = set(pytesseract.get_languages(config=""))
    missing = [code for code in lang.split("+") if code not in available]
    if missing:
        raise OcrUnavailableError(
            f"tesseract language data {missing} not installed: found {sorted(available)} "
            f"(apt-get install tesseract-ocr-{missing[0]})"
        )


class _Deadline:
    """The time left for one page: every Tesseract run of the page gets what remains of ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (> 0).

        Raises:
            OcrTimeoutError: none left.
        """
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> OcrTimeoutError:
        return OcrTimeoutError(
            f"Tesseract took longer than {self.seconds:g} s on one page (params extract.ocr_timeout_s): "
            "expected a page that reads within the limit; the page's Tesseract process was stopped"
        )


def _tesseract(deadline: _Deadline, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one pytesseract call within what is left of the page's time, translating its failures.

    Raises:
        OcrTimeoutError, OcrUnavailableError; pytesseract.TesseractError is left to the caller.
    """
    import pytesseract

    try:
        return call(*args, timeout=deadline.remaining(), **kwargs)
    except pytesseract.TesseractNotFoundError as error:
        raise OcrUnavailableError(
            f"tesseract is not installed or not on PATH ({pytesseract.pytesseract.tesseract_cmd!r}): "
            "expected the 'tesseract' binary (`apt-get install tesseract-ocr tesseract-ocr-eng`)"
        ) from error
    except OSError as error:  # found but not runnable (permissions, wrong format), or no temporary space
        raise OcrUnavailableError(f"tesseract cannot be run: {error}") from error
    except pytesseract.TesseractError:
        raise
    except RuntimeError as error:
        # pytesseract kills the process and raises a plain RuntimeError when its timeout expires.
        if "timeout" in str(error).lower():
            raise deadline.expired() from error
        raise


def _words_and_confidence(data: dict[str, list]) -> tuple[str, float, int]:
    """Rebuild reading-order text (lines and paragraphs kept) and mean confidence from image_to_data."""
    lines: list[str] = []
    current: list[str] = []
    last_key: tuple[int, int, int] | None = None
    confidences: list[float] = []
    for block, par, line, word, conf in zip(
        data["block_num"], data["par_num"], data["line_num"], data["text"], data["conf"], strict=True
    ):
        word = (word or "").strip()
        if not word:
            continue
        key = (block, par, line)
        if last_key is not None and key != last_key:
            lines.append(" ".join(current))
            if key[:2] != last_key[:2]:
                lines.append("")
            current = []
        current.append(word)
        last_key = key
        confidence = float(conf)
        if confidence >= 0:
            confidences.append(confidence)
    if current:
        lines.append(" ".join(current))
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return "\n".join(lines).strip(), mean, len(confidences)


def _ocr_once(
    image: Image.Image, lang: str, deadline: _Deadline, adaptive: bool = False
) -> tuple[str, float, int, str]:
    """One Tesseract reading: text, mean word confidence, word count and title (from the same call)."""
    import pytesseract

    # Inverted-text retries double the time on low-confidence lines and never help on business documents.
    config = "-c tessedit_do_invert=0"
    if adaptive:
        # Sauvola local thresholding reads photos with dark backgrounds and uneven light, where the
        # default global Otsu threshold finds no text at all.
        config += " -c thresholding_method=2"
    data = _tesseract(
        deadline,
        pytesseract.image_to_data,
        image,
        lang=lang,
        config=config,
        output_type=pytesseract.Output.DICT,
    )
    return (*_words_and_confidence(data), ocr_title(data, image.height))


def detect_script(image: Image.Image, deadline: _Deadline) -> ScriptDetection | None:
    """Tesseract OSD of a page (rotation and script, one call), or None if undecidable.

    Raises:
        OcrTimeoutError, OcrUnavailableError: see :func:`ocr_image`.
    """
    import pytesseract

    try:
        osd = _tesseract(deadline, pytesseract.image_to_osd, image, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError as error:  # "Too few characters" on sparse pages
        logger.debug("orientation and script detection failed: %s", error)
        return None
    return ScriptDetection.from_osd(osd)


def detect_rotation(image: Image.Image, deadline: _Deadline) -> int | None:
    """Clockwise degrees that make the page upright according to Tesseract OSD, or None if undecidable.

    Raises:
        OcrTimeoutError, OcrUnavailableError: see :func:`ocr_image`.
    """
    detection = detect_script(image, deadline)
    return None if detection is None else detection.rotation


class _PageOsd:
    """Tesseract OSD of one page, run at most once and only when asked: orientation and script share it."""

    def __init__(self, image: Image.Image, deadline: _Deadline) -> None:
        self._image = image
        self._deadline = deadline
        self.ran = False
        self._detection: ScriptDetection | None = None

    def get(self) -> ScriptDetection | None:
        if not self.ran:
            self._detection = detect_script(self._image, self._deadline)
            self.ran = True
        return self._detection

    def rotation(self) -> int | None:
        detection = self.get()
        return None if detection is None else detection.rotation


@functools.cache
def _installed_languages(command: str) -> frozenset[str]:
    import pytesseract

    return frozenset(pytesseract.get_languages(config=""))


def _require_languages(langs: str, why: str) -> None:
    """Tesseract silently drops a missing language from 'heb+eng': check before reading with one.

    Raises:
        OcrUnavailableError: a language's data is not installed.
    """
    import pytesseract

    command = pytesseract.pytesseract.tesseract_cmd
    missing = sorted(set(langs.split("+")) - _installed_languages(command))
    if missing:
        _installed_languages.cache_clear()  # installed since the process started?
        missing = sorted(set(langs.split("+")) - _installed_languages(command))
    if missing:
        raise OcrUnavailableError(
            f"{why}, but Tesseract language data {missing} is not installed "
            f"(found {sorted(_installed_languages(command))}): expected every language of params "
            f"extract.ocr_scripts and extract.ocr_latin_languages installed (run `make install`, or "
            f"`apt-get install {' '.join('tesseract-ocr-' + code for code in missing)}`)"
        )


def text_lines_vertical(image: Image.Image) -> bool:
    """Whether the page's text lines run vertically (a sideways page), from ink projection profiles.

    Horizontal text lines make the row profile alternate sharply between ink and gaps; on a sideways page
    the column profile does. Costs a few milliseconds, against about 1 s for Tesseract's OSD.
    """
    small = image.convert("L")
    small.thumbnail((600, 600))
    pixels = np.asarray(small, dtype=np.float32)
    ink = pixels < min(160.0, float(np.percentile(pixels, 50)) - 40.0)
    if ink.mean() < 0.002:
        return False

    def sharpness(profile: np.ndarray) -> float:
        profile = profile / max(1.0, profile.sum())
        return float(np.square(np.diff(profile)).sum())

    return sharpness(ink.sum(axis=0).astype(np.float64)) > 1.5 * sharpness(ink.sum(axis=1).astype(np.float64))


def rotate_clockwise(image: Image.Image, degrees: int) -> Image.Image:
    """Rotate a PIL image clockwise by a multiple of 90 degrees."""
    degrees %= 360
    if degrees == 0:
        return image
    transpose = {
        90: Image.Transpose.ROTATE_270,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }
    return image.transpose(transpose[degrees])


def ocr_image(
    image: Image.Image, lang: str | OcrLanguages, min_confidence: float, timeout_s: float
) -> OcrResult:
    """OCR one page image; when confidence is low, detect the orientation and retry upright.

    Reading upright pages costs one Tesseract pass. When it finds (almost) nothing, a second pass uses
    adaptive thresholding (photos). Orientation detection (about 1 s) runs only when reading stays poor,
    which is what a sideways or upside-down scan produces. With languages chosen per page (``auto``, see
    :mod:`pipelines.ocr_lang`), the same OSD call also gives the script, and runs on a page read well only when
    that reading is not plainly Latin; a page in another script, or in a Latin-script language other than
    the first, is read again with its languages and the better reading kept.

    Args:
        image: page image (any mode; converted to grayscale).
        lang: fixed Tesseract language code(s), e.g. "eng" or "eng+deu"; or :class:`OcrLanguages` (from
            ``ExtractConfig.ocr_languages()``) to choose them per page with ``auto``.
        min_confidence: mean word confidence (0-100) under which orientation detection runs.
        timeout_s: time for the whole page, all passes together; the running Tesseract process is killed then.

    Returns:
        The best reading, the rotation applied to get it, and its languages.

    Raises:
        OcrTimeoutError: the page took longer than ``timeout_s``.
        OcrUnavailableError: Tesseract is missing or cannot be run, or the languages of the page's script are
            not installed.
        pytesseract.TesseractError: Tesseract failed on the image.
    """
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    languages = lang if isinstance(lang, OcrLanguages) else OcrLanguages(lang, (), ())
    deadline = _Deadline(timeout_s)
    gray = image.convert("L")
    osd = _PageOsd(gray, deadline)
    best, adaptive = _read(gray, languages.first, min_confidence, deadline, osd)
    if languages.auto:
        best = _read_in_script(gray, best, adaptive, languages, min_confidence, deadline, osd)
    return best


def _read(
    gray: Image.Image, lang: str, min_confidence: float, deadline: _Deadline, osd: _PageOsd
) -> tuple[OcrResult, bool]:
    """The best reading of the page in ``lang``, upright; and whether it took adaptive thresholding."""
    text, confidence, words, title = _ocr_once(gray, lang, deadline)
    best = OcrResult(text=text, rotation=0, confidence=confidence, words=words, languages=lang, title=title)
    if confidence >= min_confidence and words >= 3:
        if text_lines_vertical(gray):
            # Tesseract reads sideways lines well, but the page image must be turned upright too.
            rotation = osd.rotation()
            if rotation in (90, 270):
                best = OcrResult(
                    text=text,
                    rotation=rotation,
                    confidence=confidence,
                    words=words,
                    languages=lang,
                    title=title,
                )
        return best, False
    adaptive = False
    if words < 10:
        text, confidence, words, title = _ocr_once(gray, lang, deadline, adaptive=True)
        if words > best.words:
            best = OcrResult(
                text=text, rotation=0, confidence=confidence, words=words, languages=lang, title=title
            )
            adaptive = True
        if best.confidence >= min_confidence and best.words >= 3:
            return best, adaptive
    rotation = osd.rotation()
    if not rotation:
        # Upright (a hard page: handwriting, photo) or too little text to tell: keep the first reading.
        return best, adaptive
    text, confidence, words, title = _ocr_once(rotate_clockwise(gray, rotation), lang, deadline)
    if confidence > best.confidence and words >= max(1, best.words // 3):
        best = OcrResult(
            text=text, rotation=rotation, confidence=confidence, words=words, languages=lang, title=title
        )
        adaptive = False
    return best, adaptive


def _read_in_script(
    gray: Image.Image,
    best: OcrResult,
    adaptive: bool,
    languages: OcrLanguages,
    min_confidence: float,
    deadline: _Deadline,
    osd: _PageOsd,
) -> OcrResult:
    """Read the page again with the languages of its script or Latin-script language, when they differ."""
    # A page of English read well costs nothing more: OSD (reused when the orientation check ran it) is asked
    # for the script only when the first reading leaves the script in doubt.
    doubt = languages.needs_script(best.text, best.confidence, min_confidence)
    detection = osd.get() if doubt else None
    chosen = languages.choose(detection, best.text)
    if chosen == best.languages:
        return best
    script = detection.script if detection is not None else LATIN
    _require_languages(chosen, f"a page in {script} script is read with {chosen!r}")
    # A page in another script takes OSD's rotation: its first reading in Latin letters could not judge it.
    rotation = detection.rotation if detection is not None and script != LATIN else best.rotation
    text, confidence, words, title = _ocr_once(
        rotate_clockwise(gray, rotation), chosen, deadline, adaptive=adaptive
    )
    logger.debug(
        "%s page: %r read at %.1f, %r at %.1f", script, chosen, confidence, best.languages, best.confidence
    )
    if confidence > best.confidence and words >= max(1, best.words // 3):
        return OcrResult(
            text=text, rotation=rotation, confidence=confidence, words=words, languages=chosen, title=title
        )
    return best

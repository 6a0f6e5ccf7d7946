"""Tesseract OCR of page images, with orientation detection for sideways and upside-down scans."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)


class OcrUnavailableError(RuntimeError):
    """Tesseract is not installed or its language data is missing."""


@dataclass(frozen=True)
class OcrResult:
    """Text of one page image, the clockwise rotation applied to read it, and mean word confidence."""

    text: str
    rotation: int
    confidence: float
    words: int


def check_tesseract(lang: str) -> None:
    """Fail early with an actionable message when Tesseract or a language is missing.

    Raises:
        OcrUnavailableError: binary or language data missing.
    """
    import pytesseract

    if shutil.which("tesseract") is None:
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


def _ocr_once(image: Image.Image, lang: str, adaptive: bool = False) -> tuple[str, float, int]:
    import pytesseract

    # Inverted-text retries double the time on low-confidence lines and never help on business documents.
    config = "-c tessedit_do_invert=0"
    if adaptive:
        # Sauvola local thresholding reads photos with dark backgrounds and uneven light, where the
        # default global Otsu threshold finds no text at all.
        config += " -c thresholding_method=2"
    data = pytesseract.image_to_data(image, lang=lang, config=config, output_type=pytesseract.Output.DICT)
    return _words_and_confidence(data)


def detect_rotation(image: Image.Image) -> int | None:
    """Clockwise degrees that make the page upright according to Tesseract OSD, or None if undecidable."""
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(image, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError as error:  # "Too few characters" on sparse pages
        logger.debug("orientation detection failed: %s", error)
        return None
    return int(osd.get("rotate", 0)) % 360


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


def ocr_image(image: Image.Image, lang: str = "eng", min_confidence: float = 60.0) -> OcrResult:
    """OCR one page image; when confidence is low, detect the orientation and retry upright.

    Reading upright pages costs one Tesseract pass. When it finds (almost) nothing, a second pass uses
    adaptive thresholding (photos). Orientation detection (about 1 s) runs only when reading stays poor,
    which is what a sideways or upside-down scan produces.

    Args:
        image: page image (any mode; converted to grayscale).
        lang: Tesseract language code(s), e.g. "eng" or "eng+deu".
        min_confidence: mean word confidence (0-100) under which orientation detection runs.

    Returns:
        The best reading and the rotation applied to get it.
    """
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    gray = image.convert("L")
    text, confidence, words = _ocr_once(gray, lang)
    best = OcrResult(text=text, rotation=0, confidence=confidence, words=words)
    if confidence >= min_confidence and words >= 3:
        if text_lines_vertical(gray):
            # Tesseract reads sideways lines well, but the page image must be turned upright too.
            rotation = detect_rotation(gray)
            if rotation in (90, 270):
                best = OcrResult(text=text, rotation=rotation, confidence=confidence, words=words)
        return best
    if words < 10:
        text, confidence, words = _ocr_once(gray, lang, adaptive=True)
        if words > best.words:
            best = OcrResult(text=text, rotation=0, confidence=confidence, words=words)
        if best.confidence >= min_confidence and best.words >= 3:
            return best
    rotation = detect_rotation(gray)
    if not rotation:
        # Upright (a hard page: handwriting, photo) or too little text to tell: keep the first reading.
        return best
    text, confidence, words = _ocr_once(rotate_clockwise(gray, rotation), lang)
    if confidence > best.confidence and words >= max(1, best.words // 3):
        best = OcrResult(text=text, rotation=rotation, confidence=confidence, words=words)
    return best

"""The extracted form of an uploaded document that every model consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TextSource = Literal["text", "ocr", "none"]


@dataclass(frozen=True)
class Page:
    """One page: its text (from the PDF text layer or OCR) and a small grayscale image.

    Attributes:
        index: 0-based page number inside the document.
        text: extracted text, upright reading order.
        source: "text" (PDF text layer), "ocr" (Tesseract) or "none" (nothing readable).
        image: uint8 grayscale thumbnail, shape (thumb_height, thumb_width), 0 = black ink, 255 = paper,
            already rotated upright when OCR detected a rotation.
        rotation: clockwise degrees (0, 90, 180, 270) that were applied to make the page upright.
        ocr_confidence: Tesseract's mean word confidence (0-100) for OCR pages, else None.
        title: the page's title view (:mod:`pipelines.title`): its largest-set lines and its top band, from PDF
            span sizes or Tesseract word heights; "" when the page has no text (or was extracted before titles).
    """

    index: int
    text: str
    source: TextSource
    image: np.ndarray
    rotation: int = 0
    ocr_confidence: float | None = None
    title: str = ""


@dataclass(frozen=True)
class Document:
    """A document keyed by the sha256 of its bytes."""

    sha256: str
    name: str
    mime: str
    pages: tuple[Page, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """All page texts joined with form feeds."""
        return "\f".join(page.text for page in self.pages)

    @property
    def n_pages(self) -> int:
        return len(self.pages)

"""Drawing one page of a born-digital PDF (:class:`Canvas`), the palette, and writing a PDF reproducibly.

Every document kind draws through :class:`Canvas`, which jitters margins and font scale from the generator,
and every PDF the package returns goes through :func:`pdf_bytes`, which fixes the metadata so that the same
seed gives the same bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pymupdf

# Fixed metadata: pymupdf would otherwise stamp the current time, which breaks byte-identical output.
_FIXED_DATE = "D:20240101000000Z"
_METADATA = {
    "producer": "docclass sample generator",
    "creator": "",
    "title": "",
    "author": "",
    "subject": "",
    "keywords": "",
    "creationDate": _FIXED_DATE,
    "modDate": _FIXED_DATE,
}

Color = tuple[float, float, float]
BLACK: Color = (0.0, 0.0, 0.0)
WHITE: Color = (1.0, 1.0, 1.0)
GREY: Color = (0.45, 0.45, 0.45)
LIGHT: Color = (0.9, 0.9, 0.9)
ACCENTS: tuple[Color, ...] = ((0.12, 0.25, 0.5), (0.1, 0.4, 0.35), (0.45, 0.15, 0.15), (0.25, 0.25, 0.3))

# A document kind: draws one document's pages into an empty PDF, all randomness from the generator.
Builder = Callable[[pymupdf.Document, np.random.Generator], None]


@functools.cache
def _char_width(font: str, char: str) -> float:
    """Advance width of one character at font size 1 (base-14 fonts have no kerning here)."""
    return pymupdf.get_text_length(char, fontname=font, fontsize=1)


class Canvas:
    """One page plus a pymupdf Shape (one content-stream commit per page keeps drawing fast), with jitter."""

    def __init__(
        self, pdf: pymupdf.Document, rng: np.random.Generator, width: float = 612, height: float = 792
    ):
        self.page = pdf.new_page(width=width, height=height)
        self.shape = self.page.new_shape()
        self.rng = rng
        self.w, self.h = width, height
        self.mx = float(rng.uniform(34, 58))
        self.top = float(rng.uniform(32, 54))
        self.fs = float(rng.uniform(0.94, 1.06))
        self.fonts: set[str] = set()

    @property
    def right(self) -> float:
        return self.w - self.mx

    def size(self, size: float) -> float:
        return size * self.fs

    def width(self, text: str, size: float = 9, font: str = "helv") -> float:
        return self.size(size) * sum(_char_width(font, ch) for ch in text)

    def text(
        self, x: float, y: float, text: str, size: float = 9, font: str = "helv", color: Color = BLACK
    ) -> None:
        # Writes the same operators as Shape.insert_text, which re-scans the page's font resources on
        # every call and would make a form page several times slower.
        if not text:
            return
        if font not in self.fonts:
            self.page.insert_font(fontname=font)
            self.fonts.add(font)
        code = text.encode("latin-1", errors="replace").hex()
        r, g, b = color
        origin = f"{x:.2f} {self.h - y:.2f}"
        self.shape.text_cont += (
            f"\nq\nBT\n1 0 0 1 {origin} Tm\n/{font} {self.size(size):.2f} Tf "
            f"{r:g} {g:g} {b:g} rg [<{code}>]TJ\nET\nQ\n"
        )

    def rtext(
        self, x: float, y: float, text: str, size: float = 9, font: str = "helv", color: Color = BLACK
    ) -> None:
        self.text(x - self.width(text, size, font), y, text, size, font, color)

    def ctext(
        self, x: float, y: float, text: str, size: float = 9, font: str = "helv", color: Color = BLACK
    ) -> None:
        self.text(x - self.width(text, size, font) / 2, y, text, size, font, color)

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        *,
        width: float = 0.7,
        color: Color | None = BLACK,
        fill: Color | None = None,
    ) -> None:
        self.shape.draw_rect(pymupdf.Rect(x0, y0, x1, y1))
        self.shape.finish(color=color, fill=fill, width=width)

    def line(
        self, x0: float, y0: float, x1: float, y1: float, width: float = 0.6, color: Color = BLACK
    ) -> None:
        self.shape.draw_line((x0, y0), (x1, y1))
        self.shape.finish(color=color, width=width)

    def checkbox(self, x: float, y: float, checked: bool = False, size: float = 7) -> None:
        self.rect(x, y - size, x + size, y, width=0.6)
        if checked:
            self.line(x + 1.2, y - size + 1.2, x + size - 1.2, y - 1.2, width=0.9)
            self.line(x + 1.2, y - 1.2, x + size - 1.2, y - size + 1.2, width=0.9)

    def para(
        self,
        x: float,
        y: float,
        width: float,
        text: str,
        size: float = 8,
        font: str = "helv",
        leading: float = 1.25,
        color: Color = BLACK,
    ) -> float:
        """Draw word-wrapped text starting at baseline y; return the baseline after the last line."""
        step = self.size(size) * leading
        space = self.width(" ", size, font)
        line: list[str] = []
        used = 0.0
        for word in text.split():
            w = self.width(word, size, font)
            if line and used + space + w > width:
                self.text(x, y, " ".join(line), size, font, color)
                y += step
                line, used = [], 0.0
            used = used + space + w if line else w
            line.append(word)
        if line:
            self.text(x, y, " ".join(line), size, font, color)
            y += step
        return y

    def field(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        label: str,
        value: str = "",
        value_font: str = "cour",
        value_size: float = 10,
    ) -> None:
        """A boxed form field with a small caption and an optional filled-in value."""
        self.rect(x0, y0, x1, y1, width=0.5)
        room, full = x1 - x0 - 4, self.width(label, 6.2)
        if full <= room:
            self.text(x0 + 2, y0 + 7, label, 6.2)
        elif y1 - y0 < 30 and full * 0.75 <= room:
            self.text(x0 + 2, y0 + 7, label, 6.2 * room / full)
        else:
            self.para(x0 + 2, y0 + 6.5, room, label, 5.4 if y1 - y0 < 30 else 6.2, leading=1.05)
        self.text(x0 + 4, y1 - 3.5, value, value_size, value_font)

    def commit(self) -> None:
        self.shape.commit()


def pdf_bytes(pdf: pymupdf.Document) -> bytes:
    """The PDF's bytes with fixed metadata and no new file ID: the same drawing gives the same bytes."""
    pdf.set_metadata(_METADATA)
    return pdf.tobytes(garbage=3, deflate=True, no_new_id=True)

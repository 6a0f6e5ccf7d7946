"""The title view of a page: the text set largest and the text in the top band of the page.

A form's number and name ("Form W-9", "Form 1040", "INVOICE") are set large or printed at the top; the title
keeps them apart from the body text, so a model can weigh them on their own. Built from the lines of a page with
their size and vertical position: span sizes of a PDF text layer (:func:`pdf_title`), word heights of
Tesseract's ``image_to_data`` for OCR pages (:func:`ocr_title`). Pure functions, no I/O.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TOP_BAND = 0.15  # share of the page height, from the top, whose lines belong to the title
BIG_FACTOR = 1.25  # lines set at least this many times the median size are "large"
LARGEST_SIZES = 3  # lines in one of the largest distinct sizes count as large too
MAX_LINES = 40  # at most this many large lines and this many top-band lines
MIN_OCR_CONFIDENCE = 30.0  # OCR words below this confidence are left out of the title

Line = tuple[float, float, str]  # (size, top y, text)


def title_from_lines(lines: Iterable[Line], page_height: float) -> str:
    """Title text of a page from its lines.

    Large lines (size >= 1.25 x the median line size, or in one of the three largest distinct sizes, sizes
    rounded to 0.1) in reading order, then the lines whose top lies in the top 15% of the page; at most 40 of
    each, joined with newlines. A line can appear in both parts: being large and at the top counts twice.

    On a page set in three sizes or fewer every line is "large", so its title is its first 40 lines. Counting
    only sizes above the median instead (body text never title) was measured on ../shared/corpus with
    ``make bench`` and lost: semantic -0.020 / -0.025 / -0.026 accuracy at 5 / 10 / 15 documents per class
    (paired over the same draws), title -0.026 at 15 per class; the sentence-embedding view reads those
    first lines as a summary of the page.

    Args:
        lines: (size, top y, text) of each line; size in any unit (points, pixels), y from the page top.
        page_height: height of the page in the unit of ``top y``.

    Returns:
        The title, or "" for a page without text.
    """
    kept = [(float(size), float(top), text.strip()) for size, top, text in lines if text.strip()]
    if not kept:
        return ""
    median = statistics.median(size for size, _, _ in kept)
    largest = set(sorted({round(size, 1) for size, _, _ in kept}, reverse=True)[:LARGEST_SIZES])
    big = [text for size, _, text in kept if size >= BIG_FACTOR * median or round(size, 1) in largest]
    top = [text for _, y, text in kept if y < TOP_BAND * page_height]
    return " \n".join(big[:MAX_LINES] + top[:MAX_LINES])


def pdf_title(page_dict: Mapping[str, Any], page_height: float) -> str:
    """Title of a PDF page from PyMuPDF's text dictionary (``TextPage.extractDICT()``).

    A line's size is the largest size of its spans; its position the top of its bounding box.
    """
    lines: list[Line] = []
    for block in page_dict.get("blocks", ()):
        for line in block.get("lines", ()):
            spans = line.get("spans") or ()
            text = " ".join(span["text"] for span in spans).strip()
            if text:
                lines.append((max(float(span["size"]) for span in spans), float(line["bbox"][1]), text))
    return title_from_lines(lines, page_height)


def ocr_title(data: Mapping[str, Sequence[Any]], image_height: int) -> str:
    """Title of an OCR page from Tesseract's ``image_to_data`` (``output_type=DICT``).

    A line (block, paragraph, line number) has the median height of its words and the top of its highest word;
    words under 30 confidence (noise, specks read as letters) are left out.
    """
    words: dict[tuple[int, int, int], list[int]] = {}
    for i, word in enumerate(data["text"]):
        if (word or "").strip() and float(data["conf"][i]) >= MIN_OCR_CONFIDENCE:
            key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
            words.setdefault(key, []).append(i)
    lines: list[Line] = [
        (
            float(statistics.median(float(data["height"][i]) for i in idx)),
            float(min(float(data["top"][i]) for i in idx)),
            " ".join(str(data["text"][i]).strip() for i in idx),
        )
        for idx in words.values()
    ]
    return title_from_lines(lines, image_height)

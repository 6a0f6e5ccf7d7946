"""Tiny synthetic Documents for model tests: three classes with distinct vocabulary and layouts."""

from __future__ import annotations

import hashlib

import numpy as np

from pipelines.document import Document, Page

H, W = 128, 96
CLASSES = ("invoice", "payslip", "w9")
SHARED = "the of and date page number total name address amount please".split()
VOCAB = {
    "invoice": "invoice vendor net due remit purchase order quantity unit price subtotal tax".split(),
    "payslip": "payslip employee salary gross deductions pension overtime payroll hours employer".split(),
    "w9": "taxpayer identification certification backup withholding requester exempt llc ssn".split(),
}


def _text_line(img: np.ndarray, rng: np.random.Generator, y: int, x0: int, x1: int, thick: int = 2) -> None:
    x = x0
    while x < x1 - 3:
        word = int(rng.integers(3, 10))
        img[y : y + thick, x : min(x + word, x1)] = rng.integers(0, 60)
        x += word + int(rng.integers(2, 4))


def render(label: str, rng: np.random.Generator) -> np.ndarray:
    """A thumbnail with the class's layout: invoice = logo + ruled table, payslip = boxed two columns,
    w9 = dense full-width form lines with field bars."""
    img = np.full((H, W), 255, dtype=np.uint8)
    j = int(rng.integers(-2, 3))
    if label == "invoice":
        img[6 + j : 20 + j, 6:30] = 20  # logo
        for y in range(50 + j, 100, 8):
            img[y, 6:90] = 0  # table rules
            _text_line(img, rng, y + 3, 8, 88)
        _text_line(img, rng, 110, 60, 90, thick=3)
    elif label == "payslip":
        img[10 + j, 4:92] = 0
        img[118 + j, 4:92] = 0
        img[10 + j : 119 + j, 4] = 0
        img[10 + j : 119 + j, 91] = 0
        for y in range(16 + j, 110, 6):
            _text_line(img, rng, y, 8, 44)
            _text_line(img, rng, y, 52, 88)
    else:
        for y in range(6 + j, 122, 5):
            img[y : y + 3, 4:6] = 0
            _text_line(img, rng, y, 8, 92)
    noise = rng.normal(0, 6, size=img.shape)
    return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def make_text(label: str, rng: np.random.Generator, n_words: int = 40) -> str:
    words = list(rng.choice(VOCAB[label], size=n_words // 2)) + list(rng.choice(SHARED, size=n_words // 2))
    rng.shuffle(words)
    return " ".join(words) + f" {int(rng.integers(100, 9999))}.{int(rng.integers(10, 99))}"


def make_doc(
    label: str, rng: np.random.Generator, *, text: bool = True, n_pages: int = 1, style: str | None = None
) -> Document:
    """One document of class ``label`` drawn in ``style`` (one of CLASSES; default the label itself)."""
    style = style or label
    pages = []
    for i in range(n_pages):
        body = make_text(style, rng) if text else ""
        pages.append(Page(index=i, text=body, source="text" if text else "none", image=render(style, rng)))
    key = hashlib.sha256(repr([p.text for p in pages]).encode() + rng.bytes(8)).hexdigest()
    return Document(sha256=key, name=f"{label}.pdf", mime="application/pdf", pages=tuple(pages))


def make_docs(
    n_per_class: int,
    seed: int = 0,
    *,
    classes: tuple[str, ...] = CLASSES,
    text: bool = True,
    n_pages: int = 1,
) -> tuple[list[Document], list[str]]:
    """``n_per_class`` documents of each class, interleaved, deterministic from ``seed``.

    A class name outside CLASSES borrows the vocabulary and layout of CLASSES at its position.
    """
    rng = np.random.default_rng(seed)
    styles = [c if c in VOCAB else CLASSES[i % len(CLASSES)] for i, c in enumerate(classes)]
    docs, labels = [], []
    for _ in range(n_per_class):
        for label, style in zip(classes, styles, strict=True):
            docs.append(make_doc(label, rng, text=text, n_pages=n_pages, style=style))
            labels.append(label)
    return docs, labels

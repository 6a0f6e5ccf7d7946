"""Batch prediction: document and page labels with calibrated scores, as JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.document import Document

_DECIMALS = 6


def _scores(row: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    return {c: round(float(p), _DECIMALS) for c, p in zip(classes, row, strict=True)}


def predict_documents(model: Any, docs: Sequence[Document], review_threshold: float) -> list[dict[str, Any]]:
    """Classify documents and each of their pages.

    All pages of all documents go through one batched ``predict_pages_proba`` call; documents of more than one
    page go through one ``predict_proba`` call. A one-page document's score is its page's score (a page is
    scored as a one-page document, so the two are the same computation).

    Args:
        model: a fitted candidate (``classes_``, ``predict_proba``, ``predict_pages_proba``).
        docs: extracted documents.
        review_threshold: a document whose confidence is below this needs review.

    Returns:
        Per document, in input order: ``sha256``, ``label``, ``confidence``, ``scores`` ({class: prob}),
        ``needs_review``, ``n_pages`` and ``pages`` (``page`` 1-based, ``label``, ``confidence``, ``scores``).
        Floats are plain Python floats rounded to 6 decimals. A document without pages is scored on its
        (empty) content and has ``pages == []``.
    """
    docs = list(docs)
    classes = [str(c) for c in model.classes_]
    page_proba = model.predict_pages_proba(docs) if docs else []
    whole = [i for i, doc in enumerate(docs) if doc.n_pages != 1]
    doc_proba: dict[int, np.ndarray] = {}
    if whole:
        for i, row in zip(whole, model.predict_proba([docs[i] for i in whole]), strict=True):
            doc_proba[i] = row
    results = []
    for i, doc in enumerate(docs):
        proba = doc_proba[i] if i in doc_proba else page_proba[i][0]
        best = int(np.argmax(proba))
        confidence = float(proba[best])
        pages = []
        for k, row in enumerate(page_proba[i]):
            page_best = int(np.argmax(row))
            pages.append(
                {
                    "page": k + 1,
                    "label": classes[page_best],
                    "confidence": round(float(row[page_best]), _DECIMALS),
                    "scores": _scores(row, classes),
                }
            )
        results.append(
            {
                "sha256": doc.sha256,
                "label": classes[best],
                "confidence": round(confidence, _DECIMALS),
                "scores": _scores(proba, classes),
                "needs_review": bool(confidence < review_threshold),
                "n_pages": doc.n_pages,
                "pages": pages,
            }
        )
    return results

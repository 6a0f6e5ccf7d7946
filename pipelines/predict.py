"""Batch prediction: document and page labels with calibrated scores, as JSON-ready dicts.

Which answers need review is decided by a :class:`ReviewRule` (params.yaml ``predict:``): a model that kept its
out-of-fold answers when it was fitted (``oof_confidence_``, ``oof_correct_``; see
:func:`pipelines.models.base.record_out_of_fold`) is flagged under the lowest confidence at which those answers
reach ``predict.target_accuracy`` (its out-of-fold risk-coverage curve), never under ``predict.review_floor``;
a model without them (saved before thresholds were learned, or one that makes no out-of-fold answers, such as
the plain reference) uses ``predict.review_threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.document import Document
from pipelines.models.base import review_threshold
from pipelines.params import PredictParams, validate_section

_DECIMALS = 6
TOP_K = 3


@dataclass(frozen=True)
class ReviewRule:
    """When an answer needs review: ``confidence < threshold(model)``.

    Attributes:
        target_accuracy: the share of unflagged answers that should be right; a model's threshold is the lowest
            confidence at which its out-of-fold answers reach it.
        floor: a learned threshold is never lower than this (a few out-of-fold answers prove little).
        fallback: the threshold of a model without out-of-fold answers.
    """

    # No defaults: the values are params.yaml's predict: section (from_params).
    target_accuracy: float
    floor: float
    fallback: float

    @classmethod
    def from_params(cls, predict: Mapping[str, Any] | None) -> ReviewRule:
        """From the ``predict:`` section of params.yaml (``target_accuracy``, ``review_floor``,
        ``review_threshold``).

        Raises:
            ParamsError: a key of the section is unknown, missing, not a number or out of range.
        """
        section = validate_section(PredictParams, predict, "predict")
        return cls(section.target_accuracy, section.review_floor, section.review_threshold)

    def learned(self, model: Any) -> float | None:
        """The threshold read off the model's out-of-fold answers at ``target_accuracy`` (no floor), or None."""
        confidence = getattr(model, "oof_confidence_", None)
        correct = getattr(model, "oof_correct_", None)
        if confidence is None or correct is None or len(confidence) == 0:
            return None
        return review_threshold(confidence, correct, self.target_accuracy)

    def threshold(self, model: Any) -> float:
        """The threshold applied to ``model``'s answers: learned and floored, else the fallback."""
        learned = self.learned(model)
        return self.fallback if learned is None else max(learned, self.floor)

    def describe(self) -> str:
        return (
            f"per model: the lowest confidence at which its out-of-fold answers are >= {self.target_accuracy:g} "
            f"right (predict.target_accuracy), at least {self.floor:g} (predict.review_floor); "
            f"{self.fallback:g} (predict.review_threshold) for a model without out-of-fold answers"
        )


def _scores(row: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    return {c: round(float(p), _DECIMALS) for c, p in zip(classes, row, strict=True)}


def _top(row: np.ndarray, classes: Sequence[str], k: int = TOP_K) -> list[dict[str, Any]]:
    order = np.argsort(-np.asarray(row), kind="stable")[:k]
    return [{"label": classes[i], "score": round(float(row[i]), _DECIMALS)} for i in order]


def predict_documents(
    model: Any, docs: Sequence[Document], review: ReviewRule | float
) -> list[dict[str, Any]]:
    """Classify documents and each of their pages.

    All pages of all documents go through one batched ``predict_pages_proba`` call; documents of more than one
    page go through one ``predict_proba`` call. A one-page document's score is its page's score (a page is
    scored as a one-page document, so the two are the same computation).

    Args:
        model: a fitted candidate (``classes_``, ``predict_proba``, ``predict_pages_proba``).
        docs: extracted documents.
        review: the review rule (the model's learned threshold, see :class:`ReviewRule`), or a fixed threshold
            for every model.

    Returns:
        Per document, in input order: ``sha256``, ``label``, ``confidence``, ``scores`` ({class: prob}),
        ``top`` (the three most probable classes, ``[{label, score}, ...]``, best first), ``needs_review``
        (confidence under ``review_threshold``), ``review_threshold``, ``n_pages`` and ``pages`` (``page``
        1-based, ``label``, ``confidence``, ``scores``). Floats are plain Python floats rounded to 6 decimals.
        A document without pages is scored on its (empty) content and has ``pages == []``.
    """
    docs = list(docs)
    classes = [str(c) for c in model.classes_]
    threshold = review.threshold(model) if isinstance(review, ReviewRule) else float(review)
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
                "top": _top(proba, classes),
                "needs_review": bool(confidence < threshold),
                "review_threshold": round(threshold, _DECIMALS),
                "n_pages": doc.n_pages,
                "pages": pages,
            }
        )
    return results

"""Batch prediction: document and page labels with calibrated scores, as JSON-ready dicts.

Which answers need review is decided by a :class:`ReviewRule` (params.yaml ``predict:``) from each answer's
review score. For most models the score is the confidence (the arg-max probability); a model can define its own
(``predict_proba_scored`` / ``predict_pages_proba_scored`` and ``oof_review_score_``: the stack's
``margin_agree``). A model that kept its out-of-fold answers when it was fitted (``oof_confidence_`` or
``oof_review_score_``, with ``oof_correct_``; see :func:`pipelines.models.base.record_out_of_fold`) is flagged
under the lowest score at which those answers reach ``predict.target_accuracy`` (its out-of-fold risk-coverage
curve), and whenever its confidence is under ``predict.review_floor``; a model without them (saved before
thresholds were learned, or one that makes no out-of-fold answers, such as the plain reference) is flagged under
the confidence ``predict.review_threshold``.
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
    """When an answer needs review: ``review_score < threshold(model)`` or ``confidence < floor``.

    Attributes:
        target_accuracy: the share of unflagged answers that should be right; a model's threshold is the lowest
            review score at which its out-of-fold answers reach it.
        floor: an answer less confident than this always needs review (a few out-of-fold answers prove little).
        fallback: the confidence threshold of a model without out-of-fold answers.
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
        score = _oof_scores(model)
        correct = getattr(model, "oof_correct_", None)
        if score is None or correct is None or len(score) == 0:
            return None
        return review_threshold(score, correct, self.target_accuracy)

    def threshold(self, model: Any) -> float:
        """The threshold on ``model``'s review scores: learned (floored when the score is the confidence), else
        the fallback."""
        learned = self.learned(model)
        if learned is None:
            return self.fallback
        return learned if _has_own_score(model) else max(learned, self.floor)

    def needs_review(self, confidence: float, score: float, threshold: float) -> bool:
        """Whether one answer needs review, given the model's :meth:`threshold`."""
        return bool(score < threshold or confidence < self.floor)

    def describe(self) -> str:
        return (
            f"per model: the lowest confidence at which its out-of-fold answers are >= {self.target_accuracy:g} "
            f"right (predict.target_accuracy), at least {self.floor:g} (predict.review_floor); "
            f"{self.fallback:g} (predict.review_threshold) for a model without out-of-fold answers"
        )


def _has_own_score(model: Any) -> bool:
    return getattr(model, "oof_review_score_", None) is not None


def _oof_scores(model: Any) -> np.ndarray | None:
    own = getattr(model, "oof_review_score_", None)
    return own if own is not None else getattr(model, "oof_confidence_", None)


def _doc_scored(model: Any, docs: list[Document]) -> tuple[np.ndarray, np.ndarray | None]:
    if hasattr(model, "predict_proba_scored"):
        proba, score = model.predict_proba_scored(docs)
        return proba, score
    return model.predict_proba(docs), None


def _pages_scored(model: Any, docs: list[Document]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    if hasattr(model, "predict_pages_proba_scored"):
        return list(model.predict_pages_proba_scored(docs))
    return [(rows, None) for rows in model.predict_pages_proba(docs)]


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
        (``review_score`` under ``review_threshold``, or confidence under the rule's floor), ``review_score``
        (the confidence, or the model's own score, see :class:`ReviewRule`), ``review_threshold``, ``n_pages`` and ``pages`` (``page``
        1-based, ``label``, ``confidence``, ``scores``). Floats are plain Python floats rounded to 6 decimals.
        A document without pages is scored on its (empty) content and has ``pages == []``.
    """
    docs = list(docs)
    classes = [str(c) for c in model.classes_]
    rule: ReviewRule | None
    if isinstance(review, ReviewRule):
        rule, threshold = review, review.threshold(model)
    else:
        rule, threshold = None, float(review)
    pages_scored = _pages_scored(model, docs) if docs else []
    whole = [i for i, doc in enumerate(docs) if doc.n_pages != 1]
    doc_scored: dict[int, tuple[np.ndarray, float | None]] = {}
    if whole:
        proba_whole, score_whole = _doc_scored(model, [docs[i] for i in whole])
        for j, i in enumerate(whole):
            doc_scored[i] = (proba_whole[j], None if score_whole is None else float(score_whole[j]))
    results = []
    for i, doc in enumerate(docs):
        if i in doc_scored:
            proba, own_score = doc_scored[i]
        else:
            page_rows, page_scores = pages_scored[i]
            proba, own_score = page_rows[0], None if page_scores is None else float(page_scores[0])
        best = int(np.argmax(proba))
        confidence = float(proba[best])
        score = confidence if own_score is None else own_score
        flagged = rule.needs_review(confidence, score, threshold) if rule is not None else score < threshold
        pages = []
        for k, row in enumerate(pages_scored[i][0]):
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
                "needs_review": bool(flagged),
                "review_score": round(score, _DECIMALS),
                "review_threshold": round(threshold, _DECIMALS),
                "n_pages": doc.n_pages,
                "pages": pages,
            }
        )
    return results

"""Shared machinery of the candidates: errors, temperature calibration and the calibrated base class.

Every candidate takes ``X`` as a sequence of :class:`~pipelines.document.Document` and ``y`` as string labels,
and offers ``predict_proba`` (calibrated), ``predict``, ``predict_page_proba(doc)`` and the batched
``predict_pages_proba(docs)`` (each page scored as a one-page document).

Calibration is temperature scaling fitted on out-of-fold decision scores (:func:`out_of_fold_temperature`):
one parameter, so it suits 15 documents per class, and it never changes the arg-max. The fit target is
Laplace-smoothed (:func:`fit_temperature`), so perfectly separated folds do not make the model certain.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document

log = logging.getLogger(__name__)

# temperatures outside this range mean the out-of-fold scores say nothing reliable
_T_MIN, _T_MAX = 0.05, 20.0
_EPS = 1e-12


class CandidateUnavailable(RuntimeError):
    """A candidate cannot be trained here (e.g. its base checkpoint is absent); callers skip it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelLoadError(RuntimeError):
    """A model directory is missing, incomplete or unreadable."""


# --------------------------------------------------------------------------------------------- calibration


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature``."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (``y_idx`` are column indices)."""
    p = np.clip(proba[np.arange(len(y_idx)), y_idx], _EPS, 1.0)
    return float(-np.log(p).mean())


def fit_temperature(scores: np.ndarray, y_idx: np.ndarray, smoothing: float | None = None) -> float:
    """The temperature T minimising the cross-entropy of ``softmax(scores / T)``, searched in [0.05, 20].

    The target puts ``1 - smoothing`` on the true class and spreads ``smoothing`` over the others. The default
    ``1 / (n + 2)`` is Laplace's rule of succession: after n correct held-out predictions the next is right
    with probability (n + 1) / (n + 2), so perfectly separated out-of-fold scores (common with 15 documents
    per class) give a finite temperature instead of T -> 0 and certainty.

    Args:
        scores: (n, k) decision scores (logits or margins) of held-out examples.
        y_idx: (n,) true column indices.
        smoothing: target mass off the true class; None = 1 / (n + 2), 0 = plain negative log-likelihood.

    Returns:
        The temperature; deterministic (bounded scalar search on log T).
    """
    from scipy.optimize import minimize_scalar

    scores = np.asarray(scores, dtype=np.float64)
    y_idx = np.asarray(y_idx)
    n, k = scores.shape
    eps = 1.0 / (n + 2) if smoothing is None else float(smoothing)
    target = np.full((n, k), eps / max(k - 1, 1))
    target[np.arange(n), y_idx] = 1.0 - eps

    def loss(log_t: float) -> float:
        z = scores / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-(target * log_p).sum(axis=1).mean())

    res = minimize_scalar(
        loss, bounds=(math.log(_T_MIN), math.log(_T_MAX)), method="bounded", options={"xatol": 1e-4}
    )
    return float(math.exp(res.x))


def calibration_folds(y_idx: np.ndarray, max_folds: int) -> int:
    """Number of stratified folds usable for ``y_idx``: min(max_folds, smallest class count), 0 if < 2."""
    smallest = int(np.bincount(y_idx).min()) if len(y_idx) else 0
    k = min(max_folds, smallest)
    return k if k >= 2 else 0


@dataclass(frozen=True)
class Calibration:
    """Outcome of :func:`out_of_fold_temperature`.

    Attributes:
        temperature: the fitted temperature (1.0 when not calibrated).
        oof_scores: (n, k) out-of-fold decision scores, or None when not calibrated.
        reason: how it was calibrated, or why not.
    """

    temperature: float
    oof_scores: np.ndarray | None
    reason: str


def out_of_fold_temperature(
    fit: Callable[[np.ndarray], Any],
    score: Callable[[Any, np.ndarray], np.ndarray],
    y_idx: np.ndarray,
    n_classes: int,
    *,
    max_folds: int,
    seed: int,
) -> Calibration:
    """Temperature scaling fitted on out-of-fold decision scores: the calibration every candidate shares.

    Args:
        fit: ``fit(train_idx) -> fitted`` trains a fresh uncalibrated model on those examples.
        score: ``score(fitted, test_idx) -> (len(test_idx), n_classes)`` decision scores.
        y_idx: (n,) class indices of all examples.
        n_classes: number of classes.
        max_folds: at most this many folds (fewer when the smallest class is smaller; < 2 disables).
        seed: shuffles the stratified folds.

    Returns:
        The calibration; uncalibrated (T = 1) with the reason logged when a class has fewer than 2 examples.
    """
    counts = np.bincount(y_idx, minlength=n_classes)
    k = calibration_folds(y_idx, max_folds)
    if max_folds < 2:
        reason = f"uncalibrated softmax: calibration disabled (max_folds {max_folds})"
        log.debug(reason)
        return Calibration(1.0, None, reason)
    if k == 0:
        reason = (
            f"uncalibrated softmax: calibration needs >= 2 examples per class, "
            f"found smallest class {int(counts.min())}"
        )
        log.warning(reason)
        return Calibration(1.0, None, reason)
    oof = np.zeros((len(y_idx), n_classes), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(y_idx)), y_idx):
        oof[test_idx] = score(fit(train_idx), test_idx)
    temperature = fit_temperature(oof, y_idx)
    at_bound = " (at the search bound)" if not (_T_MIN * 1.01 < temperature < _T_MAX / 1.01) else ""
    reason = f"temperature {temperature:.4g}{at_bound} fitted on {k}-fold out-of-fold scores"
    log.debug(reason)
    return Calibration(temperature, oof, reason)


def _score_matrix(decision: np.ndarray) -> np.ndarray:
    """(n, k) scores from ``decision_function``: binary (n,) margins become [0, s] (softmax = sigmoid)."""
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1:
        return np.column_stack([np.zeros_like(decision), decision])
    return decision


# --------------------------------------------------------------------------------------------- base


def check_docs(X: Sequence[Document]) -> list[Document]:
    if isinstance(X, str | bytes | Document):
        raise TypeError(f"expected a sequence of Document, found {type(X).__name__}")
    docs = list(X)
    for doc in docs:
        if not hasattr(doc, "pages"):
            raise TypeError(f"expected a sequence of Document, found an element of type {type(doc).__name__}")
    return docs


def check_labels(y: Sequence[str], n_docs: int) -> np.ndarray:
    labels = np.asarray([str(label) for label in y])
    if len(labels) != n_docs:
        raise ValueError(f"X has {n_docs} documents but y has {len(labels)} labels")
    classes = np.unique(labels)
    if len(classes) < 2:
        found = ", ".join(repr(str(c)) for c in classes) or "none"
        raise ValueError(f"expected at least 2 classes, found {len(classes)} ({found})")
    return labels


def _one_page_docs(docs: Sequence[Document]) -> tuple[list[Document], list[int]]:
    flat = [
        Document(sha256=doc.sha256, name=doc.name, mime=doc.mime, pages=(page,))
        for doc in docs
        for page in doc.pages
    ]
    return flat, [doc.n_pages for doc in docs]


def _split_rows(matrix: np.ndarray, counts: list[int]) -> list[np.ndarray]:
    return np.split(matrix, np.cumsum(counts)[:-1]) if counts else []


class PageMixin:
    """``predict_page_proba`` / ``predict_pages_proba`` / ``predict`` from ``predict_proba``."""

    classes_: np.ndarray

    def predict_proba(self, X: Sequence[Document]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict(self, X: Sequence[Document]) -> np.ndarray:
        """Most probable label of each document."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_pages_proba(self, docs: Sequence[Document]) -> list[np.ndarray]:
        """Per-page class probabilities of each document in one batched call, each page a one-page document.

        Returns:
            One (n_pages, n_classes) array per document ((0, n_classes) for a document without pages).
        """
        check_is_fitted(self, "classes_")
        flat, counts = _one_page_docs(check_docs(docs))
        proba = self.predict_proba(flat) if flat else np.zeros((0, len(self.classes_)))
        return _split_rows(proba, counts)

    def predict_page_proba(self, doc: Document) -> np.ndarray:
        """(n_pages, n_classes) class probabilities of each page of one document."""
        return self.predict_pages_proba([doc])[0]


class CalibratedClassifier(PageMixin, ClassifierMixin, BaseEstimator):
    """Base of the calibrated candidates.

    Shared fit: prepare features once, fit the temperature on out-of-fold scores, fit the final model on
    everything.

    Subclasses implement ``_prepare(docs)``, ``_fit_core(features, y_idx)`` and
    ``_core_scores(core, features)``; features are a list or an array indexable by an index array.
    """

    random_state: int
    calibration_folds: int

    def _prepare(self, docs: list[Document]) -> Any:
        raise NotImplementedError

    def _fit_core(self, features: Any, y_idx: np.ndarray) -> Any:
        raise NotImplementedError

    def _core_scores(self, core: Any, features: Any) -> np.ndarray:
        raise NotImplementedError

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> CalibratedClassifier:
        """Fit on documents ``X`` with string labels ``y``; returns self."""
        docs = check_docs(X)
        labels = check_labels(y, len(docs))
        self.classes_ = np.unique(labels)
        y_idx = np.searchsorted(self.classes_, labels)
        features = self._prepare(docs)
        n_classes = len(self.classes_)
        with self._fit_context():
            self._fit_calibrated(features, y_idx, n_classes)
        return self

    def _fit_context(self) -> contextlib.AbstractContextManager[Any]:
        """Context of the fitting work: one BLAS / OpenMP thread (see :func:`_single_threaded_blas`)."""
        return _single_threaded_blas()

    def _fit_calibrated(self, features: Any, y_idx: np.ndarray, n_classes: int) -> None:
        calibration = out_of_fold_temperature(
            lambda idx: self._fit_core(_take(features, idx), y_idx[idx]),
            lambda core, idx: self._core_scores(core, _take(features, idx)),
            y_idx,
            n_classes,
            max_folds=self.calibration_folds,
            seed=self.random_state,
        )
        self.core_ = self._fit_core(features, y_idx)
        self.temperature_ = calibration.temperature
        self.calibration_ = calibration.reason
        self.oof_proba_ = (
            None if calibration.oof_scores is None else softmax(calibration.oof_scores, self.temperature_)
        )
        record_out_of_fold(self, self.oof_proba_, y_idx)

    def decision_function(self, X: Sequence[Document]) -> np.ndarray:
        """Uncalibrated (n_docs, n_classes) scores; ``predict_proba`` is their softmax at ``temperature_``."""
        check_is_fitted(self, "core_")
        docs = check_docs(X)
        if not docs:
            return np.zeros((0, len(self.classes_)))
        return self._core_scores(self.core_, self._prepare(docs))

    def predict_proba(self, X: Sequence[Document]) -> np.ndarray:
        """Calibrated (n_docs, n_classes) probabilities, columns in ``classes_`` order."""
        return softmax(self.decision_function(X), self.temperature_)

    def _proba_prepared(self, features: Any) -> np.ndarray:
        """``predict_proba`` from features already made by ``_prepare`` (lets a caller reuse them)."""
        check_is_fitted(self, "core_")
        if len(features) == 0:
            return np.zeros((0, len(self.classes_)))
        return softmax(self._core_scores(self.core_, features), self.temperature_)


def _single_threaded_blas() -> Any:
    """One BLAS / OpenMP thread while fitting: these problems are tiny, and on a busy 2-core machine spinning
    BLAS threads made a 0.2 s logistic regression take 2-4 s."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _take(features: Any, idx: np.ndarray) -> Any:
    if isinstance(features, np.ndarray):
        return features[idx]
    return [features[i] for i in idx]


def checked_scores(decision: np.ndarray, core_classes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) scores from a fitted core's ``decision_function``, checking it knows every class."""
    scores = _score_matrix(decision)
    if scores.shape[1] != n_classes or not np.array_equal(core_classes, np.arange(n_classes)):
        raise ValueError(f"expected the model to know all {n_classes} classes, found {list(core_classes)}")
    return scores


# --------------------------------------------------------------------------------------------- review

# A review threshold above every probability: every answer needs review.
FLAG_ALL = 1.01


def record_out_of_fold(estimator: Any, oof_proba: np.ndarray | None, y_idx: np.ndarray) -> None:
    """Keep, on a fitted candidate, the confidence and correctness of each of its out-of-fold answers.

    ``oof_confidence_`` (max probability) and ``oof_correct_`` (arg-max is the true class) are the points of the
    candidate's out-of-fold risk-coverage curve: :func:`review_threshold` reads the ``needs_review`` threshold off
    them for a target accuracy (see :class:`pipelines.predict.ReviewRule`). Both are None without out-of-fold
    answers (calibration disabled, or a class with a single document).

    Args:
        estimator: the candidate being fitted (attributes are set on it).
        oof_proba: (n, n_classes) out-of-fold probabilities of the training documents, or None.
        y_idx: (n,) their true column indices.
    """
    if oof_proba is None:
        estimator.oof_confidence_ = None
        estimator.oof_correct_ = None
        return
    proba = np.asarray(oof_proba, dtype=np.float64)
    estimator.oof_confidence_ = proba.max(axis=1)
    estimator.oof_correct_ = proba.argmax(axis=1) == np.asarray(y_idx)


def review_threshold(
    confidence: np.ndarray | Sequence[float], correct: np.ndarray | Sequence[bool], target_accuracy: float
) -> float:
    """The lowest confidence t whose answers at or above it are at least ``target_accuracy`` right.

    Read off the risk-coverage curve of (out-of-fold) answers: of every threshold that meets the target, the one
    that leaves the most answers unflagged. Ties are kept together (a threshold cannot split equal confidences).

    Args:
        confidence: (n,) confidence of each answer.
        correct: (n,) whether each answer was right.
        target_accuracy: required share of right answers among those at or above the threshold, in (0, 1].

    Returns:
        The threshold; :data:`FLAG_ALL` (every answer needs review) when no threshold meets the target or there
        are no answers.

    Raises:
        ValueError: lengths differ, or a target outside (0, 1].
    """
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if conf.shape != right.shape or conf.ndim != 1:
        raise ValueError(f"expected one correctness per confidence, found {right.shape} and {conf.shape}")
    if not 0.0 < target_accuracy <= 1.0:
        raise ValueError(f"expected a target accuracy in (0, 1], found {target_accuracy}")
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    accuracy = np.cumsum(right) / np.arange(1, len(right) + 1)
    # the last position of each run of equal confidences: a threshold answers all of a run or none of it
    ends = np.flatnonzero(np.append(conf[1:] != conf[:-1], True)) if len(conf) else np.zeros(0, dtype=int)
    meets = ends[accuracy[ends] >= target_accuracy - 1e-12]
    return float(conf[meets[-1]]) if len(meets) else FLAG_ALL

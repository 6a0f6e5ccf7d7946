"""Candidate document classifiers behind one scikit-learn-style interface, their calibration and persistence.

Every candidate takes ``X`` as a sequence of :class:`~pipelines.document.Document` and ``y`` as string labels,
and offers ``predict_proba`` (calibrated), ``predict``, ``predict_page_proba(doc)`` and the batched
``predict_pages_proba(docs)`` (each page scored as a one-page document).

Calibration is temperature scaling fitted on out-of-fold decision scores (:func:`out_of_fold_temperature`):
one parameter, so it suits 15 documents per class, and it never changes the arg-max. The fit target is
Laplace-smoothed (:func:`fit_temperature`), so perfectly separated folds do not make the model certain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import pickle
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document
from pipelines.features import TextVectorizer, document_layout_features, document_texts, has_words

log = logging.getLogger(__name__)

CANDIDATES = ("text", "visual", "fusion", "transformer")
MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
TRANSFORMER_DIR = "transformer"
_META_KEYS = ("candidate", "classes", "params", "created", "versions", "format")
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


def _check_docs(X: Sequence[Document]) -> list[Document]:
    if isinstance(X, str | bytes | Document):
        raise TypeError(f"expected a sequence of Document, found {type(X).__name__}")
    docs = list(X)
    for doc in docs:
        if not hasattr(doc, "pages"):
            raise TypeError(f"expected a sequence of Document, found an element of type {type(doc).__name__}")
    return docs


def _check_labels(y: Sequence[str], n_docs: int) -> np.ndarray:
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


class _PageMixin:
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
        flat, counts = _one_page_docs(_check_docs(docs))
        proba = self.predict_proba(flat) if flat else np.zeros((0, len(self.classes_)))
        return _split_rows(proba, counts)

    def predict_page_proba(self, doc: Document) -> np.ndarray:
        """(n_pages, n_classes) class probabilities of each page of one document."""
        return self.predict_pages_proba([doc])[0]


class CalibratedClassifier(_PageMixin, ClassifierMixin, BaseEstimator):
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
        docs = _check_docs(X)
        labels = _check_labels(y, len(docs))
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

    def decision_function(self, X: Sequence[Document]) -> np.ndarray:
        """Uncalibrated (n_docs, n_classes) scores; ``predict_proba`` is their softmax at ``temperature_``."""
        check_is_fitted(self, "core_")
        docs = _check_docs(X)
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


# --------------------------------------------------------------------------------------------- candidates


class TextClassifier(CalibratedClassifier):
    """TF-IDF word + character n-grams of the document text, linear SVM, temperature-calibrated.

    A linear SVM (liblinear) fits these wide sparse matrices several times faster than logistic regression
    and ranks as well; its margins become probabilities through the out-of-fold temperature.

    Args:
        word_ngrams: word n-gram range.
        char_ngrams: ``char_wb`` n-gram range.
        max_features: vocabulary cap of each TF-IDF block.
        C: inverse regularisation strength of the linear SVM.
        max_chars: characters of normalised text used per document (and per page when scoring pages);
            bounds prediction time.
        calibration_folds: at most this many out-of-fold folds for the temperature (< 2 disables).
        random_state: seed of the calibration folds.
    """

    name = "text"

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        max_features: int = 50000,
        C: float = 10.0,
        max_chars: int = 5000,
        calibration_folds: int = 5,
        random_state: int = 42,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.C = C
        self.max_chars = max_chars
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _prepare(self, docs: list[Document]) -> list[str]:
        return document_texts(docs, self.max_chars)

    def _fit_core(self, features: list[str], y_idx: np.ndarray) -> tuple[TextVectorizer, LinearSVC]:
        vectorizer = TextVectorizer(
            word_ngrams=tuple(self.word_ngrams),
            char_ngrams=tuple(self.char_ngrams),
            max_features=self.max_features,
        )
        matrix = vectorizer.fit_transform(features)
        clf = LinearSVC(C=self.C, max_iter=5000, random_state=self.random_state).fit(matrix, y_idx)
        return vectorizer, clf

    def _core_scores(self, core: tuple[TextVectorizer, LinearSVC], features: list[str]) -> np.ndarray:
        vectorizer, clf = core
        return checked_scores(
            clf.decision_function(vectorizer.transform(features)), clf.classes_, len(self.classes_)
        )


class VisualClassifier(CalibratedClassifier):
    """Page-image layout features of the first page(s), standardised, logistic regression, calibrated.

    Uses no text at all, so it classifies scans whose OCR text is poor or empty.

    Args:
        C: inverse regularisation strength of the logistic regression.
        pages: how many leading pages are described; 1 keeps whole documents and single pages (scored as
            one-page documents) in the same feature distribution.
        calibration_folds: at most this many out-of-fold folds for the temperature (< 2 disables).
        random_state: seed of the calibration folds.
    """

    name = "visual"

    def __init__(
        self, C: float = 1.0, pages: int = 1, calibration_folds: int = 5, random_state: int = 42
    ) -> None:
        self.C = C
        self.pages = pages
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _prepare(self, docs: list[Document]) -> np.ndarray:
        return document_layout_features(docs, self.pages)

    def _fit_core(self, features: np.ndarray, y_idx: np.ndarray) -> Pipeline:
        model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=self.C, max_iter=5000))])
        return model.fit(features, y_idx)

    def _core_scores(self, core: Pipeline, features: np.ndarray) -> np.ndarray:
        return checked_scores(core.decision_function(features), core.classes_, len(self.classes_))


class FusionClassifier(_PageMixin, ClassifierMixin, BaseEstimator):
    """Weighted geometric mean of the calibrated text and visual probabilities, renormalised.

    ``p ~ p_text ** (1 - w) * p_visual ** w``; ``w`` is the entry of ``weights`` with the lowest out-of-fold
    log loss (first one on ties). A document without any word (a scan whose OCR found nothing) uses the visual
    model alone: its text probabilities carry no evidence.

    Args:
        text: the text candidate (default ``TextClassifier()``); cloned, never fitted in place.
        visual: the visual candidate (default ``VisualClassifier()``); cloned.
        weights: candidate weights of the visual model.
        random_state: passed to both parts so their calibration folds agree.
    """

    name = "fusion"

    def __init__(
        self,
        text: TextClassifier | None = None,
        visual: VisualClassifier | None = None,
        weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
        random_state: int = 42,
    ) -> None:
        self.text = text
        self.visual = visual
        self.weights = weights
        self.random_state = random_state

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> FusionClassifier:
        """Fit both parts and choose the visual weight; returns self."""
        weights = [float(w) for w in self.weights]
        if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
            raise ValueError(f"expected a non-empty list of weights in [0, 1], found {self.weights!r}")
        docs = _check_docs(X)
        labels = _check_labels(y, len(docs))
        text = clone(self.text) if self.text is not None else TextClassifier()
        visual = clone(self.visual) if self.visual is not None else VisualClassifier()
        text.set_params(random_state=self.random_state)
        visual.set_params(random_state=self.random_state)
        self.text_ = text.fit(docs, labels)
        self.visual_ = visual.fit(docs, labels)
        self.classes_ = self.text_.classes_
        no_text = self._no_text(docs)
        self.oof_log_loss_: dict[float, float] = {}
        if self.text_.oof_proba_ is None or self.visual_.oof_proba_ is None:
            self.weight_ = weights[len(weights) // 2]
            self.selection_ = (
                f"visual weight {self.weight_} (middle of the grid): no out-of-fold probabilities"
            )
            log.warning(self.selection_)
            return self
        y_idx = np.searchsorted(self.classes_, labels)
        for w in weights:
            proba = self._combine(self.text_.oof_proba_, self.visual_.oof_proba_, w, no_text)
            self.oof_log_loss_[w] = negative_log_likelihood(proba, y_idx)
        best = min(self.oof_log_loss_.values())
        self.weight_ = next(w for w in weights if self.oof_log_loss_[w] <= best + 1e-12)
        self.selection_ = f"visual weight {self.weight_} by out-of-fold log loss {best:.4f}"
        log.debug(self.selection_)
        return self

    def predict_proba(self, X: Sequence[Document]) -> np.ndarray:
        """Fused (n_docs, n_classes) probabilities."""
        check_is_fitted(self, "weight_")
        docs = _check_docs(X)
        if not docs:
            return np.zeros((0, len(self.classes_)))
        return self._combine(
            self.text_.predict_proba(docs),
            self.visual_.predict_proba(docs),
            self.weight_,
            self._no_text(docs),
        )

    def _no_text(self, docs: Sequence[Document]) -> np.ndarray:
        max_chars = self.text_.max_chars
        return np.array([not has_words(text) for text in document_texts(docs, max_chars)], dtype=bool)

    @staticmethod
    def _combine(p_text: np.ndarray, p_visual: np.ndarray, weight: float, no_text: np.ndarray) -> np.ndarray:
        w = np.where(no_text, 1.0, weight)[:, None]
        log_p = (1.0 - w) * np.log(np.clip(p_text, _EPS, 1.0)) + w * np.log(np.clip(p_visual, _EPS, 1.0))
        return softmax(log_p)


# --------------------------------------------------------------------------------------------- factory


def _section(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    section = params.get(key) or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"expected train.{key} to be a mapping, found {type(section).__name__}")
    return dict(section)


def _build(cls: type, section: dict[str, Any], key: str, **extra: Any) -> Any:
    valid = set(cls().get_params(deep=False))
    unknown = sorted(set(section) - valid)
    if unknown:
        raise ValueError(f"unknown train.{key} parameter(s) {unknown}: expected some of {sorted(valid)}")
    for name in ("word_ngrams", "char_ngrams", "weights"):
        if name in section and isinstance(section[name], list):
            section[name] = tuple(section[name])
    return cls(**section, **extra)


def make_candidate(name: str, params: Mapping[str, Any], seed: int) -> Any:
    """Build an unfitted candidate by name from the ``train:`` section of params.yaml.

    Args:
        name: one of "text", "visual", "fusion", "transformer".
        params: the ``train:`` mapping as loaded by yaml (sub-sections ``text``, ``visual``, ``fusion``,
            ``transformer``; a missing sub-section means the estimator's defaults).
        seed: random_state of the candidate.

    Returns:
        The unfitted estimator.

    Raises:
        ValueError: unknown name, or unknown parameter in a sub-section.
    """
    if name == "text":
        return _build(TextClassifier, _section(params, "text"), "text", random_state=seed)
    if name == "visual":
        return _build(VisualClassifier, _section(params, "visual"), "visual", random_state=seed)
    if name == "fusion":
        fusion = _section(params, "fusion")
        return _build(
            FusionClassifier,
            fusion,
            "fusion",
            text=make_candidate("text", params, seed),
            visual=make_candidate("visual", params, seed),
            random_state=seed,
        )
    if name == "transformer":
        from pipelines.transformer import TransformerClassifier

        return _build(
            TransformerClassifier, _section(params, "transformer"), "transformer", random_state=seed
        )
    raise ValueError(f"unknown candidate {name!r}: expected one of {', '.join(CANDIDATES)}")


# --------------------------------------------------------------------------------------------- persistence


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseEstimator):
        return {"class": type(value).__name__, "params": _jsonable(value.get_params(deep=False))}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved model depends on (absent ones omitted)."""
    versions = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn", "joblib", "torch", "transformers", "tokenizers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def candidate_name(model: Any) -> str:
    """The candidate name of a model ("text", "visual", "fusion", "transformer")."""
    name = getattr(type(model), "name", None)
    if name not in CANDIDATES:
        raise ValueError(
            f"expected a docclass candidate ({', '.join(CANDIDATES)}), found {type(model).__name__}"
        )
    return name


def save_model(model: Any, model_dir: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Save a fitted candidate and ``meta.json`` into ``model_dir`` (created if needed).

    The transformer is written with ``save_pretrained`` into ``model_dir/transformer``, every other candidate
    with joblib into ``model_dir/model.joblib``.

    Args:
        model: a fitted candidate.
        model_dir: target directory.
        meta: extra JSON-serialisable entries (e.g. dataset version, metrics); must not set params, created,
            versions or format, and candidate / classes only with the model's own values.

    Returns:
        The full metadata written.

    Raises:
        ValueError: unfitted model or a reserved key in ``meta``.
    """
    import joblib

    name = candidate_name(model)
    check_is_fitted(model, "classes_")
    own = {"candidate": name, "classes": [str(c) for c in model.classes_]}
    clash = sorted(k for k in set(meta) & set(_META_KEYS) if k not in own or _jsonable(meta[k]) != own[k])
    if clash:
        raise ValueError(
            f"meta must not set the reserved key(s) {clash}: save_model writes them "
            f"(candidate and classes may be given when they match the model: {own})"
        )
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if name == "transformer":
        model.save_pretrained(model_dir / TRANSFORMER_DIR)
    else:
        joblib.dump(model, model_dir / MODEL_FILE)
    full = {
        **_jsonable(dict(meta)),
        **own,
        "params": _jsonable(model.get_params(deep=False)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "format": 1,
    }
    (model_dir / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return full


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`save_model`.

    Returns:
        (model, meta).

    Raises:
        ModelLoadError: the directory, its meta.json or its model file is missing or unreadable, or the model
            does not match its metadata.
    """
    import joblib

    model_dir = Path(model_dir)
    meta_path = model_dir / META_FILE
    if not model_dir.is_dir():
        raise ModelLoadError(
            f"model directory {model_dir} does not exist: expected a directory from save_model"
        )
    if not meta_path.is_file():
        raise ModelLoadError(
            f"model directory {model_dir} has no {META_FILE}: expected a directory from save_model"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"unreadable {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("candidate") not in CANDIDATES or "classes" not in meta:
        raise ModelLoadError(
            f"{meta_path} is not docclass model metadata: expected keys candidate (one of "
            f"{', '.join(CANDIDATES)}) and classes"
        )
    if meta["candidate"] == "transformer":
        from pipelines.transformer import TransformerClassifier

        model = TransformerClassifier.from_pretrained(model_dir / TRANSFORMER_DIR)
    else:
        path = model_dir / MODEL_FILE
        if not path.is_file():
            raise ModelLoadError(f"model directory {model_dir} has no {MODEL_FILE}")
        try:
            model = joblib.load(path)
        except (
            OSError,
            EOFError,
            pickle.UnpicklingError,
            ValueError,
            AttributeError,
            ImportError,
            KeyError,
        ) as exc:
            raise ModelLoadError(f"unreadable model file {path}: {type(exc).__name__}: {exc}") from exc
    classes = [str(c) for c in getattr(model, "classes_", [])]
    if classes != meta["classes"] or getattr(type(model), "name", None) != meta["candidate"]:
        raise ModelLoadError(
            f"model in {model_dir} does not match {META_FILE}: expected {meta['candidate']} with classes "
            f"{meta['classes']}, found {type(model).__name__} with classes {classes}"
        )
    return model, meta

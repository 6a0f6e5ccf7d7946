"""Stack candidate: a logistic-regression meta-model over the out-of-fold probabilities of several views.

Each view is a candidate of its own (text, visual, title, semantic...: ``train.stack.views`` in params.yaml,
built by :func:`pipelines.models.factory.make_candidate`). Fitting is nested, so nothing a view learnt about a
training document reaches the meta-model as evidence about that document:

1. per view, out-of-fold probabilities of the training documents from stratified inner folds on the training
   part: a calibrated view made them already for its temperature (``oof_proba_``) and they are reused; any
   other view is fitted once per inner fold;
2. each view is refitted on all training documents: these predict new documents;
3. the meta-model, ``LogisticRegression(C)`` on ``log(clip(p, clip, 1))`` of the views' out-of-fold
   probabilities side by side, is fitted on those features;
4. the meta-model's own out-of-fold probabilities (cross-validated over the same features) give the stack's
   out-of-fold answers (``oof_proba_``, ``oof_confidence_``, ``oof_correct_``): its risk-coverage curve, from
   which :class:`pipelines.predict.ReviewRule` reads the ``needs_review`` threshold.

The probabilities are calibrated by construction: a logistic regression fitted on held-out evidence.

Beside the views' log-probabilities the meta-model can read the title-identifier features of
:mod:`pipelines.models.identifiers` (``identifiers``): per class, how strongly the form numbers of the title point
at it; for the training documents they are out of fold (same inner folds as the views'). With ``standardize`` every meta feature is standardised on the training documents first (the two kinds
of feature have different scales).

Which answers need review (``review_score``):

- ``max_probability``: the arg-max probability, as for every other candidate;
- ``margin_agree``: the margin of the best class over the second, minus 1 when any view's own answer differs from
  the stack's, so every disagreement ranks below every agreement. Out of fold it is computed from the meta-model's
  out-of-fold probabilities and the views' out-of-fold answers (``oof_review_score_``); the review threshold is
  read off that curve (:class:`pipelines.predict.ReviewRule`).

The "other" class (``other``):

- ``plain``: one class among the others (multinomial meta-model);
- ``open_set``: one-vs-rest meta-models for the positive classes only, each with a threshold fitted on its
  out-of-fold probabilities; the answer is "other" when no positive clears its threshold. Probabilities are the
  softmax of each positive's log-odds margin over its threshold beside 0 for "other", at a temperature fitted
  on the out-of-fold margins, so the arg-max is exactly that decision rule. Without an "other" class in the
  training labels there is nothing open: the stack falls back to ``plain`` and says so in ``combination_``.

Views that cannot be trained here (:class:`~pipelines.models.base.CandidateUnavailable`, e.g. a semantic view
without its model) are dropped with a logged reason (``dropped_views_``); the stack is unavailable only when
every view is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document
from pipelines.models.base import (
    CandidateUnavailable,
    PageMixin,
    _one_page_docs,
    _single_threaded_blas,
    _split_rows,
    calibration_folds,
    check_docs,
    check_labels,
    fit_temperature,
    negative_log_likelihood,
    record_out_of_fold,
    softmax,
)
from pipelines.models.identifiers import TitleIdentifierFeatures

log = logging.getLogger(__name__)

OTHER_MODES = ("plain", "open_set")
REVIEW_SCORES = ("max_probability", "margin_agree")
# the one candidate saved with save_pretrained instead of joblib: it cannot live inside a pickled stack
_NOT_PICKLED = "transformer"
# open-set thresholds stay inside (0, 1) so their log-odds are finite
_Q_EPS = 1e-6


def _aligned(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(n, len(classes)) probabilities from a model's columns (``model_classes``), zeros for classes it lacks."""
    cols = np.searchsorted(classes, model_classes)
    if np.any(cols >= len(classes)) or not np.array_equal(
        classes[np.minimum(cols, len(classes) - 1)], model_classes
    ):
        raise ValueError(f"expected a view over the classes {list(classes)}, found {list(model_classes)}")
    out = np.zeros((proba.shape[0], len(classes)))
    out[:, cols] = proba
    return out


def _logit(q: np.ndarray) -> np.ndarray:
    q = np.clip(q, _Q_EPS, 1.0 - _Q_EPS)
    return np.log(q) - np.log1p(-q)


def _meta_lr(C: float, standardize: bool = False) -> LogisticRegression | Pipeline:
    model = LogisticRegression(C=C, max_iter=5000)
    return make_pipeline(StandardScaler(), model) if standardize else model


def _classes_of(model: Any) -> np.ndarray:
    return np.asarray(model[-1].classes_ if isinstance(model, Pipeline) else model.classes_)


def best_binary_threshold(q: np.ndarray, positive: np.ndarray) -> float:
    """The threshold t on probabilities ``q`` whose rule ``q >= t`` best matches ``positive`` (accuracy).

    Candidates are the midpoints between consecutive distinct values of ``q`` (plus both ends); of equally good
    ones, the middle one is taken.
    """
    values = np.unique(np.asarray(q, dtype=np.float64))
    candidates = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2, [1.0]])
    positive = np.asarray(positive, dtype=bool)
    accuracy = np.array([np.mean((q >= t) == positive) for t in candidates])
    best = np.flatnonzero(accuracy >= accuracy.max() - 1e-12)
    return float(np.clip(candidates[best[len(best) // 2]], _Q_EPS, 1.0 - _Q_EPS))


class StackClassifier(PageMixin, ClassifierMixin, BaseEstimator):
    """Logistic regression on the log out-of-fold probabilities of several views (see the module docstring).

    Args:
        views: ``[(name, unfitted candidate), ...]``; cloned, never fitted in place.
        C: inverse regularisation strength of the meta-model, or a list of them: the one with the lowest
            out-of-fold log loss of the meta-model is used (``C_``).
        folds: at most this many stratified inner folds (fewer when the smallest class is smaller) for the
            out-of-fold probabilities of views that do not make their own, and for the meta-model's own.
        clip: probabilities are clipped to ``[clip, 1]`` before their logarithm (one confident view must not
            outvote the others by an unbounded amount).
        other: ``plain`` or ``open_set`` (how the "other" class is decided).
        other_label: the label of the open class.
        identifiers: append the title-identifier features (:mod:`pipelines.models.identifiers`) to the
            meta-model's inputs.
        identifier_chars: normalised title characters the identifier features read.
        identifier_common_share: share of a class's titles that makes an identifier one of its common ones.
        standardize: standardise the meta-model's inputs on the training documents.
        review_score: ``max_probability`` or ``margin_agree`` (what ``needs_review`` is read from).
        random_state: seed of the inner folds.
    """

    name = "stack"

    # No defaults: every value comes from train.stack in params.yaml (pipelines.models.make_candidate).
    def __init__(
        self,
        *,
        views: Sequence[tuple[str, Any]],
        C: float | Sequence[float],
        folds: int,
        clip: float,
        other: str,
        other_label: str,
        identifiers: bool,
        identifier_chars: int,
        identifier_common_share: float,
        standardize: bool,
        review_score: str,
        random_state: int,
    ) -> None:
        self.views = views
        self.C = C
        self.folds = folds
        self.clip = clip
        self.other = other
        self.other_label = other_label
        self.identifiers = identifiers
        self.identifier_chars = identifier_chars
        self.identifier_common_share = identifier_common_share
        self.standardize = standardize
        self.review_score = review_score
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------------ fit

    def _view_list(self) -> list[tuple[str, Any]]:
        if isinstance(self.views, str | bytes) or not isinstance(self.views, Sequence):
            raise ValueError(f"expected views as a list of (name, candidate) pairs, found {self.views!r}")
        views = list(self.views)
        names = []
        for entry in views:
            if not (isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise ValueError(f"expected views as (name, candidate) pairs, found {entry!r}")
            if getattr(type(entry[1]), "name", None) == _NOT_PICKLED:
                raise ValueError(
                    f"view {entry[0]!r} is a transformer: expected views saved inside the stack's pickle "
                    f"(the transformer is saved with save_pretrained); use it as a candidate of its own"
                )
            names.append(entry[0])
        if not names or len(set(names)) != len(names):
            raise ValueError(f"expected at least one view and unique view names, found {names}")
        return [(str(name), view) for name, view in views]

    def _check_params(self) -> None:
        if self.other not in OTHER_MODES:
            raise ValueError(f"expected other to be one of {', '.join(OTHER_MODES)}, found {self.other!r}")
        grid = self.C if isinstance(self.C, list | tuple) else [self.C]
        if not grid or any(not isinstance(c, int | float) or not c > 0 for c in grid):
            raise ValueError(
                f"expected a positive meta-model C or a non-empty list of them, found {self.C!r}"
            )
        if self.review_score not in REVIEW_SCORES:
            raise ValueError(
                f"expected review_score to be one of {', '.join(REVIEW_SCORES)}, found {self.review_score!r}"
            )
        if int(self.folds) < 2:
            raise ValueError(f"expected at least 2 inner folds, found {self.folds!r}")
        if not 0.0 < self.clip < 1.0:
            raise ValueError(f"expected clip in (0, 1), found {self.clip!r}")

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> StackClassifier:
        """Fit the views (with their out-of-fold probabilities) and the meta-model; returns self.

        Raises:
            ValueError: bad parameters, fewer than 2 classes or a length mismatch.
            CandidateUnavailable: no view can be trained here.
        """
        self._check_params()
        views = self._view_list()
        docs = check_docs(X)
        labels = check_labels(y, len(docs))
        self.classes_ = np.unique(labels)
        y_idx = np.searchsorted(self.classes_, labels)
        k = calibration_folds(y_idx, int(self.folds))
        self.views_: list[tuple[str, Any]] = []
        self.dropped_views_: dict[str, str] = {}
        self.view_oof_source_: dict[str, str] = {}
        oof: list[np.ndarray] = []
        for name, view in views:
            try:
                fitted, view_oof, source = self._fit_view(view, docs, labels, y_idx, k)
            except CandidateUnavailable as error:
                log.warning("stack view %s dropped: %s", name, error.reason)
                self.dropped_views_[name] = error.reason
                continue
            self.views_.append((name, fitted))
            self.view_oof_source_[name] = source
            if view_oof is not None:
                oof.append(view_oof)
        if not self.views_:
            reasons = "; ".join(f"{name}: {reason}" for name, reason in self.dropped_views_.items())
            raise CandidateUnavailable(f"no view of the stack can be trained here ({reasons})")
        self.identifiers_: TitleIdentifierFeatures | None = None
        extra = None
        if self.identifiers:
            self.identifiers_ = TitleIdentifierFeatures(
                max_chars=int(self.identifier_chars), common_share=float(self.identifier_common_share)
            )
            if k == 0:
                self.identifiers_.fit(docs, y_idx, len(self.classes_))
            else:
                splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state)
                folds = list(splitter.split(np.zeros(len(docs)), y_idx))
                extra = self.identifiers_.fit_transform(docs, y_idx, len(self.classes_), folds)
        with _single_threaded_blas():
            self._fit_meta(oof, y_idx, k, extra)
        return self

    def _fit_view(
        self, view: Any, docs: list[Document], labels: np.ndarray, y_idx: np.ndarray, k: int
    ) -> tuple[Any, np.ndarray | None, str]:
        """The view fitted on all documents, its out-of-fold probabilities (None when k == 0) and their source."""
        fitted = clone(view).fit(docs, list(labels))
        if k == 0:
            return fitted, None, "none: a class has a single document"
        own = getattr(fitted, "oof_proba_", None)
        if (
            own is not None
            and np.shape(own) == (len(docs), len(self.classes_))
            and np.array_equal(np.asarray(fitted.classes_).astype(str), self.classes_)
        ):
            return fitted, np.asarray(own, dtype=np.float64), "the view's own calibration folds"
        oof = np.zeros((len(docs), len(self.classes_)))
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state)
        for train_idx, test_idx in splitter.split(np.zeros(len(docs)), y_idx):
            part = clone(view).fit([docs[i] for i in train_idx], [str(labels[i]) for i in train_idx])
            held = [docs[i] for i in test_idx]
            oof[test_idx] = _aligned(
                part.predict_proba(held), np.asarray(part.classes_).astype(str), self.classes_
            )
        return fitted, oof, f"{k} stratified inner folds"

    def _features(self, probas: Sequence[np.ndarray], extra: np.ndarray | None) -> np.ndarray:
        blocks = [np.log(np.clip(p, self.clip, 1.0)) for p in probas]
        return np.hstack(blocks + ([] if extra is None else [extra]))

    def _grid(self) -> list[float]:
        grid: Sequence[float] = self.C if isinstance(self.C, list | tuple) else [float(self.C)]  # type: ignore[arg-type]
        return [float(c) for c in grid]

    def _fit_meta(self, oof: list[np.ndarray], y_idx: np.ndarray, k: int, extra: np.ndarray | None) -> None:
        names = "+".join(name for name, _ in self.views_)
        self.meta_: Any = None
        self.thresholds_: np.ndarray | None = None
        self.temperature_ = 1.0
        self.other_mode_ = "plain"
        self.C_: float | None = None
        self.oof_log_loss_: dict[float, float] = {}
        if k == 0:
            self.combination_ = (
                f"geometric mean of {names}: a class has a single document, so there are no out-of-fold "
                f"probabilities to fit a meta-model on"
            )
            log.warning("stack: %s", self.combination_)
            self.oof_proba_ = None
            self.oof_review_score_ = None
            record_out_of_fold(self, None, y_idx)
            return
        Z = self._features(oof, extra)
        folds = list(
            StratifiedKFold(n_splits=k, shuffle=True, random_state=self.random_state + 1).split(Z, y_idx)
        )
        other, reason = self.other, ""
        if other == "open_set" and self.other_label not in self.classes_:
            other = "plain"
            reason = f" (open_set asked, but no {self.other_label!r} class in the training labels)"
        self.other_mode_ = other
        fits = {C: self._out_of_fold(Z, y_idx, folds, C) for C in self._grid()}
        self.oof_log_loss_ = {C: negative_log_likelihood(fit[0], y_idx) for C, fit in fits.items()}
        best = min(self.oof_log_loss_.values())
        self.C_ = next(C for C in fits if self.oof_log_loss_[C] <= best + 1e-12)
        oof_proba, self.thresholds_, self.temperature_ = fits[self.C_]
        if other == "plain":
            self.meta_ = _meta_lr(self.C_, self.standardize).fit(Z, y_idx)
        else:
            self.meta_ = [
                _meta_lr(self.C_, self.standardize).fit(Z, y_idx == cls) for cls in self._positives()
            ]
        chosen = (
            f"C={self.C_:g}" if len(fits) == 1 else f"C={self.C_:g} of {self._grid()} by out-of-fold log loss"
        )
        inputs = f"the {len(self.views_)} views' ({names}) out-of-fold log-probabilities"
        if extra is not None:
            inputs += " and the title-identifier features"
        self.combination_ = (
            f"{other}{reason}: {'standardised ' if self.standardize else ''}LogisticRegression({chosen}) on "
            f"{inputs}; its own out-of-fold answers from {k} folds; review score {self.review_score}"
        )
        self.oof_proba_ = oof_proba
        record_out_of_fold(self, oof_proba, y_idx)
        self.oof_review_score_ = self._review_scores(oof_proba, oof)

    def _positives(self) -> np.ndarray:
        return np.flatnonzero(self.classes_ != self.other_label)

    def _out_of_fold(
        self, Z: np.ndarray, y_idx: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], C: float
    ) -> tuple[np.ndarray, np.ndarray | None, float]:
        """The meta-model's out-of-fold probabilities at ``C`` (with, for open_set, the thresholds and the
        temperature fitted on them): ``(proba, thresholds, temperature)``."""
        n_classes = len(self.classes_)
        if self.other_mode_ == "plain":
            proba = np.zeros((len(y_idx), n_classes))
            for train_idx, test_idx in folds:
                meta = _meta_lr(C, self.standardize).fit(Z[train_idx], y_idx[train_idx])
                proba[test_idx] = _aligned(
                    meta.predict_proba(Z[test_idx]), _classes_of(meta), np.arange(n_classes)
                )
            return proba, None, 1.0
        positives = self._positives()
        q_oof = np.zeros((len(y_idx), len(positives)))
        for train_idx, test_idx in folds:
            for j, cls in enumerate(positives):
                model = _meta_lr(C, self.standardize).fit(Z[train_idx], y_idx[train_idx] == cls)
                q_oof[test_idx, j] = model.predict_proba(Z[test_idx])[:, 1]
        thresholds = np.array(
            [best_binary_threshold(q_oof[:, j], y_idx == cls) for j, cls in enumerate(positives)]
        )
        scores = self._open_scores(q_oof, thresholds)
        temperature = fit_temperature(scores, y_idx)
        return softmax(scores, temperature), thresholds, temperature

    def _open_scores(self, q: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """(n, n_classes) scores: each positive's log-odds over its threshold, 0 for the open class."""
        scores = np.zeros((q.shape[0], len(self.classes_)))
        scores[:, self._positives()] = _logit(q) - _logit(thresholds)
        return scores

    # -------------------------------------------------------------------------------------------- predict

    def _review_scores(self, proba: np.ndarray | None, probas: Sequence[np.ndarray]) -> np.ndarray | None:
        """The review score of each answer in ``proba`` given the views' probabilities (``review_score``)."""
        if proba is None:
            return None
        # a stack pickled before review scores existed answers with its maximum probability
        if getattr(self, "review_score", "max_probability") == "max_probability" or len(proba) == 0:
            return proba.max(axis=1) if len(proba) else np.zeros(0)
        top = np.sort(proba, axis=1)
        margin = top[:, -1] - (top[:, -2] if proba.shape[1] > 1 else 0.0)
        answer = proba.argmax(axis=1)
        agree = np.ones(len(proba), dtype=bool)
        for view_proba in probas:
            agree &= np.asarray(view_proba).argmax(axis=1) == answer
        return margin - 1.0 * ~agree

    def _extra(self, docs: Sequence[Document]) -> np.ndarray | None:
        identifiers = getattr(self, "identifiers_", None)
        return None if identifiers is None else identifiers.transform(docs)

    def _combine(self, probas: Sequence[np.ndarray], extra: np.ndarray | None) -> np.ndarray:
        if self.meta_ is None:
            return softmax(np.mean([np.log(np.clip(p, self.clip, 1.0)) for p in probas], axis=0))
        Z = self._features(probas, extra)
        if self.other_mode_ == "plain":
            return _aligned(
                self.meta_.predict_proba(Z), _classes_of(self.meta_), np.arange(len(self.classes_))
            )
        q = np.column_stack([model.predict_proba(Z)[:, 1] for model in self.meta_])
        assert self.thresholds_ is not None  # set with the open-set meta-models
        return softmax(self._open_scores(q, self.thresholds_), self.temperature_)

    def _view_probas(self, docs: list[Document]) -> list[np.ndarray]:
        return [
            _aligned(view.predict_proba(docs), np.asarray(view.classes_).astype(str), self.classes_)
            for _, view in self.views_
        ]

    def predict_proba_scored(self, X: Sequence[Document]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of the meta-model (columns in ``classes_`` order) and each answer's review score."""
        check_is_fitted(self, "views_")
        docs = check_docs(X)
        if not docs:
            return np.zeros((0, len(self.classes_))), np.zeros(0)
        probas = self._view_probas(docs)
        proba = self._combine(probas, self._extra(docs))
        score = self._review_scores(proba, probas)
        assert score is not None
        return proba, score

    def predict_proba(self, X: Sequence[Document]) -> np.ndarray:
        """(n_docs, n_classes) probabilities of the meta-model, columns in ``classes_`` order."""
        return self.predict_proba_scored(X)[0]

    def predict_pages_proba_scored(self, docs: Sequence[Document]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per page of each document (each page a one-page document): the meta-model's probabilities through
        every view's page probabilities, and each page answer's review score."""
        check_is_fitted(self, "views_")
        docs = check_docs(docs)
        counts = [doc.n_pages for doc in docs]
        if sum(counts) == 0:
            return [(np.zeros((0, len(self.classes_))), np.zeros(0)) for _ in docs]
        probas = []
        for _, view in self.views_:
            rows = np.vstack(view.predict_pages_proba(docs))
            probas.append(_aligned(rows, np.asarray(view.classes_).astype(str), self.classes_))
        flat, _ = _one_page_docs(docs)
        proba = self._combine(probas, self._extra(flat))
        score = self._review_scores(proba, probas)
        assert score is not None
        return list(zip(_split_rows(proba, counts), _split_rows(score, counts), strict=True))

    def predict_pages_proba(self, docs: Sequence[Document]) -> list[np.ndarray]:
        """Per-page probabilities of each document: every view's page probabilities, through the meta-model.

        Returns:
            One (n_pages, n_classes) array per document ((0, n_classes) for a document without pages).
        """
        return [proba for proba, _ in self.predict_pages_proba_scored(docs)]

    @property
    def recipe(self) -> str:
        """What this stack is made of, e.g. ``stack(text+visual, plain)`` (views actually used once fitted)."""
        views = self.views_ if hasattr(self, "views_") else list(self.views)
        mode = getattr(self, "other_mode_", self.other)
        names = [name for name, _ in views] + (["identifiers"] if getattr(self, "identifiers", False) else [])
        return f"stack({'+'.join(names)}, {mode})"

"""Fusion candidate: weighted geometric mean of the calibrated text and visual probabilities."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document
from pipelines.features import document_texts, has_words
from pipelines.models.base import (
    _EPS,
    PageMixin,
    check_docs,
    check_labels,
    negative_log_likelihood,
    record_out_of_fold,
    softmax,
)
from pipelines.models.text import TextClassifier
from pipelines.models.visual import VisualClassifier

log = logging.getLogger(__name__)


class FusionClassifier(PageMixin, ClassifierMixin, BaseEstimator):
    """Weighted geometric mean of the calibrated text and visual probabilities, renormalised.

    ``p ~ p_text ** (1 - w) * p_visual ** w``; ``w`` is the entry of ``weights`` with the lowest out-of-fold
    log loss (first one on ties). A document without any word (a scan whose OCR found nothing) uses the visual
    model alone: its text probabilities carry no evidence.

    Args:
        text: the text candidate; cloned, never fitted in place.
        visual: the visual candidate; cloned.
        weights: candidate weights of the visual model.
        random_state: passed to both parts so their calibration folds agree.
    """

    name = "fusion"

    # No defaults: the parts come from train.text and train.visual, the weights from train.fusion.
    def __init__(
        self,
        *,
        text: TextClassifier,
        visual: VisualClassifier,
        weights: tuple[float, ...],
        random_state: int,
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
        docs = check_docs(X)
        labels = check_labels(y, len(docs))
        text = clone(self.text)
        visual = clone(self.visual)
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
            record_out_of_fold(self, None, np.zeros(0))
            return self
        y_idx = np.searchsorted(self.classes_, labels)
        oof = {}
        for w in weights:
            oof[w] = self._combine(self.text_.oof_proba_, self.visual_.oof_proba_, w, no_text)
            self.oof_log_loss_[w] = negative_log_likelihood(oof[w], y_idx)
        best = min(self.oof_log_loss_.values())
        self.weight_ = next(w for w in weights if self.oof_log_loss_[w] <= best + 1e-12)
        # the fused out-of-fold answers at the chosen weight: the risk-coverage curve of its review threshold
        # (one weight chosen on them: a slight optimism, far less than in-sample answers)
        record_out_of_fold(self, oof[self.weight_], y_idx)
        self.selection_ = f"visual weight {self.weight_} by out-of-fold log loss {best:.4f}"
        log.debug(self.selection_)
        return self

    def predict_proba(self, X: Sequence[Document]) -> np.ndarray:
        """Fused (n_docs, n_classes) probabilities."""
        check_is_fitted(self, "weight_")
        docs = check_docs(X)
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

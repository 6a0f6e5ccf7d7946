"""HOG candidate: histograms of oriented gradients of the first page thumbnail, logistic regression."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from pipelines.document import Document
from pipelines.features import document_hog_features
from pipelines.models.base import CalibratedClassifier, checked_scores


class HogClassifier(CalibratedClassifier):
    """HOG of the first page image (:func:`pipelines.features.hog_features`), logistic regression, calibrated.

    Uses no text, so it recognises a form's layout on scans and photos whose OCR is poor: the boxes, rules and
    headings of a W-9 are the same whether it is blank, filled, born digital or scanned.

    Args:
        C: inverse regularisation strength of the logistic regression.
        calibration_folds: at most this many out-of-fold folds for the temperature (< 2 disables).
        random_state: seed of the calibration folds.
    """

    name = "hog"

    # No defaults: every value comes from train.hog in params.yaml (pipelines.models.make_candidate).
    def __init__(self, *, C: float, calibration_folds: int, random_state: int) -> None:
        self.C = C
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _prepare(self, docs: list[Document]) -> np.ndarray:
        return document_hog_features(docs)

    def _fit_core(self, features: np.ndarray, y_idx: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=3000).fit(features, y_idx)

    def _core_scores(self, core: LogisticRegression, features: np.ndarray) -> np.ndarray:
        return checked_scores(core.decision_function(features), core.classes_, len(self.classes_))

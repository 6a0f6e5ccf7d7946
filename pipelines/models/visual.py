"""Visual candidate: layout features of the first page image(s), logistic regression, calibrated."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipelines.document import Document
from pipelines.features import document_layout_features
from pipelines.models.base import (
    CalibratedClassifier,
    checked_scores,
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

    # No defaults: every value comes from train.visual in params.yaml (pipelines.models.make_candidate).
    def __init__(self, *, C: float, pages: int, calibration_folds: int, random_state: int) -> None:
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

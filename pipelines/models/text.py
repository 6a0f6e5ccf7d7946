"""Text candidate: TF-IDF word + character n-grams, linear SVM, temperature-calibrated."""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from pipelines.document import Document
from pipelines.features import TextVectorizer, document_texts
from pipelines.models.base import (
    CalibratedClassifier,
    checked_scores,
)


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
        keep_identifiers: form numbers and codes keep their digits ("1040", "w-9"; see
            :func:`~pipelines.features.normalize_text`); other digits become 0 either way.
        calibration_folds: at most this many out-of-fold folds for the temperature (< 2 disables).
        random_state: seed of the calibration folds.
    """

    name = "text"

    # No defaults: every value comes from train.text in params.yaml (pipelines.models.make_candidate).
    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int],
        char_ngrams: tuple[int, int],
        max_features: int,
        C: float,
        max_chars: int,
        keep_identifiers: bool,
        calibration_folds: int,
        random_state: int,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.C = C
        self.max_chars = max_chars
        self.keep_identifiers = keep_identifiers
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _prepare(self, docs: list[Document]) -> list[str]:
        return document_texts(docs, self.max_chars, self.keep_identifiers)

    def _fit_core(self, features: list[str], y_idx: np.ndarray) -> tuple[TextVectorizer, LinearSVC]:
        vectorizer = TextVectorizer(
            word_ngrams=(int(self.word_ngrams[0]), int(self.word_ngrams[1])),
            char_ngrams=(int(self.char_ngrams[0]), int(self.char_ngrams[1])),
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

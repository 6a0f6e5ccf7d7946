"""Title candidate: TF-IDF of the text (identifiers kept) beside TF-IDF of the title, logistic regression."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from pipelines.document import Document
from pipelines.features import TextVectorizer, document_titles, has_words, normalize_text
from pipelines.models.base import CalibratedClassifier, check_docs, checked_scores

log = logging.getLogger(__name__)

TitleFeatures = list[tuple[str, str]]  # (normalised text, normalised title) per document
TitleCore = tuple[TextVectorizer, TextVectorizer | None, LogisticRegression]


class TitleClassifier(CalibratedClassifier):
    """Word + ``char_wb`` TF-IDF of the first pages' text and, as its own block, of the first page's title.

    Text and title are normalised with identifiers kept ("form 1040", "w-9", "1099-nec"). The title (the
    text set largest and the top band of the page, :mod:`pipelines.title`) gets its own vocabulary and idf,
    so "Form W-9" in a heading weighs apart from "W-9" in a sentence. One multinomial logistic regression over
    both blocks, temperature-calibrated out of fold. When no training document has a title (a dataset
    extracted before titles existed), the model uses the text block alone and says so in the log.

    Args:
        word_ngrams: word n-gram range of both blocks.
        char_ngrams: ``char_wb`` n-gram range of both blocks.
        max_features: vocabulary cap of each TF-IDF part (None = no cap).
        C: inverse regularisation strength of the logistic regression.
        pages: leading pages whose text is used.
        max_chars: normalised characters of text used per document (bounds prediction time).
        title_chars: normalised characters of title used per document.
        title_weight: multiplies the title block (1 = as much as the text block).
        calibration_folds: at most this many out-of-fold folds for the temperature (< 2 disables).
        random_state: seed of the calibration folds.
    """

    name = "title"

    # No defaults: every value comes from train.title in params.yaml (pipelines.models.make_candidate).
    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int],
        char_ngrams: tuple[int, int],
        max_features: int | None,
        C: float,
        pages: int,
        max_chars: int,
        title_chars: int,
        title_weight: float,
        calibration_folds: int,
        random_state: int,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.C = C
        self.pages = pages
        self.max_chars = max_chars
        self.title_chars = title_chars
        self.title_weight = title_weight
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> TitleClassifier:
        """Fit on documents ``X`` with string labels ``y``; returns self (logs when no document has a title)."""
        docs = check_docs(X)
        if not any(page.title.strip() for doc in docs for page in doc.pages[:1]):
            log.warning(
                "title candidate: none of the %d training documents has a title (extracted before titles "
                "existed? extract them again): the text block is used alone",
                len(docs),
            )
        return super().fit(docs, y)

    def _prepare(self, docs: list[Document]) -> TitleFeatures:
        if self.pages < 1:
            raise ValueError(f"train.title.pages is {self.pages}: expected 1 or more")
        texts = [
            normalize_text("\n".join(page.text for page in doc.pages[: self.pages]), self.max_chars, True)
            for doc in docs
        ]
        titles = document_titles(docs, self.title_chars)
        return list(zip(texts, titles, strict=True))

    def _vectorizer(self) -> TextVectorizer:
        word, char = self.word_ngrams, self.char_ngrams
        return TextVectorizer(
            word_ngrams=(int(word[0]), int(word[1])),
            char_ngrams=(int(char[0]), int(char[1])),
            max_features=self.max_features,
        )

    def _matrix(self, core: TitleCore, features: TitleFeatures) -> sp.csr_matrix:
        text_vectorizer, title_vectorizer, _ = core
        blocks = [text_vectorizer.transform([text for text, _ in features])]
        if title_vectorizer is not None:
            titles = title_vectorizer.transform([title for _, title in features])
            blocks.append(titles * float(self.title_weight))
        return sp.hstack(blocks, format="csr")

    def _fit_core(self, features: TitleFeatures, y_idx: np.ndarray) -> TitleCore:
        text_vectorizer = self._vectorizer().fit([text for text, _ in features])
        titles = [title for _, title in features]
        title_vectorizer: TextVectorizer | None = None
        if any(has_words(title) for title in titles):
            title_vectorizer = self._vectorizer().fit(titles)
        else:
            log.debug("title candidate: no title among %d documents: the text block alone", len(titles))
        core: TitleCore = (text_vectorizer, title_vectorizer, LogisticRegression(C=self.C, max_iter=3000))
        core[2].fit(self._matrix(core, features), y_idx)
        return core

    def _core_scores(self, core: TitleCore, features: TitleFeatures) -> np.ndarray:
        clf = core[2]
        return checked_scores(
            clf.decision_function(self._matrix(core, features)), clf.classes_, len(self.classes_)
        )

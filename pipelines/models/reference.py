"""The plain reference of issue 11: the ten-line baseline every candidate is judged against.

TF-IDF word 1-2-grams + ``char_wb`` 3-5-grams on the text of the first two pages, scikit-learn
``LogisticRegression(C=20)``, nothing else: raw page text (scikit-learn's own lower-casing and tokenising, no
``normalize_text``), library defaults everywhere else, and the logistic regression's own ``predict_proba``
(no calibration, no tuning). It is deliberately not improved: a candidate is worth shipping only when it beats
this in the same benchmark run on the same splits (``make bench``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document
from pipelines.models.base import PageMixin, check_docs, check_labels


def leading_text(doc: Document, pages: int) -> str:
    """The raw text of the first ``pages`` pages of ``doc``, one line break between pages."""
    return "\n".join(page.text for page in doc.pages[:pages])


class ReferenceClassifier(PageMixin, ClassifierMixin, BaseEstimator):
    """TF-IDF word + ``char_wb`` n-grams of the first pages, logistic regression; probabilities uncalibrated.

    Args:
        word_ngrams: word n-gram range.
        char_ngrams: ``char_wb`` n-gram range.
        C: inverse regularisation strength of the logistic regression.
        pages: leading pages whose text is used.
        random_state: passed to the logistic regression (its default lbfgs solver does not use it).
    """

    name = "reference"

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (3, 5),
        C: float = 20.0,
        pages: int = 2,
        random_state: int = 42,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.C = C
        self.pages = pages
        self.random_state = random_state

    def _texts(self, docs: Sequence[Document]) -> list[str]:
        return [leading_text(doc, self.pages) for doc in docs]

    def _matrix(self, texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([self.word_.transform(texts), self.char_.transform(texts)]).tocsr()

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> ReferenceClassifier:
        """Fit on documents ``X`` with string labels ``y``; returns self.

        Raises:
            ValueError: fewer than 2 classes, length mismatch, or no words in any training document.
        """
        docs = check_docs(X)
        labels = check_labels(y, len(docs))
        texts = self._texts(docs)
        if not any(text.strip() for text in texts):
            raise ValueError(
                f"the reference needs text: expected words in the first {self.pages} page(s) of some of the "
                f"{len(docs)} training documents, found none"
            )
        self.word_ = TfidfVectorizer(ngram_range=tuple(self.word_ngrams))
        self.char_ = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngrams))
        word = self.word_.fit_transform(texts)
        char = self.char_.fit_transform(texts)
        self.clf_ = LogisticRegression(C=self.C, random_state=self.random_state).fit(
            sp.hstack([word, char]).tocsr(), labels
        )
        self.classes_ = self.clf_.classes_
        return self

    def decision_function(self, X: Sequence[Document]) -> np.ndarray:
        """(n_docs, n_classes) logistic-regression scores (for two classes, the margin of ``classes_[1]``)."""
        check_is_fitted(self, "clf_")
        docs = check_docs(X)
        return self.clf_.decision_function(self._matrix(self._texts(docs)))

    def predict_proba(self, X: Sequence[Document]) -> np.ndarray:
        """(n_docs, n_classes) probabilities of the logistic regression as they are, columns in ``classes_``."""
        check_is_fitted(self, "clf_")
        docs = check_docs(X)
        if not docs:
            return np.zeros((0, len(self.classes_)))
        return self.clf_.predict_proba(self._matrix(self._texts(docs)))

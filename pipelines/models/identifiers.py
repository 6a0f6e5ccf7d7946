"""Title-identifier features: how strongly the form numbers in a document's title point at each class.

A title ("Form W-9 Request for Taxpayer...", "Form 1040 U.S. Individual Income Tax Return", "Form 6251
Alternative Minimum Tax") names its document far better than its body does, and the name is usually an
identifier. TF-IDF sees "6251" as one more rare token among thousands; these features say directly whether the
title's identifiers are the ones a class's training titles carry. Per class ``c`` (3 numbers each):

- ``share``: the largest, over the document's title identifiers, share of ``c``'s training titles holding it;
- ``jaccard``: Jaccard similarity of the document's title identifiers with ``c``'s common ones (held by at
  least ``common_share`` of its titles);
- ``primary``: the share of ``c``'s training titles whose first identifier is the document's first one.

A form of another kind ("6251" in an "other" training title, never in a 1040's) thus pulls away from the class
whose number it only resembles. The training documents' own features (:meth:`fit_transform`) are out of fold:
each document's come from the statistics of the other folds, so they never depend on its own label. (Leaving
only the document itself out would leak: its own class's share would be the one lowered by its absence, a
signal a meta-model learns on pure noise.)

Identifiers are the identifier-shaped tokens of :func:`pipelines.features.normalize_text` that hold a digit
("1040", "w-9", "6251", "1099-nec"), hyphens dropped ("w9", "1099nec"), without 1-2 digit numbers and years
(1900-2099), which name nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from pipelines.document import Document
from pipelines.features import is_identifier, normalize_text

_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
FEATURES_PER_CLASS = 3


def title_identifiers(title: str, max_chars: int) -> list[str]:
    """The identifiers of a title, in reading order (see the module docstring)."""
    out = []
    for token in normalize_text(title, max_chars, keep_identifiers=True).split():
        if not is_identifier(token):  # every identifier holds a digit
            continue
        if token.isdigit() and (len(token) < 3 or _YEAR.fullmatch(token)):
            continue
        out.append(token.replace("-", ""))
    return out


def _first_page_title(doc: Document) -> str:
    return doc.pages[0].title if doc.pages else ""


class TitleIdentifierFeatures:
    """Per-class title-identifier statistics of training documents (see the module docstring).

    Args:
        max_chars: normalised title characters read per document.
        common_share: an identifier held by at least this share of a class's titles is one of its common ones.
    """

    def __init__(self, *, max_chars: int, common_share: float) -> None:
        if not 0.0 < common_share <= 1.0:
            raise ValueError(f"expected common_share in (0, 1], found {common_share!r}")
        self.max_chars = max_chars
        self.common_share = common_share

    def _identifiers(self, docs: Sequence[Document]) -> list[list[str]]:
        return [title_identifiers(_first_page_title(doc), self.max_chars) for doc in docs]

    def fit(self, docs: Sequence[Document], y_idx: np.ndarray, n_classes: int) -> TitleIdentifierFeatures:
        """Learn the per-class statistics of ``docs`` (labels ``y_idx``: column indices); returns self."""
        self._learn(self._identifiers(docs), np.asarray(y_idx), n_classes)
        return self

    def fit_transform(
        self,
        docs: Sequence[Document],
        y_idx: np.ndarray,
        n_classes: int,
        folds: Sequence[tuple[np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """Learn the statistics of all ``docs`` and return their out-of-fold features: the rows of each fold's
        held-out part from the statistics of its training part. ``(n_docs, 3 * n_classes)``."""
        ids = self._identifiers(docs)
        y_idx = np.asarray(y_idx)
        out = np.zeros((len(ids), FEATURES_PER_CLASS * n_classes))
        for train_idx, test_idx in folds:
            part = TitleIdentifierFeatures(max_chars=self.max_chars, common_share=self.common_share)
            part._learn([ids[i] for i in train_idx], y_idx[train_idx], n_classes)
            out[test_idx] = part._rows([ids[i] for i in test_idx])
        self._learn(ids, y_idx, n_classes)
        return out

    def transform(self, docs: Sequence[Document]) -> np.ndarray:
        """Features of new documents: ``(n_docs, 3 * n_classes)``."""
        return self._rows(self._identifiers(docs))

    def _learn(self, ids: list[list[str]], y_idx: np.ndarray, n_classes: int) -> None:
        self.n_classes_ = int(n_classes)
        self.count_ = [Counter[str]() for _ in range(n_classes)]
        self.primary_ = [Counter[str]() for _ in range(n_classes)]
        self.n_ = np.bincount(y_idx, minlength=n_classes).astype(int)
        for doc_ids, cls in zip(ids, y_idx, strict=True):
            self.count_[cls].update(set(doc_ids))
            if doc_ids:
                self.primary_[cls][doc_ids[0]] += 1

    def _rows(self, ids: list[list[str]]) -> np.ndarray:
        return np.array([self._row(doc_ids) for doc_ids in ids]).reshape(
            len(ids), FEATURES_PER_CLASS * self.n_classes_
        )

    def _row(self, ids: list[str]) -> np.ndarray:
        k = self.n_classes_
        row = np.zeros(FEATURES_PER_CLASS * k)
        present = set(ids)
        primary = ids[0] if ids else ""
        for c in range(k):
            counts, n = self.count_[c], int(self.n_[c])
            n_primary = self.primary_[c][primary] if primary else 0
            if n <= 0:
                continue
            if present:
                row[c] = max(counts[t] for t in present) / n
                common = {t for t, v in counts.items() if v / n >= self.common_share}
                row[k + c] = len(present & common) / len(present | common)
            if primary:
                row[2 * k + c] = n_primary / n
        return row

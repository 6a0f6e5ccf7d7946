"""Split a multi-document bundle into its documents: per-page class scores and boundary evidence, decoded jointly.

A bundle of n pages is read as a sequence of hidden states, one per page: the page's class and whether the page
starts a new document. :func:`decode` finds the best state sequence with the Viterbi algorithm:

    score = sum_t log p_class(c_t | page t)                           page class scores of the classifier
          + boundary_weight * sum_t log P(s_t | page t-1, page t)     the boundary model, s_t = starts a document
          - transition_penalty * (number of documents - 1)

where a page that continues a document must keep its class. So a class change forces a boundary, a strong
boundary cue ("Page 1 of 3", a form title, a new letterhead) opens a new document of the same class, and a
continuation cue ("Page 2", "(continued)", the same header and identifiers as the previous page) keeps an
ambiguous page inside its document even when its own class scores disagree.

The boundary model (:class:`PageSplitter`) is a logistic regression on features of consecutive page pairs. Its
training data comes from labelled documents alone: consecutive pages of a document are continuations, and the
last page of one document followed by the first page of another (random pairs, classes mixed or equal) are
boundaries. One feature is itself learned: a "looks like a first page" text model over the top and bottom of
the page, whose out-of-fold scores feed the boundary model so it is not trusted more than it deserves.

Everything here is pure: no I/O except :func:`save_splitter` / :func:`load_splitter`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document, Page
from pipelines.features import as_thumbnail, normalize_text
from pipelines.models import ModelLoadError
from pipelines.params import SplitParams, validate_section

log = logging.getLogger(__name__)

SPLITTER_FILE = "splitter.joblib"
_EPS = 1e-6
_TEXT_CHARS = 3000  # normalised characters per page used for similarity (bounds the cost of long pages)
_HEAD_CHARS = 200
_TOP_CHARS = 300  # what the first-page text model reads: the top of the page ...
_BOTTOM_CHARS = 200  # ... and its bottom (page numbers, footers)

# "Page 2", "Page 2 of 6", "page 2/6", "2 of 6" near the top or bottom of a page.
_PAGE_OF = re.compile(r"\bpage\s*(\d{1,3})(?:\s*(?:of|/)\s*(\d{1,3}))?\b", re.IGNORECASE)
_K_OF_N = re.compile(r"(?<![\w.,/-])(\d{1,3})\s+of\s+(\d{1,3})(?![\w.,/-])", re.IGNORECASE)
_CONTINUED = re.compile(r"\(?\bcontinued\b|\bcont'?d\b", re.IGNORECASE)
# running header of a form's later pages: "Form W-9 (Rev. 10-2018)", "Schedule C (Form 1040) 2022"
_RUNNING_HEADER = re.compile(
    r"^\W*(?:form|schedule)\s+[\w-]+\s*(?:\([^)]{0,40}\))?\s*(?:\(\s*(?:rev\.?|form|\d{4})|\d{4})",
    re.IGNORECASE,
)
_TITLE = re.compile(
    r"\b(?:form|schedule|invoice|statement|receipt|agreement|certificate|pay\s*slip|pay\s*stub|earnings|"
    r"request|return|notice|order|contract|dear)\b",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"\b(?=[\w-]*\d)[\w-]{4,}\b")

FEATURES: tuple[str, ...] = (
    "text_similarity",  # cosine of character n-grams, previous vs current page
    "head_similarity",  # same for the first lines (running headers, letterheads)
    "no_text",  # either page has no readable text
    "identifier_overlap",  # Jaccard of number-bearing tokens (account, invoice, form numbers, dates)
    "page_is_1",  # "Page 1", "1 of 3"
    "page_after_1",  # "Page 2", "3 of 6"
    "page_sequence",  # previous page k (of n), this page k + 1 (of n)
    "previous_was_last",  # previous page said "k of k"
    "continued",  # "(continued)" near the top
    "running_header",  # "Form W-9 (Rev. 10-2018)" at the top: a later page of a form
    "title_at_top",  # a document title word near the top
    "first_page_score",  # out-of-fold logit of the learned first-page text model (0 without it)
    "layout_difference",  # mean absolute difference of coarse ink maps
    "header_difference",  # same on the top sixth of the page
    "ink_difference",
    "grey_difference",  # scan background vs white paper
    "source_change",  # text layer vs OCR vs nothing
    "rotation_change",
    "blank",  # this page has no ink
    "length_ratio",  # |log| ratio of text lengths
)

# Boundary log-odds without learned weights (fallback when a model directory has no splitter): cue weights on
# the raw features, chosen by hand to say the same as a fitted model on clear cases.
_FALLBACK_WEIGHTS: dict[str, float] = {
    "text_similarity": -3.0,
    "head_similarity": -2.0,
    "identifier_overlap": -2.0,
    "page_is_1": 3.0,
    "page_after_1": -3.0,
    "page_sequence": -3.0,
    "previous_was_last": 2.0,
    "continued": -2.0,
    "running_header": -2.0,
    "title_at_top": 0.5,
    "layout_difference": 4.0,
    "header_difference": 3.0,
    "source_change": 1.0,
    "rotation_change": 0.5,
    "blank": -2.0,
}
_FALLBACK_INTERCEPT = 0.5


@dataclass(frozen=True)
class Segment:
    """One document found in a bundle.

    Attributes:
        label: its class.
        first_page: 1-based first page.
        last_page: 1-based last page (inclusive).
        confidence: class confidence times boundary confidence, in [0, 1] (see :func:`decode`).
    """

    label: str
    first_page: int
    last_page: int
    confidence: float

    @property
    def n_pages(self) -> int:
        return self.last_page - self.first_page + 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: label, first_page, last_page, confidence (rounded to 6 decimals)."""
        out = asdict(self)
        out["confidence"] = round(float(self.confidence), 6)
        return out


# --------------------------------------------------------------------------------------------- decoding


def decode(
    page_proba: np.ndarray,
    boundary_proba: np.ndarray,
    classes: Sequence[str],
    *,
    boundary_weight: float = 1.0,
    transition_penalty: float = 0.0,
) -> list[Segment]:
    """Jointly decode page classes and document boundaries (Viterbi over (class, starts-a-document) states).

    Args:
        page_proba: (n_pages, n_classes) class probabilities of each page.
        boundary_proba: (n_pages,) probability that each page starts a new document; entry 0 is ignored (the
            first page always does).
        classes: column names of ``page_proba``.
        boundary_weight: weight of the boundary log-probabilities against the page class log-probabilities.
        transition_penalty: log-score cost of every document after the first (a prior against splitting).

    Returns:
        The segments in page order, covering every page once. A segment's confidence is the softmax over
        classes of its pages' mean log-probabilities (at the chosen class) times its weakest boundary
        decision: the probability of its start (if not page 1), of its end (if not the last page) and of no
        boundary inside it. Empty list for zero pages.

    Raises:
        ValueError: shapes that do not match.
    """
    page_proba = np.asarray(page_proba, dtype=np.float64)
    boundary_proba = np.asarray(boundary_proba, dtype=np.float64).reshape(-1)
    if page_proba.ndim != 2 or page_proba.shape[1] != len(classes):
        raise ValueError(f"expected page_proba of shape (n_pages, {len(classes)}), found {page_proba.shape}")
    n, k = page_proba.shape
    if boundary_proba.shape != (n,):
        raise ValueError(f"expected boundary_proba of shape ({n},), found {boundary_proba.shape}")
    if n == 0:
        return []
    emit = np.log(np.clip(page_proba, _EPS, 1.0))
    b = np.clip(boundary_proba, _EPS, 1.0 - _EPS)
    log_start = boundary_weight * np.log(b) - transition_penalty
    log_stay = boundary_weight * np.log1p(-b)
    # delta[t, c, s]: best score of pages 0..t with page t in class c; s = 1 when page t starts a document
    delta = np.full((n, k, 2), -np.inf)
    back_class = np.zeros((n, k), dtype=np.int64)  # for s = 1: class of page t-1
    back_state = np.zeros((n, k), dtype=np.int64)  # for s = 0: state s of page t-1 (same class)
    delta[0, :, 1] = emit[0]
    for t in range(1, n):
        best_prev = delta[t - 1].max(axis=1)  # (k,) over s
        arg_state = delta[t - 1].argmax(axis=1)
        j = int(best_prev.argmax())
        delta[t, :, 1] = best_prev[j] + log_start[t] + emit[t]
        back_class[t, :] = j
        delta[t, :, 0] = best_prev + log_stay[t] + emit[t]
        back_state[t, :] = arg_state
    c_idx, s_idx = np.unravel_index(int(np.argmax(delta[n - 1])), (k, 2))
    c, s = int(c_idx), int(s_idx)
    labels = np.zeros(n, dtype=np.int64)
    starts = np.zeros(n, dtype=bool)
    for t in range(n - 1, -1, -1):
        labels[t], starts[t] = c, bool(s)
        if t == 0:
            break
        if s == 1:
            c, s = back_class[t, c], int(np.argmax(delta[t - 1, back_class[t, c]]))
        else:
            s = back_state[t, c]
    starts[0] = True
    bounds = list(np.flatnonzero(starts)) + [n]
    segments = []
    for first, end in zip(bounds[:-1], bounds[1:], strict=True):
        label = int(labels[first])
        mean_log = emit[first:end].mean(axis=0)
        class_conf = float(np.exp(mean_log[label] - np.logaddexp.reduce(mean_log)))
        segments.append(
            Segment(
                label=str(classes[label]),
                first_page=int(first) + 1,
                last_page=int(end),
                confidence=class_conf * boundary_confidence(b, int(first), int(end)),
            )
        )
    return segments


def boundary_confidence(boundary_proba: np.ndarray, first: int, end: int) -> float:
    """Weakest boundary decision of the segment of pages ``first:end`` (0-based, end exclusive).

    The probability that it starts where it does (unless it starts the bundle), ends where it does (unless it
    ends the bundle) and has no boundary inside.
    """
    b = np.asarray(boundary_proba, dtype=np.float64)
    conf = [1.0]
    if first > 0:
        conf.append(float(b[first]))
    if end < len(b):
        conf.append(float(b[end]))
    if end - first > 1:
        conf.append(float(1.0 - b[first + 1 : end].max()))
    return min(conf)


# --------------------------------------------------------------------------------------------- page features


@dataclass(frozen=True)
class _PageCues:
    page_no: tuple[int, int | None] | None  # (k, n) from "Page k of n" / "k of n"
    continued: bool
    running_header: bool
    title_at_top: bool
    identifiers: frozenset[str]
    n_chars: int


def _page_number(text: str) -> tuple[int, int | None] | None:
    """``(k, n)`` from "Page k of n", "Page k" or "k of n" in the first or last 400 characters."""
    for part in (text[:400], text[-400:]):
        match = _PAGE_OF.search(part)
        if match:
            k = int(match.group(1))
            n = int(match.group(2)) if match.group(2) else None
            if k >= 1 and (n is None or k <= n):
                return k, n
        match = _K_OF_N.search(part)
        if match:
            k, n = int(match.group(1)), int(match.group(2))
            if 1 <= k <= n <= 500:
                return k, n
    return None


def _cues(text: str) -> _PageCues:
    stripped = text.strip()
    top = stripped[:_TOP_CHARS]
    return _PageCues(
        page_no=_page_number(stripped),
        continued=bool(_CONTINUED.search(top)),
        running_header=bool(_RUNNING_HEADER.search(" ".join(top[:120].split()))),
        title_at_top=bool(_TITLE.search(stripped[:150])),
        identifiers=frozenset(m.group(0).lower() for m in _IDENTIFIER.finditer(stripped[:_TEXT_CHARS])),
        n_chars=len(stripped),
    )


def _top_bottom(text: str) -> str:
    """What the first-page text model reads: lowercased top and bottom of the page, digits kept ("page 1")."""
    stripped = " ".join(text.split()).lower()
    if len(stripped) <= _TOP_CHARS + _BOTTOM_CHARS:
        return stripped
    return stripped[:_TOP_CHARS] + " " + stripped[-_BOTTOM_CHARS:]


_CHAR_HASHER = HashingVectorizer(
    analyzer="char_wb", ngram_range=(3, 4), n_features=2**18, alternate_sign=False, norm="l2"
)
_WORD_HASHER = HashingVectorizer(
    analyzer="word",
    ngram_range=(1, 2),
    n_features=2**18,
    alternate_sign=False,
    norm="l2",
    token_pattern=r"(?u)\b\w+\b",
)


@dataclass(frozen=True)
class _PageViews:
    """Per-page representations of a batch of pages, computed once and reused by every pair."""

    text: sp.csr_matrix
    head: sp.csr_matrix
    has_text: np.ndarray
    cues: list[_PageCues]
    coarse: np.ndarray  # (n, 16, 12) ink maps
    ink: np.ndarray
    grey: np.ndarray
    source: list[str]
    rotation: np.ndarray
    top_bottom: list[str]


def _views(pages: Sequence[Page]) -> _PageViews:
    norm = [normalize_text(page.text, _TEXT_CHARS) for page in pages]
    thumbs = np.stack([as_thumbnail(page.image) for page in pages]) if pages else np.zeros((0, 128, 96))
    ink = 1.0 - thumbs.astype(np.float32) / 255.0
    n, h, w = ink.shape
    coarse = ink.reshape(n, 16, h // 16, 12, w // 12).mean(axis=(2, 4)) if n else np.zeros((0, 16, 12))
    return _PageViews(
        text=_CHAR_HASHER.transform(norm),
        head=_CHAR_HASHER.transform([t[:_HEAD_CHARS] for t in norm]),
        has_text=np.array([len(t) >= 10 for t in norm], dtype=bool),
        cues=[_cues(page.text) for page in pages],
        coarse=coarse,
        ink=ink.mean(axis=(1, 2)) if n else np.zeros(0),
        grey=((thumbs >= 64) & (thumbs < 192)).mean(axis=(1, 2)) if n else np.zeros(0),
        source=[page.source for page in pages],
        rotation=np.array([page.rotation for page in pages]),
        top_bottom=[_top_bottom(page.text) for page in pages],
    )


def _pair_features(
    views: _PageViews, prev: np.ndarray, cur: np.ndarray, first_score: np.ndarray
) -> np.ndarray:
    """(len(cur), len(FEATURES)) features of the page pairs (views[prev[i]], views[cur[i]])."""
    m = len(cur)
    out = np.zeros((m, len(FEATURES)), dtype=np.float64)
    if m == 0:
        return out
    text_sim = np.asarray(views.text[prev].multiply(views.text[cur]).sum(axis=1)).ravel()
    head_sim = np.asarray(views.head[prev].multiply(views.head[cur]).sum(axis=1)).ravel()
    both_text = views.has_text[prev] & views.has_text[cur]
    col = {name: i for i, name in enumerate(FEATURES)}
    out[:, col["text_similarity"]] = np.where(both_text, text_sim, 0.0)
    out[:, col["head_similarity"]] = np.where(both_text, head_sim, 0.0)
    out[:, col["no_text"]] = ~both_text
    for i, (p, c) in enumerate(zip(prev, cur, strict=True)):
        a, b = views.cues[p], views.cues[c]
        union = a.identifiers | b.identifiers
        out[i, col["identifier_overlap"]] = len(a.identifiers & b.identifiers) / len(union) if union else 0.0
        if b.page_no is not None:
            out[i, col["page_is_1"]] = b.page_no[0] == 1
            out[i, col["page_after_1"]] = b.page_no[0] > 1
            if a.page_no is not None:
                out[i, col["page_sequence"]] = b.page_no[0] == a.page_no[0] + 1 and (
                    a.page_no[1] is None or b.page_no[1] is None or a.page_no[1] == b.page_no[1]
                )
        if a.page_no is not None and a.page_no[1] is not None:
            out[i, col["previous_was_last"]] = a.page_no[0] == a.page_no[1]
        out[i, col["continued"]] = b.continued
        out[i, col["running_header"]] = b.running_header
        out[i, col["title_at_top"]] = b.title_at_top
        out[i, col["source_change"]] = views.source[p] != views.source[c]
        out[i, col["length_ratio"]] = abs(np.log((a.n_chars + 10) / (b.n_chars + 10)))
    out[:, col["first_page_score"]] = first_score
    diff = np.abs(views.coarse[prev] - views.coarse[cur])
    out[:, col["layout_difference"]] = diff.mean(axis=(1, 2))
    out[:, col["header_difference"]] = diff[:, : diff.shape[1] // 6 + 1].mean(axis=(1, 2))
    out[:, col["ink_difference"]] = np.abs(views.ink[prev] - views.ink[cur])
    out[:, col["grey_difference"]] = np.abs(views.grey[prev] - views.grey[cur])
    out[:, col["rotation_change"]] = views.rotation[prev] != views.rotation[cur]
    out[:, col["blank"]] = views.ink[cur] < 0.002
    return out


# --------------------------------------------------------------------------------------------- estimator


class PageSplitter(BaseEstimator):
    """Boundary model: P(page starts a new document | previous page, page), plus the decoding weights.

    Fit on labelled documents (``fit(docs, labels)``): consecutive pages of one document are continuation
    examples (at most ``max_continuations`` per document, so one long document does not dominate), and
    ``synthetic_boundaries`` random ordered pairs of distinct documents give boundary examples (last page of
    the first, first page of the second; same-class pairs included). Classes are balanced by weight.

    Args:
        boundary_weight: weight of the boundary log-probabilities in :func:`decode`.
        transition_penalty: log-score cost of every extra document in :func:`decode`.
        synthetic_boundaries: number of random document pairs joined to make boundary examples.
        max_continuations: continuation examples taken from one document at most.
        C: inverse regularisation of both logistic regressions.
        text_folds: folds (grouped by document) of the out-of-fold first-page text scores; < 2 disables the
            text model.
        random_state: seed of the synthetic pairs and the sub-sampling.
    """

    # No defaults: every value comes from split: in params.yaml (make_splitter).
    def __init__(
        self,
        *,
        boundary_weight: float,
        transition_penalty: float,
        synthetic_boundaries: int,
        max_continuations: int,
        C: float,
        text_folds: int,
        random_state: int,
    ) -> None:
        self.boundary_weight = boundary_weight
        self.transition_penalty = transition_penalty
        self.synthetic_boundaries = synthetic_boundaries
        self.max_continuations = max_continuations
        self.C = C
        self.text_folds = text_folds
        self.random_state = random_state

    # -- fitting

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> PageSplitter:
        """Learn the boundary model from labelled documents; returns self.

        Raises:
            ValueError: fewer than two documents, or labels that do not match the documents.
        """
        docs = list(X)
        labels = [str(label) for label in y]
        if len(docs) != len(labels):
            raise ValueError(f"X has {len(docs)} documents but y has {len(labels)} labels")
        docs_with_pages = [i for i, doc in enumerate(docs) if doc.n_pages > 0]
        if len(docs_with_pages) < 2:
            raise ValueError(
                f"expected at least 2 documents with pages to learn boundaries, found {len(docs_with_pages)}"
            )
        rng = np.random.default_rng(self.random_state)
        pages: list[Page] = []
        doc_of_page: list[int] = []
        offsets: dict[int, int] = {}
        for i in docs_with_pages:
            offsets[i] = len(pages)
            pages.extend(docs[i].pages)
            doc_of_page.extend([i] * docs[i].n_pages)
        views = _views(pages)

        prev: list[int] = []
        cur: list[int] = []
        target: list[int] = []
        for i in docs_with_pages:
            inner = np.arange(1, docs[i].n_pages)
            if len(inner) > self.max_continuations:
                inner = np.sort(rng.choice(inner, size=self.max_continuations, replace=False))
            for t in inner:
                prev.append(offsets[i] + int(t) - 1)
                cur.append(offsets[i] + int(t))
                target.append(0)
        for _ in range(int(self.synthetic_boundaries)):
            a, b = rng.choice(docs_with_pages, size=2, replace=False)
            prev.append(offsets[int(a)] + docs[int(a)].n_pages - 1)
            cur.append(offsets[int(b)])
            target.append(1)
        prev_idx, cur_idx, y_pair = np.array(prev), np.array(cur), np.array(target)

        first_score = self._fit_first_page_model(views, doc_of_page, offsets, docs, docs_with_pages)
        features = _pair_features(views, prev_idx, cur_idx, first_score[cur_idx])
        self.mean_ = features.mean(axis=0)
        self.scale_ = np.where(features.std(axis=0) > 1e-9, features.std(axis=0), 1.0)
        if len(np.unique(y_pair)) < 2:
            # Only one-page documents: no continuation example, so no learned weights; cues decide alone.
            log.warning("no multi-page document to learn continuations from: using the cue weights")
            self._set_fallback()
            self.n_examples_ = {"continuation": 0, "boundary": int(y_pair.sum())}
            return self
        clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)
        clf.fit((features - self.mean_) / self.scale_, y_pair)
        self.coef_ = clf.coef_.ravel().copy()
        self.intercept_ = float(clf.intercept_[0])
        self.learned_ = True
        self.n_examples_ = {"continuation": int((y_pair == 0).sum()), "boundary": int(y_pair.sum())}
        return self

    def _fit_first_page_model(
        self,
        views: _PageViews,
        doc_of_page: list[int],
        offsets: dict[int, int],
        docs: list[Document],
        docs_with_pages: list[int],
    ) -> np.ndarray:
        """Fit the first-page text model; return out-of-fold logits for every page (zeros without it)."""
        n = len(doc_of_page)
        is_first = np.zeros(n, dtype=np.int64)
        for i in docs_with_pages:
            is_first[offsets[i]] = 1
        groups = np.array(doc_of_page)
        matrix = _WORD_HASHER.transform(views.top_bottom)
        self.first_page_model_ = None
        n_groups = len(set(doc_of_page[j] for j in np.flatnonzero(is_first == 0)))
        if self.text_folds < 2 or n_groups < 2 or is_first.sum() < 2:
            return np.zeros(n)
        oof = np.zeros(n)
        folds = GroupKFold(n_splits=min(self.text_folds, len(docs_with_pages)))
        for train, test in folds.split(matrix, is_first, groups):
            if len(np.unique(is_first[train])) < 2:
                continue
            model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)
            oof[test] = model.fit(matrix[train], is_first[train]).decision_function(matrix[test])
        model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)
        self.first_page_model_ = model.fit(matrix, is_first)
        return oof

    def _set_fallback(self) -> None:
        self.coef_ = np.array([_FALLBACK_WEIGHTS.get(name, 0.0) for name in FEATURES]) * self.scale_
        self.intercept_ = _FALLBACK_INTERCEPT + float((self.coef_ / self.scale_ * self.mean_).sum())
        self.learned_ = False

    def fit_fallback(self) -> PageSplitter:
        """Make a splitter without training data: hand-set cue weights, no first-page text model; returns self."""
        self.mean_ = np.zeros(len(FEATURES))
        self.scale_ = np.ones(len(FEATURES))
        self.first_page_model_ = None
        self._set_fallback()
        self.n_examples_ = {"continuation": 0, "boundary": 0}
        return self

    # -- inference

    def boundary_logits(self, document: Document) -> np.ndarray:
        """(n_pages,) log-odds that each page starts a new document (entry 0 is +inf: the first page does)."""
        check_is_fitted(self, "coef_")
        n = document.n_pages
        out = np.full(n, np.inf)
        if n < 2:
            return out
        views = _views(document.pages)
        if self.first_page_model_ is not None:
            first_score = self.first_page_model_.decision_function(_WORD_HASHER.transform(views.top_bottom))
        else:
            first_score = np.zeros(n)
        cur = np.arange(1, n)
        features = _pair_features(views, cur - 1, cur, first_score[cur])
        out[1:] = ((features - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return out

    def boundary_proba(self, document: Document) -> np.ndarray:
        """(n_pages,) probability that each page starts a new document (1.0 for the first page)."""
        logits = self.boundary_logits(document)
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))

    def decode(
        self, page_proba: np.ndarray, boundary_proba: np.ndarray, classes: Sequence[str]
    ) -> list[Segment]:
        """:func:`decode` with this splitter's weights."""
        return decode(
            page_proba,
            boundary_proba,
            classes,
            boundary_weight=float(self.boundary_weight),
            transition_penalty=float(self.transition_penalty),
        )


# --------------------------------------------------------------------------------------------- entry points


def split_documents(splitter: PageSplitter, documents: Sequence[Document], model: Any) -> list[list[Segment]]:
    """Segments of each document; all pages of all documents are classified in one batched call.

    Args:
        splitter: a fitted :class:`PageSplitter` (or :meth:`PageSplitter.fit_fallback`).
        documents: extracted documents (bundles).
        model: a fitted classifier with ``classes_`` and ``predict_pages_proba(docs)``.

    Returns:
        Per document, its segments in page order (empty for a document without pages).
    """
    documents = list(documents)
    classes = [str(c) for c in model.classes_]
    page_proba = model.predict_pages_proba(documents) if documents else []
    boundary = [splitter.boundary_proba(doc) for doc in documents]
    decoded = [splitter.decode(proba, b, classes) for proba, b in zip(page_proba, boundary, strict=True)]
    return rescore_segments(decoded, documents, boundary, model)


def segment_document(document: Document, segment: Segment) -> Document:
    """The pages of ``segment`` as a document of their own (pages re-indexed)."""
    pages = tuple(
        replace(page, index=k)
        for k, page in enumerate(document.pages[segment.first_page - 1 : segment.last_page])
    )
    return Document(
        sha256=f"{document.sha256}:{segment.first_page}-{segment.last_page}",
        name=f"{document.name}#pages={segment.first_page}-{segment.last_page}",
        mime=document.mime,
        pages=pages,
    )


def rescore_segments(
    decoded: Sequence[Sequence[Segment]],
    documents: Sequence[Document],
    boundary_proba: Sequence[np.ndarray],
    model: Any,
) -> list[list[Segment]]:
    """Classify every multi-page segment as a whole document (the classifier's own document-level answer).

    Page scores and boundary evidence decide where documents start and end; the class of a document of
    several pages is then the one the classifier gives that document as a whole, as for any upload: its
    text is read together, so a cover sheet or an instructions page does not outvote the form. One-page
    segments keep their decoded class (a page is scored as a one-page document either way). The confidence
    becomes the document-level class probability times :func:`boundary_confidence`.

    Args:
        decoded: segments per document from :func:`decode`.
        documents: the documents they cut.
        boundary_proba: per document, its (n_pages,) boundary probabilities.
        model: the classifier (``classes_``, ``predict_proba``).

    Returns:
        The segments per document, multi-page ones re-classified.
    """
    classes = [str(c) for c in model.classes_]
    where = [
        (i, j) for i, segments in enumerate(decoded) for j, seg in enumerate(segments) if seg.n_pages > 1
    ]
    out = [list(segments) for segments in decoded]
    if not where:
        return out
    proba = model.predict_proba([segment_document(documents[i], decoded[i][j]) for i, j in where])
    for (i, j), row in zip(where, proba, strict=True):
        seg = decoded[i][j]
        best = int(np.argmax(row))
        conf = float(row[best]) * boundary_confidence(boundary_proba[i], seg.first_page - 1, seg.last_page)
        out[i][j] = Segment(classes[best], seg.first_page, seg.last_page, conf)
    return out


def split_document(splitter: PageSplitter, document: Document, model: Any) -> list[Segment]:
    """Segments of one document (see :func:`split_documents`)."""
    return split_documents(splitter, [document], model)[0]


def make_splitter(params: Mapping[str, Any] | None, seed: int) -> PageSplitter:
    """An unfitted splitter from the ``split:`` section of params.yaml, every value of it.

    Raises:
        ParamsError: the section is missing, or a key in it is unknown, missing or mistyped.
    """
    section = validate_section(SplitParams, params, "split")
    return PageSplitter(**section.model_dump(), random_state=seed)


def fit_splitter(
    docs: Sequence[Document], labels: Sequence[str], params: Mapping[str, Any] | None, seed: int
) -> PageSplitter:
    """Fit a splitter on labelled documents with the ``split:`` params section (see :class:`PageSplitter`)."""
    return make_splitter(params, seed).fit(docs, labels)


def fallback_splitter(params: Mapping[str, Any] | None) -> PageSplitter:
    """A splitter for a model directory without one: cue weights set by hand, decoding weights from params."""
    return make_splitter(params, seed=0).fit_fallback()


def save_splitter(splitter: PageSplitter, model_dir: Path) -> Path:
    """Write a fitted splitter to ``model_dir/splitter.joblib``; returns the path."""
    import joblib

    check_is_fitted(splitter, "coef_")
    path = Path(model_dir) / SPLITTER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(splitter, path)
    return path


def load_splitter(model_dir: Path, data: bytes | None = None) -> PageSplitter | None:
    """The splitter saved in ``model_dir``, or None when the directory has none.

    Args:
        model_dir: a model directory.
        data: the splitter file's bytes already verified by :func:`pipelines.models.persistence.load_verified`;
            None reads the file from disk.

    Raises:
        ModelLoadError: the file exists but cannot be read or is not a splitter.
    """
    from pipelines.models.persistence import unpickle

    path = Path(model_dir) / SPLITTER_FILE
    if data is None:
        if not path.is_file():
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"unreadable splitter file {path}: {type(exc).__name__}: {exc}") from exc
    splitter = unpickle(data, path, "splitter")
    if not isinstance(splitter, PageSplitter) or not hasattr(splitter, "coef_"):
        raise ModelLoadError(f"{path} holds {type(splitter).__name__}: expected a fitted PageSplitter")
    return splitter

"""Features the candidate models consume: normalised text, fast TF-IDF and page-image layout features.

Everything here is pure and deterministic. The text vectoriser is fitted by scikit-learn's
``TfidfVectorizer`` (so vocabulary, idf and n-gram rules are scikit-learn's) and transforms through a cached
path that gives the same matrix several times faster, because serving predicts every page of every document.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from pipelines.document import Document

THUMB_HEIGHT = 128
THUMB_WIDTH = 96

_DIGIT = re.compile(r"\d")
_DIGIT_TOKEN = re.compile(r"\S*\d\S*")
# identifier-shaped tokens (lowercased): 1040, w-9, w9, 6251, 1099-nec, 941-x, or-40; ASCII digits only
_IDENTIFIER = re.compile(r"(?:[a-z]{1,3}-?)?[0-9]{1,5}(?:-?[a-z]{1,4})?")
_IDENTIFIER_MAX = 8
_PUNCTUATION = ".,;:()[]{}\"'!?*#"
_WORD = re.compile(r"\w\w")
# the char-n-gram cache maps a word to its feature indices; bounded so a long-running server stays small
_CACHE_MAX_WORDS = 200_000


# --------------------------------------------------------------------------------------------- text


def is_identifier(token: str) -> bool:
    """Whether a lowercased token (punctuation stripped) is identifier-shaped: "1040", "w-9", "1099-nec"; see
    :func:`normalize_text`."""
    return len(token) <= _IDENTIFIER_MAX and _IDENTIFIER.fullmatch(token) is not None


def _identifier_or_zeros(match: re.Match[str]) -> str:
    token = match.group()
    core = token.strip(_PUNCTUATION)
    if is_identifier(core):
        return core
    return _DIGIT.sub("0", token)


def normalize_text(text: str, max_chars: int, keep_identifiers: bool = False) -> str:
    """Lowercase, map digits to ``0``, collapse whitespace and cut at a word boundary.

    Amounts, dates and phone numbers become digit-free shapes ("0,000.00"), so they generalise across
    documents. Form numbers and codes are what tell "Form 1040" from "Form 6251": with ``keep_identifiers``,
    an identifier-shaped token keeps its digits (an optional 1-3 letter prefix, 1-5 ASCII digits, an optional
    1-4 letter suffix, hyphens allowed between, at most 8 characters once surrounding punctuation is
    stripped: "1040", "w-9", "6251", "1099-nec", "941-x"); it is written without that punctuation.

    Args:
        text: raw page or document text.
        max_chars: maximum length of the result; the cut falls on the last space before it when there is one,
            so no partial word produces spurious n-grams.
        keep_identifiers: keep the digits of identifier-shaped tokens; every other digit still becomes 0.

    Returns:
        The normalised text, at most ``max_chars`` characters.
    """
    # whitespace collapsing only shortens; a generous raw cut keeps huge documents cheap
    raw = text[: max_chars * 4] if max_chars > 0 else ""
    if keep_identifiers:
        # only tokens holding a digit reach the Python callback
        out = " ".join(_DIGIT_TOKEN.sub(_identifier_or_zeros, raw.lower()).split())
    else:
        # a regex beats str.translate here: translate leaves its fast path on any non-ASCII character
        out = " ".join(_DIGIT.sub("0", raw.lower()).split())
    if len(out) > max_chars:
        cut = out.rfind(" ", 0, max_chars + 1)
        out = out[: cut if cut > 0 else max_chars]
    return out


def document_texts(docs: Sequence[Document], max_chars: int, keep_identifiers: bool = False) -> list[str]:
    """Normalised text of each document (pages joined), see :func:`normalize_text`."""
    return [normalize_text(doc.text, max_chars, keep_identifiers) for doc in docs]


def document_titles(docs: Sequence[Document], max_chars: int, keep_identifiers: bool = True) -> list[str]:
    """Normalised title of each document: the title of its first page (see :mod:`pipelines.title`), "" for a
    document without pages."""
    return [
        normalize_text(doc.pages[0].title if doc.pages else "", max_chars, keep_identifiers) for doc in docs
    ]


def has_words(normalized: str) -> bool:
    """Whether a normalised text holds at least one two-character word (what the word vectoriser can see)."""
    return _WORD.search(normalized) is not None


class TextVectorizer(TransformerMixin, BaseEstimator):
    """Word n-gram TF-IDF next to character (``char_wb``) n-gram TF-IDF, each block L2-normalised.

    The result equals two scikit-learn ``TfidfVectorizer(lowercase=False, sublinear_tf=True,
    max_features=max_features)`` (analyzer "word" and "char_wb") side by side: same analyzers, vocabulary,
    feature cap and idf (a test checks it). It is computed several times faster, because ``char_wb`` n-grams
    never cross a space: a text's n-grams are the union of its words' n-grams, so each distinct word is
    analysed once and its feature indices are cached. Expects texts normalised by :func:`normalize_text`.
    """

    # No defaults: the candidates pass their params.yaml values (train.text, train.title).
    def __init__(
        self, *, word_ngrams: tuple[int, int], char_ngrams: tuple[int, int], max_features: int | None
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.max_features = max_features

    def fit(self, texts: Sequence[str], y: object = None) -> TextVectorizer:
        """Learn both vocabularies and idf weights.

        Raises:
            ValueError: no n-gram at all in ``texts``.
        """
        texts = list(texts)
        word_vocab: dict[str, int] = {}
        char_vocab: dict[str, int] = {}
        word_counts = self._word_counts(texts, word_vocab, grow=True)
        char_counts = self._char_counts(texts, char_vocab, {}, grow=True)
        self.word_vocabulary_, self.word_idf_ = self._finish_block(word_counts, word_vocab, len(texts))
        self.char_vocabulary_, self.char_idf_ = self._finish_block(char_counts, char_vocab, len(texts))
        self.n_features_out_ = len(self.word_vocabulary_) + len(self.char_vocabulary_)
        if self.n_features_out_ == 0:
            raise ValueError(
                f"no word or character n-gram in any of the {len(texts)} training texts: expected some text"
            )
        self._char_cache: dict[str, np.ndarray] = {}
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF matrix of shape (n_texts, n_features_out_)."""
        check_is_fitted(self, "char_vocabulary_")
        texts = list(texts)
        if len(self._char_cache) > _CACHE_MAX_WORDS:
            self._char_cache.clear()
        word = self._word_counts(texts, self.word_vocabulary_, grow=False)
        char = self._char_counts(texts, self.char_vocabulary_, self._char_cache, grow=False)
        return sp.hstack([_weigh(word, self.word_idf_), _weigh(char, self.char_idf_)], format="csr")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_char_cache"] = {}  # a cache, not model state: never pickled
        return state

    def _analyzer(self, kind: str) -> Callable[[str], list[str]]:
        ngrams = tuple(self.word_ngrams if kind == "word" else self.char_ngrams)
        return TfidfVectorizer(analyzer=kind, ngram_range=ngrams, lowercase=False).build_analyzer()

    def _word_counts(self, texts: list[str], vocab: dict[str, int], grow: bool) -> sp.csr_matrix:
        analyze = self._analyzer("word")
        rows = []
        for text in texts:
            ids: list[int] = []
            counts: list[int] = []
            for term, count in Counter(analyze(text)).items():
                j = vocab.get(term)
                if j is None:
                    if not grow:
                        continue
                    j = vocab[term] = len(vocab)
                ids.append(j)
                counts.append(count)
            rows.append((np.asarray(ids, dtype=np.int64), np.asarray(counts, dtype=np.float64)))
        return _rows_to_csr(rows, len(vocab))

    def _char_counts(
        self, texts: list[str], vocab: dict[str, int], cache: dict[str, np.ndarray], grow: bool
    ) -> sp.csr_matrix:
        analyze = None
        rows = []
        for text in texts:
            parts: list[np.ndarray] = []
            counts: list[int] = []
            for word, count in Counter(text.split()).items():
                idx = cache.get(word)
                if idx is None:
                    if analyze is None:
                        analyze = self._analyzer("char_wb")
                    if grow:
                        idx = np.array(
                            [vocab.setdefault(g, len(vocab)) for g in analyze(word)], dtype=np.int64
                        )
                    else:
                        found = [vocab.get(g) for g in analyze(word)]
                        idx = np.array([j for j in found if j is not None], dtype=np.int64)
                    cache[word] = idx
                parts.append(idx)
                counts.append(count)
            if parts:
                sizes = np.fromiter((part.size for part in parts), dtype=np.int64, count=len(parts))
                rows.append((np.concatenate(parts), np.repeat(np.asarray(counts, dtype=np.float64), sizes)))
            else:
                rows.append((np.zeros(0, dtype=np.int64), np.zeros(0)))
        return _rows_to_csr(rows, len(vocab))

    def _finish_block(
        self, counts: sp.csr_matrix, vocab: dict[str, int], n_texts: int
    ) -> tuple[dict[str, int], np.ndarray]:
        """Sort the vocabulary, keep the ``max_features`` most frequent terms and compute the idf, exactly as
        ``CountVectorizer._sort_features`` / ``_limit_features`` and ``TfidfTransformer.fit`` do."""
        if not vocab:
            return {}, np.zeros(0)
        terms = sorted(vocab)
        counts = counts[:, [vocab[t] for t in terms]]
        if self.max_features is not None and len(terms) > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()
            keep = np.sort((-totals).argsort()[: self.max_features])
            terms = [terms[j] for j in keep]
            counts = counts[:, keep]
        df = np.bincount(sp.csr_matrix(counts).indices, minlength=len(terms)).astype(np.float64) + 1.0
        idf = np.full_like(df, fill_value=n_texts + 1, dtype=np.float64)
        idf /= df
        np.log(idf, out=idf)
        idf += 1.0
        return {t: i for i, t in enumerate(terms)}, idf


def _rows_to_csr(rows: list[tuple[np.ndarray, np.ndarray]], n_features: int) -> sp.csr_matrix:
    """CSR count matrix from per-text (feature ids, weights) with repeats, summed per feature."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for i, (ids, weights) in enumerate(rows):
        if ids.size:
            unique, inverse = np.unique(ids, return_inverse=True)
            cols.append(unique)
            vals.append(np.bincount(inverse, weights=weights, minlength=unique.size))
            indptr[i + 1] = indptr[i] + unique.size
        else:
            indptr[i + 1] = indptr[i]
    data = np.concatenate(vals) if vals else np.zeros(0)
    indices = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_features))


def _weigh(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf times idf, L2-normalised rows: ``TfidfTransformer.transform`` with sublinear_tf."""
    counts = counts.astype(np.float64)
    np.log(counts.data, out=counts.data)
    counts.data += 1.0
    counts.data *= idf[counts.indices]
    return normalize(counts, norm="l2", copy=False)


# --------------------------------------------------------------------------------------------- image


def as_thumbnail(image: np.ndarray, height: int = THUMB_HEIGHT, width: int = THUMB_WIDTH) -> np.ndarray:
    """Coerce any page image to a uint8 grayscale (height, width) thumbnail, 255 = paper.

    Accepts gray or RGB(A), uint8 or float in [0, 1], any size (nearest-neighbour resampled). An empty or
    unreadable array becomes a blank page, so one odd image never sinks a batch.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        a = a[..., :3].mean(axis=2)
    if a.ndim != 2 or a.size == 0 or not np.issubdtype(a.dtype, np.number):
        return np.full((height, width), 255, dtype=np.uint8)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a, nan=255.0), 0, 255).astype(np.uint8)
    if a.shape != (height, width):
        r = np.arange(height) * a.shape[0] // height
        c = np.arange(width) * a.shape[1] // width
        a = a[np.ix_(r, c)]
    return a


def _profile_stats(occupied: np.ndarray) -> np.ndarray:
    """Block statistics of row (or column) occupancy profiles, vectorised over the batch.

    Rows give text lines and paragraphs at thumbnail scale, columns give text columns and table cells.

    Args:
        occupied: bool (n, length).

    Returns:
        float32 (n, N_PROFILE_STATS), about [0, 1]: number of blocks (log-scaled), block length mean, std
        and max, gap mean and max, occupied share, leading and trailing margin. Zeros for an empty profile.
    """
    n, length = occupied.shape
    padded = np.zeros((n, length + 2), dtype=np.int8)
    padded[:, 1:-1] = occupied
    step = np.diff(padded, axis=1)
    run_row, run_start = np.nonzero(step == 1)  # row-major, so starts and ends pair up in order
    _, run_end = np.nonzero(step == -1)
    lengths = (run_end - run_start).astype(np.float64)
    n_runs = np.bincount(run_row, minlength=n).astype(np.float64)
    safe_runs = np.maximum(n_runs, 1.0)
    mean_len = np.bincount(run_row, weights=lengths, minlength=n) / safe_runs
    mean_sq = np.bincount(run_row, weights=lengths**2, minlength=n) / safe_runs
    max_len = np.zeros(n)
    np.maximum.at(max_len, run_row, lengths)
    same_row = run_row[1:] == run_row[:-1]
    gaps = (run_start[1:] - run_end[:-1])[same_row].astype(np.float64)
    gap_row = run_row[1:][same_row]
    n_gaps = np.bincount(gap_row, minlength=n).astype(np.float64)
    mean_gap = np.bincount(gap_row, weights=gaps, minlength=n) / np.maximum(n_gaps, 1.0)
    max_gap = np.zeros(n)
    np.maximum.at(max_gap, gap_row, gaps)
    any_run = n_runs > 0
    first = np.where(any_run, np.argmax(occupied, axis=1), 0)
    last = np.where(any_run, length - 1 - np.argmax(occupied[:, ::-1], axis=1), length - 1)
    stats = np.stack(
        [
            np.log1p(n_runs) / math.log1p(length),
            mean_len / length,
            np.sqrt(np.maximum(mean_sq - mean_len**2, 0.0)) / length,
            max_len / length,
            mean_gap / length,
            max_gap / length,
            occupied.mean(axis=1),
            first / length,
            (length - 1 - last) / length,
        ],
        axis=1,
    )
    stats[~any_run] = 0.0
    return stats.astype(np.float32)


N_PROFILE_STATS = 9
_GRIDS = ((4, 3), (8, 6), (16, 12))
_ROW_BINS = 32
_COL_BINS = 24
_DARK = 128  # grey value under which a pixel counts as ink
_OCCUPIED = 0.03  # share of dark pixels that makes a row / column "occupied"
_RULE = 0.5  # share of dark pixels that makes a row / column a ruled line


def page_layout_features(images: np.ndarray) -> np.ndarray:
    """Layout features of page thumbnails, vectorised over the batch.

    Per page: ink density on 4x3, 8x6 and 16x12 grids; row (32 bins) and column (24 bins) ink profiles; edge
    density (overall and on a 4x3 grid, horizontal and vertical separately); ruled-line shares; text-block
    statistics of the row and column occupancy; ink bounding box, its aspect and the ink centroid; global ink,
    contrast and grey (photo / scan background) shares.

    Args:
        images: uint8 array (n, THUMB_HEIGHT, THUMB_WIDTH), 0 = ink, 255 = paper.

    Returns:
        float32 array (n, n_layout_features()).
    """
    images = np.asarray(images)
    n, h, w = images.shape
    if (h, w) != (THUMB_HEIGHT, THUMB_WIDTH):
        raise ValueError(f"expected thumbnails of shape ({THUMB_HEIGHT}, {THUMB_WIDTH}), found ({h}, {w})")
    ink = 1.0 - images.astype(np.float32) / 255.0
    feats: list[np.ndarray] = []
    for gh, gw in _GRIDS:
        feats.append(ink.reshape(n, gh, h // gh, gw, w // gw).mean(axis=(2, 4)).reshape(n, -1))
    rows = ink.mean(axis=2)
    cols = ink.mean(axis=1)
    feats.append(rows.reshape(n, _ROW_BINS, h // _ROW_BINS).mean(axis=2))
    feats.append(cols.reshape(n, _COL_BINS, w // _COL_BINS).mean(axis=2))

    # edges: |vertical gradient| marks horizontal strokes and rules, |horizontal gradient| vertical ones
    dy = np.zeros_like(ink)
    dx = np.zeros_like(ink)
    dy[:, 1:, :] = np.abs(np.diff(ink, axis=1))
    dx[:, :, 1:] = np.abs(np.diff(ink, axis=2))
    for grad in (dy, dx):
        feats.append(grad.mean(axis=(1, 2))[:, None])
        feats.append(grad.reshape(n, 4, h // 4, 3, w // 3).mean(axis=(2, 4)).reshape(n, -1))

    dark = images < _DARK
    row_fill = dark.mean(axis=2)
    col_fill = dark.mean(axis=1)
    feats.append(np.stack([(row_fill > _RULE).mean(axis=1), (col_fill > _RULE).mean(axis=1)], axis=1))

    row_occ = row_fill > _OCCUPIED
    col_occ = col_fill > _OCCUPIED
    feats.append(_profile_stats(row_occ))
    feats.append(_profile_stats(col_occ))
    # ink bounding box aspect, ink centroid, contrast, grey share (photos, scan background)
    has_ink = row_occ.any(axis=1) & col_occ.any(axis=1)
    box_h = h - np.argmax(row_occ, axis=1) - np.argmax(row_occ[:, ::-1], axis=1)
    box_w = w - np.argmax(col_occ, axis=1) - np.argmax(col_occ[:, ::-1], axis=1)
    aspect = np.where(has_ink, np.log(np.maximum(box_h, 1) / np.maximum(box_w, 1)), 0.0)
    row_mass = rows.sum(axis=1)
    col_mass = cols.sum(axis=1)
    centre_y = np.where(row_mass > 0, rows @ ((np.arange(h) + 0.5) / h) / np.maximum(row_mass, 1e-12), 0.0)
    centre_x = np.where(col_mass > 0, cols @ ((np.arange(w) + 0.5) / w) / np.maximum(col_mass, 1e-12), 0.0)
    grey = ((images >= 64) & (images < 192)).mean(axis=(1, 2))
    stats = np.stack([aspect, centre_y, centre_x, ink.std(axis=(1, 2)), grey], axis=1)
    feats.append(stats)
    feats.append(np.stack([ink.mean(axis=(1, 2)), dark.mean(axis=(1, 2))], axis=1))
    return np.concatenate(feats, axis=1).astype(np.float32)


def n_layout_features() -> int:
    """Number of columns :func:`page_layout_features` returns per page."""
    grids = sum(gh * gw for gh, gw in _GRIDS)
    return grids + _ROW_BINS + _COL_BINS + 2 * (1 + 12) + 2 + 2 * N_PROFILE_STATS + 5 + 2


def document_layout_features(docs: Sequence[Document], pages: int = 1) -> np.ndarray:
    """Layout features of the first ``pages`` pages of each document.

    With ``pages > 1`` each extra page adds its features and a presence flag (zeros and 0 for a shorter
    document). The page count itself is deliberately not a feature: pages are also scored as one-page
    documents, and a count learnt from whole documents would make every page look out of distribution.

    Args:
        docs: documents.
        pages: how many leading pages to describe (>= 1).

    Returns:
        float32 array (n_docs, pages * n_layout_features() + pages - 1).
    """
    if pages < 1:
        raise ValueError(f"pages must be >= 1, found {pages}")
    per_page = n_layout_features()
    out = np.zeros((len(docs), pages * per_page + pages - 1), dtype=np.float32)
    slots: list[tuple[int, int]] = []
    images: list[np.ndarray] = []
    for i, doc in enumerate(docs):
        for k, page in enumerate(doc.pages[:pages]):
            slots.append((i, k))
            images.append(as_thumbnail(page.image))
    if images:
        feats = page_layout_features(np.stack(images))
        rows = np.fromiter((i for i, _ in slots), dtype=np.int64, count=len(slots))
        ks = np.fromiter((k for _, k in slots), dtype=np.int64, count=len(slots))
        for k in range(pages):
            at = ks == k
            out[rows[at], k * per_page : (k + 1) * per_page] = feats[at]
            if k > 0:
                out[rows[at], pages * per_page + k - 1] = 1.0
    return out


# --------------------------------------------------------------------------------------------- HOG

HOG_SHAPE = (256, 192)  # (height, width) the HOG sees: 16 x 12 cells of 16 pixels, a thumbnail pixel is 2 x 2
_HOG_BLOCK = 32
_HOG_STRIDE = 16
_HOG_CELL = 16
_HOG_BINS = 9


def n_hog_features() -> int:
    """Length of one page's HOG vector: blocks x cells per block x orientation bins (5940)."""
    height, width = HOG_SHAPE
    blocks = ((width - _HOG_BLOCK) // _HOG_STRIDE + 1) * ((height - _HOG_BLOCK) // _HOG_STRIDE + 1)
    return blocks * (_HOG_BLOCK // _HOG_CELL) ** 2 * _HOG_BINS


def hog_features(images: Sequence[np.ndarray]) -> np.ndarray:
    """Histograms of oriented gradients of page images, each L2-normalised.

    OpenCV's ``HOGDescriptor`` on the page at 192x256 (cells of 16 pixels, blocks of 2 x 2 cells every 16
    pixels, 9 orientation bins, L2-Hys block norm): the boxes, rules and headings of a form, so a filled and a
    blank copy of one form, scanned or born digital, look alike. Fed the 96x128 page thumbnails (each pixel
    repeated 2 x 2, which is what area resampling does to an exact enlargement), it measured better on
    ../shared/corpus than fed 192x256 renderings of the pages: +0.016 / +0.006 / +0.039 accuracy at 5 / 10 /
    15 documents per class and +0.069 with each source held out (``make bench``, paired over the same
    splits); finer pixels add print and scan noise, not layout.

    Args:
        images: grayscale page images (0 = ink), any size (area-resampled to ``HOG_SHAPE``); anything else
            :func:`as_thumbnail` accepts.

    Returns:
        float32 (n_images, n_hog_features()), rows of unit L2 norm (zeros for a blank page).
    """
    import cv2

    height, width = HOG_SHAPE
    descriptor = cv2.HOGDescriptor(
        (width, height),
        (_HOG_BLOCK, _HOG_BLOCK),
        (_HOG_STRIDE, _HOG_STRIDE),
        (_HOG_CELL, _HOG_CELL),
        _HOG_BINS,
    )
    out = np.zeros((len(images), n_hog_features()), dtype=np.float32)
    for i, image in enumerate(images):
        page = np.asarray(image)
        if page.ndim != 2 or page.dtype != np.uint8 or page.size == 0:
            page = as_thumbnail(page, height, width)
        elif page.shape != (height, width):
            page = cv2.resize(page, (width, height), interpolation=cv2.INTER_AREA)
        out[i] = np.asarray(descriptor.compute(np.ascontiguousarray(page))).ravel()
    return normalize(out, norm="l2", copy=False)


def document_hog_features(docs: Sequence[Document]) -> np.ndarray:
    """HOG of the first page of each document (zeros for a document without pages)."""
    out = np.zeros((len(docs), n_hog_features()), dtype=np.float32)
    have = [i for i, doc in enumerate(docs) if doc.pages]
    if have:
        out[have] = hog_features([docs[i].pages[0].image for i in have])
    return out

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from pipelines.document import Document, Page
from pipelines.features import (
    THUMB_HEIGHT,
    THUMB_WIDTH,
    TextVectorizer,
    as_thumbnail,
    document_layout_features,
    has_words,
    n_layout_features,
    normalize_text,
    page_layout_features,
)
from tests.pipelines._docs import make_docs, render


def test_normalize_text_lowercases_maps_digits_and_collapses_whitespace():
    assert normalize_text("Total DUE:\t1,234.56\n\fPage 2", 100) == "total due: 0,000.00 page 0"


def test_normalize_text_maps_other_scripts_digits():
    assert normalize_text("Invoice \u0661\u0662\u0663", 100) == "invoice 000"


def test_normalize_text_cuts_at_a_word_boundary():
    out = normalize_text("alpha beta gamma delta", 13)
    assert out == "alpha beta"
    assert len(normalize_text("x" * 50, 10)) == 10
    assert normalize_text("anything", 0) == ""


def test_has_words_matches_what_the_word_vectorizer_sees():
    assert has_words("an invoice")
    assert not has_words("")
    assert not has_words("a . , ;")


TEXTS = [
    "invoice vendor net due 0000.00 total",
    "payslip employee salary gross net",
    "taxpayer identification certification ssn 000-00-0000",
    "",
    "invoice invoice invoice tax tax subtotal",
    "x",
]


def _sklearn_pair(max_features):
    common = {"lowercase": False, "sublinear_tf": True, "max_features": max_features}
    word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), **common).fit(TEXTS)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common).fit(TEXTS)
    return word, char


@pytest.mark.parametrize("max_features", [50000, 25, None])
def test_text_vectorizer_equals_scikit_learn_tfidf(max_features):
    ours = TextVectorizer(word_ngrams=(1, 2), char_ngrams=(2, 5), max_features=max_features).fit(TEXTS)
    word, char = _sklearn_pair(max_features)
    assert ours.word_vocabulary_ == word.vocabulary_
    assert ours.char_vocabulary_ == char.vocabulary_
    np.testing.assert_array_equal(ours.word_idf_, word.idf_)
    np.testing.assert_array_equal(ours.char_idf_, char.idf_)
    unseen = ["vendor salary zzz", "", "invoice total 0000"]
    expected = sp.hstack([word.transform(unseen), char.transform(unseen)]).toarray()
    np.testing.assert_allclose(ours.transform(unseen).toarray(), expected, atol=1e-12)
    assert ours.n_features_out_ == expected.shape[1]


def test_text_vectorizer_cache_is_not_pickled_and_results_survive_a_round_trip():
    vec = TextVectorizer(word_ngrams=(1, 2), char_ngrams=(2, 5), max_features=None).fit(TEXTS)
    before = vec.transform(TEXTS).toarray()
    assert vec._char_cache  # filled by transform
    copy = pickle.loads(pickle.dumps(vec))
    assert copy._char_cache == {}
    np.testing.assert_array_equal(copy.transform(TEXTS).toarray(), before)


def test_text_vectorizer_without_any_text_raises():
    with pytest.raises(ValueError, match="no word or character n-gram in any of the 2 training texts"):
        TextVectorizer(word_ngrams=(1, 1), char_ngrams=(2, 3), max_features=None).fit(["", ""])


def test_as_thumbnail_coerces_shapes_and_types():
    rgb = np.zeros((256, 192, 3), dtype=np.uint8)
    assert as_thumbnail(rgb).shape == (THUMB_HEIGHT, THUMB_WIDTH)
    assert as_thumbnail(rgb).dtype == np.uint8
    floats = np.ones((THUMB_HEIGHT, THUMB_WIDTH)) * 0.5
    assert as_thumbnail(floats)[0, 0] == 127
    blank = as_thumbnail(np.zeros((0, 0)))
    assert blank.shape == (THUMB_HEIGHT, THUMB_WIDTH) and (blank == 255).all()


def test_page_layout_features_shape_and_blank_page():
    rng = np.random.default_rng(0)
    images = np.stack([render("invoice", rng), np.full((THUMB_HEIGHT, THUMB_WIDTH), 255, np.uint8)])
    feats = page_layout_features(images)
    assert feats.shape == (2, n_layout_features())
    assert feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert not feats[1].any()  # a blank page has no ink anywhere
    assert feats[0].any()


def test_page_layout_features_rejects_wrong_thumbnail_size():
    with pytest.raises(ValueError, match=r"expected thumbnails of shape \(128, 96\), found \(10, 10\)"):
        page_layout_features(np.zeros((1, 10, 10), dtype=np.uint8))


def test_layouts_of_different_classes_differ_more_than_within_a_class():
    docs, labels = make_docs(6, seed=1, text=False)
    feats = document_layout_features(docs, pages=1)
    labels = np.array(labels)
    centroids = {c: feats[labels == c].mean(axis=0) for c in set(labels)}
    for c in centroids:
        within = np.linalg.norm(feats[labels == c] - centroids[c], axis=1).mean()
        nearest_other = min(np.linalg.norm(centroids[c] - centroids[o]) for o in centroids if o != c)
        assert nearest_other > within


def test_document_layout_features_flags_missing_pages_and_accepts_empty_documents():
    image = np.full((THUMB_HEIGHT, THUMB_WIDTH), 255, np.uint8)
    image[10:20, 10:80] = 0
    two = Document("a", "a.pdf", "application/pdf", (Page(0, "", "none", image), Page(1, "", "none", image)))
    one = Document("b", "b.pdf", "application/pdf", (Page(0, "", "none", image),))
    empty = Document("c", "c.pdf", "application/pdf", ())
    feats = document_layout_features([two, one, empty], pages=2)
    per_page = n_layout_features()
    assert feats.shape == (3, 2 * per_page + 1)
    assert feats[:, -1].tolist() == [1.0, 0.0, 0.0]  # second page present?
    np.testing.assert_array_equal(feats[0, :per_page], feats[0, per_page : 2 * per_page])
    assert not feats[1, per_page:].any()
    assert not feats[2].any()
    assert document_layout_features([one], pages=1).shape == (1, per_page)
    with pytest.raises(ValueError, match="pages must be >= 1, found 0"):
        document_layout_features([one], pages=0)

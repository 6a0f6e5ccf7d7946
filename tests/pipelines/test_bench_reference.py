"""The plain reference of issue 11 (pipelines/models/reference.py): exactly the baseline it claims to be, and a
candidate like the others (factory, prediction code, evaluation, persistence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from pipelines.document import Document, Page
from pipelines.evaluate import cross_validate
from pipelines.models import ReferenceClassifier, load_model, make_candidate, save_model
from pipelines.predict import predict_documents
from tests.pipelines._docs import CLASSES, make_doc, make_docs

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_factory_builds_the_reference_with_its_defining_settings():
    model = make_candidate("reference", PARAMS["train"], seed=3)
    assert isinstance(model, ReferenceClassifier)
    assert model.get_params() == {
        "word_ngrams": (1, 2),
        "char_ngrams": (3, 5),
        "C": 20.0,
        "pages": 2,
        "random_state": 3,
    }
    assert clone(model).get_params() == model.get_params()


def test_reference_equals_the_ten_line_baseline():
    """Same probabilities as TF-IDF word 1-2 + char_wb 3-5 on the first two pages and LogisticRegression(C=20)."""
    train_docs, train_labels = make_docs(6, seed=0, n_pages=3)
    test_docs, _ = make_docs(3, seed=1, n_pages=3)
    model = ReferenceClassifier().fit(train_docs, train_labels)

    def text(doc: Document) -> str:
        return "\n".join(page.text for page in doc.pages[:2])

    word = TfidfVectorizer(ngram_range=(1, 2))
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5))
    texts = [text(d) for d in train_docs]
    matrix = sp.hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
    baseline = LogisticRegression(C=20).fit(matrix, train_labels)
    tests = [text(d) for d in test_docs]
    expected = baseline.predict_proba(sp.hstack([word.transform(tests), char.transform(tests)]).tocsr())
    np.testing.assert_allclose(model.predict_proba(test_docs), expected, rtol=1e-6, atol=1e-9)
    assert list(model.classes_) == sorted(CLASSES)


def test_reference_reads_only_the_first_two_pages():
    docs, labels = make_docs(6, seed=2)
    model = ReferenceClassifier().fit(docs, labels)
    rng = np.random.default_rng(4)
    doc = make_doc("invoice", rng, n_pages=2)
    third = make_doc("w9", rng).pages[0]
    longer = Document(
        doc.sha256, doc.name, doc.mime, (*doc.pages, Page(2, third.text * 5, "text", third.image))
    )
    np.testing.assert_array_equal(model.predict_proba([doc]), model.predict_proba([longer]))


def test_reference_serves_through_the_prediction_code_evaluation_and_persistence(tmp_path):
    docs, labels = make_docs(8, seed=5)
    test_docs, test_labels = make_docs(3, seed=6, n_pages=2)
    model = make_candidate("reference", PARAMS["train"], seed=0).fit(docs, labels)
    answers = predict_documents(model, test_docs, 0.6)
    assert [a["label"] for a in answers] == test_labels
    assert all(len(a["pages"]) == 2 for a in answers)
    report = cross_validate(
        lambda: make_candidate("reference", PARAMS["train"], seed=0),
        docs,
        labels,
        seed=0,
        max_folds=4,
        ece_bins=10,
    )
    assert report.metrics["accuracy"] >= 0.9
    save_model(model, tmp_path / "model", {})
    loaded, meta = load_model(tmp_path / "model")
    assert meta["candidate"] == "reference"
    np.testing.assert_allclose(loaded.predict_proba(test_docs), model.predict_proba(test_docs))


def test_reference_needs_some_text():
    docs, labels = make_docs(3, seed=0, text=False)
    with pytest.raises(
        ValueError, match=r"expected words in the first 2 page\(s\) of some of the 9 training"
    ):
        ReferenceClassifier().fit(docs, labels)

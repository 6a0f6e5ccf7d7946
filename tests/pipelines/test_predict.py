import json

import numpy as np
import pytest

from pipelines.document import Document
from pipelines.models import FusionClassifier, TextClassifier
from pipelines.predict import predict_documents
from tests.pipelines._docs import make_docs

DOC_KEYS = {"sha256", "label", "confidence", "scores", "needs_review", "pages", "n_pages"}
PAGE_KEYS = {"page", "label", "confidence", "scores"}


@pytest.fixture(scope="module")
def model():
    docs, labels = make_docs(6, seed=0)
    return FusionClassifier().fit(docs, labels)


@pytest.fixture(scope="module")
def batch():
    single, labels = make_docs(2, seed=1)
    multi, _ = make_docs(1, seed=2, n_pages=3)
    empty = Document("0" * 64, "empty.pdf", "application/pdf", ())
    return [*single, *multi, empty], labels


class CountingModel:
    """Wraps a model and counts the batched calls predict_documents makes."""

    def __init__(self, inner):
        self.inner = inner
        self.classes_ = inner.classes_
        self.calls = {"predict_proba": [], "predict_pages_proba": []}

    def predict_proba(self, docs):
        self.calls["predict_proba"].append(len(docs))
        return self.inner.predict_proba(docs)

    def predict_pages_proba(self, docs):
        self.calls["predict_pages_proba"].append(len(docs))
        return self.inner.predict_pages_proba(docs)


def test_output_schema_is_json_ready(model, batch):
    docs, _ = batch
    out = predict_documents(model, docs, review_threshold=0.6)
    assert len(out) == len(docs)
    json.dumps(out)
    for doc, result in zip(docs, out, strict=True):
        assert set(result) == DOC_KEYS
        assert result["sha256"] == doc.sha256
        assert result["n_pages"] == doc.n_pages == len(result["pages"])
        assert set(result["scores"]) == {"invoice", "payslip", "w9"}
        assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["label"] == max(result["scores"], key=result["scores"].get)
        assert result["confidence"] == max(result["scores"].values())
        assert type(result["confidence"]) is float and type(result["needs_review"]) is bool
        for number, page in enumerate(result["pages"], start=1):
            assert set(page) == PAGE_KEYS and page["page"] == number
            assert page["label"] == max(page["scores"], key=page["scores"].get)


def test_labels_match_the_model(model, batch):
    docs, labels = batch
    out = predict_documents(model, docs, review_threshold=0.6)
    assert [r["label"] for r in out[: len(labels)]] == labels
    multi = out[len(labels)]
    expected = model.predict_proba([docs[len(labels)]])[0]
    assert list(multi["scores"].values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert out[-1]["pages"] == [] and out[-1]["n_pages"] == 0


def test_needs_review_follows_the_threshold(model, batch):
    docs, _ = batch
    assert not any(r["needs_review"] for r in predict_documents(model, docs, review_threshold=0.0))
    assert all(r["needs_review"] for r in predict_documents(model, docs, review_threshold=1.01))
    out = predict_documents(model, docs, review_threshold=0.9)
    assert [r["needs_review"] for r in out] == [r["confidence"] < 0.9 for r in out]


def test_one_batched_call_for_pages_and_one_for_multi_page_documents(model, batch):
    docs, _ = batch
    counting = CountingModel(model)
    predict_documents(counting, docs, review_threshold=0.6)
    assert counting.calls["predict_pages_proba"] == [len(docs)]
    # one-page documents reuse their page's score; the three 3-page documents and the empty one go in one call
    assert counting.calls["predict_proba"] == [4]


def test_single_page_document_score_equals_its_page_score(batch):
    docs, labels = make_docs(4, seed=5)
    text = TextClassifier().fit(docs, labels)
    out = predict_documents(text, batch[0][:1], review_threshold=0.5)
    np.testing.assert_allclose(
        list(out[0]["scores"].values()), text.predict_proba(batch[0][:1])[0], atol=1e-6
    )
    assert out[0]["scores"] == out[0]["pages"][0]["scores"]


def test_empty_batch(model):
    counting = CountingModel(model)
    assert predict_documents(counting, [], review_threshold=0.5) == []
    assert counting.calls == {"predict_proba": [], "predict_pages_proba": []}

import copy
import json

import numpy as np
import pytest

from pipelines.document import Document
from pipelines.models import make_candidate
from pipelines.models.base import FLAG_ALL, review_threshold
from pipelines.params import load_params
from pipelines.predict import ReviewRule, predict_documents
from tests.pipelines._docs import make_docs

PARAMS = load_params()


def candidate(name: str, **overrides: object) -> object:
    """An unfitted candidate from params.yaml's ``train.<name>`` with some keys overridden."""
    train = copy.deepcopy(PARAMS["train"])
    train[name] = {**train[name], **overrides}
    return make_candidate(name, train, 0)


DOC_KEYS = {
    "sha256",
    "label",
    "confidence",
    "scores",
    "top",
    "needs_review",
    "review_score",
    "review_threshold",
    "pages",
    "n_pages",
}
PAGE_KEYS = {"page", "label", "confidence", "scores"}


@pytest.fixture(scope="module")
def model():
    docs, labels = make_docs(6, seed=0)
    return candidate("fusion").fit(docs, labels)


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
    out = predict_documents(model, docs, review=0.6)
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
        assert result["review_threshold"] == 0.6
        top = result["top"]
        assert [set(entry) for entry in top] == [{"label", "score"}] * 3
        assert top[0] == {"label": result["label"], "score": result["confidence"]}
        assert [entry["score"] for entry in top] == sorted(result["scores"].values(), reverse=True)
        assert all(result["scores"][entry["label"]] == entry["score"] for entry in top)
        for number, page in enumerate(result["pages"], start=1):
            assert set(page) == PAGE_KEYS and page["page"] == number
            assert page["label"] == max(page["scores"], key=page["scores"].get)


def test_labels_match_the_model(model, batch):
    docs, labels = batch
    out = predict_documents(model, docs, review=0.6)
    assert [r["label"] for r in out[: len(labels)]] == labels
    multi = out[len(labels)]
    expected = model.predict_proba([docs[len(labels)]])[0]
    assert list(multi["scores"].values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert out[-1]["pages"] == [] and out[-1]["n_pages"] == 0


def test_needs_review_follows_the_threshold(model, batch):
    docs, _ = batch
    assert not any(r["needs_review"] for r in predict_documents(model, docs, review=0.0))
    assert all(r["needs_review"] for r in predict_documents(model, docs, review=1.01))
    out = predict_documents(model, docs, review=0.9)
    assert [r["needs_review"] for r in out] == [r["confidence"] < 0.9 for r in out]


def test_one_batched_call_for_pages_and_one_for_multi_page_documents(model, batch):
    docs, _ = batch
    counting = CountingModel(model)
    predict_documents(counting, docs, review=0.6)
    assert counting.calls["predict_pages_proba"] == [len(docs)]
    # one-page documents reuse their page's score; the three 3-page documents and the empty one go in one call
    assert counting.calls["predict_proba"] == [4]


def test_single_page_document_score_equals_its_page_score(batch):
    docs, labels = make_docs(4, seed=5)
    text = candidate("text").fit(docs, labels)
    out = predict_documents(text, batch[0][:1], review=0.5)
    np.testing.assert_allclose(
        list(out[0]["scores"].values()), text.predict_proba(batch[0][:1])[0], atol=1e-6
    )
    assert out[0]["scores"] == out[0]["pages"][0]["scores"]


def test_empty_batch(model):
    counting = CountingModel(model)
    assert predict_documents(counting, [], review=0.5) == []
    assert counting.calls == {"predict_proba": [], "predict_pages_proba": []}


# ---------------------------------------------------------------------------------------------- review rule


def test_review_threshold_is_the_lowest_confidence_whose_answers_reach_the_target():
    confidence = [0.99, 0.95, 0.9, 0.8, 0.7, 0.6]
    correct = [True, True, True, False, True, True]
    assert review_threshold(confidence, correct, 1.0) == 0.9  # the three most confident are all right
    assert review_threshold(confidence, correct, 0.8) == 0.6  # 5 of 6 right at 0.6: 0.83
    assert review_threshold(confidence, correct, 0.85) == 0.9  # 0.83 at 0.6, 0.8 at 0.7, 0.75 at 0.8
    # accuracy dips and recovers: of the thresholds that meet the target, the one that flags the fewest wins
    assert review_threshold(confidence, [True, False, True, True, True, True], 0.8) == 0.6
    assert review_threshold([0.9, 0.8], [False, True], 0.98) == FLAG_ALL  # the most confident answer is wrong
    assert review_threshold([], [], 0.98) == FLAG_ALL


def test_review_threshold_keeps_ties_together():
    # 0.9 twice, one of them wrong: a threshold cannot answer one and flag the other
    assert review_threshold([0.95, 0.9, 0.9, 0.5], [True, True, False, True], 1.0) == 0.95
    assert review_threshold([0.9, 0.9], [True, False], 0.5) == 0.9


def test_review_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="expected one correctness per confidence"):
        review_threshold([0.5, 0.6], [True], 0.9)
    with pytest.raises(ValueError, match=r"expected a target accuracy in \(0, 1\], found 0"):
        review_threshold([0.5], [True], 0)


class Learned:
    """A fitted model as far as the review rule is concerned: its out-of-fold answers."""

    def __init__(self, confidence, correct):
        self.oof_confidence_ = np.asarray(confidence)
        self.oof_correct_ = np.asarray(correct)


def test_the_rule_reads_the_model_threshold_floors_it_and_falls_back():
    rule = ReviewRule(target_accuracy=0.9, floor=0.5, fallback=0.6)
    assert rule.threshold(Learned([0.99, 0.8, 0.7, 0.3], [True, True, True, False])) == 0.7
    assert rule.threshold(Learned([0.99, 0.4, 0.3], [True, True, True])) == 0.5  # learned 0.3, floored
    assert rule.threshold(Learned([0.99, 0.9], [False, True])) == FLAG_ALL  # nothing reaches the target
    assert rule.threshold(object()) == 0.6  # saved before thresholds were learned
    assert rule.threshold(Learned([], [])) == 0.6


def test_the_rule_comes_from_params_with_clear_errors():
    from pipelines.params import load_params

    params = load_params()["predict"]
    rule = ReviewRule.from_params(params)
    assert (rule.target_accuracy, rule.floor, rule.fallback) == (
        params["target_accuracy"],
        params["review_floor"],
        params["review_threshold"],
    )
    with pytest.raises(ValueError, match=r"predict.target_accuracy: expected a number > 0, found 0"):
        ReviewRule.from_params({**params, "target_accuracy": 0})
    with pytest.raises(ValueError, match=r"predict.review_floor: expected a number <= 1, found 1.5"):
        ReviewRule.from_params({**params, "review_floor": 1.5})
    with pytest.raises(ValueError, match="predict.review_threshold: expected a number, found 'high'"):
        ReviewRule.from_params({**params, "review_threshold": "high"})
    with pytest.raises(ValueError, match="predict.review_floor: missing key"):
        ReviewRule.from_params({"review_threshold": 0.7, "target_accuracy": 0.9})


def test_predict_documents_applies_the_model_own_learned_threshold(batch):
    docs, labels = make_docs(6, seed=3)
    text = candidate("text", calibration_folds=3).fit(docs, labels)
    assert text.oof_confidence_.shape == (len(docs),) and text.oof_correct_.dtype == bool
    rule = ReviewRule(target_accuracy=0.98, floor=0.0, fallback=0.01)
    learned = review_threshold(text.oof_confidence_, text.oof_correct_, 0.98)
    out = predict_documents(text, batch[0], rule)
    assert {r["review_threshold"] for r in out} == {round(learned, 6)}
    assert [r["needs_review"] for r in out] == [r["confidence"] < learned for r in out]
    # the same model with a stricter target: a threshold at least as high, never the fallback
    strict = predict_documents(text, batch[0], ReviewRule(target_accuracy=1.0, floor=0.0, fallback=0.01))
    assert strict[0]["review_threshold"] >= out[0]["review_threshold"] > 0.01

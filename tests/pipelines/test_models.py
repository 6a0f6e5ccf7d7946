import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from pipelines.document import Document
from pipelines.features import TextVectorizer
from pipelines.models import (
    CandidateUnavailable,
    FusionClassifier,
    ModelLoadError,
    TextClassifier,
    TransformerClassifier,
    VisualClassifier,
    fit_temperature,
    load_model,
    make_candidate,
    out_of_fold_temperature,
    save_model,
    softmax,
)
from pipelines.models.base import negative_log_likelihood
from pipelines.models.persistence import seal_model_dir
from pipelines.params import ParamsError
from pipelines.split import PageSplitter
from tests.params import PARAMS, candidate
from tests.pipelines._docs import CLASSES, make_docs

ROOT = Path(__file__).resolve().parents[2]
FAST = ["text", "visual", "fusion"]


@pytest.fixture(scope="module")
def data():
    train = make_docs(8, seed=0)
    test = make_docs(6, seed=1)
    return train, test


@pytest.fixture(scope="module")
def fitted(data):
    (docs, labels), _ = data
    return {name: candidate(name).fit(docs, labels) for name in FAST}


# ------------------------------------------------------------------ interface


@pytest.mark.parametrize("name", ["text", "visual", "fusion"])
def test_predict_proba_shapes_rows_and_accuracy(fitted, data, name):
    model = fitted[name]
    _, (docs, labels) = data
    proba = model.predict_proba(docs)
    assert proba.shape == (len(docs), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == sorted(CLASSES)
    assert np.mean(model.predict(docs) == np.array(labels)) >= 0.9


def test_classes_are_sorted_whatever_the_label_order():
    docs, labels = make_docs(4, seed=3, classes=("zeta", "alpha", "mid"))
    model = candidate("visual").fit(docs, labels)
    assert list(model.classes_) == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize("name", FAST)
def test_sklearn_conventions_clone_params_and_fit_returns_self(name, data):
    (docs, labels), _ = data
    model = candidate(name)
    params = model.get_params()
    twin = clone(model)
    assert twin.get_params().keys() == params.keys()
    twin.set_params(random_state=7)
    assert twin.get_params()["random_state"] == 7
    assert model.get_params()["random_state"] == PARAMS["seed"]
    with pytest.raises(NotFittedError):
        model.predict_proba(docs[:1])
    assert model.fit(docs, labels) is model
    assert not any(k.endswith("_") for k in model.get_params(deep=False))


def test_fit_rejects_mismatched_labels_and_a_single_class():
    docs, labels = make_docs(3, seed=0)
    with pytest.raises(ValueError, match="X has 9 documents but y has 8 labels"):
        candidate("text").fit(docs, labels[:-1])
    with pytest.raises(ValueError, match=r"expected at least 2 classes, found 1 \('w9'\)"):
        candidate("text").fit(docs, ["w9"] * len(docs))
    with pytest.raises(TypeError, match="expected a sequence of Document, found str"):
        candidate("text").fit("not documents", labels)


@pytest.mark.parametrize("name", ["text", "visual", "fusion"])
def test_page_probabilities_batched_and_single(fitted, name):
    model = fitted[name]
    docs, _ = make_docs(1, seed=5, n_pages=3)
    empty = Document("e", "e.pdf", "application/pdf", ())
    batched = model.predict_pages_proba([*docs, empty])
    assert [b.shape for b in batched] == [(3, 3)] * 3 + [(0, 3)]
    np.testing.assert_allclose(batched[1], model.predict_page_proba(docs[1]), atol=1e-7)
    one_page = Document(docs[0].sha256, "p", "application/pdf", (docs[0].pages[0],))
    np.testing.assert_allclose(batched[0][0], model.predict_proba([one_page])[0], atol=1e-7)


def test_documents_without_pages_still_get_probabilities(fitted):
    empty = Document("e", "e.pdf", "application/pdf", ())
    for model in fitted.values():
        proba = model.predict_proba([empty])
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


# ------------------------------------------------------------------ calibration


def test_fit_temperature_recovers_the_generating_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(3000, 4))
    y = np.array([rng.choice(4, p=p) for p in softmax(logits, 2.0)])
    assert fit_temperature(logits, y, smoothing=0.0) == pytest.approx(2.0, rel=0.1)


def test_fit_temperature_stays_finite_on_separated_scores():
    scores = np.array([[5.0, -5.0], [-5.0, 5.0]] * 10)
    y = np.array([0, 1] * 10)
    t = fit_temperature(scores, y)
    assert 0.05 < t < 20
    assert softmax(scores, t).max() == pytest.approx(1 - 1 / 22, abs=0.01)  # Laplace: (n + 1) / (n + 2)


def test_calibration_keeps_argmax_and_does_not_worsen_held_out_nll(data):
    (docs, labels), (test_docs, test_labels) = data
    model = candidate("text").fit(docs, labels)
    scores = model.decision_function(test_docs)
    calibrated = model.predict_proba(test_docs)
    raw = softmax(scores)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), scores.argmax(axis=1))
    y = np.searchsorted(model.classes_, test_labels)
    assert negative_log_likelihood(calibrated, y) <= negative_log_likelihood(raw, y)
    assert model.temperature_ != 1.0
    assert "fitted on 5-fold out-of-fold scores" in model.calibration_
    assert model.oof_proba_.shape == (len(docs), 3)


def test_calibration_folds_follow_the_smallest_class(caplog):
    docs, labels = make_docs(3, seed=2)
    with caplog.at_level(logging.INFO, logger="pipelines.models"):
        model = candidate("visual").fit(docs, labels)
    assert "3-fold" in model.calibration_


def test_class_with_one_example_falls_back_to_uncalibrated_softmax(caplog):
    docs, labels = make_docs(4, seed=2)
    docs, labels = docs[:-2], labels[:-2]
    docs = docs[:-3] + [docs[-1]]
    labels = labels[:-3] + [labels[-1]]
    counts = {c: labels.count(c) for c in set(labels)}
    assert min(counts.values()) == 2
    docs.append(make_docs(1, seed=9, classes=("lonely",))[0][0])
    labels.append("lonely")
    with caplog.at_level(logging.WARNING, logger="pipelines.models"):
        model = candidate("text").fit(docs, labels)
    assert model.temperature_ == 1.0
    assert model.oof_proba_ is None
    assert "found smallest class 1" in model.calibration_
    assert "uncalibrated softmax" in caplog.text
    np.testing.assert_allclose(model.predict_proba(docs), softmax(model.decision_function(docs)))


def test_out_of_fold_temperature_is_reusable_with_any_scorer():
    y = np.array([0, 1] * 6)
    fits = []

    def fit(idx):
        fits.append(idx)
        return None

    def score(_, idx):
        return np.column_stack([np.where(y[idx] == 0, 1.0, -1.0), np.zeros(len(idx))])

    result = out_of_fold_temperature(fit, score, y, 2, max_folds=4, seed=0)
    assert len(fits) == 4
    assert result.oof_scores.shape == (12, 2)
    assert result.temperature < 1.0  # always right: sharpen


# ------------------------------------------------------------------ visual and fusion


def test_visual_model_separates_classes_whose_text_is_empty():
    docs, labels = make_docs(6, seed=4, text=False)
    test_docs, test_labels = make_docs(5, seed=5, text=False)
    model = candidate("visual").fit(docs, labels)
    assert np.mean(model.predict(test_docs) == np.array(test_labels)) >= 0.9


def test_fusion_picks_its_weight_from_the_grid_by_out_of_fold_log_loss(fitted):
    model = fitted["fusion"]
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert model.weight_ in grid
    assert list(model.oof_log_loss_) == grid
    assert model.oof_log_loss_[model.weight_] == min(model.oof_log_loss_.values())
    assert "by out-of-fold log loss" in model.selection_


def test_fusion_keeps_its_out_of_fold_answers_so_its_review_threshold_is_learned(fitted, data):
    """Like every calibrated candidate, fusion keeps the out-of-fold answers at its chosen weight: needs_review
    comes from its own risk-coverage curve, not from the fixed fallback threshold."""
    from pipelines.predict import ReviewRule

    (docs, labels), _ = data
    model = fitted["fusion"]
    assert model.oof_confidence_.shape == (len(docs),) and model.oof_correct_.shape == (len(docs),)
    assert float(np.mean(model.oof_correct_)) >= 0.8
    assert ReviewRule(target_accuracy=0.98, floor=0.0, fallback=0.6).learned(model) is not None


def test_fusion_is_deterministic_and_uses_the_visual_model_alone_without_text(fitted, data):
    (docs, labels), _ = data
    again = candidate("fusion").fit(docs, labels)
    assert again.weight_ == fitted["fusion"].weight_
    scans, scan_labels = make_docs(4, seed=6, text=False)
    fusion = fitted["fusion"]
    np.testing.assert_allclose(fusion.predict_proba(scans), fusion.visual_.predict_proba(scans), atol=1e-9)
    assert np.mean(fusion.predict(scans) == np.array(scan_labels)) >= 0.9


def test_fusion_rejects_weights_outside_unit_interval(data):
    (docs, labels), _ = data
    with pytest.raises(ParamsError, match=r"train.fusion.weights\[0\]: expected a number <= 1"):
        candidate("fusion", weights=[1.5])
    with pytest.raises(ValueError, match=r"expected a non-empty list of weights in \[0, 1\], found \(1.5,\)"):
        candidate("fusion").set_params(weights=(1.5,)).fit(docs, labels)


# ------------------------------------------------------------------ factory


@pytest.mark.parametrize(
    "cls",
    [TextClassifier, VisualClassifier, FusionClassifier, TransformerClassifier, TextVectorizer, PageSplitter],
)
def test_estimators_have_no_defaults_of_their_own(cls):
    """params.yaml is the one place of every value: a constructor default would be a second copy."""
    defaults = [p.name for p in inspect.signature(cls).parameters.values() if p.default is not p.empty]
    assert defaults == []


@pytest.mark.parametrize(
    ("name", "built"),
    [("text", set()), ("visual", set()), ("fusion", {"text", "visual"}), ("transformer", set())],
)
def test_make_candidate_passes_every_constructor_argument(name, built):
    """Each constructor argument comes from train.<name> (or is a part the factory builds, or the seed)."""
    model = make_candidate(name, PARAMS["train"], seed=7)
    arguments = set(inspect.signature(type(model)).parameters)
    assert arguments == set(PARAMS["train"][name]) | built | {"random_state"}
    assert model.random_state == 7


def test_make_candidate_builds_every_candidate_from_params_yaml():
    train = PARAMS["train"]
    text = make_candidate("text", train, seed=7)
    assert isinstance(text, TextClassifier)
    assert text.random_state == 7 and text.char_ngrams == tuple(train["text"]["char_ngrams"])
    fusion = make_candidate("fusion", train, seed=7)
    assert isinstance(fusion.text, TextClassifier) and isinstance(fusion.visual, VisualClassifier)
    assert fusion.weights == tuple(train["fusion"]["weights"])
    transformer = make_candidate("transformer", train, seed=7)
    assert transformer.name == "transformer"
    assert transformer.base == train["transformer"]["base"]
    assert transformer.max_length == train["transformer"]["max_length"]
    assert transformer.learning_rate == train["transformer"]["learning_rate"]
    assert clone(fusion).get_params()["text__C"] == train["text"]["C"]


def test_make_candidate_rejects_unknown_names_and_parameters():
    with pytest.raises(
        ValueError, match="unknown candidate 'svm': expected one of text, visual, fusion, transformer"
    ):
        make_candidate("svm", PARAMS["train"], seed=1)
    with pytest.raises(ParamsError, match=r"train.visual.depth: unknown key; expected one of C, pages"):
        make_candidate("visual", {"visual": {**PARAMS["train"]["visual"], "depth": 3}}, seed=1)
    with pytest.raises(ParamsError, match=r"^train.visual.C: missing key"):
        make_candidate("visual", {"visual": {"pages": 1, "calibration_folds": 0}}, seed=1)
    with pytest.raises(ParamsError, match=r"^train.text: missing key"):
        make_candidate("fusion", {k: v for k, v in PARAMS["train"].items() if k != "text"}, seed=1)
    with pytest.raises(ParamsError, match=r"^train.reference: unknown key; the reference candidate takes no"):
        make_candidate("reference", {"reference": {"C": 1.0}}, seed=1)


def test_candidate_unavailable_carries_its_reason():
    err = CandidateUnavailable("no checkpoint at /x")
    assert err.reason == "no checkpoint at /x" and str(err) == "no checkpoint at /x"


def test_importing_models_loads_neither_torch_nor_transformers():
    code = "import sys, pipelines.models; print([m for m in ('torch', 'transformers') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ persistence


@pytest.mark.parametrize("name", ["text", "visual", "fusion"])
def test_save_load_round_trip_gives_identical_probabilities(fitted, data, tmp_path, name):
    _, (docs, _) = data
    model = fitted[name]
    written = save_model(model, tmp_path / "m", {"dataset": "abc123"})
    loaded, meta = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(docs), model.predict_proba(docs))
    assert meta == written
    assert meta["candidate"] == name
    assert meta["classes"] == sorted(CLASSES)
    assert meta["dataset"] == "abc123"
    assert "scikit-learn" in meta["versions"] and meta["created"]
    json.dumps(meta)


def test_save_model_rejects_reserved_meta_keys_unless_they_agree(fitted, tmp_path):
    with pytest.raises(ValueError, match=r"meta must not set the reserved key\(s\) \['classes'\]"):
        save_model(fitted["text"], tmp_path, {"classes": ["x"]})
    with pytest.raises(ValueError, match=r"reserved key\(s\) \['created'\]"):
        save_model(fitted["text"], tmp_path, {"created": "yesterday"})
    meta = save_model(fitted["text"], tmp_path, {"candidate": "text", "classes": sorted(CLASSES)})
    assert meta["candidate"] == "text"


def test_load_model_errors_are_clear(fitted, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="has no meta.json"):
        load_model(tmp_path / "empty")
    # Each broken file is sealed again, as by a bad save: past the digest check (tests/pipelines/test_persistence.py)
    save_model(fitted["visual"], tmp_path / "bad", {})
    (tmp_path / "bad" / "model.joblib").write_bytes(b"not a pickle")
    seal_model_dir(tmp_path / "bad")
    with pytest.raises(ModelLoadError, match="unreadable model file"):
        load_model(tmp_path / "bad")
    (tmp_path / "bad" / "meta.json").write_text("{broken")
    seal_model_dir(tmp_path / "bad")
    with pytest.raises(ModelLoadError, match="unreadable .*meta.json"):
        load_model(tmp_path / "bad")
    save_model(fitted["visual"], tmp_path / "swapped", {})
    meta = json.loads((tmp_path / "swapped" / "meta.json").read_text())
    meta["classes"] = ["a", "b"]
    (tmp_path / "swapped" / "meta.json").write_text(json.dumps(meta))
    seal_model_dir(tmp_path / "swapped")
    with pytest.raises(ModelLoadError, match="does not match meta.json"):
        load_model(tmp_path / "swapped")

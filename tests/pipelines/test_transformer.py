import json

import numpy as np
import pytest

from pipelines.models import CandidateUnavailable, ModelLoadError, load_model, save_model
from pipelines.models.persistence import seal_model_dir
from pipelines.models.transformer import build_tiny_checkpoint
from tests.params import candidate
from tests.pipelines._docs import make_docs

# a tiny random BERT learns the toy set only with a large learning rate and many short epochs
TOY = {"max_length": 64, "epochs": 20, "batch_size": 4, "learning_rate": 5e-3, "calibration_folds": 0}


@pytest.fixture(scope="module")
def toy():
    return make_docs(4, seed=0), make_docs(4, seed=1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, toy):
    (docs, _), _ = toy
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), [d.text for d in docs], seed=0)


@pytest.fixture(scope="module")
def fitted(checkpoint, toy):
    (docs, labels), _ = toy
    return candidate("transformer", base=str(checkpoint), **TOY).fit(docs, labels)


def test_tiny_checkpoint_is_small_and_deterministic(checkpoint, toy, tmp_path):
    config = json.loads((checkpoint / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (32, 2, 2)
    assert config["intermediate_size"] == 64
    (docs, _), _ = toy
    again = build_tiny_checkpoint(tmp_path / "again", [d.text for d in docs], seed=0)
    assert (again / "tokenizer.json").read_bytes() == (checkpoint / "tokenizer.json").read_bytes()
    assert (again / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()


def test_fine_tuning_learns_a_separable_toy_set(fitted, toy):
    _, (test_docs, test_labels) = toy
    proba = fitted.predict_proba(test_docs)
    assert proba.shape == (len(test_docs), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(fitted.classes_) == sorted(set(test_labels))
    assert np.mean(fitted.predict(test_docs) == np.array(test_labels)) == 1.0
    assert "calibration disabled" in fitted.calibration_


def test_page_probabilities(fitted):
    docs, _ = make_docs(1, seed=3, n_pages=2)
    pages = fitted.predict_pages_proba(docs)
    assert [p.shape for p in pages] == [(2, 3)] * 3
    np.testing.assert_allclose(pages[0], fitted.predict_page_proba(docs[0]), atol=1e-6)


def test_same_seed_same_model(checkpoint, toy, fitted):
    (docs, labels), (test_docs, _) = toy
    again = candidate("transformer", base=str(checkpoint), **TOY).fit(docs, labels)
    np.testing.assert_allclose(again.predict_proba(test_docs), fitted.predict_proba(test_docs), atol=1e-6)


def test_calibrated_fit_uses_out_of_fold_fine_tunes(checkpoint, toy):
    (docs, labels), _ = toy
    params = {**TOY, "calibration_folds": 2, "epochs": 5}
    model = candidate("transformer", base=str(checkpoint), **params).fit(docs, labels)
    assert "2-fold" in model.calibration_
    assert model.oof_proba_.shape == (len(docs), 3)


def test_missing_checkpoint_raises_candidate_unavailable_with_the_path(tmp_path, toy):
    (docs, labels), _ = toy
    missing = tmp_path / "no-such-model"
    with pytest.raises(CandidateUnavailable, match=f"{missing}.* does not exist") as info:
        candidate("transformer", base=str(missing)).fit(docs, labels)
    assert str(missing) in info.value.reason
    (tmp_path / "empty").mkdir()
    with pytest.raises(CandidateUnavailable, match="has no config.json"):
        candidate("transformer", base=str(tmp_path / "empty")).fit(docs, labels)


def test_checkpoint_without_weights_is_unavailable_too(checkpoint, toy, tmp_path):
    (docs, labels), _ = toy
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((checkpoint / name).read_bytes())
    with pytest.raises(CandidateUnavailable, match=f"{broken} cannot be loaded"):
        candidate("transformer", base=str(broken), **TOY).fit(docs, labels)


def test_save_load_round_trip(fitted, toy, tmp_path):
    _, (test_docs, _) = toy
    meta = save_model(fitted, tmp_path / "model", {"note": "tiny"})
    assert (tmp_path / "model" / "transformer" / "config.json").is_file()
    loaded, loaded_meta = load_model(tmp_path / "model")
    assert loaded_meta == meta and meta["candidate"] == "transformer"
    assert "torch" in meta["versions"]
    np.testing.assert_allclose(loaded.predict_proba(test_docs), fitted.predict_proba(test_docs), atol=1e-6)
    assert loaded.get_params() == fitted.get_params()


def test_load_without_estimator_state_is_a_clear_error(fitted, tmp_path):
    save_model(fitted, tmp_path / "model", {})
    (tmp_path / "model" / "transformer" / "docclass_estimator.json").unlink()
    seal_model_dir(tmp_path / "model")  # past the digest check: from_pretrained's own error
    with pytest.raises(ModelLoadError, match="has no docclass_estimator.json"):
        load_model(tmp_path / "model")

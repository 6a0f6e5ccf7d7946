"""Pre-annotations come from a real model written by `docclass train` (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling.preannotate import model_predictor
from pipelines.params import load_params


@pytest.mark.slow
def test_model_predictor_labels_documents_and_skips_unreadable(sample_corpus: Path, tmp_path: Path):
    from pipelines.dataset import load_labeled_documents
    from pipelines.extract import ExtractConfig, ExtractionCache
    from pipelines.ingest import Limits
    from pipelines.models import make_candidate, save_model

    params = load_params()
    cache = tmp_path / "cache"
    dataset = load_labeled_documents(
        sample_corpus,
        ExtractConfig.from_params(params["extract"]),
        Limits.from_params(params["ingest"]),
        cache=ExtractionCache(cache),
    )
    model = make_candidate("text", params["train"], 42).fit(dataset.documents, dataset.labels)
    save_model(model, tmp_path / "model", {"candidate": "text", "classes": sorted(set(dataset.labels))})

    predict, meta = model_predictor(tmp_path / "model", params, cache)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"")
    files = [sorted((sample_corpus / label).iterdir())[0] for label in ("w9", "payslip")] + [bad]
    (w9, payslip, unreadable) = predict(files)
    assert meta["candidate"] == "text"
    assert w9[0] == "w9" and payslip[0] == "payslip"
    assert 0.2 < w9[1] <= 1.0
    assert unreadable == ("", 0.0)

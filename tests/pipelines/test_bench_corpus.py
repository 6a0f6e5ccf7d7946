"""The benchmark's corpus plumbing on ../shared/corpus (skipped where absent): every document has a source, the
source-held-out protocol skips exactly the classes with one source, and the reference runs on a real split."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.settings import Settings
from pipelines.bench.accuracy import REFERENCE, draw_splits, run_splits, source_splits, summarise_draws
from pipelines.bench.run import document_sources
from pipelines.dataset import load_labeled_documents
from pipelines.extract import ExtractConfig, ExtractionCache
from pipelines.ingest import Limits
from pipelines.models import make_candidate
from pipelines.params import load_params

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def test_sources_and_one_reference_draw_on_the_corpus(corpus_dir: Path) -> None:
    params = load_params()
    dataset = load_labeled_documents(
        corpus_dir,
        ExtractConfig.from_params(params["extract"]),
        Limits.from_params(params["ingest"]),
        cache=ExtractionCache(Settings().cache_dir),
    )
    docs, labels = dataset.documents, dataset.labels
    sources, how = document_sources(
        corpus_dir, docs, params["bench"]["manifest"], params["bench"]["source_column"]
    )
    assert sources is not None and "matched by sha256" in how
    _, skipped = source_splits(labels, sources)
    # a class all of whose documents come from one source cannot be tested with that source held out
    single = {c for c in set(labels) if len({s for s, y in zip(sources, labels, strict=True) if y == c}) == 1}
    assert {d["label"] for d in skipped} == single
    assert len(skipped) == sum(labels.count(c) for c in single)

    splits, _ = draw_splits(labels, sizes=[15], draws=1, seed=int(params["seed"]))
    factories = {REFERENCE: lambda: make_candidate(REFERENCE, params["train"], int(params["seed"]))}
    outcomes = run_splits(factories, docs, labels, splits, params["predict"], log=lambda _: None)
    cell = summarise_draws(outcomes, splits, labels, target_accuracy=0.98)["15"][REFERENCE]
    assert cell["status"] == "ok" and cell["accuracy_mean"] > 0.5

"""On the real documents of ../shared/corpus (skipped cleanly where the folder is absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipelines.dataset import LabeledDocuments, load_labeled_documents
from pipelines.document import Document
from pipelines.extract import ExtractConfig, ExtractionCache
from pipelines.ingest import Limits
from pipelines.params import load_params

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


@pytest.fixture(scope="module")
def manifest(corpus_dir: Path) -> dict[str, dict[str, str]]:
    with (corpus_dir / "manifest.csv").open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LabeledDocuments:
    params = load_params()
    cache = ExtractionCache(tmp_path_factory.mktemp("corpus-cache"))
    return load_labeled_documents(
        corpus_dir,
        ExtractConfig.from_params(params["extract"]),
        Limits.from_params(params["ingest"]),
        cache=cache,
    )


def by_file(corpus: LabeledDocuments, corpus_dir: Path) -> dict[str, Document]:
    return {str(Path(doc.name).relative_to(corpus_dir)): doc for doc in corpus.documents}


def test_every_document_is_ingested(corpus, corpus_dir, manifest):
    documents = by_file(corpus, corpus_dir)
    # README.md and manifest.csv sit at the top, outside the class folders: they are not dataset members.
    assert not corpus.rejected, [r.reason for r in corpus.rejected]
    assert set(documents) == set(manifest)
    for name, row in manifest.items():
        assert documents[name].n_pages == int(row["pages"]), name
        assert corpus.labels[corpus.documents.index(documents[name])] == row["label"]


def test_scans_are_ocrd_and_born_digital_uses_the_text_layer(corpus, corpus_dir, manifest):
    documents = by_file(corpus, corpus_dir)
    for name, row in manifest.items():
        sources = {page.source for page in documents[name].pages}
        if row["kind"] == "born-digital" and name.endswith(".pdf"):
            assert sources <= {"text", "none"}, name
        elif row["kind"] in ("scanned", "photo") and not name.endswith("immtrac_consent_form.pdf"):
            # (the ImmTrac scan carries an OCR text layer of its own, which is used)
            assert "ocr" in sources, name
    for name, words in {
        "w9/christina_w9_2024rev_p1_image.pdf": ("Taxpayer", "Identification"),
        "w9/mindee_w9_filled_2013rev.jpg": ("Taxpayer",),
        "payslip/mindee_bulletin_de_paie_fr.jpg": ("BULLETIN DE PAIE",),
        "other/gdocai_starbucks_receipt_photo.pdf": ("Starbucks",),  # dark background: adaptive threshold
        "invoice/pdfco_digitalocean_scanned.jpg": ("DigitalOcean",),
    }.items():
        text = documents[name].text
        assert all(word in text for word in words), (name, text[:300])


def test_sideways_scan_is_turned_upright(corpus, corpus_dir):
    card = by_file(corpus, corpus_dir)["other/gdocai_insurance_id_card.pdf"]
    assert any(page.rotation in (90, 270) for page in card.pages)
    assert "INSURANCE" in card.text


def test_broken_text_layer_falls_back_to_ocr(corpus, corpus_dir):
    """This signed W-9's text layer decodes to control characters: OCR reads it instead."""
    signed = by_file(corpus, corpus_dir)["w9/stephens_w9_2024rev_signed.pdf"]
    assert signed.pages[0].source == "ocr" and "W-9" in signed.pages[0].text


def test_text_model_cross_validated_floor(corpus):
    """A regression guard, not the target: the benchmark measures the learning curve (make bench)."""
    from pipelines.evaluate import cross_validate
    from pipelines.models import make_candidate

    params = load_params()
    report = cross_validate(
        lambda: make_candidate("text", params["train"], 42),
        corpus.documents,
        corpus.labels,
        seed=42,
        max_folds=5,
        ece_bins=10,
    )
    print(report.metrics["accuracy"], {k: v["recall"] for k, v in report.metrics["per_class"].items()})
    # Measured 0.81 accuracy with recall 0.87 on w9 and 1.0 on 1040 (5-fold, seed 42); floors sit below.
    assert report.metrics["accuracy"] >= 0.75, report.metrics
    assert report.metrics["per_class"]["w9"]["recall"] >= 0.8
    assert report.metrics["per_class"]["1040"]["recall"] >= 0.8

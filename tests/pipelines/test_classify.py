"""One path for a document (pipelines.classify): per input its documents, each classified or rejected with a kind
and a reason, whatever goes wrong with the others."""

from __future__ import annotations

from pathlib import Path

import pytesseract
import pytest

from pipelines.classify import Classified, Upload, classify, classify_inputs, extract_inputs
from pipelines.document import Document
from pipelines.extract import ExtractionCache
from pipelines.ingest import Rejected, expand, sha256_of
from pipelines.models import TextClassifier
from tests.failure_cases import (
    FAIL_WIDTH,
    HANG_WIDTH,
    OK_WIDTH,
    decode_failures,
    empty_zip,
    fake_tesseract,
    scanned_png,
    zip_of,
)
from tests.params import candidate, extract_config, ingest_limits
from tests.pipelines._docs import make_docs
from tests.pipelines.conftest import text_pdf

CONFIG = extract_config(ocr_timeout_s=1.5)


@pytest.fixture(scope="module")
def model() -> TextClassifier:
    docs, labels = make_docs(4, seed=0)
    return candidate("text", calibration_folds=0).fit(docs, labels)


@pytest.fixture
def tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_tesseract(tmp_path / "fake", {HANG_WIDTH: "hang", FAIL_WIDTH: "fail"})
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))


def test_empty_archive_is_one_rejection_not_silence() -> None:
    (item,) = expand(empty_zip(), "nothing.zip", ingest_limits())
    assert isinstance(item, Rejected) and item.kind == "EmptyArchiveError"
    assert "nothing.zip is a zip archive that holds no documents: expected at least one PDF" in item.reason
    metadata_only = zip_of({"__MACOSX/._a.pdf": b"x", ".DS_Store": b"y"})
    (item,) = expand(metadata_only, "mac.zip", ingest_limits())
    assert item.kind == "EmptyArchiveError" and "only 2 file-system metadata entries" in item.reason
    nested = zip_of({"inner.zip": empty_zip(), "a.pdf": text_pdf()})
    kinds = [(entry.name, type(entry).__name__) for entry in expand(nested, "outer.zip", ingest_limits())]
    assert kinds == [("outer.zip/inner.zip", "Rejected"), ("outer.zip/a.pdf", "RawDocument")]


def test_every_failure_kind_gives_one_answer_and_the_batch_goes_on(
    model: TextClassifier, tesseract: None, tmp_path: Path
) -> None:
    cache = ExtractionCache(tmp_path / "cache")
    blocked = text_pdf("A document whose cache entry cannot be written, with enough text to read")
    # A folder where the cache entry should go: the write fails with an OSError for this document only, which
    # costs the cache entry, not the document (pipelines.extract.ExtractionCache.try_put).
    cache._path(sha256_of(blocked), CONFIG.cache_key()).mkdir(parents=True)
    inputs: list[Path | Upload] = [Upload("good.pdf", text_pdf())]
    expected = ["Document"]
    for kind, (name, data) in decode_failures().items():
        inputs.append(Upload(name, data))
        expected.append(kind)
    inputs += [
        tmp_path / "missing.pdf",
        Upload("scan-ok.png", scanned_png(OK_WIDTH)),
        Upload("scan-hang.png", scanned_png(HANG_WIDTH)),
        Upload("scan-fail.png", scanned_png(FAIL_WIDTH)),
        Upload("blocked.pdf", blocked),
        Upload("last.pdf", text_pdf("The last good document of the batch, read from its text layer")),
    ]
    expected += ["IngestError", "Document", "OcrTimeoutError", "OcrFailedError", "Document", "Document"]
    groups = extract_inputs(inputs, CONFIG, ingest_limits(), cache=cache)
    assert [len(group) for group in groups] == [1] * len(inputs)
    found = [type(entry).__name__ if isinstance(entry, Document) else entry.kind for (entry,) in groups]
    assert found == expected
    for (entry,), item in zip(groups, inputs, strict=True):
        assert entry.name == (str(item) if isinstance(item, Path) else item.name)
        if isinstance(entry, Rejected):
            assert entry.reason and "expected" in entry.reason, entry.reason
    (unstored,) = groups[-2]
    assert isinstance(unstored, Document) and unstored.sha256 == sha256_of(blocked)
    # nothing was written in the folder's place
    assert cache._path(sha256_of(blocked), CONFIG.cache_key()).is_dir()


def test_classify_inputs_streams_per_input_in_order(model: TextClassifier, tmp_path: Path) -> None:
    archive = tmp_path / "batch.zip"
    archive.write_bytes(
        zip_of({"a.pdf": text_pdf("invoice vendor net due remit"), "../evil.pdf": text_pdf()})
    )
    empty = tmp_path / "nothing.zip"
    empty.write_bytes(empty_zip())
    single = tmp_path / "single.pdf"
    single.write_bytes(text_pdf("payslip employee salary gross deductions"))
    inputs = [single, archive, empty, single]
    answers = list(classify_inputs(model, inputs, CONFIG, ingest_limits(), 0.6, chunk=2))
    assert [[type(entry).__name__ for entry in group] for group in answers] == [
        ["Classified"],
        ["Classified", "Rejected"],
        ["Rejected"],
        ["Classified"],
    ]
    first, again = answers[0][0], answers[3][0]
    assert isinstance(first, Classified) and isinstance(again, Classified)
    assert first.name == str(single) and first.prediction == again.prediction
    assert set(first.prediction) >= {"sha256", "label", "confidence", "scores", "needs_review", "pages"}
    assert answers[1][1].kind == "UnsafeArchivePathError" and answers[2][0].kind == "EmptyArchiveError"


def test_classify_batches_documents_and_matches_one_by_one(model: TextClassifier) -> None:
    docs, _ = make_docs(2, seed=5)
    together = classify(model, docs, 0.6)
    alone = [classify(model, [doc], 0.6)[0] for doc in docs]
    assert [c.prediction for c in together] == [c.prediction for c in alone]
    assert [c.document for c in together] == docs
    assert classify(model, [], 0.6) == []

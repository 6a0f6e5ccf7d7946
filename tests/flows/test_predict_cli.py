"""`docclass predict` gives every input a line, whatever goes wrong with the others: one file of each failure
kind plus good files, through the real command (Typer's runner, in-process, so a fake `tesseract` stands in)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytesseract
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli.app import app
from pipelines.extract import ExtractConfig, ExtractionCache
from pipelines.ingest import sha256_of
from pipelines.models import save_model
from pipelines.params import load_params
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
from tests.params import candidate
from tests.pipelines._docs import make_docs
from tests.pipelines.conftest import text_pdf

OCR_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs, labels = make_docs(4, seed=0)
    out = tmp_path_factory.mktemp("model")
    save_model(candidate("text", calibration_folds=0).fit(docs, labels), out, {"candidate": "text"})
    return out


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """params.yaml with a short OCR limit, a data folder of its own."""
    params = load_params()
    params["extract"]["ocr_timeout_s"] = OCR_TIMEOUT_S
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
    return {"params": path, "extract": params["extract"]}


def run_predict(params: Path, model_dir: Path, files: list[Path]) -> tuple[list[dict[str, Any]], str]:
    result = CliRunner().invoke(
        app, ["--params", str(params), "predict", "--model", str(model_dir), *map(str, files)]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_empty_archive_gets_an_error_line(cli: dict[str, Any], model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nothing.zip"
    empty.write_bytes(empty_zip())
    good = tmp_path / "good.pdf"
    good.write_bytes(text_pdf())
    lines, _ = run_predict(cli["params"], model_dir, [empty, good])
    assert [line["file"] for line in lines] == [str(empty), str(good)]
    assert lines[0]["error_type"] == "EmptyArchiveError"
    assert "holds no documents: expected at least one PDF, PNG, JPEG, TIFF or WebP" in lines[0]["error"]
    assert "label" in lines[1]


def test_one_line_per_input_whatever_fails(
    cli: dict[str, Any], model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_tesseract(tmp_path / "fake", {HANG_WIDTH: "hang", FAIL_WIDTH: "fail"})
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(fake.command))
    files: list[Path] = []
    expected: list[str] = []

    def add(name: str, data: bytes, kind: str) -> None:
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files.append(path)
        expected.append(kind)

    add("first.pdf", text_pdf(), "ok")
    for kind, (name, data) in decode_failures().items():
        add(name, data, kind)
    add("scan.png", scanned_png(OK_WIDTH), "ok")
    add("scan-hang.png", scanned_png(HANG_WIDTH), "OcrTimeoutError")
    add("scan-fail.png", scanned_png(FAIL_WIDTH), "OcrFailedError")
    blocked = text_pdf("A good document whose extraction cannot be cached because a folder is in the way")
    add("blocked.pdf", blocked, "ok")  # a cache that cannot take the entry costs the entry, not the answer
    files.append(tmp_path / "in" / "missing.pdf")
    expected.append("IngestError")
    add("last.pdf", text_pdf("The last document, after every failure"), "ok")
    # Make the cache entry of blocked.pdf a folder: writing it raises an OSError for that document only.
    from flows.settings import Settings

    key = ExtractConfig.from_params(cli["extract"]).cache_key()
    ExtractionCache(Settings().cache_dir)._path(sha256_of(blocked), key).mkdir(parents=True)

    start = time.monotonic()
    lines, stderr = run_predict(cli["params"], model_dir, files)
    elapsed = time.monotonic() - start
    assert [line["file"] for line in lines] == [
        str(path) for path in files
    ]  # exactly one line each, in order
    found = ["ok" if "label" in line else line["error_type"] for line in lines]
    assert found == expected
    for line in lines:
        if "label" in line:
            assert set(line) >= {
                "sha256",
                "confidence",
                "scores",
                "needs_review",
                "n_pages",
                "pages",
                "model",
            }
        else:
            assert line["error"] and "expected" in line["error"], line
    failures = sum(kind != "ok" for kind in expected)
    assert f"{failures} document(s) could not be classified" in stderr
    assert elapsed < OCR_TIMEOUT_S + 30, elapsed  # the hanging page cost its limit, not an hour


def test_missing_tesseract_rejects_scans_only(
    cli: dict[str, Any], model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "nowhere" / "tesseract"))
    scan, digital, archive = tmp_path / "scan.png", tmp_path / "digital.pdf", tmp_path / "mixed.zip"
    scan.write_bytes(scanned_png(OK_WIDTH))
    digital.write_bytes(text_pdf())
    archive.write_bytes(
        zip_of({"s.png": scanned_png(OK_WIDTH, height=750), "d.pdf": text_pdf("zipped text layer")})
    )
    lines, _ = run_predict(cli["params"], model_dir, [scan, digital, archive])
    assert [line.get("error_type", "ok") for line in lines] == [
        "OcrUnavailableError",
        "ok",
        "OcrUnavailableError",
        "ok",
    ]
    assert "tesseract is not installed" in lines[0]["error"]
    assert [line["file"] for line in lines] == [
        str(scan),
        str(digital),
        f"{archive}/s.png",
        f"{archive}/d.pdf",
    ]

"""The exact CLI forms other tools depend on, run through the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, docclass
from tests.pipelines.conftest import text_pdf

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(data_dir: Path) -> dict[str, str]:
    return {"DOCCLASS_DATA_DIR": str(data_dir), "DOCCLASS_PARAMS": str(ROOT / "params.yaml")}


@pytest.fixture(scope="module")
def model_dir(sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    result = docclass(
        "train",
        str(sample_corpus),
        "--model-out",
        str(out),
        "-c",
        "text",
        "-c",
        "visual",
        "-c",
        "fusion",
        cwd=ROOT,
        env=env,
    )
    assert "selected" in result.stderr
    return out


def test_train_writes_a_loadable_model(model_dir: Path):
    from pipelines.models import load_model

    model, meta = load_model(model_dir)
    assert meta["candidate"] in {"text", "visual", "fusion"}
    assert meta["classes"] == sorted(["w9", "1040", "invoice", "payslip", "other"])
    assert meta["cross_validation"]["accuracy"] >= 0.8
    assert {row["candidate"] for row in meta["candidates"]} == {"text", "visual", "fusion"}


def test_predict_json_lines_for_good_and_bad_files(model_dir: Path, sample_corpus: Path, tmp_path: Path, env):
    good = sorted((sample_corpus / "invoice").iterdir())[:2]
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    exe = tmp_path / "report.exe"
    exe.write_bytes(b"MZ" + b"\x00" * 64)
    truncated = tmp_path / "cut.pdf"
    truncated.write_bytes(b"%PDF-1.7\n" + b"\x00" * 40)
    missing = tmp_path / "missing.pdf"
    files = [good[0], empty, exe, truncated, missing, good[1]]
    result = docclass("predict", "--model", str(model_dir), *map(str, files), cwd=ROOT, env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line in (lines[0], lines[-1]):
        assert {"file", "label", "confidence", "scores", "needs_review", "pages"} <= set(line)
        assert line["label"] == "invoice"
        assert abs(sum(line["scores"].values()) - 1) < 1e-3
        assert line["pages"][0]["page"] == 1 and "label" in line["pages"][0]
    assert "empty (0 bytes)" in lines[1]["error"]
    assert "unsupported file type 'application/x-msdownload'" in lines[2]["error"]
    assert "PDF" in lines[3]["error"]
    assert "does not exist" in lines[4]["error"]
    assert "could not be classified" in result.stderr


def test_predict_zip_gives_one_line_per_member(model_dir: Path, sample_corpus: Path, tmp_path: Path, env):
    from tests.pipelines.conftest import zip_bytes

    payslip = sorted((sample_corpus / "payslip").iterdir())[0]
    archive = tmp_path / "batch.zip"
    archive.write_bytes(
        zip_bytes({"a/payslip" + payslip.suffix: payslip.read_bytes(), "../evil.pdf": text_pdf()})
    )
    result = docclass("predict", "--model", str(model_dir), str(archive), cwd=ROOT, env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[0]["label"] == "payslip" and lines[0]["file"].endswith(
        "batch.zip/a/payslip" + payslip.suffix
    )
    assert "unsafe path" in lines[1]["error"]


def test_evaluate_writes_report(sample_corpus: Path, tmp_path: Path, env):
    out = tmp_path / "report"
    result = docclass("evaluate", str(sample_corpus), "-c", "text", "--out", str(out), cwd=ROOT, env=env)
    summary = json.loads(result.stdout)
    assert summary["candidate"] == "text" and 0 <= summary["accuracy"] <= 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"w9", "1040", "invoice", "payslip", "other"}
    assert (out / "confusion.png").stat().st_size > 1000
    rows = json.loads((out / "confusion.json").read_text())
    assert len(rows) == 40 and {"actual", "predicted"} <= set(rows[0])


def test_train_labels_csv_layout(tmp_path: Path, env):
    from pipelines.samples import generate_corpus

    generate_corpus(
        tmp_path / "ds",
        per_class=3,
        seed=3,
        scanned_share=0.0,
        classes=("invoice", "payslip"),
        layout="labels_csv",
    )
    out = tmp_path / "model"
    docclass("train", str(tmp_path / "ds"), "--model-out", str(out), "-c", "text", cwd=ROOT, env=env)
    assert (out / "meta.json").exists()


def test_clear_errors(tmp_path: Path, env):
    result = docclass(
        "train", str(tmp_path / "nope"), "--model-out", str(tmp_path / "m"), cwd=ROOT, env=env, check=False
    )
    assert result.returncode == 2 and "is not a directory" in result.stderr
    (tmp_path / "one" / "a").mkdir(parents=True)
    (tmp_path / "one" / "a" / "x.pdf").write_bytes(text_pdf())
    result = docclass(
        "train", str(tmp_path / "one"), "--model-out", str(tmp_path / "m"), cwd=ROOT, env=env, check=False
    )
    assert result.returncode == 2 and "at least 2 classes" in result.stderr
    result = docclass(
        "predict", "--model", str(tmp_path / "none"), str(tmp_path / "x"), cwd=ROOT, env=env, check=False
    )
    assert result.returncode == 2 and "error" in result.stderr

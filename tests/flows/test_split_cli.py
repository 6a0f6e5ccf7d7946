"""`docclass split` / `docclass bench-split` through Typer's runner: files written, JSON printed, skips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest
import typer
from typer.testing import CliRunner

from flows.cli.split import output_name, register
from pipelines.extract import extract_documents
from pipelines.ingest import RawDocument, sha256_of
from pipelines.models import save_model
from pipelines.models.persistence import seal_model_dir
from pipelines.samples import make_bundle, make_document
from pipelines.split import fit_splitter, save_splitter
from tests.conftest import ROOT
from tests.params import PARAMS, candidate, extract_config, ingest_limits

SPLIT_PARAMS = {**PARAMS["split"], "synthetic_boundaries": 300, "text_folds": 3}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"params_path": ROOT / "params.yaml"}

    register(cli)
    return cli


def _doc(label: str, seed: int, **kwargs: object) -> bytes:
    return make_document(label, np.random.default_rng([seed, 7]), **kwargs)[0]


def _extract(data: bytes, name: str):
    raw = RawDocument(name=name, data=data, mime="application/pdf", sha256=sha256_of(data))
    return extract_documents([raw], extract_config(workers=1), ingest_limits())[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs, labels = [], []
    for label in ("w9", "1040", "invoice", "payslip", "other"):
        for i in range(4):
            docs.append(_extract(_doc(label, 200 + i), f"{label}_{i}.pdf"))
            labels.append(label)
    out = tmp_path_factory.mktemp("model")
    model = candidate("text", calibration_folds=2).fit(docs, labels)
    save_model(model, out, {"candidate": "text"})
    save_splitter(fit_splitter(docs, labels, SPLIT_PARAMS, seed=0), out)
    seal_model_dir(out)
    return out


def test_output_name():
    assert output_name(1, "w9", 1, 2) == "01_w9_p1-2.pdf"
    assert output_name(12, "1040", 7, 7) == "12_1040_p7.pdf"
    assert output_name(3, "a/b c", 2, 3) == "03_a_b_c_p2-3.pdf"


@pytest.mark.slow
def test_split_writes_one_pdf_per_document(app, model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
    parts = [_doc("invoice", 1), _doc("w9", 2), _doc("payslip", 3)]
    pages = [pymupdf.open(stream=p, filetype="pdf").page_count for p in parts]
    bundle = tmp_path / "bundle.pdf"
    bundle.write_bytes(make_bundle(parts))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["split", str(bundle), "--out", str(out), "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["splitter"] == "learned"
    ends = np.cumsum(pages)
    expected = [
        output_name(i + 1, label, int(end - n + 1), int(end))
        for i, (label, n, end) in enumerate(zip(("invoice", "w9", "payslip"), pages, ends, strict=True))
    ]
    assert sorted(p.name for p in out.iterdir()) == expected
    assert [Path(s["file"]).name for s in printed["segments"]] == expected
    for name, n in zip(expected, pages, strict=True):
        with pymupdf.open(out / name) as pdf:
            assert pdf.page_count == n


@pytest.mark.slow
def test_split_without_a_saved_splitter_falls_back(app, model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.joblib", "meta.json"):
        (bare / name).write_bytes((model_dir / name).read_bytes())
    seal_model_dir(bare)
    image = tmp_path / "payslip.png"
    image.write_bytes(_doc("payslip", 4, kind="scanned", fmt="png"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["split", str(image), "--out", str(out), "--model", str(bare)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["splitter"] == "cues"
    assert [s["first_page"] for s in printed["segments"]] == [1]
    assert [p.name for p in out.iterdir()] == [Path(printed["segments"][0]["file"]).name]


def test_split_reports_a_missing_model(app, tmp_path):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(make_bundle([_doc("invoice", 5)]))
    result = CliRunner().invoke(
        app, ["split", str(pdf), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_bench_split_skips_without_corpus(app, tmp_path):
    result = CliRunner().invoke(
        app, ["bench-split", "--corpus", str(tmp_path / "absent"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0
    assert "skipped" in result.output and "not found" in result.output
    assert not (tmp_path / "split_results.json").exists()

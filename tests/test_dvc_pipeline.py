"""`dvc repro` runs the whole pipeline offline on a dataset the test generates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.pipelines.conftest import image_bytes, page_image, scanned_pdf, zip_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _mixed_dataset(root: Path) -> None:
    """Text-layer PDFs, image-only PDFs, PNGs and a zip, folder per class."""
    from pipelines.samples import generate_corpus

    generate_corpus(root, per_class=5, seed=11, scanned_share=0.0, classes=("invoice", "payslip", "w9"))
    scan = page_image("PAYSLIP Earnings statement Employee pay period gross pay deductions net pay", dpi=100)
    (root / "payslip" / "scan.pdf").write_bytes(scanned_pdf([scan]))
    (root / "payslip" / "photo.png").write_bytes(image_bytes(scan.rotate(1, fillcolor=255), "PNG"))
    invoices = sorted((root / "invoice").iterdir())[:2]
    (root / "invoice" / "batch.zip").write_bytes(
        zip_bytes(
            {f"sub/{i}.pdf": p.read_bytes() for i, p in enumerate(invoices)} | {"sub/n.pdf": b"%PDF-1.4 junk"}
        )
    )
    for path in invoices:
        path.unlink()


def test_dvc_repro_offline(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "pipelines", repo / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["dataset"] = "data/mixed"
    params["sample"]["per_class"] = 2
    params["train"]["candidates"] = ["text", "fusion"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _mixed_dataset(repo / "data" / "mixed")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCCLASS_DATA_DIR": str(tmp_path / "data"),
    }
    run = lambda *args: subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)  # noqa: E731
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        assert run(*command).returncode == 0
    result = run(str(bin_dir / "dvc"), "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    extracted = json.loads((repo / ".data/pipeline/extracted/extracted.json").read_text())
    assert len(extracted["documents"]) == 15 + 2 + 2 - 2  # 3 classes x 5, 2 payslip scans, zip (2 of 3 ok)
    assert [r["name"].endswith("batch.zip/sub/n.pdf") for r in extracted["rejected"]] == [True]
    metrics = json.loads((repo / ".data/pipeline/eval/metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8 and set(metrics["per_class"]) == {"invoice", "payslip", "w9"}
    shown = run(str(bin_dir / "dvc"), "metrics", "show", "--json")
    assert shown.returncode == 0 and "accuracy" in shown.stdout
    plots = run(str(bin_dir / "dvc"), "plots", "show", "--json")
    assert plots.returncode == 0 and "confusion.json" in plots.stdout and "confusion.png" in plots.stdout
    assert (repo / "dvc.lock").exists()
    # Nothing changed: a second repro runs no stage.
    again = run(str(bin_dir / "dvc"), "repro")
    assert again.returncode == 0 and "didn't change" in again.stdout.lower() + again.stderr.lower()

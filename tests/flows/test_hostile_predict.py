"""Hostile-file suite, CLI: every kind of tests/hostile.py through the installed `docclass predict` console command
in its own subprocess (two at a time), each answering one JSON line per document it holds (a label, or an error
type with a message saying what was expected) within the time limit and with bounded peak RSS; then all of them in
one command, where no document may be lost to another's failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.models import save_model
from tests.conftest import ROOT
from tests.hostile import (
    LABEL,
    MAX_RSS_MB,
    MAX_SECONDS,
    Case,
    case_id,
    cases,
    record,
    says_expected,
    stored_name,
)
from tests.params import candidate
from tests.pipelines._docs import make_docs

pytestmark = [pytest.mark.hostile, pytest.mark.slow, pytest.mark.timeout(600)]

CASES = cases()
ROWS: list[dict[str, Any]] = []


@dataclass(frozen=True)
class Run:
    """One `docclass predict` run: its JSON lines, stderr, exit code, wall seconds and peak RSS."""

    lines: list[dict[str, Any]]
    stderr: str
    returncode: int
    seconds: float
    rss_mb: float


# A small launcher runs the command and writes its peak RSS (RUSAGE_CHILDREN once it has been waited for). Measured
# from here, a child's ru_maxrss would start at this test process's RSS: fork copies the high-water mark.
LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def predict(files: list[Path], model: Path, workdir: Path, limit_s: float) -> Run:
    """Run `docclass predict` on ``files`` as a user would; killed (and failed) past ``limit_s``."""
    docclass = str(Path(sys.executable).with_name("docclass"))
    rss_file = workdir / "maxrss"
    command = [sys.executable, "-c", LAUNCHER, str(rss_file), docclass, "predict", "--model", str(model)]
    env = {**os.environ, "DOCCLASS_DATA_DIR": str(workdir / "data")}
    out, err = workdir / "stdout", workdir / "stderr"
    start = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, *map(str, files)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"docclass predict {files} ran longer than {limit_s:g} s: killed") from None
    seconds = time.monotonic() - start
    return Run(
        lines=[json.loads(line) for line in out.read_text().splitlines()],
        stderr=err.read_text(),
        returncode=returncode,
        seconds=round(seconds, 2),
        rss_mb=round(int(rss_file.read_text()) / 1024, 1),  # KB on Linux
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs, labels = make_docs(4, seed=0)
    out = tmp_path_factory.mktemp("hostile-model")
    save_model(candidate("text", calibration_folds=0).fit(docs, labels), out, {"candidate": "text"})
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case written to a folder of its own (two cases may share a file name)."""
    root = tmp_path_factory.mktemp("hostile-inputs")
    paths = {}
    for number, case in enumerate(CASES):
        path = root / f"{number:02d}" / stored_name(case)
        path.parent.mkdir()
        path.write_bytes(case.make())
        paths[case.kind] = path
    return paths


@pytest.fixture(scope="module")
def runs(
    inputs: dict[str, Path], model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Run]]:
    """Each case in its own `docclass predict`, two at a time (two cores)."""
    root = tmp_path_factory.mktemp("hostile-runs")

    def one(case: Case) -> tuple[str, Run]:
        workdir = root / case_id(case)
        workdir.mkdir()
        return case.kind, predict([inputs[case.kind]], model_dir, workdir, MAX_SECONDS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(one, CASES))
    yield results
    record("predict", ROWS)


def answer_of(line: dict[str, Any]) -> str:
    return LABEL if "label" in line else str(line.get("error_type"))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_predict_answers_every_hostile_input(
    case: Case, runs: dict[str, Run], inputs: dict[str, Path]
) -> None:
    run = runs[case.kind]
    answers = [answer_of(line) for line in run.lines]
    ROWS.append(
        {
            "kind": case.kind,
            "answer": ", ".join(answers) or f"exit {run.returncode}",
            "seconds": run.seconds,
            "rss_mb": run.rss_mb,
        }
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert tuple(answers) == case.answers, run.lines
    path = str(inputs[case.kind])
    for line in run.lines:
        assert line["file"].startswith(path), line["file"]
        if "error" in line:
            assert says_expected(line["error"]), line
    assert run.seconds < MAX_SECONDS and run.rss_mb < MAX_RSS_MB, (run.seconds, run.rss_mb)


def test_one_command_with_every_input_loses_no_document(
    inputs: dict[str, Path], model_dir: Path, tmp_path: Path
) -> None:
    files = [inputs[case.kind] for case in CASES]
    run = predict(files, model_dir, tmp_path, 4 * MAX_SECONDS)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = [(str(inputs[case.kind]), answer) for case in CASES for answer in case.answers]
    found = [(line["file"], answer_of(line)) for line in run.lines]
    # Zip members are named <archive>/<member>: compare each line's input by prefix, in order.
    assert len(found) == len(expected), (len(found), len(expected))
    for (name, answer), (path, wanted) in zip(found, expected, strict=True):
        assert name.startswith(path) and answer == wanted, (name, answer, path, wanted)
    assert run.rss_mb < MAX_RSS_MB, run.rss_mb

"""Hostile-file suite, import: every kind of tests/hostile.py through everything `docclass import` does short of
Label Studio (:func:`labeling.importer.ingest_paths` then :func:`labeling.importer.prepare_tasks`: page images
rendered, originals kept). The command itself needs a running Label Studio before it reads a file, so the pure part
is what is exercised here; each document must be imported or rejected with a clear reason, within the time limit
and with bounded peak RSS (VmHWM of this process, reset before each input)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from labeling.importer import ImportReport, prepare_tasks
from pipelines.ingest import Limits, ingest_paths
from tests.hostile import (
    LABEL,
    MAX_RSS_MB,
    MAX_SECONDS,
    Case,
    case_id,
    cases,
    peak_rss_mb,
    record,
    reset_peak_rss,
    says_expected,
    stored_name,
)
from tests.params import PARAMS

pytestmark = [pytest.mark.hostile, pytest.mark.slow, pytest.mark.timeout(120)]

CASES = cases()
ROWS: list[dict[str, Any]] = []


@pytest.fixture(scope="module", autouse=True)
def report_rows() -> Any:
    yield
    record("import", ROWS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_import_answers_every_hostile_input(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "in" / stored_name(case)
    path.parent.mkdir()
    path.write_bytes(case.make())
    limits = Limits.from_params(PARAMS["ingest"])
    reset_peak_rss()
    start = time.monotonic()
    ingested = ingest_paths([path], limits)
    report = ImportReport(duplicates=dict(ingested.duplicates), rejected=list(ingested.rejected))
    tasks = prepare_tasks(
        ingested.documents,
        set(),
        tmp_path / "files",
        tmp_path / "originals",
        limits,
        int(PARAMS["labeling"]["render_dpi"]),
        report,
    )
    seconds, rss = time.monotonic() - start, peak_rss_mb()
    answers = [LABEL] * len(report.imported) + [rejected.kind for rejected in report.rejected]
    ROWS.append(
        {
            "kind": case.kind,
            "answer": ", ".join(answers),
            "seconds": round(seconds, 2),
            "rss_mb": round(rss, 1),
        }
    )
    assert not report.duplicates and len(tasks) == len(report.imported)
    assert sorted(answers) == sorted(case.import_answers or case.answers), report
    for rejected in report.rejected:
        assert rejected.name.startswith(str(path)) and says_expected(rejected.reason), rejected
    for task in tasks:
        assert task["pages"], task  # every imported document has its page images
    assert seconds < MAX_SECONDS and rss < MAX_RSS_MB, (seconds, rss)

"""`make bench-batch` (flows/bench_batch.py): the arithmetic of its figures on made-up runs, the stopping of the
processes it starts, then the benchmark itself at a tiny size (a real Prefect server and Dask cluster), and after
a Ctrl-C in the middle of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from flows.bench_batch import (
    BenchError,
    DocumentSet,
    background,
    check_rows,
    cpu_seconds,
    efficiency,
    parse_args,
    project,
    shard_overhead,
)
from tests.conftest import ROOT


def made_up_run(kind: str, workers: int, **values: Any) -> dict[str, Any]:
    run = {
        "kind": kind,
        "workers": workers,
        "documents": 1000,
        "shards": 10,
        "wall_s": 20.0,
        "shard_task_s": 15.0,
        "list_s": 2.0,
        "docs_per_s": 50.0,
        "shard_phase_docs_per_s": 100.0,
        "cpu_s": {"scheduler": 1.0, "prefect_api": 2.0, "flow": 3.0, "worker-1": 10.0},
    }
    return run | values


def test_efficiency_is_the_two_worker_rate_over_twice_the_one_worker_rate():
    one, two = made_up_run("text", 1), made_up_run("text", 2, docs_per_s=90.0)
    assert efficiency(one, two, "docs_per_s") == 0.9
    assert (
        efficiency(one, made_up_run("text", 2, shard_phase_docs_per_s=200.0), "shard_phase_docs_per_s") == 1.0
    )


def test_shard_overhead_is_the_difference_per_extra_shard():
    few = made_up_run("text", 1, shards=2, wall_s=10.0, shard_task_s=8.0)
    tiny = made_up_run(
        "text",
        1,
        shards=52,
        wall_s=20.0,
        shard_task_s=10.0,
        cpu_s={"scheduler": 1.5, "prefect_api": 4.5, "flow": 8.0, "worker-1": 16.0},
    )
    overhead = shard_overhead(tiny, few)
    assert overhead == {
        "extra_shards": 50,
        "wall_s_per_shard": 0.2,
        "inside_task_s_per_shard": 0.04,
        "between_tasks_s_per_shard": 0.16,
        "scheduler_cpu_s_per_shard": 0.01,
        "prefect_api_cpu_s_per_shard": 0.05,
        "flow_cpu_s_per_shard": 0.1,
        "worker_cpu_s_per_shard": 0.12,
    }
    with pytest.raises(BenchError, match="need more tiny shards than few: found 2 and 2"):
        shard_overhead(few, few)


def test_the_projection_scales_by_workers_until_a_per_shard_cost_caps_it():
    report = {
        "runs": [made_up_run("text", 1, shard_phase_docs_per_s=100.0, documents=1000, shards=10, list_s=2.0)],
        "efficiency": {"text": {"shard_phase": 0.9}},
        "shard_overhead": {
            "scheduler_cpu_s_per_shard": 0.01,  # 100 shards/s of 100 documents: 10000 docs/s
            "prefect_api_cpu_s_per_shard": 0.05,  # 2000 docs/s
            "flow_cpu_s_per_shard": 0.0,  # not measurable: no cap
        },
        "startup": {"1": [{"import_s": 2.0, "model_load_s": 1.0, "first_documents_s": 0.5}]},
    }
    one = project(report, "text", 1, 100_000)
    assert one["docs_per_s"] == 100.0 and one["bound_by"] == "workers"  # one worker: no efficiency factor
    assert one["list_s"] == 200.0  # 1000 documents listed in 2 s
    assert one["hours"] == round((200 + 3.5 + 1000) / 3600, 2)
    ten = project(report, "text", 10, 100_000)
    assert ten["docs_per_s"] == 900.0 and ten["bound_by"] == "workers"
    many = project(report, "text", 100, 100_000)
    assert many["docs_per_s"] == 2000.0 and many["bound_by"] == "prefect_api"
    assert set(many["caps_docs_per_s"]) == {"workers", "scheduler", "prefect_api"}


def test_rows_must_hold_every_document_once_and_classified(tmp_path: Path):
    docs = DocumentSet(
        "text", tmp_path, 2, 2, 10, {"/a.pdf": "w9", "/b.pdf": "1040"}, {"/a.pdf": 1, "/b.pdf": 1}
    )
    row = {"document": "/a.pdf", "error": None}
    check_rows("ok", [row, {"document": "/b.pdf", "error": None}], docs)
    with pytest.raises(BenchError, match=r"run r: expected each of the 2 documents once .* 1 missing"):
        check_rows("r", [row, row], docs)
    with pytest.raises(BenchError, match=r"1 repeated"):
        check_rows("r", [row, row], docs)
    with pytest.raises(BenchError, match=r"1 errors \(e.g. \['/b.pdf: broken'\]\)"):
        check_rows("r", [row, {"document": "/b.pdf", "error": "broken"}], docs)


def test_sizes_are_checked(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        parse_args(["--docs-scanned", "0"])
    assert "--docs-scanned must be at least 1: got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--overhead-docs", "4", "--tiny-shard-size", "4"])
    assert "--tiny-shard-size 4 must be below --overhead-docs 4" in capsys.readouterr().err


def test_a_background_process_and_its_children_are_stopped_on_the_way_out(tmp_path: Path):
    """Stopped also when the block raises (a failed run, a Ctrl-C): the whole process group, child included."""
    with pytest.raises(KeyboardInterrupt):
        marker = tmp_path / "child"
        command = ["sh", "-c", f"sleep 300 & echo $! > {marker}.tmp && mv {marker}.tmp {marker}; wait"]
        with background(command, tmp_path / "sh.log", os.environ) as proc:
            deadline = time.monotonic() + 10
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            child = int(marker.read_text())
            assert psutil.Process(child).status() != psutil.STATUS_ZOMBIE
            raise KeyboardInterrupt
    assert proc.poll() is not None
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_the_flow_process_cpu_leaves_out_its_children():
    """The flow runs in the benchmark's process, whose children are the Dask scheduler and workers: their CPU
    is theirs, not the flow's."""
    pid = os.getpid()
    own, whole = cpu_seconds(pid, tree=False), cpu_seconds(pid)
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    subprocess.run([sys.executable, "-c", busy], check=True)
    assert cpu_seconds(pid, tree=False) - own < 0.3 and cpu_seconds(pid) - whole >= 0.5


# ------------------------------------------------------------------------------------------ the real thing


def leftovers(tmp: Path) -> list[str]:
    """Live processes started with ``TMPDIR=tmp`` (everything the benchmark starts inherits it)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.environ().get("TMPDIR") == str(tmp) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(" ".join(process.info["cmdline"] or [])[:120])
        except psutil.Error:
            continue
    return found


def own_files(tmp: Path) -> list[str]:
    """What is left in the benchmark's $TMPDIR but the session file pymupdf writes there when imported."""
    return sorted(path.name for path in tmp.iterdir() if path.name != ".ses")


def bench_command(out: Path) -> list[str]:
    return [
        sys.executable, "-m", "flows.bench_batch", "--docs-text", "10", "--docs-scanned", "5",
        "--shard-size", "4", "--scanned-shard-size", "2", "--overhead-docs", "10", "--tiny-shard-size", "2",
        "--out", str(out),
    ]  # fmt: skip


def bench_env(tmp: Path) -> dict[str, str]:
    tmp.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DOCCLASS_", "PREFECT_"))}
    return env | {"TMPDIR": str(tmp), "HF_HUB_OFFLINE": "1", "OMP_THREAD_LIMIT": "1"}


@pytest.mark.integration
@pytest.mark.slow
def test_the_benchmark_at_a_tiny_size(tmp_path: Path):
    out = tmp_path / "batch.json"
    tmp = tmp_path / "tmp"
    result = subprocess.run(
        bench_command(out), cwd=ROOT, env=bench_env(tmp), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {(run["kind"], run["workers"]) for run in report["runs"]} == {
        ("text", 1), ("text", 2), ("scanned", 1), ("scanned", 2)
    }  # fmt: skip
    for run in report["runs"]:
        assert run["documents"] == report["sizes"][run["kind"]] == (10 if run["kind"] == "text" else 5)
        assert run["computed_shards"] == run["shards"] >= 2  # nothing reused from an earlier run
        assert run["docs_per_s"] > 0 and run["shard_phase_docs_per_s"] >= run["docs_per_s"]
        assert 0 < run["worker_cpu_share"] < 1.5  # about one core a worker at most (Tesseract is its child)
        assert run["wall_s"] > run["shard_phase_s"] > 0 and run["list_s"] >= 0
        workers = sorted(name for name in run["memory"] if name.startswith("worker-"))
        assert workers == [f"worker-{i}" for i in range(1, run["workers"] + 1)]
        assert all(100 < run["memory"][w]["rss_mb"] <= run["memory"][w]["tree_rss_mb"] for w in workers)
        assert all(run["cpu_s"][w] > 0 for w in workers) and run["cpu_s"]["prefect_api"] > 0
        assert run["results_bytes"] > 0 and run["output_bytes"] > 0
    assert set(report["efficiency"]) == {"text", "scanned"}
    assert all(0 < value["wall"] for value in report["efficiency"].values())
    assert report["shard_overhead"]["extra_shards"] >= 1 and report["shard_overhead"]["wall_s_per_shard"] != 0
    assert [len(report["startup"][n]) for n in ("1", "2")] == [1, 2]
    assert all(
        w["import_s"] > 0 and w["model_load_s"] > 0 < w["first_documents_s"]
        for ws in report["startup"].values()
        for w in ws
    )
    assert len(report["load_before"]) == len(report["load_after"]) == 3
    assert {row["workers"] for row in report["projection"]["scanned"]} == {1, 2, 20, 100}
    assert "scaling efficiency, scanned" in result.stdout and "per-shard overhead" in result.stdout
    assert leftovers(tmp) == [] and own_files(tmp) == []  # every process stopped, temporary files gone


@pytest.mark.integration
@pytest.mark.slow
def test_a_ctrl_c_in_the_middle_stops_everything_it_started(tmp_path: Path):
    tmp = tmp_path / "tmp"
    process = subprocess.Popen(
        bench_command(tmp_path / "batch.json"),
        cwd=ROOT,
        env=bench_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if line.startswith("run text-1w"):  # the Prefect server and the Dask cluster are up
                break
        assert len(leftovers(tmp)) >= 3, "".join(seen)[-3000:]  # scheduler, worker, Prefect server
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert leftovers(tmp) == [] and own_files(tmp) == []
    assert not (tmp_path / "batch.json").exists()

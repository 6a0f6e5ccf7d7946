"""`make bench-batch`: throughput of `docclass classify` on a real Dask cluster with 1 and 2 workers, for
born-digital (text-layer) and for scanned documents, with memory per worker, per-shard overhead, the time to list
and hash the sources and the CPU the Dask scheduler and the Prefect API spend per shard.

Self-contained: generates documents (:func:`pipelines.samples.generate_corpus`), trains one small model and
registers it as champion in a throwaway SQLite MLflow registry, starts a throwaway Prefect server with
`make -f flows/loop.mk prefect-up` (the recipe `make up` uses) and a Dask scheduler with 1, then 2 workers on free
loopback ports (`dask worker --nworkers 1 --nthreads 1 --no-nanny`, as the scale profile starts them,
``OMP_THREAD_LIMIT=1``), and runs the real flow (:func:`flows.batch.batch_flow`, `DOCCLASS_DASK_ADDRESS` set) on
each document set. Every process it starts is stopped on the way out, also after Ctrl-C or an error.

How each figure is measured (all on this machine, nothing assumed):

- wall time: around the flow call (pinning, listing, every shard, writing the rows); docs/s = documents / wall.
- shard phase: from the first shard task run's start to the last one's end, as the Prefect API recorded them;
  its docs/s is the per-worker rate the throughput model uses (listing and start-up are counted apart).
- listing: the "list documents" task run (reads and hashes every file, in the flow's process).
- scaling efficiency: docs/s with 2 workers / (2 x docs/s with 1), for the wall time and for the shard phase.
- memory: peak RSS of each worker process and of its process tree (with its Tesseract children), sampled every
  0.2 s with psutil during the run.
- per-shard overhead: the same documents run twice on 1 worker, once in many tiny shards and once in few;
  (wall_tiny - wall_few) / (shards_tiny - shards_few). The same difference of the shard task runs' own durations
  (Prefect's start to end) says how much of it is inside the task run (cache lookup, result persistence), the
  rest is between task runs (Prefect's task engine on the worker before and after each run, Dask's round trips).
  The CPU seconds of the workers, the Dask scheduler, the Prefect API server and the flow's process differ
  likewise: each one's CPU per shard, which bounds the shards per second one process of it can serve.
- start-up per worker: on each fresh worker, the imports of the flow's modules, the first load of the pinned
  version (MLflow download, digest check, unpickling) and a first born-digital and scanned document (first calls
  of the extraction and the model): the cost each worker pays once per run, done before the measured runs.

    python -m flows.bench_batch --docs-text 2000 --docs-scanned 60 --out bench/batch.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nothing of docclass at import: a worker's first import is measured (time_imports)
    from flows.batch import PinnedModel, ShardJob
    from pipelines.batch import DocumentRef

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("text", "scanned")
SAMPLE_SECONDS = 0.2
STOP_SECONDS = 20.0
MB = 2**20


class BenchError(RuntimeError):
    """A server of the benchmark did not start, or a run did not classify every document once."""


# -------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def background(
    command: Sequence[str], log: Path, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in its own session (a Ctrl-C in the terminal reaches only this process, which then stops
    it), output to ``log``; on exit SIGTERM to its process group, SIGKILL after :data:`STOP_SECONDS`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group of ``process`` (its session), SIGKILL when it outlives the grace time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; a child may linger a moment longer
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Until something listens on ``port``.

    Raises:
        BenchError: the process exited first, or nothing listens after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(
                f"{log.stem} exited with {process.returncode} before listening:\n{_log_tail(log)}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise BenchError(
        f"{log.stem}: nothing listens on 127.0.0.1:{port} after {timeout:.0f} s:\n{_log_tail(log)}"
    )


@contextmanager
def prefect_server(folder: Path, env: Mapping[str, str]) -> Iterator[tuple[str, int]]:
    """A throwaway Prefect server (SQLite in ``folder``) on a free port, by `make -f flows/loop.mk prefect-up`;
    yields its API URL and pid; `prefect-down` on exit.

    Raises:
        BenchError: it did not start (make's message holds the log's tail).
    """
    make_vars = [
        f"PREFECT_PORT={free_port()}",
        f"LOOP_DATA={folder}",
        f"LOOP_BIN={Path(sys.executable).parent}",
        "PREFECT_TIMEOUT=120",
    ]

    def make(target: str) -> str:
        command = ["make", "--no-print-directory", "-f", "flows/loop.mk", target, *make_vars]
        result = subprocess.run(command, cwd=ROOT, env=dict(env), capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchError(f"make {target} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    port = make_vars[0].partition("=")[2]
    try:
        make("prefect-up")
        yield f"http://127.0.0.1:{port}/api", int((folder / "prefect" / "server.pid").read_text())
    finally:
        make("prefect-down")


@dataclass
class Cluster:
    """A Dask scheduler and its workers, each a process of ours."""

    address: str
    scheduler_pid: int
    worker_pids: list[int]
    client: Any  # distributed.Client, for running functions on the workers


@contextmanager
def dask_cluster(folder: Path, workers: int, env: Mapping[str, str]) -> Iterator[Cluster]:
    """A scheduler and ``workers`` workers of one process and one thread (no nanny: the pid is the worker's),
    2 GiB each, on free loopback ports, as mk/scale.mk starts them.

    Raises:
        BenchError: the scheduler or a worker did not come up.
    """
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with ExitStack() as stack:
        log = folder / "scheduler.log"
        scheduler = stack.enter_context(
            background(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], log, env
            )
        )
        wait_for_port(port, scheduler, log)
        processes = []
        for index in range(1, workers + 1):
            command = [
                dask, "worker", address, "--name", f"bench-worker-{index}", "--nworkers", "1",
                "--nthreads", "1", "--memory-limit", "2GiB", "--host", "127.0.0.1", "--no-nanny",
                "--no-dashboard", "--local-directory", str(folder / f"worker-{index}"),
            ]  # fmt: skip
            processes.append(stack.enter_context(background(command, folder / f"worker-{index}.log", env)))
        client = stack.enter_context(Client(address, timeout=60))
        try:
            client.wait_for_workers(workers, timeout=120)
        except TimeoutError as error:
            logs = "\n".join(_log_tail(folder / f"worker-{i}.log", 10) for i in range(1, workers + 1))
            raise BenchError(f"{workers} Dask worker(s) did not join {address} in 120 s:\n{logs}") from error
        pids = sorted(client.run(os.getpid).values())
        if sorted(p.pid for p in processes) != pids:
            raise BenchError(f"the workers of {address} run as {pids}: expected our processes")
        yield Cluster(address, scheduler.pid, pids, client)


# ------------------------------------------------------------------------------------------------ sampling


def _tree(pid: int) -> list[Any]:
    import psutil

    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """User + system CPU seconds of a process and, with ``tree``, of its live children and of the children it
    has waited for."""
    import psutil

    total = 0.0
    for index, process in enumerate(_tree(pid) if tree else _tree(pid)[:1]):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
        if index == 0 and tree:
            total += times.children_user + times.children_system
    return total


class MemorySampler:
    """Peak RSS of each watched process and of its process tree, sampled every :data:`SAMPLE_SECONDS`; a
    process watched without its tree (``pids`` value ``(pid, False)``) counts alone."""

    def __init__(self, pids: Mapping[str, tuple[int, bool]]) -> None:
        self.pids = dict(pids)
        self.peaks: dict[str, dict[str, float]] = {}
        self.cpu_s = 0.0  # what the sampling itself cost this process (taken off the flow process's CPU)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        import psutil

        began = time.thread_time()
        for name, (pid, whole) in self.pids.items():
            own = tree = 0
            for index, process in enumerate(_tree(pid) if whole else _tree(pid)[:1]):
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                tree += rss
                own = rss if index == 0 else own
            with self._lock:
                peak = self.peaks.setdefault(name, {"rss_mb": 0.0, "tree_rss_mb": 0.0})
                peak["rss_mb"] = max(peak["rss_mb"], round(own / MB, 1))
                peak["tree_rss_mb"] = max(peak["tree_rss_mb"], round(tree / MB, 1))
        with self._lock:
            self.cpu_s += time.thread_time() - began

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# --------------------------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class DocumentSet:
    """A folder of generated documents and what it holds."""

    kind: str
    folder: Path
    documents: int
    pages: int
    bytes: int
    labels: dict[str, str]  # resolved file path -> true class
    pages_of: dict[str, int]  # resolved file path -> pages


def make_documents(folder: Path, kind: str, count: int, seed: int) -> DocumentSet:
    """``count`` generated documents (rounded up to a multiple of the classes) of one kind; ``scanned``:
    every one a scan (image-only PDF, PNG, JPEG, TIFF), ``text``: born-digital PDFs with a text layer."""
    from pipelines.samples import generate_corpus
    from pipelines.samples.document import CLASSES

    per_class = max(1, math.ceil(count / len(CLASSES)))
    folder = folder.resolve()
    share = 1.0 if kind == "scanned" else 0.0
    manifest = generate_corpus(folder, per_class=per_class, seed=seed, scanned_share=share)
    return DocumentSet(
        kind=kind,
        folder=folder,
        documents=len(manifest),
        pages=sum(int(entry["n_pages"]) for entry in manifest),
        bytes=sum((folder / entry["file"]).stat().st_size for entry in manifest),
        labels={str(folder / entry["file"]): entry["label"] for entry in manifest},
        pages_of={str(folder / entry["file"]): int(entry["n_pages"]) for entry in manifest},
    )


def subset(documents: DocumentSet, folder: Path, count: int) -> DocumentSet:
    """The first ``count`` documents of a set (by path), copied into ``folder``."""
    folder = folder.resolve()
    labels, pages = {}, {}
    for path in sorted(documents.labels)[:count]:
        target = folder / Path(path).relative_to(documents.folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        labels[str(target)] = documents.labels[path]
        pages[str(target)] = documents.pages_of[path]
    return DocumentSet(
        kind=documents.kind,
        folder=folder,
        documents=len(labels),
        pages=sum(pages.values()),
        bytes=sum(Path(path).stat().st_size for path in labels),
        labels=labels,
        pages_of=pages,
    )


def register_model(root: Path, candidate: str, params: dict[str, Any]) -> tuple[str, int, int]:
    """Train ``candidate`` on 4 generated born-digital documents per class and register it as the champion of a
    new SQLite registry in ``root``; returns the tracking URI, the version number and the model's size in bytes."""
    from flows.registry import Registry
    from pipelines.dataset import load_labeled_documents
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits
    from pipelines.models import make_candidate, save_model
    from pipelines.samples import generate_corpus

    generate_corpus(root / "train", per_class=4, seed=5, scanned_share=0.0)
    data = load_labeled_documents(
        root / "train", ExtractConfig.from_params(params["extract"]), Limits.from_params(params["ingest"])
    )
    model = make_candidate(candidate, params["train"], seed=int(params["seed"])).fit(
        data.documents, data.labels
    )
    save_model(model, root / "model", {})
    size = sum(path.stat().st_size for path in (root / "model").rglob("*") if path.is_file())
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri, "docclass", "docclass")
    run = registry.start_run("bench-batch", {"kind": "bench"})
    digest = registry.log_model(run, root / "model")
    registry.finish_run(run)
    number = registry.register(run, {"label_count": len(data.labels), "candidate": candidate}, digest=digest)
    registry.mark_complete(number)
    registry.move_champion(number, reason="bench", by="bench", automatic=False)
    return uri, int(number), size


def warm_documents(folder: Path) -> list[DocumentRef]:
    """One born-digital and one scanned document, apart from the measured sets, for :func:`warm_worker`."""
    from flows.sources import S3Config, list_sources
    from pipelines.ingest import Limits
    from pipelines.params import load_params
    from pipelines.samples import generate_corpus

    generate_corpus(folder / "text", per_class=1, seed=13, scanned_share=0.0, classes=["invoice"])
    generate_corpus(folder / "scanned", per_class=1, seed=13, scanned_share=1.0, classes=["invoice"])
    from pipelines.batch import DocumentRef

    limits = Limits.from_params(load_params()["ingest"])
    listed = list_sources([str(folder.resolve())], S3Config(), limits)
    return [entry for entry in listed if isinstance(entry, DocumentRef)]


def shard_job(model: PinnedModel, params: Mapping[str, Any], cache_dir: Path, models_dir: Path) -> ShardJob:
    """What a shard task of the flow gets (as :func:`flows.batch.classify_batch` builds it)."""
    from flows.batch import ShardJob
    from flows.sources import S3Config
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits
    from pipelines.predict import ReviewRule

    return ShardJob(
        model=model,
        extract=replace(ExtractConfig.from_params(params["extract"]), workers=1),
        limits=Limits.from_params(params["ingest"]),
        review=ReviewRule.from_params(params["predict"]),
        cache_dir=str(cache_dir),
        models_dir=str(models_dir),
        s3=S3Config(),
    )


def time_imports() -> float:
    """Run first on a fresh worker (before anything of docclass reaches it): seconds to import what a shard
    runs."""
    started = time.perf_counter()
    import flows.batch  # noqa: F401
    import pipelines.classify  # noqa: F401
    import pipelines.extract  # noqa: F401

    return round(time.perf_counter() - started, 3)


def warm_worker(job: ShardJob, documents: Sequence[DocumentRef]) -> dict[str, float]:
    """Run on a worker after :func:`time_imports`: load the pinned version (MLflow download, digest check,
    unpickling) into the worker's cache, classify ``documents`` once (first calls of the extraction and the
    model), timing both: with the imports, the start-up a worker pays once per run, kept out of the measured
    rates.

    Raises:
        BenchError: a document could not be classified.
    """
    import psutil

    import flows.batch

    imported = time.perf_counter()
    classifier = flows.batch.load_pinned(job.model, Path(job.models_dir))
    loaded = time.perf_counter()
    answers = flows.batch.classify_documents(documents, job, classifier)
    classified = time.perf_counter()
    errors = [answer["error"] for answer in answers.values() if answer["error"] is not None]
    if errors or len(answers) != len(documents):
        raise BenchError(f"the warm-up documents were not classified on worker {os.getpid()}: {errors[:2]}")
    return {
        "pid": os.getpid(),
        "model_load_s": round(loaded - imported, 3),
        "first_documents_s": round(classified - loaded, 3),
        "rss_after_mb": round(psutil.Process().memory_info().rss / MB, 1),
    }


# ------------------------------------------------------------------------------------------------ one run


@dataclass
class Watched:
    """The processes whose CPU and memory a run records: each with its process tree (a worker's Tesseract, the
    Prefect server's uvicorn), but the flow's, this process, alone (its children are the Dask processes)."""

    scheduler: int
    prefect: int
    workers: list[int]
    flow: int = field(default_factory=os.getpid)

    def named(self) -> dict[str, tuple[int, bool]]:
        """Name -> (pid, with its tree)."""
        names = {
            "scheduler": (self.scheduler, True),
            "prefect_api": (self.prefect, True),
            "flow": (self.flow, False),
        }
        return names | {f"worker-{i}": (pid, True) for i, pid in enumerate(self.workers, start=1)}

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid, tree) for name, (pid, tree) in self.named().items()}


def task_runs(flow_run_id: Any) -> tuple[float | None, list[tuple[float, float]]]:
    """The "list documents" task run's seconds and each shard task run's (start, end) as epoch seconds."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    listing = None
    shards = []
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        span = (run.start_time.timestamp(), run.end_time.timestamp())
        if run.name.startswith("list documents"):
            listing = span[1] - span[0]
        elif run.name.startswith("shard "):
            shards.append(span)
    return listing, shards


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def run_batch(
    name: str,
    documents: DocumentSet,
    shard_size: int,
    workers: int,
    watched: Watched,
    runs_dir: Path,
    params_file: Path,
) -> dict[str, Any]:
    """One `docclass classify` flow run over ``documents`` on the cluster of the settings, with nothing saved
    from an earlier run (its own data folder: result storage, extraction cache, models); its measurements.

    Raises:
        BenchError: the run failed, or its rows do not hold every document exactly once, each classified.
    """
    from flows.batch import batch_flow
    from flows.settings import Settings
    from pipelines.batch import SHARD_BOUNDS

    folder = runs_dir / name
    os.environ["DOCCLASS_DATA_DIR"] = str(folder / "data")  # read by the flow's Settings()
    out = folder / "results.jsonl"
    run = batch_flow(Settings())
    cpu_before = watched.cpu()
    with MemorySampler(watched.named()) as memory:
        started = time.perf_counter()
        state = run(
            sources=[str(documents.folder)],
            out=str(out),
            shard_size=shard_size,
            shard_bounds=(1, SHARD_BOUNDS[1]),  # the benchmark's shards of scans and its tiny shards
            params_path=str(params_file),
            return_state=True,
        )
        wall = time.perf_counter() - started
    _check_stopped()
    cpu_after = watched.cpu()
    cpu_after["flow"] -= memory.cpu_s
    if not state.is_completed():
        raise BenchError(f"run {name} ended {state.name}: {state.message}")
    summary = state.result()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    check_rows(name, rows, documents)
    listing, shards = task_runs(state.state_details.flow_run_id)
    if len(shards) != summary["shards"]:
        raise BenchError(
            f"run {name}: the Prefect API has {len(shards)} shard task runs, expected {summary['shards']}"
        )
    phase = max(end for _, end in shards) - min(start for start, _ in shards)
    cpu = {key: round(cpu_after[key] - cpu_before[key], 3) for key in cpu_before}
    return {
        "name": name,
        "kind": documents.kind,
        "workers": workers,
        "documents": len(rows),
        "pages": documents.pages,
        "bytes_read": documents.bytes,
        "shard_size": shard_size,
        "shards": summary["shards"],
        "computed_shards": summary["computed_shards"],
        "correct": round(
            sum(row["label"] == documents.labels[row["document"]] for row in rows) / len(rows), 3
        ),
        "wall_s": round(wall, 3),
        "list_s": round(listing, 3) if listing is not None else None,
        "shard_phase_s": round(phase, 3),
        "shard_task_s": round(sum(end - start for start, end in shards), 3),
        "docs_per_s": round(len(rows) / wall, 2),
        "pages_per_s": round(documents.pages / wall, 2),
        "shard_phase_docs_per_s": round(len(rows) / phase, 2),
        "cpu_s": cpu,
        # below 1: the workers waited (for tasks, or for a core other processes held)
        "worker_cpu_share": round(
            sum(cpu[f"worker-{i}"] for i in range(1, workers + 1)) / (phase * workers), 3
        ),
        "memory": memory.peaks,
        "results_bytes": folder_bytes(folder / "data" / "batch" / "results"),
        "output_bytes": out.stat().st_size,
    }


def check_rows(name: str, rows: Sequence[Mapping[str, Any]], documents: DocumentSet) -> None:
    """Every document of the set appears exactly once, classified (no error).

    Raises:
        BenchError: naming what is missing, repeated or in error.
    """
    names = [str(row["document"]) for row in rows]
    missing = sorted(set(documents.labels) - set(names))
    repeated = sorted({n for n in names if names.count(n) > 1})
    errors = [f"{row['document']}: {row['error']}" for row in rows if row["error"] is not None]
    if missing or repeated or errors or len(rows) != documents.documents:
        raise BenchError(
            f"run {name}: expected each of the {documents.documents} documents once and classified, found "
            f"{len(rows)} rows, {len(missing)} missing (e.g. {missing[:2]}), {len(repeated)} repeated, "
            f"{len(errors)} errors (e.g. {errors[:2]})"
        )


# ------------------------------------------------------------------------------------------------ figures


def efficiency(one: Mapping[str, Any], two: Mapping[str, Any], key: str) -> float:
    """docs/s with 2 workers / (2 x docs/s with 1)."""
    return round(float(two[key]) / (2 * float(one[key])), 3)


def shard_overhead(tiny: Mapping[str, Any], few: Mapping[str, Any]) -> dict[str, float]:
    """What one more shard costs, from the same documents in many tiny shards and in few, on 1 worker."""
    extra = int(tiny["shards"]) - int(few["shards"])
    if extra < 1:
        raise BenchError(
            f"the overhead runs need more tiny shards than few: found {tiny['shards']} and {few['shards']}"
        )

    def per_shard(value: float) -> float:
        return round(value / extra, 4)

    wall = per_shard(tiny["wall_s"] - few["wall_s"])
    inside = per_shard(tiny["shard_task_s"] - few["shard_task_s"])
    cpu = {key: per_shard(tiny["cpu_s"][key] - few["cpu_s"][key]) for key in tiny["cpu_s"]}
    return {
        "extra_shards": extra,
        "wall_s_per_shard": wall,
        "inside_task_s_per_shard": inside,
        "between_tasks_s_per_shard": round(wall - inside, 4),
        "scheduler_cpu_s_per_shard": cpu["scheduler"],
        "prefect_api_cpu_s_per_shard": cpu["prefect_api"],
        "flow_cpu_s_per_shard": cpu["flow"],
        "worker_cpu_s_per_shard": round(sum(v for k, v in cpu.items() if k.startswith("worker-")), 4),
    }


def project(report: Mapping[str, Any], kind: str, workers: int, documents: int) -> dict[str, Any]:
    """The throughput model for ``workers`` workers of one core on ``documents`` documents of ``kind``, from
    the figures of ``report``: per-worker rate x workers x the measured 2-worker efficiency (1 for one
    worker), capped by the shards per second the Dask scheduler, the Prefect API and the flow's own process can
    serve on one core each (their CPU per shard), plus the sequential listing and one model load per worker.

    It extrapolates: the efficiency is the one measured with 2 workers, and the scheduler and API caps assume
    their process has a core of its own.
    """
    runs = {(run["kind"], run["workers"]): run for run in report["runs"]}
    one = runs[(kind, 1)]
    scaling = float(report["efficiency"][kind]["shard_phase"]) if workers > 1 else 1.0
    rate = workers * float(one["shard_phase_docs_per_s"]) * scaling
    docs_per_shard = float(one["documents"]) / float(one["shards"])
    overhead = report["shard_overhead"]
    caps = {"workers": rate}
    for key, cost in (
        ("scheduler", "scheduler_cpu_s_per_shard"),
        ("prefect_api", "prefect_api_cpu_s_per_shard"),
        ("flow", "flow_cpu_s_per_shard"),
    ):
        if float(overhead[cost]) > 0:
            caps[key] = docs_per_shard / float(overhead[cost])
    bound = min(caps, key=lambda key: caps[key])
    list_rate = float(one["documents"]) / float(one["list_s"])
    startup = max(
        float(w["import_s"]) + float(w["model_load_s"]) + float(w["first_documents_s"])
        for w in report["startup"]["1"]
    )
    seconds = documents / list_rate + startup + documents / caps[bound]
    return {
        "workers": workers,
        "documents": documents,
        "docs_per_s": round(caps[bound], 1),
        "bound_by": bound,
        "caps_docs_per_s": {key: round(value, 1) for key, value in caps.items()},
        "list_s": round(documents / list_rate, 1),
        "hours": round(seconds / 3600, 2),
    }


def format_table(report: Mapping[str, Any]) -> str:
    """The figures as a plain-text table and notes (what `make bench-batch` prints)."""
    lines = [
        f"{'set':8s} {'workers':>7s} {'docs':>5s} {'pages':>5s} {'shards':>6s} {'wall s':>7s} {'docs/s':>7s} "
        f"{'pages/s':>7s} {'phase docs/s':>12s} {'list s':>6s} {'busy':>5s} {'correct':>7s} "
        f"{'peak RSS MB/worker':>20s}"
    ]
    for run in report["runs"]:
        rss = ", ".join(
            f"{peak['rss_mb']:.0f} ({peak['tree_rss_mb']:.0f})"
            for name, peak in sorted(run["memory"].items())
            if name.startswith("worker-")
        )
        lines.append(
            f"{run['kind']:8s} {run['workers']:7d} {run['documents']:5d} {run['pages']:5d} {run['shards']:6d} "
            f"{run['wall_s']:7.1f} {run['docs_per_s']:7.2f} {run['pages_per_s']:7.2f} "
            f"{run['shard_phase_docs_per_s']:12.2f} {run['list_s']:6.2f} {run['worker_cpu_share']:5.0%} "
            f"{run['correct']:7.0%} {rss:>20s}"
        )
    lines.append(
        "phase: first shard start to last shard end; busy: the workers' CPU seconds / (phase x workers); "
        "peak RSS: the worker process (its tree, with Tesseract)"
    )
    for kind, value in report["efficiency"].items():
        lines.append(
            f"scaling efficiency, {kind}: {value['wall']:.0%} (wall), {value['shard_phase']:.0%} (shard phase)"
        )
    overhead = report["shard_overhead"]
    lines.append(
        f"per-shard overhead (1 worker, {overhead['extra_shards']} extra shards): "
        f"{overhead['wall_s_per_shard'] * 1000:.0f} ms a shard, {overhead['inside_task_s_per_shard'] * 1000:.0f} ms "
        f"of it inside the task run, {overhead['between_tasks_s_per_shard'] * 1000:.0f} ms between; CPU a shard: "
        f"Dask scheduler {overhead['scheduler_cpu_s_per_shard'] * 1000:.0f} ms, Prefect API "
        f"{overhead['prefect_api_cpu_s_per_shard'] * 1000:.0f} ms, flow process "
        f"{overhead['flow_cpu_s_per_shard'] * 1000:.0f} ms, worker {overhead['worker_cpu_s_per_shard'] * 1000:.0f} ms"
    )
    for count, workers in report["startup"].items():
        lines.append(
            f"start-up per fresh worker ({count} worker{'s' if count != '1' else ''}): "
            + ", ".join(
                f"imports {w['import_s']:.1f} s + model load {w['model_load_s']:.2f} s + first 2 documents "
                f"{w['first_documents_s']:.1f} s"
                for w in workers
            )
        )
    for kind in KINDS:
        run = next(r for r in report["runs"] if r["kind"] == kind and r["workers"] == 1)
        lines.append(
            f"listing {kind}: {run['documents'] / run['list_s']:.0f} docs/s "
            f"({run['bytes_read'] / MB / run['list_s']:.1f} MB/s read and hashed); storage per document: "
            f"{run['bytes_read'] / run['documents'] / 1024:.0f} KB read, "
            f"{run['results_bytes'] / run['documents'] / 1024:.2f} KB of saved shard results, "
            f"{run['output_bytes'] / run['documents'] / 1024:.2f} KB of output"
        )
    lines.append(
        f"model: {report['model']['candidate']}, {report['model']['bytes'] / MB:.2f} MB of artefacts"
    )
    lines.append(
        f"load average (1, 5, 15 min) before: {report['load_before']}, after: {report['load_after']}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs-text", type=int, default=2000, help="born-digital documents (text layer)")
    parser.add_argument("--docs-scanned", type=int, default=60, help="scanned documents (OCR)")
    parser.add_argument("--shard-size", type=int, default=100, help="documents per shard, born-digital")
    parser.add_argument(
        "--scanned-shard-size",
        type=int,
        default=5,
        help="documents per shard, scans (~1 s each: small shards so both workers get several)",
    )
    parser.add_argument(
        "--overhead-docs", type=int, default=200, help="documents of the per-shard overhead runs"
    )
    parser.add_argument("--tiny-shard-size", type=int, default=4, help="shard size of the many-shards run")
    parser.add_argument(
        "--candidate", default="text", help="the model trained and registered (params.yaml train)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/batch.json"))
    args = parser.parse_args(argv)
    for name in (
        "docs_text",
        "docs_scanned",
        "shard_size",
        "scanned_shard_size",
        "overhead_docs",
        "tiny_shard_size",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1: got {getattr(args, name)}")
    if args.tiny_shard_size >= args.overhead_docs:
        parser.error(
            f"--tiny-shard-size {args.tiny_shard_size} must be below --overhead-docs {args.overhead_docs} "
            f"(the overhead runs compare many shards with one)"
        )
    return args


# Set by a Ctrl-C or a `kill`. Prefect's flow engine swallows a KeyboardInterrupt that lands after the flow's own
# code has finished (it logs it at debug level and returns the Completed state), so each run checks this as well.
_stopped = threading.Event()


def _on_signal(signum: int, frame: object) -> None:
    _stopped.set()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(f"stopped by signal {signum}")


def _check_stopped() -> None:
    """Raise the interrupt the flow engine swallowed, if any."""
    if _stopped.is_set():
        raise KeyboardInterrupt


def bench(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Every measurement in the temporary folder ``root``; the report."""
    import yaml

    from pipelines.params import load_params

    params = load_params()
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    print("generating documents and registering a model ...", flush=True)
    sets = {
        "text": make_documents(root / "docs" / "text", "text", args.docs_text, seed=11),
        "scanned": make_documents(root / "docs" / "scanned", "scanned", args.docs_scanned, seed=12),
    }
    overhead_set = subset(sets["text"], root / "docs" / "overhead", args.overhead_docs)
    warm_set = warm_documents(root / "docs" / "warm")
    uri, number, model_bytes = register_model(root / "registry", args.candidate, params)
    env = {
        **os.environ,
        "OMP_THREAD_LIMIT": "1",
        "HF_HUB_OFFLINE": "1",
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DASK_TEMPORARY_DIRECTORY": str(root / "dask-tmp"),  # Dask's scratch space, else under $TMPDIR
        "DOCCLASS_MLFLOW_TRACKING_URI": uri,
        "DOCCLASS_PARAMS": str(params_file),
    }
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "model": {"candidate": args.candidate, "version": f"1.{number}", "bytes": model_bytes},
        "sizes": {
            "text": sets["text"].documents,
            "scanned": sets["scanned"].documents,
            "shard_size": args.shard_size,
            "scanned_shard_size": args.scanned_shard_size,
            "overhead_docs": overhead_set.documents,
            "tiny_shard_size": args.tiny_shard_size,
        },
        "runs": [],
        "startup": {},
    }
    with ExitStack() as stack:
        api, prefect_pid = stack.enter_context(prefect_server(root / "loop", env))
        env["PREFECT_API_URL"] = api
        os.environ.update({k: env[k] for k in ("OMP_THREAD_LIMIT", "PREFECT_HOME", "PREFECT_API_URL")})
        os.environ["DASK_TEMPORARY_DIRECTORY"] = env["DASK_TEMPORARY_DIRECTORY"]
        os.environ.update({k: env[k] for k in ("DOCCLASS_MLFLOW_TRACKING_URI", "DOCCLASS_PARAMS")})
        from prefect.settings import PREFECT_API_URL, temporary_settings

        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: api}))
        from flows.batch import resolve_version
        from flows.settings import Settings

        overhead_runs: list[dict[str, Any]] = []
        for workers in (1, 2):
            with dask_cluster(root / f"dask-{workers}", workers, env) as cluster:
                os.environ["DOCCLASS_DASK_ADDRESS"] = cluster.address
                pinned = resolve_version(Settings(), None)
                startup = []
                for index, address in enumerate(sorted(cluster.client.scheduler_info()["workers"]), start=1):
                    warm = root / "warm" / f"{workers}-{index}"
                    job = shard_job(pinned, params, warm / "cache", warm / "models")
                    imports = cluster.client.run(time_imports, workers=[address])[address]
                    found = cluster.client.run(warm_worker, job, warm_set, workers=[address])[address]
                    startup.append({"import_s": imports} | {k: v for k, v in found.items() if k != "pid"})
                report["startup"][str(workers)] = startup
                watched = Watched(cluster.scheduler_pid, prefect_pid, cluster.worker_pids)
                plan = [
                    (f"text-{workers}w", sets["text"], args.shard_size),
                    (f"scanned-{workers}w", sets["scanned"], args.scanned_shard_size),
                ]
                if workers == 1:
                    plan += [
                        ("overhead-few", overhead_set, overhead_set.documents),
                        ("overhead-tiny", overhead_set, args.tiny_shard_size),
                    ]
                for name, documents, size in plan:
                    print(f"run {name}: {documents.documents} documents, shards of {size} ...", flush=True)
                    result = run_batch(name, documents, size, workers, watched, root / "runs", params_file)
                    (overhead_runs if name.startswith("overhead") else report["runs"]).append(result)
                    print(
                        f"  {result['wall_s']:.1f} s, {result['docs_per_s']:.2f} docs/s, {result['shards']} shards",
                        flush=True,
                    )
                os.environ.pop("DOCCLASS_DASK_ADDRESS")
    runs = {(run["kind"], run["workers"]): run for run in report["runs"]}
    report["efficiency"] = {
        kind: {
            "wall": efficiency(runs[(kind, 1)], runs[(kind, 2)], "docs_per_s"),
            "shard_phase": efficiency(runs[(kind, 1)], runs[(kind, 2)], "shard_phase_docs_per_s"),
        }
        for kind in KINDS
    }
    report["overhead_runs"] = overhead_runs
    report["shard_overhead"] = shard_overhead(overhead_runs[1], overhead_runs[0])
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["projection"] = {
        kind: [project(report, kind, workers, 1_000_000) for workers in (1, 2, 20, 100)] for kind in KINDS
    }
    return report


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # a `kill` stops the servers too (finally blocks)
        signal.signal(signum, _on_signal)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the table, not a log line per shard
    os.environ["OMP_THREAD_LIMIT"] = "1"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="docclass-bench-batch-") as tmp:
        try:
            report = bench(args, Path(tmp))
        except BenchError as error:
            raise SystemExit(f"error: {error}") from error
        _check_stopped()
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(report))
    for kind, rows in report["projection"].items():
        for row in rows:
            print(
                f"model (derived from the figures above), {kind}: {row['documents']:,} documents on "
                f"{row['workers']} workers of 1 core ~ {row['docs_per_s']} docs/s (bound: {row['bound_by']}), "
                f"{row['hours']} h including {row['list_s']:.0f} s of listing"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"{report['seconds']:.0f} s in all; results in {args.out}")


if __name__ == "__main__":
    # Run as the module flows.bench_batch (not __main__), so the functions sent to the Dask workers are found
    # there by name.
    from flows.bench_batch import main as _main

    _main()

"""`make bench-serve`: throughput and latency of the running service at concurrency 1, 8 and 32, for a one-page
born-digital PDF and for a scanned page, plus the service's memory.

Self-contained: builds a temporary SQLite registry with a text model trained on generated documents, starts the
service on a free loopback port with `make serve-up` (serving/bentoml.mk, the same target users run), loads it with
an async httpx client for a fixed time per setting, stops it with `make serve-down`. The client runs on the same
machine and takes CPU from the server: figures are for the whole box.

It lives in flows/, not serving/, because it registers and promotes a model (the registry's write side): the
service package reads the registry only.

    python -m flows.bench_serve --seconds 10 --workers 2 --out bench/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(data_dir: Path, port: int, workers: int, env: dict[str, str]) -> Iterator[int]:
    """`make serve-up` / `serve-down` (serving/bentoml.mk) on ``port``; yields the server's pid.

    Raises:
        SystemExit: the service did not start (make's message, with the server log's last lines).
    """
    make_vars = [
        f"SERVE_PORT={port}",
        f"SERVE_WORKERS={workers}",
        f"SERVE_DATA={data_dir}",
        f"BENTOML_BIN={Path(sys.executable).with_name('bentoml')}",
    ]

    def make(target: str) -> None:
        command = ["make", "--no-print-directory", "-f", "serving/bentoml.mk", target, *make_vars]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"make {target} failed:\n{result.stdout}{result.stderr}")

    make("serve-up")
    try:
        yield int((data_dir / "server.pid").read_text())
    finally:
        make("serve-down")


@dataclass(frozen=True)
class BenchRegistry:
    """A throwaway SQLite registry: its tracking URI, the params file the service reads, the generated documents
    (``corpus``: born-digital PDFs, ``scans``: scans) and the registered versions (the first is champion)."""

    uri: str
    params_file: Path
    corpus: Path
    scans: Path
    versions: tuple[int, ...]


def train_registry(
    root: Path,
    params_path: Path | None,
    versions: int = 1,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> BenchRegistry:
    """A registry under ``root`` with ``versions`` text models trained on 6 generated documents per class (each
    with its own seed, so their answers may differ), the first one champion.

    Args:
        root: an empty folder for the registry, the documents and the params file.
        params_path: the params.yaml to start from (None: the repository's).
        versions: how many versions to register.
        overrides: per params section, keys replaced in the params file the service reads
            (``{"extract": {"workers": 1}}``).
    """
    import yaml

    from flows.registry import Registry
    from pipelines.dataset import load_labeled_documents
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits
    from pipelines.models import make_candidate, save_model
    from pipelines.params import load_params, validate_params
    from pipelines.samples import generate_corpus

    params = load_params(params_path)
    for section, values in (overrides or {}).items():
        params[section] = {**params[section], **values}
    params = validate_params(params)
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    corpus = root / "corpus"
    generate_corpus(corpus, per_class=6, seed=5, scanned_share=0.0)
    scans = root / "scans"
    generate_corpus(scans, per_class=2, seed=6, scanned_share=1.0)
    data = load_labeled_documents(
        corpus, ExtractConfig.from_params(params["extract"]), Limits.from_params(params["ingest"])
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri, "docclass", "docclass")
    numbers = []
    for k in range(versions):
        seed = int(params["seed"]) + k
        model = make_candidate("text", params["train"], seed=seed).fit(data.documents, data.labels)
        save_model(model, root / f"model-{k}", {})
        run = registry.start_run(f"bench-{k}", {"kind": "bench"})
        digest = registry.log_model(run, root / f"model-{k}")
        registry.finish_run(run)
        number = registry.register(run, {"label_count": len(data.labels)}, digest=digest)
        registry.mark_complete(number)
        numbers.append(number)
    registry.move_champion(numbers[0], reason="bench", by="bench", automatic=False)
    return BenchRegistry(uri, params_file, corpus, scans, tuple(numbers))


def build_registry(root: Path, params_path: Path | None) -> tuple[str, Path, Path, Path]:
    """A registry with one champion (:func:`train_registry`); returns the tracking URI, a params file, a one-page
    born-digital PDF and a one-page scan."""
    import pymupdf

    built = train_registry(root, params_path)

    def one_page(folder: Path, suffixes: tuple[str, ...]) -> Path:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in suffixes:
                if path.suffix.lower() != ".pdf" or len(pymupdf.open(path)) == 1:
                    return path
        raise RuntimeError(f"no one-page document in {folder}")

    return (
        built.uri,
        built.params_file,
        one_page(built.corpus, (".pdf",)),
        one_page(built.scans, (".png", ".jpg", ".jpeg")),
    )


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return round(sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20, 1)
    except psutil.Error:
        return float("nan")


async def load(url: str, name: str, data: bytes, concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def user() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.post("/classify", files={"file": (name, data)})
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)
            if latencies
            else float("nan")
        )

    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else float("nan"),
    }


def main() -> None:
    from flows.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per setting")
    parser.add_argument("--workers", type=int, default=2, help="service workers")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--out", type=Path, default=Path("bench/serve.json"))
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="docclass-bench-serve-") as tmp:
        root = Path(tmp)
        uri, params_file, pdf, scan = build_registry(root, Settings().params)
        port = _free_port()
        env = {
            **os.environ,
            "DOCCLASS_MLFLOW_TRACKING_URI": uri,
            "DOCCLASS_PARAMS": str(params_file),
            "DOCCLASS_DATA_DIR": str(root / "data"),
            "OMP_THREAD_LIMIT": "1",
        }
        env.pop("DOCCLASS_API_KEY", None)
        url = f"http://127.0.0.1:{port}"
        with running_service(root / "serving", port, args.workers, env) as pid:
            results: dict[str, Any] = {
                "workers": args.workers,
                "seconds_per_setting": args.seconds,
                "cpus": os.cpu_count(),
                "rss_idle_mb": tree_rss_mb(pid),
            }
            for label, path in (("born_digital_pdf", pdf), ("scanned_page", scan)):
                data = path.read_bytes()
                asyncio.run(load(url, path.name, data, 2, 1.0))  # warm-up
                rows = []
                for level in levels:
                    row = asyncio.run(load(url, path.name, data, level, args.seconds))
                    row["rss_mb"] = tree_rss_mb(pid)
                    rows.append(row)
                    print(
                        f"{label:17s} c={level:<3d} {row['rps']:7.1f} rps  p50 {row['p50_ms']:7.1f} ms  "
                        f"p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  rss {row['rss_mb']} MB",
                        flush=True,
                    )
                results[label] = {"file": path.name, "bytes": len(data), "levels": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()

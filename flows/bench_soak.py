"""`make bench-soak`: the real service for a long time (10 minutes by default) at concurrency 32, with a mix of
born-digital PDFs, scans, zip archives and bad files, and a promotion every 2 minutes.

It checks what a team needs to trust the service with production traffic, and writes the figures to bench/soak.json:

- no 5xx other than the documented overload answers: 429 / 503 with a JSON reason and ``Retry-After`` (shed at the
  door, serve.max_concurrent_requests and serve.max_queued_pages) and 504 with a JSON reason
  (serve.request_timeout_s); any other 5xx, a 503 that is not an overload answer, a transport error or a wrong
  answer (a good document not answered 200, a bad file not answered its status of tests/hostile.py) is a failure;
- p50 / p99 latency per input kind (answers that were not shed), throughput, requests shed;
- RSS of the service's whole process tree, sampled every few seconds, and its growth from minute 2 to minute 10
  (medians of [20 %, 25 %] and [95 %, 100 %] of the run; target under 10 %);
- Tesseract processes alive, sampled: never above the configured bound (extract.workers, or one per core, per
  service worker);
- every promotion (``move_champion`` alternately between two versions) goes live: the first answer given by the
  new champion and how long after the promotion it came.

Self-contained like flows/bench_serve.py (whose pieces it uses): a throwaway SQLite MLflow registry with two
versions, the service started with `make serve-up` on a free loopback port with its own data folder, stopped at
the end. Clients behave as the API page asks: after a 429 / 503 with ``Retry-After`` they wait that long (with
jitter) before their next request. The bad files are the hostile-file suite's (tests/hostile.py), so it runs from a
checkout. The client runs on the same machine and takes CPU from the server: figures are for the whole box.

    python -m flows.bench_soak --seconds 600 --promote-every 120 --out bench/soak.json

Exit status 1 when a failure was seen (the table says which), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from flows.bench_serve import _free_port, running_service, train_registry

KINDS = ("pdf", "scan", "zip", "bad")
# Share of each kind in the requests (born-digital PDFs dominate real traffic; scans cost the most).
MIX = {"pdf": 0.4, "scan": 0.25, "zip": 0.15, "bad": 0.2}
OVERLOAD = (429, 503)  # shed at the door, with Retry-After
MAX_BACKOFF_S = 10.0  # a client never waits longer than this after a shed answer


@dataclass(frozen=True)
class Input:
    """One upload of the mix and the status it must get when it is not shed (200 for a good document)."""

    kind: str
    name: str
    data: bytes
    expected: int


@dataclass(frozen=True)
class Answer:
    """One request as the client saw it (``status`` 0: no HTTP answer, ``error`` says why)."""

    sent: float  # seconds since the load began
    done: float
    kind: str
    name: str
    status: int
    expected: int
    error: str
    json_error: bool  # the body is JSON with an "error" string
    retry_after: str | None
    version: str | None

    @property
    def ms(self) -> float:
        return (self.done - self.sent) * 1000

    @property
    def outcome(self) -> str:
        """served, shed, timeout or a failure class (see the module docstring)."""
        if self.status == 0:
            return "transport"
        if self.status in OVERLOAD and self.json_error and self.retry_after is not None:
            return "shed"
        if self.status == 504 and self.json_error:
            return "timeout"
        if self.status >= 500:
            return "5xx"
        return "served" if self.status == self.expected else "wrong"


FAILURES = ("transport", "5xx", "wrong")


@dataclass
class Sample:
    """The service's process tree at one moment."""

    at: float
    rss_mb: float
    tesseract: int  # alive (not zombie) Tesseract processes
    zombies: int
    threads: int
    fds: int


@dataclass
class Promotion:
    at: float
    version: str
    live_after_s: float | None = None


@dataclass
class Soak:
    """Everything one run measured."""

    answers: list[Answer] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    promotions: list[Promotion] = field(default_factory=list)
    promotion_errors: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------- inputs


def build_inputs(built: Any, seed: int) -> dict[str, list[Input]]:
    """The uploads of each kind: the registry's generated born-digital PDFs and scans, zips of two PDFs and a scan,
    and every bad file of the hostile-file suite (the kinds the service does not answer 200)."""
    # The hostile-file suite's generators (a checkout's tests/, not part of the package; imported by name so the
    # type check of flows/ does not walk into the tests).
    cases = importlib.import_module("tests.hostile").cases

    pdfs = [Input("pdf", p.name, p.read_bytes(), 200) for p in sorted(built.corpus.rglob("*.pdf"))]
    scans = [
        Input("scan", p.name, p.read_bytes(), 200)
        for p in sorted(built.scans.rglob("*"))
        if p.is_file() and p.suffix.lower() in (".pdf", ".png", ".jpg", ".tif")
    ]
    rng = random.Random(seed)
    zips = []
    for k in range(6):
        members = [*rng.sample(pdfs, 2), rng.choice(scans)]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in members:
                archive.writestr(member.name, member.data)
        zips.append(Input("zip", f"batch-{k}.zip", buffer.getvalue(), 200))
    bad = [Input("bad", case.filename, case.make(), case.status) for case in cases() if case.status != 200]
    return {"pdf": pdfs, "scan": scans, "zip": zips, "bad": bad}


# ------------------------------------------------------------------------------------------------------- load


def _parse(response: httpx.Response) -> tuple[bool, str, str | None]:
    """(JSON with an "error" string, that error or "", the served model version)."""
    try:
        body = response.json()
    except ValueError:
        return False, response.text[:200], None
    if not isinstance(body, dict):
        return False, str(body)[:200], None
    error = body.get("error")
    version = body.get("model_version")
    return isinstance(error, str), error if isinstance(error, str) else "", version


async def run_load(
    url: str, inputs: dict[str, list[Input]], concurrency: int, seconds: float, timeout_s: float, seed: int
) -> list[Answer]:
    """``concurrency`` clients sending uploads drawn from :data:`MIX` for ``seconds``."""
    answers: list[Answer] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    began = time.monotonic()
    kinds, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def user(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            while time.monotonic() - began < seconds:
                kind = rng.choices(kinds, weights)[0]
                item = rng.choice(inputs[kind])
                sent = time.monotonic() - began
                try:
                    response = await client.post("/classify", files={"file": (item.name, item.data)})
                except httpx.HTTPError as error:
                    answers.append(
                        Answer(
                            sent,
                            time.monotonic() - began,
                            kind,
                            item.name,
                            0,
                            item.expected,
                            f"{type(error).__name__}: {error}",
                            False,
                            None,
                            None,
                        )
                    )
                    continue
                json_error, error_text, version = _parse(response)
                answer = Answer(
                    sent,
                    time.monotonic() - began,
                    kind,
                    item.name,
                    response.status_code,
                    item.expected,
                    error_text,
                    json_error,
                    response.headers.get("retry-after"),
                    version,
                )
                answers.append(answer)
                retry_after = answer.retry_after or ""
                if answer.outcome == "shed":
                    wait = float(retry_after) if retry_after.isdigit() else 1.0
                    await asyncio.sleep(min(MAX_BACKOFF_S, wait) * rng.uniform(0.5, 1.5))

        await asyncio.gather(*(user(n) for n in range(concurrency)))
    return answers


def sample_tree(pid: int, began: float) -> Sample | None:
    """RSS, Tesseract processes, threads and open files of ``pid`` and its descendants, or None once it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = threads = fds = tesseract = zombies = 0
    for proc in procs:
        try:
            with proc.oneshot():
                if proc.name() == "tesseract":
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        zombies += 1
                        continue
                    tesseract += 1
                rss += proc.memory_info().rss
                threads += proc.num_threads()
                fds += proc.num_fds()
        except psutil.Error:  # ended while being read (a Tesseract run finishing)
            continue
    return Sample(time.monotonic() - began, round(rss / 2**20, 1), tesseract, zombies, threads, fds)


def sampler(pid: int, began: float, every_s: float, stop: threading.Event, into: list[Sample]) -> None:
    """Sample the tree every ``every_s`` seconds until ``stop``; Tesseract counts also in between (every 0.25 s),
    so short runs are not missed, reported with the next full sample as the largest count seen."""
    most = 0
    next_full = 0.0
    while not stop.is_set():
        now = time.monotonic() - began
        sample = sample_tree(pid, began)
        if sample is None:
            return
        most = max(most, sample.tesseract)
        if now >= next_full:
            sample.tesseract = most
            into.append(sample)
            most = 0
            next_full = now + every_s
        stop.wait(0.25)


def promoter(
    uri: str,
    versions: Sequence[int],
    every_s: float,
    until_s: float,
    began: float,
    stop: threading.Event,
    soak: Soak,
) -> None:
    """Move the champion alternately to the other version every ``every_s`` seconds, up to ``until_s`` (so the last
    promotion has time to go live before the load ends)."""
    from flows.registry import Registry

    registry = Registry(uri, "docclass", "docclass")
    k = 1
    while k * every_s <= until_s and not stop.wait(max(0.0, k * every_s - (time.monotonic() - began))):
        number = versions[k % len(versions)]
        at = time.monotonic() - began
        try:
            registry.move_champion(number, reason=f"soak promotion {k}", by="bench-soak", automatic=False)
        except Exception as error:  # noqa: BLE001 - any failure to promote is reported, the soak goes on
            soak.promotion_errors.append(f"{at:.0f} s: {type(error).__name__}: {error}")
        else:
            soak.promotions.append(Promotion(at, f"1.{number}"))
        k += 1


# ---------------------------------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in [0, 1]), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 1)


def windows(samples: Sequence[Sample], seconds: float, name: str) -> dict[str, float | None]:
    """Median of one sampled figure over [20 %, 25 %] of the run (minute 2 of 10) and over its last 5 % (minute
    10); None where no sample fell in the window."""
    start = [getattr(s, name) for s in samples if 0.2 * seconds <= s.at <= 0.25 * seconds]
    end = [getattr(s, name) for s in samples if s.at >= 0.95 * seconds]
    return {
        "start": statistics.median(start) if start else None,
        "end": statistics.median(end) if end else None,
    }


def rss_growth(samples: Sequence[Sample], seconds: float) -> dict[str, Any]:
    """RSS at minute 2 and at the end (:func:`windows`), and the growth between them."""
    medians = windows(samples, seconds, "rss_mb")
    first, last = medians["start"], medians["end"]
    if first is None or last is None:
        return {"start_mb": None, "end_mb": None, "growth_pct": None, "met": None}
    growth = round((last - first) / first * 100, 2)
    return {"start_mb": first, "end_mb": last, "growth_pct": growth, "met": growth < 10.0}


def promotion_latency(promotions: list[Promotion], answers: Sequence[Answer]) -> None:
    """Fill in, per promotion, when the first answer by the new champion arrived (before the next promotion)."""
    by_time = sorted((a for a in answers if a.version), key=lambda a: a.done)
    for k, promotion in enumerate(promotions):
        until = promotions[k + 1].at if k + 1 < len(promotions) else float("inf")
        for answer in by_time:
            if promotion.at <= answer.sent < until and answer.version == promotion.version:
                promotion.live_after_s = round(answer.done - promotion.at, 2)
                break


def summarize(
    soak: Soak, seconds: float, bound: int, ready_after: bool, config: dict[str, Any]
) -> dict[str, Any]:
    """The figures of one run (what bench/soak.json holds)."""
    promotion_latency(soak.promotions, soak.answers)
    kinds: dict[str, Any] = {}
    for kind in (*KINDS, "all"):
        rows = [a for a in soak.answers if kind in ("all", a.kind)]
        outcomes = Counter(a.outcome for a in rows)
        served = [a.ms for a in rows if a.outcome in ("served", "wrong", "timeout")]
        kinds[kind] = {
            "requests": len(rows),
            "served": outcomes["served"],
            "shed": outcomes["shed"],
            "timeout_504": outcomes["timeout"],
            "failures": sum(outcomes[f] for f in FAILURES),
            "p50_ms": percentile(served, 0.50),
            "p99_ms": percentile(served, 0.99),
            "statuses": dict(sorted(Counter(str(a.status) for a in rows).items())),
        }
    failures = [a for a in soak.answers if a.outcome in FAILURES]
    shed_reasons = Counter(a.error.split(":")[0] for a in soak.answers if a.outcome == "shed")
    tesseract_max = max((s.tesseract for s in soak.samples), default=0)
    unlive = [asdict(p) for p in soak.promotions if p.live_after_s is None]
    elapsed = max((a.done for a in soak.answers), default=seconds)
    return {
        "config": config,
        "kinds": kinds,
        "throughput_rps": round(len(soak.answers) / elapsed, 2),
        "served_rps": round(kinds["all"]["served"] / elapsed, 2),
        "shed": kinds["all"]["shed"],
        "shed_reasons": dict(shed_reasons.most_common()),
        "rss": rss_growth(soak.samples, seconds),
        "tesseract": {
            "bound": bound,
            "max_seen": tesseract_max,
            "within": tesseract_max <= bound,
            "zombies_max": max((s.zombies for s in soak.samples), default=0),
        },
        "threads_max": max((s.threads for s in soak.samples), default=0),
        "fds": windows(soak.samples, seconds, "fds"),
        "threads": windows(soak.samples, seconds, "threads"),
        "promotions": [asdict(p) for p in soak.promotions],
        "promotion_errors": soak.promotion_errors,
        "promotions_not_live": unlive,
        "ready_after": ready_after,
        "failures": [
            {
                "at": round(a.sent, 1),
                "kind": a.kind,
                "name": a.name,
                "status": a.status,
                "error": a.error[:300],
            }
            for a in failures[:50]
        ],
        "failure_count": len(failures),
        "samples": [asdict(s) for s in soak.samples],
    }


def passed(result: dict[str, Any]) -> list[str]:
    """What failed (empty: the run passed)."""
    problems = []
    if result["failure_count"]:
        problems.append(
            f"{result['failure_count']} failed requests (transport errors, other 5xx or wrong answers)"
        )
    if not result["tesseract"]["within"]:
        problems.append(
            f"{result['tesseract']['max_seen']} Tesseract processes at once: the bound is {result['tesseract']['bound']}"
        )
    if result["promotion_errors"]:
        problems.append(f"{len(result['promotion_errors'])} promotions failed")
    if result["promotions_not_live"]:
        problems.append(f"{len(result['promotions_not_live'])} promotions never answered before the next one")
    if not result["ready_after"]:
        problems.append("the service was not ready after the soak")
    return problems


def table(result: dict[str, Any]) -> str:
    """The printed report."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    config = result["config"]
    lines = [
        f"soak: {config['seconds']:g} s at concurrency {config['concurrency']}, {config['workers']} worker(s), "
        f"promotion every {config['promote_every']:g} s; load average {config['load_before']} before, "
        f"{config['load_after']} after ({config['cpus']} cores)",
        "",
        f"{'kind':5s} {'requests':>8s} {'served':>7s} {'shed':>6s} {'504':>5s} {'failed':>6s} "
        f"{'p50 ms':>8s} {'p99 ms':>8s}  statuses",
    ]
    for kind, row in result["kinds"].items():
        statuses = " ".join(f"{code}:{count}" for code, count in row["statuses"].items())
        lines.append(
            f"{kind:5s} {row['requests']:8d} {row['served']:7d} {row['shed']:6d} {row['timeout_504']:5d} "
            f"{row['failures']:6d} {ms(row['p50_ms']):>8s} {ms(row['p99_ms']):>8s}  {statuses}"
        )
    rss = result["rss"]
    tess = result["tesseract"]
    live = [p["live_after_s"] for p in result["promotions"] if p["live_after_s"] is not None]
    if rss["growth_pct"] is None:
        memory, verdict = "no sample at minute 2 or at the end", "run too short"
    else:
        memory = f"{rss['start_mb']:.0f} MB at minute 2 -> {rss['end_mb']:.0f} MB at the end: {rss['growth_pct']:+.1f} %"
        verdict = "met" if rss["met"] else "NOT met"
    lines += [
        "",
        f"throughput      {result['throughput_rps']} answers/s, {result['served_rps']} served/s; shed "
        f"{result['shed']} ({', '.join(f'{k}: {v}' for k, v in result['shed_reasons'].items()) or 'none'})",
        f"RSS (tree)      {memory} (target < 10 %: {verdict})",
        f"Tesseract       at most {tess['max_seen']} at once (bound {tess['bound']}: "
        f"{'within' if tess['within'] else 'EXCEEDED'}); zombies at most {tess['zombies_max']}",
        f"threads / fds   {result['threads']['start']} -> {result['threads']['end']} threads (at most "
        f"{result['threads_max']}); {result['fds']['start']} -> {result['fds']['end']} open files (minute 2 -> end)",
        f"promotions      {len(result['promotions'])}, live after "
        f"{', '.join(f'{s:g}' for s in live) or '-'} s; failed {len(result['promotion_errors'])}",
        f"ready after     {'yes' if result['ready_after'] else 'NO'}",
    ]
    for failure in result["failures"][:10]:
        lines.append(
            f"FAILED {failure['kind']} {failure['name']!r}: {failure['status']} {failure['error'][:150]}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------- main


def tesseract_bound(params_file: Path, workers: int) -> int:
    """The most Tesseract processes the service may run: extract.workers (or one per core) per service worker."""
    from pipelines.extract import ExtractConfig
    from pipelines.params import load_params

    return workers * ExtractConfig.from_params(load_params(params_file)["extract"]).n_workers()


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Build the registry, start the service, load it, stop it; the figures."""
    from flows.settings import Settings
    from pipelines.params import load_params

    overrides: dict[str, dict[str, Any]] = {}
    if args.extract_workers is not None:
        overrides["extract"] = {"workers": args.extract_workers}
    if args.serve:
        overrides["serve"] = {key: yaml.safe_load(value) for key, value in args.serve}
    with tempfile.TemporaryDirectory(prefix="docclass-bench-soak-") as tmp:
        root = Path(tmp)
        built = train_registry(root, Settings().params, versions=2, overrides=overrides)
        inputs = build_inputs(built, args.seed)
        serve = load_params(built.params_file)["serve"]
        bound = tesseract_bound(built.params_file, args.workers)
        port = _free_port()
        env = {
            **os.environ,
            "DOCCLASS_MLFLOW_TRACKING_URI": built.uri,
            "DOCCLASS_PARAMS": str(built.params_file),
            "DOCCLASS_DATA_DIR": str(root / "data"),
            "OMP_THREAD_LIMIT": "1",
            "HF_HUB_OFFLINE": "1",
        }
        env.pop("DOCCLASS_API_KEY", None)
        url = f"http://127.0.0.1:{port}"
        result = Soak()
        config = {
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "promote_every": args.promote_every,
            "sample_every": args.sample_every,
            "cpus": os.cpu_count(),
            "serve": serve,
            "inputs": {kind: len(items) for kind, items in inputs.items()},
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
        # The last promotion comes at least min(15 s, half the interval) before the end: three champion polls.
        last_promotion = args.seconds - min(15.0, args.promote_every / 2)
        with running_service(root / "serving", port, args.workers, env) as pid:
            stop = threading.Event()
            began = time.monotonic()
            threads = [
                threading.Thread(
                    target=sampler, args=(pid, began, args.sample_every, stop, result.samples), daemon=True
                ),
                threading.Thread(
                    target=promoter,
                    args=(built.uri, built.versions, args.promote_every, last_promotion, began, stop, result),
                    daemon=True,
                ),
            ]
            for thread in threads:
                thread.start()
            try:
                result.answers = asyncio.run(
                    run_load(
                        url,
                        inputs,
                        args.concurrency,
                        args.seconds,
                        float(serve["request_timeout_s"]) + 60,
                        args.seed,
                    )
                )
            finally:
                stop.set()
                for thread in threads:
                    thread.join(30)
            try:
                ready_after = httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            except httpx.HTTPError:
                ready_after = False
        config["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return summarize(result, args.seconds, bound, ready_after, config)


def _key_value(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. max_concurrent_requests=16: got {text!r}")
    return key.strip(), value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="load time")
    parser.add_argument("--promote-every", type=float, default=120.0, help="seconds between promotions")
    parser.add_argument("--concurrency", type=int, default=32, help="clients sending at once")
    parser.add_argument("--workers", type=int, default=1, help="service workers")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument(
        "--extract-workers",
        type=int,
        default=None,
        help="override params extract.workers (the Tesseract bound)",
    )
    parser.add_argument(
        "--serve",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a params serve: key (repeatable), e.g. --serve max_concurrent_requests=16",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/soak.json"))
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.promote_every <= 0 or args.concurrency < 1 or args.workers < 1:
        parser.error("expected --seconds and --promote-every > 0, --concurrency and --workers >= 1")
    result = soak(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    problems = passed(result)
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"results in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

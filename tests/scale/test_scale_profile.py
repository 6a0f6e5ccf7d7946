"""The scale profile for real (`make scale-up`, mk/scale.mk), on free loopback ports and a throwaway folder:
PostgreSQL, SeaweedFS (S3), MLflow, the Prefect server and Label Studio on them, a Dask scheduler with two workers, a
Prefect worker, two service replicas behind nginx; the `docclass` commands reach them by settings alone.

In order: the profile comes up with no SQLite and no password on a command line; a retraining round lands in
PostgreSQL-backed MLflow with artefacts in S3, its DVC snapshot is in S3 and comes back identical (`docclass
reproduce`); `docclass classify` answers 550 documents across both Dask workers while one is killed mid-shard, every
document exactly once with the champion's version; requests through nginx never fail while a promotion happens and
switch to the new version; `make scale-down` leaves nothing running."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.scale import load_settings, read_env
from flows.settings import Settings, reveal
from pipelines.params import load_params
from pipelines.samples import generate_corpus
from tests.conftest import ROOT
from tests.make_server import free_port

pytestmark = [pytest.mark.scale, pytest.mark.integration, pytest.mark.slow]

GATE = {"min_accuracy": 0.6, "min_macro_f1": 0.6, "min_class_recall": 0.2, "max_regression": 0.05}
BATCH_PER_CLASS = 110  # x 5 classes = 550 documents
SERVERS = [
    "postgres/server.pid",
    "seaweedfs/server.pid",
    "mlflow/server.pid",
    "prefect/server.pid",
    "labelstudio/server.pid",
    "dask/scheduler.pid",
    "dask/worker-1.pid",
    "dask/worker-2.pid",
    "prefect-worker/worker.pid",
    "serve-1/server.pid",
    "serve-2/server.pid",
    "nginx/server.pid",
]


def free_run(length: int) -> int:
    """The first of ``length`` consecutive free loopback ports (SeaweedFS's master, volume, filer and gRPC ports)."""
    for base in range(21000, 60000, 97):
        sockets = []
        try:
            for port in range(base, base + length):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {length} consecutive free ports on 127.0.0.1")


def clean_environment() -> dict[str, str]:
    """This process's environment without settings of its own: the profile's settings file alone decides."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCCLASS_", "AWS_", "MLFLOW_"))
        and key not in ("PREFECT_API_URL", "PREFECT_HOME")
    }


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def alive(pid: int) -> bool:
    """Whether any process of the group ``pid`` leads (every server starts in its own session) still runs."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Profile:
    data: Path
    work: Path
    variables: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.data / ".env"

    def make(self, *targets: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        command = ["make", "--no-print-directory", "-f", "mk/scale.mk", *targets]
        command += [f"{key}={value}" for key, value in self.variables.items()]
        started = time.perf_counter()
        result = subprocess.run(
            command, cwd=ROOT, env=clean_environment(), capture_output=True, text=True, timeout=timeout
        )
        self.timings.setdefault(" ".join(targets), round(time.perf_counter() - started, 1))
        if result.returncode != 0:
            raise AssertionError(
                f"make {' '.join(targets)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def settings(self) -> Settings:
        return load_settings(self.env_file)

    def env(self) -> dict[str, str]:
        """What a `docclass` command gets: the profile's settings, this test's params and data folder."""
        return {
            **clean_environment(),
            **read_env(self.env_file),
            "DOCCLASS_PARAMS": str(self.work / "params.yaml"),
            "DOCCLASS_DATA_DIR": str(self.work / ".data"),
            "DOCCLASS_SMTP_HOST": "none",
        }

    def docclass(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        executable = Path(sys.executable).with_name("docclass")
        result = subprocess.run(
            [str(executable), *args],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"docclass {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        return result

    def pid(self, name: str) -> int:
        return int((self.data / name).read_text())

    def ports(self) -> list[int]:
        weed = int(self.variables["SCALE_WEED_PORT"])
        return [
            int(port)
            for key, value in self.variables.items()
            if key.endswith(("_PORT", "_PORTS")) and key != "SCALE_WEED_PORT"
            for port in value.split()
        ] + list(range(weed, weed + 7))


@pytest.fixture(scope="module")
def profile() -> Iterator[Profile]:
    weed = free_run(7)
    taken = set(range(weed, weed + 7))

    def port() -> str:
        while (chosen := free_port()) in taken:
            pass
        taken.add(chosen)
        return str(chosen)

    variables = {
        "SCALE_BIN": str(Path(sys.executable).parent),
        "SCALE_WEED_PORT": str(weed),
        "SCALE_DASK_WORKER_PORTS": f"{port()} {port()}",
        "SCALE_SERVE_PORTS": f"{port()} {port()}",
    }
    for name in (
        "SCALE_PG_PORT",
        "SCALE_S3_PORT",
        "SCALE_MLFLOW_PORT",
        "SCALE_PREFECT_PORT",
        "SCALE_LS_PORT",
        "SCALE_DASK_PORT",
        "SCALE_DASK_DASHBOARD_PORT",
        "SCALE_WORKER_PORT",
        "SCALE_NGINX_PORT",
    ):
        variables[name] = port()

    # Not pytest's tmp_path: PostgreSQL runs as the `postgres` user under root, and nginx's workers as `nobody`;
    # both must reach their folders (pytest's temporary folders are private to their owner).
    data = Path(tempfile.mkdtemp(prefix="docclass-scale-"))
    data.chmod(0o755)
    variables |= {"SCALE_DATA": str(data), "SCALE_ENV_FILE": str(data / ".env")}
    scale = Profile(data, data / "work", variables)
    try:
        work = scale.work
        work.mkdir()
        params = copy.deepcopy(load_params())
        params["gate"] = dict(GATE)
        params["train"]["max_folds"] = 3
        params["train"]["candidates"] = ["text"]
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        generate_corpus(work / "round1", per_class=8, seed=3, scanned_share=0.0)
        generate_corpus(work / "round2", per_class=12, seed=3, scanned_share=0.0)  # round1 and 4 more a class
        scale.make("scale-up")
        yield scale
    finally:
        scale.make("scale-down")
        print(f"scale profile timings (s): {json.dumps(scale.timings)}")
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def first_version(profile: Profile) -> dict[str, Any]:
    """Version 1.1 from `docclass round` on the first 40 documents: champion, followed by both replicas."""
    started = time.perf_counter()
    outcome: dict[str, Any] = json.loads(profile.docclass("round", str(profile.work / "round1")).stdout)
    profile.timings["round 1.1"] = round(time.perf_counter() - started, 1)
    return outcome


def test_the_profile_runs_on_postgresql_and_s3_without_sqlite_or_a_visible_password(profile: Profile) -> None:
    import psycopg2

    settings = profile.settings()
    for name in SERVERS:
        assert alive(profile.pid(name)), f"{name}: not running after scale-up"
    # every store is PostgreSQL, and each server created its tables there
    for field_name, table in (
        ("mlflow_backend_store_uri", "registered_models"),
        ("prefect_database_url", "flow_run"),
        ("label_studio_database_url", "task"),
    ):
        url = reveal(getattr(settings, field_name)) or ""
        assert url.startswith("postgresql")
        with (
            psycopg2.connect(url.replace("+psycopg2", "").replace("+asyncpg", "")) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = %s", (table,))
            assert cur.fetchone() == (1,), f"{field_name}: no table {table}"
    sqlite = [
        str(path)
        for path in profile.data.rglob("*")
        if path.is_file() and not path.is_symlink() and path.open("rb").read(16) == b"SQLite format 3\x00"
    ]
    assert sqlite == []
    # no secret on any command line
    secrets_ = [
        reveal(settings.s3_secret_access_key),
        (reveal(settings.mlflow_backend_store_uri) or "").split(":")[2].split("@")[0],
    ]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert not any(secret and secret in args for secret in secrets_), f"a secret in {cmdline}"


def test_a_round_lands_in_postgresql_mlflow_and_s3_and_is_reproduced_from_s3(
    profile: Profile, first_version: dict[str, Any], tmp_path: Path
) -> None:
    import psycopg2

    from flows.sources import S3Config, s3_client
    from flows.versions import SnapshotStore, dvc_remote_options

    assert first_version["version"] == "1.1" and first_version["gate"] == "pass" and first_version["promoted"]
    settings = profile.settings()
    url = (reveal(settings.mlflow_backend_store_uri) or "").replace("+psycopg2", "")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT version, run_id FROM model_versions WHERE name = 'docclass'")
        ((number, run_id),) = cur.fetchall()
        cur.execute(
            "SELECT version FROM registered_model_aliases WHERE name = 'docclass' AND alias = 'champion'"
        )
        assert cur.fetchone() == (1,) and number == 1

    client = s3_client(S3Config.from_settings(settings))

    def keys(bucket: str) -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    artefacts = [key for key in keys("docclass-mlflow") if f"/{run_id}/" in key]
    assert any(key.endswith("/model/digests.json") for key in artefacts), artefacts
    md5 = first_version["dataset_revision"]
    assert f"store/files/md5/{md5[:2]}/{md5[2:]}.dir" in keys("docclass-dvc")

    # Only S3 holds the snapshot now: restored byte for byte, then reproduced by `docclass reproduce`.
    shutil.rmtree(profile.work / ".data" / "versions")
    store = SnapshotStore(tmp_path / "store", settings.dvc_remote, dvc_remote_options(settings))
    restored = store.restore(md5, tmp_path / "restore")
    assert tree_digest(restored) == tree_digest(profile.work / "round1")
    started = time.perf_counter()
    result = json.loads(profile.docclass("reproduce", "1.1", "--json").stdout)
    profile.timings["reproduce 1.1"] = round(time.perf_counter() - started, 1)
    assert result["identical"] and result["dataset_revision"] == md5
    assert result["recorded"]["accuracy"] == first_version["accuracy"]


def test_classify_spreads_over_both_dask_workers_and_survives_one_killed(
    profile: Profile, first_version: dict[str, Any]
) -> None:
    from distributed import Client

    assert first_version["version"] == "1.1"
    docs = profile.work / "batch"
    generate_corpus(docs, per_class=BATCH_PER_CLASS, seed=5, scanned_share=0.0)
    files = sorted(str(path) for path in docs.rglob("*") if path.is_file())
    assert len(files) == 5 * BATCH_PER_CLASS
    results = profile.work / ".data" / "batch" / "results"
    out = profile.work / "rows.jsonl"
    worker_1 = f"tcp://127.0.0.1:{profile.variables['SCALE_DASK_WORKER_PORTS'].split()[0]}"

    started = time.perf_counter()
    log = profile.work / "classify.log"  # a file, not a pipe: nobody reads the progress bar while it runs
    run = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("docclass")),
            "classify",
            str(docs),
            "--out",
            str(out),
            "--shard-size",
            "50",
        ],
        cwd=profile.work,
        env=profile.env(),
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    busy: set[str] = set()
    killed_in = None
    with Client(profile.settings().dask_address, timeout=30) as dask:
        assert len(dask.scheduler_info()["workers"]) == 2
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and run.poll() is None:
            processing = dask.processing()
            busy |= {worker for worker, tasks in processing.items() if tasks}
            saved = results.is_dir() and any(results.iterdir())
            if saved and len(busy) == 2 and processing.get(worker_1):
                killed_in = list(processing[worker_1])
                os.killpg(profile.pid("dask/worker-1.pid"), signal.SIGKILL)
                break
            time.sleep(0.1)
    assert killed_in, f"worker 1 never ran a shard while another was saved (busy workers: {busy})"
    stdout, _ = run.communicate(timeout=600)
    profile.timings["classify 550 (one worker killed)"] = round(time.perf_counter() - started, 1)
    assert run.returncode == 0, log.read_text()[-4000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    print(f"classify: {summary}; worker 1 was killed while running {killed_in}")
    assert summary["documents"] == len(files) and summary["errors"] == 0 and summary["version"] == "1.1"

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    counts = Counter(row["document"] for row in rows)
    assert sorted(counts) == files and set(counts.values()) == {1}, "a document missing or answered twice"
    assert {row["model_version"] for row in rows} == {"1.1"} and all(row["error"] is None for row in rows)
    right = sum(Path(row["document"]).parent.name == row["label"] for row in rows)
    assert right / len(rows) >= 0.9

    # Worker 1 back; the same command again finds every shard saved and answers the same rows.
    profile.make("scale-dask-up")
    rerun = json.loads(
        profile.docclass("classify", str(docs), "--out", str(out), "--shard-size", "50").stdout
    )
    assert rerun["computed_shards"] == 0 and rerun["documents"] == len(files)
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


def test_nginx_answers_every_request_while_a_promotion_switches_the_replicas(
    profile: Profile, first_version: dict[str, Any]
) -> None:
    import httpx

    assert first_version["version"] == "1.1"
    service = profile.settings().service_url
    document = next((profile.work / "round1" / "w9").iterdir())
    data = document.read_bytes()
    answers: list[tuple[int | str, str | None]] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                try:
                    response = client.post(f"{service}/classify", files={"file": (document.name, data)})
                except httpx.HTTPError as error:
                    answers.append((f"{type(error).__name__}: {error}", None))
                    continue
                version = response.json().get("model_version") if response.status_code == 200 else None
                answers.append((response.status_code, version))

    senders = [threading.Thread(target=send, daemon=True) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        deadline = time.monotonic() + 60
        while not any(version == "1.1" for _, version in answers) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.perf_counter()
        outcome = json.loads(profile.docclass("round", str(profile.work / "round2")).stdout)
        assert outcome["version"] == "1.2" and outcome["gate"] == "pass", outcome
        if not outcome["promoted"]:
            profile.docclass("promote", "1.2", "--reason", "scale test: promotion under load")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            recent = answers[-20:]
            if len(recent) == 20 and all(version == "1.2" for _, version in recent):
                break
            time.sleep(0.5)
        profile.timings["promotion under load"] = round(time.perf_counter() - started, 1)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=130)
    failed = [answer for answer in answers if answer[0] != 200]
    assert failed == [], f"{len(failed)} of {len(answers)} requests failed: {failed[:5]}"
    versions = [version for _, version in answers]
    assert versions[0] == "1.1" and set(versions) == {"1.1", "1.2"}
    assert all(version == "1.2" for version in versions[-20:]), versions[-40:]
    # both replicas answered through nginx
    log = (profile.data / "nginx" / "access.log").read_text()
    for port in profile.variables["SCALE_SERVE_PORTS"].split():
        assert f"upstream=127.0.0.1:{port}" in log


def test_scale_down_stops_everything_it_started(profile: Profile) -> None:
    pids = {name: profile.pid(name) for name in SERVERS}
    assert all(alive(pid) for pid in pids.values())
    profile.make("scale-down")
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    assert left == {}, f"still running after scale-down: {left}"
    assert [name for name in SERVERS if (profile.data / name).exists()] == []
    listening = []
    for port in profile.ports():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                listening.append(port)
    assert listening == []

"""Hostile-file suite, service: every kind of tests/hostile.py uploaded to the real BentoML service (`make serve-up`
on a free loopback port, one worker, the repository's ``serve:`` limits, a model in a temporary MLflow). Each upload
gets its documented status with a JSON body naming every document's answer, within the time limit, with the
service's peak RSS bounded (VmHWM of its processes, reset before each upload), and ``/readyz`` answers after each."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from pipelines.params import load_params
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
)
from tests.make_server import MakeServer, environment, free_port
from tests.serving.conftest import World, serve_params

pytestmark = [pytest.mark.hostile, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

CASES = cases()
ROWS: list[dict[str, Any]] = []


class Service:
    """The running service: its URL and the processes whose memory is measured."""

    def __init__(self, url: str, pid_file: Path) -> None:
        self.url = url
        self.root = psutil.Process(int(pid_file.read_text()))

    def processes(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def reset_peak(self) -> None:
        for process in self.processes():
            reset_peak_rss(process.pid)

    def peak_mb(self) -> float:
        """The largest peak RSS of any of its processes (the worker holds the model and does the work)."""
        return max(peak_rss_mb(process.pid) for process in self.processes())


@pytest.fixture(scope="module")
def service(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("hostile-serve")
    params = serve_params(
        **load_params()["serve"]
    )  # the repository's limits, not the serving tests' small ones
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    port = free_port()
    make_vars = {
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": "1",
        "SERVE_DATA": str(root),
        "BENTOML_BIN": str(Path(sys.executable).with_name("bentoml")),
    }
    world.promote(world.v1)
    env = environment(
        **world.env(DOCCLASS_PARAMS=str(params_file)), BENTOML_DO_NOT_TRACK="true", DOCCLASS_API_KEY=None
    )
    with MakeServer("serving/bentoml.mk", "serve", make_vars, env, timeout_s=180):
        yield Service(f"http://127.0.0.1:{port}", root / "server.pid")
    record("service", ROWS)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_service_answers_every_hostile_input(case: Case, service: Service) -> None:
    data = case.make()
    service.reset_peak()
    with httpx.Client(base_url=service.url, timeout=MAX_SECONDS + 30) as client:
        start = time.monotonic()
        response = client.post("/classify", files={"file": (case.filename, data)})
        seconds = time.monotonic() - start
        rss = service.peak_mb()
        ready = client.get("/readyz", timeout=10).status_code
    row = {"kind": case.kind, "status": response.status_code, "seconds": round(seconds, 2)}
    ROWS.append({**row, "rss_mb": round(rss, 1), "ready": ready})
    assert response.status_code == case.status, response.text[:2000]
    assert response.headers["content-type"].startswith("application/json"), response.text[:2000]
    body = response.json()
    if response.status_code == 200:
        answers = [LABEL] * len(body["documents"]) + [entry["kind"] for entry in body["rejected"]]
        assert sorted(answers) == sorted(case.answers), body
    else:
        assert says_expected(body["error"]), body
        if "rejected" in body:  # no document of the upload could be read: one entry per document it holds
            assert len(body["rejected"]) == len(case.answers), body
    assert ready == 200
    assert seconds < MAX_SECONDS and rss < MAX_RSS_MB, (seconds, rss)

"""The work pool's deployment `classify/docclass-classify` (flows/deployments.py), registered by `make scale-up`
through `python -m flows.scale deploy`: its definition on a throwaway Prefect server, then one run of it by a real
process worker of the pool, without the rest of the scale profile (the profile itself runs in tests/scale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flows.deployments import (
    CLASSIFY_DEPLOYMENT,
    CLASSIFY_ENTRYPOINT,
    CLASSIFY_FLOW,
    DeploymentError,
    register_classify,
)
from flows.scale import app
from pipelines.params import load_params
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POOL = "docclass-scale"
NAME = f"{CLASSIFY_FLOW}/{CLASSIFY_DEPLOYMENT}"


@pytest.fixture(scope="module")
def harness() -> Iterator[str]:
    """Prefect's test harness (a temporary API on SQLite); yields its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield str(PREFECT_API_URL.value())


def deploy(env_file: Path, pool: str = POOL) -> Any:
    return CliRunner().invoke(app, ["deploy", "--env-file", str(env_file), "--pool", pool])


def read_deployment() -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(NAME)


def test_scale_up_registers_the_classify_deployment_on_the_pool(
    harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prefect.client.orchestration import get_client
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    env_file = tmp_path / "scale.env"
    env_file.write_text(f"PREFECT_API_URL={harness}\n")
    result = deploy(env_file)
    assert result.exit_code == 0, result.output
    assert f"deployment {NAME} on work pool {POOL}" in result.output
    deployment = read_deployment()
    assert deployment.work_pool_name == POOL and deployment.entrypoint == CLASSIFY_ENTRYPOINT
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]  # the worker runs the flow from this checkout
    schema = deployment.parameter_openapi_schema
    assert set(schema["properties"]) == {"sources", "out", "version", "shard_size"}
    assert sorted(schema["required"]) == ["out", "sources"]
    assert not deployment.schedules
    with get_client(sync_client=True) as client:
        assert client.read_work_pool(POOL).type == "process"
    # scale-up run again: the same deployment, updated
    assert deploy(env_file).exit_code == 0 and read_deployment().id == deployment.id
    # what the worker loads from its working directory
    loaded = load_flow_from_entrypoint(f"{ROOT}/{CLASSIFY_ENTRYPOINT}")
    assert loaded.name == CLASSIFY_FLOW


def test_mk_scale_registers_it_once_the_worker_runs():
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "-f", "mk/scale.mk", "scale-worker-up", "SCALE_POOL=pool-x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "prefect worker start --pool pool-x" in line)
    deploy_line = next(i for i, line in enumerate(lines) if "-m flows.scale deploy" in line)
    assert start < deploy_line and '--env-file ".env" --pool pool-x' in lines[deploy_line]


def test_a_pool_of_another_type_or_no_api_is_refused(
    harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="elsewhere", type="kubernetes"))
    with pytest.raises(
        DeploymentError, match="work pool elsewhere is of type 'kubernetes': expected 'process'"
    ):
        register_classify(harness, "elsewhere")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "empty.env").write_text("")
    result = deploy(tmp_path / "empty.env")
    assert result.exit_code == 2
    assert "no Prefect API to register the deployment on: expected PREFECT_API_URL" in result.output


def test_a_prefect_api_that_does_not_answer_is_a_clear_error(tmp_path: Path):
    from tests.make_server import free_port

    api = f"http://127.0.0.1:{free_port()}/api"
    (tmp_path / "scale.env").write_text(f"PREFECT_API_URL={api}\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DOCCLASS_", "PREFECT_"))}
    result = subprocess.run(
        [sys.executable, "-m", "flows.scale", "deploy", "--env-file", str(tmp_path / "scale.env"), "--pool", POOL],
        cwd=ROOT, env=env | {"PREFECT_CLIENT_MAX_RETRIES": "0"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"error: cannot register {NAME} at {api}: " in result.stderr


def test_a_run_of_the_deployment_by_the_pool_s_worker_classifies_every_document(
    harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The README's `prefect deployment run classify/docclass-classify --param ...`, then a process worker of the
    pool (`--run-once`) runs it from this checkout with the settings of its environment: a registry with one
    champion, no Dask address (a local pool), the documents' folder."""
    from prefect.client.orchestration import get_client

    from flows.bench_batch import register_model
    from pipelines.samples import generate_corpus

    params = load_params()
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    uri, _, _ = register_model(tmp_path / "registry", "text", params)
    generate_corpus(tmp_path / "docs", per_class=1, seed=4, scanned_share=0.0)
    out = tmp_path / "results.jsonl"
    register_classify(harness, POOL)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DOCCLASS_", "PREFECT_"))}
    env |= {
        "PREFECT_API_URL": harness,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "DOCCLASS_MLFLOW_TRACKING_URI": uri,
        "DOCCLASS_PARAMS": str(params_file),
        "DOCCLASS_DATA_DIR": str(tmp_path / "data"),
        "OMP_THREAD_LIMIT": "1",
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    sources = json.dumps([str(tmp_path / "docs")])
    started = subprocess.run(
        [prefect, "deployment", "run", NAME, "--param", f"sources={sources}", "--param", f"out={out}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    worker = subprocess.run(
        [prefect, "worker", "start", "--pool", POOL, "--type", "process", "--run-once"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(deployment_filter=deployment_filter(read_deployment().id))
        deadline = time.monotonic() + 60
        while run.state is not None and not run.state.is_final() and time.monotonic() < deadline:
            time.sleep(1)
            run = client.read_flow_run(run.id)
    assert run.state is not None and run.state.is_completed(), worker.stdout[-3000:] + worker.stderr[-3000:]
    assert run.parameters == {"sources": [str(tmp_path / "docs")], "out": str(out)}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    names = sorted(str(path) for path in (tmp_path / "docs").rglob("*") if path.is_file())
    assert sorted(row["document"] for row in rows) == names
    assert all(row["error"] is None and row["label"] and row["model_version"] == "1.1" for row in rows)


def deployment_filter(deployment_id: Any) -> Any:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))

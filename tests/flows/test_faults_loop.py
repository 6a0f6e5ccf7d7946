"""Fault suite (issue 13), the retraining loop and promotions: concurrent promoters, MLflow stopped in a round,
`docclass flows serve` killed with SIGKILL in a round, a burst of webhook events with the schedule.

Every fault is made on real servers started by their make targets (MLflow by flows/mlflow.mk, Prefect by
flows/loop.mk, Label Studio by the session fixture), each on a free port with its own folder, and every test checks
what the issue asks: no label lost, no milestone with two versions, no incomplete version served or promoted, and
the system converging once the fault clears.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.registry import MLFLOW_OUTAGE_RETRIES, Registry
from tests.conftest import ROOT
from tests.flows.test_registry import add_version
from tests.make_server import MakeServer, free_port

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


# ------------------------------------------------------------------------------------------------ servers


@dataclass
class Server:
    """A server of a make fragment on a free port with its own folder."""

    url: str
    make: MakeServer
    data: Path


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One MLflow server (SQLite + local artefacts) for the module; a test that stops it starts it again."""
    data = tmp_path_factory.mktemp("faults-mlflow")
    port = free_port()
    make = MakeServer("flows/mlflow.mk", "mlflow", {"MLFLOW_PORT": str(port), "MLFLOW_DATA": str(data)})
    make.up()
    try:
        yield Server(f"http://127.0.0.1:{port}", make, data)
    finally:
        make.down()


def cli_env(tmp: Path, **values: str) -> dict[str, str]:
    """The environment of a `docclass` process: this one's, without DOCCLASS_* settings, plus ``values``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOCCLASS_")}
    env.update({"PYTHONPATH": str(ROOT), "DOCCLASS_DATA_DIR": str(tmp / "data"), **values})
    return env


def start_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`python -m flows.cli ...` as users run it (working directory ``cwd``: no `.env` of the repository)."""
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--params", str(ROOT / "params.yaml"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


# ------------------------------------------------------------------------------------- concurrent promoters


def promote_at_once(
    candidates: list[int], expect: str, env: dict[str, str], cwd: Path
) -> dict[int, tuple[int, str, str]]:
    """Four `docclass promote` processes started together, each as its own user; version -> (exit, out, err)."""
    processes = {
        number: start_cli(
            "promote",
            f"1.{number}",
            "--reason",
            f"promoter {number} wants it",
            "--expect-champion",
            expect,
            env={**env, "DOCCLASS_USER": f"promoter-{number}"},
            cwd=cwd,
        )
        for number in candidates
    }
    return {number: finish(process) for number, process in processes.items()}


def check_one_winner(results: dict[int, tuple[int, str, str]], seq: int, before: str) -> int:
    """Exactly one promoter won promotion ``seq``; the others exit 1 naming the winner and what to do."""
    winners = [number for number, (code, _, _) in results.items() if code == 0]
    assert len(winners) == 1, {n: (code, err[-600:]) for n, (code, _, err) in results.items()}
    winner = winners[0]
    event = json.loads(results[winner][1])
    assert (event["seq"], event["from"], event["to"], event["by"]) == (
        seq,
        before,
        f"1.{winner}",
        f"promoter-{winner}",
    )
    for number, (code, out, err) in results.items():
        if number == winner:
            continue
        assert code == 1 and out == "", (number, code, err)
        message = " ".join(err.split())
        assert f"error: 1.{number} was not made champion" in message
        assert f"promoter-{winner}" in message and f"1.{winner}" in message  # who won
        assert "Nothing was changed" in message and "promote again" in message  # what to do
        assert "Traceback" not in err
    return winner


def versions_history(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    code, out, err = finish(start_cli("versions", "--json", "--history", env=env, cwd=cwd))
    assert code == 0, err
    payload: dict[str, Any] = json.loads(out)
    return payload


def check_history(
    registry: Registry, env: dict[str, str], cwd: Path, moves: list[tuple[int | None, int]]
) -> None:
    """The history is exactly ``moves`` (from, to), numbered 1.., and the alias and `versions --history` agree."""
    history = registry.history()
    assert [(e.from_version, e.to_version) for e in history] == moves
    assert [e.seq for e in history] == list(range(1, len(moves) + 1))
    assert registry.champion_number() == moves[-1][1]
    payload = versions_history(env, cwd)
    assert payload["champion"] == f"1.{moves[-1][1]}"
    assert [(h["seq"], h["from"], h["to"]) for h in payload["history"]] == [
        (i, f"1.{a or 0}", f"1.{b}") for i, (a, b) in enumerate(moves, 1)
    ]
    rows = {row["version"]: row for row in payload["versions"]}
    assert [v for v, row in rows.items() if row["champion"]] == [f"1.{moves[-1][1]}"]


def test_four_promoters_at_once_make_exactly_one_winner(mlflow_server: Server, tmp_path: Path):
    """Four `docclass promote` processes against one MLflow server, twice (no champion yet, then a champion):
    each time exactly one wins, the others change nothing and say who won; every promotion is recorded once."""
    model = "race"
    registry = Registry(mlflow_server.url, model, model)
    numbers = [add_version(registry, tmp_path) for _ in range(5)]
    assert numbers == [1, 2, 3, 4, 5]
    env = cli_env(
        tmp_path,
        DOCCLASS_MLFLOW_TRACKING_URI=mlflow_server.url,
        DOCCLASS_REGISTERED_MODEL=model,
        DOCCLASS_MLFLOW_EXPERIMENT=model,
    )

    first = check_one_winner(promote_at_once([2, 3, 4, 5], "1.0", env, tmp_path), 1, "1.0")
    check_history(registry, env, tmp_path, [(None, first)])

    others = [n for n in numbers if n != first]
    second = check_one_winner(promote_at_once(others, f"1.{first}", env, tmp_path), 2, f"1.{first}")
    check_history(registry, env, tmp_path, [(None, first), (first, second)])


def test_the_backend_decides_a_promotion_raced_past_its_check(mlflow_server: Server, tmp_path: Path):
    """A promoter that read the champion before another promotion was made passes its own check with that stale
    view; its claim of the same promotion number is refused by the server, and it changes nothing."""
    from flows.registry import PromotionConflict

    model = "raced"
    slow, fast = Registry(mlflow_server.url, model, model), Registry(mlflow_server.url, model, model)
    first, second, third = (add_version(slow, tmp_path) for _ in range(3))
    slow.move_champion(first, reason="start", by="setup", automatic=False)
    stale = slow.settle_champion()  # what the slow promoter saw: #1, champion 1.1
    fast.move_champion(second, reason="fast", by="fast", automatic=False, expected=first)
    slow.settle_champion = lambda: stale  # type: ignore[method-assign]  # the view it acts on
    with pytest.raises(
        PromotionConflict, match=r"promotion #2 \(1\.1 -> 1\.2 by fast at .*\) was made at the same"
    ) as lost:
        slow.move_champion(third, reason="slow", by="slow", automatic=False, expected=first)
    assert lost.value.current == second and lost.value.winner.by == "fast"
    assert fast.champion_number() == second
    assert [(e.seq, e.to_version, e.by) for e in fast.history()] == [(1, first, "setup"), (2, second, "fast")]


class Died(BaseException):
    """A promoter process dying (not an exception anything catches)."""


def test_a_promoter_dying_between_its_claim_and_the_alias_blocks_nobody(
    mlflow_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The claim is the promotion: the next promoter moves the alias where the dead one's claim says, then makes
    its own promotion; each is recorded once and the alias ends where the history says."""
    model = "dying"
    registry = Registry(mlflow_server.url, model, model)
    first, second, third = (add_version(registry, tmp_path) for _ in range(3))
    registry.move_champion(first, reason="start", by="setup", automatic=False)
    env = cli_env(
        tmp_path,
        DOCCLASS_MLFLOW_TRACKING_URI=mlflow_server.url,
        DOCCLASS_REGISTERED_MODEL=model,
        DOCCLASS_MLFLOW_EXPERIMENT=model,
    )

    def die(self: Registry, to: int | None) -> None:
        raise Died

    with monkeypatch.context() as patch:
        patch.setattr(Registry, "_point_alias", die)
        with pytest.raises(Died):
            registry.move_champion(second, reason="then died", by="dead", automatic=False)
    assert registry.champion_number() == first  # the alias was never moved ...
    assert [(e.to_version, e.by) for e in registry.history()][-1] == (second, "dead")  # ... the claim is in
    code, out, err = finish(start_cli("versions", "--json", "--history", env=env, cwd=tmp_path))
    assert (
        code == 0
        and "warning: the champion alias is at 1.1 but the last recorded promotion, #2, made 1.2"
        in " ".join(err.split())
    )

    code, out, err = finish(
        start_cli("promote", "1.3", "--reason", "next", env={**env, "DOCCLASS_USER": "next"}, cwd=tmp_path)
    )
    assert code == 0, err
    assert json.loads(out)["from"] == f"1.{second}"  # it replaced the dead promoter's champion
    check_history(registry, env, tmp_path, [(None, first), (first, second), (second, third)])


def test_a_round_promotes_by_compare_and_set_against_the_champion_of_the_round(
    mlflow_server: Server, tmp_path: Path
):
    """A round's automatic promotion: refused when the champion changed since the round started (nothing
    recorded), and not made twice when a rerun finds its promotion recorded but the version untagged."""
    from flows.versions import _promote

    model = "round-cas"
    registry = Registry(mlflow_server.url, model, model)
    first, second, third = (add_version(registry, tmp_path) for _ in range(3))
    registry.move_champion(first, reason="start", by="setup", automatic=False)
    info = {"promote": True, "promotion_reason": "beats 1.1", "tags": {"champion_at_round": "1.1"}}
    registry.move_champion(second, reason="by hand meanwhile", by="alice", automatic=False)
    said: list[str] = []
    assert _promote(registry, third, info, said.append) is False
    assert said == ["champion changed to 1.2 since the round started: 1.3 not promoted"]
    assert (
        registry.version(third).tags["promotion"] == "not promoted" and registry.champion_number() == second
    )

    fourth = add_version(registry, tmp_path)
    at_two = {**info, "tags": {"champion_at_round": "1.2"}}
    registry.move_champion(
        fourth, reason="beats 1.2", by="round", automatic=True, expected=second
    )  # then a crash
    assert _promote(registry, fourth, at_two, said.append) is True  # the rerun
    assert registry.version(fourth).tags["promotion"] == "promoted"
    assert [(e.to_version, e.by) for e in registry.history()] == [
        (first, "setup"),
        (second, "alice"),
        (fourth, "round"),
    ]


def test_registering_against_a_concurrent_first_registration(
    mlflow_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two first registrations at once: both see no registered model, one creates it, the other must go on."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    model = "first-registration"
    Registry(mlflow_server.url, model, model).ensure_model()  # the other registration created it
    late = Registry(mlflow_server.url, model, model)

    def not_yet(self: MlflowClient, name: str) -> Any:  # what the late one saw a moment before
        raise MlflowException(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST)

    monkeypatch.setattr(MlflowClient, "get_registered_model", not_yet)
    late.ensure_model()
    monkeypatch.undo()
    assert add_version(late, tmp_path) == 1


# ------------------------------------------------------------------------------------- the loop under faults

CLASSES = ["w9", "invoice", "payslip"]
EVERY = 6  # labels per milestone: two documents of each class


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("faults-prefect")
    port = free_port()
    make = MakeServer("flows/loop.mk", "prefect", {"PREFECT_PORT": str(port), "LOOP_DATA": str(data)})
    make.up()
    try:
        yield Server(f"http://127.0.0.1:{port}/api", make, data)
    finally:
        make.down()


def write_loop_params(path: Path) -> Path:
    """params.yaml for a fast loop: a milestone every 6 labels, the text candidate, 2 folds, gates relaxed."""
    import yaml

    from pipelines.params import load_params

    params = load_params()
    params["gate"] = {
        "min_accuracy": 0.0,
        "min_macro_f1": 0.0,
        "min_class_recall": 0.0,
        "max_regression": 1.0,
    }
    params["train"]["max_folds"] = 2
    params["loop"] = {"retrain_every": EVERY, "interval_seconds": 3600, "candidates": ["text"]}
    path.write_text(yaml.safe_dump(params))
    return path


@dataclass
class Labels:
    """Labelled documents as a pull returns them: originals kept under the data folder, labels in order."""

    records: list[Any]  # LabelRecord, in annotation order (round robin over the classes)

    def first(self, n: int) -> dict[int, Any]:
        return {record.task_id: record for record in self.records[:n]}


def make_labels(corpus: Path, originals: Path, per_class: int, seed: int) -> Labels:
    from labeling.convert import LabelRecord
    from pipelines.samples import generate_corpus

    manifest = generate_corpus(corpus, per_class=per_class, seed=seed, scanned_share=0.0, classes=CLASSES)
    originals.mkdir(parents=True, exist_ok=True)
    by_class: dict[str, list[dict[str, Any]]] = {label: [] for label in CLASSES}
    for row in manifest:
        (originals / f"{row['sha256']}.pdf").write_bytes((corpus / row["file"]).read_bytes())
        by_class[row["label"]].append(row)
    ordered = [by_class[label][i] for i in range(per_class) for label in CLASSES]
    records = [
        LabelRecord(
            task_id=task_id,
            sha256=row["sha256"],
            name=Path(row["file"]).name,
            label=row["label"],
            annotation_id=task_id * 10,
            annotator="annotator@example.com",
            created_at=f"2026-11-24T10:00:{task_id:02d}.000000Z",
            updated_at=f"2026-11-24T10:00:{task_id:02d}.000000Z",
        )
        for task_id, row in enumerate(ordered, 1)
    ]
    return Labels(records)


class RunLog(logging.Handler):
    """The records of Prefect's run loggers while in a ``with`` block (after their filters)."""

    NAMES = ("prefect.task_runs", "prefect.flow_runs")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> RunLog:
        for name in self.NAMES:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        for name in self.NAMES:
            logging.getLogger(name).removeHandler(self)


def loop_versions(registry: Registry) -> list[tuple[int, str | None, bool]]:
    """(version, milestone tag, complete) of every registered version, incomplete ones included."""
    from flows.retrain import MILESTONE_TAG

    return [
        (v.number, v.tags.get(MILESTONE_TAG), v.complete) for v in registry.versions(include_incomplete=True)
    ]


def test_mlflow_stopped_in_a_round_fails_it_cleanly_and_the_rerun_makes_the_milestone_once(
    mlflow_server: Server, prefect_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`docclass flows run` with MLflow stopped (its make target) right after the version is registered, before
    it is complete: the command fails with one clear line, the half-registered version is neither listed nor
    champion; with MLflow back, the rerun completes that very version, once, with its milestone."""
    import time

    from prefect import task
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    import flows.retrain
    from flows.cli.app import app

    model = "mlflow-stop"
    data = tmp_path / "data"
    labels = make_labels(tmp_path / "corpus", data / "labeling" / "originals", per_class=2, seed=3)
    params = write_loop_params(tmp_path / "params.yaml")
    for key, value in {
        "DOCCLASS_DATA_DIR": str(data),
        "DOCCLASS_MLFLOW_TRACKING_URI": mlflow_server.url,
        "DOCCLASS_REGISTERED_MODEL": model,
        "DOCCLASS_MLFLOW_EXPERIMENT": model,
        "DOCCLASS_DVC_REMOTE": str(tmp_path / "dvc-remote"),
        "DOCCLASS_SMTP_HOST": "none",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    for (
        key
    ) in MLFLOW_OUTAGE_RETRIES:  # unset while the test runs (the flow bounds them), unset again after it
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)

    @task(name="pull labels")
    def pull(settings: Any, state_file: Path) -> dict[int, Any]:
        return labels.first(EVERY)

    monkeypatch.setattr(flows.retrain, "pull_task", pull)
    monkeypatch.setattr(flows.retrain, "preannotate_from_champion", lambda *_, **__: None)
    complete = Registry.mark_complete

    def stop_then_complete(self: Registry, number: int) -> None:
        mlflow_server.make.down()
        complete(self, number)

    registry = Registry(mlflow_server.url, model, model)
    runner = CliRunner()
    records = RunLog()
    with temporary_settings({PREFECT_API_URL: prefect_server.url}), records:
        with monkeypatch.context() as patch:
            patch.setattr(Registry, "mark_complete", stop_then_complete)
            started = time.monotonic()
            try:
                failed = runner.invoke(app, ["--params", str(params), "flows", "run"])
            finally:
                seconds = time.monotonic() - started
                mlflow_server.make.up()
        print(f"failed run: {seconds:.0f} s")
        assert failed.exit_code == 1, failed.output
        assert failed.stdout == ""
        lines = failed.stderr.strip().splitlines()
        assert [line for line in lines if line.startswith("error:")] == lines[-1:]
        assert lines[-1].startswith(
            f"error: the retrain run failed: RegistryError: MLflow tracking server {mlflow_server.url} does not "
            "answer"
        )
        assert "Traceback" not in failed.output
        # the run log (Prefect UI, console) says it in one line: no traceback of transport frames
        failures = [r for r in records.records if r.levelno >= logging.ERROR]
        assert failures and not [r for r in failures if r.exc_info or r.exc_text]
        assert any("does not answer" in r.getMessage() for r in failures)
        assert seconds < 120  # MLflow's own retries no longer hold a request for minutes
        assert loop_versions(registry) == [(1, None, False)]  # registered, never completed ...
        assert (
            registry.versions() == [] and registry.champion_number() is None
        )  # ... so neither listed nor served

        rerun = runner.invoke(app, ["--params", str(params), "flows", "run"])
        assert rerun.exit_code == 0, rerun.output
        rows = json.loads(rerun.stdout)
        assert [(row["version"], row["milestone"], row["reused"]) for row in rows] == [("1.1", EVERY, False)]
        assert loop_versions(registry) == [(1, str(EVERY), True)]
        assert registry.version(1).tags["label_count"] == str(
            EVERY
        )  # every label of the milestone, none lost
        assert registry.champion_number() == 1
        assert [(e.from_version, e.to_version) for e in registry.history()] == [(None, 1)]
        again = runner.invoke(app, ["--params", str(params), "flows", "run"])
        assert again.exit_code == 0 and json.loads(again.stdout) == []
    assert loop_versions(registry) == [(1, str(EVERY), True)]


# ------------------------------------------------------------------------- the served deployment under faults


@dataclass
class Loop:
    """A Label Studio project with labelled documents, the env of a `docclass flows serve` against it, and the
    registry the loop writes to."""

    env: dict[str, str]
    registry: Registry
    tmp: Path
    task_ids: list[int]  # every imported task, in annotation order (round robin over the classes)

    def serve(self, prefect: Server, name: str) -> MakeServer:
        """`make flows-up` (its own folder, pid file and process group) against ``prefect``."""
        port = prefect.url.removeprefix("http://127.0.0.1:").removesuffix("/api")
        data = self.tmp / name
        return MakeServer(
            "flows/loop.mk", "flows", {"PREFECT_PORT": port, "LOOP_DATA": str(data)}, env=self.env
        )

    def annotate(self, count: int) -> None:
        """Label the next ``count`` tasks through the API, as annotators would."""
        from labeling.convert import prediction_result
        from labeling.project import export_tasks, make_client, require_project

        client = make_client(self.env["DOCCLASS_LABEL_STUDIO_URL"], self.env["DOCCLASS_LABEL_STUDIO_TOKEN"])
        project = require_project(client, self.env["DOCCLASS_PROJECT_TITLE"])
        tasks = {int(task["id"]): task for task in export_tasks(client, project.id)}
        done = [task_id for task_id in self.task_ids if tasks[task_id].get("annotations")]
        for task_id in self.task_ids[len(done) : len(done) + count]:
            label = tasks[task_id]["data"]["name"].split("_")[0]
            client.annotations.create(id=task_id, result=prediction_result(label), lead_time=1.0)


def make_loop(labeling_env: dict[str, str], mlflow: Server, tmp: Path, model: str, per_class: int) -> Loop:
    """Import ``per_class`` generated documents of each class into the test's Label Studio project."""
    from labeling.importer import import_documents
    from labeling.project import ensure_project, export_tasks, make_client
    from pipelines.samples import generate_corpus
    from tests.params import ingest_limits

    env = {
        **cli_env(tmp),
        **labeling_env,
        "DOCCLASS_MLFLOW_TRACKING_URI": mlflow.url,
        "DOCCLASS_REGISTERED_MODEL": model,
        "DOCCLASS_MLFLOW_EXPERIMENT": model,
        "DOCCLASS_DVC_REMOTE": str(tmp / "dvc-remote"),
        "DOCCLASS_SMTP_HOST": "none",
        "DOCCLASS_PARAMS": str(write_loop_params(tmp / "params.yaml")),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # the served deployment looks for runs every 2 s (default 10)
    }
    manifest = generate_corpus(
        tmp / "corpus", per_class=per_class, seed=5, scanned_share=0.0, classes=CLASSES
    )
    label_of = {row["sha256"]: row["label"] for row in manifest}
    client = make_client(env["DOCCLASS_LABEL_STUDIO_URL"], env["DOCCLASS_LABEL_STUDIO_TOKEN"])
    project = ensure_project(client, env["DOCCLASS_PROJECT_TITLE"], CLASSES)
    report = import_documents(
        client,
        project.project_id,
        [tmp / "corpus"],
        Path(env["DOCCLASS_LOCAL_FILES_ROOT"]),
        Path(env["DOCCLASS_DATA_DIR"]) / "labeling" / "originals",
        ingest_limits(),
        30,
    )
    assert len(report.imported) == per_class * len(CLASSES) and not report.rejected
    by_class: dict[str, list[int]] = {label: [] for label in CLASSES}
    for task in sorted(export_tasks(client, project.project_id), key=lambda t: int(t["id"])):
        by_class[label_of[task["data"]["sha256"]]].append(int(task["id"]))
    order = [by_class[label][i] for i in range(per_class) for label in CLASSES]
    return Loop(env, Registry(mlflow.url, model, model), tmp, order)


def prefect_client(prefect: Server) -> Any:
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(prefect.url)


def deployment_runs(prefect: Server) -> list[Any]:
    """Flow runs of the served deployment, oldest first."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with prefect_client(prefect) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["docclass-retrain"]))
        )
    return sorted(runs, key=lambda run: run.created)


def in_task(prefect: Server, run_name: str, task: str) -> bool:
    """Whether flow run ``run_name`` is running its task ``task`` now."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterName,
    )
    from prefect.client.schemas.objects import StateType

    with prefect_client(prefect) as client:
        found = client.read_task_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=task)),
        )
    return any(run.state is not None and run.state.type == StateType.RUNNING for run in found)


def run_log(prefect: Server, flow_run_id: Any) -> str:
    """What a flow run logged (on the Prefect server), one message a line."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with prefect_client(prefect) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(what: str, check: Any, timeout: float, every: float = 0.2) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_flow_server_killed_in_a_round_the_next_run_completes_the_milestone_once(
    labeling_env: dict[str, str], mlflow_server: Server, prefect_server: Server, tmp_path: Path
):
    """`docclass flows serve` (make flows-up) killed with SIGKILL, its process group with it, while a run is in
    its training round: started again, a new run gets the deployment's concurrency slot at once and makes the
    milestone's version, exactly once."""
    import signal
    import time

    from flows.cli.loop import request_deployment_run

    loop = make_loop(labeling_env, mlflow_server, tmp_path, "killed", per_class=2)
    loop.annotate(EVERY)
    serve = loop.serve(prefect_server, "serve")
    serve.up()
    try:
        first = request_deployment_run(prefect_server.url)
        wait_for(
            "the run in its training round", lambda: in_task(prefect_server, first, "training round"), 180
        )
        pid = int((tmp_path / "serve" / "loop" / "flows.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        wait_for("the killed process group gone", lambda: not group_alive(pid), 30)
        # killed before the version was complete: nothing half-registered is listed or champion
        assert [
            v for v in loop_versions(loop.registry) if v[2]
        ] == [] and loop.registry.champion_number() is None
        started = time.monotonic()
        serve.up()
        second = request_deployment_run(prefect_server.url)

        def finished() -> Any:
            runs = {run.name: run for run in deployment_runs(prefect_server)}
            return runs if runs[second].state.is_final() else None

        runs = wait_for("the new run finished", finished, 150, every=1)
        seconds = time.monotonic() - started
        print(f"killed {first} in its round; {second} finished {seconds:.0f} s after the restart")
        assert runs[second].state.is_completed(), runs[second].state
        assert runs[first].state.is_crashed(), runs[first].state  # not Running for ever
        log = (tmp_path / "serve" / "loop" / "flows.log").read_text()
        assert (
            f"run {first} of retrain/docclass-retrain was left by a process that died: marked Crashed" in log
        )
        assert seconds < 120  # the slot was freed at once, not when its lease expired (300 s)
        with prefect_client(prefect_server) as client:
            deployment = client.read_deployment_by_name("retrain/docclass-retrain")
            assert (
                client.read_global_concurrency_limit_by_name(f"deployment:{deployment.id}").active_slots == 0
            )
    finally:
        serve.down()
    assert loop_versions(loop.registry) == [(1, str(EVERY), True)]  # the milestone once, complete
    assert loop.registry.version(1).tags["label_count"] == str(EVERY)


def test_a_webhook_burst_with_the_schedule_and_two_manual_runs_make_one_version(
    labeling_env: dict[str, str], mlflow_server: Server, prefect_server: Server, tmp_path: Path
):
    """At the same moment: 30 webhook deliveries to the real receiver (`make trigger-up`), two scheduled runs of
    the deployment due now (as the scheduler makes them; Prefect has been seen to make duplicates) and two
    `docclass flows run` processes. The receiver asks for one run; the deployment runs one at a time and the
    manual runs wait for the loop's lock; one round trains, one version has the milestone."""
    import threading
    from datetime import UTC, datetime, timedelta

    import httpx
    from prefect.states import Scheduled

    from labeling.project import SECRET_HEADER

    loop = make_loop(labeling_env, mlflow_server, tmp_path, "burst", per_class=2)
    loop.annotate(EVERY)
    secret = "burst-secret"
    port = prefect_server.url.removeprefix("http://127.0.0.1:").removesuffix("/api")
    hook_port = free_port()
    env = {**loop.env, "PREFECT_API_URL": prefect_server.url, "DOCCLASS_WEBHOOK_SECRET": secret}
    serve = loop.serve(prefect_server, "serve")
    trigger = MakeServer(
        "flows/loop.mk",
        "trigger",
        {"PREFECT_PORT": port, "LOOP_DATA": str(tmp_path / "trigger"), "TRIGGER_PORT": str(hook_port)},
        env=env,
    )
    serve.up()
    try:
        trigger.up()
        try:
            before = {run.name for run in deployment_runs(prefect_server)}
            with prefect_client(prefect_server) as client:
                deployment = client.read_deployment_by_name("retrain/docclass-retrain")
            manual = [start_cli("flows", "run", env=env, cwd=tmp_path) for _ in range(2)]

            def deliver(n: int) -> int:
                event = {
                    "action": "ANNOTATION_CREATED",
                    "annotation": {"id": n, "task": n},
                    "project": {"id": 1},
                }
                url = f"http://127.0.0.1:{hook_port}/webhook"
                return httpx.post(url, json=event, headers={SECRET_HEADER: secret}, timeout=10).status_code

            answers: list[int] = []
            burst = [threading.Thread(target=lambda n=n: answers.append(deliver(n))) for n in range(30)]
            for thread in burst:
                thread.start()
            with prefect_client(prefect_server) as client:
                for _ in range(2):
                    client.create_flow_run_from_deployment(deployment.id, state=Scheduled())
            for thread in burst:
                thread.join(15)
            assert answers == [200] * 30
            results = [finish(process, timeout=300) for process in manual]

            def all_finished() -> Any:
                # the schedule's runs an hour ahead (interval 3600 s) are not part of this moment
                soon = datetime.now(UTC) + timedelta(minutes=10)
                runs = [
                    run
                    for run in deployment_runs(prefect_server)
                    if run.name not in before
                    and (run.expected_start_time is None or run.expected_start_time < soon)
                ]
                return runs if len(runs) >= 3 and all(run.state.is_final() for run in runs) else None

            runs = wait_for("the deployment's runs finished", all_finished, 240, every=1)
        finally:
            trigger.down()
    finally:
        serve.down()
    for code, _, err in results:
        assert code == 0, err[-2000:]
    made = [row for _, out, _ in results for row in json.loads(out)]
    assert len(runs) == 3 and all(run.state.is_completed() for run in runs), [(r.name, r.state) for r in runs]
    log = (tmp_path / "trigger" / "loop" / "trigger.log").read_text()
    assert log.count("asked deployment retrain/docclass-retrain for run") == 1  # 30 deliveries, one request
    # one run at a time: the deployment's runs never overlapped
    spans = sorted((run.start_time, run.end_time) for run in runs)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False)), spans
    # one round trained, one version for the milestone, made by one of the five runs
    rounds = loop.registry.client.search_runs(
        [loop.registry.experiment_id()], filter_string="tags.kind = 'round'"
    )
    assert len(rounds) == 1
    assert loop_versions(loop.registry) == [(1, str(EVERY), True)]
    assert loop.registry.version(1).tags["label_count"] == str(EVERY)
    # the loop's lock: the five runs checked one after the other, so exactly one found the milestone due
    texts = [run_log(prefect_server, run.id) for run in runs] + [err for _, _, err in results]
    due = [
        " ".join(text.split()).count(f"{EVERY} labels; milestones to version: [{EVERY}]") for text in texts
    ]
    nothing = [" ".join(text.split()).count(f"{EVERY} labels; milestones to version: none") for text in texts]
    assert sorted(due) == [0, 0, 0, 0, 1] and sorted(nothing) == [0, 1, 1, 1, 1], (due, nothing)
    assert len(made) == due[3] + due[4]  # what the manual runs printed agrees

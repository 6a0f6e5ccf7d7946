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

pytestmark = [pytest.mark.faults, pytest.mark.integration]


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

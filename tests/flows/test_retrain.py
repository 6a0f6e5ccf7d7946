"""The retraining loop's pure helpers, notifications (real SMTP to the mail catcher on loopback, failing servers),
the webhook trigger (coalescing, one deployment run asked per milestone, never training), and the CLI."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import requests
import typer
from typer.testing import CliRunner

from flows.cli.loop import MilestoneTrigger
from flows.mailcatcher import MailCatcher, read_mails
from flows.notify import NotifyConfig, VersionSummary, body, build_email, notify, subject
from flows.registry import RegistryError
from flows.retrain import (
    MILESTONE_TAG,
    NOTIFIED_TAG,
    first_n_labels,
    is_connection_error,
    label_order,
    loop_settings,
    milestones,
    pending_notifications,
    usable_labels,
    versioned_milestones,
)
from labeling.convert import LabelRecord
from labeling.webhook import read_events
from tests.conftest import ROOT


def record(task_id: int, created: str, label: str = "w9", annotation_id: int | None = None) -> LabelRecord:
    return LabelRecord(
        task_id=task_id,
        sha256=f"{task_id:064x}",
        name=f"doc{task_id}.pdf",
        label=label,
        annotation_id=annotation_id or task_id * 10,
        annotator="a@example.com",
        created_at=created,
        updated_at=created,
    )


def version(number: int, tags: dict[str, str], complete: bool = True) -> SimpleNamespace:
    return SimpleNamespace(number=number, tags=tags, complete=complete)


# ------------------------------------------------------------------------------------------- milestones


@pytest.mark.parametrize(
    ("n_labels", "done", "expected"),
    [
        (0, [], []),
        (19, [], []),
        (20, [], [20]),
        (65, [], [20, 40, 60]),
        (65, [20, 40], [60]),
        (65, [40], [20, 60]),
        (60, [20, 40, 60], []),
        (39, [20], []),
    ],
)
def test_milestones_are_multiples_reached_and_not_versioned(n_labels, done, expected):
    assert milestones(n_labels, 20, done) == expected


def test_milestones_refuse_a_non_positive_step():
    with pytest.raises(ValueError, match="retrain_every must be a positive number of labels: got 0"):
        milestones(40, 0, [])


def test_versioned_milestones_read_complete_versions_tags_only():
    versions = [
        version(1, {MILESTONE_TAG: "20"}),
        version(2, {}),  # a round made by hand, not a loop milestone
        version(3, {MILESTONE_TAG: "40"}, complete=False),  # crashed: must be redone
        version(4, {MILESTONE_TAG: "60"}),
    ]
    assert versioned_milestones(versions) == [20, 60]


def test_pending_notifications_are_loop_versions_not_yet_notified():
    versions = [
        version(1, {MILESTONE_TAG: "20", NOTIFIED_TAG: "sent"}),
        version(2, {MILESTONE_TAG: "40"}),
        version(3, {}),
        version(4, {MILESTONE_TAG: "60", NOTIFIED_TAG: "disabled"}),
    ]
    assert pending_notifications(versions) == [2]


# ------------------------------------------------------------------------------------------- first labels


def test_first_n_labels_is_by_annotation_creation_then_task_id_whatever_the_input_order():
    records = [record(i, f"2026-11-24T10:00:{i:02d}.000000Z") for i in range(1, 31)]
    records.append(record(99, "2026-11-24T10:00:05.000000Z"))  # same time as task 5: task id breaks the tie
    expected = [1, 2, 3, 4, 5, 99, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    for seed in range(5):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        chosen = first_n_labels(shuffled, 20)
        assert len(chosen) == 20
        assert sorted(chosen, key=lambda t: label_order(chosen[t])) == expected


def test_first_n_labels_compares_times_not_strings():
    # Same instant, different spellings: "+00:00" vs "Z" and fractional digits must not reorder labels.
    early = record(2, "2026-11-24T10:00:00.5+00:00")
    late = record(1, "2026-11-24T10:00:01Z")
    assert list(first_n_labels([late, early], 1)) == [2]


def test_a_relabel_keeps_its_place_and_carries_the_new_label():
    records = {i: record(i, f"2026-11-24T10:00:{i:02d}Z", "w9") for i in range(1, 41)}
    before = first_n_labels(records.values(), 20)
    relabelled = record(3, "2026-11-24T10:00:03Z", "invoice", annotation_id=30)
    records[3] = relabelled
    after = first_n_labels(records.values(), 20)
    assert set(after) == set(before)
    assert after[3].label == "invoice" and before[3].label == "w9"


def test_first_n_labels_refuses_too_few_labels():
    with pytest.raises(ValueError, match="milestone of 20 labels needs 20 labelled documents: found 3"):
        first_n_labels([record(i, "2026-11-24T10:00:00Z") for i in range(3)], 20)


def test_usable_labels_leave_out_a_crafted_sha256_and_say_why(tmp_path: Path):
    """A task whose data.sha256 names a file outside the originals folder never reaches a snapshot."""
    originals = tmp_path / "data" / "originals"
    originals.mkdir(parents=True)
    (originals / f"{1:064x}.pdf").write_bytes(b"%PDF-1.4 fake")
    (tmp_path / "secret.txt").write_text("not a document")
    crafted = LabelRecord(**{**record(2, "2025-01-01T00:00:02Z").to_dict(), "sha256": "../../secret"})
    labels = {1: record(1, "2025-01-01T00:00:01Z"), 2: crafted, 3: record(3, "2025-01-01T00:00:03Z")}
    warnings: list[str] = []
    assert usable_labels(labels, originals, warnings.append) == {1: labels[1]}
    assert warnings == [
        "labelled task 2 (doc2.pdf): data.sha256 is not a document digest: expected 64 lowercase hex "
        "characters, found '../../secret' (12 characters): left out",
        "labelled task 3 (doc3.pdf): document not imported by docclass (no original kept): left out",
    ]


# ----------------------------------------------------------------------------------------------- params


def test_loop_settings_come_from_the_validated_loop_section():
    loop = {"retrain_every": 20, "interval_seconds": 60, "candidates": ["text", "visual"]}
    assert loop_settings({"loop": loop}) == (20, ["text", "visual"])
    with pytest.raises(ValueError, match="loop: missing section"):
        loop_settings({"train": {"candidates": ["text"]}})
    with pytest.raises(ValueError, match="loop.candidates: missing key"):
        loop_settings({"loop": {"retrain_every": 10, "interval_seconds": 60}})


def test_connection_errors_are_retried_and_others_are_not():
    request = httpx.Request("GET", "http://127.0.0.1:9/health")
    assert is_connection_error(httpx.ConnectError("refused", request=request))
    assert is_connection_error(requests.ConnectionError("refused"))
    try:
        try:
            raise httpx.ConnectError("refused", request=request)
        except httpx.ConnectError as error:
            raise RegistryError("MLflow tracking server does not answer") from error
    except RegistryError as wrapped:
        assert is_connection_error(wrapped)
    assert is_connection_error(SimpleNamespace(status_code=503, __cause__=None, __context__=None))
    assert not is_connection_error(ValueError("dataset has one class"))
    assert not is_connection_error(RegistryError("version 1.9 does not exist"))
    assert not is_connection_error(SimpleNamespace(status_code=404, __cause__=None, __context__=None))


# -------------------------------------------------------------------------------------------- notifications


def summary(**overrides) -> VersionSummary:
    values = {
        "version": "1.2",
        "label_count": 40,
        "accuracy": 0.925,
        "macro_f1": 0.91,
        "gate": "pass",
        "gate_reasons": [],
        "promoted": True,
        "candidate": "text",
        "per_class": {
            "w9": {"precision": 1.0, "recall": 0.875, "f1": 0.933, "support": 8},
            "invoice": {"precision": 0.8, "recall": 1.0, "f1": 0.889, "support": 8},
        },
        "run_id": "abc123",
        "experiment_id": "7",
    }
    return VersionSummary(**{**values, **overrides})


def config(port: int = 1025, **overrides) -> NotifyConfig:
    values = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "docclass@localhost",
        "smtp_to": ("team@example.com", "lead@example.com"),
        "service_url": "http://127.0.0.1:3000",
        "mlflow_ui_url": "http://127.0.0.1:5000",
        "timeout_s": 3.0,
    }
    return NotifyConfig(**{**values, **overrides})


def test_email_says_version_labels_accuracy_gate_per_class_and_links():
    message = build_email(summary(), config())
    assert message["Subject"] == "docclass 1.2 deployed: 40 labels, accuracy 0.925, gate pass"
    assert message["To"] == "team@example.com, lead@example.com"
    text = message.get_content()
    assert "Labels:     40" in text and "Accuracy:   0.925" in text and "Gate:       pass" in text
    assert "  w9               1.000   0.875  0.933       8" in text
    assert "  invoice          0.800   1.000  0.889       8" in text
    assert "MLflow run: http://127.0.0.1:5000/#/experiments/7/runs/abc123" in text
    assert "MLflow version: http://127.0.0.1:5000/#/models/docclass/versions/2" in text
    assert "Service: http://127.0.0.1:3000/" in text


def test_a_failed_gate_is_spelled_out_and_missing_links_are_left_out():
    failed = summary(gate="fail", gate_reasons=["accuracy 0.500 < 0.8"], promoted=False, accuracy=None)
    assert subject(failed) == "docclass 1.2 not deployed: 40 labels, accuracy -, gate fail"
    text = body(failed, config(service_url=None, mlflow_ui_url=None))
    assert "Gate:       fail: accuracy 0.500 < 0.8" in text
    assert "Links:" not in text


def test_notify_config_from_dict_accepts_a_comma_separated_list():
    parsed = NotifyConfig.from_dict({"smtp_host": "127.0.0.1", "smtp_port": "2525", "smtp_to": "a@x, b@x"})
    assert parsed.smtp_to == ("a@x", "b@x") and parsed.smtp_port == 2525
    assert NotifyConfig.from_dict(parsed.to_dict()) == parsed


def test_notify_config_from_dict_takes_missing_smtp_values_from_the_settings_defaults():
    """One default per SMTP value, in Settings (the mail catcher's port): a flow parameter without them uses it."""
    from flows.settings import Settings

    parsed = NotifyConfig.from_dict({"smtp_to": "a@x"})
    declared = {key: Settings.model_fields[key].default for key in ("smtp_host", "smtp_port", "smtp_from")}
    assert {key: getattr(parsed, key) for key in declared} == declared
    assert NotifyConfig.from_dict({"smtp_host": "", "smtp_to": "a@x"}).smtp_host is None


def test_real_smtp_send_is_captured_by_the_mail_catcher(tmp_path: Path):
    with MailCatcher(tmp_path / "mail", port=0) as catcher:
        delivery = notify(summary(), config(catcher.port))
        delivery_two = notify(summary(version="1.3", label_count=60, promoted=False), config(catcher.port))
    assert delivery.email == "sent" and delivery.emailed and delivery.webhook == "disabled"
    assert delivery_two.emailed
    mails = read_mails(tmp_path / "mail")
    assert [m["X-Docclass-Version"] for m in mails] == ["1.2", "1.3"]
    assert mails[0]["X-Envelope-To"] == "team@example.com, lead@example.com"
    assert "Accuracy:   0.925" in mails[0].get_content()
    assert mails[0]["Subject"] == "docclass 1.2 deployed: 40 labels, accuracy 0.925, gate pass"
    assert mails[1]["Subject"] == "docclass 1.3 not deployed: 60 labels, accuracy 0.925, gate pass"
    assert not list((tmp_path / "mail").glob(".*.tmp"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_smtp_server_is_reported_not_raised(caplog):
    delivery = notify(summary(), config(_free_port()))
    assert delivery.email.startswith("failed: ConnectionRefusedError")
    assert not delivery.emailed
    assert "e-mail for version 1.2 not sent via 127.0.0.1" in caplog.text


def test_smtp_server_that_refuses_the_mail_is_reported_not_raised():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def refuse() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"554 no service here\r\n")
            time.sleep(0.2)

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    try:
        delivery = notify(summary(), config(port))
    finally:
        thread.join(5)
        server.close()
    assert delivery.email.startswith("failed: SMTPConnectError")


def test_webhook_failure_is_reported_not_raised():
    delivery = notify(summary(), config(smtp_host=None, webhook_url=f"http://127.0.0.1:{_free_port()}/hook"))
    assert delivery.email == "disabled"
    assert delivery.webhook.startswith("failed: ConnectError")


@pytest.mark.slow
def test_a_failing_smtp_server_does_not_fail_the_flow():
    """The notify task inside a flow run: the run completes, the failure is in the result, no tag is written."""
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.retrain import notify_task

    tagged: list[tuple[int, dict]] = []
    registry = SimpleNamespace(set_version_tags=lambda number, tags: tagged.append((number, tags)))

    @flow
    def notify_only() -> str:
        return notify_task(summary(), config(_free_port()), registry).email

    with prefect_test_harness():
        state = notify_only(return_state=True)
    assert state.is_completed()
    assert state.result().startswith("failed:")
    assert tagged == []  # retried by the next run


# ----------------------------------------------------------------------------------------------- trigger


def _requests() -> tuple[list[str], Callable[[], str]]:
    """A fake deployment: the runs asked of it, and the function that asks (returns the run's name)."""
    asked: list[str] = []

    def request_run() -> str:
        asked.append(f"run-{len(asked) + 1}")
        return asked[-1]

    return asked, request_run


def test_trigger_coalesces_a_burst_of_events_into_one_more_check():
    """Events during a check (say a slow Label Studio export) cause exactly one more check, never one each."""
    checking, release = threading.Event(), threading.Event()
    calls = 0

    def due() -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            checking.set()
            assert release.wait(5)
        return []

    asked, request_run = _requests()
    trigger = MilestoneTrigger(due, request_run, 60).begin()
    try:
        trigger.on_event({"action": "ANNOTATION_CREATED"})
        assert checking.wait(5)  # the first check is running
        for _ in range(10):  # a burst of webhook deliveries meanwhile
            trigger.on_event({"action": "ANNOTATION_CREATED"})
        release.set()
        assert trigger.wait_idle(5)
    finally:
        trigger.close()
    assert calls == 2 and trigger.checks == 2
    assert asked == []


def test_trigger_asks_the_deployment_for_exactly_one_run_per_due_milestone():
    due_now: list[int] = []
    asked, request_run = _requests()
    trigger = MilestoneTrigger(lambda: list(due_now), request_run, 60).begin()

    def deliver(events: int = 1) -> None:
        for _ in range(events):
            trigger.on_event({"action": "ANNOTATION_CREATED"})
        assert trigger.wait_idle(5)

    try:
        deliver(3)  # nothing due
        assert asked == []
        due_now[:] = [20]  # the 20th label: one run, however many deliveries
        deliver(5)
        assert asked == ["run-1"]
        deliver(2)  # still due while that run works: not asked again
        due_now[:] = [20, 40]  # 40 reached before 20 is versioned: one more run
        deliver()
        due_now[:] = []  # both versioned
        deliver()
        due_now[:] = [60]
        deliver(4)
    finally:
        trigger.close()
    assert asked == ["run-1", "run-2", "run-3"]
    assert trigger.requested == {20: "run-1", 40: "run-2", 60: "run-3"}
    assert trigger.runs == asked


def test_trigger_survives_a_failing_check():
    calls = []

    def due() -> list[int]:
        calls.append(1)
        raise httpx.ConnectError("Label Studio down")

    asked, request_run = _requests()
    trigger = MilestoneTrigger(due, request_run, 60).begin()
    try:
        trigger.on_event({})
        assert trigger.wait_idle(5)
        trigger.on_event({})
        assert trigger.wait_idle(5)
    finally:
        trigger.close()
    assert len(calls) == 2 and trigger.checks == 2 and asked == []


def test_trigger_webhook_never_trains_and_says_so_when_prefect_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`docclass flows trigger-webhook` against a Prefect API nobody listens on: the event is recorded, no
    training runs in the receiver, and the log says no run was started and that the schedule will catch up."""
    import logging

    from prefect.settings import PREFECT_API_URL, temporary_settings
    from starlette.testclient import TestClient

    import flows.cli.loop as loop
    import flows.retrain
    from flows.cli.app import app
    from labeling.project import SECRET_HEADER

    trained = threading.Event()
    monkeypatch.setattr(flows.retrain, "retrain", lambda *_, **__: trained.set())
    monkeypatch.setattr(loop, "due_milestones", lambda settings, params: [20])
    monkeypatch.setenv("DOCCLASS_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
    warned = threading.Event()
    warnings: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())
                warned.set()

    def fake_uvicorn_run(asgi_app, **_) -> None:
        answer = TestClient(asgi_app).post(
            "/webhook",
            json={"action": "ANNOTATION_CREATED", "annotation": {"id": 5, "task": 3}, "project": {"id": 1}},
            headers={SECRET_HEADER: "s3cret"},
        )
        assert answer.json() == {"recorded": True}
        deadline = time.monotonic() + 30
        while not (warned.is_set() or trained.is_set()) and time.monotonic() < deadline:
            warned.wait(0.05)

    monkeypatch.setattr("uvicorn.run", fake_uvicorn_run)
    handler = Catch()
    logging.getLogger(loop.__name__).addHandler(handler)
    api = f"http://127.0.0.1:{_free_port()}/api"
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            result = CliRunner().invoke(
                app, ["--params", str(ROOT / "params.yaml"), "flows", "trigger-webhook"]
            )
    finally:
        logging.getLogger(loop.__name__).removeHandler(handler)
    assert result.exit_code == 0, result.output
    assert not trained.is_set()  # never trains in the receiver, not even as a fallback
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"labels reached milestone(s) 20 but could not start a retrain run: the Prefect server at {api} "
        "did not take the request: ConnectError"
    )
    assert warnings[0].endswith("The schedule (`docclass flows serve`, every 60 s) will pick the labels up")
    from flows.settings import Settings

    assert [event["annotation_ids"] for event in read_events(Settings().events_file)] == [[5]]


def test_request_deployment_run_asks_for_the_served_deployment(monkeypatch: pytest.MonkeyPatch):
    from prefect.exceptions import ObjectNotFound

    import flows.cli.loop as loop

    asked: list[tuple[str, object]] = []

    class Client:
        def __init__(self, api: str) -> None:
            asked.append(("api", api))

        def __enter__(self) -> Client:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def read_deployment_by_name(self, name: str) -> SimpleNamespace:
            asked.append(("deployment", name))
            if name != "retrain/docclass-retrain":
                raise ObjectNotFound(http_exc=Exception(name))
            return SimpleNamespace(id="d-1")

        def create_flow_run_from_deployment(self, deployment_id: str) -> SimpleNamespace:
            asked.append(("run", deployment_id))
            return SimpleNamespace(name="gentle-otter")

    monkeypatch.setattr("prefect.client.orchestration.SyncPrefectClient", Client)
    assert loop.request_deployment_run("http://127.0.0.1:4200/api") == "gentle-otter"
    assert asked == [
        ("api", "http://127.0.0.1:4200/api"),
        ("deployment", "retrain/docclass-retrain"),
        ("run", "d-1"),
    ]
    monkeypatch.setattr(loop, "DEPLOYMENT", "not-served")
    with pytest.raises(
        loop.RunNotRequested, match=r"has no deployment retrain/not-served: expected `docclass flows serve`"
    ):
        loop.request_deployment_run("http://127.0.0.1:4200/api")
    with pytest.raises(loop.RunNotRequested, match="no Prefect server: expected PREFECT_API_URL"):
        loop.request_deployment_run(None)


def test_bench_loop_seeds_its_corpus_from_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The corpus seed comes from params ``seed`` (and the label count, so each run gets new documents),
    never from the clock: the same params and project state give the same corpus."""
    import yaml

    import flows.cli.loop as loop
    import pipelines.samples
    from flows.cli.app import app

    class Generated(Exception):
        """Stops the command once the corpus seed is known."""

    seeds: list[int] = []

    def generate_corpus(out_dir: Path, *, seed: int, **_: object) -> None:
        seeds.append(seed)
        raise Generated

    labelled = {"count": 7}
    monkeypatch.setattr(pipelines.samples, "generate_corpus", generate_corpus)
    monkeypatch.setattr(loop, "_labelled_count", lambda settings: labelled["count"])
    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for seed, count in ((42, 7), (42, 7), (7, 7), (42, 27)):
        path = tmp_path / f"params-{seed}.yaml"
        path.write_text(yaml.safe_dump({**params, "seed": seed}))
        labelled["count"] = count
        result = CliRunner().invoke(app, ["--params", str(path), "flows", "bench-loop"])
        assert isinstance(result.exception, Generated), result.output
    assert seeds == [
        loop.bench_loop_seed(42, 7),
        loop.bench_loop_seed(42, 7),
        loop.bench_loop_seed(7, 7),
        loop.bench_loop_seed(42, 27),
    ]
    assert len(set(seeds)) == 3  # same params and labels: same seed; another seed or label count: another


def test_flows_commands_are_registered():
    from flows.cli.loop import register

    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"params_path": None}

    register(app)
    result = CliRunner().invoke(app, ["flows", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("run", "serve", "trigger-webhook"):
        assert command in result.output


def test_notify_config_from_settings_falls_back_to_the_tracking_server_for_links():
    fields = {
        "smtp_host": "127.0.0.1",
        "smtp_port": 1025,
        "smtp_from": "docclass@localhost",
        "smtp_to": "a@example.com, b@example.com",
        "service_url": "http://127.0.0.1:3000",
        "mlflow_ui_url": None,
        "notify_webhook_url": None,
        "mlflow_tracking_uri": "http://127.0.0.1:5000",
    }
    parsed = NotifyConfig.from_settings(SimpleNamespace(**fields))
    assert parsed.smtp_to == ("a@example.com", "b@example.com")
    assert parsed.mlflow_ui_url == "http://127.0.0.1:5000"
    local = NotifyConfig.from_settings(SimpleNamespace(**{**fields, "mlflow_tracking_uri": "sqlite:///x.db"}))
    assert local.mlflow_ui_url is None  # no UI to link to
    off = NotifyConfig.from_settings(SimpleNamespace(**{**fields, "smtp_host": ""}))
    assert notify(summary(), off).email == "disabled"

"""Against a real Label Studio server (see conftest.py): init, import, label through the API as annotators would,
relabel, delete, skip, an invalid label, a server restart between pulls, pre-annotations, webhook delivery."""

from __future__ import annotations

import csv
import json
import socket
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from flows.settings import Settings
from labeling.config import SAMPLING, config_classes
from labeling.convert import CREATED, DELETED, UPDATED, prediction_result
from labeling.importer import import_documents
from labeling.preannotate import preannotate
from labeling.project import ClassRemovalError, ensure_project, export_tasks, make_client, require_project
from labeling.pull import pull_labels
from labeling.webhook import read_events
from pipelines.dataset import list_dataset
from tests.labeling.conftest import run_cli
from tests.params import ingest_limits

pytestmark = pytest.mark.integration

CLASSES = ["w9", "1040", "invoice", "payslip", "other"]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Five small generated PDFs/images, one per class."""
    from pipelines.samples import generate_corpus

    out = tmp_path_factory.mktemp("docs")
    generate_corpus(out, per_class=1, seed=3, scanned_share=0.4)
    return sorted(p for p in out.rglob("*") if p.is_file() and p.suffix != ".csv")


def setup_project(documents: list[Path], count: int) -> tuple[Settings, object, int, dict[str, int]]:
    settings = Settings()
    client = make_client(settings.label_studio_url, settings.label_studio_token)
    state = ensure_project(client, settings.project_title, CLASSES)
    report = import_documents(
        client,
        state.project_id,
        documents[:count],
        settings.local_files_root,
        settings.originals_dir,
        ingest_limits(),
        50,
    )
    assert len(report.imported) == count and not report.rejected
    tasks = {t["data"]["name"]: int(t["id"]) for t in export_tasks(client, state.project_id)}
    return settings, client, state.project_id, tasks


def label(client, task_id: int, choice: str) -> int:
    return client.annotations.create(id=task_id, result=prediction_result(choice), lead_time=2.0).id


def read_labels(snapshot: Path) -> dict[int, str]:
    with (snapshot / "labels.csv").open() as handle:
        return {int(row["task_id"]): row["label"] for row in csv.DictReader(handle)}


def test_init_is_idempotent_follows_classes_and_refuses_removing_used_ones(labeling_env, documents, tmp_path):
    settings, client, project_id, tasks = setup_project(documents, 1)
    project = client.projects.get(id=project_id)
    assert project.sampling == SAMPLING and project.show_skip_button
    assert config_classes(project.label_config) == CLASSES
    unchanged = run_cli("labeling", "init", env=labeling_env, cwd=tmp_path)
    assert "unchanged" in unchanged.stderr
    assert len([p for p in client.projects.list() if p.title == settings.project_title]) == 1

    added = ensure_project(client, settings.project_title, [*CLASSES, "receipt"])
    assert added.config_updated and added.added == ["receipt"]
    (task_id,) = tasks.values()
    label(client, task_id, "receipt")
    with pytest.raises(ClassRemovalError, match=r"cannot remove class\(es\) \['receipt'\].*1 task"):
        ensure_project(client, settings.project_title, CLASSES)
    removed = ensure_project(client, settings.project_title, [c for c in [*CLASSES, "receipt"] if c != "w9"])
    assert removed.removed == ["w9"]
    assert "w9" not in config_classes(client.projects.get(id=project_id).label_config)


def test_import_cli_files_folders_zips_once_with_report(labeling_env, documents, tmp_path, label_studio):
    run_cli("labeling", "init", env=labeling_env, cwd=tmp_path)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    with zipfile.ZipFile(inputs / "batch.zip", "w") as archive:
        for path in documents[:2]:
            archive.write(path, f"nested/{path.name}")
    (inputs / "notes.txt").write_text("not a document")
    (inputs / "empty.pdf").write_bytes(b"")
    first = run_cli("import", str(inputs), *map(str, documents[2:4]), env=labeling_env, cwd=tmp_path)
    assert "imported 4 document(s)" in first.stderr, first.stderr
    assert "notes.txt: unsupported file type 'text/plain'" in first.stderr
    assert "empty.pdf is empty (0 bytes)" in first.stderr
    second = run_cli("import", str(inputs), *map(str, documents[:4]), env=labeling_env, cwd=tmp_path)
    assert "imported 0 document(s), 4 already in the project" in second.stderr
    token = labeling_env["DOCCLASS_LABEL_STUDIO_TOKEN"]
    assert token not in first.stdout + first.stderr + second.stdout + second.stderr

    settings = Settings()
    client = make_client(settings.label_studio_url, settings.label_studio_token)
    tasks = export_tasks(client, require_project(client, settings.project_title).id)
    assert len(tasks) == 4
    assert sorted(t["data"]["name"] for t in tasks) == sorted(p.name for p in documents[:4])
    page = httpx.get(
        label_studio.url + tasks[0]["data"]["pages"][0], headers={"Authorization": f"Token {token}"}
    )
    assert page.status_code == 200 and page.headers["content-type"] == "image/png"


def test_incremental_pull_relabel_delete_skip_invalid_and_restart(
    labeling_env, documents, tmp_path, label_studio, caplog
):
    settings, client, _, tasks = setup_project(documents, 4)
    t1, t2, t3, t4 = (tasks[p.name] for p in documents[:4])
    a1 = label(client, t1, "w9")
    a2 = label(client, t2, "invoice")
    client.annotations.create(id=t3, result=[], was_cancelled=True)  # skipped
    label(client, t4, "cat")  # Label Studio accepts it; the pull must not
    snapshot = tmp_path / "snapshot"

    first = pull_labels(client, settings.project_title, settings.state_file, settings.originals_dir, snapshot)
    assert [(c.kind, c.task_id) for c in first.changes] == [(CREATED, t1), (CREATED, t2)]
    assert [(r.task_id, "'cat' is not in the project config" in r.reason) for r in first.new_rejected] == [
        (t4, True)
    ]
    assert "rejected annotation" in caplog.text
    assert read_labels(snapshot) == {t1: "w9", t2: "invoice"}
    with (snapshot / "labels.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert row["annotation_id"] == str(a1) and row["annotator"] == labeling_env["DOCCLASS_LABEL_STUDIO_EMAIL"]
    assert row["created_at"].endswith("Z") and row["updated_at"] >= row["created_at"]
    assert len(list_dataset(snapshot)) == 2

    again = pull_labels(client, settings.project_title, settings.state_file, settings.originals_dir, snapshot)
    assert again.changes == [] and again.new_rejected == [] and len(again.rejected) == 1

    client.annotations.update(id=a1, result=prediction_result("invoice"))  # relabel in place
    client.annotations.delete(id=a2)
    label_studio.restart()  # nothing is lost across a restart: state is on disk, labels in Label Studio's DB
    client = make_client(settings.label_studio_url, settings.label_studio_token)
    label(client, t3, "payslip")  # after the skip, another annotator labels it

    second = run_cli("labeling", "pull", "--out", str(snapshot), env=labeling_env, cwd=tmp_path)
    lines = [json.loads(line) for line in second.stdout.splitlines()]
    assert [(c["change"], c["task_id"]) for c in lines] == [(UPDATED, t1), (DELETED, t2), (CREATED, t3)]
    assert lines[0]["label"] == "invoice" and lines[0]["previous_label"] == "w9"
    assert read_labels(snapshot) == {t1: "invoice", t3: "payslip"}
    assert sorted(f.label for f in list_dataset(snapshot)) == ["invoice", "payslip"]
    assert len(list((snapshot / "documents").iterdir())) == 2

    # A state damaged by a power loss or a hand edit: set aside and started over, the labels all come back.
    settings.state_file.write_text('{"watermark": {"updated_at": "2026-')
    third = pull_labels(client, settings.project_title, settings.state_file, settings.originals_dir, snapshot)
    assert [(c.kind, c.task_id) for c in third.changes] == [(CREATED, t1), (CREATED, t3)]
    assert read_labels(snapshot) == {t1: "invoice", t3: "payslip"}
    damaged = settings.state_file.with_name(settings.state_file.name + ".damaged")
    assert damaged.read_text() == '{"watermark": {"updated_at": "2026-'
    assert "starting from an empty state" in caplog.text


def test_preannotate_sets_model_version_and_serves_least_certain_first(labeling_env, documents, label_studio):
    settings, client, project_id, tasks = setup_project(documents, 4)
    names = [p.name for p in documents[:4]]
    label(client, tasks[names[0]], "w9")
    scores = {names[1]: ("invoice", 0.9), names[2]: ("payslip", 0.35), names[3]: ("other", 0.6)}
    calls: list[list[str]] = []

    def predict(paths):
        calls.append([p.name for p in paths])
        by_sha = {t["data"]["sha256"]: t["data"]["name"] for t in export_tasks(client, project_id)}
        return [scores[by_sha[p.stem]] for p in paths]

    report = preannotate(client, settings.project_title, predict, "test-v1", settings.originals_dir)
    assert sorted(report.predicted) == sorted(tasks[n] for n in names[1:]) and not report.skipped
    assert client.projects.get(id=project_id).model_version == "test-v1"
    predictions = {p.task: p for p in client.predictions.list(project=project_id)}
    assert predictions[tasks[names[2]]].score == pytest.approx(0.35)
    assert predictions[tasks[names[2]]].result[0]["value"]["choices"] == ["payslip"]
    assert predictions[tasks[names[2]]].model_version == "test-v1"
    rerun = preannotate(client, settings.project_title, predict, "test-v1", settings.originals_dir)
    assert rerun.predicted == [] and len(rerun.already_predicted) == 3 and len(calls) == 1

    token = labeling_env["DOCCLASS_LABEL_STUDIO_TOKEN"]
    nxt = httpx.get(
        f"{label_studio.url}/api/projects/{project_id}/next", headers={"Authorization": f"Token {token}"}
    )
    assert nxt.status_code == 200 and nxt.json()["id"] == tasks[names[2]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_delivers_annotation_events_to_the_receiver(labeling_env, documents):
    import uvicorn

    from labeling.webhook import create_app

    settings = Settings()
    secret = labeling_env["DOCCLASS_WEBHOOK_SECRET"]
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings.events_file, secret), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        client = make_client(settings.label_studio_url, settings.label_studio_token)
        url = f"http://127.0.0.1:{port}/webhook"
        state = ensure_project(client, settings.project_title, CLASSES, url, secret)
        assert state.webhook == "created"
        assert ensure_project(client, settings.project_title, CLASSES, url, secret).webhook == "unchanged"
        report = import_documents(
            client,
            state.project_id,
            documents[:1],
            settings.local_files_root,
            settings.originals_dir,
            ingest_limits(),
            50,
        )
        (task_id,) = report.task_ids
        annotation_id = label(client, task_id, "w9")
        client.annotations.update(id=annotation_id, result=prediction_result("invoice"))
        client.annotations.delete(id=annotation_id)
        deadline = time.monotonic() + 15
        while len(read_events(settings.events_file)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        events = read_events(settings.events_file)
        assert [e["action"] for e in events] == [
            "ANNOTATION_CREATED",
            "ANNOTATION_UPDATED",
            "ANNOTATIONS_DELETED",
        ]
        assert all(
            e["project_id"] == state.project_id and annotation_id in e["annotation_ids"] for e in events
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)

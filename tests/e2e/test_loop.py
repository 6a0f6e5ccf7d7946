"""The whole retraining loop against a real Label Studio: import a generated corpus, annotate through the API as
annotators would, run the Prefect flow (prefect_test_harness) with a SQLite MLflow and a temporary DVC remote.

A backlog of 45 labels gives versions 1.1 and 1.2 at once; a rerun changes nothing; a relabel plus 20 more labels
give 1.3 (exactly the first 60 labels, the relabel included); each version's e-mail is captured by the catcher."""

from __future__ import annotations

import copy
import csv
import time
from pathlib import Path
from typing import Any

import pytest

from flows.mailcatcher import MailCatcher, read_mails
from flows.registry import Registry
from flows.retrain import MILESTONE_TAG, NOTIFIED_TAG, retrain
from flows.settings import Settings
from flows.versions import SnapshotStore
from labeling.convert import prediction_result
from labeling.importer import import_documents
from labeling.project import ensure_project, export_tasks, make_client
from pipelines.params import load_params
from pipelines.samples import generate_corpus
from tests.params import ingest_limits

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLASSES = ["w9", "1040", "invoice", "payslip", "other"]
GATE = {"min_accuracy": 0.6, "min_macro_f1": 0.6, "min_class_recall": 0.2, "max_regression": 0.05}


def loop_params() -> dict[str, Any]:
    params = copy.deepcopy(load_params())
    params["gate"] = dict(GATE)
    params["train"]["max_folds"] = 3
    params["loop"] = {"retrain_every": 20, "interval_seconds": 60, "candidates": ["text"]}
    return params


def annotate(client: Any, tasks: list[tuple[int, str]], truth: dict[str, str]) -> list[int]:
    """Label the tasks in order, one API call each, as annotators would; returns the annotation ids."""
    ids = []
    for task_id, sha256 in tasks:
        ids.append(
            client.annotations.create(id=task_id, result=prediction_result(truth[sha256]), lead_time=2.0).id
        )
        time.sleep(0.002)  # distinct creation times, as with people
    return ids


def snapshot_labels(store: SnapshotStore, md5: str, dest: Path) -> dict[int, str]:
    dataset = store.restore(md5, dest)
    with (dataset / "labels.csv").open() as handle:
        return {int(row["task_id"]): row["label"] for row in csv.DictReader(handle)}


def test_labels_become_versions_every_20_with_email(labeling_env, tmp_path: Path, monkeypatch):  # noqa: F811
    started = time.perf_counter()
    mlflow_db = tmp_path / "mlflow" / "mlflow.db"
    mlflow_db.parent.mkdir()
    monkeypatch.setenv("DOCCLASS_MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_db}")
    monkeypatch.setenv("DOCCLASS_DVC_REMOTE", str(tmp_path / "dvc-remote"))
    monkeypatch.delenv("DOCCLASS_PARAMS", raising=False)
    params = loop_params()

    # 65 born-digital documents (13 per class), imported into a fresh project.
    manifest = generate_corpus(tmp_path / "corpus", per_class=13, seed=21, scanned_share=0.0, classes=CLASSES)
    truth = {row["sha256"]: row["label"] for row in manifest}
    settings = Settings()
    client = make_client(settings.label_studio_url, settings.label_studio_token)
    project = ensure_project(client, settings.project_title, CLASSES)
    report = import_documents(
        client,
        project.project_id,
        [tmp_path / "corpus"],
        settings.local_files_root,
        settings.originals_dir,
        ingest_limits(),
        50,
    )
    assert len(report.imported) == 65 and not report.rejected
    by_class: dict[str, list[tuple[int, str]]] = {label: [] for label in CLASSES}
    for task in sorted(export_tasks(client, project.project_id), key=lambda t: int(t["id"])):
        by_class[truth[task["data"]["sha256"]]].append((int(task["id"]), task["data"]["sha256"]))
    # Round robin over the classes: every 20 labels hold 4 of each class.
    order = [by_class[label][i] for i in range(13) for label in CLASSES]
    print(f"setup {time.perf_counter() - started:.0f} s")

    registry = Registry(f"sqlite:///{mlflow_db}", "docclass", "docclass")
    from prefect.testing.utilities import prefect_test_harness

    with MailCatcher(tmp_path / "mail", port=0) as catcher, prefect_test_harness():
        notify = {
            "smtp_host": "127.0.0.1",
            "smtp_port": catcher.port,
            "smtp_from": "docclass@localhost",
            "smtp_to": "team@example.com",
            "service_url": "http://127.0.0.1:3000",
            "mlflow_ui_url": "http://127.0.0.1:5000",
        }
        # A backlog: 45 labels at once give two versions in one run.
        first_ids = annotate(client, order[:45], truth)
        t0 = time.perf_counter()
        first = retrain(params=params, notify_config=notify)
        print(f"first run (2 versions) {time.perf_counter() - t0:.0f} s")
        # Every round trains the one candidate "text" with the same params, so the champion's recipe on the same
        # data scores what the candidate scores: a version is promoted exactly when it passes its gate.
        assert [
            (row["version"], row["milestone"], row["gate"], row["promoted"], row["reused"]) for row in first
        ] == [
            ("1.1", 20, "pass", True, False),
            ("1.2", 40, "pass", True, False),
        ]
        assert registry.champion_number() == 2
        # Pre-annotations from the champion on the 20 unlabelled tasks.
        predictions = [
            p for p in client.predictions.list(project=project.project_id) if p.model_version == "1.2"
        ]
        assert len({p.task for p in predictions}) == 20

        # A rerun with nothing new changes nothing and sends nothing.
        t0 = time.perf_counter()
        assert retrain(params=params, notify_config=notify) == []
        print(f"rerun {time.perf_counter() - t0:.0f} s")
        assert [v.number for v in registry.versions(include_incomplete=True)] == [1, 2]
        assert len(read_mails(tmp_path / "mail")) == 2

        # A relabel among the first 20 labels, then 20 more labels (65 in all).
        relabelled_task, sha = order[2]
        wrong = next(label for label in CLASSES if label != truth[sha])
        client.annotations.update(id=first_ids[2], result=prediction_result(wrong))
        annotate(client, order[45:], truth)
        t0 = time.perf_counter()
        third = retrain(params=params, notify_config=notify)
        print(f"third run (1 version) {time.perf_counter() - t0:.0f} s")
        assert [(row["version"], row["milestone"], row["gate"], row["promoted"]) for row in third] == [
            ("1.3", 60, "pass", True)
        ]

    versions = registry.versions(include_incomplete=True)
    assert [v.number for v in versions] == [1, 2, 3] and all(v.complete for v in versions)
    assert [int(v.tags["label_count"]) for v in versions] == [20, 40, 60]
    assert [v.tags[MILESTONE_TAG] for v in versions] == ["20", "40", "60"]
    assert all(v.tags[NOTIFIED_TAG] == "sent" for v in versions)
    assert registry.champion_number() == 3
    assert [v.champion for v in versions] == [False, False, True]
    assert [(event.from_version, event.to_version, event.automatic) for event in registry.history()] == [
        (None, 1, True),
        (1, 2, True),
        (2, 3, True),
    ]

    # Exactly the first 20*N labels, in annotation order; the relabel shows up in the next snapshot.
    store = SnapshotStore(tmp_path / "restore-store", str(tmp_path / "dvc-remote"))
    v1 = snapshot_labels(store, versions[0].tags["dataset_md5"], tmp_path / "r1")
    v3 = snapshot_labels(store, versions[2].tags["dataset_md5"], tmp_path / "r3")
    assert set(v1) == {task_id for task_id, _ in order[:20]}
    assert set(v3) == {task_id for task_id, _ in order[:60]}
    assert v1[relabelled_task] == truth[sha] and v3[relabelled_task] == wrong

    mails = read_mails(tmp_path / "mail")
    assert [m["X-Docclass-Version"] for m in mails] == ["1.1", "1.2", "1.3"]
    assert [m["Subject"].split(":")[1].split(",")[0] for m in mails] == [
        " 20 labels",
        " 40 labels",
        " 60 labels",
    ]
    assert all(m["Subject"].startswith(f"docclass 1.{i} ") for i, m in enumerate(mails, 1))
    text = mails[2].get_content()
    assert "Per class:" in text and "MLflow run: http://127.0.0.1:5000/#/experiments/" in text
    print(f"total {time.perf_counter() - started:.0f} s")

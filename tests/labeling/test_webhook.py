"""Webhook receiver: shared-secret check, events recorded as JSON lines (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from labeling.project import SECRET_HEADER
from labeling.webhook import create_app, event_record, read_events

PAYLOAD = {
    "action": "ANNOTATION_CREATED",
    "annotation": {"id": 5, "task": 3, "result": []},
    "task": {"id": 3, "data": {}},
    "project": {"id": 1, "title": "docclass"},
}


def test_records_annotation_events_and_ignores_others(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    seen: list[dict] = []
    client = TestClient(create_app(events, "s3cret", on_event=seen.append))
    assert client.post("/webhook", json=PAYLOAD, headers={SECRET_HEADER: "s3cret"}).json() == {
        "recorded": True
    }
    deleted = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 5}, {"id": 6}], "project": {"id": 1}}
    assert client.post("/webhook", json=deleted, headers={SECRET_HEADER: "s3cret"}).status_code == 200
    other = client.post("/webhook", json={"action": "PROJECT_UPDATED"}, headers={SECRET_HEADER: "s3cret"})
    assert other.json() == {"recorded": False, "action": "PROJECT_UPDATED"}
    recorded = read_events(events)
    assert [(e["action"], e["project_id"], e["task_ids"], e["annotation_ids"]) for e in recorded] == [
        ("ANNOTATION_CREATED", 1, [3], [5]),
        ("ANNOTATIONS_DELETED", 1, [], [5, 6]),
    ]
    assert seen == recorded
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong"}])
def test_refuses_missing_or_wrong_secret(tmp_path: Path, headers: dict):
    events = tmp_path / "events.jsonl"
    response = TestClient(create_app(events, "s3cret")).post("/webhook", json=PAYLOAD, headers=headers)
    assert response.status_code == 401 and SECRET_HEADER in response.json()["error"]
    assert not events.exists()


def test_rejects_non_json_and_refuses_to_run_open(tmp_path: Path):
    client = TestClient(create_app(tmp_path / "e.jsonl", "s"))
    assert client.post("/webhook", content=b"{nope", headers={SECRET_HEADER: "s"}).status_code == 400
    with pytest.raises(ValueError, match="webhook secret is empty"):
        create_app(tmp_path / "e.jsonl", "")


def test_event_record_is_compact():
    record = event_record(PAYLOAD, "2025-01-01T00:00:00.000000Z")
    assert record == {
        "received_at": "2025-01-01T00:00:00.000000Z",
        "action": "ANNOTATION_CREATED",
        "project_id": 1,
        "task_ids": [3],
        "annotation_ids": [5],
    }

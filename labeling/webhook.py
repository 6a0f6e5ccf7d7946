"""Webhook receiver: records Label Studio annotation events as JSON lines and answers at once.

Label Studio delivers each webhook once with a 1 s timeout, so the handler only appends a line (and calls an
optional trigger, which must only take note: `docclass flows trigger-webhook` asks the Prefect deployment for a
run from another thread); polling with `labeling pull` and the flow's schedule stay the safety net. Nothing heavy,
and never training, runs here.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labeling.project import SECRET_HEADER

logger = logging.getLogger(__name__)

RECORDED_ACTIONS = frozenset(
    {
        "ANNOTATION_CREATED",
        "ANNOTATIONS_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
        "ANNOTATION_DELETED",
    }
)
PATH = "/webhook"


def event_record(payload: dict[str, Any], received_at: str) -> dict[str, Any]:
    """The compact line recorded for one delivery: action, project, task and annotation ids."""
    annotations = payload.get("annotations") or ([payload["annotation"]] if payload.get("annotation") else [])
    tasks = payload.get("tasks") or ([payload["task"]] if payload.get("task") else [])
    project = payload.get("project")
    return {
        "received_at": received_at,
        "action": payload.get("action"),
        "project_id": project.get("id") if isinstance(project, dict) else project,
        "task_ids": sorted(
            {int(t["id"]) for t in tasks if isinstance(t, dict) and "id" in t}
            | {int(a["task"]) for a in annotations if isinstance(a, dict) and a.get("task")}
        ),
        "annotation_ids": sorted(int(a["id"]) for a in annotations if isinstance(a, dict) and "id" in a),
    }


def read_events(path: Path) -> list[dict[str, Any]]:
    """Recorded events, oldest first (an empty list before the first one)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def create_app(
    events_file: Path, secret: str, on_event: Callable[[dict[str, Any]], None] | None = None
) -> Starlette:
    """The receiver: ``POST /webhook`` with header ``X-Docclass-Secret``; ``GET /health``.

    Args:
        events_file: JSON-lines file the events are appended to.
        secret: shared secret Label Studio sends in the header (registered by `labeling init`).
        on_event: called with each recorded event, after it is on disk (e.g. to note that a flow run may be
            due); must return at once.

    Raises:
        ValueError: empty secret (the receiver never runs open).
    """
    if not secret:
        raise ValueError(
            "webhook secret is empty: expected DOCCLASS_WEBHOOK_SECRET (make labelstudio-up writes it)"
        )
    lock = threading.Lock()
    expected = secret.encode()

    async def receive(request: Request) -> JSONResponse:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning(
                "webhook from %s refused: missing or wrong %s header", request.client, SECRET_HEADER
            )
            return JSONResponse({"error": f"missing or wrong {SECRET_HEADER} header"}, status_code=401)
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "body is not JSON: expected a Label Studio webhook payload"}, 400)
        if not isinstance(payload, dict) or payload.get("action") not in RECORDED_ACTIONS:
            action = payload.get("action") if isinstance(payload, dict) else None
            return JSONResponse({"recorded": False, "action": action})
        record = event_record(payload, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        with lock:
            events_file.parent.mkdir(parents=True, exist_ok=True)
            with events_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if on_event is not None:
            on_event(record)
        return JSONResponse({"recorded": True})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(PATH, receive, methods=["POST"]), Route("/health", health)])


def serve(events_file: Path, secret: str, host: str, port: int) -> None:
    """Run the receiver until interrupted (uvicorn, one process)."""
    import uvicorn

    uvicorn.run(create_app(events_file, secret), host=host, port=port, log_level="warning", access_log=False)

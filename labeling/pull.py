"""Incremental label pull: what changed since the watermark, and the dataset snapshot train consumes."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.config import config_classes
from labeling.convert import (
    LabelChange,
    LabelRecord,
    RejectedAnnotation,
    Watermark,
    check_sha256,
    diff_labels,
    resolve_tasks,
)
from labeling.project import export_tasks, require_project

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

logger = logging.getLogger(__name__)

LABELS_CSV = "labels.csv"
DOCUMENTS = "documents"
COLUMNS = ["file", "label", "task_id", "annotation_id", "annotator", "created_at", "updated_at"]
STATE_VERSION = 1
NOT_IMPORTED = "document not imported by docclass (no original kept)"


@dataclass
class PullState:
    """What the last pull saw; kept on disk so a restarted Label Studio (or pipeline) loses nothing."""

    project_id: int | None = None
    watermark: Watermark = field(default_factory=Watermark)
    labels: dict[int, LabelRecord] = field(default_factory=dict)
    annotation_ids: dict[int, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "project_id": self.project_id,
            "watermark": {"updated_at": self.watermark.updated_at, "id": self.watermark.annotation_id},
            "labels": {str(k): v.to_dict() for k, v in sorted(self.labels.items())},
            "annotation_ids": {str(k): sorted(v) for k, v in sorted(self.annotation_ids.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PullState:
        return cls(
            project_id=data.get("project_id"),
            watermark=Watermark(data["watermark"]["updated_at"], int(data["watermark"]["id"])),
            labels={int(k): LabelRecord(**v) for k, v in data.get("labels", {}).items()},
            annotation_ids={int(k): [int(i) for i in v] for k, v in data.get("annotation_ids", {}).items()},
        )


def load_state(path: Path) -> PullState:
    """The last pull's state, or an empty one before the first pull.

    Raises:
        ValueError: the file exists but is not a pull state.
    """
    if not path.exists():
        return PullState()
    try:
        return PullState.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"pull state {path} is unreadable ({error}): expected JSON written by `labeling pull`"
        ) from error


def save_state(state: PullState, path: Path) -> None:
    """Write the state atomically (a crash leaves the previous state whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as handle:
        handle.write(json.dumps(state.to_json(), indent=1))
        handle.flush()
        # On disk before the rename: a power loss leaves the old state or the new one, never an empty file.
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass
class PullResult:
    """Outcome of one pull."""

    changes: list[LabelChange]
    rejected: list[RejectedAnnotation]  # every annotation that cannot give a label, new or not
    new_rejected: list[RejectedAnnotation]  # those newer than the previous watermark
    labels: dict[int, LabelRecord]
    watermark: Watermark
    snapshot_dir: Path | None
    missing_documents: list[str] = field(default_factory=list)  # labelled tasks left out, with the reason


def find_original(originals_dir: Path, sha256: str) -> Path | None:
    """The kept original of a document (``<sha256><ext>`` in ``originals_dir``), or None.

    An empty ``sha256`` (a task not imported by docclass) gives None.

    Raises:
        ValueError: ``sha256`` is not 64 lowercase hex characters (see :func:`check_sha256`); it never reaches
            the file pattern, so a crafted task cannot name a file outside ``originals_dir``.
    """
    if not sha256:
        return None
    digest = check_sha256(sha256)
    matches = sorted(path for path in originals_dir.glob(f"{digest}.*") if path.is_file())
    return matches[0] if matches else None


def locate_originals(
    labels: Mapping[int, LabelRecord], originals_dir: Path
) -> tuple[dict[int, Path], list[str]]:
    """Each labelled task's kept original, and one line per task left out, naming it and the reason.

    A task is left out when docclass kept no original of its document or when its ``data.sha256`` is not a
    document digest; the other tasks go on.
    """
    found: dict[int, Path] = {}
    left_out: list[str] = []
    for task_id in sorted(labels):
        record = labels[task_id]
        try:
            original = find_original(originals_dir, record.sha256)
        except ValueError as error:
            left_out.append(f"task {task_id} ({record.name}): {error}")
            continue
        if original is None:
            left_out.append(f"task {task_id} ({record.name or record.sha256}): {NOT_IMPORTED}")
            continue
        found[task_id] = original
    return found, left_out


def write_snapshot(labels: Mapping[int, LabelRecord], originals_dir: Path, out: Path) -> list[str]:
    """Write ``out/documents/<sha256><ext>`` and ``out/labels.csv`` for ``labels``; return the tasks left out.

    Tasks are left out as :func:`locate_originals` says. Documents no longer labelled are removed; labels.csv is
    replaced atomically.
    """
    documents = out / DOCUMENTS
    documents.mkdir(parents=True, exist_ok=True)
    originals, missing = locate_originals(labels, originals_dir)
    rows: list[dict[str, Any]] = []
    wanted: set[str] = set()
    for task_id, original in originals.items():
        record = labels[task_id]
        target = documents / original.name
        wanted.add(original.name)
        if not target.exists():
            shutil.copy2(original, target)
        rows.append(
            {
                "file": f"{DOCUMENTS}/{original.name}",
                "label": record.label,
                "task_id": record.task_id,
                "annotation_id": record.annotation_id,
                "annotator": record.annotator,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
            }
        )
    for stale in documents.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    tmp = out / f".{LABELS_CSV}.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / LABELS_CSV)
    return missing


def user_emails(client: LabelStudio) -> dict[int, str]:
    """User id -> e-mail, to name annotators."""
    return {user.id: user.email or f"user:{user.id}" for user in client.users.list()}


def pull_labels(
    client: LabelStudio,
    project_title: str,
    state_file: Path,
    originals_dir: Path,
    snapshot_dir: Path | None,
) -> PullResult:
    """Pull labels created, changed or deleted since the last pull and write the dataset snapshot.

    The export always covers the whole project (Label Studio has no annotation change feed); changes are found
    on the client by annotation ``updated_at`` + id against the stored watermark, and deletions by annotation
    ids that have gone. The state advances only after the snapshot is written.

    Args:
        client: SDK client.
        project_title: the project.
        state_file: watermark and labels of the last pull.
        originals_dir: originals kept by the import.
        snapshot_dir: where to write documents + labels.csv (None: only report the changes).

    Raises:
        LabelingError: no such project.
    """
    project = require_project(client, project_title)
    classes = config_classes(project.label_config)
    try:
        state = load_state(state_file)
    except ValueError as error:
        # The state only tells changes from what was already seen (the export covers the whole project), so a
        # damaged one (a power loss mid-write, a hand edit) must not stop every later pull: set it aside, start over.
        kept = state_file.with_name(state_file.name + ".damaged")
        os.replace(state_file, kept)
        logger.warning("%s: starting from an empty state (the damaged file is kept as %s)", error, kept)
        state = PullState()
    if state.project_id not in (None, project.id):
        logger.warning(
            "pull state %s belongs to project %s, not %s (%r): starting from an empty state",
            state_file,
            state.project_id,
            project.id,
            project_title,
        )
        state = PullState()
    resolution = resolve_tasks(export_tasks(client, project.id), classes, user_emails(client))
    changes = diff_labels(state.labels, state.annotation_ids, resolution, state.watermark)
    new_rejected = [
        item for item in resolution.rejected if state.watermark.passed_by(item.updated_at, item.annotation_id)
    ]
    for item in new_rejected:
        logger.warning("rejected annotation %s on task %s: %s", item.annotation_id, item.task_id, item.reason)
    missing: list[str] = []
    if snapshot_dir is not None:
        missing = write_snapshot(resolution.labels, originals_dir, snapshot_dir)
        for what in missing:
            logger.warning("labelled %s: left out of the snapshot", what)
    watermark = max(state.watermark, resolution.newest)
    save_state(
        PullState(
            project_id=project.id,
            watermark=watermark,
            labels=resolution.labels,
            annotation_ids={k: sorted(v) for k, v in resolution.annotation_ids.items()},
        ),
        state_file,
    )
    return PullResult(
        changes, resolution.rejected, new_rejected, resolution.labels, watermark, snapshot_dir, missing
    )

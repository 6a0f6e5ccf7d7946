"""Pure converters between Label Studio tasks/annotations and docclass label records.

No I/O and no SDK here: these take the JSON Label Studio exports (plain dicts) and return plain data, so the
rules (skips ignored, latest annotation per task wins, labels outside the config rejected, deletions found) are
tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from labeling.config import CHOICES_NAME, IMAGE_NAME

CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"

_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: object) -> str:
    """A task's ``data.sha256``, checked to be a document digest before it is used in a file name or pattern.

    The value comes from Label Studio, where anyone who can edit a task can change it; as a glob pattern a value
    like ``../../secret`` would reach files outside the originals folder.

    Raises:
        ValueError: anything but exactly 64 lowercase hex characters; the message shows what was found.
    """
    if isinstance(value, str) and _SHA256.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    if isinstance(value, str):
        what = f"{len(value)} character" + ("" if len(value) == 1 else "s")
    else:
        what = type(value).__name__
    raise ValueError(
        f"data.sha256 is not a document digest: expected 64 lowercase hex characters, found {shown} ({what})"
    )


@dataclass(frozen=True, order=True)
class Watermark:
    """Position of the last pull: annotation ``updated_at`` (ISO 8601, UTC) then annotation id."""

    updated_at: str = ""
    annotation_id: int = 0

    def passed_by(self, updated_at: str, annotation_id: int) -> bool:
        """True when an annotation with these values is newer than the watermark."""
        return (updated_at, annotation_id) > (self.updated_at, self.annotation_id)


@dataclass(frozen=True)
class LabelRecord:
    """The label a task currently has: its winning annotation."""

    task_id: int
    sha256: str
    name: str
    label: str
    annotation_id: int
    annotator: str
    created_at: str
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LabelChange:
    """A label created, changed (relabel or another annotation winning) or deleted since the watermark."""

    kind: str  # CREATED, UPDATED or DELETED
    task_id: int
    record: LabelRecord | None  # None for DELETED
    previous: LabelRecord | None  # None for CREATED


@dataclass(frozen=True)
class RejectedAnnotation:
    """An annotation that cannot give a label, with the reason (logged by the caller)."""

    task_id: int
    annotation_id: int
    reason: str
    updated_at: str = ""


@dataclass
class Resolution:
    """Labels per task plus what was rejected and the newest annotation seen."""

    labels: dict[int, LabelRecord] = field(default_factory=dict)
    rejected: list[RejectedAnnotation] = field(default_factory=list)
    annotation_ids: dict[int, set[int]] = field(default_factory=dict)  # task -> every annotation id
    newest: Watermark = field(default_factory=Watermark)


def normalise_time(value: Any) -> str:
    """An ISO 8601 UTC string with microseconds (``%Y-%m-%dT%H:%M:%S.%fZ``) that sorts chronologically."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def annotator_of(annotation: Mapping[str, Any], users: Mapping[int, str] | None = None) -> str:
    """E-mail of the annotator when known, else ``user:<id>``."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        return str(who.get("email") or f"user:{who.get('id')}")
    if who is None:
        return ""
    return (users or {}).get(int(who), f"user:{who}")


def annotation_choice(annotation: Mapping[str, Any], classes: Iterable[str]) -> str:
    """The class an annotation chose.

    Raises:
        ValueError: the annotation chose nothing, several classes, or a class not in ``classes``; the message
            says what was expected and what was found.
    """
    allowed = list(classes)
    chosen: list[str] = []
    for region in annotation.get("result") or []:
        if region.get("type") == "choices" and region.get("from_name") == CHOICES_NAME:
            chosen.extend(str(choice) for choice in (region.get("value") or {}).get("choices") or [])
    if not chosen:
        raise ValueError(f"no class chosen: expected one of {allowed}")
    if len(chosen) > 1:
        raise ValueError(f"{len(chosen)} classes chosen {chosen}: expected exactly one of {allowed}")
    if chosen[0] not in allowed:
        raise ValueError(f"label {chosen[0]!r} is not in the project config: expected one of {allowed}")
    return chosen[0]


def is_skip(annotation: Mapping[str, Any]) -> bool:
    """Skipped (cancelled) annotations carry no label."""
    return bool(annotation.get("was_cancelled"))


def resolve_tasks(
    tasks: Iterable[Mapping[str, Any]],
    classes: Iterable[str],
    users: Mapping[int, str] | None = None,
) -> Resolution:
    """Resolve each task's label: among its valid annotations, the latest (``updated_at``, then id) wins.

    Skipped/cancelled annotations and annotations without a result are ignored; annotations whose label is not
    in ``classes`` (or with several / no classes) are rejected, listed in ``rejected``, and do not count.
    """
    allowed = list(classes)
    resolution = Resolution()
    for task in tasks:
        task_id = int(task["id"])
        data = task.get("data") or {}
        candidates: list[tuple[str, int, Mapping[str, Any], str]] = []
        ids: set[int] = set()
        for annotation in task.get("annotations") or []:
            annotation_id = int(annotation["id"])
            ids.add(annotation_id)
            updated = normalise_time(annotation.get("updated_at") or annotation.get("created_at"))
            resolution.newest = max(resolution.newest, Watermark(updated, annotation_id))
            if is_skip(annotation) or not annotation.get("result"):
                continue
            try:
                label = annotation_choice(annotation, allowed)
            except ValueError as error:
                resolution.rejected.append(RejectedAnnotation(task_id, annotation_id, str(error), updated))
                continue
            candidates.append((updated, annotation_id, annotation, label))
        resolution.annotation_ids[task_id] = ids
        if not candidates:
            continue
        updated, annotation_id, annotation, label = max(candidates, key=lambda item: (item[0], item[1]))
        resolution.labels[task_id] = LabelRecord(
            task_id=task_id,
            sha256=str(data.get("sha256", "")),
            name=str(data.get("name", "")),
            label=label,
            annotation_id=annotation_id,
            annotator=annotator_of(annotation, users),
            created_at=normalise_time(annotation.get("created_at")),
            updated_at=updated,
        )
    return resolution


def tasks_to_records(
    tasks: Iterable[Mapping[str, Any]], classes: Iterable[str], users: Mapping[int, str] | None = None
) -> list[LabelRecord]:
    """Current label records of ``tasks``, sorted by task id (see :func:`resolve_tasks` for the rules)."""
    labels = resolve_tasks(tasks, classes, users).labels
    return [labels[task_id] for task_id in sorted(labels)]


def diff_labels(
    previous: Mapping[int, LabelRecord],
    previous_annotation_ids: Mapping[int, Iterable[int]],
    current: Resolution,
    watermark: Watermark,
) -> list[LabelChange]:
    """Labels created, changed or deleted since ``watermark``, sorted by task id.

    A task is looked at when one of its annotations is newer than the watermark, or when an annotation known
    at the last pull has gone (Label Studio deletes annotations outright); its label then changed if its
    winning annotation or label differs from ``previous``.
    """
    touched: set[int] = set()
    for task_id, ids in current.annotation_ids.items():
        known = set(previous_annotation_ids.get(task_id, ()))
        if known - ids:
            touched.add(task_id)
    for task_id, record in current.labels.items():
        if watermark.passed_by(record.updated_at, record.annotation_id) or task_id not in previous:
            touched.add(task_id)
    # Tasks deleted from the project take their annotations with them.
    touched.update(task_id for task_id in previous if task_id not in current.annotation_ids)
    changes: list[LabelChange] = []
    for task_id in sorted(touched):
        before, after = previous.get(task_id), current.labels.get(task_id)
        if before is None and after is not None:
            changes.append(LabelChange(CREATED, task_id, after, None))
        elif before is not None and after is None:
            changes.append(LabelChange(DELETED, task_id, None, before))
        elif (
            before is not None
            and after is not None
            and (before.label != after.label or before.annotation_id != after.annotation_id)
        ):
            changes.append(LabelChange(UPDATED, task_id, after, before))
    return changes


def prediction_result(label: str) -> list[dict[str, Any]]:
    """The ``result`` of a prediction (or annotation) choosing ``label``."""
    return [
        {
            "from_name": CHOICES_NAME,
            "to_name": IMAGE_NAME,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def labels_in_use(tasks: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Class -> ids of tasks with a non-skipped annotation choosing it (any label, valid or not)."""
    used: dict[str, list[int]] = {}
    for task in tasks:
        for annotation in task.get("annotations") or []:
            if is_skip(annotation):
                continue
            for region in annotation.get("result") or []:
                if region.get("type") == "choices":
                    for choice in (region.get("value") or {}).get("choices") or []:
                        tasks_of = used.setdefault(str(choice), [])
                        if int(task["id"]) not in tasks_of:
                            tasks_of.append(int(task["id"]))
    return used

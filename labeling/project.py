"""The docclass project in Label Studio: client, idempotent create/update from params classes, webhook."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labeling.config import SAMPLING, build_label_config, config_classes
from labeling.convert import labels_in_use

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
SECRET_HEADER = "X-Docclass-Secret"


class LabelingError(RuntimeError):
    """A Label Studio operation that cannot go ahead; the message says why and what to do."""


class ClassRemovalError(LabelingError):
    """Removing classes that annotations already use."""


@dataclass(frozen=True)
class ProjectState:
    """What `init` did."""

    project_id: int
    created: bool
    config_updated: bool
    classes: list[str]
    added: list[str]
    removed: list[str]
    webhook: str | None = None  # "created", "updated", "unchanged" or None


def make_client(url: str, token: SecretStr | str | None) -> LabelStudio:
    """An SDK client for the Label Studio server at ``url`` with the API ``token``.

    Raises:
        LabelingError: no token.
    """
    from label_studio_sdk import LabelStudio

    key = token if isinstance(token, str) or token is None else token.get_secret_value()
    if not key:
        raise LabelingError(
            "no Label Studio API token: expected DOCCLASS_LABEL_STUDIO_TOKEN in the environment or .env "
            "(`make labelstudio-up` writes it)"
        )
    return LabelStudio(base_url=url, api_key=key, timeout=60)


def find_project(client: LabelStudio, title: str) -> Any | None:
    """The project titled ``title`` (the oldest when several share it), or None."""
    listed: Iterable[Any] = client.projects.list(title=title, page_size=100)
    matches = [project for project in listed if project.title == title]
    return min(matches, key=lambda p: p.id) if matches else None


def require_project(client: LabelStudio, title: str) -> Any:
    """The project titled ``title``.

    Raises:
        LabelingError: it does not exist.
    """
    project = find_project(client, title)
    if project is None:
        raise LabelingError(f"no Label Studio project titled {title!r}: run `docclass labeling init` first")
    return client.projects.get(id=project.id)


def export_tasks(client: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    """Every task of the project with all its annotations (Label Studio's JSON export, read in full)."""
    chunks = client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True)
    return json.loads(b"".join(chunks))


def ensure_project(
    client: LabelStudio,
    title: str,
    classes: list[str],
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> ProjectState:
    """Create the project, or bring its config up to ``classes``; register the webhook when a URL is given.

    Raises:
        ClassRemovalError: a removed class is used by annotations.
        LabelConfigError: the classes cannot make a config.
    """
    label_config = build_label_config(classes)
    # the project settings docclass relies on (uncertainty sampling, skip allowed, no empty annotations)
    settings: dict[str, Any] = {
        "sampling": SAMPLING,
        "show_skip_button": True,
        "enable_empty_annotation": False,
    }
    existing = find_project(client, title)
    project: Any
    if existing is None:
        project = client.projects.create(title=title, label_config=label_config, **settings)
        state = ProjectState(int(project.id), True, False, list(classes), list(classes), [])
        logger.info("created project %r (id %s) with classes %s", title, project.id, classes)
    else:
        project = client.projects.get(id=existing.id)
        old = config_classes(project.label_config) if project.label_config else []
        added = [name for name in classes if name not in old]
        removed = [name for name in old if name not in classes]
        if removed:
            _refuse_used_removal(client, project.id, title, removed)
        changed = (project.label_config or "").strip() != label_config.strip()
        if changed:
            client.projects.update(id=project.id, label_config=label_config, **settings)
            logger.info("project %r: config updated (added %s, removed %s)", title, added, removed)
        elif project.sampling != SAMPLING or not project.show_skip_button:
            client.projects.update(id=project.id, **settings)
        state = ProjectState(int(project.id), False, changed, list(classes), added, removed)
    if webhook_url:
        outcome = ensure_webhook(client, state.project_id, webhook_url, webhook_secret)
        state = ProjectState(**{**state.__dict__, "webhook": outcome})
    return state


def _refuse_used_removal(client: LabelStudio, project_id: int, title: str, removed: Iterable[str]) -> None:
    used = labels_in_use(export_tasks(client, project_id))
    blocking = {name: used[name] for name in removed if name in used}
    if blocking:
        details = "; ".join(
            f"{name!r} by {len(ids)} task(s) (ids {', '.join(map(str, ids[:10]))})"
            for name, ids in blocking.items()
        )
        raise ClassRemovalError(
            f"cannot remove class(es) {sorted(blocking)} from project {title!r}: annotations use them: {details}. "
            "Relabel or delete those annotations in Label Studio first, or keep the class in params.yaml"
        )


def ensure_webhook(client: LabelStudio, project_id: int, url: str, secret: str | None) -> str:
    """Register (or update) the project's webhook for annotation events; returns what was done."""
    headers = {SECRET_HEADER: secret} if secret else {}
    wanted = {
        "send_payload": True,
        "send_for_all_actions": False,
        "is_active": True,
        "actions": WEBHOOK_ACTIONS,
    }
    for hook in client.webhooks.list(project=str(project_id)):
        if hook.url == url:
            if (
                (hook.headers or {}) == headers
                and sorted(hook.actions or []) == sorted(WEBHOOK_ACTIONS)
                and hook.is_active
            ):
                return "unchanged"
            client.webhooks.update(id=hook.id, url=url, headers=headers, **wanted)
            return "updated"
    client.webhooks.create(url=url, project=project_id, headers=headers, **wanted)
    logger.info("registered webhook %s for project %s", url, project_id)
    return "created"

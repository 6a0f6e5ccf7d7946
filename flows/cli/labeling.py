"""`docclass import PATH...` and `docclass labeling init|pull|preannotate|webhook`.

Results go to stdout (JSON lines for `pull`), progress and reports to stderr. The API token is never printed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.cli.console import err
from flows.cli.console import fail as _fail
from flows.cli.console import load_cli_params as _params

logger = logging.getLogger(__name__)


labeling_app = typer.Typer(
    help="Label Studio: create the project, pull labels, push pre-annotations, receive webhooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _render_dpi(params: dict[str, Any]) -> int:
    return int(params["labeling"]["render_dpi"])


@contextmanager
def _label_studio(url: str) -> Iterator[None]:
    """Turn connection and API errors into one clear line (never echoing credentials)."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    from labeling.config import LabelConfigError
    from labeling.project import LabelingError

    try:
        yield
    except (LabelingError, LabelConfigError) as error:
        _fail(str(error))
    except ApiError as error:
        detail = error.body if isinstance(error.body, str | dict | list) else ""
        if error.status_code == 401:
            _fail(f"Label Studio at {url} refused the API token (401): check DOCCLASS_LABEL_STUDIO_TOKEN")
        _fail(f"Label Studio at {url} answered {error.status_code}: {json.dumps(detail)[:500]}")
    except httpx.HTTPError as error:
        _fail(
            f"cannot reach Label Studio at {url} ({type(error).__name__}): is it running? `make labelstudio-up`"
        )


@contextmanager
def _progress(description: str) -> Iterator[tuple[Any, Any]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=None)
        yield (lambda total: bar.update(task, total=total)), (lambda *_: bar.advance(task))


def import_documents(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="PDF, image and zip files, or folders of them")],
) -> None:
    """Import documents into the Label Studio project: one task per document, page images, never twice."""
    from flows.settings import Settings
    from labeling.importer import import_documents as run_import
    from labeling.project import make_client, require_project
    from pipelines.ingest import Limits

    params = _params(ctx)
    settings = Settings()
    with _label_studio(settings.label_studio_url):
        client = make_client(settings.label_studio_url, settings.label_studio_token)
        project = require_project(client, settings.project_title)
        with _progress("importing") as (set_total, advance):
            report = run_import(
                client,
                project.id,
                paths,
                settings.local_files_root,
                settings.originals_dir,
                Limits.from_params(params["ingest"]),
                _render_dpi(params),
                on_document=advance,
                on_total=set_total,
            )
    for name in report.already_in_project:
        err.print(f"[dim]already in the project[/dim] {name}")
    for name, kept in report.duplicates.items():
        err.print(f"[dim]duplicate of {kept}[/dim] {name}")
    if report.rejected:
        err.rule(f"{len(report.rejected)} rejected")
        for rejected in report.rejected:
            err.print(f"[yellow]rejected[/yellow] {rejected.name}: {rejected.reason}")
    err.print(
        f"imported {len(report.imported)} document(s), {len(report.already_in_project)} already in the project, "
        f"{len(report.duplicates)} duplicate(s), {len(report.rejected)} rejected; "
        f"label them at {settings.label_studio_url}/projects/{project.id}/data"
    )


@labeling_app.command()
def init(ctx: typer.Context) -> None:
    """Create or update the project from params.yaml `classes`; register the webhook when configured."""
    from flows.settings import Settings
    from labeling.project import ensure_project, make_client

    params = _params(ctx)
    settings = Settings()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if settings.webhook_url and not secret:
        _fail("DOCCLASS_WEBHOOK_URL is set but DOCCLASS_WEBHOOK_SECRET is not: expected both")
    with _label_studio(settings.label_studio_url):
        state = ensure_project(
            make_client(settings.label_studio_url, settings.label_studio_token),
            settings.project_title,
            params["classes"],
            settings.webhook_url,
            secret,
        )
    if state.created:
        what = "created"
    elif state.config_updated:
        what = f"updated (added {state.added or 'none'}, removed {state.removed or 'none'})"
    else:
        what = "unchanged"
    err.print(f"project {settings.project_title!r} (id {state.project_id}) {what}; classes {state.classes}")
    if state.webhook:
        err.print(f"webhook {settings.webhook_url}: {state.webhook}")
    err.print(f"open {settings.label_studio_url}/projects/{state.project_id}/data")


@labeling_app.command()
def pull(
    out: Annotated[
        Path | None, typer.Option(help="snapshot directory (default: $DOCCLASS_DATA_DIR/snapshot)")
    ] = None,
    snapshot: Annotated[bool, typer.Option(help="write the snapshot (documents + labels.csv)")] = True,
) -> None:
    """Labels created, changed or deleted since the last pull (JSON lines on stdout); writes the snapshot."""
    from flows.settings import Settings
    from labeling.project import make_client
    from labeling.pull import pull_labels

    settings = Settings()
    target = (out or settings.snapshot_dir) if snapshot else None
    with _label_studio(settings.label_studio_url):
        try:
            result = pull_labels(
                make_client(settings.label_studio_url, settings.label_studio_token),
                settings.project_title,
                settings.state_file,
                settings.originals_dir,
                target,
            )
        except ValueError as error:
            _fail(str(error))
    for change in result.changes:
        record = change.record or change.previous
        line = {"change": change.kind, **(record.to_dict() if record else {"task_id": change.task_id})}
        if change.kind == "updated" and change.previous is not None:
            line["previous_label"] = change.previous.label
        typer.echo(json.dumps(line))
    counts = {kind: sum(c.kind == kind for c in result.changes) for kind in ("created", "updated", "deleted")}
    err.print(
        f"{len(result.labels)} labelled document(s); since the last pull: {counts['created']} created, "
        f"{counts['updated']} changed, {counts['deleted']} deleted; {len(result.new_rejected)} new rejected "
        f"annotation(s)" + (f"; snapshot {target}" if target else "")
    )


@labeling_app.command()
def preannotate(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option(help="model directory written by `docclass train`")],
    model_version: Annotated[
        str | None, typer.Option(help="version shown in Label Studio (default: model directory name)")
    ] = None,
) -> None:
    """Push the model's guess (class, score) for unlabelled tasks and make it the project's model version."""
    from flows.settings import Settings
    from labeling.preannotate import model_predictor
    from labeling.preannotate import preannotate as run_preannotate
    from labeling.project import make_client
    from pipelines.models import ModelLoadError

    params = _params(ctx)
    settings = Settings()
    try:
        predictor, _meta = model_predictor(model, params, settings.cache_dir)
    except ModelLoadError as error:
        _fail(str(error))
    version = model_version or model.resolve().name
    with (
        _label_studio(settings.label_studio_url),
        _progress(f"pre-annotating with {version}") as (_, advance),
    ):
        report = run_preannotate(
            make_client(settings.label_studio_url, settings.label_studio_token),
            settings.project_title,
            predictor,
            version,
            settings.originals_dir,
            on_task=advance,
        )
    err.print(
        f"{len(report.predicted)} task(s) pre-annotated with {version!r}, {len(report.already_predicted)} "
        f"already were, {len(report.skipped)} skipped; project model version set to {version!r}"
        if report.predicted or report.already_predicted
        else f"nothing to pre-annotate ({len(report.skipped)} skipped)"
    )


@labeling_app.command()
def webhook(
    host: Annotated[str | None, typer.Option(help="bind address (default: DOCCLASS_WEBHOOK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: DOCCLASS_WEBHOOK_PORT)")] = None,
) -> None:
    """Serve the webhook receiver: records annotation events to $DOCCLASS_DATA_DIR/labeling/webhook-events.jsonl."""
    from flows.settings import Settings
    from labeling.webhook import PATH, serve

    settings = Settings()
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        _fail("no webhook secret: expected DOCCLASS_WEBHOOK_SECRET in the environment or .env")
    bind, number = host or settings.webhook_host, port or settings.webhook_port
    err.print(f"webhook receiver on http://{bind}:{number}{PATH}, events -> {settings.events_file}")
    serve(settings.events_file, settings.webhook_secret.get_secret_value(), bind, number)


def register(app: typer.Typer) -> None:
    """Add `docclass import` and `docclass labeling ...` to the main app."""
    app.command("import")(import_documents)
    app.add_typer(
        labeling_app, name="labeling", help="Label Studio: project, label pull, pre-annotations, webhook."
    )

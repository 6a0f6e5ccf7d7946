"""`docclass versions / promote / rollback / reproduce / compare / round`: the registry from the command line.

Results go to stdout (tables, or JSON with ``--json``); progress goes to stderr. Register the commands on the main
app with :func:`register`.
"""

from __future__ import annotations

import getpass
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.console import err
from flows.cli.console import fail as _fail
from flows.cli.console import load_cli_params as _params

ROLLBACK = "rollback from "


def _open() -> tuple[Any, Any, Any]:
    """The registry, the snapshot store and the settings they were read from."""
    from flows.registry import bound_mlflow_retries
    from flows.settings import Settings
    from flows.versions import open_registry_and_store

    bound_mlflow_retries()
    settings = Settings()
    registry, store = open_registry_and_store(settings)
    return registry, store, settings


def _version(text: str) -> int:
    from flows.registry import parse_version

    try:
        return parse_version(text)
    except ValueError as error:
        _fail(str(error))


def _user(settings: Any) -> str:
    """DOCCLASS_USER (environment or .env), else the login name."""
    try:
        return settings.user or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def versions(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    history: Annotated[bool, typer.Option("--history", help="also list the promotion history")] = False,
) -> None:
    """Registered versions: labels, dataset revision, accuracy, macro-F1, forward accuracy, gate, promotion."""
    from flows.registry import RegistryError, format_version

    registry, _, _ = _open()
    try:
        rows = [v.row() for v in registry.versions()]
        champion = registry.champion_number()
        recorded = registry.history()
    except RegistryError as error:
        _fail(str(error))
    events = [e.row() for e in recorded] if history else []
    if recorded and recorded[-1].to_version != champion:
        last = recorded[-1]
        err.print(
            f"[yellow]warning:[/yellow] the champion alias is at {format_version(champion)} but the last recorded "
            f"promotion, #{last.seq}, made {format_version(last.to_version)} champion: it is being made, or its "
            "promoter stopped before moving the alias (the next promote, rollback or loop run moves it)"
        )
    if as_json:
        payload: dict[str, Any] = {"champion": format_version(champion), "versions": rows}
        if history:
            payload["history"] = events
        typer.echo(json.dumps(payload, indent=2))
        return
    out = Console(soft_wrap=True)
    table = Table(title=f"{registry.model_name}: champion {format_version(champion)} (1.0 = no model)")
    for column in (
        "version",
        "labels",
        "dataset",
        "candidate",
        "accuracy",
        "macro-F1",
        "forward acc.",
        "gate",
        "promoted at",
    ):
        table.add_column(column)
    for row in rows:
        gate = (
            "[green]pass[/green]"
            if row["gate"] == "pass"
            else f"[red]{row['gate']}[/red]: " + "; ".join(row["reasons"])
        )
        forward = _fmt(row["forward_accuracy"]) + (
            f" ({row['forward_docs']} new)" if row["forward_accuracy"] is not None else ""
        )
        table.add_row(
            row["version"] + (" *" if row["champion"] else ""),
            str(row["labels"]),
            (row["dataset_revision"] or "-")[:12],
            row["candidate"] or "-",
            _fmt(row["accuracy"]),
            _fmt(row["macro_f1"]),
            forward,
            gate,
            row["promoted_at"] or "",
        )
    out.print(table)
    if history:
        table = Table(title="promotion history")
        for column in ("#", "when", "from", "to", "by", "reason"):
            table.add_column(column)
        for event in events:
            by = f"{event['by']} (automatic)" if event["automatic"] else event["by"]
            table.add_row(str(event["seq"]), event["when"], event["from"], event["to"], by, event["reason"])
        out.print(table)


def promote(
    version: Annotated[str, typer.Argument(help="version to make champion, e.g. 1.3")],
    reason: Annotated[str, typer.Option("--reason", help="why (recorded in the promotion history)")],
    force: Annotated[
        bool, typer.Option("--force", help="promote even though the version failed its gates")
    ] = False,
    expect_champion: Annotated[
        str | None,
        typer.Option(
            "--expect-champion",
            help="promote only if this version is still the champion, e.g. 1.2 (1.0: no champion); "
            "default: the champion when the command starts",
        ),
    ] = None,
) -> None:
    """Make a version the champion by hand (recorded with your user name and the reason).

    The move is a compare-and-set: when another promotion is made at the same time, exactly one wins and the
    others change nothing and exit with code 1, naming the winner.
    """
    from flows.registry import PromotionConflict, RegistryError

    number = _version(version)
    if number == 0:
        _fail("1.0 means no model: use `docclass rollback` to go back, or promote a version 1.N with N >= 1")
    expected: int | None = None
    if expect_champion is not None:
        expected = _version(expect_champion) or None
    registry, _, settings = _open()
    try:
        current = registry.settled_champion()
        if expect_champion is None:
            expected = current
        target = registry.version(number)
        if current == number:
            _fail(f"version {target.name} is already the champion: nothing to do")
        if not target.passed and not force:
            _fail(
                f"version {target.name} failed its gates ({'; '.join(target.reasons)}): pass --force to promote it anyway"
            )
        why = reason if target.passed else f"{reason} (forced past failed gates)"
        event = registry.move_champion(
            number, reason=why, by=_user(settings), automatic=False, expected=expected
        )
    except PromotionConflict as error:
        _fail(str(error), code=1)
    except RegistryError as error:
        _fail(str(error))
    typer.echo(json.dumps(event.row()))


def rollback(
    reason: Annotated[str, typer.Option("--reason", help="why (recorded in the promotion history)")],
) -> None:
    """Give the champion back to the version it replaced (1.0 = no model when it was the first).

    A compare-and-set like `promote`: when the champion changes meanwhile, nothing is rolled back (exit code 1).
    """
    from flows.registry import PromotionConflict, RegistryError, format_version

    registry, _, settings = _open()
    try:
        current = registry.settled_champion()
        if current is None:
            _fail("there is no champion to roll back (champion is 1.0)")
        # The version the current champion replaced when it was promoted (rollbacks themselves don't count, so
        # two rollbacks in a row go two steps back instead of flipping between two versions).
        previous = next(
            (
                e.from_version
                for e in reversed(registry.history())
                if e.to_version == current and not e.reason.startswith(ROLLBACK)
            ),
            None,
        )
        event = registry.move_champion(
            previous,
            reason=f"{ROLLBACK}{format_version(current)}: {reason}",
            by=_user(settings),
            automatic=False,
            expected=current,
        )
    except PromotionConflict as error:
        _fail(str(error), code=1)
    except RegistryError as error:
        _fail(str(error))
    typer.echo(json.dumps(event.row()))


def reproduce(
    version: Annotated[str, typer.Argument(help="version to reproduce, e.g. 1.2")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Restore a version's dataset from the DVC remote, retrain with its recorded params, compare the metrics."""
    from flows.registry import RegistryError
    from flows.versions import reproduce as reproduce_version

    number = _version(version)
    registry, store, settings = _open()
    try:
        result = reproduce_version(number, registry, store, cache_dir=settings.cache_dir, log=err.print)
    # RuntimeError covers ModelIntegrityError (tampered metadata) and a snapshot missing from the DVC remote
    except (RegistryError, RuntimeError) as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(result.row(), indent=2))
    else:
        table = Table(title=f"reproduce {result.row()['version']} (dataset {result.dataset_md5[:12]})")
        for column in ("metric", "recorded", "reproduced", "match"):
            table.add_column(column)
        for key, value in result.row()["recorded"].items():
            again = result.reproduced.get(key)
            table.add_row(key, str(value), str(again), "yes" if value == again else "[red]NO[/red]")
        Console(soft_wrap=True).print(table)
    if result.recorded_commit != result.current_commit:
        err.print(
            f"[yellow]note:[/yellow] recorded with code {result.recorded_commit}, now {result.current_commit}"
        )
    if not result.identical:
        _fail(f"metrics differ from the recorded ones: {sorted(result.differences)}", code=1)
    err.print("[green]identical[/green]: every cross-validated metric matches the recorded one")


def compare(
    a: Annotated[str, typer.Argument(help="first version, e.g. 1.1")],
    b: Annotated[str, typer.Argument(help="second version, e.g. 1.3")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Metric deltas (b - a) and the confusion-matrix difference of two versions."""
    from flows.registry import RegistryError
    from flows.versions import compare as compare_versions
    from pipelines.models import ModelLoadError

    registry, _, _ = _open()
    try:
        result = compare_versions(registry, _version(a), _version(b))
    except (RegistryError, ModelLoadError) as error:
        _fail(str(error))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    out = Console(soft_wrap=True)
    table = Table(
        title=f"{result['a']} -> {result['b']} (labels {result['labels']['a']} -> {result['labels']['b']})"
    )
    for column in ("metric", result["a"], result["b"], "delta"):
        table.add_column(column)
    for key, row in result["metrics"].items():
        table.add_row(
            key, str(row["a"]), str(row["b"]), "-" if row["delta"] is None else f"{row['delta']:+.3f}"
        )
    for label, row in result["per_class"].items():
        r = row["recall"]
        table.add_row(
            f"recall {label}", str(r["a"]), str(r["b"]), "-" if r["delta"] is None else f"{r['delta']:+.3f}"
        )
    out.print(table)
    cm = Table(title=f"confusion difference {result['b']} - {result['a']} (rows actual, columns predicted)")
    cm.add_column("")
    for label in result["classes"]:
        cm.add_column(label)
    for label, row in zip(result["classes"], result["confusion"]["difference"], strict=True):
        cm.add_row(label, *(f"{v:+d}" if v else "0" for v in row))
    out.print(cm)


def round_command(
    ctx: typer.Context,
    dataset_dir: Annotated[Path, typer.Argument(help="documents + labels.csv, or a folder per class")],
    candidate: Annotated[
        list[str] | None, typer.Option("--candidate", "-c", help="candidates to try (default: params.yaml)")
    ] = None,
) -> None:
    """Run one training round by hand: snapshot, train, register, gate, promote. Prints the outcome as JSON."""
    from flows.registry import RegistryError
    from flows.versions import run_round
    from pipelines.dataset import DatasetError

    params = _params(ctx)
    registry, store, settings = _open()
    try:
        outcome = run_round(
            dataset_dir,
            params,
            registry,
            store,
            cache_dir=settings.cache_dir,
            candidates=candidate,
            log=err.print,
        )
    except (RegistryError, DatasetError, FileNotFoundError, ValueError) as error:
        _fail(str(error))
    typer.echo(json.dumps(outcome.row()))


def register(app: typer.Typer) -> None:
    """Add the version commands to the main `docclass` app."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    app.command("versions")(versions)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("reproduce")(reproduce)
    app.command("compare")(compare)
    app.command("round")(round_command)

"""What every `docclass` command shares: the stderr console, the error exit, and reading params.yaml at entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

# Results go to stdout; progress, tables and errors to stderr. soft_wrap keeps messages whole in logs.
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or configuration)."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def params_path(ctx: typer.Context) -> Path | None:
    """The params.yaml of this invocation: `--params`, else DOCCLASS_PARAMS (environment or .env), else None
    (./params.yaml, see :func:`pipelines.params.default_params_path`)."""
    from flows.settings import Settings

    root = ctx.find_root().obj
    given = root.get("params_path") if isinstance(root, dict) else None
    return Path(given) if given is not None else Settings().params


def load_cli_params(ctx: typer.Context) -> dict[str, Any]:
    """params.yaml of this invocation (see :func:`params_path`), loaded and checked; a clear exit when broken."""
    from pipelines.params import ParamsError, load_params

    try:
        return load_params(params_path(ctx))
    except ParamsError as error:
        fail(str(error))

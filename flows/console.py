"""What every `docclass` command shares: the stderr console, the error exit, and reading params.yaml at entry."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console

# Results go to stdout; progress, tables and errors to stderr. soft_wrap keeps messages whole in logs.
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or configuration)."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def load_cli_params(ctx: typer.Context) -> dict[str, Any]:
    """params.yaml from `--params`, else $DOCCLASS_PARAMS / ./params.yaml; a clear exit when it is broken."""
    from flows.settings import Settings
    from pipelines.params import ParamsError, load_params

    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    path = obj.get("params_path") or Settings().params
    try:
        return load_params(path)
    except ParamsError as error:
        fail(str(error))

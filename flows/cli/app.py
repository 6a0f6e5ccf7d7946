"""The `docclass` command line: one typer app, one module per command group.

- :mod:`flows.cli.model`: extract, train, evaluate, predict, generate-sample, demo, bench;
- :mod:`flows.cli.labeling`: import, labeling init|pull|preannotate|webhook;
- :mod:`flows.cli.versions`: versions, promote, rollback, reproduce, compare, round;
- :mod:`flows.cli.split`: split, bench-split;
- :mod:`flows.cli.loop`: flows run|serve|trigger-webhook|demo|bench-loop;
- :mod:`flows.cli.batch`: classify (batch classification on Dask or a local process pool).

Every command reads its configuration at entry through :mod:`flows.cli.console` and passes values down;
stdout carries results (JSON lines), progress, tables and errors go to stderr.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.logging import RichHandler

from flows.cli import batch, labeling, loop, model, split, versions
from flows.cli.console import err

app = typer.Typer(
    name="docclass",
    help="Custom document classification: ingest PDFs, images and zips, train, evaluate and predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    params: Annotated[
        Path | None, typer.Option(help="params.yaml to use (default: $DOCCLASS_PARAMS or ./params.yaml)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
    )
    for noisy in ("httpx", "urllib3", "filelock", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx.obj = {"params_path": params}


model.register(app)
labeling.register(app)
versions.register(app)
split.register(app)
loop.register(app)
batch.register(app)

"""`docclass classify SOURCE... --out results.jsonl`: batch classification as a Prefect flow (flows/batch.py).

The rows go to the output file; stdout gets a one-line JSON summary, stderr the progress bar and the flow's log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.cli.console import err, params_path
from flows.cli.console import fail as _fail
from pipelines.batch import SHARD_BOUNDS, SHARD_SIZE


def classify(
    ctx: typer.Context,
    sources: Annotated[
        list[str], typer.Argument(help="folders, files (PDF, image, zip) or s3://bucket/prefix locations")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="where to write one row per document: .jsonl, .csv or .parquet")
    ],
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="version 1.N to classify with (default: the champion, pinned at the start)"
        ),
    ] = None,
    shard_size: Annotated[
        int,
        typer.Option(
            help=f"documents per Prefect task at most, {SHARD_BOUNDS[0]}-{SHARD_BOUNDS[1]} (a shard is what is "
            f"saved and redone)"
        ),
    ] = SHARD_SIZE,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="local worker processes when DOCCLASS_DASK_ADDRESS is unset (default: one per core)"
        ),
    ] = None,
) -> None:
    """Classify every document of folders, zips or S3 prefixes on Dask or a local process pool, one row each."""
    from flows.batch import BatchError, LocalProgress, batch_flow
    from flows.settings import Settings
    from flows.sources import SourceError, check_sources
    from pipelines.batch import BatchIncompleteError, check_shard_size, output_format
    from pipelines.params import ParamsError
    from serving.registry import RegistryError

    settings = Settings()
    try:
        output_format(out)
        check_shard_size(shard_size)
        check_sources(sources)
        run = batch_flow(settings, workers)
    except (SourceError, ValueError) as error:
        _fail(str(error))
    path = params_path(ctx)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        progress = bar.add_task("classifying (listing documents)", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(progress, completed=done, total=total, description="classifying")

        try:
            summary = run(
                sources=list(sources),
                out=str(out),
                version=version,
                shard_size=shard_size,
                params_path=str(path) if path is not None else None,
                on_progress=LocalProgress(advance),
            )
        except (
            BatchError,
            BatchIncompleteError,
            RegistryError,
            SourceError,
            ParamsError,
            ValueError,
        ) as error:
            _fail(str(error))
        except OSError as error:  # the scheduler does not answer, or the output cannot be written
            hint = ""
            if settings.dask_address and settings.dask_address in str(error):
                hint = f": expected a Dask scheduler at DOCCLASS_DASK_ADDRESS={settings.dask_address} (unset it to run locally)"
            _fail(f"{error}{hint}")
    if summary["errors"]:
        err.print(
            f"[yellow]{summary['errors']} document(s) could not be classified[/yellow] (see their `error`)"
        )
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    """Add `classify` to the `docclass` app."""
    app.command()(classify)

"""`docclass split` and `docclass bench-split`: cut a multi-document PDF into its documents, and measure it.

Register the commands on the main app with :func:`register`. Segments go to stdout as JSON; progress and notes
go to stderr.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.console import err
from flows.cli.console import fail as _fail
from flows.cli.console import load_cli_params as _params

if TYPE_CHECKING:
    from pipelines.ingest import Limits, RawDocument

log = logging.getLogger(__name__)


def _safe_label(label: str) -> str:
    """A class name usable in a file name (letters, digits, dot, dash, underscore)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in label).strip("._")
    return cleaned or "document"


def output_name(number: int, label: str, first_page: int, last_page: int) -> str:
    """``01_w9_p1-2.pdf``: position, class and 1-based page range of one detected document."""
    pages = f"p{first_page}" if first_page == last_page else f"p{first_page}-{last_page}"
    return f"{number:02d}_{_safe_label(label)}_{pages}.pdf"


def as_pdf(raw: RawDocument, limits: Limits) -> bytes:
    """The document as PDF bytes: a PDF unchanged, an image (every frame of a TIFF) as image pages.

    Raises:
        IngestError: the image cannot be decoded (see :func:`pipelines.render.image_to_pdf`).
    """
    from pipelines.ingest import PDF
    from pipelines.render import image_to_pdf

    return raw.data if raw.mime == PDF else image_to_pdf(raw, limits)


def write_segments(pdf_bytes: bytes, segments: list[Any], out_dir: Path) -> list[Path]:
    """Write one PDF per segment into ``out_dir`` (created), cut with pymupdf; returns the paths in order."""
    import pymupdf

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with pymupdf.open(stream=pdf_bytes, filetype="pdf") as source:
        for number, seg in enumerate(segments, start=1):
            part = pymupdf.open()
            part.insert_pdf(source, from_page=seg.first_page - 1, to_page=seg.last_page - 1)
            path = out_dir / output_name(number, seg.label, seg.first_page, seg.last_page)
            part.save(path, garbage=3, deflate=True)
            part.close()
            written.append(path)
    return written


def split(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a PDF (or image) holding one or more documents")],
    out: Annotated[Path, typer.Option("--out", help="directory to write one PDF per detected document to")],
    model: Annotated[
        Path,
        typer.Option(
            "--model", help="model directory written by `docclass train` (default: the `dvc repro` model)"
        ),
    ] = Path(".data/pipeline/model"),
) -> None:
    """Classify every page and split FILE into its documents: one PDF each, named by class and page range."""
    from flows.settings import Settings
    from pipelines.classify import Upload, extract_inputs
    from pipelines.extract import ExtractConfig, ExtractionCache
    from pipelines.ingest import (
        ZIP,
        IngestError,
        Limits,
        RawDocument,
        Rejected,
        check_bytes,
        read_input,
        sha256_of,
    )
    from pipelines.models import ModelLoadError
    from pipelines.models.persistence import load_verified
    from pipelines.split import SPLITTER_FILE, fallback_splitter, load_splitter, split_document

    params = _params(ctx)
    try:
        classifier, meta, verified = load_verified(model)
        splitter = load_splitter(model, verified[SPLITTER_FILE]) if SPLITTER_FILE in verified else None
    except ModelLoadError as error:
        _fail(str(error))
    if splitter is None:
        splitter = fallback_splitter(params.get("split"))
        log.warning(
            "%s has no splitter (%s): using cue weights set by hand instead of learned boundary weights; "
            "retrain the model to fit one",
            model,
            "splitter.joblib",
        )
    limits = Limits.from_params(params["ingest"])
    try:
        config = ExtractConfig.from_params(params["extract"])
        data = read_input(file, limits)
        mime = check_bytes(data, str(file), limits)
    except (IngestError, ValueError) as error:
        _fail(str(error))
    if mime == ZIP:
        _fail(f"{file} is a zip archive: expected one PDF or image (split its members one by one)")
    [[document]] = extract_inputs(
        [Upload(str(file), data)], config, limits, cache=ExtractionCache(Settings().cache_dir)
    )
    if isinstance(document, Rejected):
        _fail(document.reason)
    segments = split_document(splitter, document, classifier)
    raw = RawDocument(name=str(file), data=data, mime=mime, sha256=sha256_of(data))
    try:
        pdf = as_pdf(raw, limits)
    except IngestError as error:
        _fail(str(error))
    paths = write_segments(pdf, segments, out)
    result = {
        "file": str(file),
        "n_pages": document.n_pages,
        "model": meta.get("candidate"),
        "splitter": "learned" if getattr(splitter, "learned_", False) else "cues",
        "segments": [{**seg.to_dict(), "file": str(path)} for seg, path in zip(segments, paths, strict=True)],
    }
    typer.echo(json.dumps(result, indent=2))
    err.print(f"{len(segments)} document(s) written to {out}")


def bench_split(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Option(help="folder-per-class corpus")] = Path("../shared/corpus"),
    out: Annotated[Path, typer.Option(help="results directory")] = Path("bench"),
    draws: Annotated[int, typer.Option(help="seeded draws (folds and bundle order change per draw)")] = 3,
    folds: Annotated[
        int, typer.Option(help="stratified folds per draw: train on the others, bundle this one")
    ] = 3,
    candidate: Annotated[str, typer.Option(help="classifier candidate trained per fold")] = "fusion",
) -> None:
    """Split benchmark: bundles of held-out corpus documents; page accuracy, boundaries, documents recovered."""
    from flows.settings import Settings
    from pipelines.bench import split as bench_module
    from pipelines.extract import ExtractionCache

    params = _params(ctx)
    if not corpus.is_dir():
        err.print(f"[yellow]skipped:[/yellow] corpus {corpus} not found (set CORPUS=dir); nothing measured")
        raise typer.Exit(0)
    results = bench_module.run(
        corpus,
        out,
        params,
        cache=ExtractionCache(Settings().cache_dir),
        draws=draws,
        folds=folds,
        candidate=candidate,
        log=err.print,
    )
    typer.echo(json.dumps(results["summary"], indent=2))


def register(app: typer.Typer) -> None:
    """Add `split` and `bench-split` to the main app."""
    app.command("split")(split)
    app.command("bench-split")(bench_split)

"""`docclass train|evaluate|predict|extract|generate-sample|demo|bench`: the model commands.

Every command reads params.yaml at entry and passes values down; stdout carries results (JSON lines for
`predict`), progress and tables go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.cli.console import err
from flows.cli.console import fail as _fail
from flows.cli.console import load_cli_params as _params

if TYPE_CHECKING:
    from pipelines.predict import ReviewRule

State = dict[str, Any]


@contextmanager
def _progress(description: str, total: int) -> Iterator[Any]:
    """A progress bar on stderr; yields a function that advances it by one."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal and total < 2) as bar:
        task = bar.add_task(description, total=total)
        yield lambda *_: bar.advance(task)


def _extraction(params: dict[str, Any]) -> tuple[Any, Any, Any]:
    from flows.settings import Settings
    from pipelines.extract import ExtractConfig, ExtractionCache
    from pipelines.ingest import Limits

    try:
        config = ExtractConfig.from_params(params["extract"])
    except ValueError as error:
        _fail(str(error))
    return config, Limits.from_params(params["ingest"]), ExtractionCache(Settings().cache_dir)


def _load_dataset(dataset_dir: Path, params: dict[str, Any]) -> Any:
    """Extract a labelled dataset (cached), reporting rejected documents and label conflicts."""
    from pipelines.dataset import EXTRACTED_MARKER, DatasetError, list_dataset, load_labeled_documents

    config, limits, cache = _extraction(params)
    try:
        total = 0 if (dataset_dir / EXTRACTED_MARKER).exists() else len(list_dataset(dataset_dir))
        with _progress(f"extracting {dataset_dir}", total) as advance:
            dataset = load_labeled_documents(dataset_dir, config, limits, cache=cache, on_done=advance)
    except DatasetError as error:
        _fail(str(error))
    for rejected in dataset.rejected:
        err.print(f"[yellow]rejected[/yellow] {rejected.name}: {rejected.reason}")
    for conflict in dataset.conflicts:
        err.print(f"[yellow]label conflict[/yellow] {conflict}")
    if dataset.duplicates:
        err.print(f"{len(dataset.duplicates)} duplicate documents collapsed (same sha256)")
    return dataset


def extract(
    ctx: typer.Context,
    dataset_dir: Annotated[Path, typer.Argument(help="folder per class, or documents + labels.csv")],
    out: Annotated[Path, typer.Option("--out", help="where to write the extracted dataset")],
) -> None:
    """Ingest and extract (text layer / OCR, page images) a labelled dataset for train and evaluate."""
    from pipelines.dataset import save_extracted
    from pipelines.extract import ExtractConfig

    params = _params(ctx)
    dataset = _load_dataset(dataset_dir, params)
    save_extracted(dataset, out, ExtractConfig.from_params(params["extract"]))
    pages = sum(doc.n_pages for doc in dataset.documents)
    err.print(
        f"extracted {len(dataset.documents)} documents ({pages} pages, classes {dataset.classes}), "
        f"rejected {len(dataset.rejected)} -> {out}"
    )


def train(
    ctx: typer.Context,
    dataset_dir: Annotated[
        Path, typer.Argument(help="folder per class, documents + labels.csv, or extracted")
    ],
    model_out: Annotated[Path, typer.Option("--model-out", help="directory to write the model to")],
    candidate: Annotated[
        list[str] | None, typer.Option("--candidate", "-c", help="candidates to try (default: params.yaml)")
    ] = None,
    report_out: Annotated[
        Path | None, typer.Option(help="also write the candidates' cross-validation summary (JSON) here")
    ] = None,
) -> None:
    """Cross-validate the candidates, pick the best and fit it on every document."""
    from flows.settings import Settings
    from pipelines.models import save_model
    from pipelines.models.semantic import use_embedding_store
    from pipelines.train import train_best

    params = _params(ctx)
    review = _review_rule(params)
    dataset = _load_dataset(dataset_dir, params)
    _require_two_classes(dataset)
    use_embedding_store(Settings().cache_dir / "embeddings")
    names = candidate or params["train"]["candidates"]
    with _progress("cross-validating candidates", len(names)) as advance:
        try:
            result = train_best(
                dataset.documents,
                dataset.labels,
                params["train"],
                seed=int(params["seed"]),
                ece_bins=int(params["evaluate"]["ece_bins"]),
                candidates=names,
                on_result=advance,
            )
        except ValueError as error:
            _fail(str(error))
    summary = [r.summary() for r in result.results]
    _print_candidates(summary, result.candidate)
    meta = {
        "candidate": result.candidate,
        "classes": sorted(set(dataset.labels)),
        "n_documents": len(dataset.documents),
        "label_counts": {label: dataset.labels.count(label) for label in sorted(set(dataset.labels))},
        "seed": int(params["seed"]),
        "train_params": params["train"],
        "extract_params": params["extract"],
        # what the review rule of params predict: gives this model (its threshold is learned from its
        # out-of-fold answers; the service and `docclass predict` read it off the model again with theirs)
        "review_threshold": review.threshold(result.model),
        "review_rule": review.describe(),
        "recipe": getattr(result.model, "recipe", result.candidate),
        "cross_validation": result.best.metrics,
        "candidates": summary,
    }
    save_model(result.model, model_out, meta)
    from pipelines.models.persistence import seal_model_dir
    from pipelines.split import fit_splitter, save_splitter

    with _progress("fitting the page splitter", 1) as advance:
        save_splitter(
            fit_splitter(dataset.documents, dataset.labels, params["split"], int(params["seed"])), model_out
        )
        seal_model_dir(model_out)  # digests.json now covers the splitter too: loading checks every file
        advance()
    if report_out is not None:
        report_out.parent.mkdir(parents=True, exist_ok=True)
        report_out.write_text(json.dumps({"selected": result.candidate, "candidates": summary}, indent=2))
    err.print(f"model [bold]{result.candidate}[/bold] written to {model_out}")


def _review_rule(params: dict[str, Any]) -> ReviewRule:
    """The review rule of params ``predict:`` (each model's learned threshold), or exit with the reason."""
    from pipelines.predict import ReviewRule

    try:
        return ReviewRule.from_params(params["predict"])
    except ValueError as error:
        _fail(str(error))


def _require_two_classes(dataset: Any) -> None:
    counts = {label: dataset.labels.count(label) for label in set(dataset.labels)}
    if len(counts) < 2 or min(counts.values()) < 2:
        _fail(f"training needs at least 2 classes with 2 or more documents each: found {counts or 'none'}")


def _print_candidates(summary: list[dict[str, Any]], selected: str) -> None:
    table = Table(title="candidates (cross-validated)")
    for column in ("candidate", "accuracy", "macro-F1", "ECE", "seconds", "note"):
        table.add_column(column)
    for row in summary:
        note = (
            "selected"
            if row["candidate"] == selected
            else ("skipped (reason logged above)" if row.get("reason") else "")
        )
        table.add_row(
            row["candidate"],
            f"{row['accuracy']:.3f}" if "accuracy" in row else "-",
            f"{row['macro_f1']:.3f}" if "macro_f1" in row else "-",
            f"{row['ece']:.3f}" if "ece" in row else "-",
            f"{row['seconds']:.1f}",
            note,
        )
    err.print(table)


def evaluate(
    ctx: typer.Context,
    dataset_dir: Annotated[
        Path, typer.Argument(help="folder per class, documents + labels.csv, or extracted")
    ],
    candidate: Annotated[
        str | None, typer.Option("--candidate", "-c", help="candidate to evaluate (default: fusion)")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="evaluate the candidate recorded in this model directory")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="write metrics.json, confusion.json/png and predictions.json here")
    ] = None,
) -> None:
    """Stratified k-fold cross-validation report: accuracy, macro-F1, per class, confusion, calibration."""
    from pipelines.evaluate import cross_validate, write_report
    from pipelines.models import CandidateUnavailable, ModelLoadError, load_model, make_candidate

    params = _params(ctx)
    name = candidate or "fusion"
    if model is not None:
        try:
            _, meta = load_model(model)
        except ModelLoadError as error:
            _fail(str(error))
        name = meta["candidate"]
    dataset = _load_dataset(dataset_dir, params)
    _require_two_classes(dataset)
    err.print(f"cross-validating [bold]{name}[/bold] on {len(dataset.documents)} documents")
    try:
        report = cross_validate(
            lambda: make_candidate(name, params["train"], int(params["seed"])),
            dataset.documents,
            dataset.labels,
            seed=int(params["seed"]),
            max_folds=int(params["train"]["max_folds"]),
            ece_bins=int(params["evaluate"]["ece_bins"]),
        )
    except (CandidateUnavailable, ValueError) as error:
        _fail(getattr(error, "reason", str(error)))
    _print_report(report.metrics)
    if out is not None:
        write_report(report, out)
        err.print(f"report written to {out}")
    typer.echo(
        json.dumps({"candidate": name, **{k: v for k, v in report.metrics.items() if k != "per_class"}})
    )


def _print_report(metrics: dict[str, Any]) -> None:
    err.print(
        f"accuracy [bold]{metrics['accuracy']:.3f}[/bold]  macro-F1 [bold]{metrics['macro_f1']:.3f}[/bold]  "
        f"ECE {metrics['ece']:.3f}  folds {metrics.get('folds', '?')}"
    )
    table = Table(title="per class")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column)
    for label, row in metrics["per_class"].items():
        table.add_row(
            label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
        )
    err.print(table)


def predict(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="PDF, image or zip files (a zip gives one line per member)")
    ],
    model: Annotated[Path, typer.Option("--model", help="model directory written by `docclass train`")],
) -> None:
    """Classify files: one JSON object per line on stdout; unreadable files give a line with `error`."""
    from pipelines.classify import Classified, classify_inputs
    from pipelines.models import ModelLoadError, load_model

    params = _params(ctx)
    try:
        classifier, meta = load_model(model)
    except ModelLoadError as error:
        _fail(str(error))
    review = _review_rule(params)
    config, limits, cache = _extraction(params)
    failures = 0
    with _progress("classifying", len(files)) as advance:
        # Every file gives at least one line: one per document it holds, or one saying why it gave none.
        for outcomes in classify_inputs(classifier, files, config, limits, review, cache=cache):
            for outcome in outcomes:
                if isinstance(outcome, Classified):
                    line = {"file": outcome.name, **outcome.prediction, "model": meta.get("candidate")}
                else:
                    failures += 1
                    line = {"file": outcome.name, "error": outcome.reason, "error_type": outcome.kind}
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
            advance()
    if failures:
        err.print(f"[yellow]{failures} document(s) could not be classified[/yellow] (see their `error`)")


def generate_sample(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="directory to write the sample corpus to")],
    per_class: Annotated[
        int | None, typer.Option(help="documents per class (default: params sample.per_class)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default: params seed)")] = None,
    layout: Annotated[str, typer.Option(help="'folders' (one per class) or 'labels_csv'")] = "folders",
) -> None:
    """Write a generated corpus of realistic sample documents (born-digital and scanned variants)."""
    from pipelines.samples import generate_corpus

    params = _params(ctx)
    sample = params["sample"]
    manifest = generate_corpus(
        out,
        per_class=per_class if per_class is not None else int(sample["per_class"]),
        seed=seed if seed is not None else int(params["seed"]),
        scanned_share=float(sample["scanned_share"]),
        classes=params["classes"],
        layout=layout,
    )
    err.print(f"wrote {len(manifest)} documents to {out}")


def demo(ctx: typer.Context) -> None:
    """Generate a sample corpus, train and evaluate, then classify held-back documents."""
    from flows.settings import Settings
    from pipelines.samples import generate_corpus

    params = _params(ctx)
    root = Settings().data_dir / "demo"
    seed = int(params["seed"])
    started = time.perf_counter()
    train_dir, holdout_dir, model_dir = root / "train", root / "holdout", root / "model"
    err.rule("1. sample corpus")
    generate_corpus(
        train_dir,
        per_class=int(params["sample"]["per_class"]),
        seed=seed,
        scanned_share=float(params["sample"]["scanned_share"]),
        classes=params["classes"],
    )
    holdout = generate_corpus(
        holdout_dir,
        per_class=2,
        seed=seed + 1000,
        scanned_share=0.5,
        classes=params["classes"],
    )
    err.print(f"training corpus in {train_dir}, {len(holdout)} held-back documents in {holdout_dir}")
    err.rule("2. train (cross-validated candidates)")
    ctx.invoke(train, ctx=ctx, dataset_dir=train_dir, model_out=model_dir, candidate=None, report_out=None)
    err.rule("3. classify held-back documents")
    from pipelines.classify import classify
    from pipelines.dataset import load_labeled_documents
    from pipelines.models import load_model

    classifier, meta = load_model(model_dir)
    config, limits, cache = _extraction(params)
    held = load_labeled_documents(holdout_dir, config, limits, cache=cache)
    predictions = [c.prediction for c in classify(classifier, held.documents, _review_rule(params))]
    table = Table(title=f"held-back documents, model {meta['candidate']}")
    for column in ("document", "true", "predicted", "confidence", "review?", "pages"):
        table.add_column(column)
    correct = 0
    for document, label, prediction in zip(held.documents, held.labels, predictions, strict=True):
        correct += prediction["label"] == label
        mark = "[green]" if prediction["label"] == label else "[red]"
        table.add_row(
            Path(document.name).name,
            label,
            f"{mark}{prediction['label']}",
            f"{prediction['confidence']:.2f}",
            "yes" if prediction["needs_review"] else "",
            str(prediction["n_pages"]),
        )
    err.print(table)
    err.print(
        f"held-back accuracy {correct}/{len(predictions)}; cross-validated accuracy "
        f"{meta['cross_validation']['accuracy']:.3f}; total {time.perf_counter() - started:.0f} s"
    )
    err.print(f"try: .venv/bin/docclass predict --model {model_dir} {holdout_dir}/*/*")


def bench(
    ctx: typer.Context,
    corpus: Annotated[Path, typer.Option(help="folder-per-class corpus")] = Path("../shared/corpus"),
    out: Annotated[Path, typer.Option(help="results directory")] = Path("bench"),
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            "--candidate", "-c", help="candidates (default: params bench.candidates; reference always runs)"
        ),
    ] = None,
    draws: Annotated[
        int | None, typer.Option(help="seeded draws per training size (default: params bench.draws)")
    ] = None,
    speed: Annotated[bool, typer.Option(help="also measure extraction and prediction speed")] = True,
) -> None:
    """Accuracy of every candidate beside the plain reference (n per class, source held out, selective
    accuracy at the shipped review rule) and extraction/prediction speed, on a real corpus."""
    from pipelines.bench import report
    from pipelines.bench.run import BenchError, run
    from pipelines.dataset import DatasetError

    params = _params(ctx)
    if not corpus.is_dir():
        err.print(f"[yellow]skipped:[/yellow] corpus {corpus} not found (set CORPUS=dir); nothing measured")
        raise typer.Exit(0)
    _, _, cache = _extraction(params)
    try:
        results = run(
            corpus,
            out,
            params,
            cache=cache,
            candidates=candidate,
            draws=draws,
            measure_speed=speed,
            log=err.print,
        )
    except (BenchError, DatasetError, ValueError) as error:
        _fail(str(error))
    from rich.console import Console

    # rich caps a print's width at its console's; logs and pipes get a wide console so table rows stay whole
    tables = err if err.is_terminal else Console(stderr=True, soft_wrap=True, width=220)
    for item in report.renderables(results):
        tables.print(item)
    err.print(f"total {results['runtime']['total_seconds']:.0f} s; results in {out}")
    typer.echo(json.dumps({"targets": results["targets"], "runtime": results["runtime"]}, indent=2))


def register(app: typer.Typer) -> None:
    """Add the model commands to the `docclass` app."""
    for command in (extract, train, evaluate, predict, demo, bench):
        app.command()(command)
    app.command("generate-sample")(generate_sample)

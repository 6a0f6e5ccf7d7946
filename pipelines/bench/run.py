"""`make bench` / `docclass bench`: the accuracy protocols of issue 11 with the reference beside every candidate,
then the speed measurement, on a real folder-per-class corpus.

Writes under ``out``: ``results.json`` (every figure and the protocol details), ``predictions.jsonl`` (every
answer of every candidate on every split), ``learning_curve.png``, ``source_held_out.png``, ``risk_coverage.png``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pipelines.bench import accuracy, plots, speed
from pipelines.bench.accuracy import REFERENCE
from pipelines.bench.report import TARGETS, check_targets
from pipelines.dataset import LabeledDocuments, list_dataset, load_labeled_documents
from pipelines.document import Document
from pipelines.extract import ExtractConfig, ExtractionCache
from pipelines.ingest import IngestError, Limits, RawDocument, expand, read_input
from pipelines.models import CandidateUnavailable, make_candidate
from pipelines.params import BenchParams, validate_section
from pipelines.predict import ReviewRule


class BenchError(ValueError):
    """The corpus or the ``bench:`` parameters cannot be benchmarked."""


def candidate_names(requested: Sequence[str]) -> list[str]:
    """The candidates to run: the reference first (added when absent), then the others in order, once each."""
    return [REFERENCE, *dict.fromkeys(name for name in requested if name != REFERENCE)]


def document_sources(
    corpus: Path, docs: Sequence[Document], manifest: str, column: str
) -> tuple[list[str] | None, str]:
    """Each document's source from the corpus manifest, matched by sha256 (else by path under the corpus).

    Returns:
        (sources, how) or (None, why not) when the manifest is absent.

    Raises:
        BenchError: the manifest lacks the columns, or documents are missing from it.
    """
    path = corpus / manifest
    if not path.is_file():
        return None, f"no {manifest} in {corpus}: the source-held-out protocol needs each document's source"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if column not in fields or not ({"sha256", "file"} & set(fields)):
            raise BenchError(f"{path} has columns {fields}: expected {column!r} and 'sha256' or 'file'")
        rows = list(reader)
    by_sha = {row["sha256"]: row[column] for row in rows if row.get("sha256")}
    by_file = {row["file"]: row[column] for row in rows if row.get("file")}
    sources: list[str] = []
    missing: list[str] = []
    for doc in docs:
        source = by_sha.get(doc.sha256)
        if source is None:
            try:
                source = by_file.get(Path(doc.name).resolve().relative_to(corpus.resolve()).as_posix())
            except ValueError:
                source = None
        if not source:
            missing.append(doc.name)
        sources.append(source or "")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise BenchError(f"{path} gives no {column!r} for {len(missing)} document(s): {shown}")
    return sources, f"{column!r} column of {path}, matched by sha256"


def _raw_documents(corpus: Path, limits: Limits) -> list[RawDocument]:
    """The corpus as read for the speed measurement (one per sha256, as the dataset loader keeps them)."""
    raws: list[RawDocument] = []
    seen: set[str] = set()
    for item in list_dataset(corpus):
        try:
            data = read_input(item.path, limits)
        except IngestError:
            continue  # reported as rejected by the dataset loader already
        for raw in expand(data, str(item.path), limits):
            if isinstance(raw, RawDocument) and raw.sha256 not in seen:
                seen.add(raw.sha256)
                raws.append(raw)
    return raws


def _protocol_details(
    bench: Mapping[str, Any], seed: int, review_rule: str, draws: int, reduced: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "draws": {
            "sizes": [int(s) for s in bench["sizes"]],
            "draws": draws,
            "reduced_classes": dict(reduced),
            "seeds": f"numpy default_rng([seed={seed}, size, draw])",
            "rule": (
                "per size and draw, min(size, class size - 1) training documents of every class drawn at "
                "random, every other document tested; accuracy and macro-F1 per draw, mean and sample sd "
                "over draws; recall per class averaged over draws; difference to the reference paired per "
                "draw (mean, sample sd, 95% Student-t interval)"
            ),
        },
        "source_held_out": {
            "rule": (
                "each source (manifest column) is the test set of a model trained on every other source; "
                "documents whose class has no document from another source are skipped and listed; "
                "accuracy, macro-F1 and recall pooled over every evaluated document (each answered once), "
                "with the binomial standard error; difference to the reference paired per document "
                "(95% Student-t interval)"
            ),
        },
        "selective": {
            "rule": (
                "answers pooled over the draws of a size (a) or over the held-out sources (b); "
                "unflagged = not needs_review as set by the shipped prediction code "
                "(pipelines.predict.predict_documents); risk-coverage curve over the answers' confidence"
            ),
        },
        "review_rule": review_rule,
        "inner_selection": (
            "candidates choose their own parameters (fusion weight, calibration temperature) by "
            "cross-validation inside the training part; the reference has none; nothing sees a test split "
            "before predicting it"
        ),
        "candidate_seed": seed,
    }


def run(
    corpus: Path,
    out: Path,
    params: Mapping[str, Any],
    *,
    cache: ExtractionCache | None,
    candidates: Sequence[str] | None = None,
    draws: int | None = None,
    measure_speed: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and write its files under ``out``.

    Args:
        corpus: folder-per-class corpus (a ``manifest`` with sources enables protocol b).
        out: results directory (created).
        params: the whole params.yaml.
        cache: extraction cache (the normal cached extraction path), or None to extract afresh.
        candidates: candidate names (default ``bench.candidates``); the reference is always added.
        draws: draws per size of protocol a (default ``bench.draws``).
        measure_speed: also measure extraction and prediction speed.
        log: progress messages.

    Returns:
        The results as written to ``results.json``.

    Raises:
        BenchError: a bad manifest; ParamsError: a bad ``bench:`` section; ValueError from the dataset checks.
    """
    started = time.perf_counter()
    timing: dict[str, float] = {}
    bench = validate_section(BenchParams, params.get("bench"), "bench").model_dump()
    seed = int(params["seed"])
    draws = int(draws if draws is not None else bench["draws"])
    n_jobs = int(bench["n_jobs"])
    names = candidate_names(candidates or bench["candidates"])
    factories = {name: partial(make_candidate, name, params["train"], seed) for name in names}
    for factory in factories.values():
        factory()  # an unknown name or parameter fails here, before any work
    config = ExtractConfig.from_params(params["extract"])
    limits = Limits.from_params(params["ingest"])
    out.mkdir(parents=True, exist_ok=True)

    dataset: LabeledDocuments = load_labeled_documents(corpus, config, limits, cache=cache)
    docs, labels = dataset.documents, dataset.labels
    classes = sorted(set(labels))
    log(
        f"corpus {corpus}: {len(docs)} documents ({', '.join(f'{c} {labels.count(c)}' for c in classes)}), "
        f"{len(dataset.rejected)} rejected; candidates {names}"
    )
    timing["load_seconds"] = time.perf_counter() - started
    predict_params = params["predict"]
    review = ReviewRule.from_params(predict_params)
    target = TARGETS["unflagged_accuracy"]

    phase = time.perf_counter()
    log(f"(a) sizes {list(bench['sizes'])}, {draws} draws each ...")
    draw_splits, reduced = accuracy.draw_splits(labels, [int(s) for s in bench["sizes"]], draws, seed)
    draw_outcomes = accuracy.run_splits(
        factories, docs, labels, draw_splits, predict_params, n_jobs=n_jobs, log=log
    )
    draw_summary = accuracy.summarise_draws(draw_outcomes, draw_splits, labels, target_accuracy=target)
    timing["draws_seconds"] = time.perf_counter() - phase

    phase = time.perf_counter()
    sources, how = document_sources(corpus, docs, str(bench["manifest"]), str(bench["source_column"]))
    source_part: dict[str, Any]
    source_splits: list[accuracy.Split] = []
    source_outcomes: list[accuracy.Outcome] = []
    if sources is None:
        log(f"(b) skipped: {how}")
        source_part = {"status": "skipped", "reason": how}
    else:
        source_splits, skipped = accuracy.source_splits(labels, sources)
        log(f"(b) {len(set(sources))} sources held out in turn, {len(skipped)} documents skipped ...")
        source_outcomes = accuracy.run_splits(
            factories, docs, labels, source_splits, predict_params, n_jobs=n_jobs, log=log
        )
        source_part = {
            "status": "ok",
            "sources_from": how,
            "n_sources": len(set(sources)),
            "n_evaluated": sum(len(split.test) for split in source_splits),
            "folds": [split.info for split in source_splits],
            "skipped_documents": [
                {**{k: v for k, v in doc.items() if k != "index"}, "name": docs[doc["index"]].name}
                for doc in skipped
            ],
            "candidates": accuracy.summarise_sources(
                source_outcomes, source_splits, labels, target_accuracy=target
            ),
        }
    timing["source_held_out_seconds"] = time.perf_counter() - phase

    outcomes = draw_outcomes + source_outcomes
    skipped_candidates = {o.candidate: o.reason for o in outcomes if o.status == "skipped"}
    review_rule = f"pipelines.predict.predict_documents; review threshold {review.describe()}"
    results: dict[str, Any] = {
        "corpus": {
            "path": str(corpus),
            "extraction_cache_key": config.cache_key(),  # ties the figures to one extraction of the corpus
            "documents": len(docs),
            "classes": {c: labels.count(c) for c in classes},
            "class_names": classes,
            "rejected": [{"name": r.name, "reason": r.reason} for r in dataset.rejected],
            "sources": None if sources is None else {s: sources.count(s) for s in sorted(set(sources))},
        },
        "candidates": names,
        "skipped_candidates": skipped_candidates,
        "protocol": _protocol_details(bench, seed, review_rule, draws, reduced),
        "draws": draw_summary,
        "source_held_out": source_part,
    }

    if measure_speed:
        phase = time.perf_counter()
        ready = [name for name in names if name not in skipped_candidates]
        log(f"speed: extraction without cache on one core, OCR per core, prediction of {ready} ...")
        models = {}
        for name in ready:
            try:
                models[name] = factories[name]().fit(docs, labels)
            except (CandidateUnavailable, ValueError) as error:
                log(f"  {name} not timed: {getattr(error, 'reason', error)}")
        results["speed"] = speed.measure_speed(_raw_documents(corpus, limits), config, limits, models, review)
        timing["speed_seconds"] = time.perf_counter() - phase
    else:
        results["speed"] = None
    results["targets"] = check_targets(results)
    timing["total_seconds"] = time.perf_counter() - started
    results["runtime"] = {key: round(value, 1) for key, value in timing.items()}
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "n_jobs": n_jobs,
        "ocr_workers": config.n_workers(),
    }
    results["params"] = {
        "seed": seed,
        "bench": dict(bench),
        "train": params["train"],
        "extract": params["extract"],
        "predict": dict(predict_params),
    }
    _write(results, draw_outcomes, draw_splits, source_outcomes, source_splits, docs, labels, out)
    log(
        f"results in {out}: results.json, predictions.jsonl, learning_curve.png, risk_coverage.png"
        + (", source_held_out.png" if source_part["status"] == "ok" else "")
    )
    return results


def _write(
    results: dict[str, Any],
    draw_outcomes: list[accuracy.Outcome],
    draw_splits: list[accuracy.Split],
    source_outcomes: list[accuracy.Outcome],
    source_splits: list[accuracy.Split],
    docs: Sequence[Document],
    labels: Sequence[str],
    out: Path,
) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    rows = accuracy.prediction_rows(
        draw_outcomes + source_outcomes, draw_splits + source_splits, docs, labels
    )
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    accuracy_target = TARGETS["accuracy"]
    plots.plot_learning_curve(results["draws"], accuracy_target, out / "learning_curve.png")
    size = str(int(TARGETS["size"]))
    panels: dict[str, dict[str, Any]] = {}
    at_size = results["draws"].get(size) or results["draws"][max(results["draws"], key=int)]
    label = size if size in results["draws"] else max(results["draws"], key=int)
    panels[f"(a) {label} per class, answers of all draws"] = {
        name: cell["selective"] for name, cell in at_size.items() if cell.get("status") == "ok"
    }
    part = results["source_held_out"]
    if part["status"] == "ok":
        plots.plot_sources(part["candidates"], accuracy_target, out / "source_held_out.png")
        panels["(b) source held out"] = {
            name: cell["selective"] for name, cell in part["candidates"].items() if cell.get("status") == "ok"
        }
    plots.plot_risk_coverage(
        panels, TARGETS["unflagged_accuracy"], TARGETS["unflagged_share"], out / "risk_coverage.png"
    )

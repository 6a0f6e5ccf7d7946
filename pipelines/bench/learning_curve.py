"""Benchmark on a real folder-per-class corpus: learning curve per candidate, extraction and prediction speed.

Run through `make bench` / `docclass bench`; writes ``results.json`` and ``learning_curve.png``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.dataset import list_dataset
from pipelines.document import Document
from pipelines.evaluate import learning_curve
from pipelines.extract import ExtractConfig, extract_documents
from pipelines.ingest import IngestError, Limits, RawDocument, Rejected, expand, read_input
from pipelines.models import make_candidate
from pipelines.predict import predict_documents

SIZES = (5, 10, 15)
TARGETS = {
    "accuracy_at_15": 0.97,
    "text_pages_per_second_per_core": 200.0,
    "ocr_seconds_per_page_per_core": 1.5,
}


def _raw_documents(corpus: Path, limits: Limits) -> tuple[list[RawDocument], list[str], list[Rejected]]:
    raws: list[RawDocument] = []
    labels: list[str] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for item in list_dataset(corpus):
        try:
            data = read_input(item.path, limits)
        except IngestError as error:
            rejected.append(Rejected(str(item.path), error))
            continue
        for raw in expand(data, str(item.path), limits):
            if isinstance(raw, Rejected):
                rejected.append(raw)
            elif raw.sha256 not in seen:
                seen.add(raw.sha256)
                raws.append(raw)
                labels.append(item.label)
    return raws, labels, rejected


def measure_extraction(
    raws: Sequence[RawDocument], config: ExtractConfig, limits: Limits, warm_runs: int = 2
) -> tuple[list[Document | Rejected], dict[str, Any]]:
    """Extract each document alone on one worker (no cache) and time it: per-core cost by page kind.

    Text-layer documents are timed again ``warm_runs`` times and the best pass is kept, as in a running
    service; the first (cold) pass is reported too.
    """
    single = replace(config, workers=1)
    results: list[Document | Rejected] = []
    text_raws: list[RawDocument] = []
    text_pages = ocr_pages = 0
    text_seconds = ocr_seconds = 0.0
    mixed = 0
    ocr_documents: list[dict[str, Any]] = []
    for raw in raws:
        started = time.perf_counter()
        (result,) = extract_documents([raw], single, limits)
        elapsed = time.perf_counter() - started
        results.append(result)
        if isinstance(result, Rejected):
            continue
        sources = {page.source for page in result.pages}
        if sources == {"text"}:
            text_pages += result.n_pages
            text_seconds += elapsed
            text_raws.append(raw)
        elif "text" not in sources:
            ocr_pages += result.n_pages
            ocr_seconds += elapsed
            ocr_documents.append(
                {
                    "name": raw.name,
                    "pages": result.n_pages,
                    "seconds": round(elapsed, 3),
                    "words": sum(len(page.text.split()) for page in result.pages),
                    "rotations": [page.rotation for page in result.pages],
                }
            )
        else:
            mixed += 1
    warm = text_seconds
    for _ in range(warm_runs):
        started = time.perf_counter()
        for raw in text_raws:
            extract_documents([raw], single, limits)
        warm = min(warm, time.perf_counter() - started)
    return results, {
        "text_layer_pages": text_pages,
        "text_layer_extract_seconds_per_page_cold": text_seconds / max(1, text_pages),
        "text_layer_extract_seconds_per_page": warm / max(1, text_pages),
        "ocr_pages": ocr_pages,
        "ocr_seconds_per_page_per_core": ocr_seconds / max(1, ocr_pages),
        "ocr_documents": ocr_documents,
        "mixed_documents_not_timed": mixed,
    }


def measure_parallel_ocr(
    raws: Sequence[RawDocument], config: ExtractConfig, limits: Limits
) -> dict[str, Any]:
    """OCR documents with one Tesseract per core, as a batch upload would."""
    workers = config.n_workers()
    started = time.perf_counter()
    results = extract_documents(raws, replace(config, workers=workers), limits)
    elapsed = time.perf_counter() - started
    pages = sum(r.n_pages for r in results if isinstance(r, Document))
    return {
        "workers": workers,
        "pages": pages,
        "wall_seconds_per_page": elapsed / max(1, pages),
        "seconds_per_page_per_core": elapsed * workers / max(1, pages),
    }


def measure_prediction(
    model: Any, docs: Sequence[Document], threshold: float, repeats: int = 3
) -> dict[str, Any]:
    """Document + per-page prediction time for text-layer documents (best of a few runs)."""
    pages = sum(doc.n_pages for doc in docs)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        predict_documents(model, docs, threshold)
        best = min(best, time.perf_counter() - started)
    return {"pages": pages, "predict_seconds_per_page": best / max(1, pages)}


def summarise_curve(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and standard deviation of accuracy and macro-F1 per candidate and training size."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        if row.get("status", "ok") != "ok":
            continue
        summary.setdefault(row["candidate"], {}).setdefault(
            str(row["size"]), {"accuracy": [], "macro_f1": [], "fit_seconds": []}
        )
        cell = summary[row["candidate"]][str(row["size"])]
        for key in ("accuracy", "macro_f1", "fit_seconds"):
            cell[key].append(float(row[key]))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for candidate, sizes in summary.items():
        out[candidate] = {}
        for size, cell in sizes.items():
            out[candidate][size] = {
                "accuracy_mean": statistics.fmean(cell["accuracy"]),
                "accuracy_std": statistics.pstdev(cell["accuracy"]),
                "macro_f1_mean": statistics.fmean(cell["macro_f1"]),
                "macro_f1_std": statistics.pstdev(cell["macro_f1"]),
                "fit_seconds_mean": statistics.fmean(cell["fit_seconds"]),
                "draws": len(cell["accuracy"]),
            }
    return out


def plot_curve(curve: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for candidate, sizes in sorted(curve.items()):
        xs = sorted(int(size) for size in sizes)
        for axis, metric in zip(axes, ("accuracy", "macro_f1"), strict=True):
            means = [sizes[str(x)][f"{metric}_mean"] for x in xs]
            stds = [sizes[str(x)][f"{metric}_std"] for x in xs]
            axis.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=candidate)
    for axis, metric in zip(axes, ("accuracy", "macro-F1"), strict=True):
        axis.set_xlabel("training documents per class")
        axis.set_ylabel(f"{metric} on the remaining documents")
        axis.axhline(TARGETS["accuracy_at_15"], color="grey", linestyle=":", linewidth=1)
        axis.set_xticks(list(SIZES))
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(
    corpus: Path, out: Path, params: dict[str, Any], *, draws: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole benchmark and write ``results.json`` and ``learning_curve.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    config = ExtractConfig.from_params(params["extract"])
    limits = Limits.from_params(params["ingest"])
    seed = int(params["seed"])
    raws, labels, rejected = _raw_documents(corpus, limits)
    log(f"corpus {corpus}: {len(raws)} documents, {len(rejected)} rejected")

    log("extraction speed: each document alone on one core, no cache ...")
    extracted, speed = measure_extraction(raws, config, limits)
    docs = [d for d in extracted if isinstance(d, Document)]
    doc_labels = [label for d, label in zip(extracted, labels, strict=True) if isinstance(d, Document)]
    ocr_raws = [
        raw
        for raw, d in zip(raws, extracted, strict=True)
        if isinstance(d, Document) and "text" not in {p.source for p in d.pages}
    ]
    log(f"OCR with one Tesseract per core on {len(ocr_raws)} scanned documents ...")
    speed["parallel_ocr"] = measure_parallel_ocr(ocr_raws, config, limits)

    log(f"learning curve: sizes {SIZES}, {draws} draws, candidates {params['train']['candidates']} ...")
    factories = {
        name: (lambda name=name: make_candidate(name, params["train"], seed))
        for name in params["train"]["candidates"]
    }
    rows = learning_curve(factories, docs, doc_labels, sizes=SIZES, draws=draws, seed=seed)
    curve = summarise_curve(rows)
    skipped = {row["candidate"]: row.get("reason") for row in rows if row.get("status") == "skipped"}

    best_name, best_at_15 = max(
        ((name, sizes.get("15", {}).get("accuracy_mean", 0.0)) for name, sizes in curve.items()),
        key=lambda item: item[1],
        default=("none", 0.0),
    )
    text_docs = [d for d in docs if {p.source for p in d.pages} == {"text"}]
    model = make_candidate(best_name, params["train"], seed).fit(docs, doc_labels)
    prediction = measure_prediction(model, text_docs, float(params["predict"]["review_threshold"]))
    per_page = speed["text_layer_extract_seconds_per_page"] + prediction["predict_seconds_per_page"]
    speed["prediction"] = prediction
    speed["text_pages_per_second_per_core"] = 1.0 / per_page if per_page else 0.0

    summary = {
        "documents": len(docs),
        "classes": {label: doc_labels.count(label) for label in sorted(set(doc_labels))},
        "best_candidate_at_15": best_name,
        "accuracy_at_15": best_at_15,
        "macro_f1_at_15": curve.get(best_name, {}).get("15", {}).get("macro_f1_mean", 0.0),
        "text_pages_per_second_per_core": speed["text_pages_per_second_per_core"],
        "ocr_seconds_per_page_per_core": speed["ocr_seconds_per_page_per_core"],
        "targets": TARGETS,
        "skipped_candidates": skipped,
    }
    summary["targets_met"] = {
        "accuracy_at_15": summary["accuracy_at_15"] >= TARGETS["accuracy_at_15"],
        "text_pages_per_second_per_core": summary["text_pages_per_second_per_core"]
        >= TARGETS["text_pages_per_second_per_core"],
        "ocr_seconds_per_page_per_core": summary["ocr_seconds_per_page_per_core"]
        <= TARGETS["ocr_seconds_per_page_per_core"],
    }
    results = {
        "summary": summary,
        "learning_curve": curve,
        "draws": rows,
        "speed": speed,
        "rejected": [{"name": r.name, "reason": r.reason} for r in rejected],
        "machine": {"python": platform.python_version(), "cpu_workers": config.n_workers()},
        "params": {"extract": params["extract"], "train": params["train"], "seed": seed},
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    plot_curve(curve, out / "learning_curve.png")
    log(f"results written to {out / 'results.json'} and {out / 'learning_curve.png'}")
    return results

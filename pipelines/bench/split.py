"""Split benchmark: bundles of held-out real documents, split by a classifier + splitter trained on the rest.

Per seeded draw, the corpus is cut into stratified folds; for each fold the classifier and the splitter are
trained on the other folds, and the fold's documents are shuffled and concatenated into bundles of 2 to
``max_bundle`` documents (single- and multi-page, scans and born-digital mixed as they come). A bundle is built
from the extracted pages of its documents: extraction is per page, so this equals extracting the concatenated
PDF, without OCR'ing every page again.

Reported (mean and standard deviation over draws): page accuracy (page class = class of its predicted
document), boundary precision / recall (a boundary is a page > 1 of a bundle that starts a document), the share
of documents recovered exactly (same first and last page, same class) and the same share ignoring the class.
The baseline "merge equal neighbours" (page arg-max, consecutive equal classes merged) is measured on the same
bundles.
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

import numpy as np
from sklearn.model_selection import StratifiedKFold

from pipelines.dataset import load_labeled_documents
from pipelines.document import Document, Page
from pipelines.extract import ExtractConfig, ExtractionCache
from pipelines.ingest import Limits
from pipelines.models import make_candidate
from pipelines.split import Segment, fit_splitter, split_documents

TARGET_EXACT = 0.95
RESULTS_FILE = "split_results.json"


def concatenate(documents: Sequence[Document], name: str = "bundle.pdf") -> Document:
    """One document holding the pages of ``documents`` in order (pages re-indexed)."""
    pages: list[Page] = []
    for doc in documents:
        for page in doc.pages:
            pages.append(replace(page, index=len(pages)))  # every other field (the title too) as it is
    key = "+".join(doc.sha256[:12] for doc in documents)
    return Document(sha256=key, name=name, mime="application/pdf", pages=tuple(pages))


def true_segments(documents: Sequence[Document], labels: Sequence[str]) -> list[Segment]:
    """The segments a perfect splitter returns for the bundle of ``documents`` (confidence 1)."""
    out: list[Segment] = []
    first = 1
    for doc, label in zip(documents, labels, strict=True):
        out.append(
            Segment(label=str(label), first_page=first, last_page=first + doc.n_pages - 1, confidence=1.0)
        )
        first += doc.n_pages
    return out


def merge_equal_neighbours(page_proba: np.ndarray, classes: Sequence[str]) -> list[Segment]:
    """Baseline: page arg-max classes, consecutive equal classes merged into one document."""
    labels = np.argmax(page_proba, axis=1)
    out: list[Segment] = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            conf = float(page_proba[start:t, labels[start]].mean())
            out.append(Segment(str(classes[labels[start]]), start + 1, t, conf))
            start = t
    return out


def score_bundle(truth: Sequence[Segment], predicted: Sequence[Segment]) -> dict[str, int]:
    """Counts for one bundle: pages right, boundaries (true, predicted, matched), documents exact.

    Returns:
        pages, pages_correct, true_boundaries, predicted_boundaries, matched_boundaries, documents,
        documents_exact, documents_exact_pages.
    """
    n = truth[-1].last_page if truth else 0

    def page_labels(segments: Sequence[Segment]) -> list[str]:
        out = [""] * n
        for seg in segments:
            for p in range(seg.first_page, seg.last_page + 1):
                out[p - 1] = seg.label
        return out

    true_pages, pred_pages = page_labels(truth), page_labels(predicted)
    true_b = {seg.first_page for seg in truth if seg.first_page > 1}
    pred_b = {seg.first_page for seg in predicted if seg.first_page > 1}
    pred_exact = {(seg.first_page, seg.last_page, seg.label) for seg in predicted}
    pred_ranges = {(seg.first_page, seg.last_page) for seg in predicted}
    return {
        "pages": n,
        "pages_correct": sum(a == b for a, b in zip(true_pages, pred_pages, strict=True)),
        "true_boundaries": len(true_b),
        "predicted_boundaries": len(pred_b),
        "matched_boundaries": len(true_b & pred_b),
        "documents": len(truth),
        "documents_exact": sum((s.first_page, s.last_page, s.label) in pred_exact for s in truth),
        "documents_exact_pages": sum((s.first_page, s.last_page) in pred_ranges for s in truth),
    }


def figures(counts: Sequence[dict[str, int]]) -> dict[str, float]:
    """Page accuracy, boundary precision / recall / F1 and exact-document shares from summed counts."""
    total = {key: sum(c[key] for c in counts) for key in counts[0]} if counts else {}
    if not total:
        return {}
    precision = total["matched_boundaries"] / max(1, total["predicted_boundaries"])
    recall = total["matched_boundaries"] / max(1, total["true_boundaries"])
    return {
        "page_accuracy": total["pages_correct"] / max(1, total["pages"]),
        "boundary_precision": precision,
        "boundary_recall": recall,
        "boundary_f1": 2 * precision * recall / max(1e-12, precision + recall),
        "documents_exact": total["documents_exact"] / max(1, total["documents"]),
        "documents_exact_ignoring_class": total["documents_exact_pages"] / max(1, total["documents"]),
        "documents": total["documents"],
        "pages": total["pages"],
    }


def make_bundles(n_docs: int, rng: np.random.Generator, max_bundle: int) -> list[list[int]]:
    """Shuffle ``range(n_docs)`` and cut it into consecutive groups of 2..max_bundle (the last may be 1)."""
    order = [int(i) for i in rng.permutation(n_docs)]
    bundles: list[list[int]] = []
    while order:
        size = int(rng.integers(2, max_bundle + 1))
        bundles.append(order[:size])
        order = order[size:]
    return bundles


def evaluate_fold(
    train_docs: Sequence[Document],
    train_labels: Sequence[str],
    test_docs: Sequence[Document],
    test_labels: Sequence[str],
    params: dict[str, Any],
    *,
    candidate: str,
    seed: int,
    rng: np.random.Generator,
    max_bundle: int,
) -> dict[str, Any]:
    """Train on one side, split bundles of the other; returns the per-bundle counts and details of errors."""
    started = time.perf_counter()
    model = make_candidate(candidate, params["train"], seed).fit(list(train_docs), list(train_labels))
    splitter = fit_splitter(train_docs, train_labels, params.get("split"), seed)
    fit_seconds = time.perf_counter() - started
    groups = make_bundles(len(test_docs), rng, max_bundle)
    bundles = [concatenate([test_docs[i] for i in group]) for group in groups]
    started = time.perf_counter()
    predicted = split_documents(splitter, bundles, model)
    split_seconds = time.perf_counter() - started
    classes = [str(c) for c in model.classes_]
    page_proba = model.predict_pages_proba(bundles)
    counts, baseline, errors = [], [], []
    for group, segments, proba in zip(groups, predicted, page_proba, strict=True):
        truth = true_segments([test_docs[i] for i in group], [test_labels[i] for i in group])
        counts.append(score_bundle(truth, segments))
        baseline.append(score_bundle(truth, merge_equal_neighbours(proba, classes)))
        if counts[-1]["documents_exact"] < counts[-1]["documents"]:
            errors.append(
                {
                    "documents": [Path(test_docs[i].name).name for i in group],
                    "truth": [s.to_dict() for s in truth],
                    "predicted": [s.to_dict() for s in segments],
                }
            )
    # ceiling: the classifier's document-level answer with the true boundaries given
    correct = model.predict(list(test_docs)) == np.asarray(list(test_labels))
    return {
        "counts": counts,
        "baseline": baseline,
        "classified_with_true_boundaries": int(correct.sum()),
        "errors": errors,
        "fit_seconds": fit_seconds,
        "split_seconds": split_seconds,
        "pages": sum(b.n_pages for b in bundles),
    }


def _mean_std(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = [k for k in rows[0] if k not in ("documents", "pages")]
    return {
        key: {"mean": statistics.fmean(r[key] for r in rows), "std": statistics.pstdev(r[key] for r in rows)}
        for key in keys
    }


def run(
    corpus: Path,
    out: Path,
    params: dict[str, Any],
    *,
    cache: ExtractionCache | None,
    draws: int = 3,
    folds: int = 3,
    candidate: str = "fusion",
    max_bundle: int = 6,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the split benchmark and write ``split_results.json`` under ``out``.

    Args:
        corpus: folder-per-class (or labels.csv) corpus.
        out: results directory (created).
        params: the whole params.yaml mapping (``seed``, ``extract``, ``ingest``, ``train``, optional ``split``).
        cache: extraction cache, so scans are not OCR'd again.
        draws: seeded draws (fold assignment and bundle order change per draw).
        folds: stratified folds per draw; every document is held out once per draw.
        candidate: classifier candidate trained per fold.
        max_bundle: most documents per bundle.
        log: progress sink.

    Returns:
        The results written.
    """
    out.mkdir(parents=True, exist_ok=True)
    config = ExtractConfig.from_params(params["extract"])
    limits = Limits.from_params(params["ingest"])
    seed = int(params["seed"])
    dataset = load_labeled_documents(corpus, config, limits, cache=cache)
    docs, labels = dataset.documents, dataset.labels
    log(
        f"corpus {corpus}: {len(docs)} documents ({sum(d.n_pages for d in docs)} pages), "
        f"{len(dataset.rejected)} rejected; {draws} draws x {folds} folds, candidate {candidate}"
    )
    per_draw, per_draw_baseline, draw_rows, all_errors = [], [], [], []
    fit_seconds = split_seconds = 0.0
    split_pages = 0
    for draw in range(draws):
        draw_seed = seed + draw
        rng = np.random.default_rng([seed, draw])
        counts, baseline = [], []
        ceiling = 0
        folds_split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=draw_seed)
        for fold, (train, test) in enumerate(folds_split.split(np.zeros(len(labels)), labels)):
            result = evaluate_fold(
                [docs[i] for i in train],
                [labels[i] for i in train],
                [docs[i] for i in test],
                [labels[i] for i in test],
                params,
                candidate=candidate,
                seed=seed,
                rng=rng,
                max_bundle=max_bundle,
            )
            counts += result["counts"]
            ceiling += result["classified_with_true_boundaries"]
            baseline += result["baseline"]
            fit_seconds += result["fit_seconds"]
            split_seconds += result["split_seconds"]
            split_pages += result["pages"]
            all_errors += [{"draw": draw, "fold": fold, **e} for e in result["errors"]]
        per_draw.append({**figures(counts), "documents_exact_with_true_boundaries": ceiling / len(docs)})
        per_draw_baseline.append(figures(baseline))
        draw_rows.append({"draw": draw, "bundles": len(counts), **per_draw[-1]})
        f = per_draw[-1]
        log(
            f"draw {draw}: {len(counts)} bundles, page accuracy {f['page_accuracy']:.3f}, boundary P/R "
            f"{f['boundary_precision']:.3f}/{f['boundary_recall']:.3f}, documents exact {f['documents_exact']:.3f} "
            f"(baseline {per_draw_baseline[-1]['documents_exact']:.3f}, true boundaries "
            f"{f['documents_exact_with_true_boundaries']:.3f})"
        )
    summary = _mean_std(per_draw)
    results = {
        "summary": {
            **{key: value["mean"] for key, value in summary.items()},
            "target_documents_exact": TARGET_EXACT,
            "target_met": summary["documents_exact"]["mean"] >= TARGET_EXACT,
            "baseline_merge_equal_neighbours": {
                key: value["mean"] for key, value in _mean_std(per_draw_baseline).items()
            },
            "split_seconds_per_page": split_seconds / max(1, split_pages),
            "fit_seconds_per_fold": fit_seconds / max(1, draws * folds),
        },
        "spread": summary,
        "draws": draw_rows,
        "errors": all_errors,
        "setup": {
            "corpus": str(corpus),
            "documents": len(docs),
            "pages": sum(d.n_pages for d in docs),
            "draws": draws,
            "folds": folds,
            "candidate": candidate,
            "max_bundle": max_bundle,
            "seed": seed,
            "split_params": params.get("split") or {},
        },
        "machine": {"python": platform.python_version()},
    }
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=2, default=str))
    log(f"results written to {out / RESULTS_FILE}")
    return results

"""Cross-validated evaluation of candidates: metrics, calibration error, confusion matrix, learning curves.

Pure functions; the only I/O is :func:`write_report` and :func:`confusion_matrix_png`, which write where told.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold

from pipelines.document import Document
from pipelines.models import CandidateUnavailable

Estimator = Any  # fit(docs, labels) -> self; predict_proba(docs); classes_
_DECIMALS = 6


@dataclass
class EvalReport:
    """Out-of-fold evaluation of one candidate.

    Attributes:
        classes: sorted class labels (column order of ``proba``, row/column order of the confusion matrix).
        n_folds: folds used.
        seed: seed of the fold assignment.
        metrics: :func:`compute_metrics` output.
        sha256: document keys, in input order.
        names: document names, in input order.
        y_true: true labels.
        y_pred: out-of-fold predicted labels.
        proba: (n_docs, n_classes) out-of-fold probabilities.
        fold: fold index that held each document out.
        fit_seconds: fit time of each fold's model.
    """

    classes: list[str]
    n_folds: int
    seed: int
    metrics: dict[str, Any]
    sha256: list[str]
    names: list[str]
    y_true: list[str]
    y_pred: list[str]
    proba: np.ndarray
    fold: list[int]
    fit_seconds: list[float] = field(default_factory=list)


def _round(x: float) -> float:
    return round(float(x), _DECIMALS)


def check_classes(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted classes and per-class counts; every class needs >= 2 documents and there must be >= 2 classes.

    Raises:
        ValueError: fewer than 2 classes, or a class with fewer than 2 documents.
    """
    classes, counts = np.unique(np.asarray([str(label) for label in labels]), return_counts=True)
    if len(classes) < 2:
        found = ", ".join(repr(str(c)) for c in classes) or "none"
        raise ValueError(f"evaluation needs at least 2 classes, found {len(classes)} ({found})")
    small = [f"{str(c)!r} ({n})" for c, n in zip(classes, counts, strict=True) if n < 2]
    if small:
        raise ValueError(
            f"evaluation needs at least 2 documents per class, found fewer in {', '.join(small)}: "
            f"label more documents of these classes or leave them out"
        )
    return [str(c) for c in classes], counts


def _checked_dataset(
    docs: Sequence[Document], labels: Sequence[str]
) -> tuple[list[Document], list[str], list[str]]:
    """Documents and string labels as lists plus the sorted classes, after checking they fit together."""
    docs = list(docs)
    labels = [str(label) for label in labels]
    if len(docs) != len(labels):
        raise ValueError(
            f"expected one label per document, found {len(docs)} documents and {len(labels)} labels"
        )
    classes, _ = check_classes(labels)
    return docs, labels, classes


def n_folds_for(labels: Sequence[str], max_folds: int) -> int:
    """k = min(max_folds, smallest class count), at least 2 (see :func:`check_classes` for the errors)."""
    _, counts = check_classes(labels)
    return max(2, min(int(max_folds), int(counts.min())))


def expected_calibration_error(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], n_bins: int = 10
) -> float:
    """Top-label expected calibration error with ``n_bins`` equal-width confidence bins.

    ECE = sum over bins of (bin size / n) * |accuracy in bin - mean confidence in bin|.

    Args:
        y_true: true labels.
        proba: (n, n_classes) probabilities, columns in ``classes`` order.
        classes: class labels.
        n_bins: number of bins over [0, 1].

    Returns:
        The ECE in [0, 1] (0.0 for no examples).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(y_true) == 0:
        return 0.0
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, found {n_bins}")
    index = {str(c): i for i, c in enumerate(classes)}
    y_idx = np.array([index[str(label)] for label in y_true])
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_idx).astype(np.float64)
    # bin b holds confidences in (b/n, (b+1)/n]; confidence 0 goes to the first bin
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def compute_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    proba: np.ndarray | None,
    classes: Sequence[str],
    ece_bins: int,
) -> dict[str, Any]:
    """Headline and per-class metrics as plain JSON types.

    Returns:
        ``accuracy``, ``macro_f1``, ``weighted_f1``, ``ece`` and ``log_loss`` (None without ``proba``),
        ``n_docs``, ``classes``, ``per_class`` ({class: precision, recall, f1, support}) and
        ``confusion_matrix`` (rows = actual, columns = predicted, both in ``classes`` order).
    """
    classes = [str(c) for c in classes]
    y_true = [str(v) for v in y_true]
    y_pred = [str(v) for v in y_pred]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    metrics: dict[str, Any] = {
        "accuracy": _round(accuracy_score(y_true, y_pred)),
        "macro_f1": _round(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": _round(f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)),
        "ece": None,
        "log_loss": None,
        "n_docs": len(y_true),
        "classes": classes,
    }
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64)
        metrics["ece"] = _round(expected_calibration_error(y_true, proba, classes, ece_bins))
        metrics["log_loss"] = _round(log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=classes))
    metrics["per_class"] = {
        c: {
            "precision": _round(precision[i]),
            "recall": _round(recall[i]),
            "f1": _round(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }
    metrics["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=classes).tolist()
    return metrics


def _aligned_proba(model: Estimator, docs: Sequence[Document], classes: list[str]) -> np.ndarray:
    """Model probabilities with columns reordered to ``classes`` (a class unknown to the model gets 0)."""
    proba = np.asarray(model.predict_proba(docs), dtype=np.float64)
    out = np.zeros((len(docs), len(classes)))
    position = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model.classes_):
        out[:, position[str(c)]] = proba[:, j]
    return out


def cross_validate(
    make_model: Callable[[], Estimator],
    docs: Sequence[Document],
    labels: Sequence[str],
    *,
    seed: int,
    max_folds: int,
    ece_bins: int,
) -> EvalReport:
    """Stratified k-fold cross-validation with out-of-fold predictions.

    k = min(max_folds, smallest class count), at least 2; folds are shuffled with ``seed``, so the same seed
    (and deterministic models) gives identical results.

    Args:
        make_model: builds a fresh unfitted estimator for each fold.
        docs: documents.
        labels: one label per document.
        seed: fold seed.
        max_folds: upper bound of k.
        ece_bins: bins of the expected calibration error.

    Returns:
        The report.

    Raises:
        ValueError: fewer than 2 classes, a class with fewer than 2 documents, or length mismatch.
        CandidateUnavailable: from the candidate's fit (the caller skips it).
    """
    docs, labels, classes = _checked_dataset(docs, labels)
    k = n_folds_for(labels, max_folds)
    y = np.asarray(labels)
    proba = np.zeros((len(docs), len(classes)))
    fold = np.zeros(len(docs), dtype=int)
    fit_seconds = []
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(docs)), y)):
        model = make_model()
        started = time.perf_counter()
        model.fit([docs[j] for j in train_idx], [labels[j] for j in train_idx])
        fit_seconds.append(time.perf_counter() - started)
        proba[test_idx] = _aligned_proba(model, [docs[j] for j in test_idx], classes)
        fold[test_idx] = i
    y_pred = [classes[j] for j in proba.argmax(axis=1)]
    metrics = compute_metrics(labels, y_pred, proba, classes, ece_bins)
    metrics["n_folds"] = k
    return EvalReport(
        classes=classes,
        n_folds=k,
        seed=seed,
        metrics=metrics,
        sha256=[doc.sha256 for doc in docs],
        names=[doc.name for doc in docs],
        y_true=labels,
        y_pred=y_pred,
        proba=proba,
        fold=fold.tolist(),
        fit_seconds=fit_seconds,
    )


def confusion_matrix_png(cm: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> Path:
    """Draw a confusion matrix (rows = actual, columns = predicted) as a PNG with counts in the cells."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(cm, dtype=int)
    n = len(classes)
    size = 1.6 + 0.6 * n
    fig = Figure(figsize=(size + 1.0, size), dpi=100)
    FigureCanvasAgg(fig)  # Agg without touching pyplot's global backend
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if counts[i, j] > threshold else "black",
            )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """Write metrics.json, confusion.json (DVC confusion-plot rows), confusion.png and predictions.json.

    Returns:
        The written paths by name ("metrics", "confusion", "confusion_png", "predictions").
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = report.metrics
    headline = {
        key: m.get(key) for key in ("accuracy", "macro_f1", "weighted_f1", "ece", "log_loss", "n_docs")
    }
    metrics = {
        **headline,
        "n_folds": report.n_folds,
        "n_classes": len(report.classes),
        "per_class": m["per_class"],
    }
    paths = {
        "metrics": out_dir / "metrics.json",
        "confusion": out_dir / "confusion.json",
        "confusion_png": out_dir / "confusion.png",
        "predictions": out_dir / "predictions.json",
    }
    _write_json(paths["metrics"], metrics)
    rows = [{"actual": t, "predicted": p} for t, p in zip(report.y_true, report.y_pred, strict=True)]
    _write_json(paths["confusion"], rows)
    confusion_matrix_png(m["confusion_matrix"], report.classes, paths["confusion_png"])
    predictions = [
        {
            "sha256": report.sha256[i],
            "name": report.names[i],
            "actual": report.y_true[i],
            "predicted": report.y_pred[i],
            "confidence": _round(report.proba[i].max()),
            "scores": {c: _round(report.proba[i, j]) for j, c in enumerate(report.classes)},
            "fold": report.fold[i],
        }
        for i in range(len(report.y_true))
    ]
    _write_json(paths["predictions"], predictions)
    return paths


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def learning_curve(
    make_model_by_name: Mapping[str, Callable[[], Estimator]],
    docs: Sequence[Document],
    labels: Sequence[str],
    *,
    sizes: Sequence[int],
    draws: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Accuracy and macro-F1 of each candidate when trained on n documents per class.

    Each draw samples min(n, class size - 1) training documents from every class (so every class keeps at
    least one test document) and tests on all the others; every candidate sees the same draws. A candidate
    that raises :class:`CandidateUnavailable` is recorded as skipped, with the reason, for every draw.

    Args:
        make_model_by_name: candidate name -> factory of a fresh unfitted estimator.
        docs: documents.
        labels: one label per document.
        sizes: requested training documents per class.
        draws: random draws per size.
        seed: seed of the draws.

    Returns:
        One row per (size, draw, candidate): ``candidate``, ``size``, ``draw``, ``n_per_class`` (actual n used
        per class), ``n_train``, ``n_test``, ``status`` ("ok" / "skipped") and for "ok" ``accuracy``,
        ``macro_f1``, ``fit_seconds``; for "skipped" ``reason``.

    Raises:
        ValueError: fewer than 2 classes or a class with fewer than 2 documents.
    """
    docs, labels, classes = _checked_dataset(docs, labels)
    y = np.asarray(labels)
    members = {c: np.flatnonzero(y == c) for c in classes}
    unavailable: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for size_index, size in enumerate(sizes):
        for draw in range(draws):
            rng = np.random.default_rng([seed, size_index, draw])
            n_used = {c: int(min(size, len(members[c]) - 1)) for c in classes}
            train_idx = np.sort(
                np.concatenate([rng.choice(members[c], size=n_used[c], replace=False) for c in classes])
            )
            test_idx = np.setdiff1d(np.arange(len(docs)), train_idx)
            train_docs = [docs[i] for i in train_idx]
            train_labels = [labels[i] for i in train_idx]
            test_docs = [docs[i] for i in test_idx]
            test_labels = [labels[i] for i in test_idx]
            base = {
                "size": int(size),
                "draw": draw,
                "n_per_class": n_used,
                "n_train": len(train_idx),
                "n_test": len(test_idx),
            }
            for name, make_model in make_model_by_name.items():
                row = {"candidate": name, **base}
                if name in unavailable:
                    rows.append({**row, "status": "skipped", "reason": unavailable[name]})
                    continue
                started = time.perf_counter()
                try:
                    model = make_model().fit(train_docs, train_labels)
                except CandidateUnavailable as exc:
                    unavailable[name] = exc.reason
                    rows.append({**row, "status": "skipped", "reason": exc.reason})
                    continue
                fit_seconds = time.perf_counter() - started
                predicted = [str(p) for p in model.predict(test_docs)]
                rows.append(
                    {
                        **row,
                        "status": "ok",
                        "accuracy": _round(accuracy_score(test_labels, predicted)),
                        "macro_f1": _round(
                            f1_score(test_labels, predicted, labels=classes, average="macro", zero_division=0)
                        ),
                        "fit_seconds": round(fit_seconds, 4),
                    }
                )
    return rows

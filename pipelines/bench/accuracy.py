"""Accuracy protocols of the benchmark (issue 11): every candidate beside the plain reference, on the same splits.

- (a) draws: ``size`` training documents per class (``class size - 1`` for smaller classes, so every class keeps
  a test document), the rest is the test set, ``draws`` seeded draws per size;
- (b) source held out: each source is in turn the test set of a model trained on every other source; documents
  whose class has no document from another source cannot be predicted and are reported as skipped;
- (c) selective accuracy: the risk-coverage curve of each candidate's confidence, and the accuracy and share of
  the answers the shipped prediction code does not flag ``needs_review``.

Every candidate of a protocol is fitted on exactly the same training documents and tested on exactly the same
test documents as the reference, so differences are paired. Candidates choose their own parameters by inner
cross-validation on the training part (nothing here looks at a test split before predicting it).
Pure functions: the driver (:mod:`pipelines.bench.run`) does the I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, recall_score

from pipelines.document import Document
from pipelines.evaluate import check_classes
from pipelines.models import CandidateUnavailable
from pipelines.predict import ReviewRule, predict_documents

REFERENCE = "reference"
DRAWS = "draws"
SOURCE = "source_held_out"
_DECIMALS = 4

Estimator = Any  # fit(docs, labels) -> self; the interface pipelines.predict.predict_documents uses
Factory = Callable[[], Estimator]


@dataclass(frozen=True)
class Split:
    """One train/test split of a protocol, shared by every candidate.

    Attributes:
        protocol: :data:`DRAWS` or :data:`SOURCE`.
        key: unique name inside the protocol ("15/3" = size 15, draw 3; the source name for (b)).
        train: indices of the training documents.
        test: indices of the test documents.
        info: protocol details (size, draw, documents used per class; or the held-out source).
    """

    protocol: str
    key: str
    train: np.ndarray
    test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What one candidate did on one split: ``ok`` with its answers, ``skipped`` or ``failed`` with the reason."""

    candidate: str
    protocol: str
    key: str
    status: str
    reason: str | None = None
    predicted: list[str] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    # what needs_review is read from: the confidence, or the model's own score (pipelines.predict)
    review_score: list[float] = field(default_factory=list)
    needs_review: list[bool] = field(default_factory=list)
    review_threshold: float | None = None
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0


# --------------------------------------------------------------------------------------------- splits


def draw_splits(
    labels: Sequence[str], sizes: Sequence[int], draws: int, seed: int
) -> tuple[list[Split], dict[str, dict[str, int]]]:
    """Protocol (a): per size and draw, ``min(size, class size - 1)`` training documents of every class.

    The draw of (size, draw) is seeded with ``[seed, size, draw]``, so adding a size changes no other draw.

    Returns:
        The splits (size-major) and, per size, the classes trained on fewer documents than asked
        ({size: {class: documents used}}).

    Raises:
        ValueError: fewer than 2 classes, a class with fewer than 2 documents, a size below 1 or draws below 1.
    """
    classes, _ = check_classes(labels)
    if draws < 1 or not sizes or min(sizes) < 1:
        raise ValueError(f"expected draws >= 1 and sizes >= 1, found draws {draws} and sizes {list(sizes)}")
    y = np.asarray([str(label) for label in labels])
    members = {c: np.flatnonzero(y == c) for c in classes}
    splits: list[Split] = []
    reduced: dict[str, dict[str, int]] = {}
    for size in sizes:
        n_used = {c: int(min(size, len(members[c]) - 1)) for c in classes}
        small = {c: n for c, n in n_used.items() if n < size}
        if small:
            reduced[str(size)] = small
        for draw in range(draws):
            rng = np.random.default_rng([seed, int(size), draw])
            train = np.sort(
                np.concatenate([rng.choice(members[c], size=n_used[c], replace=False) for c in classes])
            )
            test = np.setdiff1d(np.arange(len(y)), train)
            info = {"size": int(size), "draw": draw, "n_per_class": n_used}
            splits.append(Split(DRAWS, f"{size}/{draw}", train, test, info))
    return splits, reduced


def source_splits(labels: Sequence[str], sources: Sequence[str]) -> tuple[list[Split], list[dict[str, Any]]]:
    """Protocol (b): each source is the test set of a model trained on every other source.

    A test document whose class has no training document (every document of that class comes from the
    held-out source) cannot be predicted: it is skipped and reported. A source whose complement has fewer
    than 2 classes gives no split; its documents are reported too.

    Returns:
        The splits (sorted by source) and the skipped documents (``index``, ``source``, ``label``, ``reason``).

    Raises:
        ValueError: ``sources`` and ``labels`` differ in length, or an empty source name.
    """
    y = np.asarray([str(label) for label in labels])
    src = np.asarray([str(s) for s in sources])
    if len(src) != len(y):
        raise ValueError(f"expected one source per document, found {len(src)} sources for {len(y)} documents")
    if any(not s.strip() for s in src):
        raise ValueError("expected a source name for every document, found an empty one")
    splits: list[Split] = []
    skipped: list[dict[str, Any]] = []
    for source in sorted(set(src)):
        held = np.flatnonzero(src == source)
        train = np.flatnonzero(src != source)
        known = set(y[train])
        if len(known) < 2:
            reason = f"the other sources hold {len(known)} class(es): a model needs at least 2"
            skipped += [
                {"index": int(i), "source": source, "label": str(y[i]), "reason": reason} for i in held
            ]
            continue
        test = np.asarray([i for i in held if y[i] in known], dtype=int)
        for i in held:
            if y[i] not in known:
                reason = f"class {str(y[i])!r} has no document from another source"
                skipped.append({"index": int(i), "source": source, "label": str(y[i]), "reason": reason})
        if len(test):
            info = {"source": source, "n_train": len(train), "n_test": len(test)}
            splits.append(Split(SOURCE, source, train, test, info))
    return splits, skipped


# --------------------------------------------------------------------------------------------- evaluation


def shipped_predictions(
    model: Estimator, docs: Sequence[Document], predict_params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The answers production gives (label, confidence, ``needs_review``): the one place the benchmark calls
    the prediction code, so a new review rule is measured as soon as it ships.

    Args:
        model: a fitted candidate.
        docs: documents to classify.
        predict_params: the ``predict:`` section of params.yaml.
    """
    return predict_documents(model, docs, ReviewRule.from_params(predict_params))


def evaluate_split(
    name: str,
    factory: Factory,
    docs: Sequence[Document],
    labels: Sequence[str],
    split: Split,
    predict_params: Mapping[str, Any],
) -> Outcome:
    """Fit candidate ``name`` on the split's training documents and answer its test documents.

    A candidate that cannot run here (:class:`CandidateUnavailable`) is ``skipped``; one that rejects the
    training data (``ValueError``) has ``failed`` on this split, with the message.
    """
    outcome = Outcome(candidate=name, protocol=split.protocol, key=split.key, status="ok")
    started = time.perf_counter()
    try:
        model = factory().fit([docs[i] for i in split.train], [str(labels[i]) for i in split.train])
    except CandidateUnavailable as error:
        outcome.status, outcome.reason = "skipped", error.reason
        return outcome
    except ValueError as error:
        outcome.status, outcome.reason = "failed", f"fit: {error}"
        return outcome
    outcome.fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    answers = shipped_predictions(model, [docs[i] for i in split.test], predict_params)
    outcome.predict_seconds = time.perf_counter() - started
    outcome.predicted = [str(a["label"]) for a in answers]
    outcome.confidence = [float(a["confidence"]) for a in answers]
    outcome.review_score = [float(a["review_score"]) for a in answers]
    outcome.needs_review = [bool(a["needs_review"]) for a in answers]
    threshold = answers[0].get("review_threshold") if answers else None
    outcome.review_threshold = None if threshold is None else float(threshold)
    return outcome


def run_splits(
    factories: Mapping[str, Factory],
    docs: Sequence[Document],
    labels: Sequence[str],
    splits: Sequence[Split],
    predict_params: Mapping[str, Any],
    *,
    n_jobs: int = 1,
    log: Callable[[str], None] = print,
) -> list[Outcome]:
    """Every candidate on every split (in ``n_jobs`` processes).

    The first split runs first for every candidate: a candidate unavailable there (e.g. no checkpoint) is
    skipped on the others with the same reason, without trying again.
    """
    if not splits:
        return []
    from joblib import Parallel, delayed

    def batch(tasks: Iterable[tuple[str, Split]]) -> list[Outcome]:
        tasks = list(tasks)
        done: list[Outcome] = []
        step = max(1, len(tasks) // 10)
        jobs = (
            delayed(evaluate_split)(name, factories[name], docs, labels, split, predict_params)
            for name, split in tasks
        )
        for outcome in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            done.append(outcome)
            if len(done) % step == 0 or len(done) == len(tasks):
                log(f"  {splits[0].protocol}: {len(done)}/{len(tasks)} fits")
        return done

    first = batch((name, splits[0]) for name in factories)
    unavailable = {o.candidate: o.reason for o in first if o.status == "skipped"}
    for name, reason in unavailable.items():
        log(f"  {name} skipped: {reason}")
    rest = batch((name, split) for split in splits[1:] for name in factories if name not in unavailable)
    skipped_rest = [
        Outcome(candidate=name, protocol=split.protocol, key=split.key, status="skipped", reason=reason)
        for split in splits[1:]
        for name, reason in unavailable.items()
    ]
    order = {split.key: i for i, split in enumerate(splits)}
    names = list(factories)
    return sorted(first + rest + skipped_rest, key=lambda o: (order[o.key], names.index(o.candidate)))


# --------------------------------------------------------------------------------------------- statistics


def _round(x: float | np.floating) -> float:
    return round(float(x), _DECIMALS)


def split_metrics(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over ``classes`` and recall of each of ``classes`` (None where it has no document)."""
    y_true = [str(v) for v in y_true]
    y_pred = [str(v) for v in y_pred]
    classes = [str(c) for c in classes]
    recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=np.nan)
    return {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if y_true else float("nan"),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "recall": {c: (None if math.isnan(r) else float(r)) for c, r in zip(classes, recall, strict=True)},
    }


def paired_difference(candidate: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    """Mean of the paired differences ``candidate - reference``, their sample standard deviation and a 95%
    Student-t interval of the mean (None with fewer than 2 pairs)."""
    from scipy.stats import t as student_t

    d = np.asarray(candidate, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    n = len(d)
    if n == 0:
        return {"mean": None, "sd": None, "ci95": None, "n": 0}
    mean = float(d.mean())
    if n < 2:
        return {"mean": _round(mean), "sd": None, "ci95": None, "n": n}
    sd = float(d.std(ddof=1))
    half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {
        "mean": _round(mean),
        "sd": _round(sd),
        "ci95": [_round(mean - half), _round(mean + half)],
        "n": n,
    }


def risk_coverage(
    confidence: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray
) -> dict[str, list[float]]:
    """The risk-coverage curve: answering only documents with confidence >= t, for every distinct t.

    Returns:
        ``threshold`` (descending), ``coverage`` (share answered) and ``risk`` (share of the answered that
        are wrong), one point per distinct confidence; empty lists for no documents.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if len(conf) != len(right):
        raise ValueError(f"expected one correctness per confidence, found {len(right)} and {len(conf)}")
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    errors = np.cumsum(~right)
    n = len(conf)
    # the last position of each group of equal confidences: ties are answered (or not) together
    ends = [i for i in range(n) if i == n - 1 or conf[i + 1] != conf[i]]
    return {
        "threshold": [float(conf[i]) for i in ends],
        "coverage": [(i + 1) / n for i in ends],
        "risk": [float(errors[i]) / (i + 1) for i in ends],
    }


def selective_summary(
    confidence: Sequence[float],
    correct: Sequence[bool],
    needs_review: Sequence[bool],
    target_accuracy: float,
) -> dict[str, Any]:
    """Selective accuracy of pooled answers.

    Returns:
        ``unflagged_accuracy`` (share right among answers not flagged ``needs_review``; None when all are
        flagged), ``unflagged_share``, ``n``, ``coverage_at_target`` (the largest coverage of the
        risk-coverage curve whose accuracy reaches ``target_accuracy``: what a perfect choice of threshold
        would leave unflagged), ``aurc`` (area under the risk-coverage curve) and the ``curve``.
    """
    right = np.asarray(correct, dtype=bool)
    flagged = np.asarray(needs_review, dtype=bool)
    n = len(right)
    curve = risk_coverage(confidence, right)
    unflagged = ~flagged
    reachable = [c for c, r in zip(curve["coverage"], curve["risk"], strict=True) if 1 - r >= target_accuracy]
    steps = np.diff([0.0, *curve["coverage"]])
    return {
        "unflagged_accuracy": _round(right[unflagged].mean()) if unflagged.any() else None,
        "unflagged_share": _round(unflagged.mean()) if n else None,
        "n": n,
        "coverage_at_target": _round(max(reachable, default=0.0)),
        "target_accuracy": target_accuracy,
        "aurc": _round(float(np.dot(steps, curve["risk"]))) if n else None,
        "curve": {key: [_round(v) for v in values] for key, values in curve.items()},
    }


def _mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return _round(float(np.mean(values))), (
        _round(float(np.std(values, ddof=1))) if len(values) > 1 else None
    )


def _correct(outcome: Outcome, split: Split, labels: Sequence[str]) -> list[bool]:
    return [str(labels[i]) == p for i, p in zip(split.test, outcome.predicted, strict=True)]


def summarise_draws(
    outcomes: Sequence[Outcome],
    splits: Sequence[Split],
    labels: Sequence[str],
    *,
    target_accuracy: float,
) -> dict[str, dict[str, Any]]:
    """Protocol (a) per size and candidate: accuracy and macro-F1 (mean, sd over draws), mean recall per class,
    paired difference of accuracy to the reference over the draws, selective accuracy pooled over draws."""
    classes, _ = check_classes(labels)
    by_key = {split.key: split for split in splits}
    sizes = sorted({split.info["size"] for split in splits})
    ok = [o for o in outcomes if o.status == "ok"]
    reference = {
        o.key: split_metrics([labels[i] for i in by_key[o.key].test], o.predicted, classes)["accuracy"]
        for o in ok
        if o.candidate == REFERENCE
    }
    out: dict[str, dict[str, Any]] = {}
    for size in sizes:
        cell: dict[str, Any] = {}
        for name in dict.fromkeys(o.candidate for o in outcomes):
            mine = [o for o in ok if o.candidate == name and by_key[o.key].info["size"] == size]
            others = [o for o in outcomes if o.candidate == name and by_key[o.key].info["size"] == size]
            if not mine:
                cell[name] = {"status": "skipped", "reason": next((o.reason for o in others), None)}
                continue
            metrics = [
                split_metrics([labels[i] for i in by_key[o.key].test], o.predicted, classes) for o in mine
            ]
            acc = [m["accuracy"] for m in metrics]
            f1 = [m["macro_f1"] for m in metrics]
            acc_mean, acc_sd = _mean_sd(acc)
            f1_mean, f1_sd = _mean_sd(f1)
            paired = [(a, reference[o.key]) for a, o in zip(acc, mine, strict=True) if o.key in reference]
            correct = [c for o in mine for c in _correct(o, by_key[o.key], labels)]
            cell[name] = {
                "status": "ok",
                "draws": len(mine),
                "failed": {o.key: o.reason for o in others if o.status == "failed"},
                "accuracy_mean": acc_mean,
                "accuracy_sd": acc_sd,
                "macro_f1_mean": f1_mean,
                "macro_f1_sd": f1_sd,
                "recall": {
                    c: _round(np.mean([m["recall"][c] for m in metrics if m["recall"][c] is not None]))
                    for c in classes
                },
                "diff_vs_reference": paired_difference([p[0] for p in paired], [p[1] for p in paired]),
                "selective": selective_summary(
                    [c for o in mine for c in o.review_score],
                    correct,
                    [f for o in mine for f in o.needs_review],
                    target_accuracy,
                ),
                "per_draw": {o.key: _round(a) for o, a in zip(mine, acc, strict=True)},
                "fit_seconds_mean": _round(np.mean([o.fit_seconds for o in mine])),
                "predict_seconds_mean": _round(np.mean([o.predict_seconds for o in mine])),
            }
        out[str(size)] = cell
    return out


def summarise_sources(
    outcomes: Sequence[Outcome],
    splits: Sequence[Split],
    labels: Sequence[str],
    *,
    target_accuracy: float,
) -> dict[str, Any]:
    """Protocol (b) per candidate, pooled over the held-out sources (each evaluated document answered once).

    Accuracy comes with its binomial standard error over documents and the standard deviation of the
    per-source accuracies; the difference to the reference is paired per document (1 right - 1 right etc.)
    with a 95% Student-t interval; macro-F1 and recall are over the classes of the evaluated documents.
    """
    by_key = {split.key: split for split in splits}
    evaluated = [str(labels[i]) for split in splits for i in split.test]
    classes = sorted(set(evaluated))
    ref_correct = {
        o.key: _correct(o, by_key[o.key], labels)
        for o in outcomes
        if o.candidate == REFERENCE and o.status == "ok"
    }
    out: dict[str, Any] = {}
    for name in dict.fromkeys(o.candidate for o in outcomes):
        mine = [o for o in outcomes if o.candidate == name]
        ok = [o for o in mine if o.status == "ok"]
        if not ok:
            out[name] = {"status": "skipped", "reason": next((o.reason for o in mine), None)}
            continue
        y_true = [str(labels[i]) for o in ok for i in by_key[o.key].test]
        y_pred = [p for o in ok for p in o.predicted]
        correct = [c for o in ok for c in _correct(o, by_key[o.key], labels)]
        metrics = split_metrics(y_true, y_pred, classes)
        per_source = {o.key: _round(np.mean(_correct(o, by_key[o.key], labels))) for o in ok}
        paired_c = [c for o in ok if o.key in ref_correct for c in _correct(o, by_key[o.key], labels)]
        paired_r = [c for o in ok if o.key in ref_correct for c in ref_correct[o.key]]
        p = metrics["accuracy"]
        out[name] = {
            "status": "ok",
            "sources": len(ok),
            "failed": {o.key: o.reason for o in mine if o.status == "failed"},
            "n": len(y_true),
            "accuracy": _round(p),
            "accuracy_se": _round(math.sqrt(p * (1 - p) / len(y_true))),
            "accuracy_sd_over_sources": _mean_sd(list(per_source.values()))[1],
            "macro_f1": _round(metrics["macro_f1"]),
            "recall": {c: (None if r is None else _round(r)) for c, r in metrics["recall"].items()},
            "diff_vs_reference": paired_difference(
                [float(c) for c in paired_c], [float(r) for r in paired_r]
            ),
            "selective": selective_summary(
                [c for o in ok for c in o.review_score],
                correct,
                [f for o in ok for f in o.needs_review],
                target_accuracy,
            ),
            "per_source": per_source,
            "fit_seconds_mean": _round(np.mean([o.fit_seconds for o in ok])),
        }
    return out


def prediction_rows(
    outcomes: Sequence[Outcome], splits: Sequence[Split], docs: Sequence[Document], labels: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per answered test document: protocol, split, candidate, document, true and predicted label,
    confidence, needs_review and the review threshold the model applied (for looking at the errors)."""
    by_key = {(split.protocol, split.key): split for split in splits}
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        if o.status != "ok":
            continue
        split = by_key[(o.protocol, o.key)]
        for i, predicted, confidence, score, review in zip(
            split.test, o.predicted, o.confidence, o.review_score, o.needs_review, strict=True
        ):
            rows.append(
                {
                    "protocol": o.protocol,
                    "split": o.key,
                    "candidate": o.candidate,
                    "name": docs[i].name,
                    "sha256": docs[i].sha256,
                    "true": str(labels[i]),
                    "predicted": predicted,
                    "confidence": _round(confidence),
                    "review_score": _round(score),
                    "needs_review": review,
                    "review_threshold": o.review_threshold,
                }
            )
    return rows

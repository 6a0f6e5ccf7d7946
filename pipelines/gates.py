"""Promotion decisions: accuracy gates and champion comparison. Pure functions, no registry access.

The flow measures; these functions decide. Gates fail closed: a missing or non-numeric metric is a failure with
a reason, never a silent pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.params import GateParams, validate_section


@dataclass(frozen=True)
class ForwardAccuracy:
    """The champion's accuracy on newly labelled documents it has never seen, beside the candidate's.

    Attributes:
        n_docs: new documents (not in the champion's training set).
        champion_correct: how many the champion classified correctly.
        candidate_correct: how many the candidate classified correctly out of fold (None when unknown).
    """

    n_docs: int
    champion_correct: int
    candidate_correct: int | None = None

    @property
    def champion(self) -> float | None:
        """Forward accuracy of the champion (None without new documents)."""
        return self.champion_correct / self.n_docs if self.n_docs else None

    @property
    def candidate(self) -> float | None:
        """Out-of-fold accuracy of the candidate on the same new documents."""
        if not self.n_docs or self.candidate_correct is None:
            return None
        return self.candidate_correct / self.n_docs


def forward_accuracy(
    y_true: Sequence[str],
    champion_pred: Sequence[str],
    candidate_pred: Sequence[str] | None = None,
) -> ForwardAccuracy:
    """Count correct predictions of the champion (and the candidate) on the new documents.

    Args:
        y_true: labels of the new documents.
        champion_pred: the champion's predictions for them.
        candidate_pred: the candidate's out-of-fold predictions for them, if known.

    Raises:
        ValueError: the sequences differ in length.
    """
    if len(champion_pred) != len(y_true) or (
        candidate_pred is not None and len(candidate_pred) != len(y_true)
    ):
        raise ValueError(
            f"expected one prediction per new document ({len(y_true)}), found {len(champion_pred)} champion and "
            f"{'no' if candidate_pred is None else len(candidate_pred)} candidate predictions"
        )
    champion = sum(str(p) == str(t) for p, t in zip(champion_pred, y_true, strict=True))
    candidate = None
    if candidate_pred is not None:
        candidate = sum(str(p) == str(t) for p, t in zip(candidate_pred, y_true, strict=True))
    return ForwardAccuracy(len(y_true), champion, candidate)


def _number(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    value = (metrics or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def check_thresholds(thresholds: Mapping[str, Any]) -> dict[str, float]:
    """The ``gate:`` section of params.yaml, validated by its model (:class:`pipelines.params.GateParams`).

    Raises:
        ParamsError: a key is unknown, missing or not a number in [0, 1].
    """
    return validate_section(GateParams, thresholds, "gate").model_dump()


def check_gates(
    metrics: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    champion_metrics: Mapping[str, Any] | None = None,
    forward: ForwardAccuracy | None = None,
) -> list[str]:
    """Reasons why a candidate must not be promoted; an empty list means it passes.

    Args:
        metrics: the candidate's cross-validated metrics (``accuracy``, ``macro_f1``, ``per_class`` with ``recall``).
        thresholds: ``min_accuracy``, ``min_macro_f1``, ``min_class_recall``, ``max_regression``.
        champion_metrics: the champion measured on the same data (same documents, same folds); None without one.
        forward: the champion's forward accuracy on new documents beside the candidate's out-of-fold accuracy
            on them; None without a champion or new documents.

    Returns:
        Human-readable reasons, each saying what was expected and what was found.

    Raises:
        ValueError: malformed thresholds (see :func:`check_thresholds`).
    """
    limits = check_thresholds(thresholds)
    tolerance = limits["max_regression"]
    reasons: list[str] = []
    for key, floor in (("accuracy", limits["min_accuracy"]), ("macro_f1", limits["min_macro_f1"])):
        value = _number(metrics, key)
        if value is None:
            reasons.append(f"{key} missing: expected a number >= {floor:.3f}")
        elif value < floor:
            reasons.append(f"{key} {value:.3f} below the minimum {floor:.3f}")
    per_class = metrics.get("per_class")
    if not isinstance(per_class, Mapping) or not per_class:
        reasons.append("per-class recall missing: expected a recall for every class")
    else:
        for label in sorted(per_class):
            recall = _number(per_class[label], "recall") if isinstance(per_class[label], Mapping) else None
            if recall is None:
                reasons.append(
                    f"recall of class {label!r} missing: expected >= {limits['min_class_recall']:.3f}"
                )
            elif recall < limits["min_class_recall"]:
                reasons.append(
                    f"recall of class {label!r} {recall:.3f} below the floor {limits['min_class_recall']:.3f}"
                )
    if champion_metrics is not None:
        for key in ("accuracy", "macro_f1"):
            mine, theirs = _number(metrics, key), _number(champion_metrics, key)
            if theirs is None:
                reasons.append(f"champion {key} on the same data missing: cannot rule out a regression")
            elif mine is not None and mine < theirs - tolerance:
                reasons.append(
                    f"{key} {mine:.3f} regresses against the champion's {theirs:.3f} on the same data "
                    f"(tolerance {tolerance:.3f})"
                )
    if forward is not None and forward.n_docs:
        champion, candidate = forward.champion, forward.candidate
        if candidate is None:
            reasons.append(
                f"candidate accuracy on the {forward.n_docs} new documents missing: cannot compare with the "
                f"champion's forward accuracy {champion:.3f}"
            )
        elif champion is not None and candidate < champion - tolerance:
            reasons.append(
                f"accuracy {candidate:.3f} on the {forward.n_docs} new documents regresses against the "
                f"champion's forward accuracy {champion:.3f} (tolerance {tolerance:.3f})"
            )
    return reasons


def should_promote(
    candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, tolerance: float
) -> bool:
    """Whether a candidate that passed its gates should replace the champion.

    Both are measured on the same data. A candidate trained on more data wins ties and differences within
    ``tolerance``; without a champion any passing candidate is promoted. Missing candidate metrics: no.
    """
    mine_f1, mine_acc = _number(candidate, "macro_f1"), _number(candidate, "accuracy")
    if mine_f1 is None or mine_acc is None:
        return False
    if champion is None:
        return True
    theirs_f1, theirs_acc = _number(champion, "macro_f1"), _number(champion, "accuracy")
    if theirs_f1 is None or theirs_acc is None:
        return True  # a champion we cannot measure is no reason to keep it
    return mine_f1 >= theirs_f1 - tolerance and mine_acc >= theirs_acc - tolerance

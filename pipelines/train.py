"""Choose the best candidate by cross-validation and fit it on all labelled documents."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pipelines.document import Document
from pipelines.evaluate import EvalReport, cross_validate
from pipelines.models import CandidateUnavailable, make_candidate

logger = logging.getLogger(__name__)


@dataclass
class CandidateResult:
    """Cross-validation outcome of one candidate: ``ok`` with a report, or ``skipped`` with the reason."""

    name: str
    status: str
    reason: str | None = None
    report: EvalReport | None = None
    seconds: float = 0.0

    @property
    def metrics(self) -> dict[str, Any]:
        """The cross-validation metrics of an evaluated candidate.

        Raises:
            ValueError: the candidate was skipped (it has no report).
        """
        if self.report is None:
            raise ValueError(f"candidate {self.name} was not evaluated: {self.reason or 'no report'}")
        return self.report.metrics

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "candidate": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
        }
        if self.reason:
            row["reason"] = self.reason
        if self.report is not None:
            row.update({key: self.report.metrics[key] for key in ("accuracy", "macro_f1", "ece")})
        return row


@dataclass
class TrainResult:
    """The fitted best model, its name, and every candidate's cross-validated result."""

    model: Any
    candidate: str
    results: list[CandidateResult] = field(default_factory=list)

    @property
    def best(self) -> CandidateResult:
        return next(result for result in self.results if result.name == self.candidate)


def select_best(results: Sequence[CandidateResult]) -> CandidateResult:
    """Highest macro-F1, then accuracy, then lowest calibration error; ties go to the earlier candidate.

    Raises:
        ValueError: no candidate could be evaluated.
    """
    evaluated = [result for result in results if result.status == "ok" and result.report is not None]
    if not evaluated:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in results)
        raise ValueError(f"no candidate could be trained: {reasons or 'no candidates configured'}")
    return max(
        evaluated,
        key=lambda r: (r.metrics["macro_f1"], r.metrics["accuracy"], -r.metrics["ece"]),
    )


def train_best(
    docs: Sequence[Document],
    labels: Sequence[str],
    train_params: Mapping[str, Any],
    *,
    seed: int,
    ece_bins: int,
    candidates: Sequence[str] | None = None,
    on_result: Callable[[CandidateResult], None] | None = None,
) -> TrainResult:
    """Cross-validate each candidate, pick the best, and fit it on all documents.

    Args:
        docs: extracted documents.
        labels: one label per document.
        train_params: the ``train:`` section of params.yaml.
        seed: the global seed.
        ece_bins: bins for expected calibration error.
        candidates: names to try (default: ``train_params["candidates"]``).
        on_result: called after each candidate (progress reporting).

    Returns:
        The fitted model with all candidates' results.
    """
    names = list(candidates or train_params["candidates"])
    results: list[CandidateResult] = []
    for name in names:
        started = time.perf_counter()
        try:
            report = cross_validate(
                partial(make_candidate, name, train_params, seed),
                docs,
                labels,
                seed=seed,
                max_folds=int(train_params["max_folds"]),
                ece_bins=ece_bins,
            )
        except CandidateUnavailable as error:
            logger.warning("candidate %s skipped: %s", name, error.reason)
            result = CandidateResult(name, "skipped", reason=error.reason)
        else:
            result = CandidateResult(name, "ok", report=report)
        result.seconds = time.perf_counter() - started
        results.append(result)
        if on_result is not None:
            on_result(result)
    best = select_best(results)
    model = make_candidate(best.name, train_params, seed).fit(list(docs), list(labels))
    return TrainResult(model=model, candidate=best.name, results=results)

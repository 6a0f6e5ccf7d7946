"""Pre-annotations: the current model's guess on unlabelled tasks, so annotators confirm instead of choose.

With the project's ``model_version`` set to the predictions' version, Label Studio shows the guess pre-selected,
and uncertainty sampling serves the lowest-score (least certain) tasks first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.config import config_classes
from labeling.convert import is_skip, prediction_result
from labeling.project import export_tasks, require_project
from labeling.pull import NOT_IMPORTED, find_original

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

logger = logging.getLogger(__name__)

# Given document files, returns (label, score) per file, in order; score in [0, 1], the model's confidence.
Predictor = Callable[[Sequence[Path]], list[tuple[str, float]]]


@dataclass
class PreannotateReport:
    """What `labeling preannotate` did."""

    predicted: list[int] = field(default_factory=list)  # task ids
    already_predicted: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (task id, reason)


def is_labelled(task: dict[str, Any]) -> bool:
    """A task with at least one annotation that is not a skip."""
    return any(not is_skip(a) and a.get("result") for a in task.get("annotations") or [])


def preannotate(
    client: LabelStudio,
    project_title: str,
    predict: Predictor,
    model_version: str,
    originals_dir: Path,
    batch_size: int = 16,
    on_task: Callable[[int], None] | None = None,
) -> PreannotateReport:
    """Push predictions (class, score, model version) for unlabelled tasks and set the project's model version.

    Tasks that already have a prediction of ``model_version`` are left alone (re-running is cheap). A predicted
    class that is not in the project config is skipped with a reason.

    Raises:
        LabelingError: no such project.
    """
    project = require_project(client, project_title)
    classes = config_classes(project.label_config)
    report = PreannotateReport()
    todo: list[tuple[int, Path]] = []
    # The export lists prediction ids only: ask for the predictions of this version.
    predicted = {
        p.task for p in client.predictions.list(project=project.id) if p.model_version == model_version
    }
    for task in export_tasks(client, project.id):
        task_id = int(task["id"])
        if is_labelled(task):
            continue
        if task_id in predicted:
            report.already_predicted.append(task_id)
            continue
        try:
            original = find_original(originals_dir, str((task.get("data") or {}).get("sha256", "")))
        except ValueError as error:  # a crafted data.sha256: this task is skipped, the others go on
            report.skipped.append((task_id, str(error)))
            continue
        if original is None:
            report.skipped.append((task_id, NOT_IMPORTED))
            continue
        todo.append((task_id, original))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        for (task_id, _), (label, score) in zip(chunk, predict([path for _, path in chunk]), strict=True):
            if not label:
                report.skipped.append((task_id, "the model could not read the document"))
            elif label not in classes:
                report.skipped.append(
                    (task_id, f"predicted class {label!r} is not in the project config {classes}")
                )
            else:
                client.predictions.create(
                    task=task_id,
                    result=prediction_result(label),
                    score=float(score),
                    model_version=model_version,
                )
                report.predicted.append(task_id)
            if on_task is not None:
                on_task(task_id)
    if report.predicted or report.already_predicted:
        client.projects.update(id=project.id, model_version=model_version)
    for task_id, reason in report.skipped:
        logger.warning("task %s not pre-annotated: %s", task_id, reason)
    return report


def model_predictor(
    model_dir: Path, params: dict[str, Any], cache_dir: Path
) -> tuple[Predictor, dict[str, Any]]:
    """A :data:`Predictor` backed by a model written by `docclass train`, with the model's metadata.

    A document that cannot be read predicts nothing useful: it gets label ``""`` (skipped with a reason).
    """
    from pipelines.classify import Classified, classify_inputs
    from pipelines.extract import ExtractConfig, ExtractionCache
    from pipelines.ingest import Limits
    from pipelines.models import load_model
    from pipelines.predict import ReviewRule

    model, meta = load_model(model_dir)
    config = ExtractConfig.from_params(params["extract"])
    limits = Limits.from_params(params["ingest"])
    cache = ExtractionCache(cache_dir)
    # a pre-annotation's score is the top class's probability (Label Studio's uncertainty sampling orders by it)
    review = ReviewRule.from_params(params["predict"])

    def predict(paths: Sequence[Path]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        for outcomes in classify_inputs(model, paths, config, limits, review, cache=cache):
            # An original is one document; anything else (unreadable, an archive) predicts nothing.
            found = outcomes[0] if len(outcomes) == 1 else None
            if isinstance(found, Classified):
                out.append((str(found.prediction["label"]), float(found.prediction["confidence"])))
            else:
                out.append(("", 0.0))
        return out

    return predict, meta

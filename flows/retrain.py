"""The retraining loop: every ``loop.retrain_every`` labels (20) become a registered, auditable version.

pull labels -> milestones not yet versioned -> for each: snapshot exactly the first 20*N labels -> round (snapshot
in DVC, train, evaluate, register, gate, promote) -> push pre-annotations from the champion -> notify.

Idempotent: a milestone is versioned once (tag ``loop_milestone`` on the version), and a round is itself
idempotent by dataset md5, so a rerun after a crash completes what is missing and creates no duplicate. Runs are
serialised by a file lock (the deployment's runs, scheduled or asked for by the webhook trigger, and `docclass
flows run` share it), and Label Studio / MLflow connection errors are retried with exponential backoff (Prefect task
retries).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.notify import Delivery, NotifyConfig, VersionSummary, notify
from flows.registry import MODEL_DIR, Registry, RegistryError, format_version

if TYPE_CHECKING:
    from flows.settings import Settings
    from flows.versions import RoundOutcome, SnapshotStore
    from labeling.convert import LabelRecord
    from labeling.preannotate import PreannotateReport

logger = logging.getLogger(__name__)

MILESTONE_TAG = "loop_milestone"
NOTIFIED_TAG = "loop_notified"
RETRIES = 3


# ------------------------------------------------------------------------------------------- pure helpers


def milestones(n_labels: int, every: int, versioned_label_counts: Iterable[int]) -> list[int]:
    """Label counts ``every * N`` reached by ``n_labels`` and not versioned yet, ascending.

    Raises:
        ValueError: ``every`` is not positive.
    """
    if every <= 0:
        raise ValueError(f"loop.retrain_every must be a positive number of labels: got {every}")
    done = set(versioned_label_counts)
    return [every * k for k in range(1, n_labels // every + 1) if every * k not in done]


def _created(value: str) -> datetime | str:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return value


def label_order(record: LabelRecord) -> tuple[Any, int]:
    """Sort key: annotation creation time, then task id (a relabel keeps its place; a new annotation goes last)."""
    created = _created(record.created_at)
    return (created.timestamp() if isinstance(created, datetime) else float("inf"), int(record.task_id))


def first_n_labels(records: Iterable[LabelRecord], n: int) -> dict[int, LabelRecord]:
    """Exactly the first ``n`` labels in the deterministic order of :func:`label_order`, keyed by task id.

    Raises:
        ValueError: fewer than ``n`` labels.
    """
    ordered = sorted(records, key=label_order)
    if len(ordered) < n:
        raise ValueError(f"milestone of {n} labels needs {n} labelled documents: found {len(ordered)}")
    return {record.task_id: record for record in ordered[:n]}


def usable_labels(
    labels: Mapping[int, LabelRecord], originals_dir: Path, warn: Callable[[str], Any] = logger.warning
) -> dict[int, LabelRecord]:
    """The labels whose task names a document docclass kept (others cannot be in a snapshot).

    Each task left out is reported through ``warn`` with the reason: no original kept, or a ``data.sha256`` that
    is not a document digest (a crafted task must not pull a file from outside the originals folder).
    """
    from labeling.pull import locate_originals

    found, left_out = locate_originals(labels, originals_dir)
    for line in left_out:
        warn(f"labelled {line}: left out")
    return {task_id: labels[task_id] for task_id in found}


def versioned_milestones(versions: Iterable[Any]) -> list[int]:
    """Milestones already versioned: the ``loop_milestone`` tags of complete versions."""
    out = []
    for version in versions:
        value = version.tags.get(MILESTONE_TAG)
        if value and str(value).isdigit() and version.complete:
            out.append(int(value))
    return sorted(out)


def pending_notifications(versions: Iterable[Any]) -> list[int]:
    """Loop versions whose notification has not gone out yet."""
    return [v.number for v in versions if v.tags.get(MILESTONE_TAG) and not v.tags.get(NOTIFIED_TAG)]


def loop_settings(params: Mapping[str, Any]) -> tuple[int, list[str]]:
    """``(retrain_every, candidates)`` from params ``loop:``.

    Raises:
        ParamsError: the ``loop:`` section is missing, or a key of it is unknown, missing or mistyped.
    """
    from pipelines.params import LoopParams, validate_section

    loop = validate_section(LoopParams, params.get("loop"), "loop")
    return loop.retrain_every, list(loop.candidates)


# ------------------------------------------------------------------------------------------ retry policy


def is_connection_error(error: BaseException | None) -> bool:
    """An outage worth retrying: a transport error to Label Studio / MLflow, or a 5xx, anywhere in the chain."""
    import httpx
    import requests

    while error is not None:
        if isinstance(
            error, httpx.TransportError | requests.ConnectionError | requests.Timeout | ConnectionError
        ):
            return True
        status = getattr(error, "status_code", None)
        if isinstance(status, int) and status >= 500:
            return True
        error = error.__cause__ or error.__context__
    return False


class OutageOneLine(logging.Filter):
    """Drops the traceback of a record about an outage (:func:`is_connection_error`): Prefect logs a failed task
    and flow run with theirs, which for a server that does not answer is pages of transport frames around a
    one-line message. Defects keep their tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and is_connection_error(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


def outage_in_one_line() -> None:
    """Install :class:`OutageOneLine` on Prefect's run loggers (once per process)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        run_logger = logging.getLogger(name)
        if not any(isinstance(existing, OutageOneLine) for existing in run_logger.filters):
            run_logger.addFilter(OutageOneLine())


def _retry_on_outage(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - the state's own exception, classified below
        return is_connection_error(error)
    return False


_RETRY: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": _retry_on_outage,
    "cache_policy": NO_CACHE,
}


# ------------------------------------------------------------------------------------------- run liveness

RUNS_DIR = "runs"


def run_lock_path(workdir: Path, flow_run_id: str) -> Path:
    """The file a flow run holds locked for as long as its process lives (see :func:`run_alive`)."""
    return workdir / RUNS_DIR / f"{flow_run_id}.lock"


@contextlib.contextmanager
def run_alive(workdir: Path) -> Iterator[None]:
    """Hold this flow run's lock file while the run lives: the system releases the lock when the process dies,
    however it dies, so a run the Prefect server still shows Running without a holder is dead
    (:func:`is_run_alive`; `docclass flows serve` crashes such runs at start to free the deployment's slot)."""
    from filelock import FileLock
    from prefect.runtime import flow_run

    path = run_lock_path(workdir, str(flow_run.id))
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def is_run_alive(workdir: Path, flow_run_id: str) -> bool:
    """Whether a live process holds the run's lock (False: the run never got this far, or its process died)."""
    from filelock import FileLock, Timeout

    path = run_lock_path(workdir, flow_run_id)
    if not path.exists():
        return False
    try:
        with FileLock(str(path), timeout=0):
            return False
    except Timeout:
        return True


# ------------------------------------------------------------------------------------------------- tasks


@task(name="pull labels", **_RETRY)
def pull_task(settings: Settings, state_file: Path) -> dict[int, LabelRecord]:
    """Every current label that can be in a snapshot (see :func:`usable_labels`)."""
    from labeling.project import make_client
    from labeling.pull import pull_labels

    result = pull_labels(
        make_client(settings.label_studio_url, settings.label_studio_token),
        settings.project_title,
        state_file,
        settings.originals_dir,
        None,
    )
    return usable_labels(result.labels, settings.originals_dir, get_run_logger().warning)


@task(name="versioned milestones", **_RETRY)
def versioned_task(registry: Registry) -> list[int]:
    return versioned_milestones(registry.versions())


@task(name="snapshot first labels", cache_policy=NO_CACHE)
def snapshot_task(labels: Mapping[int, LabelRecord], n: int, originals_dir: Path, out: Path) -> Path:
    """documents + labels.csv of exactly the first ``n`` labels (folder rewritten from scratch)."""
    from labeling.pull import write_snapshot

    if out.exists():
        shutil.rmtree(out)
    missing = write_snapshot(first_n_labels(labels.values(), n), originals_dir, out)
    if missing:
        raise ValueError(f"snapshot of {n} labels lacks documents: {', '.join(missing)}")
    return out


@task(name="training round", **_RETRY)
def round_task(
    dataset_dir: Path,
    params: Mapping[str, Any],
    registry: Registry,
    store: SnapshotStore,
    cache_dir: Path,
    candidates: Sequence[str],
    milestone: int,
) -> RoundOutcome:
    """:func:`flows.versions.run_round` (idempotent by dataset md5), then the milestone tag on its version."""
    from flows.versions import run_round

    log = get_run_logger()
    outcome = run_round(
        dataset_dir, params, registry, store, cache_dir=cache_dir, candidates=candidates, log=log.info
    )
    registry.set_version_tags(outcome.version, {MILESTONE_TAG: milestone})
    return outcome


def preannotate_from_champion(
    settings: Settings, registry: Registry, params: Mapping[str, Any], models_dir: Path
) -> PreannotateReport | None:
    """Pre-annotations of the unlabelled tasks from the champion (None without a champion)."""
    from labeling.preannotate import model_predictor, preannotate
    from labeling.project import make_client
    from pipelines.models.persistence import ModelIntegrityError

    number = registry.champion_number()
    if number is None:
        return None
    target = models_dir / str(number)
    model_dir = target / MODEL_DIR
    try:
        # A copy kept from an earlier run, checked like a fresh download.
        registry.verify_model(number, model_dir)
    except ModelIntegrityError:
        shutil.rmtree(target, ignore_errors=True)
        model_dir = registry.download_model(number, target)  # verified against the registered digest
    predictor, _ = model_predictor(model_dir, dict(params), settings.cache_dir)
    return preannotate(
        make_client(settings.label_studio_url, settings.label_studio_token),
        settings.project_title,
        predictor,
        format_version(number),
        settings.originals_dir,
    )


@task(name="pre-annotate from champion", **_RETRY)
def preannotate_task(
    settings: Settings, registry: Registry, params: Mapping[str, Any], models_dir: Path
) -> PreannotateReport | None:
    return preannotate_from_champion(settings, registry, params, models_dir)


def version_summary(registry: Registry, number: int) -> VersionSummary:
    """What the notification says about version ``number`` (its tags and cross-validation per class)."""
    version = registry.version(number)
    meta = registry.model_meta(number)  # checked against the digest registered with the version
    per_class = {
        label: {key: row.get(key) for key in ("precision", "recall", "f1", "support")}
        for label, row in meta.get("cross_validation", {}).get("per_class", {}).items()
    }
    return VersionSummary(
        version=version.name,
        label_count=int(version.tags.get(MILESTONE_TAG) or version.tags.get("label_count") or 0),
        accuracy=version.metric("accuracy"),
        macro_f1=version.metric("macro_f1"),
        gate=version.tags.get("gate", "unknown"),
        gate_reasons=version.reasons,
        promoted=version.tags.get("promotion") == "promoted",
        candidate=version.tags.get("candidate"),
        per_class=per_class,
        run_id=version.tags.get("round_run_id") or version.run_id,
        experiment_id=registry.experiment_id(),
        model_name=registry.model_name,
    )


@task(name="pending notifications", **_RETRY)
def pending_task(registry: Registry) -> list[VersionSummary]:
    return [version_summary(registry, n) for n in pending_notifications(registry.versions())]


@task(name="notify", cache_policy=NO_CACHE)
def notify_task(summary: VersionSummary, config: NotifyConfig, registry: Registry) -> Delivery:
    """Send; record on the version that it went out (a failed e-mail is retried by the next run, never raised)."""
    delivery = notify(summary, config)
    if delivery.emailed or delivery.email == "disabled":
        try:
            registry.set_version_tags(int(summary.version.partition(".")[2]), {NOTIFIED_TAG: delivery.email})
        except (RegistryError, OSError) as error:
            get_run_logger().warning("could not record the notification of %s: %s", summary.version, error)
    return delivery


# -------------------------------------------------------------------------------------------------- flow


@flow(name="retrain", log_prints=False)
def retrain(
    params: dict[str, Any] | None = None,
    params_path: str | None = None,
    notify_config: dict[str, Any] | None = None,
    lock_timeout_s: float = 3600.0,
) -> list[dict[str, Any]]:
    """Pull labels, make a version per missing milestone, pre-annotate from the champion, notify.

    Args:
        params: params.yaml as loaded, validated again here (default: read ``params_path``, else the
            ``DOCCLASS_PARAMS`` setting, else ./params.yaml).
        params_path: params.yaml to read when ``params`` is not given.
        notify_config: notification settings (see :meth:`NotifyConfig.from_dict`); default from the environment.
        lock_timeout_s: how long to wait for a run already in progress.

    Returns:
        One row per version made by this run (empty when nothing was due).
    """
    from filelock import FileLock

    from flows.registry import bound_mlflow_retries
    from flows.settings import Settings
    from flows.versions import open_registry_and_store
    from pipelines.params import load_params, validate_params

    bound_mlflow_retries()
    outage_in_one_line()
    settings = Settings()
    if params is None:
        params = load_params(Path(params_path) if params_path else settings.params)
    else:  # a flow parameter: the same checks as the file
        params = validate_params(params, "the params given to the retrain flow")
    every, candidates = loop_settings(params)
    config = (
        NotifyConfig.from_dict(notify_config)
        if notify_config is not None
        else NotifyConfig.from_settings(settings)
    )
    workdir = settings.data_dir / "loop"
    workdir.mkdir(parents=True, exist_ok=True)
    log = get_run_logger()
    rows: list[dict[str, Any]] = []
    with run_alive(workdir), FileLock(str(workdir / "retrain.lock"), timeout=lock_timeout_s):
        labels = pull_task(settings, workdir / "pull-state.json")
        registry, store = open_registry_and_store(settings)
        due = milestones(len(labels), every, versioned_task(registry))
        log.info("%d labels; milestones to version: %s", len(labels), due or "none")
        for n in due:
            dataset_dir = snapshot_task(labels, n, settings.originals_dir, workdir / "snapshots" / str(n))
            outcome = round_task(dataset_dir, params, registry, store, settings.cache_dir, candidates, n)
            rows.append({**outcome.row(), "milestone": n})
            log.info(
                "milestone %d -> version %s (gate %s)", n, format_version(outcome.version), rows[-1]["gate"]
            )
        preannotated = preannotate_task(settings, registry, params, workdir / "models", return_state=True)
        for summary in pending_task(registry):
            notify_task(summary, config, registry)
    if preannotated.is_failed():
        # Versions and notifications are done; the failure still shows on the run (the next run pushes again).
        preannotated.result()
    return rows

"""Batch classification: `docclass classify SOURCE... --out results.jsonl` as a Prefect flow.

pin the model version -> list every document with its sha256 -> shards by sha256 -> one task per shard on a Dask
cluster (setting ``dask_address``) or a local process pool (extract + classify through
:mod:`pipelines.classify` with the pinned version) -> one row per listed document -> JSON lines, CSV or Parquet.

A finished shard's answers are saved in the result storage (a ``LocalFileSystem`` block saved on the Prefect
server, under ``<data_dir>/batch/results``) under a key made of its documents' sha256 and everything that shapes
an answer (model version and digest, extraction, limits, review rule): a rerun, or a shard run again after its
worker died, finds them there and computes nothing; a document is never answered twice, and the writer checks
that every listed document gets exactly one row.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows.sources import S3Config, list_sources, read_file
from pipelines.batch import (
    SHARD_BOUNDS,
    SHARD_SIZE,
    BatchIncompleteError,
    DocumentRef,
    Shard,
    Unlisted,
    assemble_rows,
    check_shard_size,
    error_result,
    make_shards,
    outcome_result,
    output_format,
    read_document,
    run_key,
    write_rows,
)

if TYPE_CHECKING:
    from prefect.context import TaskRunContext
    from prefect.task_runners import TaskRunner

    from flows.settings import Settings
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits
    from pipelines.predict import ReviewRule

logger = logging.getLogger(__name__)

RESULTS_BLOCK = "docclass-batch-results"
SHARD_TASK = "classify shard"


class BatchError(RuntimeError):
    """The batch cannot start (no model to pin) or did not finish (a shard failed)."""


@dataclass(frozen=True)
class PinnedModel:
    """The registered version every shard of one run classifies with, resolved once at the start."""

    number: int
    digest: str  # the version's digests_sha256 tag: what its files hash to
    tracking_uri: str
    model_name: str
    experiment: str

    @property
    def version(self) -> str:
        from serving.registry import format_version

        return format_version(self.number)


@dataclass(frozen=True)
class ShardJob:
    """What every shard task needs besides its documents (the same for the whole run)."""

    model: PinnedModel
    extract: ExtractConfig
    limits: Limits
    review: ReviewRule
    cache_dir: str
    models_dir: str
    s3: S3Config

    def settings_digest(self) -> dict[str, Any]:
        """Every setting that changes an answer (part of each shard's result key)."""
        return {
            "extract": self.extract.cache_key(),
            "limits": asdict(self.limits),
            "review": asdict(self.review),
        }


# ------------------------------------------------------------------------------------------- the model


def resolve_version(settings: Settings, version: str | None) -> PinnedModel:
    """The version to classify with: ``version`` (``1.N``), else the registry's champion, with its digest.

    Raises:
        BatchError: no champion and no version asked for, or the version is ``1.0``.
        RegistryError: the registry cannot be reached, or the version does not exist or is incomplete.
        ValueError: ``version`` is not ``1.N``.
    """
    from serving.registry import RegistryReader, parse_version

    reader = RegistryReader.from_settings(settings)
    if version is not None:
        number = parse_version(version)
        if number == 0:
            raise BatchError(
                "version 1.0 means no model: expected a registered version 1.N (see `docclass versions`)"
            )
        reader.version(number)  # raises for a missing or incomplete version
    else:
        champion = reader.champion_number()
        if champion is None:
            raise BatchError(
                f"no champion in the registry {settings.mlflow_tracking_uri}: promote a version "
                f"(`docclass promote`) or pass --version 1.N"
            )
        number = champion
    return PinnedModel(
        number=number,
        digest=reader.registered_digest(number),
        tracking_uri=settings.mlflow_tracking_uri,
        model_name=settings.registered_model,
        experiment=settings.mlflow_experiment,
    )


# One loaded model per worker process (a Dask worker or a pool process runs many shards of the same run).
_loaded: dict[PinnedModel, Any] = {}
_loaded_lock = threading.Lock()


def load_pinned(model: PinnedModel, models_dir: Path) -> Any:
    """The classifier of the pinned version, downloaded and verified once per process.

    Raises:
        ModelIntegrityError: the version's files do not match the digest pinned at the start of the run.
    """
    from pipelines.models.persistence import ModelIntegrityError
    from serving.registry import RegistryReader

    with _loaded_lock:
        if model not in _loaded:
            reader = RegistryReader(model.tracking_uri, model.model_name, model.experiment)
            if reader.registered_digest(model.number) != model.digest:
                raise ModelIntegrityError(
                    f"version {model.version} no longer has the digest pinned at the start of the run "
                    f"({model.digest}): the registry changed underneath; start the run again"
                )
            verified = reader.load_version(model.number, models_dir)
            _loaded.clear()  # keep one model in memory
            _loaded[model] = verified.model
        return _loaded[model]


# --------------------------------------------------------------------------------------------- the shard


def classify_documents(
    documents: Sequence[DocumentRef], job: ShardJob, classifier: Any
) -> dict[str, dict[str, Any]]:
    """Read, check, extract and classify a shard's documents: per sha256, the answer or the error.

    Every document gets an answer: one that cannot be read again (gone, changed since it was listed) or
    extracted is reported with its error and the others go on.
    """
    from pipelines.classify import Upload, classify_inputs
    from pipelines.extract import ExtractionCache
    from pipelines.ingest import IngestError

    results: dict[str, dict[str, Any]] = {}
    readable: list[DocumentRef] = []
    file_cache: dict[str, bytes] = {}  # the current file: members of one archive are read from one copy

    def uploads() -> Iterator[Upload]:
        for ref in documents:
            try:
                if ref.file not in file_cache:
                    file_cache.clear()
                    file_cache[ref.file] = read_file(ref.file, job.s3, job.limits)
                data = read_document(ref, file_cache[ref.file], job.limits)
            except IngestError as error:
                results[ref.sha256] = error_result(error, ref.name)
                continue
            readable.append(ref)
            yield Upload(ref.name, data)

    cache = ExtractionCache(Path(job.cache_dir))
    for index, outcomes in enumerate(
        classify_inputs(classifier, uploads(), job.extract, job.limits, job.review, cache=cache)
    ):
        ref = readable[index]
        if len(outcomes) != 1:  # a listed document is never an archive: its bytes were checked
            raise BatchIncompleteError(f"{ref.name} gave {len(outcomes)} answers: expected one document")
        results[ref.sha256] = outcome_result(outcomes[0], ref.name)
    return results


def _shard_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    shard: Shard = parameters["shard"]
    return shard.key


@task(
    name=SHARD_TASK,
    task_run_name="shard {shard.index} ({shard.size} documents)",
    cache_key_fn=_shard_key,
    persist_result=True,
    result_serializer="json",
    retries=1,
    retry_delay_seconds=5,
)
def classify_shard(shard: Shard, job: ShardJob) -> dict[str, dict[str, Any]]:
    """Answers for one shard's documents with the pinned version (see :func:`classify_documents`).

    Each shard runs on one core: parallelism comes from the workers, so extraction asks for one OCR process,
    and Tesseract's own threads stay at one (``OMP_THREAD_LIMIT=1``, unless the worker set it).
    """
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    classifier = load_pinned(job.model, Path(job.models_dir))
    return classify_documents(shard.documents, job, classifier)


@task(name="pin model version", cache_policy=NO_CACHE)
def pin_task(settings: Settings, version: str | None) -> PinnedModel:
    return resolve_version(settings, version)


@task(name="list documents", cache_policy=NO_CACHE, persist_result=False)
def list_task(sources: Sequence[str], s3: S3Config, limits: Limits) -> list[DocumentRef | Unlisted]:
    return list_sources(sources, s3, limits)


# ----------------------------------------------------------------------------------------- the storage


def results_storage(root: Path) -> Any:
    """The result storage of the shards: a ``LocalFileSystem`` block at ``root`` saved on the Prefect server.

    Remote workers must find the storage by reference (Prefect refuses an unsaved block there); the block's
    name carries a digest of the path, so installations sharing one server never overwrite each other's.
    """
    from prefect.filesystems import LocalFileSystem

    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    name = f"{RESULTS_BLOCK}-{hashlib.sha256(str(root).encode()).hexdigest()[:10]}"
    block = LocalFileSystem(basepath=str(root))
    block.save(name, overwrite=True)
    return block


def task_runner(dask_address: str | None, workers: int | None = None) -> TaskRunner[Any]:
    """A ``DaskTaskRunner`` on the scheduler at ``dask_address``, else a local pool of ``workers`` processes
    (default: one per core).

    Raises:
        ValueError: ``workers`` is given with a Dask address (the cluster decides), or is below 1.
    """
    if dask_address:
        if workers is not None:
            raise ValueError(
                f"--workers {workers} applies to the local process pool: the Dask cluster at {dask_address} "
                f"has its own workers (unset DOCCLASS_DASK_ADDRESS to run locally)"
            )
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    from prefect.task_runners import ProcessPoolTaskRunner

    from pipelines.ocr import core_count

    if workers is not None and workers < 1:
        raise ValueError(f"a local pool needs at least 1 worker process: got {workers}")
    return ProcessPoolTaskRunner(max_workers=workers or core_count())


# ---------------------------------------------------------------------------------------------- the flow

# Called after each shard with (documents answered, documents listed).
ProgressCallback = Callable[[int, int], None]


class LocalProgress:
    """A progress callback for :func:`classify_batch` that runs in the flow's process only.

    Prefect ships a flow's parameters to the workers with every task (pickled); a progress bar can be neither
    pickled nor drawn there, so this pickles to a callback that does nothing.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback

    def __call__(self, done: int, total: int) -> None:
        if self._callback is not None:
            self._callback(done, total)

    def __reduce__(self) -> tuple[type[LocalProgress], tuple[None]]:
        return (LocalProgress, (None,))


@flow(name="classify-batch", log_prints=False)
def classify_batch(
    sources: list[str],
    out: str,
    version: str | None = None,
    shard_size: int = SHARD_SIZE,
    shard_bounds: tuple[int, int] = SHARD_BOUNDS,
    params_path: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Classify every document of the sources with one pinned version and write one row per document.

    Run it through :func:`batch_flow` (the task runner of the settings).

    Args:
        sources: folders, files (PDF, image, zip) and ``s3://bucket/prefix`` locations.
        out: the output file; ``.jsonl``, ``.csv`` or ``.parquet``.
        version: ``1.N`` to classify with; default: the registry's champion, resolved once for the whole run.
        shard_size: documents per shard at most (see :func:`pipelines.batch.shard_documents`).
        shard_bounds: the allowed range of ``shard_size``.
        params_path: params.yaml (default: the ``params`` setting, else ./params.yaml).
        on_progress: called after each shard with (documents answered, documents listed); it must pickle (it
            travels with each task): wrap a progress bar in :class:`LocalProgress`.

    Returns:
        A summary: documents, errors, shards (and how many were computed rather than found saved), version,
        output file and seconds.

    Raises:
        BatchError: no model to pin, or a shard failed (the finished ones are saved: run again to finish).
        BatchIncompleteError: the shards' answers do not cover every listed document exactly once.
        ValueError: an unsupported output or a shard size out of bounds.
    """
    from flows.settings import Settings
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits
    from pipelines.params import load_params
    from pipelines.predict import ReviewRule

    started = time.perf_counter()
    log = get_run_logger()
    output_format(out)
    check_shard_size(shard_size, shard_bounds)
    settings = Settings()
    params = load_params(Path(params_path) if params_path else settings.params)
    limits = Limits.from_params(params["ingest"])
    model = pin_task(settings, version)
    log.info("classifying with version %s (pinned for the whole run)", model.version)
    job = ShardJob(
        model=model,
        # one OCR process per shard: the workers are the parallelism (see classify_shard)
        extract=replace(ExtractConfig.from_params(params["extract"]), workers=1),
        limits=limits,
        review=ReviewRule.from_params(params["predict"]),
        cache_dir=str(settings.cache_dir.resolve()),
        models_dir=str((settings.data_dir / "batch" / "models").resolve()),
        s3=S3Config.from_settings(settings),
    )
    listed = list_task(sources, job.s3, limits)
    documents = [entry for entry in listed if isinstance(entry, DocumentRef)]
    shards = make_shards(documents, shard_size, run_key(model.version, model.digest, job.settings_digest()))
    log.info(
        "%d documents listed (%d distinct, %d not readable) in %d shards of at most %d",
        len(listed),
        len({ref.sha256 for ref in documents}),
        len(listed) - len(documents),
        len(shards),
        shard_size,
    )
    shard_task = classify_shard.with_options(
        result_storage=results_storage(settings.data_dir / "batch" / "results")
    )
    per_document = Counter(ref.sha256 for ref in documents)  # a document listed under several names
    answered = len(listed) - len(documents)
    total = len(listed)
    if on_progress is not None:
        on_progress(answered, total)
    futures = {shard_task.submit(shard, job): shard for shard in shards}
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    computed = 0
    for future in as_completed(list(futures)):
        shard = futures[future]
        future.wait()
        state = future.state
        if state.is_completed():
            results.update(future.result())
            computed += state.name != "Cached"
        else:
            failed.append(f"shard {shard.index}: {state.message or state.name}")
        answered += sum(per_document[ref.sha256] for ref in shard.documents)
        log.info("shard %d: %s; %d of %d documents answered", shard.index, state.name, answered, total)
        if on_progress is not None:
            on_progress(answered, total)
    if failed:
        raise BatchError(
            f"{len(failed)} of {len(shards)} shards failed ({'; '.join(failed[:3])}); the {len(shards) - len(failed)} "
            f"finished shards are saved: run the same command again to finish the others"
        )
    rows = assemble_rows(listed, results, model.version)
    write_rows(rows, Path(out))
    errors = sum(1 for row in rows if row["error"] is not None)
    summary = {
        "documents": len(rows),
        "errors": errors,
        "shards": len(shards),
        "computed_shards": computed,
        "version": model.version,
        "out": str(out),
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info(
        "%d documents -> %s (%d errors, %d of %d shards computed)",
        len(rows),
        out,
        errors,
        computed,
        len(shards),
    )
    return summary


def batch_flow(settings: Settings, workers: int | None = None) -> Any:
    """:func:`classify_batch` on the task runner of the settings (see :func:`task_runner`)."""
    return classify_batch.with_options(task_runner=task_runner(settings.dask_address, workers))

"""The Prefect deployments of the scale profile's work pool: `classify/docclass-classify`, batch classification
started from the Prefect UI or API and run by the pool's worker.

`make scale-up` registers it (``python -m flows.scale deploy``) once the pool's worker runs; then

    .venv/bin/prefect deployment run classify/docclass-classify \\
        --param sources='["/abs/path/archive"]' --param out=/abs/path/results.jsonl

runs :func:`classify_on_cluster` in a process of the worker, whose environment holds the profile's settings (the
Dask scheduler, MLflow, S3): the shards go to the Dask workers exactly as with `docclass classify`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow

from pipelines.batch import SHARD_SIZE

ROOT = Path(__file__).resolve().parents[1]
CLASSIFY_FLOW = "classify"
CLASSIFY_DEPLOYMENT = "docclass-classify"
CLASSIFY_ENTRYPOINT = "flows/deployments.py:classify_on_cluster"
POOL_TYPE = "process"


class DeploymentError(RuntimeError):
    """A deployment cannot be registered (no Prefect API, or the work pool is of another type)."""


@flow(name=CLASSIFY_FLOW, log_prints=False)
def classify_on_cluster(
    sources: list[str],
    out: str,
    version: str | None = None,
    shard_size: int = SHARD_SIZE,
) -> dict[str, Any]:
    """`docclass classify SOURCE... --out OUT` as a deployment: the batch flow, as a subflow, on the task runner of
    the settings (the Dask scheduler of ``DOCCLASS_DASK_ADDRESS``, else a local pool).

    Args:
        sources: folders, files and ``s3://bucket/prefix`` locations, as the worker sees them.
        out: the output file (``.jsonl``, ``.csv`` or ``.parquet``), as the worker sees it.
        version: ``1.N`` to classify with; default: the champion, pinned for the run.
        shard_size: documents per shard at most (50-200).

    Returns:
        The batch's summary (see :func:`flows.batch.classify_batch`).

    Raises:
        SourceError: a source does not exist or is not an S3 location.
        BatchError: no model to pin, or a shard failed.
    """
    from flows.batch import batch_flow
    from flows.settings import Settings
    from flows.sources import check_sources

    check_sources(sources)
    summary: dict[str, Any] = batch_flow(Settings())(
        sources=list(sources), out=out, version=version, shard_size=shard_size
    )
    return summary


def ensure_pool(pool: str) -> None:
    """Create the work pool ``pool`` (type process) unless it exists.

    Raises:
        DeploymentError: it exists with another type (its workers could not run this deployment).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_work_pool(pool)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type=POOL_TYPE))
            except ObjectAlreadyExists:  # its worker created it in between
                found = client.read_work_pool(pool)
            else:
                return
        if found.type != POOL_TYPE:
            raise DeploymentError(
                f"work pool {pool} is of type {found.type!r}: expected {POOL_TYPE!r} (a process worker running "
                f"flows from this checkout)"
            )


def register_classify(api_url: str, pool: str, source: Path = ROOT) -> UUID:
    """Register (or update) `classify/docclass-classify` on ``pool`` of the Prefect server at ``api_url``: code
    from the checkout at ``source`` (the worker runs it there), no schedule.

    Raises:
        DeploymentError: no API URL, or the pool is not a process pool.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not api_url:
        raise DeploymentError("no Prefect API to register the deployment on: expected PREFECT_API_URL")
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        ensure_pool(pool)
        # from_source / deploy are sync here (no running event loop); their types also name the async form
        deployable: Any = classify_on_cluster.from_source(
            source=str(source.resolve()), entrypoint=CLASSIFY_ENTRYPOINT
        )
        deployment_id: UUID = deployable.deploy(
            name=CLASSIFY_DEPLOYMENT,
            work_pool_name=pool,
            build=False,
            push=False,
            description="docclass classify: every document of the sources, one row each, on the Dask cluster",
            print_next_steps=False,
            ignore_warnings=True,
        )
    return deployment_id

"""`docclass flows run|serve|trigger-webhook`: the retraining loop now, on a schedule, or on Label Studio events."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.console import err, params_path
from flows.cli.console import fail as _fail
from flows.cli.console import load_cli_params as _params

logger = logging.getLogger(__name__)

flows_app = typer.Typer(
    help="The retraining loop (Prefect): run once, serve on a schedule, or trigger from Label Studio webhooks.",
    no_args_is_help=True,
)

DEPLOYMENT = "docclass-retrain"


@flows_app.command("run")
def run(ctx: typer.Context) -> None:
    """One retrain flow run now: prints the versions it made as JSON (an empty list when nothing was due).

    When Label Studio or MLflow does not answer (after the run's retries) or the registry refuses, the run fails
    with one line saying so and exit code 1; what it did not finish, the next run completes.
    """
    from filelock import Timeout

    from flows.registry import RegistryError
    from flows.retrain import is_connection_error, retrain

    params = _params(ctx)
    try:
        rows = retrain(params=params)
    except Exception as error:
        if not (is_connection_error(error) or isinstance(error, RegistryError | Timeout)):
            raise  # a defect: its traceback is wanted
        _fail(
            f"the retrain run failed: {type(error).__name__}: {error}. Nothing half-done is used or lost: versions "
            "finished before the failure are kept, and the next run (this command again, or the schedule of "
            "`docclass flows serve`) completes the rest",
            code=1,
        )
    typer.echo(json.dumps(rows, default=str))


@flows_app.command("serve")
def serve(
    ctx: typer.Context,
    interval: Annotated[
        int | None,
        typer.Option(help="seconds between scheduled runs (default: params loop.interval_seconds)"),
    ] = None,
) -> None:
    """Serve the flow as a Prefect deployment on an interval schedule, one run at a time.

    At start, runs of the deployment that a dead `flows serve` left Pending or Running are marked Crashed: the
    Prefect server then frees the deployment's concurrency slot at once instead of when its lease expires.
    """
    import httpx
    from prefect.settings import get_current_settings

    from flows.retrain import retrain
    from flows.settings import Settings

    params = _params(ctx)
    seconds = interval if interval is not None else int(params["loop"]["interval_seconds"])
    path = params_path(ctx)
    api_url = get_current_settings().api.url
    if api_url:
        try:
            orphans = crash_orphaned_runs(api_url, Settings().data_dir / "loop")
        except httpx.HTTPError as error:
            _fail(
                f"the Prefect server at {api_url} does not answer ({type(error).__name__}: {error}): "
                "expected it running (make prefect-up)"
            )
        for name in orphans:
            err.print(f"run {name} of retrain/{DEPLOYMENT} was left by a process that died: marked Crashed")
    err.print(f"serving deployment retrain/{DEPLOYMENT} every {seconds} s (concurrency limit 1)")
    retrain.serve(
        name=DEPLOYMENT,
        interval=seconds,
        global_limit=1,
        limit=1,
        parameters={"params_path": str(path.resolve())} if path is not None else {},
        print_starting_message=False,
    )


def crash_orphaned_runs(api_url: str, workdir: Path) -> list[str]:
    """Mark Crashed the runs of the deployment that are Pending, Running or Cancelling on the Prefect server but
    whose process is gone; returns their names.

    A process killed with SIGKILL (or a machine that stopped) leaves its run Running, holding the deployment's
    concurrency slot until the slot's lease expires (300 s), and Running in the UI for ever. A live run holds its
    lock file (:func:`flows.retrain.run_alive`) for as long as its process lives, so a run without a holder is
    dead: crashing it makes the server release its slot. Call it before serving, when none of this process's
    runs exist yet (runs that another live `flows serve` on this machine executes hold their locks).

    Raises:
        httpx.HTTPError: the Prefect server does not answer.
    """
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    from flows.retrain import is_run_alive, run_lock_path

    crashed: list[str] = []
    with SyncPrefectClient(api_url) as client:
        try:
            deployment = client.read_deployment_by_name(f"retrain/{DEPLOYMENT}")
        except ObjectNotFound:
            return crashed  # never served: no run to look at
        active = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))),
        )
        for run in runs:
            if is_run_alive(workdir, str(run.id)):
                continue
            client.set_flow_run_state(
                run.id,
                Crashed(message="its process died (found by `docclass flows serve` at start)"),
                force=True,  # the dead process cannot object; the server releases the run's slot
            )
            run_lock_path(workdir, str(run.id)).unlink(missing_ok=True)
            crashed.append(str(run.name))
    return crashed


class RunNotRequested(RuntimeError):
    """The Prefect server could not be asked for a run (unreachable, refusing, or no served deployment)."""


# Asks the deployment for one run and returns the run's name at once (never waits for it, never trains).
RunRequester = Callable[[], str]


def request_deployment_run(api_url: str | None) -> str:
    """Ask the Prefect server for a run of the served deployment ``retrain/docclass-retrain``; returns its name.

    The run is queued on the server and executed by `docclass flows serve`, which allows one run at a time;
    this returns as soon as the server has recorded it.

    Args:
        api_url: the Prefect API (``PREFECT_API_URL``, e.g. ``http://127.0.0.1:4200/api``).

    Raises:
        RunNotRequested: no API URL, the server did not answer or refused, or it has no such deployment.
    """
    import httpx
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import ObjectNotFound

    if not api_url:
        raise RunNotRequested("no Prefect server: expected PREFECT_API_URL (make prefect-up)")
    name = f"retrain/{DEPLOYMENT}"
    try:
        with SyncPrefectClient(api_url) as client:
            deployment = client.read_deployment_by_name(name)
            run = client.create_flow_run_from_deployment(deployment.id)
    except ObjectNotFound as error:
        raise RunNotRequested(
            f"the Prefect server at {api_url} has no deployment {name}: expected `docclass flows serve` "
            "running (make flows-up)"
        ) from error
    except httpx.HTTPError as error:
        raise RunNotRequested(
            f"the Prefect server at {api_url} did not take the request: {type(error).__name__}: {error}"
        ) from error
    return str(run.name)


class MilestoneTrigger:
    """Turns webhook events into requests for deployment runs: at most one request per milestone.

    ``on_event`` only sets a flag (the webhook answers at once). A background thread then asks ``due`` which
    milestones wait for a version and, when one of them has not been asked for yet, asks the deployment for one
    run (``request_run``; the run versions every due milestone). It never trains: the deployment runs the flow,
    one run at a time. Events arriving during a check cause one more check after it. A request the Prefect
    server does not take is logged, and asked again at the next event; meanwhile the schedule of
    `docclass flows serve` (every ``interval_seconds``) picks the labels up.
    """

    def __init__(
        self, due: Callable[[], Sequence[int]], request_run: RunRequester, interval_seconds: int
    ) -> None:
        self.due = due
        self.request_run = request_run
        self.interval_seconds = interval_seconds
        self.requested: dict[int, str] = {}  # milestone -> name of the run asked for it
        self.runs: list[str] = []  # runs asked for, in order
        self.checks = 0
        self._changed = threading.Condition()
        self._pending = False
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="retrain-trigger", daemon=True)

    def on_event(self, _record: dict[str, Any]) -> None:
        with self._changed:
            self._pending = True
            self._changed.notify_all()

    def begin(self) -> MilestoneTrigger:
        self._thread.start()
        return self

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every event so far has been checked; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._stop)
                if self._stop:
                    return
                self._pending, self._busy = False, True
            try:
                self._check()
            except Exception:  # noqa: BLE001 - Label Studio or MLflow down must not kill the receiver
                logger.exception(
                    "could not check for due milestones; the schedule (`docclass flows serve`, every %d s) "
                    "will pick the labels up",
                    self.interval_seconds,
                )
            finally:
                with self._changed:
                    self.checks += 1
                    self._busy = False
                    self._changed.notify_all()

    def _check(self) -> None:
        waiting = [milestone for milestone in self.due() if milestone not in self.requested]
        if not waiting:
            return
        try:
            name = self.request_run()
        except RunNotRequested as error:
            logger.warning(
                "labels reached milestone(s) %s but could not start a retrain run: %s. The schedule "
                "(`docclass flows serve`, every %d s) will pick the labels up",
                ", ".join(map(str, waiting)),
                error,
                self.interval_seconds,
            )
            return
        self.requested.update(dict.fromkeys(waiting, name))
        self.runs.append(name)
        logger.info("milestone(s) %s: asked deployment retrain/%s for run %s", waiting, DEPLOYMENT, name)


def due_milestones(settings: Any, params: dict[str, Any]) -> list[int]:
    """Milestones the current labels reach with no version yet, counted as the flow counts them."""
    from flows.retrain import loop_settings, milestones, usable_labels, versioned_milestones
    from flows.versions import open_registry_and_store
    from labeling.project import make_client
    from labeling.pull import pull_labels

    every, _ = loop_settings(params)
    state = settings.data_dir / "loop" / "trigger-pull-state.json"
    labels = pull_labels(
        make_client(settings.label_studio_url, settings.label_studio_token),
        settings.project_title,
        state,
        settings.originals_dir,
        None,
    ).labels
    usable = usable_labels(labels, settings.originals_dir, logger.debug)
    registry, _ = open_registry_and_store(settings)
    return milestones(len(usable), every, versioned_milestones(registry.versions()))


def milestone_trigger(settings: Any, params: dict[str, Any], request_run: RunRequester) -> MilestoneTrigger:
    """The trigger `trigger-webhook` runs: due milestones from Label Studio and the registry, runs asked of
    ``request_run``, the schedule's interval (params ``loop.interval_seconds``) named when a request fails."""
    return MilestoneTrigger(
        lambda: due_milestones(settings, params), request_run, int(params["loop"]["interval_seconds"])
    )


@flows_app.command("trigger-webhook")
def trigger_webhook(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="bind address (default: DOCCLASS_WEBHOOK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: DOCCLASS_WEBHOOK_PORT)")] = None,
) -> None:
    """Label Studio webhook receiver: records each event and, when a milestone is crossed, asks the served
    deployment (`docclass flows serve`) for a run. It never trains itself."""
    import uvicorn
    from prefect.settings import get_current_settings

    from flows.registry import bound_mlflow_retries
    from flows.retrain import loop_settings
    from flows.settings import Settings
    from labeling.webhook import PATH, create_app

    bound_mlflow_retries()
    settings = Settings()
    params = _params(ctx)
    try:
        loop_settings(params)
    except ValueError as error:
        _fail(str(error))
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        _fail("no webhook secret: expected DOCCLASS_WEBHOOK_SECRET in the environment or .env")
    api_url = get_current_settings().api.url
    if not api_url:
        _fail(
            "no Prefect server to ask for runs: expected PREFECT_API_URL (make prefect-up; make up sets it)"
        )
    trigger = milestone_trigger(settings, params, lambda: request_deployment_run(api_url)).begin()
    bind, number = host or settings.webhook_host, port or settings.webhook_port
    err.print(
        f"webhook receiver on http://{bind}:{number}{PATH}: a crossed milestone asks deployment "
        f"retrain/{DEPLOYMENT} at {api_url} for a run"
    )
    app = create_app(
        settings.events_file, settings.webhook_secret.get_secret_value(), on_event=trigger.on_event
    )
    try:
        uvicorn.run(app, host=bind, port=number, log_level="warning", access_log=False)
    finally:
        trigger.close()


# ------------------------------------------------------------------------------ demo and loop benchmark


def _corpus_files(corpus: Path) -> dict[str, list[Path]]:
    """Folder-per-class corpus -> class -> files (sorted)."""
    out = {
        folder.name: sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        for folder in sorted(corpus.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }
    return {label: files for label, files in out.items() if files}


def _import_with_truth(
    settings: Any, params: dict[str, Any], files: dict[str, list[Path]]
) -> list[tuple[int, str]]:
    """Import the files (idempotent) and return the unlabelled tasks as (task id, true class), round robin by class."""
    import hashlib

    from labeling.importer import import_documents
    from labeling.preannotate import is_labelled
    from labeling.project import ensure_project, export_tasks, make_client
    from pipelines.ingest import Limits

    client = make_client(settings.label_studio_url, settings.label_studio_token)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    project = ensure_project(client, settings.project_title, params["classes"], settings.webhook_url, secret)
    paths = [path for group in files.values() for path in group]
    import_documents(
        client,
        project.project_id,
        paths,
        settings.local_files_root,
        settings.originals_dir,
        Limits.from_params(params["ingest"]),
        int(params["labeling"]["render_dpi"]),
    )
    truth = {
        hashlib.sha256(path.read_bytes()).hexdigest(): label
        for label, group in files.items()
        for path in group
    }
    by_class: dict[str, list[int]] = {label: [] for label in files}
    for task in sorted(export_tasks(client, project.project_id), key=lambda t: int(t["id"])):
        label = truth.get(str((task.get("data") or {}).get("sha256", "")))
        if label is not None and not is_labelled(task):
            by_class[label].append(int(task["id"]))
    longest = max((len(ids) for ids in by_class.values()), default=0)
    return [(ids[i], label) for i in range(longest) for label, ids in by_class.items() if i < len(ids)]


def _annotate(settings: Any, tasks: list[tuple[int, str]]) -> None:
    from labeling.convert import prediction_result
    from labeling.project import make_client

    client = make_client(settings.label_studio_url, settings.label_studio_token)
    for task_id, label in tasks:
        client.annotations.create(id=task_id, result=prediction_result(label), lead_time=5.0)


def _start_run(path: Path | None) -> str:
    """A run of the served deployment (visible in the Prefect UI, one at a time); when the Prefect server does
    not take the request, say so and run the flow in this command's process (the demo must go on)."""
    from prefect.settings import get_current_settings

    try:
        return f"deployment run {request_deployment_run(get_current_settings().api.url)}"
    except RunNotRequested as error:
        err.print(f"[yellow]{error}: running the flow in this process instead[/yellow]")
    from flows.retrain import retrain

    retrain(params_path=str(path) if path is not None else None)
    return "in-process run"


def _wait_version(settings: Any, milestone: int, timeout_s: float) -> Any:
    from flows.registry import Registry
    from flows.retrain import MILESTONE_TAG

    registry = Registry.from_settings(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for version in registry.versions():
            if version.tags.get(MILESTONE_TAG) == str(milestone):
                return version
        time.sleep(1)
    return None


def _classify(service_url: str, api_key: str | None, path: Path) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with path.open("rb") as handle:
        response = httpx.post(
            service_url.rstrip("/") + "/classify",
            files={"file": (path.name, handle)},
            headers=headers,
            timeout=60,
        )
    response.raise_for_status()
    return response.json()


def _answer_label(answer: dict[str, Any]) -> str:
    documents = answer.get("documents") or [{}]
    return str(documents[0].get("label"))


@flows_app.command("demo")
def demo(
    ctx: typer.Context,
    corpus: Annotated[
        Path | None, typer.Option(help="folder-per-class corpus (default: a generated one)")
    ] = None,
    service_url: Annotated[
        str | None, typer.Option(help="classification service (default: DOCCLASS_SERVICE_URL)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each version")] = 600.0,
) -> None:
    """Annotate a corpus through the Label Studio API in batches of `loop.retrain_every` and watch the versions
    appear (labels, accuracy, gate, champion), then ask the service about held-back documents."""
    from flows.retrain import loop_settings
    from flows.settings import Settings
    from pipelines.samples import generate_corpus

    settings = Settings()
    params = _params(ctx)
    every, _ = loop_settings(params)
    if corpus is None:
        corpus = settings.data_dir / "demo" / "corpus"
        if not corpus.is_dir():
            # Enough for three versions plus one held-back document per class.
            per_class = max(int(params["sample"]["per_class"]), -(-3 * every // len(params["classes"])) + 1)
            generate_corpus(
                corpus,
                per_class=per_class,
                seed=int(params["seed"]),
                scanned_share=float(params["sample"]["scanned_share"]),
                classes=params["classes"],
            )
    files = _corpus_files(corpus)
    held = {label: group[-1] for label, group in files.items() if len(group) > 1}
    tasks = _import_with_truth(settings, params, {k: v[:-1] if k in held else v for k, v in files.items()})
    err.print(f"{len(tasks)} documents to label from {corpus}; {len(held)} held back for the service")
    labelled = _labelled_count(settings)
    path = params_path(ctx)
    while tasks:
        batch_size = every - labelled % every
        batch, tasks = tasks[:batch_size], tasks[batch_size:]
        _annotate(settings, batch)
        labelled += len(batch)
        if labelled % every:
            err.print(f"{labelled} labels: next version at {labelled - labelled % every + every}")
            break
        started = time.perf_counter()
        how = _start_run(path)
        version = _wait_version(settings, labelled, timeout)
        if version is None:
            _fail(
                f"no version for {labelled} labels after {timeout:.0f} s: see the Prefect UI / flow server log"
            )
        row = version.row()
        typer.echo(
            json.dumps({**row, "milestone": labelled, "seconds": round(time.perf_counter() - started, 1)})
        )
        err.print(
            f"{labelled} labels -> version {row['version']} ({how}): accuracy {row['accuracy']:.3f}, "
            f"gate {row['gate']}, champion {'yes' if row['champion'] else 'no'}"
        )
    url = service_url or settings.service_url
    key = settings.api_key.get_secret_value() if settings.api_key else None
    time.sleep(int(params["serve"]["poll_seconds"]) + 1)  # the service reads the champion alias this often
    for label, document in held.items():
        try:
            answer = _classify(url, key, document)
        except Exception as error:  # noqa: BLE001 - the demo reports and goes on
            err.print(f"[yellow]service {url} did not answer for {document.name}: {error}[/yellow]")
            continue
        err.print(
            f"service: {document.name} (true {label}) -> {_answer_label(answer)} "
            f"by version {answer.get('model_version')}"
        )


def _labelled_count(settings: Any) -> int:
    from labeling.preannotate import is_labelled
    from labeling.project import export_tasks, make_client, require_project

    client = make_client(settings.label_studio_url, settings.label_studio_token)
    project = require_project(client, settings.project_title)
    return sum(1 for task in export_tasks(client, project.id) if is_labelled(task))


def bench_loop_seed(seed: int, labelled: int) -> int:
    """The corpus seed of a `bench-loop` run, derived from params ``seed`` and the labels already in the project.

    Each run needs documents the project has not seen (an import is idempotent by content), so the seed moves
    with the label count; the same params and the same project state give the same corpus.
    """
    import hashlib

    digest = hashlib.sha256(f"bench-loop:{seed}:{labelled}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100_000


@flows_app.command("bench-loop")
def bench_loop(
    ctx: typer.Context,
    service_url: Annotated[
        str | None, typer.Option(help="classification service (default: DOCCLASS_SERVICE_URL)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 600.0,
    out: Annotated[Path | None, typer.Option(help="also write the result (JSON) here")] = None,
) -> None:
    """Seconds from the label completing a milestone to the new version answering on the HTTP service."""
    from flows.retrain import loop_settings
    from flows.settings import Settings
    from pipelines.samples import generate_corpus

    settings = Settings()
    params = _params(ctx)
    every, _ = loop_settings(params)
    labelled = _labelled_count(settings)
    seed = bench_loop_seed(int(params["seed"]), labelled)
    corpus = settings.data_dir / "bench-loop" / f"corpus-{seed}"
    if not corpus.is_dir():
        generate_corpus(
            corpus,
            per_class=-(-every // len(params["classes"])) + 1,
            seed=seed,
            scanned_share=0.0,
            classes=params["classes"],
        )
    files = _corpus_files(corpus)
    probe = next(iter(files.values()))[-1]
    tasks = _import_with_truth(settings, params, {k: v[:-1] for k, v in files.items()})
    needed = every - labelled % every
    if len(tasks) < needed:
        _fail(f"{needed} labels needed to reach the next milestone: only {len(tasks)} new documents")
    _annotate(settings, tasks[: needed - 1])
    milestone = labelled + needed
    _annotate(settings, tasks[needed - 1 : needed])
    started = time.perf_counter()  # the milestone's last label is in
    how = _start_run(params_path(ctx))
    version = _wait_version(settings, milestone, timeout)
    if version is None:
        _fail(f"no version for {milestone} labels within {timeout:.0f} s")
    registered = time.perf_counter() - started
    url = service_url or settings.service_url
    key = settings.api_key.get_secret_value() if settings.api_key else None
    answered = None
    while time.perf_counter() - started < timeout and version.row()["champion"] is not False:
        try:
            if _classify(url, key, probe).get("model_version") == version.name:
                answered = time.perf_counter() - started
                break
        except Exception as error:  # noqa: BLE001 - the service may be reloading
            logger.debug("service not answering yet: %s", error)
        time.sleep(0.5)
    result = {
        "milestone": milestone,
        "version": version.name,
        "gate": version.row()["gate"],
        "trigger": how,
        "seconds_to_registered": round(registered, 1),
        "seconds_to_service": round(answered, 1) if answered is not None else None,
        "target_seconds": 60,
    }
    typer.echo(json.dumps(result))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    """Add `docclass flows ...` to the main app."""
    app.add_typer(
        flows_app, name="flows", help="The retraining loop: run, serve on a schedule, webhook trigger."
    )

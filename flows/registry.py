"""MLflow tracking and model registry for docclass versions: runs, registered versions, the champion alias and
the promotion history.

API version ``1.N`` is registered version N of the model; ``1.0`` means no model. A version is usable only once it
carries the tag ``complete=true``, which is written last: a crash in the middle of a registration leaves an
incomplete version that listings and promotions ignore and that the next run of the same round completes.

MLflow keeps no history of alias moves, so every promotion is also recorded as a run in the experiment
``<experiment>-promotions`` (from, to, when, why, automatic or by whom): durable, in the same backend, visible in
the MLflow UI.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION = "champion"
COMPLETE = "complete"
ROUND_FILE = "round.json"
MODEL_DIR = "model"
_TAG_MAX = 4000  # below MLflow's model-version tag value limit


class RegistryError(RuntimeError):
    """The registry is unreachable, or a version / alias operation cannot be done as asked."""


# Registry fields live in the one Settings class; the alias keeps the registry's call sites readable.
RegistrySettings = Settings


def parse_version(text: str) -> int:
    """``"1.N"`` -> N (``"1.0"`` -> 0).

    Raises:
        ValueError: anything else.
    """
    major, _, minor = str(text).strip().partition(".")
    if major != "1" or not minor.isdigit():
        raise ValueError(f"version {text!r} is not valid: expected 1.N, e.g. 1.3 (1.0 = no model)")
    return int(minor)


def format_version(number: int | None) -> str:
    """N -> ``"1.N"``; None -> ``"1.0"``."""
    return f"1.{number or 0}"


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "None") else None
    except ValueError:
        return None


@dataclass
class VersionInfo:
    """One registered version and its tags."""

    number: int
    tags: dict[str, str]
    run_id: str | None
    source: str
    created: datetime
    champion: bool = False
    promoted_at: str | None = None

    @property
    def name(self) -> str:
        return format_version(self.number)

    @property
    def complete(self) -> bool:
        return self.tags.get(COMPLETE) == "true"

    @property
    def passed(self) -> bool:
        return self.tags.get("gate") == "pass"

    @property
    def reasons(self) -> list[str]:
        return json.loads(self.tags.get("gate_reasons") or "[]")

    def metric(self, key: str) -> float | None:
        return _float(self.tags.get(key))

    def row(self) -> dict[str, Any]:
        """The JSON form used by `docclass versions --json`."""
        return {
            "version": self.name,
            "labels": int(self.tags.get("label_count", 0)),
            "dataset_revision": self.tags.get("dataset_md5"),
            "candidate": self.tags.get("candidate"),
            "accuracy": self.metric("accuracy"),
            "macro_f1": self.metric("macro_f1"),
            "forward_accuracy": self.metric("forward_accuracy"),
            "forward_docs": int(self.tags.get("new_docs", 0) or 0),
            "gate": self.tags.get("gate", "unknown") if self.complete else "incomplete",
            "reasons": self.reasons,
            "champion": self.champion,
            "promoted_at": self.promoted_at,
            "created": self.created.isoformat(timespec="seconds"),
        }


@dataclass
class PromotionEvent:
    """One move of the champion alias."""

    seq: int
    when: str
    from_version: int | None
    to_version: int | None
    reason: str
    by: str
    automatic: bool
    run_id: str = field(default="", repr=False)

    def row(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "when": self.when,
            "from": format_version(self.from_version),
            "to": format_version(self.to_version),
            "reason": self.reason,
            "by": self.by,
            "automatic": self.automatic,
        }


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 3] + "..."


class Registry:
    """The docclass view of an MLflow tracking server / registry (any tracking URI, e.g. ``sqlite:///...``)."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str = "docclass",
        experiment: str = "docclass",
        artifact_root: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        # A server chooses artifact locations itself; a local store would default to ./mlruns of the working
        # directory, so keep artifacts beside the database instead.
        if artifact_root is None and tracking_uri.startswith("sqlite:///"):
            artifact_root = (Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "artifacts").as_uri()
        self.artifact_root = artifact_root
        self.model_name = model_name
        self.experiment = experiment
        self._client: MlflowClient | None = None
        self._experiment_ids: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> Registry:
        return cls(settings.mlflow_tracking_uri, settings.registered_model, settings.mlflow_experiment)

    # ------------------------------------------------------------------------------------------- plumbing

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self.check_reachable()
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def check_reachable(self) -> None:
        """Fail fast on an HTTP tracking server that does not answer (MLflow itself retries for minutes).

        Raises:
            RegistryError: no answer from ``<uri>/health``.
        """
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        import httpx

        try:
            httpx.get(self.tracking_uri.rstrip("/") + "/health", timeout=5.0).raise_for_status()
        except httpx.HTTPError as error:
            raise RegistryError(
                f"MLflow tracking server {self.tracking_uri} does not answer ({error}): expected it running "
                f"(`make mlflow-up`), or set DOCCLASS_MLFLOW_TRACKING_URI (e.g. sqlite:///.data/mlflow/mlflow.db)"
            ) from error

    def experiment_id(self, name: str | None = None) -> str:
        """Id of the experiment (created when missing)."""
        name = name or self.experiment
        if name not in self._experiment_ids:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                self._experiment_ids[name] = found.experiment_id
            else:
                location = f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None
                self._experiment_ids[name] = self.client.create_experiment(name, artifact_location=location)
        return self._experiment_ids[name]

    def ensure_model(self) -> None:
        """Create the registered model when missing."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(
                self.model_name, description="docclass document classifier; alias `champion` is served."
            )

    # ------------------------------------------------------------------------------------------------ runs

    def start_run(
        self, run_name: str, tags: Mapping[str, Any], parent_run_id: str | None = None
    ) -> str:
        """A new run in the experiment; returns its id."""
        all_tags = {key: _tag(value) for key, value in tags.items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id(), run_name=run_name, tags=all_tags)
        return run.info.run_id

    def log_values(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Params, metrics and tags of a run in one batch (None metrics are left out)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(datetime.now(UTC).timestamp() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if v is not None],
            params=[Param(k, _tag(v)[:6000]) for k, v in (params or {}).items()],
            tags=[RunTag(k, _tag(v)) for k, v in (tags or {}).items()],
        )

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def log_json(self, run_id: str, name: str, payload: Any) -> None:
        """A JSON artifact at the root of the run."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
            self.client.log_artifact(run_id, str(path))

    def finish_run(self, run_id: str, status: str = "FINISHED") -> None:
        # Against a server MLflow prints "View run ... at <url>" to stdout, which carries results here.
        with contextlib.redirect_stdout(sys.stderr):
            self.client.set_terminated(run_id, status=status)

    def find_finished_round(self, round_key: str) -> str | None:
        """Id of a finished round run with this key (its runs and artifacts are complete), or None."""
        runs = self.client.search_runs(
            [self.experiment_id()],
            filter_string=f"tags.round_key = '{round_key}' and tags.kind = 'round' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def read_json(self, run_id: str, name: str) -> Any:
        """A JSON artifact of a run."""
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=name, dst_path=tmp, tracking_uri=self.tracking_uri
            )
            return json.loads(Path(path).read_text())

    def download_run_artifacts(self, run_id: str, artifact_path: str, dst: Path) -> Path:
        import mlflow.artifacts

        dst.mkdir(parents=True, exist_ok=True)
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact_path, dst_path=str(dst), tracking_uri=self.tracking_uri
            )
        )

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    # -------------------------------------------------------------------------------------------- versions

    def _info(self, mv: Any, champion: int | None) -> VersionInfo:
        number = int(mv.version)  # int from SQLite, str over REST
        return VersionInfo(
            number=number,
            tags=dict(mv.tags or {}),
            run_id=mv.run_id,
            source=mv.source,
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            champion=number == champion,
        )

    def champion_number(self) -> int | None:
        """Registered version the ``champion`` alias points to (None = 1.0, no model)."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        value = (model.aliases or {}).get(CHAMPION)
        return int(value) if value is not None else None

    def versions(self, include_incomplete: bool = False) -> list[VersionInfo]:
        """Registered versions, oldest first, with champion flag and last promotion time."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name = '{self.model_name}'")
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        champion = self.champion_number()
        promoted: dict[int, str] = {}
        for event in self.history():
            if event.to_version is not None:
                promoted[event.to_version] = event.when
        infos = sorted((self._info(mv, champion) for mv in found), key=lambda v: v.number)
        for info in infos:
            info.promoted_at = promoted.get(info.number)
        return [v for v in infos if include_incomplete or v.complete]

    def version(self, number: int) -> VersionInfo:
        """A complete version.

        Raises:
            RegistryError: no such version, or it is incomplete.
        """
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(self.model_name, str(number))
        except MlflowException as error:
            raise RegistryError(
                f"version {format_version(number)} of {self.model_name!r} does not exist: see `docclass versions`"
            ) from error
        info = self._info(mv, self.champion_number())
        if not info.complete:
            raise RegistryError(
                f"version {info.name} is incomplete (its round crashed): rerun the round to complete it"
            )
        return info

    def champion(self) -> VersionInfo | None:
        number = self.champion_number()
        return self.version(number) if number is not None else None

    def find_version(self, round_key: str) -> VersionInfo | None:
        """The version registered for a round (complete or not), or None."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(
                f"name = '{self.model_name}' and tags.round_key = '{round_key}'"
            )
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        infos = sorted((self._info(mv, self.champion_number()) for mv in found), key=lambda v: v.number)
        return infos[0] if infos else None

    def register(self, run_id: str, tags: Mapping[str, Any]) -> int:
        """Register the model directory of a finished run as a new version (not yet complete)."""
        self.ensure_model()
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        mv = self.client.create_model_version(
            self.model_name,
            source=f"{artifact_uri}/{MODEL_DIR}",
            run_id=run_id,
            tags={key: _tag(value) for key, value in tags.items() if key != COMPLETE},
        )
        return int(mv.version)

    def set_version_tags(self, number: int, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(number), key, _tag(value))

    def mark_complete(self, number: int) -> None:
        """The last step of a registration: from now on the version is listed and can be promoted."""
        self.client.set_model_version_tag(self.model_name, str(number), COMPLETE, "true")

    def download_model(self, number: int, dst: Path) -> Path:
        """The model directory of a version (``pipelines.models.load_model`` reads it)."""
        import mlflow.artifacts

        # The version's source, not a models:/ URI: that one resolves through the process-wide registry URI.
        source = self.client.get_model_version(self.model_name, str(number)).source
        dst.mkdir(parents=True, exist_ok=True)
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=self.tracking_uri)
        )

    # ------------------------------------------------------------------------------------------- promotion

    def history(self) -> list[PromotionEvent]:
        """Every move of the champion alias, oldest first."""
        found = self.client.get_experiment_by_name(f"{self.experiment}-promotions")
        if found is None:
            return []
        runs = self.client.search_runs([found.experiment_id], max_results=10000)
        events = []
        for run in runs:
            tags = run.data.tags
            events.append(
                PromotionEvent(
                    seq=int(tags["seq"]),
                    when=tags["when"],
                    from_version=int(tags["from"]) or None,
                    to_version=int(tags["to"]) or None,
                    reason=tags.get("reason", ""),
                    by=tags.get("by", ""),
                    automatic=tags.get("automatic") == "true",
                    run_id=run.info.run_id,
                )
            )
        return sorted(events, key=lambda e: e.seq)

    def move_champion(self, to: int | None, *, reason: str, by: str, automatic: bool) -> PromotionEvent:
        """Point ``champion`` at version ``to`` (None: remove it, back to 1.0) and record the move.

        Raises:
            RegistryError: ``to`` is not a complete version, or an empty reason.
        """
        if not reason.strip():
            raise RegistryError("a promotion needs a reason: expected a non-empty --reason")
        if to is not None:
            self.version(to)  # raises for a missing or incomplete version
        previous = self.champion_number()
        self.ensure_model()
        if to is None:
            if previous is not None:
                self.client.delete_registered_model_alias(self.model_name, CHAMPION)
        else:
            self.client.set_registered_model_alias(self.model_name, CHAMPION, str(to))
        return self.record_promotion(previous, to, reason=reason, by=by, automatic=automatic)

    def record_promotion(
        self, previous: int | None, to: int | None, *, reason: str, by: str, automatic: bool
    ) -> PromotionEvent:
        """Append an event to the promotion history."""
        history = self.history()
        seq = history[-1].seq + 1 if history else 1
        when = datetime.now(UTC).isoformat(timespec="seconds")
        tags = {
            "seq": str(seq),
            "when": when,
            "from": str(previous or 0),
            "to": str(to or 0),
            "reason": _tag(reason),
            "by": by,
            "automatic": "true" if automatic else "false",
            "mlflow.note.content": f"{format_version(previous)} -> {format_version(to)}: {reason}",
        }
        run = self.client.create_run(
            self.experiment_id(f"{self.experiment}-promotions"),
            run_name=f"{format_version(previous)} -> {format_version(to)}",
            tags=tags,
        )
        self.finish_run(run.info.run_id)
        return PromotionEvent(seq, when, previous, to, reason, by, automatic, run.info.run_id)

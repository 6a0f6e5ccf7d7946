"""MLflow tracking and the registry's write side: runs, registered versions, the champion alias and the promotion
history.

The read side (champion lookup, listings, verified downloads) is :class:`serving.registry.RegistryReader`, which
the service imports without this module; :class:`Registry` extends it with everything that writes.

API version ``1.N`` is registered version N of the model; ``1.0`` means no model. A version is usable only once it
carries the tag ``complete=true``, which is written last: a crash in the middle of a registration leaves an
incomplete version that listings and promotions ignore and that the next run of the same round completes.

A version is created with the tag ``digests_sha256`` (the sha256 of ``model/digests.json``, which lists the sha256
of every model file), computed from the local model directory before upload and checked against the uploaded copy
at registration; it is never changed afterwards, and every load checks the files against it before unpickling.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.settings import Settings
from serving.registry import (
    CHAMPION,
    COMPLETE,
    DIGEST_TAG,
    MODEL_DIR,
    PromotionEvent,
    RegistryError,
    RegistryReader,
    VersionInfo,
    format_version,
    parse_version,
)

ROUND_FILE = "round.json"
_TAG_MAX = 4000  # below MLflow's model-version tag value limit

__all__ = [
    "CHAMPION",
    "COMPLETE",
    "DIGEST_TAG",
    "MODEL_DIR",
    "ROUND_FILE",
    "PromotionEvent",
    "Registry",
    "RegistryError",
    "VersionInfo",
    "format_version",
    "parse_version",
]


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 3] + "..."


class Registry(RegistryReader):
    """The docclass view of an MLflow tracking server / registry, read and write (any tracking URI)."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str = "docclass",
        experiment: str = "docclass",
        artifact_root: str | None = None,
    ) -> None:
        super().__init__(tracking_uri, model_name, experiment, artifact_root)
        self._experiment_ids: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        return cls(settings.mlflow_tracking_uri, settings.registered_model, settings.mlflow_experiment)

    # ------------------------------------------------------------------------------------------- plumbing

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

    def start_run(self, run_name: str, tags: Mapping[str, Any], parent_run_id: str | None = None) -> str:
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

    def log_model(self, run_id: str, model_dir: Path) -> str:
        """Upload a sealed model directory as the run's ``model`` artifact; returns its digest for :meth:`register`.

        Raises:
            ModelIntegrityError: the directory does not match its own ``digests.json`` (nothing is uploaded).
        """
        from pipelines.models.persistence import manifest_digest, verify_model_dir

        verify_model_dir(model_dir)
        digest = manifest_digest(model_dir)
        self.log_artifacts(run_id, model_dir, MODEL_DIR)
        return digest

    def register(self, run_id: str, tags: Mapping[str, Any], *, digest: str) -> int:
        """Register the model directory of a finished run as a new version (not yet complete).

        Args:
            run_id: the run whose ``model`` artifact is registered.
            tags: version tags (``complete`` is left out: :meth:`mark_complete` writes it last).
            digest: the sha256 of the model's ``digests.json`` as computed before upload (:meth:`log_model`);
                recorded as the tag ``digests_sha256`` when the version is created.

        Raises:
            ModelIntegrityError: ``digest`` is not a sha256, or the uploaded ``digests.json`` does not match it.
        """
        import mlflow.artifacts

        from pipelines.models.persistence import (
            DIGESTS_FILE,
            ModelIntegrityError,
            check_sha256,
            manifest_digest,
        )

        digest = check_sha256(digest, "the model digest to register")
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        source = f"{artifact_uri}/{MODEL_DIR}"
        with tempfile.TemporaryDirectory(prefix="docclass-register-") as tmp:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{source}/{DIGESTS_FILE}", dst_path=tmp, tracking_uri=self.tracking_uri
            )
            stored = manifest_digest(Path(tmp))
        if stored != digest:
            raise ModelIntegrityError(
                f"the {MODEL_DIR}/{DIGESTS_FILE} of run {run_id} does not match the model that was uploaded: "
                f"expected sha256 {digest}, found {stored}; not registering it"
            )
        self.ensure_model()
        own = {key: _tag(value) for key, value in tags.items() if key not in (COMPLETE, DIGEST_TAG)}
        mv = self.client.create_model_version(
            self.model_name, source=source, run_id=run_id, tags={**own, DIGEST_TAG: digest}
        )
        return int(mv.version)

    def set_version_tags(self, number: int, tags: Mapping[str, Any]) -> None:
        """Add or change tags of a version (never ``digests_sha256``: it is fixed at registration).

        Raises:
            RegistryError: ``tags`` sets ``digests_sha256``.
        """
        if DIGEST_TAG in tags:
            raise RegistryError(
                f"tag {DIGEST_TAG} is written once, when the version is registered: not changing it"
            )
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(number), key, _tag(value))

    def mark_complete(self, number: int) -> None:
        """The last step of a registration: from now on the version is listed and can be promoted."""
        self.client.set_model_version_tag(self.model_name, str(number), COMPLETE, "true")

    # ------------------------------------------------------------------------------------------- promotion

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

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

Setting an MLflow alias is not atomic (concurrent setters collide on its unique key and leave an arbitrary
winner), and MLflow keeps no history of alias moves. So promotion N is the registered model
``<model>-promotion-<N>``, created with the whole event in its tags (from, to, when, why, automatic or by whom):
the backend lets exactly one promoter create a name, which makes it a compare-and-set that works across machines,
and the claims are the durable history, visible in the MLflow UI. The alias follows the history
(:meth:`Registry.settle_champion`).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import sys
import tempfile
import uuid
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
    PROMOTION_CLAIM_INFIX,
    PROMOTION_OF,
    PromotionEvent,
    RegistryError,
    RegistryReader,
    VersionInfo,
    format_version,
    parse_version,
)

logger = logging.getLogger(__name__)

ROUND_FILE = "round.json"
_TAG_MAX = 4000  # below MLflow's model-version tag value limit
# A random id per attempt: a creator whose request was retried after a lost answer knows its own claim.
CLAIM_TAG = "docclass.claim"
_SETTLE_ATTEMPTS = 10


class AnyChampion(enum.Enum):
    """No expectation about the champion a move replaces (:meth:`Registry.move_champion`)."""

    ANY = "any"


ANY_CHAMPION = AnyChampion.ANY


class PromotionConflict(RegistryError):
    """A promotion changed nothing: the champion was not the expected one, or another promotion won the race.

    Attributes:
        current: the champion now.
        winner: the promotion that made it champion (None: no promotion recorded).
    """

    def __init__(self, message: str, current: int | None, winner: PromotionEvent | None) -> None:
        super().__init__(message)
        self.current = current
        self.winner = winner


__all__ = [
    "ANY_CHAMPION",
    "CHAMPION",
    "COMPLETE",
    "DIGEST_TAG",
    "MODEL_DIR",
    "ROUND_FILE",
    "PromotionConflict",
    "PromotionEvent",
    "Registry",
    "RegistryError",
    "VersionInfo",
    "bound_mlflow_retries",
    "format_version",
    "parse_version",
]


# MLflow's client retries a request to a server that does not answer 7 times with backoff factor 2: about four
# minutes per request. The loop has its own retries (Prefect task retries, then the schedule), so its processes
# bound MLflow's to about 3 s and an outage surfaces as a connection error. A value set in the environment wins.
MLFLOW_OUTAGE_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def bound_mlflow_retries() -> None:
    """Make this process's MLflow requests give up on an unreachable server in seconds (entry points call it)."""
    for key, value in MLFLOW_OUTAGE_RETRIES.items():
        os.environ.setdefault(key, value)


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
        """Create the registered model when missing (a concurrent creator is fine)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
            return
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            self.client.create_registered_model(
                self.model_name, description="docclass document classifier; alias `champion` is served."
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

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

    def move_champion(
        self,
        to: int | None,
        *,
        reason: str,
        by: str,
        automatic: bool,
        expected: int | None | AnyChampion = ANY_CHAMPION,
    ) -> PromotionEvent:
        """Make version ``to`` the champion (None: no champion, back to 1.0) by compare-and-set, and record it.

        The promotion is decided by the backend: the promoter creates the registered model
        ``<model>-promotion-<N+1>``, N being the last recorded promotion, and only one creator of a name
        succeeds. The winner then points the alias at ``to`` and reads it back; the others change nothing and
        get a :class:`PromotionConflict` naming the winner. A promoter that stops between its claim and the
        alias move leaves a recorded promotion that the next promoter (or :meth:`settle_champion`) carries out.

        Args:
            to: the version to make champion, None for none.
            reason: why (recorded).
            by: who (recorded).
            automatic: made by a training round rather than by hand.
            expected: the champion this move replaces (None: no champion); the move fails when the champion
                is another one. Default: whichever is champion when the move is made.

        Raises:
            PromotionConflict: the champion is not ``expected``, or another promotion won the same number.
            RegistryError: ``to`` is not a complete version, it is already the champion, or an empty reason.
        """
        from mlflow.exceptions import MlflowException

        if not reason.strip():
            raise RegistryError("a promotion needs a reason: expected a non-empty --reason")
        if to is not None:
            self.version(to)  # raises for a missing or incomplete version
        self.ensure_model()
        last = self.settle_champion()
        current = last.to_version if last is not None else self.champion_number()
        if not isinstance(expected, AnyChampion) and current != expected:
            raise PromotionConflict(
                f"{format_version(to)} was not made champion: the champion is {format_version(current)}"
                f"{_made(last)}, not {format_version(expected)} as expected. Nothing was changed: check "
                f"`docclass versions --history`, then promote again if {format_version(to)} should still replace "
                f"{format_version(current)}",
                current,
                last,
            )
        if to == current:
            raise RegistryError(f"version {format_version(to)} is already the champion: nothing to do")
        seq = (last.seq if last is not None else 0) + 1
        when = datetime.now(UTC).isoformat(timespec="seconds")
        event = PromotionEvent(seq, when, current, to, reason, by, automatic, self.claim_name(seq))
        claim = uuid.uuid4().hex
        try:
            self.client.create_registered_model(
                event.run_id,
                tags={**_event_tags(event), PROMOTION_OF: self.model_name, CLAIM_TAG: claim},
                description=(
                    f"docclass promotion #{seq} of {self.model_name}: {format_version(current)} -> "
                    f"{format_version(to)} by {by}: {_tag(reason)}"
                ),
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            if (self.client.get_registered_model(event.run_id).tags or {}).get(CLAIM_TAG) != claim:
                raise self._lost(event) from error
            # else our own claim: its creation was retried after the answer was lost
        self._point_alias(to)
        try:
            self.settle_champion()  # reads the alias back (and carries out a later promotion made meanwhile)
        except RegistryError as error:
            raise RegistryError(
                f"promotion #{seq} ({format_version(current)} -> {format_version(to)}) is recorded but the champion "
                f"alias was not read back at {format_version(to)}: {error}. The next promote, rollback or loop run "
                "moves the alias"
            ) from error
        return event

    def _lost(self, event: PromotionEvent) -> PromotionConflict:
        """The conflict of a promoter whose claim on ``event.seq`` was taken by another."""
        winner = next((e for e in self.history() if e.seq == event.seq), None)
        wanted = format_version(event.to_version)
        if winner is None:
            return PromotionConflict(
                f"{wanted} was not made champion: the registered model {event.run_id} exists but is not a docclass "
                f"promotion of {self.model_name!r}; expected that name free for promotion #{event.seq}: rename or "
                "delete that model",
                self.champion_number(),
                None,
            )
        return PromotionConflict(
            f"{wanted} was not made champion: promotion #{winner.seq} ({format_version(winner.from_version)} -> "
            f"{format_version(winner.to_version)} by {winner.by} at {winner.when}: {winner.reason}) was made at "
            f"the same time and won; the champion is now {format_version(winner.to_version)}. Nothing was changed: "
            f"check `docclass versions --history`, then promote again if {wanted} should still replace "
            f"{format_version(winner.to_version)}",
            winner.to_version,
            winner,
        )

    def settle_champion(self) -> PromotionEvent | None:
        """Point the alias at the last recorded promotion and read it back; returns that promotion (None: none).

        The history is the truth and the alias follows it: a promoter that stopped between its claim and the
        alias move, or an alias moved by hand in MLflow, is corrected here.

        Raises:
            RegistryError: the alias did not settle (promotions keep being made meanwhile).
        """
        for _ in range(_SETTLE_ATTEMPTS):
            alias = self.champion_number()  # before the history: a newer alias than the history read is fixed
            history = self.history()
            if not history:
                return None
            last = history[-1]
            if alias == last.to_version:
                return last
            logger.warning(
                "champion alias at %s, the last recorded promotion #%d made %s champion: moving the alias",
                format_version(alias),
                last.seq,
                format_version(last.to_version),
            )
            self._point_alias(last.to_version)
        raise RegistryError(
            f"the champion alias of {self.model_name!r} did not settle after {_SETTLE_ATTEMPTS} attempts: "
            "promotions keep being made; try again"
        )

    def settled_champion(self) -> int | None:
        """The champion after :meth:`settle_champion` (the alias when no promotion is recorded)."""
        last = self.settle_champion()
        return last.to_version if last is not None else self.champion_number()

    def claim_name(self, seq: int) -> str:
        """The registered model whose creation is promotion ``seq``."""
        return f"{self.model_name}{PROMOTION_CLAIM_INFIX}{seq}"

    def _point_alias(self, to: int | None) -> None:
        from mlflow.exceptions import MlflowException

        try:
            if to is None:
                self.client.delete_registered_model_alias(self.model_name, CHAMPION)
            else:
                self.client.set_registered_model_alias(self.model_name, CHAMPION, str(to))
        except MlflowException as error:
            # Two settlers of a missing alias collide on its unique key; the alias is read back by the caller.
            logger.info("moving the champion alias to %s: %s", format_version(to), error)


def _event_tags(event: PromotionEvent) -> dict[str, str]:
    return {
        "seq": str(event.seq),
        "when": event.when,
        "from": str(event.from_version or 0),
        "to": str(event.to_version or 0),
        "reason": _tag(event.reason),
        "by": _tag(event.by),
        "automatic": "true" if event.automatic else "false",
    }


def _made(event: PromotionEvent | None) -> str:
    return f" (promotion #{event.seq} by {event.by} at {event.when}: {event.reason})" if event else ""

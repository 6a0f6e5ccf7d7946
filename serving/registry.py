"""The registry read side: what the service (and anything else that only reads) needs of MLflow.

Champion alias, registered versions with their tags, the promotion history, and the artefacts of a version,
downloaded and verified against the digest recorded when the version was registered. It imports MLflow and
``flows.settings`` only; the write side (runs, registration, alias moves) is :class:`flows.registry.Registry`,
which extends :class:`RegistryReader`, so the service never loads flows' orchestration.

API version ``1.N`` is registered version N of the model; ``1.0`` means no model. A version is usable only once it
carries the tag ``complete=true``. Its tag ``digests_sha256`` is the sha256 of ``model/digests.json``, which lists
the sha256 of every model file (:mod:`pipelines.models.persistence`): nothing of a version is unpickled before
every file matches it.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION = "champion"
COMPLETE = "complete"
MODEL_DIR = "model"
# The sha256 of model/digests.json, set when the version is created and never changed afterwards.
DIGEST_TAG = "digests_sha256"
# Promotion N of model M is the registered model "M-promotion-N", tagged with PROMOTION_OF = M (flows.registry).
PROMOTION_CLAIM_INFIX = "-promotion-"
PROMOTION_OF = "docclass.promotion_of"


class RegistryError(RuntimeError):
    """The registry is unreachable, or a version / alias operation cannot be done as asked."""


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
        reasons: list[str] = json.loads(self.tags.get("gate_reasons") or "[]")
        return reasons

    def metric(self, key: str) -> float | None:
        return _float(self.tags.get(key))

    def row(self) -> dict[str, Any]:
        """The JSON form used by `docclass versions --json` and ``GET /versions``."""
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


@dataclass(frozen=True)
class VerifiedModel:
    """A version's classifier, metadata and page splitter (None when it has none), loaded after verification."""

    number: int
    model: Any = field(repr=False)
    meta: dict[str, Any] = field(repr=False)
    splitter: Any = field(default=None, repr=False)


def _promotion_event(tags: Mapping[str, str], ref: str) -> PromotionEvent:
    return PromotionEvent(
        seq=int(tags["seq"]),
        when=tags["when"],
        from_version=int(tags["from"]) or None,
        to_version=int(tags["to"]) or None,
        reason=tags.get("reason", ""),
        by=tags.get("by", ""),
        automatic=tags.get("automatic") == "true",
        run_id=ref,
    )


def no_champion_message(versions: Sequence[VersionInfo], min_labels: int | None) -> str:
    """Why there is no model to serve (version 1.0), from what the registry holds.

    Args:
        versions: the complete registered versions, oldest first (none of them champion).
        min_labels: labels the first training round needs (params ``serve.min_labels``), if known.
    """
    if not versions:
        need = f" (the first one runs at {min_labels} labels)" if min_labels else ""
        return f"no model yet (version 1.0): no version is registered; label documents and run a training round{need}"
    latest = versions[-1]
    labels = latest.tags.get("label_count", "?")
    if latest.passed:
        why = "passed its gates but is not champion: promote it with `docclass promote`"
    else:
        why = "failed its gates: " + ("; ".join(latest.reasons) or "no reason recorded")
    return (
        f"no model yet (version 1.0): {len(versions)} version(s) registered, none is champion; the latest, "
        f"{latest.name} ({labels} labels), {why}"
    )


class RegistryReader:
    """Read-only view of an MLflow registry (any tracking URI, e.g. ``sqlite:///...`` or ``http://...``)."""

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
            artifact_root = (
                Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "artifacts"
            ).as_uri()
        self.artifact_root = artifact_root
        self.model_name = model_name
        self.experiment = experiment
        self._client: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryReader:
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

    def _model_version(self, number: int) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(self.model_name, str(number))
        except MlflowException as error:
            raise RegistryError(
                f"version {format_version(number)} of {self.model_name!r} does not exist: see `docclass versions`"
            ) from error

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
        info = self._info(self._model_version(number), self.champion_number())
        if not info.complete:
            raise RegistryError(
                f"version {info.name} is incomplete (its round crashed): rerun the round to complete it"
            )
        return info

    def champion(self) -> VersionInfo | None:
        number = self.champion_number()
        return self.version(number) if number is not None else None

    def history(self) -> list[PromotionEvent]:
        """Every move of the champion alias, oldest first, one event per promotion number.

        A promotion is the registered model ``<model>-promotion-<seq>`` its promoter created (the backend lets one
        creator have a name: the compare-and-set of :meth:`flows.registry.Registry.move_champion`); registries
        written before that hold runs in the experiment ``<experiment>-promotions``, read for the numbers no
        claim holds.
        """
        events = {event.seq: event for event in self._promotion_runs()}
        events.update((event.seq, event) for event in self._promotion_claims())
        return [events[seq] for seq in sorted(events)]

    def _promotion_claims(self) -> list[PromotionEvent]:
        pattern = re.compile(re.escape(f"{self.model_name}{PROMOTION_CLAIM_INFIX}") + r"([1-9][0-9]*)")
        events, token = [], None
        while True:
            page = self.client.search_registered_models(
                filter_string=f"name LIKE '{self.model_name}{PROMOTION_CLAIM_INFIX}%'",
                max_results=1000,
                page_token=token,
            )
            for model in page:
                tags = dict(model.tags or {})
                found = pattern.fullmatch(model.name)
                if found and tags.get(PROMOTION_OF) == self.model_name and tags.get("seq") == found.group(1):
                    events.append(_promotion_event(tags, model.name))
            token = page.token
            if not token:
                return events

    def _promotion_runs(self) -> list[PromotionEvent]:
        found = self.client.get_experiment_by_name(f"{self.experiment}-promotions")
        if found is None:
            return []
        runs = self.client.search_runs([found.experiment_id], max_results=10000)
        return [_promotion_event(run.data.tags, run.info.run_id) for run in runs]

    # ------------------------------------------------------------------------------- verified artefacts

    def registered_digest(self, number: int) -> str:
        """The ``digests_sha256`` tag of a version: what its artefacts must hash to.

        Raises:
            RegistryError: no such version.
            ModelIntegrityError: the version carries no valid digest (it is never loaded then).
        """
        return self._digest(self._model_version(number))

    def _digest(self, mv: Any) -> str:
        from pipelines.models.persistence import ModelIntegrityError, check_sha256

        name = format_version(int(mv.version))
        value = (mv.tags or {}).get(DIGEST_TAG)
        if not value:
            raise ModelIntegrityError(
                f"version {name} has no {DIGEST_TAG} tag: expected the sha256 of its {MODEL_DIR}/digests.json "
                f"recorded at registration (a version registered before digests were recorded must be trained "
                f"and registered again); refusing to load it"
            )
        return check_sha256(value, f"tag {DIGEST_TAG} of version {name}")

    def verify_model(self, number: int, model_dir: Path) -> None:
        """Check a local copy of version ``number``'s model directory against its registered digest.

        Raises:
            ModelIntegrityError: a file is missing, changed or unlisted, or the version has no digest.
        """
        from pipelines.models.persistence import ModelIntegrityError, verify_model_dir

        try:
            verify_model_dir(model_dir, self.registered_digest(number))
        except ModelIntegrityError as error:
            raise ModelIntegrityError(f"version {format_version(number)}: {error}") from error

    def download_model(self, number: int, dst: Path) -> Path:
        """The model directory of a version, downloaded into ``dst`` and verified against its registered digest.

        A copy that fails verification is deleted before the error is raised.

        Raises:
            RegistryError: no such version, or it is incomplete (nothing is downloaded).
            ModelIntegrityError: no registered digest, or the artefacts do not match it.
        """
        return self._download(self._model_version(number), dst)[0]

    def _download(self, mv: Any, dst: Path) -> tuple[Path, str]:
        import mlflow.artifacts

        from pipelines.models.persistence import ModelIntegrityError, verify_model_dir

        if (mv.tags or {}).get(COMPLETE) != "true":
            # A round that crashed between register and mark_complete: its tags (gate, metrics, promotion) may be
            # missing, so it is never served or used, whatever alias points at it, until a rerun completes it.
            raise RegistryError(
                f"version {format_version(int(mv.version))} is incomplete (its round did not finish registering "
                f"it): not loading it; rerun the round to complete it"
            )
        digest = self._digest(mv)  # no digest, no download
        dst.mkdir(parents=True, exist_ok=True)
        # The version's source, not a models:/ URI: that one resolves through the process-wide registry URI.
        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=mv.source, dst_path=str(dst), tracking_uri=self.tracking_uri
            )
        )
        try:
            verify_model_dir(path, digest)
        except ModelIntegrityError as error:
            shutil.rmtree(path, ignore_errors=True)
            raise ModelIntegrityError(f"version {format_version(int(mv.version))}: {error}") from error
        return path, digest

    def model_meta(self, number: int) -> dict[str, Any]:
        """``meta.json`` of a version (metrics, classes, params), verified, without downloading the weights.

        Raises:
            RegistryError: no such version.
            ModelIntegrityError: ``digests.json`` or ``meta.json`` do not match the registered digest.
        """
        import mlflow.artifacts

        from pipelines.models.persistence import DIGESTS_FILE, META_FILE, ModelIntegrityError, read_meta

        mv = self._model_version(number)
        digest, source = self._digest(mv), str(mv.source).rstrip("/")
        with tempfile.TemporaryDirectory(prefix="docclass-meta-") as tmp:
            for name in (DIGESTS_FILE, META_FILE):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{source}/{name}", dst_path=tmp, tracking_uri=self.tracking_uri
                )
            try:
                return read_meta(Path(tmp), digest)
            except ModelIntegrityError as error:
                raise ModelIntegrityError(f"version {format_version(number)}: {error}") from error

    def load_version(self, number: int, workdir: Path) -> VerifiedModel:
        """Download version ``number`` into a fresh folder under ``workdir``, verify every file against the
        registered digest, load the classifier and splitter, remove the files.

        Raises:
            RegistryError: no such version, or it is incomplete (nothing is downloaded).
            ModelIntegrityError: the artefacts do not match the registered digest (nothing was unpickled).
            ModelLoadError: the files are intact but cannot be loaded here (e.g. other library versions).
        """
        from pipelines.models.persistence import load_verified
        from pipelines.split import SPLITTER_FILE, load_splitter

        Path(workdir).mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix=f"v{number}-", dir=workdir))
        try:
            model_dir, digest = self._download(self._model_version(number), target)
            # load_model checks the digests again on the bytes it unpickles: nothing can change in between.
            model, meta, verified = load_verified(model_dir, digest)
            # the splitter is unpickled from the bytes just verified, never read from disk again
            splitter = (
                load_splitter(model_dir, verified[SPLITTER_FILE]) if SPLITTER_FILE in verified else None
            )
        finally:
            shutil.rmtree(target, ignore_errors=True)
        return VerifiedModel(number=number, model=model, meta=meta, splitter=splitter)

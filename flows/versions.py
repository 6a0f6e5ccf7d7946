"""Training rounds as auditable versions: snapshot -> DVC push -> train -> evaluate champion -> register -> gate
-> promote; and the audit side: reproduce a version from its stored dataset, compare two versions.

A round is a function of (dataset snapshot, params, code). Its key (dataset md5 + params hash + candidates) makes
it idempotent: rerunning a round reuses its complete version, completes an incomplete one, or registers the
finished runs of a round that crashed before registration, without training again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.registry import (
    MODEL_DIR,
    ROUND_FILE,
    PromotionConflict,
    Registry,
    RegistryError,
    format_version,
    parse_version,
)
from flows.settings import Settings
from pipelines.params import REPO_ROOT

logger = logging.getLogger(__name__)

TRAIN_DOCS_FILE = "train_docs.json"
PARAMS_FILE = "params.json"
HEADLINE = ("accuracy", "macro_f1", "weighted_f1", "ece", "log_loss")
Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------ dataset snapshots


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """DVC prints progress to stdout; stdout of the CLI carries results only."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


# Options of a DVC remote that hold credentials (kept out of the repository's shared config).
REMOTE_SECRETS = frozenset({"access_key_id", "secret_access_key", "session_token", "password"})


@dataclass(frozen=True)
class Snapshot:
    """A dataset directory versioned by DVC: ``md5`` is DVC's directory hash (``<md5>.dir``)."""

    md5: str
    nfiles: int
    path: Path


class SnapshotStore:
    """A local DVC repository (no git) whose one output, ``dataset``, is each round's dataset snapshot.

    Every snapshot is pushed to the DVC remote; a version records only the md5, and :meth:`restore` fetches it
    back from the remote into any folder, so the local store can be deleted without losing a version's data.
    ``remote_options`` are more options of the remote (e.g. ``endpointurl`` of an S3 remote); those holding
    credentials go to the repository's local config (``.dvc/config.local``).
    """

    def __init__(self, root: Path, remote_url: str, remote_options: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.remote_url = remote_url if "://" in remote_url else str(Path(remote_url).resolve())
        self.remote_options = dict(remote_options or {})

    def _repo(self, root: Path) -> Any:
        from dvc.repo import Repo

        if not (root / ".dvc").is_dir():
            root.mkdir(parents=True, exist_ok=True)
            # DVC logs "Initialized DVC repository." through a handler bound to the real stdout.
            init_logger = logging.getLogger("dvc.repo.init")
            level = init_logger.level
            init_logger.setLevel(logging.WARNING)
            try:
                with _quiet_stdout():
                    Repo.init(str(root), no_scm=True)
            finally:
                init_logger.setLevel(level)
        repo = Repo(str(root))
        public = {k: v for k, v in self.remote_options.items() if k not in REMOTE_SECRETS}
        secret = {k: v for k, v in self.remote_options.items() if k in REMOTE_SECRETS}
        # Both levels change before the merged config is checked (a local secret fits an s3:// remote only).
        with repo.config.edit("local", validate=False) as conf:
            if secret:
                conf["remote"]["store"] = secret
            else:
                conf["remote"].pop("store", None)
        with repo.config.edit() as conf:
            conf["remote"]["store"] = {"url": self.remote_url, **public}
            conf["core"]["remote"] = "store"
            conf["core"]["analytics"] = False
        return repo

    def snapshot(self, dataset_dir: Path) -> Snapshot:
        """Copy the dataset into the store, ``dvc add`` it and push it to the remote.

        Raises:
            FileNotFoundError: ``dataset_dir`` is not a directory.
        """
        import yaml

        dataset_dir = Path(dataset_dir)
        if not dataset_dir.is_dir():
            raise FileNotFoundError(
                f"dataset {dataset_dir} is not a directory: expected documents + labels.csv or a folder per class"
            )
        target = self.root / "dataset"
        repo = self._repo(self.root)
        try:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(dataset_dir, target, ignore=shutil.ignore_patterns(".*"))
            with _quiet_stdout():
                repo.add(str(target))
                repo.push()
        finally:
            repo.close()
        out = yaml.safe_load((self.root / "dataset.dvc").read_text())["outs"][0]
        md5 = str(out["md5"]).removesuffix(".dir")
        return Snapshot(md5=md5, nfiles=int(out.get("nfiles", 0)), path=target)

    def restore(self, md5: str, dest: Path) -> Path:
        """Fetch snapshot ``md5`` from the remote into ``dest/dataset`` (``dest`` becomes a throwaway DVC repo).

        Raises:
            RuntimeError: the remote does not hold the snapshot.
        """
        import yaml
        from dvc.exceptions import DvcException

        dest = Path(dest)
        repo = self._repo(dest)
        try:
            stage = {"outs": [{"md5": f"{md5}.dir", "path": "dataset", "hash": "md5"}]}
            (dest / "dataset.dvc").write_text(yaml.safe_dump(stage))
            with _quiet_stdout():
                repo.pull(targets=[str(dest / "dataset.dvc")])
        except DvcException as error:
            raise RuntimeError(
                f"dataset snapshot {md5} could not be restored from the DVC remote {self.remote_url}: {error}"
            ) from error
        finally:
            repo.close()
        return dest / "dataset"


# -------------------------------------------------------------------------------------------------- helpers


def params_hash(params: Mapping[str, Any], candidates: Sequence[str]) -> str:
    """Hash of everything in params.yaml that changes what a round trains."""
    relevant = {
        "seed": params["seed"],
        "ingest": params["ingest"],
        "extract": params["extract"],
        "train": {**params["train"], "candidates": list(candidates)},
        "ece_bins": params["evaluate"]["ece_bins"],
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_commit() -> str:
    """Commit of the code (``+dirty`` with uncommitted changes), or ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def _load(dataset_dir: Path, params: Mapping[str, Any], cache_dir: Path | None) -> Any:
    from pipelines.dataset import load_labeled_documents
    from pipelines.extract import ExtractConfig, ExtractionCache
    from pipelines.ingest import Limits
    from pipelines.models.semantic import use_embedding_store

    # each round runs in a new process: the embeddings of documents already seen come from disk
    use_embedding_store(cache_dir / "embeddings" if cache_dir is not None else None)
    return load_labeled_documents(
        dataset_dir,
        ExtractConfig.from_params(params["extract"]),
        Limits.from_params(params["ingest"]),
        cache=ExtractionCache(cache_dir) if cache_dir is not None else None,
    )


def _headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {key: metrics.get(key) for key in HEADLINE}


# ---------------------------------------------------------------------------------------------- the round


@dataclass
class RoundOutcome:
    """What a round did: the version, its gate result, whether it was promoted or reused."""

    version: int
    passed: bool
    reasons: list[str]
    promoted: bool
    reused: bool
    dataset_md5: str
    forward_accuracy: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "version": format_version(self.version),
            "gate": "pass" if self.passed else "fail",
            "reasons": self.reasons,
            "promoted": self.promoted,
            "reused": self.reused,
            "dataset_revision": self.dataset_md5,
            "forward_accuracy": self.forward_accuracy,
            **{key: self.metrics.get(key) for key in ("accuracy", "macro_f1")},
        }


def _evaluate_champion(
    registry: Registry,
    champion: Any,
    dataset: Any,
    result: Any,
    params: Mapping[str, Any],
    workdir: Path,
) -> tuple[dict[str, Any] | None, Any, dict[str, Any]]:
    """The champion on this round's data: its recipe cross-validated on the same folds, and the forward accuracy
    of the champion model on the documents it has never seen.

    Returns:
        (champion metrics on the same data, ForwardAccuracy or None, tags describing both).
    """
    from pipelines.evaluate import cross_validate
    from pipelines.gates import forward_accuracy
    from pipelines.models import CandidateUnavailable, make_candidate
    from pipelines.models.persistence import LibraryVersionError

    if champion is None:
        return None, None, {}
    recorded = registry.read_json(champion.run_id, PARAMS_FILE)
    trained_on = {row["sha256"] for row in registry.read_json(champion.run_id, TRAIN_DOCS_FILE)}
    name = champion.tags["candidate"]
    same_recipe = (
        recorded["seed"] == params["seed"]
        and {k: v for k, v in recorded["train"].items() if k != "candidates"}
        == {k: v for k, v in params["train"].items() if k != "candidates"}
        and recorded["extract"] == params["extract"]
    )
    reused = next((r for r in result.results if r.name == name and r.report is not None), None)
    if same_recipe and reused is not None:
        champion_metrics: dict[str, Any] = reused.report.metrics
    else:
        try:
            champion_metrics = cross_validate(
                lambda: make_candidate(name, recorded["train"], int(recorded["seed"])),
                dataset.documents,
                dataset.labels,
                seed=int(params["seed"]),
                max_folds=int(params["train"]["max_folds"]),
                ece_bins=int(params["evaluate"]["ece_bins"]),
            ).metrics
        except (CandidateUnavailable, ValueError) as error:
            logger.warning("champion %s could not be cross-validated on this data: %s", champion.name, error)
            champion_metrics = {}
    new = [i for i, doc in enumerate(dataset.documents) if doc.sha256 not in trained_on]
    forward = None
    unloadable = None
    if new:
        # Downloaded and checked against the digest registered with the champion before anything is unpickled.
        try:
            model = registry.load_version(champion.number, workdir).model
        except LibraryVersionError as error:
            # saved by libraries or docclass model code this process cannot load (an upgrade): the service
            # cannot load it either, so the round goes on without the forward comparison and says why
            logger.warning(
                "champion %s cannot be loaded here, no forward comparison: %s", champion.name, error
            )
            unloadable = str(error)
            new = []
    if new:
        docs = [dataset.documents[i] for i in new]
        truth = [dataset.labels[i] for i in new]
        oof = dict(zip(result.best.report.sha256, result.best.report.y_pred, strict=True))
        forward = forward_accuracy(
            truth, [str(p) for p in model.predict(docs)], [oof[doc.sha256] for doc in docs]
        )
    tags = {
        "champion_at_round": champion.name,
        "champion_accuracy_same_data": champion_metrics.get("accuracy"),
        "champion_macro_f1_same_data": champion_metrics.get("macro_f1"),
        "new_docs": len(new),
        "forward_accuracy": forward.champion if forward else None,
        "new_docs_accuracy": forward.candidate if forward else None,
    }
    if unloadable is not None:
        tags["champion_unloadable"] = unloadable
    return champion_metrics, forward, tags


def _log_round(
    registry: Registry,
    round_key: str,
    snapshot: Snapshot,
    dataset: Any,
    result: Any,
    params: Mapping[str, Any],
    info: dict[str, Any],
    workdir: Path,
) -> str:
    """Every candidate as an MLflow run under a parent round run; the best one carries the model.

    The parent run is finished last, so a finished round run means every run and artifact is complete.

    Returns:
        The parent run id.
    """
    from pipelines.evaluate import confusion_matrix_png, write_report
    from pipelines.models import save_model
    from pipelines.models.persistence import seal_model_dir

    common = {
        "round_key": round_key,
        "dataset_md5": snapshot.md5,
        "label_count": len(dataset.labels),
        "git_commit": info["git_commit"],
        "params_hash": info["params_hash"],
    }
    parent = registry.start_run(f"round {snapshot.md5[:8]}", {**common, "kind": "round"})
    registry.log_values(
        parent,
        params={"seed": params["seed"], "candidates": info["candidates"], "dataset_md5": snapshot.md5},
        metrics={"label_count": len(dataset.labels), "documents_rejected": len(dataset.rejected)},
    )
    registry.log_json(parent, PARAMS_FILE, params)
    dvc_lock = REPO_ROOT / "dvc.lock"
    if dvc_lock.is_file():
        registry.client.log_artifact(parent, str(dvc_lock))
    best_run = ""
    for candidate in result.results:
        run = registry.start_run(
            candidate.name, {**common, "kind": "candidate", "status": candidate.status}, parent_run_id=parent
        )
        section = params["train"].get(candidate.name)
        run_params = {
            "candidate": candidate.name,
            "seed": params["seed"],
            "max_folds": params["train"]["max_folds"],
        }
        run_params.update(_flat(candidate.name, section) if isinstance(section, Mapping) else {})
        metrics: dict[str, float | None] = {"cv_seconds": candidate.seconds}
        if candidate.report is not None:
            m = candidate.report.metrics
            metrics.update({key: m.get(key) for key in HEADLINE})
            metrics.update({"n_folds": m.get("n_folds"), "n_docs": m.get("n_docs")})
            for label, row in m["per_class"].items():
                metrics.update({f"{key}_{label}": row[key] for key in ("precision", "recall", "f1")})
            report_dir = workdir / "reports" / candidate.name
            write_report(candidate.report, report_dir)
            confusion_matrix_png(m["confusion_matrix"], m["classes"], report_dir / "confusion.png")
            registry.log_artifacts(run, report_dir, "evaluation")
        registry.log_values(run, params=run_params, metrics=metrics, tags={"reason": candidate.reason or ""})
        if candidate.name == result.candidate:
            model_dir = workdir / MODEL_DIR
            save_model(
                result.model,
                model_dir,
                {
                    "n_documents": len(dataset.documents),
                    "dataset_md5": snapshot.md5,
                    "seed": int(params["seed"]),
                    "train_params": params["train"],
                    "extract_params": params["extract"],
                    "review_threshold": float(params["predict"]["review_threshold"]),
                    "cross_validation": candidate.report.metrics,
                    "candidates": [r.summary() for r in result.results],
                },
            )
            from pipelines.split import fit_splitter, save_splitter

            # The page splitter (multi-document PDFs) is trained on the same documents and ships with the model.
            splitter = fit_splitter(
                dataset.documents, dataset.labels, params.get("split"), int(params["seed"])
            )
            save_splitter(splitter, model_dir)
            # Seal again with the splitter: its digest, recorded at registration, vouches for every model file.
            seal_model_dir(model_dir)
            info["model_digest"] = registry.log_model(run, model_dir)
            registry.log_json(
                run,
                TRAIN_DOCS_FILE,
                [
                    {"sha256": d.sha256, "name": d.name, "label": y}
                    for d, y in zip(dataset.documents, dataset.labels, strict=True)
                ],
            )
            registry.log_json(run, PARAMS_FILE, params)
            registry.log_values(
                run,
                metrics={
                    "forward_accuracy": info["tags"].get("forward_accuracy"),
                    "new_docs_accuracy": info["tags"].get("new_docs_accuracy"),
                },
                tags={"selected": "true", "gate": info["tags"]["gate"]},
            )
            best_run = run
        registry.finish_run(run)
    info["best_run_id"] = best_run
    registry.log_json(parent, ROUND_FILE, info)
    registry.log_values(parent, tags={"best_run_id": best_run, "gate": info["tags"]["gate"]})
    registry.finish_run(parent)
    return parent


def _register(registry: Registry, info: Mapping[str, Any], parent: str) -> int:
    """Register the best run's model with every tag and its digest, then mark the version complete (last).

    Raises:
        RegistryError: the round was logged without a model digest (by a version of docclass before digests).
    """
    if not info.get("model_digest"):
        raise RegistryError(
            f"round run {parent} has no model_digest in its {ROUND_FILE}: expected one recorded when the model was "
            f"uploaded; a round logged without digests cannot be registered, train it again"
        )
    number = registry.register(
        info["best_run_id"], {**info["tags"], "round_run_id": parent}, digest=str(info["model_digest"])
    )
    registry.mark_complete(number)
    return number


def _complete(registry: Registry, number: int, info: Mapping[str, Any], parent: str) -> None:
    registry.set_version_tags(number, {**info["tags"], "round_run_id": parent})
    registry.mark_complete(number)


def _promote(registry: Registry, number: int, info: Mapping[str, Any], log: Log) -> bool:
    """Move the champion to a passing version by compare-and-set against the champion of the round (idempotent:
    a rerun finds the promotion a crash left untagged in the history).

    A different champion since the round started (a later round or a manual promotion) is respected: the version
    is not promoted.
    """
    version = registry.version(number)
    if version.tags.get("promotion"):
        return version.tags["promotion"] == "promoted"
    promote = bool(info["promote"])
    if promote and not any(e.to_version == number and e.automatic for e in registry.history()):
        at_round = parse_version(info["tags"].get("champion_at_round", "1.0")) or None
        try:
            registry.move_champion(
                number, reason=info["promotion_reason"], by="round", automatic=True, expected=at_round
            )
        except PromotionConflict as conflict:
            log(
                f"champion changed to {format_version(conflict.current)} since the round started: "
                f"{version.name} not promoted"
            )
            promote = False
    registry.set_version_tags(number, {"promotion": "promoted" if promote else "not promoted"})
    return promote


def _train(dataset: Any, params: Mapping[str, Any], candidates: Sequence[str]) -> Any:
    """The one way a round trains, so that `reproduce` retrains exactly as the round did."""
    from pipelines.train import train_best

    return train_best(
        dataset.documents,
        dataset.labels,
        params["train"],
        seed=int(params["seed"]),
        ece_bins=int(params["evaluate"]["ece_bins"]),
        candidates=list(candidates),
    )


def run_round(
    dataset_dir: Path,
    params: Mapping[str, Any],
    registry: Registry,
    store: SnapshotStore,
    *,
    cache_dir: Path | None = None,
    candidates: Sequence[str] | None = None,
    log: Log = logger.info,
) -> RoundOutcome:
    """One training round: snapshot the dataset in DVC (pushed to the remote), cross-validate the candidates,
    measure the champion on the same data and its forward accuracy on the new documents, log every candidate as an
    MLflow run, register the best one, gate it and promote it when it passes.

    Args:
        dataset_dir: documents + labels.csv, or a folder per class.
        params: params.yaml as loaded (needs the ``gate:`` section).
        registry: the MLflow registry.
        store: the DVC snapshot store.
        cache_dir: extraction cache.
        candidates: candidates to try (default ``params["train"]["candidates"]``).
        log: progress messages.

    Returns:
        The outcome (a rerun of the same round returns the same version with ``reused``).

    Raises:
        ValueError: bad gate thresholds, or a dataset that cannot be trained on.
        RegistryError: the registry is unreachable.
    """
    from pipelines.gates import check_gates, check_thresholds, should_promote

    if "gate" not in params:
        raise ValueError(
            "params lack the gate: section: expected min_accuracy, min_macro_f1, min_class_recall, max_regression"
        )
    thresholds = check_thresholds(params["gate"])
    names = list(candidates or params["train"]["candidates"])
    registry.check_reachable()
    snapshot = store.snapshot(dataset_dir)
    round_key = hashlib.sha256(f"{snapshot.md5}:{params_hash(params, names)}".encode()).hexdigest()[:24]
    log(f"dataset snapshot {snapshot.md5} ({snapshot.nfiles} files) pushed to {store.remote_url}")

    existing = registry.find_version(round_key)
    parent = registry.find_finished_round(round_key)
    if parent is None and existing is not None:
        parent = existing.tags["round_run_id"]
    if parent is not None:
        info = registry.read_json(parent, ROUND_FILE)
        if existing is None:
            log("round already trained (finished runs found): registering it")
            number = _register(registry, info, parent)
        elif not existing.complete:
            log(f"completing version {existing.name} left incomplete by an interrupted round")
            number = existing.number
            _complete(registry, number, info, parent)
        else:
            log(f"round already done: version {existing.name}")
            number = existing.number
        promoted = _promote(registry, number, info, log)
        return _outcome(
            number, info, promoted, reused=existing is not None and existing.complete, md5=snapshot.md5
        )

    dataset = _load(snapshot.path, params, cache_dir)
    for rejected in dataset.rejected:
        log(f"rejected {rejected.name}: {rejected.reason}")
    log(f"training on {len(dataset.documents)} documents, candidates {', '.join(names)}")
    result = _train(dataset, params, names)
    best = result.best.report.metrics
    champion = registry.champion()
    with tempfile.TemporaryDirectory(prefix="docclass-round-") as tmp:
        workdir = Path(tmp)
        champion_metrics, forward, champion_tags = _evaluate_champion(
            registry, champion, dataset, result, params, workdir
        )
        reasons = check_gates(best, thresholds, champion_metrics, forward)
        promote = not reasons and should_promote(best, champion_metrics, thresholds["max_regression"])
        recalls = [row["recall"] for row in best["per_class"].values()]
        tags = {
            "round_key": round_key,
            "dataset_md5": snapshot.md5,
            "dataset_files": snapshot.nfiles,
            "label_count": len(dataset.labels),
            "labels": {label: dataset.labels.count(label) for label in sorted(set(dataset.labels))},
            "candidate": result.candidate,
            **{key: best.get(key) for key in HEADLINE},
            "min_class_recall": min(recalls) if recalls else None,
            "new_docs": len(dataset.documents),
            "forward_accuracy": None,
            **champion_tags,
            "gate": "fail" if reasons else "pass",
            "gate_reasons": reasons,
            "params_hash": params_hash(params, names),
            "git_commit": git_commit(),
            "seed": params["seed"],
        }
        if reasons:
            why = "gate failed: " + "; ".join(reasons)
        elif champion is None:
            why = "first passing version"
        elif promote:
            why = f"passed the gates and matches or beats champion {champion.name} on the same data"
        else:
            why = f"passed the gates but below champion {champion.name} on the same data"
        info = {
            "tags": {key: value for key, value in tags.items()},
            "promote": promote,
            "promotion_reason": why,
            "candidates": names,
            "git_commit": tags["git_commit"],
            "params_hash": tags["params_hash"],
        }
        parent = _log_round(registry, round_key, snapshot, dataset, result, params, info, workdir)
    number = _register(registry, info, parent)
    log(
        f"registered version {format_version(number)}: gate {tags['gate']}" + (f" ({why})" if reasons else "")
    )
    promoted = _promote(registry, number, info, log)
    return _outcome(number, info, promoted, reused=False, md5=snapshot.md5)


def _outcome(number: int, info: Mapping[str, Any], promoted: bool, *, reused: bool, md5: str) -> RoundOutcome:
    tags = info["tags"]
    return RoundOutcome(
        version=number,
        passed=tags["gate"] == "pass",
        reasons=list(tags["gate_reasons"]),
        promoted=promoted,
        reused=reused,
        dataset_md5=md5,
        forward_accuracy=tags.get("forward_accuracy"),
        metrics={key: tags.get(key) for key in HEADLINE},
    )


# ------------------------------------------------------------------------------------------------- audit


@dataclass
class Reproduction:
    """Recorded and reproduced metrics of a version; ``identical`` when every one matches exactly."""

    version: int
    dataset_md5: str
    candidate: str
    recorded: dict[str, Any]
    reproduced: dict[str, Any]
    same_candidate: bool
    recorded_commit: str
    current_commit: str

    @property
    def differences(self) -> dict[str, tuple[Any, Any]]:
        keys = sorted(set(self.recorded) | set(self.reproduced))
        return {
            key: (self.recorded.get(key), self.reproduced.get(key))
            for key in keys
            if self.recorded.get(key) != self.reproduced.get(key)
        }

    @property
    def identical(self) -> bool:
        return self.same_candidate and not self.differences

    def row(self) -> dict[str, Any]:
        return {
            "version": format_version(self.version),
            "dataset_revision": self.dataset_md5,
            "candidate": self.candidate,
            "identical": self.identical,
            "recorded": {k: self.recorded.get(k) for k in HEADLINE},
            "reproduced": {k: self.reproduced.get(k) for k in HEADLINE},
            "differences": {k: list(v) for k, v in self.differences.items()},
            "recorded_commit": self.recorded_commit,
            "current_commit": self.current_commit,
        }


def reproduce(
    number: int,
    registry: Registry,
    store: SnapshotStore,
    *,
    cache_dir: Path | None = None,
    log: Log = logger.info,
) -> Reproduction:
    """Restore a version's dataset from the DVC remote into a temporary folder, retrain with its recorded params and
    candidates, and compare every cross-validated metric with the recorded ones.

    Raises:
        RegistryError: no such complete version.
        ModelIntegrityError: its recorded metadata do not match the digest registered with it.
        RuntimeError: the snapshot is not on the remote.
    """

    version = registry.version(number)
    if version.run_id is None:
        raise RegistryError(f"version {version.name} has no run: expected one registered by a training round")
    parent = version.tags["round_run_id"]
    info = registry.read_json(parent, ROUND_FILE)
    params = registry.read_json(version.run_id, PARAMS_FILE)
    recorded = registry.model_meta(number)["cross_validation"]  # checked against the registered digest
    md5 = version.tags["dataset_md5"]
    with tempfile.TemporaryDirectory(prefix="docclass-reproduce-") as tmp:
        dataset_dir = store.restore(md5, Path(tmp))
        log(f"restored dataset {md5} from {store.remote_url} into a temporary folder")
        dataset = _load(dataset_dir, params, cache_dir)
        result = _train(dataset, params, info["candidates"])
    return Reproduction(
        version=number,
        dataset_md5=md5,
        candidate=version.tags["candidate"],
        recorded=recorded,
        reproduced=result.best.report.metrics,
        same_candidate=result.candidate == version.tags["candidate"],
        recorded_commit=version.tags.get("git_commit", "unknown"),
        current_commit=git_commit(),
    )


def compare(registry: Registry, a: int, b: int) -> dict[str, Any]:
    """Metric deltas (b - a) and the confusion-matrix difference of two versions.

    The confusion matrices count out-of-fold predictions on each version's own dataset; they are aligned on the
    union of classes, and row-normalised rates are compared too since the datasets differ in size.

    Raises:
        RegistryError: a version does not exist or is incomplete.
        ModelIntegrityError: a version's metadata do not match the digest registered with it.
    """
    import numpy as np

    va, vb = registry.version(a), registry.version(b)
    ma = registry.model_meta(a)["cross_validation"]  # both checked against their registered digests
    mb = registry.model_meta(b)["cross_validation"]
    classes = sorted(set(ma["classes"]) | set(mb["classes"]))

    def aligned(m: Mapping[str, Any]) -> np.ndarray:
        out = np.zeros((len(classes), len(classes)), dtype=int)
        index = [classes.index(c) for c in m["classes"]]
        cm = np.asarray(m["confusion_matrix"], dtype=int)
        out[np.ix_(index, index)] = cm
        return out

    ca, cb = aligned(ma), aligned(mb)

    def rates(cm: np.ndarray) -> np.ndarray:
        totals = cm.sum(axis=1, keepdims=True)
        return np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)

    def delta(x: Any, y: Any) -> float | None:
        return round(y - x, 6) if isinstance(x, int | float) and isinstance(y, int | float) else None

    per_class = {}
    for label in classes:
        ra, rb = ma["per_class"].get(label, {}), mb["per_class"].get(label, {})
        per_class[label] = {
            key: {"a": ra.get(key), "b": rb.get(key), "delta": delta(ra.get(key), rb.get(key))}
            for key in ("precision", "recall", "f1", "support")
        }
    return {
        "a": va.name,
        "b": vb.name,
        "labels": {"a": int(va.tags["label_count"]), "b": int(vb.tags["label_count"])},
        "dataset_revision": {"a": va.tags["dataset_md5"], "b": vb.tags["dataset_md5"]},
        "candidate": {"a": va.tags["candidate"], "b": vb.tags["candidate"]},
        "metrics": {
            key: {"a": ma.get(key), "b": mb.get(key), "delta": delta(ma.get(key), mb.get(key))}
            for key in HEADLINE
        },
        "forward_accuracy": {"a": va.metric("forward_accuracy"), "b": vb.metric("forward_accuracy")},
        "per_class": per_class,
        "classes": classes,
        "confusion": {"a": ca.tolist(), "b": cb.tolist(), "difference": (cb - ca).tolist()},
        "confusion_rate_difference": np.round(rates(cb) - rates(ca), 4).tolist(),
    }


def dvc_remote_options(settings: Settings) -> dict[str, str]:
    """Options of an ``s3://`` DVC remote from the ``s3_*`` settings (DVC reads neither `.env` nor DOCCLASS_
    variables); nothing for other remotes, and nothing unset (DVC then uses the AWS variables or files)."""
    from flows.settings import reveal

    if not settings.dvc_remote.startswith("s3://"):
        return {}
    options = {
        "endpointurl": settings.s3_endpoint_url,
        "access_key_id": settings.s3_access_key_id,
        "secret_access_key": reveal(settings.s3_secret_access_key),
    }
    return {key: value for key, value in options.items() if value}


def open_registry_and_store(settings: Settings) -> tuple[Registry, SnapshotStore]:
    """The registry and snapshot store named by ``settings`` (read by the entry point)."""
    store = SnapshotStore(settings.snapshot_store, settings.dvc_remote, dvc_remote_options(settings))
    return Registry.from_settings(settings), store


__all__ = [
    "RegistryError",
    "Reproduction",
    "RoundOutcome",
    "Snapshot",
    "SnapshotStore",
    "compare",
    "dvc_remote_options",
    "open_registry_and_store",
    "params_hash",
    "reproduce",
    "run_round",
]

"""Serving fixtures: a SQLite MLflow registry under a temp folder with two tiny text models (1.1 and 1.2, the second
trained on shifted labels so its answers differ), a params.yaml with the ``serve:`` keys, and sample uploads."""

from __future__ import annotations

import copy
import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.params import load_params

SERVE = {
    "poll_seconds": 0.5,
    "cache_versions": 2,
    "max_upload_mb": 5,
    "max_pages": 12,
    "request_timeout_s": 60,
    "max_batch_size": 32,
    "max_latency_ms": 5,
    "min_labels": 20,
}


def serve_params(**serve: Any) -> dict[str, Any]:
    params = copy.deepcopy(load_params())
    params["serve"] = {**params["serve"], **SERVE, **serve}  # keys not in SERVE: params.yaml's
    params["train"]["text"]["calibration_folds"] = 0
    return params


@dataclass
class World:
    """A registry with versions; ``env`` points a service at it."""

    root: Path
    uri: str
    params_file: Path
    corpus: Path
    v1: int
    v2: int
    shift: dict[str, str]

    @property
    def registry(self) -> Any:
        from flows.registry import Registry

        return Registry(self.uri, "docclass", "docclass")

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "DOCCLASS_MLFLOW_TRACKING_URI": self.uri,
            "DOCCLASS_PARAMS": str(self.params_file),
            "DOCCLASS_DATA_DIR": str(self.root / "data"),
            **extra,
        }

    def promote(self, number: int | None) -> None:
        """Make ``number`` the champion (nothing to do when it already is: the registry refuses a no-op move)."""
        registry = self.registry
        if registry.champion_number() != number:
            registry.move_champion(number, reason="test", by="test", automatic=False)

    def doc(self, label: str, index: int = 0) -> Path:
        return sorted((self.corpus / label).iterdir())[index]


def _register(registry: Any, model: Any, workdir: Path, name: str, tags: dict[str, Any]) -> int:
    from pipelines.models import save_model

    model_dir = workdir / name / "model"
    save_model(model, model_dir, {})
    run = registry.start_run(name, {"kind": "test"})
    digest = registry.log_model(run, model_dir)
    registry.finish_run(run)
    number = registry.register(run, tags, digest=digest)
    registry.mark_complete(number)
    return number


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from flows.registry import Registry
    from pipelines.dataset import load_labeled_documents
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits
    from pipelines.models import make_candidate
    from pipelines.samples import generate_corpus

    root = tmp_path_factory.mktemp("serving")
    corpus = root / "corpus"
    generate_corpus(corpus, per_class=4, seed=3, scanned_share=0.0)
    params = serve_params()
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    data = load_labeled_documents(
        corpus, ExtractConfig.from_params(params["extract"]), Limits.from_params(params["ingest"])
    )
    labels = list(data.labels)
    classes = sorted(set(labels))
    shift = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri, "docclass", "docclass")
    m1 = make_candidate("text", params["train"], seed=1).fit(data.documents, labels)
    m2 = make_candidate("text", params["train"], seed=1).fit(data.documents, [shift[x] for x in labels])
    tags = {"label_count": len(labels), "accuracy": 0.9, "macro_f1": 0.9, "gate": "pass", "candidate": "text"}
    v1 = _register(registry, m1, root / "models", "one", tags)
    v2 = _register(registry, m2, root / "models", "two", {**tags, "accuracy": 0.95})
    registry.move_champion(v1, reason="first", by="test", automatic=False)
    return World(root, uri, params_file, corpus, v1, v2, shift)


@pytest.fixture
def service_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DOCCLASS_API_KEY", raising=False)
    yield world


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

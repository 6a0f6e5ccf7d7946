"""The service's read-only registry: versions are loaded only when every file matches the digest recorded at
registration, and nothing of a tampered version is ever unpickled."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import joblib
import pytest

from flows.registry import Registry
from pipelines.models import save_model
from pipelines.models.persistence import DIGESTS_FILE, ModelIntegrityError, manifest_digest, seal_model_dir
from serving.models import ModelStore, UnknownVersionError
from serving.registry import DIGEST_TAG, RegistryReader, VersionInfo, no_champion_message
from tests.params import candidate
from tests.pipelines._docs import make_docs


class Payload:
    """A pickle that creates ``marker`` when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


class Store:
    """A SQLite registry (written through flows' Registry) and the service's reader of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        uri = f"sqlite:///{root / 'mlflow.db'}"
        self.writer = Registry(uri, "docclass", "docclass")
        self.reader = RegistryReader(uri, "docclass", "docclass")
        docs, labels = make_docs(6, seed=0)
        self.model = candidate("text", calibration_folds=0).fit(docs, labels)
        self.count = 0

    def add(self) -> int:
        """A new complete version of the fitted model."""
        self.count += 1
        model_dir = self.root / f"m{self.count}"
        save_model(self.model, model_dir, {"round": self.count})
        run = self.writer.start_run(f"v{self.count}", {"kind": "test"})
        digest = self.writer.log_model(run, model_dir)
        self.writer.finish_run(run)
        number = self.writer.register(run, {"gate": "pass", "label_count": 10}, digest=digest)
        self.writer.mark_complete(number)
        return number

    def stored(self, number: int) -> Path:
        """The registry's own copy of a version's model directory (what an attacker with store access edits)."""
        return Path(
            unquote(urlparse(self.reader.client.get_model_version("docclass", str(number)).source).path)
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("registry"))


def test_a_registered_version_loads_verified(store: Store, tmp_path: Path) -> None:
    number = store.add()
    assert store.reader.registered_digest(number) == manifest_digest(store.root / f"m{store.count}")
    loaded = store.reader.load_version(number, tmp_path)
    assert loaded.meta["round"] == store.count and list(loaded.model.classes_) == loaded.meta["classes"]
    assert loaded.splitter is None
    assert list(tmp_path.iterdir()) == []  # downloads are removed
    assert store.reader.model_meta(number)["round"] == store.count


def test_a_tampered_model_file_in_the_store_is_refused_unpickled(store: Store, tmp_path: Path) -> None:
    number = store.add()
    stored = store.stored(number)
    expected = json.loads((stored / DIGESTS_FILE).read_text())["files"]["model.joblib"]
    marker = tmp_path / "pwned"
    joblib.dump(Payload(marker), stored / "model.joblib")
    with pytest.raises(
        ModelIntegrityError, match=f"version 1.{number}: model.joblib in .* expected sha256 {expected}"
    ):
        store.reader.load_version(number, tmp_path / "work")
    assert not marker.exists()
    with pytest.raises(ModelIntegrityError, match="model.joblib"):
        store.reader.download_model(number, tmp_path / "dl")
    assert not (tmp_path / "dl" / "model").exists()  # a copy that fails verification is deleted


def test_a_consistently_rewritten_store_is_refused_against_the_registered_tag(
    store: Store, tmp_path: Path
) -> None:
    number = store.add()
    registered = store.reader.registered_digest(number)
    stored = store.stored(number)
    marker = tmp_path / "pwned"
    joblib.dump(Payload(marker), stored / "model.joblib")
    forged = seal_model_dir(stored)  # digests.json rewritten to match: only the registry tag tells
    with pytest.raises(
        ModelIntegrityError,
        match=f"digests.json in .* does not match the registered digest: expected sha256 {registered}, found {forged}",
    ):
        store.reader.load_version(number, tmp_path)
    assert not marker.exists()
    with pytest.raises(ModelIntegrityError, match="does not match the registered digest"):
        store.reader.model_meta(number)


def test_a_file_planted_in_the_store_is_refused(store: Store, tmp_path: Path) -> None:
    number = store.add()
    marker = tmp_path / "pwned"
    joblib.dump(Payload(marker), store.stored(number) / "splitter.joblib")  # the service would unpickle it
    with pytest.raises(ModelIntegrityError, match="holds splitter.joblib, which digests.json does not list"):
        store.reader.load_version(number, tmp_path)
    assert not marker.exists()


def test_tampered_metadata_in_the_store_is_refused(store: Store) -> None:
    number = store.add()
    meta_path = store.stored(number) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["cross_validation"] = {"accuracy": 1.0}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match=f"version 1.{number}: meta.json in .* does not match"):
        store.reader.model_meta(number)


def test_a_version_without_a_registered_digest_is_never_loaded(store: Store, tmp_path: Path) -> None:
    number = store.add()
    source = str(store.reader.client.get_model_version("docclass", str(number)).source)
    bare = store.writer.client.create_model_version("docclass", source=source, tags={"complete": "true"})
    with pytest.raises(ModelIntegrityError, match=f"version 1.{bare.version} has no {DIGEST_TAG} tag"):
        store.reader.load_version(int(bare.version), tmp_path)
    with pytest.raises(ModelIntegrityError, match=f"has no {DIGEST_TAG} tag"):
        store.reader.download_model(int(bare.version), tmp_path / "dl")
    assert not (tmp_path / "dl").exists()  # refused before downloading anything


def test_a_local_copy_is_verified_against_the_registered_digest(store: Store, tmp_path: Path) -> None:
    number = store.add()
    copy = store.reader.download_model(number, tmp_path)
    store.reader.verify_model(number, copy)
    (copy / "meta.json").write_text("{}")
    seal_model_dir(copy)
    with pytest.raises(ModelIntegrityError, match=f"version 1.{number}: digests.json .* registered digest"):
        store.reader.verify_model(number, copy)


def test_the_service_keeps_its_champion_when_the_new_one_is_tampered(store: Store, tmp_path: Path) -> None:
    good, bad = store.add(), store.add()
    marker = tmp_path / "pwned"
    joblib.dump(Payload(marker), store.stored(bad) / "model.joblib")
    models = ModelStore(store.reader, 2, tmp_path)
    store.writer.move_champion(good, reason="test", by="test", automatic=False)
    assert models.refresh() and models.require_champion().number == good
    store.writer.move_champion(bad, reason="test", by="test", automatic=False)
    with pytest.raises(UnknownVersionError, match=f"version 1.{bad} cannot be loaded: .*model.joblib"):
        models.refresh()
    assert models.require_champion().number == good and not marker.exists()
    store.writer.move_champion(None, reason="test", by="test", automatic=False)


def _version(number: int, **tags: str) -> VersionInfo:
    from datetime import UTC, datetime

    return VersionInfo(number, {"complete": "true", **tags}, "run", "src", datetime.now(UTC))


def test_no_champion_message_says_what_the_registry_holds() -> None:
    assert no_champion_message([], 20) == (
        "no model yet (version 1.0): no version is registered; label documents and run a training round "
        "(the first one runs at 20 labels)"
    )
    assert no_champion_message([], None).endswith("run a training round")
    failed = _version(2, label_count="40", gate="fail", gate_reasons='["accuracy 0.61 < 0.8"]')
    assert no_champion_message([_version(1, gate="fail"), failed], 20) == (
        "no model yet (version 1.0): 2 version(s) registered, none is champion; the latest, 1.2 (40 labels), "
        "failed its gates: accuracy 0.61 < 0.8"
    )
    assert "promote it with `docclass promote`" in no_champion_message([_version(3, gate="pass")], 20)

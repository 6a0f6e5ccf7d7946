"""Training rounds end to end on generated documents: versions 1.1-1.3, a failing round, reproduce, compare,
promote / rollback by hand, the CLI, and crash safety. SQLite tracking URI and a DVC remote in temp folders."""

from __future__ import annotations

import copy
import csv
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import joblib
import pytest
import typer
from typer.testing import CliRunner

from flows.registry import Registry, RegistryError
from flows.versions import SnapshotStore, compare, reproduce, run_round
from pipelines.models.persistence import DIGESTS_FILE, ModelIntegrityError, manifest_digest
from pipelines.params import load_params
from pipelines.samples import generate_corpus

pytestmark = pytest.mark.slow

GATE = {"min_accuracy": 0.6, "min_macro_f1": 0.6, "min_class_recall": 0.2, "max_regression": 0.05}


def round_params() -> dict[str, Any]:
    params = copy.deepcopy(load_params())
    params["gate"] = dict(GATE)
    params["train"]["candidates"] = ["text"]
    params["train"]["max_folds"] = 3
    return params


class World:
    """A registry, a snapshot store and an extraction cache under one temp folder."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root / name
        self.uri = f"sqlite:///{self.root / 'mlflow.db'}"
        self.root.mkdir(parents=True)
        self.registry = Registry(self.uri, "docclass", "docclass")
        self.store = SnapshotStore(self.root / "store", str(self.root / "remote"))
        self.cache = root / "cache"  # shared: documents are extracted once

    def round(self, dataset: Path, params: dict[str, Any] | None = None) -> Any:
        return run_round(dataset, params or round_params(), self.registry, self.store, cache_dir=self.cache)

    def env(self) -> dict[str, str]:
        return {
            "DOCCLASS_MLFLOW_TRACKING_URI": self.uri,
            "DOCCLASS_DVC_REMOTE": str(self.root / "remote"),
            "DOCCLASS_DATA_DIR": str(self.root / "data"),
        }


def dataset(root: Path, per_class: int) -> Path:
    out = root / f"ds{per_class}"
    if not out.exists():
        generate_corpus(out, per_class=per_class, seed=11, scanned_share=0.0, layout="labels_csv")
    return out


def shuffled(source: Path, out: Path) -> Path:
    """Same documents, labels permuted: a round that must fail its gates."""
    shutil.copytree(source, out)
    with (source / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    labels = [row["label"] for row in rows]
    random.Random(5).shuffle(labels)
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows((row["file"], label) for row, label in zip(rows, labels, strict=True))
    return out


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("versions")


@pytest.fixture(scope="module")
def world(tmp: Path) -> World:
    return World(tmp, "main")


@pytest.fixture(scope="module")
def rounds(world: World, tmp: Path) -> list[Any]:
    outcomes = [world.round(dataset(tmp, n)) for n in (4, 6, 8)]
    outcomes.append(world.round(shuffled(dataset(tmp, 8), tmp / "shuffled")))
    return outcomes


def cli(world: World, *args: str) -> Any:
    from flows.cli.versions import register

    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"params_path": None}

    register(app)
    return CliRunner().invoke(app, list(args), env=world.env())


def test_three_rounds_give_versions_and_champion_on_best_passing(rounds: list[Any], world: World):
    assert [o.version for o in rounds] == [1, 2, 3, 4]
    assert [o.passed for o in rounds] == [True, True, True, False]
    assert [o.promoted for o in rounds] == [True, True, True, False]
    assert world.registry.champion_number() == 3
    versions = world.registry.versions()
    assert [v.number for v in versions] == [1, 2, 3, 4]
    v1, v2, v3, v4 = versions
    assert [int(v.tags["label_count"]) for v in versions] == [20, 30, 40, 40]
    assert len({v.tags["dataset_md5"] for v in versions}) == 4
    assert all(v.tags["candidate"] == "text" and v.metric("accuracy") >= 0.6 for v in (v1, v2, v3))
    # forward accuracy of the champion on the documents it has never seen
    assert v1.metric("forward_accuracy") is None
    assert int(v2.tags["new_docs"]) == 10 and int(v3.tags["new_docs"]) == 10
    assert 0.0 <= v2.metric("forward_accuracy") <= 1.0
    assert v2.tags["champion_at_round"] == "1.1"
    # the failing round stays registered with its reasons and is not promoted
    assert v4.tags["gate"] == "fail" and v4.tags["promotion"] == "not promoted"
    assert any("below the minimum" in reason for reason in v4.reasons)
    # the champion's recipe measured on the same (shuffled) data, and no new documents for a forward check
    assert v4.metric("champion_accuracy_same_data") is not None and int(v4.tags["new_docs"]) == 0
    history = world.registry.history()
    assert [(e.from_version, e.to_version, e.automatic) for e in history] == [
        (None, 1, True),
        (1, 2, True),
        (2, 3, True),
    ]


def test_every_candidate_is_a_run_with_metrics_and_artifacts(rounds: list[Any], world: World):
    client = world.registry.client
    v3 = world.registry.version(3)
    run = client.get_run(v3.run_id)
    assert run.data.params["candidate"] == "text"
    assert run.data.tags["dataset_md5"] == v3.tags["dataset_md5"]
    assert run.data.tags["git_commit"]
    assert {"accuracy", "macro_f1", "ece", "recall_invoice", "f1_w9"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(v3.run_id)}
    assert {"model", "evaluation", "params.json", "train_docs.json"} <= artifacts
    evaluation = {a.path for a in client.list_artifacts(v3.run_id, "evaluation")}
    assert "evaluation/confusion.png" in evaluation
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["kind"] == "round" and parent.info.status == "FINISHED"


def test_rerunning_a_round_reuses_its_version(rounds: list[Any], world: World, tmp: Path):
    again = world.round(dataset(tmp, 8))
    assert again.reused and again.version == 3
    assert [v.number for v in world.registry.versions(include_incomplete=True)] == [1, 2, 3, 4]


def test_reproduce_gives_identical_metrics(rounds: list[Any], world: World):
    shutil.rmtree(world.store.root)  # the data must come back from the DVC remote, not the local store
    result = reproduce(2, world.registry, world.store, cache_dir=world.cache)
    assert result.identical, result.differences
    assert result.reproduced["accuracy"] == world.registry.version(2).metric("accuracy")
    assert result.reproduced["confusion_matrix"] == result.recorded["confusion_matrix"]


def test_compare_shows_deltas_and_confusion_difference(rounds: list[Any], world: World):
    result = compare(world.registry, 1, 4)
    assert result["labels"] == {"a": 20, "b": 40}
    acc = result["metrics"]["accuracy"]
    assert acc["delta"] == pytest.approx(acc["b"] - acc["a"])
    difference = result["confusion"]["difference"]
    assert sum(map(sum, difference)) == 20  # 40 - 20 documents
    assert difference != [[0] * 5] * 5


def test_promote_and_rollback_by_hand_are_recorded(rounds: list[Any], world: World):
    result = cli(world, "promote", "1.2", "--reason", "audit asked for it")
    assert result.exit_code == 0, result.output
    assert world.registry.champion_number() == 2
    assert "already the champion" in cli(world, "promote", "1.2", "--reason", "again").output
    refused = cli(world, "promote", "1.4", "--reason", "try")
    assert refused.exit_code == 2 and "failed its gates" in refused.output
    result = cli(world, "rollback", "--reason", "back to the better one")
    assert result.exit_code == 0, result.output
    assert world.registry.champion_number() == 3
    last = world.registry.history()[-2:]
    assert [(e.from_version, e.to_version, e.automatic, e.reason) for e in last] == [
        (3, 2, False, "audit asked for it"),
        (2, 3, False, "rollback from 1.2: back to the better one"),
    ]
    assert last[0].by


def test_versions_json_and_table(rounds: list[Any], world: World):
    result = cli(world, "versions", "--json", "--history")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["champion"] == "1.3"
    rows = {row["version"]: row for row in payload["versions"]}
    assert list(rows) == ["1.1", "1.2", "1.3", "1.4"]
    assert rows["1.3"]["champion"] and rows["1.3"]["gate"] == "pass" and rows["1.3"]["promoted_at"]
    assert rows["1.4"]["gate"] == "fail" and rows["1.4"]["reasons"] and rows["1.4"]["promoted_at"] is None
    assert {"labels", "dataset_revision", "accuracy", "macro_f1", "forward_accuracy"} <= set(rows["1.2"])
    assert payload["history"][0]["to"] == "1.1" and payload["history"][0]["from"] == "1.0"
    table = cli(world, "versions")
    assert table.exit_code == 0 and "1.3 *" in table.stdout
    assert cli(world, "compare", "1.1", "1.3").exit_code == 0
    bad = cli(world, "promote", "2.1", "--reason", "x")
    assert bad.exit_code == 2 and "expected 1.N" in bad.output


def test_crash_mid_round_leaves_no_half_registered_version(tmp: Path, monkeypatch: pytest.MonkeyPatch):
    world = World(tmp, "crash")
    data = dataset(tmp, 4)

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("simulated crash")

    # 1. crash after every run is logged, before the version is created
    with monkeypatch.context() as patch:
        patch.setattr(Registry, "register", boom)
        with pytest.raises(RuntimeError, match="simulated crash"):
            world.round(data)
    assert world.registry.versions(include_incomplete=True) == []
    assert world.registry.champion_number() is None
    # 2. the rerun registers the finished runs (no training), then crashes before the version is complete
    with monkeypatch.context() as patch:
        patch.setattr(Registry, "mark_complete", boom)
        patch.setattr("pipelines.train.train_best", boom)
        with pytest.raises(RuntimeError, match="simulated crash"):
            world.round(data)
    assert world.registry.versions() == []  # the incomplete version is not listed ...
    assert [v.number for v in world.registry.versions(include_incomplete=True)] == [1]
    with pytest.raises(RegistryError, match="incomplete"):
        world.registry.move_champion(1, reason="x", by="test", automatic=False)  # ... nor promotable
    # 3. the next rerun completes the same version and promotes it
    with monkeypatch.context() as patch:
        patch.setattr("pipelines.train.train_best", boom)
        outcome = world.round(data)
    assert outcome.version == 1 and outcome.passed and outcome.promoted
    assert [v.number for v in world.registry.versions()] == [1]
    assert world.registry.champion_number() == 1
    assert [(e.from_version, e.to_version) for e in world.registry.history()] == [(None, 1)]
    # registered from the crashed round's record: with the digest computed before the upload
    world.registry.verify_model(1, world.registry.download_model(1, tmp / "crash-download"))


def stored_model(world: World, number: int) -> Path:
    """The registry's own copy of a version's model directory."""
    source = world.registry.client.get_model_version("docclass", str(number)).source
    return Path(unquote(urlparse(source).path))


class Payload:
    """A pickle that creates ``marker`` when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def test_round_versions_carry_the_digest_of_every_model_file(rounds: list[Any], world: World, tmp: Path):
    stored = stored_model(world, 3)
    listed = json.loads((stored / DIGESTS_FILE).read_text())["files"]
    assert set(listed) == {"meta.json", "model.joblib", "splitter.joblib"}  # the splitter is sealed too
    assert world.registry.registered_digest(3) == manifest_digest(stored)
    loaded = world.registry.load_version(3, tmp / "load")
    assert loaded.splitter is not None
    assert loaded.meta["cross_validation"]["accuracy"] == world.registry.version(3).metric("accuracy")


def test_tampered_metadata_stops_compare_and_reproduce(rounds: list[Any], world: World):
    meta_path = stored_model(world, 1) / "meta.json"
    original = meta_path.read_bytes()
    meta = json.loads(original)
    meta["cross_validation"]["accuracy"] = 1.0
    meta_path.write_text(json.dumps(meta))
    try:
        with pytest.raises(ModelIntegrityError, match="version 1.1: meta.json in .* does not match"):
            compare(world.registry, 1, 4)
        with pytest.raises(ModelIntegrityError, match="version 1.1: meta.json"):
            reproduce(1, world.registry, world.store, cache_dir=world.cache)
        result = cli(world, "compare", "1.1", "1.4")
        assert result.exit_code == 2 and "does not match its recorded digest" in result.output
    finally:
        meta_path.write_bytes(original)
    assert compare(world.registry, 1, 4)["a"] == "1.1"


def test_a_round_refuses_a_tampered_champion_without_unpickling_it(
    rounds: list[Any], world: World, tmp: Path
):
    champion = world.registry.champion_number()
    model_path = stored_model(world, champion) / "model.joblib"
    original = model_path.read_bytes()
    marker = tmp / "pwned"
    joblib.dump(Payload(marker), model_path)
    try:
        with pytest.raises(ModelIntegrityError, match=f"version 1.{champion}: model.joblib"):
            world.round(dataset(tmp, 10))  # new documents: the champion's forward accuracy needs its model
    finally:
        model_path.write_bytes(original)
    assert not marker.exists()
    assert [v.number for v in world.registry.versions(include_incomplete=True)] == [1, 2, 3, 4]


def test_after_an_upgrade_a_champion_this_code_cannot_load_does_not_stop_the_loop(
    rounds: list[Any], world: World, tmp: Path, monkeypatch: pytest.MonkeyPatch
):
    """docclass upgraded, the text candidate's model code raised: the service refuses the old champion, and the
    next round must still register (and may promote) a version instead of failing on the champion forever."""
    from pipelines.models import persistence

    before = [v.number for v in world.registry.versions(include_incomplete=True)]
    monkeypatch.setitem(persistence.MODEL_CODES, "text", persistence.model_code("text") + 1)
    outcome = world.round(dataset(tmp, 10))  # new documents: the forward comparison would need the old model
    versions = world.registry.versions(include_incomplete=True)
    assert [v.number for v in versions] == [*before, outcome.version] and outcome.passed
    tags = versions[-1].tags
    assert "model code" in tags["champion_unloadable"] and tags["forward_accuracy"] in (None, "None", "null")
    assert tags["gate"] == "pass"

"""The registry wrapper on a SQLite tracking URI: version names, completeness, champion alias, history."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.registry import (
    DIGEST_TAG,
    Registry,
    RegistryError,
    format_version,
    parse_version,
)
from pipelines.models.persistence import ModelIntegrityError, manifest_digest, seal_model_dir


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", "docclass", "docclass")


def add_version(registry: Registry, tmp_path: Path, *, gate: str = "pass", complete: bool = True) -> int:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "meta.json").write_text("{}")
    seal_model_dir(model)
    run = registry.start_run("text", {"kind": "candidate"})
    digest = registry.log_model(run, model)
    registry.finish_run(run)
    tags = {"gate": gate, "gate_reasons": [], "label_count": 10, "complete": "true"}
    number = registry.register(run, tags, digest=digest)
    if complete:
        registry.mark_complete(number)
    return number


def test_version_names():
    assert parse_version("1.3") == 3 and parse_version("1.0") == 0
    assert format_version(None) == "1.0" and format_version(12) == "1.12"
    for bad in ("3", "2.1", "1.x", "v1.2", ""):
        with pytest.raises(ValueError, match="expected 1.N"):
            parse_version(bad)


def test_artifacts_stay_beside_the_database(registry: Registry, tmp_path: Path):
    add_version(registry, tmp_path)
    assert (tmp_path / "artifacts").is_dir() and not Path("mlruns").exists()


def test_incomplete_versions_are_hidden_and_not_promotable(registry: Registry, tmp_path: Path):
    assert registry.versions() == [] and registry.champion_number() is None
    number = add_version(registry, tmp_path, complete=False)
    assert registry.versions() == []
    assert [v.number for v in registry.versions(include_incomplete=True)] == [number]
    with pytest.raises(RegistryError, match="incomplete"):
        registry.move_champion(number, reason="no", by="me", automatic=False)
    registry.mark_complete(number)
    assert [v.name for v in registry.versions()] == ["1.1"]


def test_champion_moves_and_history(registry: Registry, tmp_path: Path):
    first, second = add_version(registry, tmp_path), add_version(registry, tmp_path)
    registry.move_champion(first, reason="first", by="round", automatic=True)
    registry.move_champion(second, reason="better", by="round", automatic=True)
    registry.move_champion(first, reason="by hand", by="alice", automatic=False)
    assert registry.champion_number() == first and registry.champion().champion
    history = [e.row() for e in registry.history()]
    assert [(h["from"], h["to"], h["by"], h["automatic"]) for h in history] == [
        ("1.0", "1.1", "round", True),
        ("1.1", "1.2", "round", True),
        ("1.2", "1.1", "alice", False),
    ]
    assert [h["seq"] for h in history] == [1, 2, 3]
    rows = {v.name: v.row() for v in registry.versions()}
    assert rows["1.1"]["champion"] and rows["1.1"]["promoted_at"] == history[2]["when"]
    registry.move_champion(None, reason="no model", by="alice", automatic=False)
    assert registry.champion_number() is None
    with pytest.raises(RegistryError, match="non-empty --reason"):
        registry.move_champion(first, reason=" ", by="alice", automatic=False)
    with pytest.raises(RegistryError, match="does not exist"):
        registry.version(9)


def test_download_model_of_a_version(registry: Registry, tmp_path: Path):
    number = add_version(registry, tmp_path)
    path = registry.download_model(number, tmp_path / "dl")
    assert (path / "meta.json").read_text() == "{}"


def test_registration_records_the_digest_of_the_uploaded_model(registry: Registry, tmp_path: Path):
    number = add_version(registry, tmp_path)
    tags = registry.client.get_model_version("docclass", str(number)).tags
    assert tags[DIGEST_TAG] == manifest_digest(tmp_path / "model") == registry.registered_digest(number)
    assert "complete" in tags  # the caller's own tags are kept beside it


def test_registration_refuses_a_digest_that_is_not_the_uploaded_one(registry: Registry, tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "meta.json").write_text("{}")
    seal_model_dir(model)
    run = registry.start_run("text", {"kind": "candidate"})
    digest = registry.log_model(run, model)
    with pytest.raises(ModelIntegrityError, match="expected a sha256 digest of 64 hexadecimal characters"):
        registry.register(run, {}, digest="abc")
    other = "0" * 64
    with pytest.raises(
        ModelIntegrityError, match=f"expected sha256 {other}, found {digest}; not registering it"
    ):
        registry.register(run, {}, digest=other)
    assert registry.versions(include_incomplete=True) == []


def test_log_model_refuses_a_directory_that_does_not_match_its_digests(registry: Registry, tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "meta.json").write_text("{}")
    seal_model_dir(model)
    (model / "meta.json").write_text('{"changed": true}')
    run = registry.start_run("text", {"kind": "candidate"})
    with pytest.raises(ModelIntegrityError, match="meta.json .* does not match its recorded digest"):
        registry.log_model(run, model)


def test_the_digest_tag_is_written_once(registry: Registry, tmp_path: Path):
    number = add_version(registry, tmp_path)
    with pytest.raises(RegistryError, match=f"tag {DIGEST_TAG} is written once"):
        registry.set_version_tags(number, {DIGEST_TAG: "0" * 64})
    registry.set_version_tags(number, {"note": "fine"})
    assert registry.registered_digest(number) == manifest_digest(tmp_path / "model")


def test_unreachable_server_fails_fast():
    registry = Registry("http://127.0.0.1:9", "docclass")
    with pytest.raises(RegistryError, match="does not answer"):
        registry.check_reachable()

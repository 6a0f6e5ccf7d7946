"""Model directories are sealed by digests.json and verified before anything is unpickled; library versions are
checked at load."""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import pytest

from pipelines.models import ModelLoadError, TextClassifier, load_model, save_model
from pipelines.models.persistence import (
    DIGESTS_FILE,
    LibraryVersionError,
    ModelIntegrityError,
    check_library_versions,
    manifest_digest,
    read_meta,
    seal_model_dir,
    verify_model_dir,
)
from tests.params import candidate
from tests.pipelines._docs import make_docs


class Payload:
    """A pickle that creates ``marker`` when it is unpickled: what a tampered model file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(scope="module")
def fitted() -> TextClassifier:
    docs, labels = make_docs(6, seed=0)
    return candidate("text", calibration_folds=0).fit(docs, labels)


@pytest.fixture
def model_dir(fitted: TextClassifier, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    save_model(fitted, out, {"dataset": "abc"})
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plant_payload(model_dir: Path, marker: Path) -> None:
    joblib.dump(Payload(marker), model_dir / "model.joblib")


def test_save_model_records_the_sha256_of_every_file(model_dir: Path) -> None:
    manifest = json.loads((model_dir / DIGESTS_FILE).read_text())
    assert manifest["algorithm"] == "sha256"
    assert manifest["files"] == {name: sha(model_dir / name) for name in ("meta.json", "model.joblib")}
    assert manifest_digest(model_dir) == sha(model_dir / DIGESTS_FILE)
    assert seal_model_dir(model_dir) == manifest_digest(model_dir)  # sealing is deterministic
    model, meta = load_model(model_dir, manifest_digest(model_dir))
    assert meta["dataset"] == "abc" and list(model.classes_) == meta["classes"]


def test_a_tampered_model_file_is_refused_and_never_unpickled(model_dir: Path, tmp_path: Path) -> None:
    expected = sha(model_dir / "model.joblib")
    marker = tmp_path / "pwned"
    plant_payload(model_dir, marker)
    found = sha(model_dir / "model.joblib")
    with pytest.raises(
        ModelIntegrityError,
        match=f"model.joblib in .* does not match its recorded digest: expected sha256 {expected}, found {found}",
    ):
        load_model(model_dir)
    assert not marker.exists()


def test_a_rewritten_digest_list_is_refused_against_the_registered_digest(
    model_dir: Path, tmp_path: Path
) -> None:
    registered = manifest_digest(model_dir)
    marker = tmp_path / "pwned"
    plant_payload(model_dir, marker)
    forged = seal_model_dir(model_dir)  # the attacker rewrites digests.json to match the new file
    with pytest.raises(
        ModelIntegrityError,
        match=f"digests.json in .* does not match the registered digest: expected sha256 {registered}, found {forged}",
    ):
        load_model(model_dir, registered)
    assert not marker.exists()


def test_tampered_metadata_is_refused(model_dir: Path) -> None:
    meta_path = model_dir / "meta.json"
    expected = sha(meta_path)
    meta = json.loads(meta_path.read_text())
    meta["review_threshold"] = 0.0
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        ModelLoadError, match=f"meta.json in .* expected sha256 {expected}, found {sha(meta_path)}"
    ):
        load_model(model_dir)
    with pytest.raises(ModelIntegrityError, match="meta.json in .* does not match its recorded digest"):
        read_meta(model_dir)


def test_unlisted_and_missing_files_are_refused(model_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    joblib.dump(Payload(marker), model_dir / "splitter.joblib")  # added after sealing: would be unpickled too
    with pytest.raises(ModelIntegrityError, match="holds splitter.joblib, which digests.json does not list"):
        load_model(model_dir)
    (model_dir / "splitter.joblib").unlink()
    (model_dir / "model.joblib").unlink()
    with pytest.raises(ModelIntegrityError, match="model.joblib is missing from .*digests.json lists it"):
        verify_model_dir(model_dir)
    assert not marker.exists()


def test_a_directory_without_digests_is_refused(model_dir: Path) -> None:
    (model_dir / DIGESTS_FILE).unlink()
    with pytest.raises(
        ModelIntegrityError, match="has no digests.json: expected a directory sealed by save_model"
    ):
        load_model(model_dir)
    with pytest.raises(ModelIntegrityError, match="has no digests.json"):
        manifest_digest(model_dir)


def test_a_digest_list_naming_paths_outside_the_directory_is_refused(model_dir: Path) -> None:
    manifest = json.loads((model_dir / DIGESTS_FILE).read_text())
    manifest["files"]["../outside.joblib"] = "0" * 64
    (model_dir / DIGESTS_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="lists '../outside.joblib': expected a path inside"):
        verify_model_dir(model_dir)


def test_the_expected_digest_must_be_a_sha256(model_dir: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="expected a sha256 digest of 64 hexadecimal characters"):
        load_model(model_dir, "not-a-digest")


def _with_versions(model_dir: Path, **versions: str) -> None:
    meta_path = model_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["versions"].update(versions)
    meta_path.write_text(json.dumps(meta))
    seal_model_dir(model_dir)  # consistent digests: only the version check can refuse it


def test_another_scikit_learn_minor_version_is_refused(model_dir: Path, tmp_path: Path) -> None:
    here = metadata.version("scikit-learn")
    _with_versions(model_dir, **{"scikit-learn": "0.24.2"})
    with pytest.raises(
        LibraryVersionError,
        match=f"saved with scikit-learn 0.24.2, this environment has scikit-learn {here}: expected the same major.minor",
    ):
        load_model(model_dir)


def _with_model_code(model_dir: Path, recorded: int | None) -> None:
    meta_path = model_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    if recorded is None:
        del meta["model_code"]  # saved before model codes were recorded
    else:
        meta["model_code"] = recorded
    meta_path.write_text(json.dumps(meta))
    seal_model_dir(model_dir)


def test_a_model_of_another_model_code_is_refused_with_what_to_do(model_dir: Path, monkeypatch) -> None:
    """A trainer and a service of different docclass versions: the model is refused at load, never half-used
    (a stack fitted with 4 identifier features per class fed 3 by older code failed every request with a 500)."""
    from pipelines.models import persistence

    assert (
        json.loads((model_dir / "meta.json").read_text())["model_code"] == persistence.model_code("text") == 1
    )
    _with_model_code(model_dir, None)
    load_model(model_dir)  # a candidate whose code did not change: older models stay loadable
    _with_model_code(model_dir, 99)
    with pytest.raises(
        LibraryVersionError, match="model code 99 of text; this process runs model code 1: upgrade"
    ):
        load_model(model_dir)
    monkeypatch.setitem(persistence.MODEL_CODES, "text", 2)  # the text candidate's code changes
    _with_model_code(model_dir, None)
    with pytest.raises(
        LibraryVersionError, match="model code 1 of text; .* model code 2: train the model again"
    ):
        load_model(model_dir)


def test_another_numpy_major_version_is_refused_a_patch_difference_is_not(model_dir: Path) -> None:
    here = metadata.version("numpy")
    major = int(here.split(".")[0])
    _with_versions(model_dir, numpy=f"{major - 1}.26.4")
    with pytest.raises(
        LibraryVersionError, match=f"numpy {major - 1}.26.4, this environment has numpy {here}"
    ):
        load_model(model_dir)
    sk = metadata.version("scikit-learn").split(".")
    _with_versions(model_dir, numpy=f"{major}.0.0", **{"scikit-learn": f"{sk[0]}.{sk[1]}.999"})
    load_model(model_dir)


def test_missing_version_records_are_refused(model_dir: Path) -> None:
    meta_path = model_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["versions"]["scikit-learn"]
    meta_path.write_text(json.dumps(meta))
    seal_model_dir(model_dir)
    with pytest.raises(LibraryVersionError, match="records no scikit-learn version"):
        load_model(model_dir)


def test_the_transformer_also_needs_its_torch_and_transformers_versions() -> None:
    versions = {d: metadata.version(d) for d in ("scikit-learn", "numpy")}
    check_library_versions({"candidate": "text", "versions": versions})  # torch does not matter for text
    with pytest.raises(LibraryVersionError, match="records no torch version"):
        check_library_versions({"candidate": "transformer", "versions": versions})
    torch_here = re.escape(metadata.version("torch"))  # e.g. 2.13.0+cpu
    with pytest.raises(
        LibraryVersionError, match=f"saved with torch 1.13.1, this environment has torch {torch_here}"
    ):
        check_library_versions(
            {
                "candidate": "transformer",
                "versions": {**versions, "torch": "1.13.1", "transformers": metadata.version("transformers")},
            }
        )

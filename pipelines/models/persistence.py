"""Saving and loading fitted candidates: the estimator file, ``meta.json`` and ``digests.json``.

A model directory is sealed by ``digests.json``: the sha256 of every other file in it. The sha256 of
``digests.json`` itself is the one value a registry records for the directory (:func:`manifest_digest`), so a
reader holding that value can check every byte before anything is unpickled. :func:`load_model` always checks
the directory against its ``digests.json`` (and against an expected digest when one is given) and refuses a
file that is missing, changed or unlisted; then it refuses a model saved with library versions that cannot
unpickle here (:func:`check_library_versions`); only then does it unpickle, from the very bytes it hashed.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import platform
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pipelines.models.base import ModelLoadError
from pipelines.models.factory import CANDIDATES
from pipelines.models.transformer import TransformerClassifier

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
DIGESTS_FILE = "digests.json"
TRANSFORMER_DIR = "transformer"
_META_KEYS = ("candidate", "classes", "params", "created", "versions", "format", "model_code")
# The version of docclass's own code of each candidate (its pickled classes and what their fitted state means).
# Raise a candidate's number whenever a model fitted by the old code would compute something else under the new
# one (stack 2: title-identifier features): a process refuses a model of another model code with a
# clear error instead of failing on every prediction. Models saved before it was recorded are model code 1.
MODEL_CODES = {"stack": 2}


def model_code(candidate: str) -> int:
    """The model code of ``candidate`` in this docclass (see :data:`MODEL_CODES`)."""
    return MODEL_CODES.get(candidate, 1)


_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class ModelIntegrityError(ModelLoadError):
    """A model file is missing, changed or unlisted, or its digests do not match the expected ones: never loaded."""


class LibraryVersionError(ModelLoadError):
    """A model was saved with library versions whose pickles or checkpoints this environment cannot trust."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseEstimator):
        return {"class": type(value).__name__, "params": _jsonable(value.get_params(deep=False))}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved model depends on (absent ones omitted)."""
    versions = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn", "joblib", "torch", "transformers", "tokenizers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def candidate_name(model: Any) -> str:
    """The candidate name of a model ("text", "visual", "fusion", "transformer")."""
    name = getattr(type(model), "name", None)
    if name not in CANDIDATES:
        raise ValueError(
            f"expected a docclass candidate ({', '.join(CANDIDATES)}), found {type(model).__name__}"
        )
    return name


def save_model(model: Any, model_dir: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Save a fitted candidate and ``meta.json`` into ``model_dir`` (created if needed), then seal the directory.

    The transformer is written with ``save_pretrained`` into ``model_dir/transformer``, every other candidate
    with joblib into ``model_dir/model.joblib``. ``digests.json`` then records the sha256 of every file in the
    directory (:func:`seal_model_dir`); a file added later (e.g. the page splitter) needs another seal.

    Args:
        model: a fitted candidate.
        model_dir: target directory.
        meta: extra JSON-serialisable entries (e.g. dataset version, metrics); must not set params, created,
            versions or format, and candidate / classes only with the model's own values.

    Returns:
        The full metadata written.

    Raises:
        ValueError: unfitted model or a reserved key in ``meta``.
    """
    import joblib

    name = candidate_name(model)
    check_is_fitted(model, "classes_")
    own = {"candidate": name, "classes": [str(c) for c in model.classes_]}
    clash = sorted(k for k in set(meta) & set(_META_KEYS) if k not in own or _jsonable(meta[k]) != own[k])
    if clash:
        raise ValueError(
            f"meta must not set the reserved key(s) {clash}: save_model writes them "
            f"(candidate and classes may be given when they match the model: {own})"
        )
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if name == "transformer":
        model.save_pretrained(model_dir / TRANSFORMER_DIR)
    else:
        joblib.dump(model, model_dir / MODEL_FILE)
    full = {
        **_jsonable(dict(meta)),
        **own,
        "params": _jsonable(model.get_params(deep=False)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "format": 1,
        "model_code": model_code(name),
    }
    (model_dir / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    seal_model_dir(model_dir)
    return full


# ------------------------------------------------------------------------------------------------- digests


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(model_dir: Path) -> dict[str, Path]:
    """Every file under ``model_dir`` except ``digests.json``, by POSIX path relative to it."""
    return {
        path.relative_to(model_dir).as_posix(): path
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.relative_to(model_dir).as_posix() != DIGESTS_FILE
    }


def seal_model_dir(model_dir: Path) -> str:
    """Write ``digests.json`` (sha256 of every other file in ``model_dir``) and return its own sha256.

    The returned value is what a registry records for the directory (:func:`manifest_digest` reads it again).

    Raises:
        ModelLoadError: ``model_dir`` is not a directory.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"cannot seal {model_dir}: expected a model directory from save_model")
    files = {name: sha256_file(path) for name, path in _files(model_dir).items()}
    body = json.dumps({"algorithm": "sha256", "files": files, "format": 1}, indent=1, sort_keys=True) + "\n"
    (model_dir / DIGESTS_FILE).write_text(body, encoding="utf-8")
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def manifest_digest(model_dir: Path) -> str:
    """The sha256 of ``model_dir/digests.json``: the one value that vouches for the whole directory.

    Raises:
        ModelIntegrityError: no ``digests.json``.
    """
    path = Path(model_dir) / DIGESTS_FILE
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError as exc:
        raise ModelIntegrityError(_no_manifest(Path(model_dir))) from exc


def check_sha256(value: object, what: str) -> str:
    """``value`` as a lower-case 64-hex-digit sha256.

    Raises:
        ModelIntegrityError: anything else.
    """
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if not _SHA256.fullmatch(text):
        raise ModelIntegrityError(
            f"{what} is {value!r}: expected a sha256 digest of 64 hexadecimal characters"
        )
    return text


def _no_manifest(model_dir: Path) -> str:
    return (
        f"model directory {model_dir} has no {DIGESTS_FILE}: expected a directory sealed by save_model (a model "
        f"saved before digests were recorded must be trained again); refusing to load it"
    )


def _read_manifest(model_dir: Path, expected: str | None) -> dict[str, str]:
    """The verified ``files`` map of ``digests.json`` (checked against ``expected`` when given)."""
    path = model_dir / DIGESTS_FILE
    try:
        body = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelIntegrityError(_no_manifest(model_dir)) from exc
    except OSError as exc:
        raise ModelIntegrityError(f"unreadable {path}: {exc}") from exc
    found = hashlib.sha256(body).hexdigest()
    if expected is not None and found != check_sha256(expected, "the expected digest of digests.json"):
        raise ModelIntegrityError(
            f"{DIGESTS_FILE} in {model_dir} does not match the registered digest: expected sha256 {expected}, "
            f"found {found}; the model files changed after registration, refusing to load them"
        )
    try:
        manifest = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"unreadable {path}: {exc}") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files or manifest.get("algorithm") != "sha256":
        raise ModelIntegrityError(
            f"{path} is not a docclass digest list: expected {{'algorithm': 'sha256', 'files': {{path: sha256}}}}"
        )
    out: dict[str, str] = {}
    for name, value in files.items():
        parts = Path(str(name)).parts
        if Path(str(name)).is_absolute() or ".." in parts or not parts:
            raise ModelIntegrityError(f"{path} lists {name!r}: expected a path inside the model directory")
        out[Path(str(name)).as_posix()] = check_sha256(value, f"the digest of {name} in {path}")
    return out


def _check_file(model_dir: Path, name: str, expected: str) -> bytes | None:
    """Compare one listed file with its digest; returns its bytes when they are small enough to keep."""
    path = model_dir / name
    if not path.is_file():
        raise ModelIntegrityError(
            f"{name} is missing from {model_dir}: {DIGESTS_FILE} lists it with sha256 {expected}; "
            f"refusing to load an incomplete model"
        )
    data = path.read_bytes() if path.suffix in (".json", ".joblib") else None
    found = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
    if found != expected:
        raise ModelIntegrityError(
            f"{name} in {model_dir} does not match its recorded digest: expected sha256 {expected}, found {found}; "
            f"the file changed after the model was saved, refusing to load it"
        )
    return data


def verify_model_dir(model_dir: Path, expected_digest: str | None = None) -> dict[str, bytes]:
    """Check every file of a model directory against ``digests.json``, and that against ``expected_digest``.

    Args:
        model_dir: a directory written by :func:`save_model`.
        expected_digest: the sha256 of ``digests.json`` recorded elsewhere (e.g. at registration); None checks
            the directory against its own ``digests.json`` only (corruption and partial copies, not tampering).

    Returns:
        The verified bytes of the JSON and joblib files by relative path (load from these, not from disk again).

    Raises:
        ModelIntegrityError: no or unreadable ``digests.json``, a digest mismatch, a listed file missing, or a
            file the list does not name.
    """
    model_dir = Path(model_dir)
    listed = _read_manifest(model_dir, expected_digest)
    unlisted = sorted(set(_files(model_dir)) - set(listed))
    if unlisted:
        raise ModelIntegrityError(
            f"{model_dir} holds {', '.join(unlisted)}, which {DIGESTS_FILE} does not list: expected only the files "
            f"sealed by save_model; refusing to load it"
        )
    verified: dict[str, bytes] = {}
    for name, expected in sorted(listed.items()):
        data = _check_file(model_dir, name, expected)
        if data is not None:
            verified[name] = data
    return verified


def _major_minor(version: str, parts: int) -> tuple[str, ...]:
    return tuple(re.split(r"[.+]", version)[:parts])


def check_model_code(meta: Mapping[str, Any], model_dir: Path | str = "the model") -> None:
    """Refuse a model saved by another version of docclass's code for its candidate (:data:`MODEL_CODES`).

    Raises:
        LibraryVersionError: the recorded model code differs from this process's (1 when none is recorded).
    """
    saved = meta.get("model_code", 1)
    here = model_code(str(meta.get("candidate")))
    if saved != here:
        newer = isinstance(saved, int) and saved > here
        raise LibraryVersionError(
            f"{model_dir} was saved by docclass model code {saved!r} of {meta.get('candidate')}; this process runs "
            f"model code {here}: "
            + (
                "upgrade docclass here (and restart this process) to load it"
                if newer
                else "train the model again with this docclass"
            )
        )


def check_library_versions(meta: Mapping[str, Any], model_dir: Path | str = "the model") -> None:
    """Refuse a model saved with libraries this environment may unpickle wrongly.

    scikit-learn must match in major.minor and numpy in major (both are in every pickle); the transformer also
    needs the same torch and transformers major.minor.

    Raises:
        LibraryVersionError: a version is not recorded, the library is not installed, or they differ.
    """
    rules = {"scikit-learn": 2, "numpy": 1}
    if meta.get("candidate") == "transformer":
        rules.update({"torch": 2, "transformers": 2})
    recorded = meta.get("versions")
    if not isinstance(recorded, Mapping):
        raise LibraryVersionError(
            f"{META_FILE} of {model_dir} records no library versions: expected a 'versions' entry from save_model"
        )
    for dist, parts in rules.items():
        saved = recorded.get(dist)
        level = "major.minor" if parts == 2 else "major"
        if not isinstance(saved, str) or not saved:
            raise LibraryVersionError(
                f"{META_FILE} of {model_dir} records no {dist} version: expected the {dist} version it was saved with"
            )
        try:
            here = metadata.version(dist)
        except metadata.PackageNotFoundError as exc:
            raise LibraryVersionError(
                f"{model_dir} was saved with {dist} {saved}, which is not installed here: expected {dist} "
                f"with the same {level} version"
            ) from exc
        if _major_minor(saved, parts) != _major_minor(here, parts):
            raise LibraryVersionError(
                f"{model_dir} was saved with {dist} {saved}, this environment has {dist} {here}: expected the same "
                f"{level} version (install {dist} {'.'.join(_major_minor(saved, parts))}.* or train the model again)"
            )


def read_meta(model_dir: Path, expected_digest: str | None = None) -> dict[str, Any]:
    """``meta.json`` of a model directory, checked against ``digests.json`` (and that against ``expected_digest``).

    Only ``digests.json`` and ``meta.json`` need to be present: for reading a model's metadata (metrics, classes)
    without downloading its weights.

    Raises:
        ModelIntegrityError: a digest mismatch, or ``meta.json`` is missing from the list or the directory.
        ModelLoadError: ``meta.json`` is not docclass metadata.
    """
    model_dir = Path(model_dir)
    listed = _read_manifest(model_dir, expected_digest)
    if META_FILE not in listed:
        raise ModelIntegrityError(
            f"{DIGESTS_FILE} in {model_dir} does not list {META_FILE}: expected a model from save_model"
        )
    data = _check_file(model_dir, META_FILE, listed[META_FILE])
    return _parse_meta(data or b"", model_dir / META_FILE)


def _parse_meta(data: bytes, meta_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"unreadable {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("candidate") not in CANDIDATES or "classes" not in meta:
        raise ModelLoadError(
            f"{meta_path} is not docclass model metadata: expected keys candidate (one of "
            f"{', '.join(CANDIDATES)}) and classes"
        )
    return meta


# what joblib raises on bytes that are not a loadable pickle of this environment
UNPICKLE_ERRORS = (
    OSError,
    EOFError,
    pickle.UnpicklingError,
    ValueError,
    AttributeError,
    ImportError,
    KeyError,
)


def unpickle(data: bytes, source: Path | str, what: str) -> Any:
    """Unpickle ``data`` (bytes already verified by the caller) read from ``source``.

    Raises:
        ModelLoadError: the bytes are not a pickle this environment can load.
    """
    import joblib

    try:
        return joblib.load(io.BytesIO(data))
    except UNPICKLE_ERRORS as exc:
        raise ModelLoadError(f"unreadable {what} file {source}: {type(exc).__name__}: {exc}") from exc


def load_model(model_dir: Path, expected_digest: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`save_model`, verified before anything is unpickled (see :func:`load_verified`)."""
    model, meta, _ = load_verified(model_dir, expected_digest)
    return model, meta


def load_verified(
    model_dir: Path, expected_digest: str | None = None
) -> tuple[Any, dict[str, Any], dict[str, bytes]]:
    """Load a model saved by :func:`save_model`, verified before anything is unpickled.

    Order: every file against ``digests.json`` (and ``digests.json`` against ``expected_digest`` when given), then
    the library versions recorded in ``meta.json``, then the estimator, unpickled from the bytes just hashed.

    Args:
        model_dir: the directory.
        expected_digest: the sha256 of ``digests.json`` recorded at registration (None: the directory's own
            ``digests.json`` is trusted, as for a model you trained yourself).

    Returns:
        (model, meta, verified bytes of the directory's JSON and joblib files by relative path: unpickle other
        files, e.g. the splitter, from these rather than from disk again).

    Raises:
        ModelIntegrityError: a missing, changed or unlisted file, or digests that do not match ``expected_digest``.
        LibraryVersionError: saved with a scikit-learn / numpy (or torch / transformers) this one cannot load,
            or by another docclass model code (:data:`MODEL_CODES`).
        ModelLoadError: the directory, its meta.json or its model file is missing or unreadable, or the model
            does not match its metadata.
    """

    model_dir = Path(model_dir)
    meta_path = model_dir / META_FILE
    if not model_dir.is_dir():
        raise ModelLoadError(
            f"model directory {model_dir} does not exist: expected a directory from save_model"
        )
    if not meta_path.is_file():
        raise ModelLoadError(
            f"model directory {model_dir} has no {META_FILE}: expected a directory from save_model"
        )
    verified = verify_model_dir(model_dir, expected_digest)
    meta = _parse_meta(verified[META_FILE], meta_path)
    check_library_versions(meta, model_dir)
    check_model_code(meta, model_dir)
    if meta["candidate"] == "transformer":
        model = TransformerClassifier.from_pretrained(model_dir / TRANSFORMER_DIR)
    else:
        if MODEL_FILE not in verified:
            raise ModelLoadError(f"model directory {model_dir} has no {MODEL_FILE}")
        model = unpickle(verified[MODEL_FILE], model_dir / MODEL_FILE, "model")
    classes = [str(c) for c in getattr(model, "classes_", [])]
    if classes != meta["classes"] or getattr(type(model), "name", None) != meta["candidate"]:
        raise ModelLoadError(
            f"model in {model_dir} does not match {META_FILE}: expected {meta['candidate']} with classes "
            f"{meta['classes']}, found {type(model).__name__} with classes {classes}"
        )
    return model, meta, verified

"""Saving and loading fitted candidates: the estimator file plus ``meta.json``."""

from __future__ import annotations

import json
import pickle
import platform
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
TRANSFORMER_DIR = "transformer"
_META_KEYS = ("candidate", "classes", "params", "created", "versions", "format")


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
    """Save a fitted candidate and ``meta.json`` into ``model_dir`` (created if needed).

    The transformer is written with ``save_pretrained`` into ``model_dir/transformer``, every other candidate
    with joblib into ``model_dir/model.joblib``.

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
    }
    (model_dir / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return full


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`save_model`.

    Returns:
        (model, meta).

    Raises:
        ModelLoadError: the directory, its meta.json or its model file is missing or unreadable, or the model
            does not match its metadata.
    """
    import joblib

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
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"unreadable {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("candidate") not in CANDIDATES or "classes" not in meta:
        raise ModelLoadError(
            f"{meta_path} is not docclass model metadata: expected keys candidate (one of "
            f"{', '.join(CANDIDATES)}) and classes"
        )
    if meta["candidate"] == "transformer":
        model = TransformerClassifier.from_pretrained(model_dir / TRANSFORMER_DIR)
    else:
        path = model_dir / MODEL_FILE
        if not path.is_file():
            raise ModelLoadError(f"model directory {model_dir} has no {MODEL_FILE}")
        try:
            model = joblib.load(path)
        except (
            OSError,
            EOFError,
            pickle.UnpicklingError,
            ValueError,
            AttributeError,
            ImportError,
            KeyError,
        ) as exc:
            raise ModelLoadError(f"unreadable model file {path}: {type(exc).__name__}: {exc}") from exc
    classes = [str(c) for c in getattr(model, "classes_", [])]
    if classes != meta["classes"] or getattr(type(model), "name", None) != meta["candidate"]:
        raise ModelLoadError(
            f"model in {model_dir} does not match {META_FILE}: expected {meta['candidate']} with classes "
            f"{meta['classes']}, found {type(model).__name__} with classes {classes}"
        )
    return model, meta

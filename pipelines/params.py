"""Load params.yaml: the single place every ML parameter lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


class ParamsError(ValueError):
    """params.yaml is missing or malformed."""


def default_params_path() -> Path:
    """./params.yaml, else the repository's params.yaml (``DOCCLASS_PARAMS`` is read by the entry points, from
    :class:`flows.settings.Settings`, and given to :func:`load_params`)."""
    local = Path("params.yaml")
    return local if local.exists() else REPO_ROOT / "params.yaml"


def load_params(path: Path | None = None) -> dict[str, Any]:
    """Read params.yaml at ``path`` (None: :func:`default_params_path`).

    Raises:
        ParamsError: the file is missing, not YAML, or lacks a required section.
    """
    path = path or default_params_path()
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise ParamsError(f"params file {path} not found: expected a params.yaml") from error
    except yaml.YAMLError as error:
        raise ParamsError(f"params file {path} is not valid YAML: {error}") from error
    if not isinstance(params, dict):
        raise ParamsError(f"params file {path} must hold a mapping, found {type(params).__name__}")
    required = ("seed", "classes", "ingest", "extract", "train", "predict", "evaluate")
    missing = [key for key in required if key not in params]
    if missing:
        raise ParamsError(f"params file {path} lacks {missing}: expected sections {list(required)}")
    params["classes"] = [str(label) for label in params["classes"]]
    return params

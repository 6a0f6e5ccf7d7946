"""The repository's params.yaml for tests: every estimator or config a test needs is built from it, with the
overrides the test names, so no test repeats a value of params.yaml (and none drifts from it)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.params import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS: dict[str, Any] = load_params(ROOT / "params.yaml")


def params() -> dict[str, Any]:
    """A deep copy of the validated params.yaml, free to change."""
    return copy.deepcopy(PARAMS)


def train_params(**sections: dict[str, Any]) -> dict[str, Any]:
    """The ``train:`` section with some sub-sections' keys overridden (``text={"calibration_folds": 0}``)."""
    train = copy.deepcopy(PARAMS["train"])
    for name, overrides in sections.items():
        train[name] = {**train[name], **overrides}
    return train


def candidate(name: str, random_state: int | None = None, **overrides: Any) -> Any:
    """An unfitted candidate from ``train.<name>`` with ``overrides`` of its keys, built by ``make_candidate``
    (``random_state``: params.yaml's seed unless given)."""
    from pipelines.models import make_candidate

    train = train_params(**({name: overrides} if overrides else {}))
    return make_candidate(name, train, PARAMS["seed"] if random_state is None else random_state)


def extract_config(**overrides: Any) -> Any:
    """:class:`pipelines.extract.ExtractConfig` from ``extract:`` with ``overrides`` (its field names)."""
    from pipelines.extract import ExtractConfig

    return replace(ExtractConfig.from_params(PARAMS["extract"]), **overrides)


def ingest_limits(**overrides: Any) -> Any:
    """:class:`pipelines.ingest.Limits` from ``ingest:`` with ``overrides`` (its field names, in bytes)."""
    from pipelines.ingest import Limits

    return replace(Limits.from_params(PARAMS["ingest"]), **overrides)


def review_rule(**overrides: Any) -> Any:
    """:class:`pipelines.predict.ReviewRule` from ``predict:`` with ``overrides`` (its field names)."""
    from pipelines.predict import ReviewRule

    return replace(ReviewRule.from_params(PARAMS["predict"]), **overrides)


def serve_config(**overrides: Any) -> Any:
    """:class:`serving.postprocess.ServeConfig` from ``serve:`` and ``predict:`` with ``overrides``."""
    from serving.postprocess import ServeConfig

    return replace(ServeConfig.from_params(PARAMS), **overrides)


def ocr_read(image: Any, lang: str = "auto") -> Any:
    """:func:`pipelines.ocr.ocr_image` with the ``extract:`` OCR settings (``ocr_lang`` replaced by ``lang``)."""
    from pipelines.ocr import ocr_image

    config = extract_config(ocr_lang=lang)
    return ocr_image(image, config.ocr_languages(), config.ocr_min_confidence, config.ocr_timeout_s)

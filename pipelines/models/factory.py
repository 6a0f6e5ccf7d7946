"""Candidates by name, built from the ``train:`` section of params.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.models.fusion import FusionClassifier
from pipelines.models.reference import ReferenceClassifier
from pipelines.models.text import TextClassifier
from pipelines.models.transformer import TransformerClassifier
from pipelines.models.visual import VisualClassifier

# "reference" is the plain baseline of issue 11 that `make bench` runs beside every candidate.
CANDIDATES = ("text", "visual", "fusion", "transformer", "reference")


def _section(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    section = params.get(key) or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"expected train.{key} to be a mapping, found {type(section).__name__}")
    return dict(section)


def _build(cls: type, section: dict[str, Any], key: str, **extra: Any) -> Any:
    valid = set(cls().get_params(deep=False))
    unknown = sorted(set(section) - valid)
    if unknown:
        raise ValueError(f"unknown train.{key} parameter(s) {unknown}: expected some of {sorted(valid)}")
    for name in ("word_ngrams", "char_ngrams", "weights"):
        if name in section and isinstance(section[name], list):
            section[name] = tuple(section[name])
    return cls(**section, **extra)


def make_candidate(name: str, params: Mapping[str, Any], seed: int) -> Any:
    """Build an unfitted candidate by name from the ``train:`` section of params.yaml.

    Args:
        name: one of "text", "visual", "fusion", "transformer", "reference".
        params: the ``train:`` mapping as loaded by yaml (sub-sections ``text``, ``visual``, ``fusion``,
            ``transformer``; a missing sub-section means the estimator's defaults).
        seed: random_state of the candidate.

    Returns:
        The unfitted estimator.

    Raises:
        ValueError: unknown name, or unknown parameter in a sub-section.
    """
    if name == "text":
        return _build(TextClassifier, _section(params, "text"), "text", random_state=seed)
    if name == "visual":
        return _build(VisualClassifier, _section(params, "visual"), "visual", random_state=seed)
    if name == "fusion":
        fusion = _section(params, "fusion")
        return _build(
            FusionClassifier,
            fusion,
            "fusion",
            text=make_candidate("text", params, seed),
            visual=make_candidate("visual", params, seed),
            random_state=seed,
        )
    if name == "transformer":
        return _build(
            TransformerClassifier, _section(params, "transformer"), "transformer", random_state=seed
        )
    if name == "reference":
        return _build(ReferenceClassifier, _section(params, "reference"), "reference", random_state=seed)
    raise ValueError(f"unknown candidate {name!r}: expected one of {', '.join(CANDIDATES)}")

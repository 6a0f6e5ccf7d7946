"""Candidates by name, built from the ``train:`` section of params.yaml."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipelines.models.base import CandidateUnavailable
from pipelines.models.fusion import FusionClassifier
from pipelines.models.hog import HogClassifier
from pipelines.models.reference import ReferenceClassifier
from pipelines.models.semantic import SemanticClassifier
from pipelines.models.stack import StackClassifier
from pipelines.models.text import TextClassifier
from pipelines.models.title import TitleClassifier
from pipelines.models.transformer import TransformerClassifier
from pipelines.models.visual import VisualClassifier
from pipelines.params import ParamsError, train_sections, validate_section

logger = logging.getLogger(__name__)

# "reference" is the plain baseline of issue 11 that `make bench` runs beside every candidate.
# "stack_fast" is the stack over ``train.stack.fast_views`` (the fast profile: no semantic view).
CANDIDATES = (
    "text",
    "visual",
    "fusion",
    "transformer",
    "reference",
    "stack",
    "stack_fast",
    "title",
    "semantic",
    "hog",
)


def _section(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Every value of ``train.<key>``, validated by its model in :mod:`pipelines.params` (ranges as tuples).

    Raises:
        ParamsError: the sub-section is missing, or a key in it is unknown, missing or mistyped.
    """
    model = train_sections().get(key)
    if model is None:  # the reference: its parameters are its definition
        if key in params:
            raise ParamsError(f"train.{key}: unknown key; the {key} candidate takes no parameters")
        return {}
    if key not in params:
        raise ParamsError(
            f"train.{key}: missing key (every key is required: see the repository's params.yaml)"
        )
    return validate_section(model, params[key], f"train.{key}").model_dump()


def _build(cls: type, section: dict[str, Any], key: str, **extra: Any) -> Any:
    # Every constructor argument comes from the validated section (or ``extra``): estimator defaults never
    # decide a value docclass trains with.
    return cls(**section, **extra)


def make_candidate(name: str, params: Mapping[str, Any], seed: int) -> Any:
    """Build an unfitted candidate by name from the ``train:`` section of params.yaml.

    Args:
        name: one of "text", "visual", "fusion", "transformer", "reference", "stack" (:data:`CANDIDATES`).
        params: the ``train:`` mapping of params.yaml; the candidate's sub-section (``train.text``...) is
            validated by its model in :mod:`pipelines.params` and every value of it is passed.
        seed: random_state of the candidate.

    Returns:
        The unfitted estimator.

    Raises:
        ValueError: unknown name; ParamsError (a ValueError) for a missing, unknown or mistyped parameter.
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
    if name == "stack":
        return _stack(params, seed, "views")
    if name == "stack_fast":
        return _stack(params, seed, "fast_views")
    if name == "title":
        return _build(TitleClassifier, _section(params, "title"), "title", random_state=seed)
    if name == "semantic":
        return _build(SemanticClassifier, _section(params, "semantic"), "semantic", random_state=seed)
    if name == "hog":
        return _build(HogClassifier, _section(params, "hog"), "hog", random_state=seed)
    raise ValueError(f"unknown candidate {name!r}: expected one of {', '.join(CANDIDATES)}")


def _stack(params: Mapping[str, Any], seed: int, views_key: str) -> StackClassifier:
    """The stack over the candidates named in ``train.stack.<views_key>`` (``views``, or ``fast_views`` for
    ``stack_fast``), each built from its own section."""
    section = _section(params, "stack")
    names = section.pop(views_key, None)
    for key in ("views", "fast_views"):
        section.pop(key, None)
    allowed = [name for name in CANDIDATES if name not in ("stack", "stack_fast", "transformer")]
    if not isinstance(names, list | tuple) or not names or any(name not in allowed for name in names):
        raise ValueError(
            f"expected train.stack.{views_key} to be a non-empty list of {allowed}, found {names!r}"
        )
    views, dropped = [], []
    for name in dict.fromkeys(str(name) for name in names):
        try:
            views.append((name, make_candidate(name, params, seed)))
        except CandidateUnavailable as error:  # a view may know at construction that it cannot run here
            logger.warning("stack view %s dropped: %s", name, error.reason)
            dropped.append(f"{name}: {error.reason}")
    if not views:
        raise CandidateUnavailable(f"no view of the stack can be built here ({'; '.join(dropped)})")
    return _build(StackClassifier, section, "stack", views=views, random_state=seed)

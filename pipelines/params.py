"""params.yaml, the one place every ML parameter of docclass lives, and its typed model.

Every section is a pydantic model that forbids unknown keys and has no defaults: a typo, a wrong type and a
missing key are each an error naming the key's path (``extract.ocr_dpy: unknown key; expected one of ...``,
``train.text.C: expected a number, found 'ten'``, ``serve.max_pages: missing key``). Values are written once, in
params.yaml; nothing here repeats them.

:func:`load_params` validates the whole file and returns it as a plain mapping of the same shape (types
normalised: numbers are numbers, classes are strings). Params stay plain data on purpose: they are recorded with
every model (meta.json, MLflow), compared between versions, written back to YAML by the demo and the tests, and
passed to Prefect flows as parameters. The code that consumes a section validates it again with its model
(:func:`validate_section`, cheap), so a section built by hand gets the same checks as the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


class ParamsError(ValueError):
    """params.yaml (or one of its sections) is missing or malformed; the message names every bad key."""


# ------------------------------------------------------------------------------------------------ value types

# Strict scalars: YAML already types its values, so "10" for a number or `true` for a count is a mistake to
# report, not to coerce. A number accepts an integer (C: 10).
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), Field(ge=0)]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
PositiveNumber = Annotated[float, Strict(), Field(gt=0)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1)]


def _ordered_range(value: tuple[int, int]) -> tuple[int, int]:
    if not 1 <= value[0] <= value[1]:
        raise ValueError(f"expected [low, high] with 1 <= low <= high, found {list(value)}")
    return value


NgramRange = Annotated[tuple[PositiveInt, PositiveInt], AfterValidator(_ordered_range)]


def _label(value: Any) -> Any:
    # YAML reads an unquoted 1040 as a number; class labels are strings.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Label = Annotated[Text, BeforeValidator(_label), Field(min_length=1)]


class Section(BaseModel):
    """A params.yaml section: every key required, no other key allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------------------ sections


class SampleParams(Section):
    """``sample:`` the generated sample corpus (demo, tests, default DVC dataset)."""

    per_class: PositiveInt
    scanned_share: Fraction


class IngestParams(Section):
    """``ingest:`` input limits (:class:`pipelines.ingest.Limits`)."""

    max_file_mb: PositiveNumber
    max_pages: PositiveInt
    max_image_pixels: PositiveInt
    zip_max_members: PositiveInt
    zip_max_total_mb: PositiveNumber
    zip_max_ratio: PositiveNumber
    zip_max_depth: Count


class ExtractParams(Section):
    """``extract:`` text layer, OCR and thumbnails (:class:`pipelines.extract.ExtractConfig`)."""

    min_text_chars: Count
    ocr_dpi: PositiveInt
    ocr_lang: Text
    ocr_scripts: dict[Text, Text]
    ocr_latin_languages: dict[Text, Text]
    ocr_min_confidence: Annotated[float, Strict(), Field(ge=0, le=100)]
    max_text_chars: PositiveInt
    thumb_width: PositiveInt
    thumb_height: PositiveInt
    workers: Count
    ocr_timeout_s: PositiveNumber


class TextTrainParams(Section):
    """``train.text:`` :class:`pipelines.models.text.TextClassifier`."""

    word_ngrams: NgramRange
    char_ngrams: NgramRange
    max_features: PositiveInt
    C: PositiveNumber
    max_chars: PositiveInt
    keep_identifiers: Flag
    calibration_folds: Count


class VisualTrainParams(Section):
    """``train.visual:`` :class:`pipelines.models.visual.VisualClassifier`."""

    C: PositiveNumber
    pages: PositiveInt
    calibration_folds: Count


class FusionTrainParams(Section):
    """``train.fusion:`` :class:`pipelines.models.fusion.FusionClassifier` (its text and visual parts come from
    ``train.text`` and ``train.visual``)."""

    weights: Annotated[tuple[Fraction, ...], Field(min_length=1)]


class TransformerTrainParams(Section):
    """``train.transformer:`` :class:`pipelines.models.transformer.TransformerClassifier`."""

    base: Text
    max_length: PositiveInt
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: PositiveNumber
    calibration_folds: Count
    num_threads: PositiveInt | None


class TitleTrainParams(Section):
    """``train.title:`` :class:`pipelines.models.title.TitleClassifier`."""

    word_ngrams: NgramRange
    char_ngrams: NgramRange
    max_features: PositiveInt | None
    C: PositiveNumber
    pages: PositiveInt
    max_chars: PositiveInt
    title_chars: PositiveInt
    title_weight: PositiveNumber
    calibration_folds: Count


class SemanticTrainParams(Section):
    """``train.semantic:`` :class:`pipelines.models.semantic.SemanticClassifier`."""

    model: Text
    prefix: Text
    pages: PositiveInt
    max_chars: PositiveInt
    title_chars: PositiveInt
    C: PositiveNumber
    num_threads: PositiveInt
    calibration_folds: Count


class HogTrainParams(Section):
    """``train.hog:`` :class:`pipelines.models.hog.HogClassifier`."""

    C: PositiveNumber
    calibration_folds: Count


CandidateNames = Annotated[list[Text], Field(min_length=1)]


class StackTrainParams(Section):
    """``train.stack:`` :class:`pipelines.models.stack.StackClassifier` over the candidates named in ``views``."""

    views: CandidateNames
    fast_views: CandidateNames
    C: PositiveNumber | Annotated[list[PositiveNumber], Field(min_length=1)]
    folds: Annotated[int, Strict(), Field(ge=2)]
    clip: Annotated[float, Strict(), Field(gt=0, lt=1)]
    other: Literal["plain", "open_set"]
    other_label: Label
    identifiers: Flag
    identifier_chars: PositiveInt
    identifier_common_share: Annotated[float, Strict(), Field(gt=0, le=1)]
    standardize: Flag
    review_score: Literal["max_probability", "margin_agree"]


class TrainParams(Section):
    """``train:`` the candidates tried, cross-validation, and one sub-section per candidate (its constructor
    arguments; ``reference`` has none: it is fixed by definition)."""

    candidates: CandidateNames
    max_folds: Annotated[int, Strict(), Field(ge=2)]
    text: TextTrainParams
    visual: VisualTrainParams
    fusion: FusionTrainParams
    transformer: TransformerTrainParams
    title: TitleTrainParams
    semantic: SemanticTrainParams
    hog: HogTrainParams
    stack: StackTrainParams


class LabelingParams(Section):
    """``labeling:`` what annotators see in Label Studio."""

    render_dpi: PositiveInt


class SplitParams(Section):
    """``split:`` :class:`pipelines.split.PageSplitter` (multi-document PDFs)."""

    boundary_weight: Annotated[float, Strict(), Field(ge=0)]
    transition_penalty: Number
    synthetic_boundaries: Count
    max_continuations: Count
    C: PositiveNumber
    text_folds: Count


class PredictParams(Section):
    """``predict:`` how a prediction is flagged (:class:`pipelines.predict.ReviewRule`)."""

    target_accuracy: Annotated[float, Strict(), Field(gt=0, le=1)]
    review_floor: Fraction
    review_threshold: Fraction


class EvaluateParams(Section):
    """``evaluate:`` cross-validated metrics."""

    ece_bins: PositiveInt


class ServeParams(Section):
    """``serve:`` the classification service (:class:`serving.postprocess.ServeConfig`)."""

    poll_seconds: PositiveNumber
    cache_versions: PositiveInt
    max_upload_mb: PositiveNumber
    max_pages: PositiveInt
    request_timeout_s: PositiveNumber
    max_batch_size: PositiveInt
    max_latency_ms: PositiveNumber
    min_labels: PositiveInt | None
    max_concurrent_requests: PositiveInt
    max_queued_pages: PositiveInt
    retry_after_s: PositiveInt


class GateParams(Section):
    """``gate:`` promotion gates (:func:`pipelines.gates.check_gates`)."""

    min_accuracy: Fraction
    min_macro_f1: Fraction
    min_class_recall: Fraction
    max_regression: Fraction


class LoopParams(Section):
    """``loop:`` the retraining loop (flows/retrain.py)."""

    retrain_every: PositiveInt
    interval_seconds: PositiveInt
    candidates: CandidateNames


class BenchParams(Section):
    """``bench:`` `make bench` (pipelines/bench)."""

    candidates: list[Text]  # the reference always runs besides them: [] benchmarks the reference alone
    sizes: Annotated[list[PositiveInt], Field(min_length=1)]
    draws: PositiveInt
    manifest: Text
    source_column: Text
    n_jobs: PositiveInt


def train_sections() -> dict[str, type[Section]]:
    """Candidate name -> the model of its ``train.<name>`` sub-section."""
    out: dict[str, type[Section]] = {}
    for name, field in TrainParams.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            out[name] = annotation
    return out


# Candidates without a train sub-section of their own: the reference's parameters are part of its definition;
# stack_fast is the stack over train.stack.fast_views.
UNPARAMETERISED = ("reference", "stack_fast")


class Params(Section):
    """The whole params.yaml."""

    seed: Annotated[int, Strict(), Field(ge=0)]
    dataset: Text
    classes: Annotated[list[Label], Field(min_length=2)]
    sample: SampleParams
    ingest: IngestParams
    extract: ExtractParams
    train: TrainParams
    labeling: LabelingParams
    split: SplitParams
    predict: PredictParams
    evaluate: EvaluateParams
    serve: ServeParams
    gate: GateParams
    loop: LoopParams
    bench: BenchParams


# ------------------------------------------------------------------------------------------------ errors

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or "params"


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The section model found by following ``loc`` (keys only) from ``model``."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return current


def _describe(error: Any, model: type[BaseModel], prefix: str) -> str:
    loc = tuple(error["loc"])
    path = _path(prefix, loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        expected = ", ".join(parent.model_fields) if parent is not None else "the documented keys"
        return f"{path}: unknown key; expected one of {expected}"
    if kind == "missing":
        return f"{path}: missing key (every key is required: see the repository's params.yaml)"
    found = repr(error.get("input"))
    if kind in _EXPECTED:
        return f"{path}: expected {_EXPECTED[kind]}, found {found}"
    ctx = error.get("ctx") or {}
    if kind in _BOUNDS:
        operator, key = _BOUNDS[kind]
        limit = ctx[key]
        shown = f"{limit:g}" if isinstance(limit, int | float) else limit
        return f"{path}: expected a number {operator} {shown}, found {found}"
    if kind == "too_short":
        return f"{path}: expected at least {ctx['min_length']} item(s), found {found}"
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")
    if message.startswith("expected"):
        return f"{path}: {message}"
    return f"{path}: expected a value that is {message}, found {found}"


S = TypeVar("S", bound=BaseModel)


def validate_section(model: type[S], data: Any, path: str = "") -> S:
    """Validate a section (or the whole file with :class:`Params`) against its model.

    Args:
        model: the section model, e.g. :class:`ExtractParams`.
        data: the mapping as read from YAML (or built by hand).
        path: where the section sits in params.yaml (``extract``, ``train.text``), for the messages.

    Raises:
        ParamsError: every unknown, missing or mistyped key, each on its line with its path.
    """
    if isinstance(data, model):
        return data
    if data is None:
        raise ParamsError(f"{path or 'params'}: missing section (see the repository's params.yaml)")
    if not isinstance(data, Mapping):
        raise ParamsError(f"{path or 'params'}: expected a mapping, found {type(data).__name__} {data!r}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        lines = [_describe(item, model, path) for item in error.errors()]
        raise ParamsError("\n".join(lines)) from None


def _check_candidates(params: Params) -> None:
    known = [*train_sections(), *UNPARAMETERISED]
    problems = [
        f"{where}: unknown candidate {name!r}; expected one of {', '.join(known)}"
        for where, names in (
            ("train.candidates", params.train.candidates),
            ("loop.candidates", params.loop.candidates),
            ("bench.candidates", params.bench.candidates),
            ("train.stack.views", params.train.stack.views),
            ("train.stack.fast_views", params.train.stack.fast_views),
        )
        for name in names
        if name not in known
    ]
    if len(set(params.classes)) != len(params.classes):
        problems.append(f"classes: expected distinct labels, found {params.classes}")
    if problems:
        raise ParamsError("\n".join(problems))


def validate_params(data: Any, source: str = "params") -> dict[str, Any]:
    """Validate a whole params mapping; return it as plain data (same shape, types normalised).

    Raises:
        ParamsError: naming ``source`` and every bad key by its path.
    """
    try:
        model = validate_section(Params, data)
        _check_candidates(model)
    except ParamsError as error:
        raise ParamsError(f"{source} is not valid:\n{error}") from None
    return model.model_dump(mode="json")


def default_params_path() -> Path:
    """./params.yaml, else the repository's params.yaml (``DOCCLASS_PARAMS`` is read by the entry points, from
    :class:`flows.settings.Settings`, and given to :func:`load_params`)."""
    local = Path("params.yaml")
    return local if local.exists() else REPO_ROOT / "params.yaml"


def load_params(path: Path | None = None) -> dict[str, Any]:
    """Read and validate params.yaml at ``path`` (None: :func:`default_params_path`).

    Returns:
        The validated params as plain data (see :func:`validate_params`).

    Raises:
        ParamsError: the file is missing or not YAML, or a key is unknown, missing or mistyped.
    """
    path = path or default_params_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise ParamsError(f"params file {path} not found: expected a params.yaml") from error
    except yaml.YAMLError as error:
        raise ParamsError(f"params file {path} is not valid YAML: {error}") from error
    return validate_params(raw, f"params file {path}")

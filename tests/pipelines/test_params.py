"""The typed model of params.yaml: every key known, typed and required; errors name the key's path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.params import (
    ExtractParams,
    Params,
    ParamsError,
    Section,
    TrainParams,
    load_params,
    train_sections,
    validate_params,
    validate_section,
)

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def raw() -> dict[str, Any]:
    return copy.deepcopy(RAW)


def error_of(params: dict[str, Any]) -> str:
    with pytest.raises(ParamsError) as caught:
        validate_params(params, "params.yaml")
    return str(caught.value)


def test_the_repository_params_yaml_loads_as_plain_data() -> None:
    params = load_params(ROOT / "params.yaml")
    assert set(params) == set(Params.model_fields) == set(RAW)
    assert params["classes"] == ["w9", "1040", "invoice", "payslip", "other"]
    assert params["train"]["text"]["C"] == 10.0 and isinstance(params["train"]["text"]["C"], float)
    assert params["train"]["text"]["word_ngrams"] == [1, 2]  # lists, so YAML and JSON can write it back
    assert params["train"]["transformer"]["num_threads"] is None
    assert yaml.safe_load(yaml.safe_dump(params)) == params
    assert validate_params(params) == params  # what load_params returns validates again unchanged


def test_the_test_params_load() -> None:
    """The params the serving tests write for their service (and flows/bench_serve.py the same way)."""
    from tests.serving.conftest import serve_params

    params = serve_params()
    assert validate_params(params)["serve"]["poll_seconds"] == 0.5


def test_every_section_and_key_of_params_yaml_is_modelled() -> None:
    def keys(model: type[Section], data: dict[str, Any], path: str) -> None:
        assert set(model.model_fields) == set(data), path
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, Section):
                keys(annotation, data[name], f"{path}.{name}")

    keys(Params, RAW, "params")


def test_a_typo_is_an_error_naming_its_path_and_the_keys_expected() -> None:
    params = raw()
    params["extract"]["ocr_dpy"] = params["extract"].pop("ocr_dpi")
    message = error_of(params)
    assert message.startswith("params.yaml is not valid:")
    assert "extract.ocr_dpy: unknown key; expected one of min_text_chars, ocr_dpi, ocr_lang" in message
    assert "extract.ocr_dpi: missing key" in message


def test_a_wrong_type_is_an_error_naming_its_path_and_the_value() -> None:
    params = raw()
    params["train"]["text"]["C"] = "ten"
    params["ingest"]["max_pages"] = True
    params["train"]["fusion"]["weights"][2] = 1.5
    params["train"]["text"]["word_ngrams"] = [3, 1]
    message = error_of(params)
    assert "train.text.C: expected a number, found 'ten'" in message
    assert "ingest.max_pages: expected an integer, found True" in message
    assert "train.fusion.weights[2]: expected a number <= 1" in message
    assert "train.text.word_ngrams: expected [low, high] with 1 <= low <= high, found [3, 1]" in message


def test_a_missing_key_or_section_is_an_error_naming_its_path() -> None:
    params = raw()
    del params["serve"]["max_pages"]
    del params["gate"]
    message = error_of(params)
    assert "serve.max_pages: missing key" in message and "gate: missing key" in message


def test_unknown_candidates_and_duplicate_classes_are_errors() -> None:
    params = raw()
    params["loop"]["candidates"] = ["txt"]
    params["classes"] = ["w9", "w9"]
    message = error_of(params)
    assert "loop.candidates: unknown candidate 'txt'; expected one of text, visual" in message
    assert "classes: expected distinct labels" in message


def test_a_numeric_class_label_becomes_a_string() -> None:
    params = raw()
    params["classes"] = ["w9", 1040]
    assert validate_params(params)["classes"] == ["w9", "1040"]


def test_a_section_is_validated_alone_with_its_path() -> None:
    config = validate_section(ExtractParams, RAW["extract"], "extract")
    assert config.ocr_dpi == RAW["extract"]["ocr_dpi"]
    assert validate_section(ExtractParams, config, "extract") is config
    with pytest.raises(ParamsError, match=r"^train.text.max_chars: expected an integer, found 'lots'$"):
        validate_section(
            train_sections()["text"], {**RAW["train"]["text"], "max_chars": "lots"}, "train.text"
        )
    with pytest.raises(ParamsError, match=r"^train: expected a mapping, found list \[\]$"):
        validate_section(TrainParams, [], "train")


def test_load_params_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found: expected a params.yaml"):
        load_params(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1\n")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        load_params(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(ParamsError, match=rf"params file {listed} is not valid:\nparams: expected a mapping"):
        load_params(listed)
    typo = tmp_path / "typo.yaml"
    params = raw()
    params["predict"]["review_treshold"] = params["predict"].pop("review_threshold")
    typo.write_text(yaml.safe_dump(params))
    with pytest.raises(
        ParamsError, match=r"predict.review_treshold: unknown key; expected one of .*review_threshold"
    ):
        load_params(typo)


def test_no_section_model_has_a_default() -> None:
    """Values are written once, in params.yaml: a model with a default would be a second copy."""

    def defaults(model: type[Section]) -> list[str]:
        found = [name for name, field in model.model_fields.items() if not field.is_required()]
        for field in model.model_fields.values():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, Section):
                found += defaults(annotation)
        return found

    assert defaults(Params) == []


def test_the_default_path_reads_no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pipelines.params import default_params_path

    monkeypatch.setenv("DOCCLASS_PARAMS", str(tmp_path / "elsewhere.yaml"))
    monkeypatch.chdir(tmp_path)
    assert default_params_path() == ROOT / "params.yaml"
    (tmp_path / "params.yaml").write_text("")
    assert default_params_path() == Path("params.yaml")

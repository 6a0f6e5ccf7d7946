"""Pure pieces of the service, tested alone: config, answers, segments, splitting, statuses, the model store and
the batcher (with fake models)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.predict import ReviewRule
from serving.batching import Batcher
from serving.models import LoadedModel, ModelStore, UnknownVersionError
from serving.postprocess import (
    ServeConfig,
    document_answer,
    parse_bearer,
    rejection_status,
    split_by_counts,
    thumbnail_data_uri,
    upload_name,
)
from tests.params import PARAMS


def test_config_from_params_and_errors() -> None:
    def params(serve: dict[str, Any], predict: dict[str, Any]) -> dict[str, Any]:
        return {"serve": {**PARAMS["serve"], **serve}, "predict": {**PARAMS["predict"], **predict}}

    config = ServeConfig.from_params(
        params({"poll_seconds": 2, "max_upload_mb": 1}, {"review_threshold": 0.7, "target_accuracy": 0.95})
    )
    assert (
        config.poll_seconds == 2.0
        and config.max_upload_bytes == 1024 * 1024
        and config.review_threshold == 0.7
    )
    assert config.review == ReviewRule(0.95, PARAMS["predict"]["review_floor"], 0.7)
    assert ServeConfig.from_params(PARAMS).cache_versions == PARAMS["serve"]["cache_versions"]
    with pytest.raises(ValueError, match=r"predict.target_accuracy: expected a number <= 1, found 2"):
        ServeConfig.from_params(params({}, {"target_accuracy": 2}))
    with pytest.raises(ValueError, match=r"serve.pol_seconds: unknown key; expected one of poll_seconds"):
        ServeConfig.from_params(params({"pol_seconds": 1}, {}))
    with pytest.raises(ValueError, match=r"serve.max_pages: expected a number > 0, found 0"):
        ServeConfig.from_params(params({"max_pages": 0}, {}))
    with pytest.raises(ValueError, match=r"serve: missing section"):
        ServeConfig.from_params({"predict": PARAMS["predict"]})


def test_document_answer_carries_the_model_review_decision_and_the_top_three() -> None:
    """needs_review, review_threshold and top are the prediction's (the model's own learned threshold)."""
    prediction = {
        "sha256": "ab",
        "label": "w9",
        "confidence": 0.55,
        "scores": {"w9": 0.55, "other": 0.45},
        "top": [{"label": "w9", "score": 0.55}, {"label": "other", "score": 0.45}],
        "needs_review": True,
        "review_score": 0.1,
        "review_threshold": 0.7,
        "n_pages": 1,
        "pages": [{"page": 1, "label": "w9", "confidence": 0.55, "scores": {"w9": 0.55, "other": 0.45}}],
    }
    answer = document_answer(prediction, "a.pdf", [{"source": "ocr", "rotation": 90}], ["data:x"])
    assert answer["needs_review"] is True and answer["review_threshold"] == 0.7 and answer["name"] == "a.pdf"
    assert answer["review_score"] == 0.1
    assert answer["top"] == prediction["top"]
    assert answer["pages"][0] == {
        **prediction["pages"][0],
        "source": "ocr",
        "rotation": 90,
        "thumbnail": "data:x",
    }
    assert "segments" not in answer  # only with split=auto
    segments = [{"label": "w9", "first_page": 1, "last_page": 1, "confidence": 0.9}]
    assert document_answer(prediction, "a.pdf", [], segments=segments)["segments"] == segments
    assert document_answer({**prediction, "needs_review": False}, "a.pdf", [])["needs_review"] is False


def test_split_by_counts() -> None:
    assert split_by_counts([1, 2, 3, 4], [1, 0, 3]) == [[1], [], [2, 3, 4]]
    with pytest.raises(ValueError, match="cannot be split"):
        split_by_counts([1, 2], [3])


def test_statuses_bearer_names_and_thumbnails() -> None:
    assert rejection_status(["UnsupportedTypeError"]) == 415
    assert rejection_status(["FileTooLargeError", "ZipBombError"]) == 413
    assert rejection_status(["CorruptDocumentError", "UnsupportedTypeError"]) == 422
    assert (
        parse_bearer("Bearer abc") == "abc"
        and parse_bearer("Basic abc") is None
        and parse_bearer(None) is None
    )
    assert upload_name(Path("/tmp/x/tmpab12cd34report.pdf")) == "report.pdf"
    assert upload_name(Path("/tmp/x/tmpab12cd34")) == "tmpab12cd34"
    uri = thumbnail_data_uri(np.full((4, 3), 200, dtype=np.uint8))
    assert uri.startswith("data:image/png;base64,")


class FakeRegistry:
    def __init__(self) -> None:
        self.alias: int | None = 1
        self.loads: list[int] = []

    def champion_number(self) -> int | None:
        return self.alias

    def download_model(self, number: int, dst: Path) -> Path:  # pragma: no cover - the fake loader skips it
        raise AssertionError


def fake_loader(registry: FakeRegistry, number: int, workdir: Path) -> LoadedModel:
    if number > 5:
        raise KeyError(number)
    registry.loads.append(number)
    return LoadedModel(number, f"model-{number}", {}, 0.0)


def test_store_swaps_atomically_and_caches_pins(tmp_path: Path) -> None:
    registry = FakeRegistry()
    store = ModelStore(registry, 2, tmp_path, loader=fake_loader)
    assert store.champion is None and store.refresh() is True
    held = store.champion  # a request in flight holds this one
    registry.alias = 2
    assert store.refresh() is True and store.refresh() is False
    assert held is not None and held.model == "model-1" and store.champion.model == "model-2"
    assert store.get(3).model == "model-3" and store.get(3).model == "model-3"
    store.get(4)
    assert store.cached_versions() == ["1.3", "1.4"]  # LRU of 2: the champion 1.2 is held anyway
    assert registry.loads == [1, 2, 3, 4]
    with pytest.raises(UnknownVersionError, match="version 1.9 cannot be loaded"):
        store.get(9)
    registry.alias = None
    assert store.refresh() is True and store.champion is None


def test_a_refused_champion_is_not_downloaded_again_at_every_poll(tmp_path: Path) -> None:
    """A champion whose artefacts this process refuses (another model code, tampered bytes) stays refused until
    the alias moves: the poller does not download it every few seconds; a registry outage is retried."""
    from pipelines.models.persistence import LibraryVersionError

    attempts: list[int] = []

    def loader(registry: FakeRegistry, number: int, workdir: Path) -> LoadedModel:
        attempts.append(number)
        if number == 2:
            raise LibraryVersionError(
                "saved by docclass model code 1 of stack; this process runs model code 2"
            )
        if number == 3 and attempts.count(3) == 1:
            raise ConnectionError("registry unreachable")
        return LoadedModel(number, f"model-{number}", {}, 0.0)

    registry = FakeRegistry()
    store = ModelStore(registry, 2, tmp_path, loader=loader)
    assert store.refresh() is True
    registry.alias = 2
    for _ in range(3):
        with pytest.raises(UnknownVersionError, match="model code 1 of stack"):
            store.refresh()
    assert attempts == [1, 2] and store.champion.model == "model-1"  # still serving 1.1
    registry.alias = 3
    with pytest.raises(UnknownVersionError, match="unreachable"):
        store.refresh()
    assert store.refresh() is True and store.champion.model == "model-3"  # a transient failure is retried
    assert attempts == [1, 2, 3, 3]


def test_store_loads_a_version_once_under_concurrency(tmp_path: Path) -> None:
    registry = FakeRegistry()
    store = ModelStore(registry, 2, tmp_path, loader=fake_loader)
    threads = [threading.Thread(target=store.get, args=(3,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.loads == [3]


def test_batcher_batches_concurrent_requests_per_model() -> None:
    calls: list[tuple[str, int]] = []

    def predict(model: str, docs: list[str]) -> list[dict[str, str]]:
        calls.append((model, len(docs)))
        return [{"model": model, "doc": d} for d in docs]

    async def main() -> list[list[dict[str, str]]]:
        batcher = Batcher(predict, max_batch_size=100, max_latency_ms=50)
        jobs = [batcher.submit("a" if i % 2 else "b", [f"d{i}", f"e{i}"]) for i in range(10)]
        out = await asyncio.gather(*jobs)
        await batcher.close()
        return out

    out = asyncio.run(main())
    assert out[3] == [{"model": "a", "doc": "d3"}, {"model": "a", "doc": "e3"}]
    assert sorted(calls) == [("a", 10), ("b", 10)]  # two batched calls, not ten


def test_batcher_hands_errors_to_every_waiting_request() -> None:
    def predict(model: str, docs: list[str]) -> list[dict[str, str]]:
        raise RuntimeError("boom")

    async def main() -> list[object]:
        batcher = Batcher(predict, max_batch_size=10, max_latency_ms=10)
        out = await asyncio.gather(
            batcher.submit("a", ["x"]), batcher.submit("a", ["y"]), return_exceptions=True
        )
        await batcher.close()
        return out

    assert [str(e) for e in asyncio.run(main())] == ["boom", "boom"]


def test_upload_names_are_cut_in_part_headers_only() -> None:
    """Found by the hostile-file suite: a 1,004-character upload name made BentoML's temporary file impossible (500)."""
    from serving.postprocess import MAX_UPLOAD_NAME_BYTES, multipart_boundary, shorten_upload_names

    boundary = multipart_boundary("multipart/form-data; boundary=XyZ")
    assert boundary == b"XyZ" and multipart_boundary('multipart/form-data; boundary="q q"') == b"q q"
    assert multipart_boundary("application/json") is None
    long_name = "счёт-" + "n" * 1000 + ".pdf"
    content = b'%PDF-1.4 filename="' + b"x" * 400 + b'" stays as it is'
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="'
        + long_name.encode()
        + b'"\r\nContent-Type: application/pdf\r\n\r\n'
        + content
        + b'\r\n--XyZ\r\nContent-Disposition: form-data; name="version"\r\n\r\n1.2\r\n--XyZ--\r\n'
    )
    out = shorten_upload_names(body, b"XyZ")
    header = out.split(b"\r\n")[1].decode()
    name = header.split('filename="')[1].rstrip('"')
    assert name.startswith("счёт-nnn") and name.endswith(".pdf")
    assert len(name.encode()) <= MAX_UPLOAD_NAME_BYTES
    assert content in out and out.endswith(b'name="version"\r\n\r\n1.2\r\n--XyZ--\r\n')
    bare = body.replace(b'filename="' + long_name.encode() + b'"', b"filename=" + b"b" * 900 + b".png")
    # an unquoted name, which python-multipart parses too
    assert b"filename=" + b"b" * 196 + b".png\r\n" in shorten_upload_names(bare, b"XyZ")
    short = body.replace(long_name.encode(), "счёт.pdf".encode())
    assert shorten_upload_names(short, b"XyZ") == short  # a name within the limit is untouched

"""Batch classification (`docclass classify`): listing, sharding by sha256, rows and outputs (plain functions), then
the Prefect flow under Prefect's test harness on a local process pool, from S3 (a moto server on loopback), after
a failed shard, with a pinned version, on a real Dask scheduler and worker (integration), and the README example.

The registry is SQLite in a temp folder with two tiny text models: 1.1 (champion) and 1.2, trained on shifted
labels so that their answers differ."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.batch import (
    COLUMNS,
    BatchIncompleteError,
    DocumentChangedError,
    DocumentRef,
    MemberNotFoundError,
    Unlisted,
    assemble_rows,
    check_shard_size,
    error_result,
    list_file,
    make_shards,
    output_format,
    read_document,
    shard_documents,
    write_rows,
)
from pipelines.ingest import Limits, sha256_of
from pipelines.params import load_params
from tests.conftest import ROOT

LIMITS = Limits.from_params(load_params()["ingest"])


def digests(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(256):064x}" for _ in range(n)]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


PDF_A = b"%PDF-1.4\n% a\n"
PDF_B = b"%PDF-1.4\n% b\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


# --------------------------------------------------------------------------------------------------- shards


def test_shards_are_the_same_whatever_the_order_and_duplicates():
    shas = digests(1000)
    shuffled = shas[:] + shas[:50]
    random.Random(1).shuffle(shuffled)
    assert shard_documents(shuffled, 100) == shard_documents(shas, 100)
    shards = shard_documents(shas, 100)
    assert [d for shard in shards for d in shard] == sorted(shas)  # every document once, by sha256


@pytest.mark.parametrize("size", [50, 100, 200, 7])
def test_shards_respect_the_size(size: int):
    shards = shard_documents(digests(3000, seed=size), size)
    assert all(len(shard) <= size for shard in shards)
    assert all(len(shard) >= size // 2 for shard in shards[:-1])
    assert sum(map(len, shards)) == 3000


def test_adding_a_few_documents_keeps_most_shards():
    """Content-defined cuts: a folder that grew by 10 documents reuses the saved results of the other shards."""
    shas = digests(5000)
    before = {tuple(shard) for shard in shard_documents(shas, 100)}
    after = {tuple(shard) for shard in shard_documents(shas + digests(10, seed=99), 100)}
    assert len(after - before) <= 20 < len(before) // 2


def test_shard_keys_depend_on_documents_and_run_key_only():
    refs = [DocumentRef(f"doc{i}.pdf", d, f"/x/doc{i}.pdf") for i, d in enumerate(digests(30))]
    renamed = [replace(ref, name="other/" + ref.name, file="/y/" + ref.name) for ref in refs]
    keys = [s.key for s in make_shards(refs, 10, "run-a")]
    assert keys == [s.key for s in make_shards(renamed, 10, "run-a")]
    assert not set(keys) & {s.key for s in make_shards(refs, 10, "run-b")}
    duplicated = refs + [replace(refs[0], name="copy.pdf")]
    assert [s.size for s in make_shards(duplicated, 10, "run-a")] == [
        s.size for s in make_shards(refs, 10, "a")
    ]


def test_shard_size_is_checked_against_the_bounds():
    assert check_shard_size(50) == 50 and check_shard_size(200) == 200
    with pytest.raises(
        ValueError, match="shard size 10 is out of range: expected 50 to 200 documents a shard"
    ):
        check_shard_size(10)
    with pytest.raises(ValueError, match="shard size 201 is out of range"):
        check_shard_size(201)
    assert check_shard_size(3, (1, 200)) == 3
    with pytest.raises(ValueError, match="at least 1 document: got a shard size of 0"):
        shard_documents(["a" * 64], 0)


def test_output_format_by_extension():
    assert [output_format(p) for p in ("r.jsonl", "r.CSV", "dir/r.parquet")] == ["jsonl", "csv", "parquet"]
    with pytest.raises(
        ValueError, match=r"unsupported output 'r.json': expected a file ending in .jsonl, .csv"
    ):
        output_format("r.json")


# -------------------------------------------------------------------------------------------------- listing


def test_a_zip_lists_its_members_and_each_reads_back_checked():
    inner = zip_bytes({"deep.png": PNG})
    archive = zip_bytes({"./a.pdf": PDF_A, "sub/b.pdf": PDF_B, "inner.zip": inner, "notes.txt": b"hello"})
    listed = list_file("in/archive.zip", "/abs/archive.zip", archive, LIMITS)
    docs = [entry for entry in listed if isinstance(entry, DocumentRef)]
    assert [d.name for d in docs] == [
        "in/archive.zip/a.pdf",
        "in/archive.zip/sub/b.pdf",
        "in/archive.zip/inner.zip/deep.png",
    ]
    assert [d.member for d in docs] == ["./a.pdf", "sub/b.pdf", "inner.zip"]
    assert [d.sha256 for d in docs] == [sha256_of(PDF_A), sha256_of(PDF_B), sha256_of(PNG)]
    assert [read_document(d, archive, LIMITS) for d in docs] == [PDF_A, PDF_B, PNG]
    (bad,) = [entry for entry in listed if isinstance(entry, Unlisted)]
    assert bad.name == "in/archive.zip/notes.txt" and bad.error_type == "UnsupportedTypeError"
    assert "unsupported file type 'text/plain'" in bad.error and bad.sha256 is None


def test_a_plain_file_lists_itself_and_a_rejected_one_keeps_its_sha256():
    (doc,) = list_file("a.pdf", "/abs/a.pdf", PDF_A, LIMITS)
    assert doc == DocumentRef("a.pdf", sha256_of(PDF_A), "/abs/a.pdf")
    (bad,) = list_file("c.zip", "/abs/c.zip", b"PK\x03\x04 broken", LIMITS)
    assert isinstance(bad, Unlisted) and bad.sha256 == sha256_of(b"PK\x03\x04 broken")
    assert bad.error_type == "CorruptDocumentError" and "not a readable zip archive" in bad.error


def test_a_document_that_changed_or_left_its_archive_is_an_error():
    archive = zip_bytes({"a.pdf": PDF_A})
    (doc,) = list_file("x.zip", "/abs/x.zip", archive, LIMITS)
    with pytest.raises(
        DocumentChangedError, match=r"x.zip/a.pdf changed since it was listed: expected sha256"
    ):
        read_document(doc, zip_bytes({"a.pdf": PDF_B}), LIMITS)
    with pytest.raises(MemberNotFoundError, match="expected member 'a.pdf' in /abs/x.zip, found none"):
        read_document(doc, zip_bytes({"b.pdf": PDF_A}), LIMITS)
    (plain,) = list_file("a.pdf", "/abs/a.pdf", PDF_A, LIMITS)
    with pytest.raises(DocumentChangedError, match="a.pdf changed since it was listed"):
        read_document(plain, PDF_B, LIMITS)


# ----------------------------------------------------------------------------------------------------- rows


def answer(label: str) -> dict[str, Any]:
    return {
        "label": label,
        "confidence": 0.9,
        "needs_review": False,
        "scores": {label: 0.9, "other": 0.1},
        "error": None,
        "error_type": None,
        "read_as": "x",
    }


def test_rows_cover_every_listed_document_once_in_listing_order():
    a, b = DocumentRef("a.pdf", "a" * 64, "/a.pdf"), DocumentRef("b.pdf", "b" * 64, "/b.pdf")
    copy_of_a = replace(a, name="z.zip/a.pdf", file="/z.zip", member="a.pdf")
    bad = Unlisted("c.txt", "c" * 64, "unsupported file type 'text/plain' for c.txt", "UnsupportedTypeError")
    results = {a.sha256: answer("w9"), b.sha256: error_result(ValueError("b.pdf is broken"), "b.pdf")}
    rows = assemble_rows([a, bad, b, copy_of_a], results, "1.3")
    assert [row["document"] for row in rows] == ["a.pdf", "c.txt", "b.pdf", "z.zip/a.pdf"]
    assert all(list(row) == list(COLUMNS) and row["model_version"] == "1.3" for row in rows)
    assert rows[0]["label"] == rows[3]["label"] == "w9" and rows[0]["error"] is None
    assert rows[1]["error_type"] == "UnsupportedTypeError" and rows[1]["label"] is None
    assert rows[2]["error"] == "b.pdf is broken" and rows[2]["error_type"] == "ValueError"


def test_an_error_of_duplicate_bytes_names_the_row_s_document():
    a = DocumentRef("a.pdf", "a" * 64, "/a.pdf")
    copy_of_a = replace(a, name="z.zip/a.pdf")
    rows = assemble_rows(
        [a, copy_of_a], {a.sha256: error_result(ValueError("a.pdf is broken"), "a.pdf")}, "1.1"
    )
    assert [row["error"] for row in rows] == ["a.pdf is broken", "z.zip/a.pdf is broken"]


def test_rows_refuse_a_missing_or_an_unexpected_answer():
    a, b = DocumentRef("a.pdf", "a" * 64, "/a.pdf"), DocumentRef("b.pdf", "b" * 64, "/b.pdf")
    with pytest.raises(BatchIncompleteError, match="1 listed without an answer"):
        assemble_rows([a, b], {a.sha256: answer("w9")}, "1.1")
    with pytest.raises(BatchIncompleteError, match="1 answers for documents not listed"):
        assemble_rows([a], {a.sha256: answer("w9"), b.sha256: answer("w9")}, "1.1")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an output as dicts of plain values (CSV cells parsed back), for comparing formats."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        assert table.column_names == list(COLUMNS)
        rows = table.to_pylist()
        for row in rows:
            row["scores"] = dict(row["scores"]) if row["scores"] is not None else None
        return rows
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == list(COLUMNS)
        rows = []
        for row in reader:
            parsed: dict[str, Any] = {key: (value if value != "" else None) for key, value in row.items()}
            parsed["confidence"] = float(row["confidence"]) if row["confidence"] else None
            parsed["needs_review"] = {"True": True, "False": False}.get(row["needs_review"])
            parsed["scores"] = json.loads(row["scores"]) if row["scores"] else None
            rows.append(parsed)
        return rows


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_rows_round_trip_through_every_format(tmp_path: Path, suffix: str):
    a, b = DocumentRef('a, "quoted".pdf', "a" * 64, "/a.pdf"), DocumentRef("b.pdf", "b" * 64, "/b.pdf")
    rows = assemble_rows(
        [a, b], {a.sha256: answer("w9"), b.sha256: error_result(ValueError("no, pages"), "b.pdf")}, "1.2"
    )
    out = tmp_path / f"out{suffix}"
    write_rows(rows, out)
    assert read_rows(out) == rows
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


# ------------------------------------------------------------------------------------------------------- CLI


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    from flows.cli.app import app

    return CliRunner().invoke(app, list(args), env=env)


def test_cli_refuses_bad_arguments_before_any_work(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    result = cli("classify", str(folder), "--out", str(tmp_path / "r.txt"))
    assert result.exit_code == 2 and "unsupported output" in result.output and "r.txt" in result.output
    result = cli("classify", str(tmp_path / "missing"), "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 2 and "does not exist: expected a folder, a file" in result.output
    result = cli("classify", "s3://", "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 2 and "expected s3://bucket or s3://bucket/prefix" in result.output
    result = cli("classify", str(folder), "--out", str(tmp_path / "r.jsonl"), "--shard-size", "10")
    assert result.exit_code == 2 and "shard size 10 is out of range: expected 50 to 200" in result.output
    result = cli(
        "classify", str(folder), "--out", str(tmp_path / "r.jsonl"), "--workers", "2",
        env={"DOCCLASS_DASK_ADDRESS": "tcp://127.0.0.1:18786"},
    )  # fmt: skip
    assert result.exit_code == 2 and "--workers 2 applies to the local process pool" in result.output
    assert not (tmp_path / "r.jsonl").exists()


def test_python_m_flows_cli_runs_nothing_when_a_spawned_worker_imports_it(monkeypatch: pytest.MonkeyPatch):
    """The local pool's workers are spawned: each imports the main module again (as ``__mp_main__``); under
    `python -m flows.cli classify ...` that used to run the whole command again in every worker."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["flows.cli", "classify", "nowhere", "--out", "r.jsonl"])
    runpy.run_module("flows.cli.__main__", run_name="__mp_main__")  # raised SystemExit(2) before the guard


# ------------------------------------------------------------------------------------------------ the flow


@dataclass
class World:
    root: Path
    uri: str
    params_file: Path
    docs: Path  # a folder of documents (one scanned, one corrupt PDF, one text file)
    archive: Path  # a zip of some of them (duplicates of the folder's) plus a corrupt member
    models: dict[int, Any]  # version number -> classifier

    def env(self, data_dir: Path | None = None) -> dict[str, str]:
        return {
            "DOCCLASS_MLFLOW_TRACKING_URI": self.uri,
            "DOCCLASS_PARAMS": str(self.params_file),
            "DOCCLASS_DATA_DIR": str(data_dir or self.root / "data"),
        }

    @property
    def registry(self) -> Any:
        from flows.registry import Registry

        return Registry(self.uri, "docclass", "docclass")

    def expected(self, number: int) -> dict[str, str | None]:
        """document -> label, classified in this process with the plain document path (None: an error)."""
        from pipelines.classify import Classified, classify_inputs
        from pipelines.extract import ExtractConfig
        from pipelines.predict import ReviewRule

        params = load_params(self.params_file)
        inputs = [*sorted(p for p in self.docs.rglob("*") if p.is_file()), self.archive]
        out: dict[str, str | None] = {}
        for group in classify_inputs(
            self.models[number],
            inputs,
            ExtractConfig.from_params(params["extract"]),
            LIMITS,
            ReviewRule.from_params(params["predict"]),
        ):
            for entry in group:
                out[entry.name] = entry.prediction["label"] if isinstance(entry, Classified) else None
        return out


def _register(registry: Any, model: Any, workdir: Path) -> int:
    from pipelines.models import save_model

    save_model(model, workdir / "model", {})
    run = registry.start_run(workdir.name, {"kind": "test"})
    digest = registry.log_model(run, workdir / "model")
    registry.finish_run(run)
    number = registry.register(run, {"gate": "pass"}, digest=digest)
    registry.mark_complete(number)
    return int(number)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from flows.registry import Registry
    from pipelines.dataset import load_labeled_documents
    from pipelines.extract import ExtractConfig
    from pipelines.models import make_candidate
    from pipelines.samples import generate_corpus

    root = tmp_path_factory.mktemp("batch")
    params = copy.deepcopy(load_params())
    params["train"]["text"]["calibration_folds"] = 0
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    generate_corpus(root / "train", per_class=3, seed=3, scanned_share=0.0)
    data = load_labeled_documents(root / "train", ExtractConfig.from_params(params["extract"]), LIMITS)
    labels = list(data.labels)
    classes = sorted(set(labels))
    shift = {c: classes[(i + 1) % len(classes)] for i, c in enumerate(classes)}
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri, "docclass", "docclass")
    m1 = make_candidate("text", params["train"], seed=1).fit(data.documents, labels)
    m2 = make_candidate("text", params["train"], seed=1).fit(data.documents, [shift[x] for x in labels])
    v1, v2 = _register(registry, m1, root / "one"), _register(registry, m2, root / "two")
    registry.move_champion(v1, reason="first", by="test", automatic=False)
    docs = root / "docs"
    generate_corpus(docs, per_class=2, seed=9, scanned_share=0.0)
    generate_corpus(docs / "scanned", per_class=1, seed=9, scanned_share=1.0, classes=["invoice"])
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage")
    (docs / "notes.txt").write_text("not a document")
    archive = root / "archive.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(docs.glob("*/*_000.pdf"))[:3]:
            handle.write(path, f"copies/{path.name}")
        handle.writestr("truncated.pdf", (docs / "w9" / "w9_001.pdf").read_bytes()[:300])
    return World(root, uri, params_file, docs, archive, {v1: m1, v2: m2})


@pytest.fixture(scope="module")
def harness() -> Iterator[str]:
    """Prefect's test harness (a temporary API on SQLite); yields its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def batch_env(world: World, harness: str, monkeypatch: pytest.MonkeyPatch) -> World:
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    for key in ("DOCCLASS_DASK_ADDRESS", "DOCCLASS_S3_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    return world


def run_flow(sources: list[str], out: Path, *, runner: Any = None, **options: Any) -> Any:
    """The flow on one local worker process (or ``runner``), shards of 4 documents."""
    from flows.batch import batch_flow, classify_batch
    from flows.settings import Settings

    run = (
        batch_flow(Settings(), workers=1)
        if runner is None
        else classify_batch.with_options(task_runner=runner)
    )
    return run(sources=sources, out=str(out), shard_size=4, shard_bounds=(1, 200), **options)


def flow_summary(sources: list[str], out: Path, **options: Any) -> tuple[dict[str, Any], list[str]]:
    """Run the flow; its summary and the final state names of its shard task runs (from the Prefect API)."""
    state = run_flow(sources, out, return_state=True, **options)
    assert state.is_completed(), state.message
    return state.result(), shard_states(state.state_details.flow_run_id)


def shard_states(flow_run_id: Any) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(run.state.name for run in runs if run.state is not None and run.name.startswith("shard "))


def listed_names(world: World) -> list[str]:
    """Every document the sources hold, as the output must name them."""
    names = [str(p) for p in sorted(world.docs.rglob("*")) if p.is_file()]
    with zipfile.ZipFile(world.archive) as handle:
        names += [f"{world.archive}/{info.filename}" for info in handle.infolist()]
    return names


@pytest.mark.slow
def test_a_folder_and_a_zip_give_every_document_once_in_every_format(batch_env: World, tmp_path: Path):
    world = batch_env
    sources = [str(world.docs), str(world.archive)]
    # 1. computes every shard (shards of 4 documents)
    summary, states = flow_summary(sources, tmp_path / "r.jsonl")
    assert summary["computed_shards"] == summary["shards"] >= 3 and summary["version"] == "1.1"
    assert states == ["Completed"] * summary["shards"]
    rows = read_rows(tmp_path / "r.jsonl")
    assert sorted(row["document"] for row in rows) == sorted(listed_names(world))
    assert summary["documents"] == len(rows) and summary["errors"] == 3
    by_name = {row["document"]: row for row in rows}
    expected = world.expected(1)
    for name, row in by_name.items():
        assert row["model_version"] == "1.1"
        if name.endswith(("broken.pdf", "notes.txt", "truncated.pdf")):
            assert row["label"] is None and row["error"] and row["error_type"]
        else:
            assert row["error"] is None and row["label"] == expected[name], name
            assert row["sha256"] and set(row["scores"]) == set(world.models[1].classes_)
            assert isinstance(row["needs_review"], bool) and 0 < row["confidence"] <= 1
    assert by_name[f"{world.docs}/notes.txt"]["error_type"] == "UnsupportedTypeError"
    assert by_name[f"{world.docs}/broken.pdf"]["error_type"] == "CorruptDocumentError"
    scanned = next(name for name in by_name if "/scanned/" in name)
    assert by_name[scanned]["label"] == "invoice"  # read by Tesseract in a worker process
    copies = [name for name in by_name if "/copies/" in name]
    originals = {path.name: str(path) for path in world.docs.rglob("*.pdf")}
    assert len(copies) == 3
    for name in copies:  # the same bytes as a document of the folder: the same answer
        original = by_name[originals[Path(name).name]]
        assert (by_name[name]["sha256"], by_name[name]["label"]) == (original["sha256"], original["label"])
    # 2. the rerun reuses every shard's saved result (the Prefect task-run states say so), same rows
    again, states = flow_summary(sources, tmp_path / "r.csv")
    assert again["computed_shards"] == 0 and states == ["Cached"] * summary["shards"]
    assert read_rows(tmp_path / "r.csv") == rows
    # 3. the command line, shards of 100 (so computed again): the same rows, a progress bar on stderr
    result = cli("classify", *sources, "--out", str(tmp_path / "r.parquet"), "--workers", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["computed_shards"] == 1
    assert read_rows(tmp_path / "r.parquet") == rows
    assert re.search(r"classifying .* 17/17", result.stderr)


@pytest.mark.slow
def test_version_flag_classifies_with_that_version(batch_env: World, tmp_path: Path):
    summary, states = flow_summary([str(batch_env.docs)], tmp_path / "r.jsonl", version="1.2")
    assert summary["version"] == "1.2" and states == ["Completed"] * summary["shards"]
    rows = read_rows(tmp_path / "r.jsonl")
    expected = batch_env.expected(2)
    assert {row["model_version"] for row in rows} == {"1.2"}
    assert all(row["label"] == expected[row["document"]] for row in rows)
    assert any(expected[name] != label for name, label in batch_env.expected(1).items() if label)


@pytest.mark.slow
def test_a_promotion_after_the_start_does_not_change_the_run(
    batch_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The champion moves to 1.2 right after the run pinned 1.1: every shard still classifies with 1.1."""
    import flows.batch

    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))  # no saved shards: every one computes
    resolve = flows.batch.resolve_version

    def resolve_then_promote(settings: Any, version: str | None) -> Any:
        pinned = resolve(settings, version)
        batch_env.registry.move_champion(2, reason="mid-run", by="test", automatic=False)
        return pinned

    monkeypatch.setattr(flows.batch, "resolve_version", resolve_then_promote)
    try:
        summary, states = flow_summary([str(batch_env.docs)], tmp_path / "r.jsonl")
    finally:
        batch_env.registry.move_champion(1, reason="back", by="test", automatic=False)
    assert summary["version"] == "1.1" and states == ["Completed"] * summary["shards"]
    rows = read_rows(tmp_path / "r.jsonl")
    expected = batch_env.expected(1)
    assert {row["model_version"] for row in rows} == {"1.1"}
    assert all(row["label"] == expected[row["document"]] for row in rows)


@pytest.mark.slow
def test_after_a_failed_shard_a_rerun_computes_only_that_one(
    batch_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A shard that fails (say its worker died for good) fails the run and writes nothing; the rerun reuses
    the finished shards and every document still appears exactly once."""
    from prefect.task_runners import ThreadPoolTaskRunner

    import flows.batch

    monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
    classify_documents = flows.batch.classify_documents
    doomed: list[str] = []

    def fail_one_shard(documents: Any, job: Any, classifier: Any) -> Any:
        if not doomed:
            doomed.extend(ref.sha256 for ref in documents)
        if any(ref.sha256 in doomed for ref in documents):
            raise OSError("worker lost")
        return classify_documents(documents, job, classifier)

    monkeypatch.setattr(flows.batch, "classify_documents", fail_one_shard)
    monkeypatch.setattr(flows.batch.classify_shard, "retry_delay_seconds", 0)
    out = tmp_path / "r.jsonl"
    sources = [str(batch_env.docs)]
    with pytest.raises(
        flows.batch.BatchError,
        match=r"1 of \d+ shards failed \(shard \d+: .*worker lost.*run the same command again",
    ):
        run_flow(sources, out, runner=ThreadPoolTaskRunner(max_workers=1))
    assert not out.exists()
    monkeypatch.setattr(flows.batch, "classify_documents", classify_documents)
    summary, states = flow_summary(sources, out, runner=ThreadPoolTaskRunner(max_workers=1))
    assert summary["computed_shards"] == 1 and states.count("Cached") == summary["shards"] - 1
    rows = read_rows(out)
    assert sorted(row["document"] for row in rows) == sorted(
        str(p) for p in batch_env.docs.rglob("*") if p.is_file()
    )


@pytest.mark.slow
def test_no_champion_is_a_clear_error(batch_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from flows.batch import BatchError

    monkeypatch.setenv("DOCCLASS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(BatchError, match="no champion in the registry sqlite:///.*pass --version 1.N"):
        run_flow([str(batch_env.docs)], tmp_path / "r.jsonl")
    result = cli("classify", str(batch_env.docs), "--out", str(tmp_path / "r.jsonl"), "--version", "1.9")
    assert result.exit_code == 2 and "version 1.9 of 'docclass' does not exist" in result.output


@pytest.mark.slow
def test_a_dask_scheduler_that_does_not_answer_is_a_clear_error(
    batch_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")
    address = f"tcp://127.0.0.1:{free_port()}"
    result = cli(
        "classify",
        str(batch_env.docs),
        "--out",
        str(tmp_path / "r.jsonl"),
        env={"DOCCLASS_DASK_ADDRESS": address},
    )
    assert result.exit_code == 2, result.output
    assert (
        f"expected a Dask scheduler at DOCCLASS_DASK_ADDRESS={address} (unset it to run locally)"
        in result.output
    )
    assert not (tmp_path / "r.jsonl").exists()


# ------------------------------------------------------------------------------------------------------- S3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A moto S3 server on loopback (a mock of the S3 API, enough to test listing and reading)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(batch_env: World, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for key, value in {
        "DOCCLASS_S3_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    return boto3.session.Session().client("s3", endpoint_url=s3_server)


def upload(client: Any, bucket: str, prefix: str, world: World) -> list[str]:
    client.create_bucket(Bucket=bucket)
    keys = []
    for path in sorted(world.docs.rglob("*")):
        if path.is_file():
            keys.append(f"{prefix}/{path.relative_to(world.docs)}")
            client.put_object(Bucket=bucket, Key=keys[-1], Body=path.read_bytes())
    keys.append(f"{prefix}/archive.zip")
    client.put_object(Bucket=bucket, Key=keys[-1], Body=world.archive.read_bytes())
    client.put_object(Bucket=bucket, Key=f"{prefix}/.hidden/skip.pdf", Body=b"%PDF-1.4")
    client.put_object(Bucket=bucket, Key="elsewhere/x.pdf", Body=b"%PDF-1.4")
    return keys


@pytest.mark.slow
def test_an_s3_prefix_is_listed_and_read_by_the_workers(s3_env: Any, batch_env: World, tmp_path: Path):
    keys = upload(s3_env, "scans", "2025", batch_env)
    summary, _ = flow_summary(["s3://scans/2025"], tmp_path / "r.jsonl")
    rows = read_rows(tmp_path / "r.jsonl")
    with zipfile.ZipFile(batch_env.archive) as handle:
        members = [f"s3://scans/2025/archive.zip/{info.filename}" for info in handle.infolist()]
    assert sorted(row["document"] for row in rows) == sorted(
        [*(f"s3://scans/{k}" for k in keys[:-1]), *members]
    )
    expected = batch_env.expected(1)
    for row in rows:
        local = row["document"].replace("s3://scans/2025/archive.zip", str(batch_env.archive))
        local = local.replace("s3://scans/2025", str(batch_env.docs))
        assert row["label"] == expected[local] and row["model_version"] == "1.1", row
    assert summary["errors"] == 3


@pytest.mark.slow
def test_an_s3_prefix_without_objects_is_a_clear_error(s3_env: Any, batch_env: World, tmp_path: Path):
    from flows.sources import SourceError

    s3_env.create_bucket(Bucket="empty")
    with pytest.raises(SourceError, match="no objects under s3://empty/none: expected documents"):
        run_flow(["s3://empty/none"], tmp_path / "r.jsonl")
    with pytest.raises(SourceError, match="cannot list s3://missing-bucket"):
        run_flow(["s3://missing-bucket"], tmp_path / "r.jsonl")


# ----------------------------------------------------------------------------------------------------- Dask


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@pytest.mark.integration
@pytest.mark.slow
def test_shards_run_on_a_dask_scheduler_through_the_setting(
    batch_env: World, harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A real scheduler and one worker on 127.0.0.1:18786 (not Dask's default ports, which others may use)."""
    from distributed import Client

    dask = Path(sys.executable).with_name("dask")
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}  # the shard task must set it
    env.update(PREFECT_API_URL=harness, **batch_env.env())
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = []
    try:
        processes.append(
            subprocess.Popen(
                [str(dask), "scheduler", "--host", "127.0.0.1", "--port", "18786", "--dashboard-address", "127.0.0.1:18787", "--no-show"],
                env=env, cwd=tmp_path, stdout=(logs / "scheduler.log").open("w"), stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        wait_for_port(18786, processes[0])
        processes.append(
            subprocess.Popen(
                [str(dask), "worker", "tcp://127.0.0.1:18786", "--nworkers", "1", "--nthreads", "1",
                 "--memory-limit", "2GiB", "--host", "127.0.0.1", "--no-dashboard"],
                env=env, cwd=tmp_path, stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        with Client("tcp://127.0.0.1:18786", timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            monkeypatch.setenv("DOCCLASS_DASK_ADDRESS", "tcp://127.0.0.1:18786")
            monkeypatch.setenv("DOCCLASS_DATA_DIR", str(tmp_path / "data"))
            result = cli(
                "classify", str(batch_env.docs), str(batch_env.archive), "--out", str(tmp_path / "r.parquet")
            )
            assert result.exit_code == 0, result.output + "\n" + (logs / "worker.log").read_text()[-3000:]
            on_worker = client.run(lambda: (os.environ.get("OMP_THREAD_LIMIT"), "flows.batch" in sys.modules))
        assert list(on_worker.values()) == [
            ("1", True)
        ]  # the shards ran there, Tesseract limited to one thread
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["computed_shards"] == summary["shards"] >= 1
        rows = read_rows(tmp_path / "r.parquet")
        assert sorted(row["document"] for row in rows) == sorted(listed_names(batch_env))
        expected = batch_env.expected(1)
        assert all(
            row["label"] == expected[row["document"]] and row["model_version"] == "1.1" for row in rows
        )
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


# --------------------------------------------------------------------------------------------------- README


def readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"expected one bash block under '## {heading}'"
    return blocks[0]


@pytest.mark.slow
def test_the_readme_batch_example_runs(s3_env: Any, batch_env: World, harness: str, tmp_path: Path):
    """The README's batch example, run as written in a copy of the checkout's paths: the folder and zip are
    the test's documents, s3://archive/2025 a prefix on the moto server, the registry the test's."""
    block = readme_block("Batch classification")
    work = tmp_path / "work"
    (work / ".data").mkdir(parents=True)
    (work / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(batch_env.docs, work / ".data" / "example")
    shutil.copy(batch_env.archive, work / ".data" / "archive.zip")
    upload(s3_env, "archive", "2025", batch_env)
    env = {**os.environ, "PREFECT_API_URL": harness, "DOCCLASS_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    local = read_rows(work / ".data" / "results.jsonl")  # the folder and the zip, with the champion
    assert len(local) == len(listed_names(batch_env)) and {row["model_version"] for row in local} == {"1.1"}
    remote = read_rows(work / ".data" / "results.parquet")  # the S3 prefix, with the version asked for
    assert len(remote) == len(local) and {row["model_version"] for row in remote} == {"1.2"}
    assert (
        sum(row["error"] is not None for row in remote) == sum(row["error"] is not None for row in local) == 3
    )

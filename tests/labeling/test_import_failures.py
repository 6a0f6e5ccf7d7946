"""`docclass import` up to the Label Studio call: every input gets exactly one answer (imported, already in the
project, duplicate or rejected with a reason) and one malformed file never aborts the import. No Label Studio
runs: a recording stand-in takes the SDK calls."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from labeling.importer import ImportReport, import_documents, prepare_tasks
from pipelines.ingest import RawDocument, sha256_of
from tests.failure_cases import decode_failures, scanned_png, zip_of
from tests.params import ingest_limits
from tests.pipelines.conftest import text_pdf


class RecordingClient:
    """The part of the Label Studio SDK client the importer uses, recording imported tasks."""

    def __init__(self, existing: list[str]) -> None:
        self.imported: list[dict[str, Any]] = []
        existing_tasks = [SimpleNamespace(data={"sha256": sha}) for sha in existing]
        self.tasks = SimpleNamespace(list=lambda **_: iter(existing_tasks))
        self.import_storage = SimpleNamespace(
            local=SimpleNamespace(list=lambda **_: [], create=lambda **_: SimpleNamespace(id=7))
        )
        self.projects = SimpleNamespace(import_tasks=self._import_tasks)

    def _import_tasks(self, id: int, request: list[dict[str, Any]], return_task_ids: bool) -> Any:  # noqa: A002
        start = len(self.imported)
        self.imported.extend(request)
        return SimpleNamespace(task_ids=list(range(start + 1, start + 1 + len(request))))


def answers(report: ImportReport) -> dict[str, str]:
    """Input name -> its one answer (a second answer for the same name fails the test)."""
    out: dict[str, str] = {}
    entries = [
        *((name, "imported") for name, _ in report.imported),
        *((name, "already") for name in report.already_in_project),
        *((name, "duplicate") for name in report.duplicates),
        *((rejected.name, rejected.kind) for rejected in report.rejected),
    ]
    for name, answer in entries:
        assert name not in out, f"{name} answered twice: {out[name]} and {answer}"
        out[name] = answer
    return out


def test_import_answers_every_input_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    expected: dict[str, str] = {}
    for kind, (name, data) in decode_failures().items():
        (folder / name).write_bytes(data)
        expected[str(folder / name)] = kind
    good = text_pdf("A good document to label")
    (folder / "good.pdf").write_bytes(good)
    (folder / "copy.pdf").write_bytes(
        good
    )  # iterated first (sorted): the copy is kept, good.pdf is the duplicate
    (folder / "scan.png").write_bytes(scanned_png(640))
    known = text_pdf("Already labelled in the project")
    (folder / "known.pdf").write_bytes(known)
    blocked = text_pdf("Its page images cannot be written: a file is where their folder goes")
    (folder / "blocked.pdf").write_bytes(blocked)
    (folder / "mixed.zip").write_bytes(zip_of({"inner.pdf": text_pdf("zipped"), "../evil.pdf": good}))
    missing = tmp_path / "missing.pdf"
    files_root = tmp_path / "files"
    files_root.mkdir()
    (files_root / sha256_of(blocked)).write_text("not a folder")
    expected |= {
        str(folder / "copy.pdf"): "imported",
        str(folder / "good.pdf"): "duplicate",
        str(folder / "scan.png"): "imported",
        str(folder / "known.pdf"): "already",
        str(folder / "blocked.pdf"): "StorageError",
        f"{folder / 'mixed.zip'}/inner.pdf": "imported",
        f"{folder / 'mixed.zip'}/../evil.pdf": "UnsafeArchivePathError",
        str(missing): "IngestError",
    }
    client = RecordingClient(existing=[sha256_of(known)])
    report = import_documents(
        client,  # type: ignore[arg-type]
        project_id=1,
        paths=[folder, missing],
        files_root=files_root,
        originals_dir=tmp_path / "originals",
        limits=ingest_limits(),
        dpi=30,
    )
    assert answers(report) == expected
    assert [task["name"] for task in client.imported] == ["copy.pdf", "inner.pdf", "scan.png"]
    assert report.task_ids == [1, 2, 3]
    for task in client.imported:
        assert task["pages"] and all(url.startswith("/data/local-files/?d=files/") for url in task["pages"])
        assert len(list((tmp_path / "originals").glob(f"{task['sha256']}.*"))) == 1
    for rejected in report.rejected:
        assert "expected" in rejected.reason, rejected.reason
    assert "its page images cannot be written" in next(
        r.reason for r in report.rejected if r.kind == "StorageError"
    )


def test_prepare_tasks_goes_on_after_a_decoder_error(tmp_path: Path) -> None:
    """The per-document path alone: MuPDF's FzErrorFormat and Pillow's DecompressionBombError used to escape it."""
    failures = decode_failures()
    documents = [
        RawDocument(name, data, mime, sha256_of(data))
        for name, data, mime in [
            ("cycle.pdf", failures["CorruptDocumentError"][1], "application/pdf"),
            ("bomb.png", failures["ImageBombError"][1], "image/png"),
            ("good.pdf", text_pdf(), "application/pdf"),
        ]
    ]
    report = ImportReport()
    done: list[str] = []
    tasks = prepare_tasks(
        documents, set(), tmp_path / "files", tmp_path / "originals", ingest_limits(), 30, report, done.append
    )
    assert [task["name"] for task in tasks] == ["good.pdf"]
    assert [(r.name, r.kind) for r in report.rejected] == [
        ("cycle.pdf", "CorruptDocumentError"),
        ("bomb.png", "ImageBombError"),
    ]
    assert done == ["cycle.pdf", "bomb.png", "good.pdf"]

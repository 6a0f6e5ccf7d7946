"""Import documents into Label Studio: ingest, render page images into the local-files root, one task each."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipelines.ingest import (
    JPEG,
    PDF,
    PNG,
    TIFF,
    WEBP,
    IngestError,
    Limits,
    RawDocument,
    Rejected,
    StorageError,
    ingest_paths,
)
from pipelines.render import iter_pages, render_pages

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

__all__ = ["ImportReport", "import_documents", "original_path", "page_url", "prepare_tasks", "render_pages"]

logger = logging.getLogger(__name__)

EXTENSIONS = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg", TIFF: ".tif", WEBP: ".webp"}
STORAGE_TITLE = "docclass page images"
IMPORT_BATCH = 100


@dataclass
class ImportReport:
    """What `docclass import` did: every document in exactly one of imported, already in the project, duplicates
    and rejected."""

    imported: list[tuple[str, str]] = field(default_factory=list)  # (name, sha256)
    already_in_project: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # name -> name of the identical kept document
    rejected: list[Rejected] = field(default_factory=list)
    task_ids: list[int] = field(default_factory=list)


def original_path(originals_dir: Path, sha256: str, mime: str) -> Path:
    """Where the original bytes of a document are kept (the snapshot copies them from here)."""
    return originals_dir / f"{sha256}{EXTENSIONS[mime]}"


def page_url(image: Path, files_root: Path) -> str:
    """Label Studio URL serving ``image`` through a local-files storage (path under the document root)."""
    relative = image.resolve().relative_to(files_root.resolve().parent).as_posix()
    return f"/data/local-files/?d={quote(relative)}"


def write_pages(raw: RawDocument, files_root: Path, dpi: int, limits: Limits) -> list[str]:
    """Render a document's pages as PNG under ``files_root/<sha256>/`` (once) and return their URLs.

    Raises:
        IngestError: the document cannot be rendered (see :func:`pipelines.render.iter_pages`).
        StorageError: the page images cannot be written.
    """
    folder = files_root / raw.sha256
    done = folder / ".complete"
    try:
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            for number, image in enumerate(iter_pages(raw, dpi, limits), start=1):
                image.save(folder / f"page-{number:04d}.png", optimize=False)
            done.touch()
        return [page_url(path, files_root) for path in sorted(folder.glob("page-*.png"))]
    except OSError as error:
        raise StorageError(
            f"{raw.name}: its page images cannot be written to {folder}: {error.strerror or error}: "
            "expected a writable folder for the page images Label Studio serves"
        ) from error


def keep_original(raw: RawDocument, originals_dir: Path) -> None:
    """Keep the document's bytes under ``originals_dir`` (once), for the dataset snapshot.

    Raises:
        StorageError: the file cannot be written.
    """
    keep = original_path(originals_dir, raw.sha256, raw.mime)
    try:
        if not keep.exists():
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(raw.data)
    except OSError as error:
        raise StorageError(
            f"{raw.name}: its original cannot be kept at {keep}: {error.strerror or error}: "
            "expected a writable originals folder"
        ) from error


def prepare_tasks(
    documents: Iterable[RawDocument],
    known: set[str],
    files_root: Path,
    originals_dir: Path,
    limits: Limits,
    dpi: int,
    report: ImportReport,
    on_document: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Everything of an import short of Label Studio: page images rendered, originals kept, one task per document.

    A document already in the project (sha256 in ``known``) is noted in ``report.already_in_project``; one that
    cannot be rendered or stored goes to ``report.rejected`` with its reason, and the others go on.

    Returns:
        The task data to import, in order; ``report.imported`` lists the same documents.
    """
    tasks: list[dict[str, Any]] = []
    for raw in documents:
        try:
            if raw.sha256 in known:
                report.already_in_project.append(raw.name)
                continue
            try:
                pages = write_pages(raw, files_root, dpi, limits)
                keep_original(raw, originals_dir)
            except IngestError as error:
                report.rejected.append(Rejected(raw.name, error))
                continue
            tasks.append({"pages": pages, "sha256": raw.sha256, "name": Path(raw.name).name})
            report.imported.append((raw.name, raw.sha256))
            known.add(raw.sha256)
        finally:
            if on_document is not None:
                on_document(raw.name)
    return tasks


def existing_sha256(client: LabelStudio, project_id: int) -> set[str]:
    """sha256 of every document already in the project."""
    found: set[str] = set()
    listed: Iterable[Any] = client.tasks.list(project=project_id, fields="task_only", page_size=500)
    for task in listed:
        sha = (task.data or {}).get("sha256")
        if sha:
            found.add(str(sha))
    return found


def ensure_local_storage(client: LabelStudio, project_id: int, files_root: Path) -> int:
    """The project's local-files import storage for ``files_root``, created when missing."""
    path = str(files_root.resolve())
    for storage in client.import_storage.local.list(project=project_id):
        if storage.path and str(Path(storage.path).resolve()) == path:
            return storage.id
    storage = client.import_storage.local.create(
        project=project_id, path=path, title=STORAGE_TITLE, use_blob_urls=False, regex_filter=r"^$"
    )
    logger.info("created local-files storage %s for %s", storage.id, path)
    return storage.id


def import_documents(
    client: LabelStudio,
    project_id: int,
    paths: Iterable[Path],
    files_root: Path,
    originals_dir: Path,
    limits: Limits,
    dpi: int,
    on_document: Callable[[str], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import files, folders and zip archives as one task per document, never twice.

    Args:
        client: SDK client.
        project_id: target project.
        paths: files, folders and zips.
        files_root: local-files root (a strict subdirectory of Label Studio's document root).
        originals_dir: where original bytes are kept for the dataset snapshot.
        limits: ingestion limits.
        dpi: page image resolution.
        on_document: called with each document's name when it is done (progress).
        on_total: called once with the number of documents to process.

    Returns:
        The report: imported, already in the project, duplicates within the batch, rejected with reasons.
    """
    ingested = ingest_paths(paths, limits)
    report = ImportReport(duplicates=dict(ingested.duplicates), rejected=list(ingested.rejected))
    files_root.mkdir(parents=True, exist_ok=True)
    originals_dir.mkdir(parents=True, exist_ok=True)
    ensure_local_storage(client, project_id, files_root)
    known = existing_sha256(client, project_id)
    if on_total is not None:
        on_total(len(ingested.documents))
    tasks = prepare_tasks(
        ingested.documents, known, files_root, originals_dir, limits, dpi, report, on_document=on_document
    )
    for start in range(0, len(tasks), IMPORT_BATCH):
        # the SDK types the request as its pydantic models, but sends plain task dicts as they are
        batch: Any = tasks[start : start + IMPORT_BATCH]
        response: Any = client.projects.import_tasks(id=project_id, request=batch, return_task_ids=True)
        report.task_ids.extend(response.task_ids or [])
    return report

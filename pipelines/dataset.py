"""Labelled datasets on disk: one folder per class, or documents plus labels.csv.

Also the extracted form of a dataset that the DVC ``extract`` stage writes and ``train`` / ``evaluate`` read.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipelines.document import Document
from pipelines.extract import ExtractConfig, ExtractionCache, extract_documents
from pipelines.ingest import (
    IngestError,
    Limits,
    RawDocument,
    Rejected,
    expand,
    iter_files,
    read_input,
)

LABELS_CSV = "labels.csv"
EXTRACTED_MARKER = "extracted.json"


class DatasetError(ValueError):
    """A dataset directory that does not have one of the two supported layouts."""


@dataclass(frozen=True)
class LabeledFile:
    path: Path
    label: str


@dataclass
class LabeledDocuments:
    """Extracted documents with their labels, and what could not be used."""

    documents: list[Document] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # duplicate name -> kept name
    conflicts: list[str] = field(default_factory=list)  # messages for same document, different labels

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))


def list_dataset(root: Path) -> list[LabeledFile]:
    """List the labelled files of a dataset directory.

    ``root/labels.csv`` (columns ``file`` and ``label``, extra columns allowed, ``file`` relative to root) wins
    when present; otherwise every sub-folder is a class and every file below it a document of that class.

    Raises:
        DatasetError: no such directory, a malformed labels.csv, files listed but missing, or no documents.
    """
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a directory: expected a folder per class or labels.csv")
    csv_path = root / LABELS_CSV
    if csv_path.exists():
        return _from_labels_csv(root, csv_path)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [LabeledFile(path, folder.name) for folder in classes for path in iter_files([folder])]
    if not files:
        raise DatasetError(
            f"dataset {root} has no documents: expected one sub-folder per class with documents in it, "
            f"or a {LABELS_CSV} with columns file,label"
        )
    return files


def _from_labels_csv(root: Path, csv_path: Path) -> list[LabeledFile]:
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "file" not in fields or "label" not in fields:
            raise DatasetError(f"{csv_path} has columns {fields}: expected at least 'file' and 'label'")
        rows = list(reader)
    files: list[LabeledFile] = []
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        name, label = (row.get("file") or "").strip(), (row.get("label") or "").strip()
        if not name or not label:
            raise DatasetError(f"{csv_path}:{line}: empty file or label: expected both")
        relative = PurePosixPath(name.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts:
            raise DatasetError(f"{csv_path}:{line}: {name!r} must be a path inside {root}")
        path = root / relative
        if not path.is_file():
            missing.append(name)
            continue
        files.append(LabeledFile(path, label))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(f"{csv_path} lists {len(missing)} files that do not exist: {shown}")
    if not files:
        raise DatasetError(f"{csv_path} lists no documents")
    return files


def load_labeled_documents(
    root: Path,
    config: ExtractConfig,
    limits: Limits,
    cache: ExtractionCache | None = None,
    on_done: Callable[[RawDocument, Document | Rejected], None] | None = None,
) -> LabeledDocuments:
    """Ingest and extract a dataset directory (or load an already extracted one)."""
    if (root / EXTRACTED_MARKER).exists():
        return load_extracted(root)
    result = LabeledDocuments()
    raws: list[RawDocument] = []
    raw_labels: list[str] = []
    seen: dict[str, tuple[str, str]] = {}
    for item in list_dataset(root):
        try:
            data = read_input(item.path, limits)
        except IngestError as error:
            result.rejected.append(Rejected(str(item.path), error))
            continue
        for expanded in expand(data, str(item.path), limits):
            if isinstance(expanded, Rejected):
                result.rejected.append(expanded)
            elif expanded.sha256 in seen:
                kept_name, kept_label = seen[expanded.sha256]
                if kept_label != item.label:
                    result.conflicts.append(
                        f"{expanded.name} is labelled {item.label!r} but the identical {kept_name} is "
                        f"labelled {kept_label!r}: kept {kept_label!r}"
                    )
                result.duplicates[expanded.name] = kept_name
            else:
                seen[expanded.sha256] = (expanded.name, item.label)
                raws.append(expanded)
                raw_labels.append(item.label)
    extracted = extract_documents(raws, config, limits, cache=cache, on_done=on_done)
    for document, label in zip(extracted, raw_labels, strict=True):
        if isinstance(document, Rejected):
            result.rejected.append(document)
        else:
            result.documents.append(document)
            result.labels.append(label)
    return result


def save_extracted(dataset: LabeledDocuments, out_dir: Path, config: ExtractConfig) -> None:
    """Write an extracted dataset: documents as cache entries plus an index with labels and rejections."""
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ExtractionCache(out_dir / "documents")
    key = config.cache_key()
    for document in dataset.documents:
        store.put(document, key)
    index = {
        "cache_key": key,
        "documents": [
            {"sha256": doc.sha256, "name": doc.name, "mime": doc.mime, "label": label, "pages": doc.n_pages}
            for doc, label in zip(dataset.documents, dataset.labels, strict=True)
        ],
        "rejected": [{"name": r.name, "error": r.kind, "reason": r.reason} for r in dataset.rejected],
        "duplicates": dataset.duplicates,
        "conflicts": dataset.conflicts,
    }
    tmp = out_dir / f".{EXTRACTED_MARKER}.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, out_dir / EXTRACTED_MARKER)


def load_extracted(out_dir: Path) -> LabeledDocuments:
    """Read what :func:`save_extracted` wrote.

    Raises:
        DatasetError: the index or a document entry is missing.
    """
    try:
        index = json.loads((out_dir / EXTRACTED_MARKER).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(f"{out_dir} is not an extracted dataset: {error}") from error
    store = ExtractionCache(out_dir / "documents")
    result = LabeledDocuments(duplicates=index.get("duplicates", {}), conflicts=index.get("conflicts", []))
    for entry in index["documents"]:
        raw = RawDocument(name=entry["name"], data=b"", mime=entry["mime"], sha256=entry["sha256"])
        document = store.get(raw, index["cache_key"])
        if document is None:
            raise DatasetError(
                f"{out_dir}: extracted entry for {entry['name']} ({entry['sha256'][:12]}) is missing"
            )
        result.documents.append(document)
        result.labels.append(entry["label"])
    result.rejected = [Rejected(r["name"], IngestError(r["reason"])) for r in index.get("rejected", [])]
    return result

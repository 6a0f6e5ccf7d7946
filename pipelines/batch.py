"""Batch classification without the orchestration: documents listed with their sha256, shards, rows, outputs.

`docclass classify` (:mod:`flows.batch`) lists every document of its sources once (:func:`list_file`: a file is
one document, a zip archive one per member, read and checked by :mod:`pipelines.ingest`), groups the distinct
documents into shards by sha256 (:func:`shard_documents`), has each shard read back its documents
(:func:`read_document`, checked against the listed sha256) and classified through :mod:`pipelines.classify`, and
joins the shards' answers into one row per listed document (:func:`assemble_rows`), written as JSON lines, CSV or
Parquet (:func:`write_rows`).

Nothing here reads settings or talks to a server: files are read through the function the caller passes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.ingest import (
    ARCHIVE_READ_ERRORS,
    ZIP,
    CorruptDocumentError,
    FileTooLargeError,
    IngestError,
    Limits,
    RawDocument,
    Rejected,
    UnsafeArchivePathError,
    detect_type,
    expand,
    safe_member_name,
    sha256_of,
)

if TYPE_CHECKING:
    from pipelines.classify import Classified

__all__ = [
    "COLUMNS",
    "FORMATS",
    "SHARD_BOUNDS",
    "SHARD_SIZE",
    "BatchIncompleteError",
    "DocumentChangedError",
    "DocumentRef",
    "MemberNotFoundError",
    "Shard",
    "Unlisted",
    "assemble_rows",
    "check_shard_size",
    "error_result",
    "list_file",
    "make_shards",
    "output_format",
    "outcome_result",
    "read_document",
    "run_key",
    "shard_documents",
    "write_rows",
]

# Documents a shard holds at most. Prefect's per-task overhead (~150 ms) makes one task per document far too
# slow, and a shard is the unit that is redone after a failure: 50-200 keeps both small.
SHARD_SIZE = 100
SHARD_BOUNDS = (50, 200)

# One row per listed document, in this column order in every output format.
COLUMNS = (
    "document",
    "sha256",
    "label",
    "confidence",
    "needs_review",
    "scores",
    "model_version",
    "error",
    "error_type",
)
FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class DocumentChangedError(IngestError):
    """A document's bytes are not those listed at the start of the run (the file changed in between)."""


class MemberNotFoundError(IngestError):
    """A listed archive member is no longer in its archive."""


class BatchIncompleteError(RuntimeError):
    """The shards' answers do not cover every listed document exactly once."""


@dataclass(frozen=True)
class DocumentRef:
    """Where one listed document's bytes are, and what they hash to.

    Attributes:
        name: what the output shows: the path or URL as given, or ``<archive>/<member>`` for an archive member.
        sha256: of the document's bytes when it was listed; reading it again must give the same.
        file: where to read it from: an absolute local path or an ``s3://bucket/key`` URL.
        member: the top-level archive member that is, or holds, the document, as stored in the zip (None: the
            file itself is the document).
        member_name: that member's name as shown (``<archive>/<member>``); differs from ``name`` only for a
            document inside a nested archive.
    """

    name: str
    sha256: str
    file: str
    member: str | None = None
    member_name: str | None = None


@dataclass(frozen=True)
class Unlisted:
    """A listed file or archive member that is not a document docclass can read, with the reason."""

    name: str
    sha256: str | None  # of the file's bytes; None for an archive member that could not be read
    error: str
    error_type: str


@dataclass(frozen=True)
class Shard:
    """Distinct documents classified together in one task; ``key`` names its result (see :func:`make_shards`)."""

    index: int
    documents: tuple[DocumentRef, ...]
    key: str

    @property
    def size(self) -> int:
        return len(self.documents)


# --------------------------------------------------------------------------------------------------- listing


def _top_members(data: bytes, name: str) -> dict[str, list[str]]:
    """The top-level members of an archive by the name :func:`pipelines.ingest.expand` shows for them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        return {}  # expand() reports the archive itself as unreadable
    members: dict[str, list[str]] = {}
    for info in infos:
        try:
            display = f"{name}/{safe_member_name(info.filename)}"
        except UnsafeArchivePathError:
            continue  # expand() rejects it; nothing to read back
        members.setdefault(display, []).append(info.filename)
    return members


def list_file(name: str, file: str, data: bytes, limits: Limits) -> list[DocumentRef | Unlisted]:
    """The documents of one file: itself, or each member of a zip archive (nested archives included).

    Checks and expands ``data`` exactly as :func:`pipelines.ingest.expand` does (types, size limits, zip bombs,
    unsafe paths): whatever it rejects comes back as :class:`Unlisted`, never raised.

    Args:
        name: the name to show (the path or URL as given).
        file: where the bytes can be read again (absolute path or ``s3://`` URL).
        data: the file's bytes.
        limits: ingestion limits.

    Returns:
        In archive order, one entry per document or rejected file / member.
    """
    members = _top_members(data, name) if detect_type(data) == ZIP else {}
    taken: dict[str, int] = {}  # members shown under the same name are read back in archive order
    out: list[DocumentRef | Unlisted] = []
    for item in expand(data, name, limits):
        if isinstance(item, Rejected):
            digest = sha256_of(data) if item.name == name else None
            out.append(Unlisted(item.name, digest, item.reason, item.kind))
        elif item.name == name:
            out.append(DocumentRef(item.name, item.sha256, file))
        else:
            tops = [shown for shown in members if item.name == shown or item.name.startswith(shown + "/")]
            if not tops:
                raise RuntimeError(f"{item.name} is under no member of {name}: expand() and zipfile disagree")
            top = max(tops, key=len)
            index = 0
            if item.name == top:
                index = min(taken.get(top, 0), len(members[top]) - 1)
                taken[top] = index + 1
            out.append(DocumentRef(item.name, item.sha256, file, members[top][index], top))
    return out


def read_document(ref: DocumentRef, data: bytes, limits: Limits) -> bytes:
    """The bytes of a listed document, given the bytes of its file, checked against the listed sha256.

    Args:
        ref: the listed document.
        data: the bytes of ``ref.file`` as read now.
        limits: ingestion limits (an archive member is read up to ``max_file_bytes``).

    Raises:
        DocumentChangedError: the bytes are not those listed.
        MemberNotFoundError: the archive no longer holds the member.
        CorruptDocumentError: the archive or member cannot be read.
        FileTooLargeError: the member is larger than the limit.
    """
    if ref.member is None:
        found = data
    else:
        found = _read_member(ref, data, limits)
    digest = sha256_of(found)
    if digest != ref.sha256:
        raise DocumentChangedError(
            f"{ref.name} changed since it was listed: expected sha256 {ref.sha256}, found {digest}"
        )
    return found


def _read_member(ref: DocumentRef, data: bytes, limits: Limits) -> bytes:
    top = ref.member_name or ref.name
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                info = archive.getinfo(str(ref.member))
            except KeyError as error:
                raise MemberNotFoundError(
                    f"{ref.name}: expected member {ref.member!r} in {ref.file}, found none"
                ) from error
            if info.file_size > limits.max_file_bytes:
                raise FileTooLargeError(
                    f"{top} is {info.file_size} bytes: the limit is {limits.max_file_bytes} bytes per file"
                )
            with archive.open(info) as handle:
                # Headers can lie about sizes: never read more than the limit allows.
                content = handle.read(limits.max_file_bytes + 1)
    except ARCHIVE_READ_ERRORS as error:
        raise CorruptDocumentError(f"{top} cannot be read from its archive: {error}") from error
    if len(content) > limits.max_file_bytes:
        raise FileTooLargeError(f"{top} is larger than the limit of {limits.max_file_bytes} bytes per file")
    if ref.name == top:
        return content
    # A document inside a nested archive: expand that archive as the listing did.
    for item in expand(content, top, limits):
        if isinstance(item, RawDocument) and item.name == ref.name and item.sha256 == ref.sha256:
            return item.data
    raise MemberNotFoundError(f"{ref.name}: expected it inside {top}, found no such document there")


# -------------------------------------------------------------------------------------------------- shards


def check_shard_size(size: int, bounds: tuple[int, int] = SHARD_BOUNDS) -> int:
    """``size`` when it is within ``bounds`` (inclusive).

    Raises:
        ValueError: outside the bounds.
    """
    low, high = bounds
    if not low <= size <= high:
        raise ValueError(
            f"shard size {size} is out of range: expected {low} to {high} documents a shard (fewer makes "
            f"Prefect's per-task overhead dominate, more makes a retried shard costly)"
        )
    return size


def _cut_here(sha256: str, half: int) -> bool:
    return int(sha256[-8:], 16) % half == 0


def shard_documents(sha256s: Iterable[str], size: int) -> list[list[str]]:
    """Distinct sha256 digests in ascending order, cut into shards of at most ``size``.

    A shard ends at ``size`` digests, or from ``size // 2`` on at a digest whose last 32 bits are a multiple of
    ``size // 2`` (content-defined cuts): the same documents always give the same shards, and adding a few
    documents to a large set changes only the shards they fall into (and rarely a neighbour), so a rerun on a
    folder that grew reuses the other shards' saved results. Every shard but the last holds at least
    ``size // 2`` digests.

    Raises:
        ValueError: ``size`` is not positive.
    """
    if size < 1:
        raise ValueError(f"a shard holds at least 1 document: got a shard size of {size}")
    half = max(1, size // 2)
    shards: list[list[str]] = []
    current: list[str] = []
    for digest in sorted(set(sha256s)):
        current.append(digest)
        if len(current) >= size or (len(current) >= half and _cut_here(digest, half)):
            shards.append(current)
            current = []
    if current:
        shards.append(current)
    return shards


def run_key(model_version: str, model_digest: str, settings: Mapping[str, Any]) -> str:
    """What a shard's answers depend on besides its documents: the model (version and the digest of its files)
    and every setting that changes an answer (extraction, limits, review rule)."""
    payload = json.dumps(
        {"model_version": model_version, "model_digest": model_digest, "settings": settings},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def make_shards(documents: Iterable[DocumentRef], size: int, key: str) -> list[Shard]:
    """Shards of the distinct documents (the first listed reference of each sha256), by :func:`shard_documents`.

    A shard's ``key`` is the sha256 of ``key`` (see :func:`run_key`) and its sorted digests: the same documents
    classified the same way have the same key, whatever their names or the run.
    """
    first: dict[str, DocumentRef] = {}
    for ref in documents:
        first.setdefault(ref.sha256, ref)
    shards = []
    for index, digests in enumerate(shard_documents(first, size)):
        shard_key = hashlib.sha256(json.dumps([key, digests]).encode()).hexdigest()
        # Read in file order, so the members of one archive in a shard come from one read of it.
        refs = sorted((first[d] for d in digests), key=lambda r: (r.file, r.member or "", r.name))
        shards.append(Shard(index, tuple(refs), shard_key))
    return shards


# ---------------------------------------------------------------------------------------------------- rows


def outcome_result(outcome: Classified | Rejected, name: str) -> dict[str, Any]:
    """A shard's answer for one document read as ``name``: the prediction's fields, or the error."""
    if isinstance(outcome, Rejected):
        return error_result(outcome.error, name)
    prediction = outcome.prediction
    return {
        "label": prediction["label"],
        "confidence": prediction["confidence"],
        "needs_review": prediction["needs_review"],
        "scores": prediction["scores"],
        "error": None,
        "error_type": None,
        "read_as": name,
    }


def error_result(error: Exception, name: str) -> dict[str, Any]:
    """A shard's answer for a document read as ``name`` that could not be classified."""
    return {
        "label": None,
        "confidence": None,
        "needs_review": None,
        "scores": None,
        "error": str(error),
        "error_type": type(error).__name__,
        "read_as": name,
    }


def assemble_rows(
    listed: Sequence[DocumentRef | Unlisted], results: Mapping[str, Mapping[str, Any]], model_version: str
) -> list[dict[str, Any]]:
    """One row per listed entry, in listing order: the shard answer of its sha256, or its listing error.

    ``results`` maps a sha256 to its answer (answers of the same document are one: documents are deduplicated
    by sha256 before and after classification).

    Raises:
        BatchIncompleteError: a listed document has no answer, or an answer is for no listed document.
    """
    wanted = {entry.sha256 for entry in listed if isinstance(entry, DocumentRef)}
    missing = sorted(wanted - set(results))
    unexpected = sorted(set(results) - wanted)
    if missing or unexpected:
        raise BatchIncompleteError(
            f"the shards answered for {len(results)} documents: expected exactly the {len(wanted)} listed; "
            f"{len(missing)} listed without an answer (e.g. {missing[:3]}), {len(unexpected)} answers for "
            f"documents not listed (e.g. {unexpected[:3]})"
        )
    rows = []
    for entry in listed:
        row: dict[str, Any] = {"document": entry.name, "sha256": entry.sha256, "model_version": model_version}
        if isinstance(entry, DocumentRef):
            answer = dict(results[entry.sha256])
            read_as = answer.pop("read_as", entry.name)
            if answer.get("error") and read_as != entry.name:
                # the same bytes were read under another of their names: say it of this one
                answer["error"] = str(answer["error"]).replace(read_as, entry.name)
            row.update(answer)
        else:
            row.update(error=entry.error, error_type=entry.error_type)
        rows.append({column: row.get(column) for column in COLUMNS})
    return rows


# ------------------------------------------------------------------------------------------------- outputs


def output_format(path: Path | str) -> str:
    """``jsonl``, ``csv`` or ``parquet`` from the file name.

    Raises:
        ValueError: any other extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"unsupported output {str(path)!r}: expected a file ending in .jsonl, .csv or .parquet, "
            f"found {suffix or 'no extension'}"
        )
    return FORMATS[suffix]


def _write_jsonl(rows: Sequence[Mapping[str, Any]], handle: Any) -> None:
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_csv(rows: Sequence[Mapping[str, Any]], handle: Any) -> None:
    writer = csv.DictWriter(handle, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        # scores as a JSON object in one cell; an empty cell is a missing value
        writer.writerow({**row, "scores": json.dumps(row["scores"]) if row["scores"] is not None else None})


def _parquet_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    import pyarrow as pa

    schema = pa.schema(
        [
            ("document", pa.string()),
            ("sha256", pa.string()),
            ("label", pa.string()),
            ("confidence", pa.float64()),
            ("needs_review", pa.bool_()),
            ("scores", pa.map_(pa.string(), pa.float64())),
            ("model_version", pa.string()),
            ("error", pa.string()),
            ("error_type", pa.string()),
        ]
    )
    columns: dict[str, list[Any]] = {column: [row[column] for row in rows] for column in COLUMNS}
    columns["scores"] = [list(s.items()) if s is not None else None for s in columns["scores"]]
    return pa.table(columns, schema=schema)


def write_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Write the rows as JSON lines, CSV or Parquet (by extension), atomically: a crash leaves no half file.

    JSON lines and Parquet keep ``scores`` as an object / a map of class to probability; CSV holds it as JSON
    text in one cell.

    Raises:
        ValueError: an unsupported extension.
        OSError: the file cannot be written.
    """
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            os.close(fd)
            pq.write_table(_parquet_table(rows), tmp)
        else:
            with open(fd, "w", encoding="utf-8", newline="") as handle:
                (_write_jsonl if fmt == "jsonl" else _write_csv)(rows, handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""Turn uploaded bytes into raw documents: type detection from content, size limits, zip archives.

Every problem with one input becomes a typed :class:`IngestError` that says what was expected and what was
found. Batch helpers never raise for one bad document: they return it as :class:`Rejected` and go on.
"""

from __future__ import annotations

import hashlib
import io
import logging
import lzma
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.params import IngestParams, validate_section

logger = logging.getLogger(__name__)

ACCEPTED_TYPES = "PDF, PNG, JPEG, TIFF, WebP or ZIP"

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
WEBP = "image/webp"
ZIP = "application/zip"
IMAGE_TYPES = frozenset({PNG, JPEG, TIFF, WEBP})
DOCUMENT_TYPES = frozenset({PDF}) | IMAGE_TYPES

MB = 1024 * 1024


# What reading a damaged or unsupported archive member can raise (zipfile, zlib and lzma pass their errors on).
ARCHIVE_READ_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)


class IngestError(Exception):
    """A document that cannot be ingested; the message says what was expected and what was found."""


class EmptyFileError(IngestError):
    """Zero bytes."""


class FileTooLargeError(IngestError):
    """Larger than ``ingest.max_file_mb``."""


class UnsupportedTypeError(IngestError):
    """Content is none of the accepted types."""


class CorruptDocumentError(IngestError):
    """Truncated or damaged PDF, image or archive."""


class EncryptedDocumentError(IngestError):
    """Password-protected PDF or archive member."""


class TooManyPagesError(IngestError):
    """More pages than ``ingest.max_pages``."""


class ImageBombError(IngestError):
    """An image (or page) whose pixel count exceeds ``ingest.max_image_pixels``."""


class TextLayerTooLargeError(IngestError):
    """A PDF page whose text layer has more characters than can be read with bounded memory."""


class ArchiveError(IngestError):
    """A zip archive that cannot be expanded safely."""


class ZipBombError(ArchiveError):
    """Too many members, too much uncompressed data, a suspicious compression ratio or nesting."""


class UnsafeArchivePathError(ArchiveError):
    """A member name that would escape the archive (absolute path, ``..``, drive letter)."""


class EmptyArchiveError(ArchiveError):
    """A zip archive with no document in it (empty, or only folders and file-system metadata)."""


class StorageError(IngestError):
    """What was made of a document (its extraction, its page images) could not be written to disk."""


@dataclass(frozen=True)
class Limits:
    """Input limits in bytes and counts; the values are the ``ingest:`` section of params.yaml (no defaults
    here: build with :meth:`from_params`)."""

    max_file_bytes: int
    max_pages: int
    max_image_pixels: int
    zip_max_members: int
    zip_max_total_bytes: int
    zip_max_ratio: float
    zip_max_depth: int

    @classmethod
    def from_params(cls, ingest: Mapping[str, Any]) -> Limits:
        """Build limits from the ``ingest:`` params section.

        Raises:
            ParamsError: a key of the section is unknown, missing or mistyped.
        """
        section = validate_section(IngestParams, ingest, "ingest")
        return cls(
            max_file_bytes=int(section.max_file_mb * MB),
            max_pages=section.max_pages,
            max_image_pixels=section.max_image_pixels,
            zip_max_members=section.zip_max_members,
            zip_max_total_bytes=int(section.zip_max_total_mb * MB),
            zip_max_ratio=section.zip_max_ratio,
            zip_max_depth=section.zip_max_depth,
        )


@dataclass(frozen=True)
class RawDocument:
    """One document's bytes with its detected type and content key."""

    name: str
    data: bytes = field(repr=False)
    mime: str
    sha256: str


@dataclass(frozen=True)
class Rejected:
    """An input that could not be ingested, with the reason."""

    name: str
    error: IngestError

    @property
    def reason(self) -> str:
        return str(self.error)

    @property
    def kind(self) -> str:
        return type(self.error).__name__


@dataclass
class IngestResult:
    """Outcome of ingesting a batch: documents (unique by sha256), rejections, and collapsed duplicates."""

    documents: list[RawDocument] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # duplicate name -> name of the kept document


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"II+\x00", TIFF),  # BigTIFF
    (b"MM\x00+", TIFF),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),  # empty archive
)

# Types we recognise only to name them in the error message.
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage (legacy Microsoft Office)"),
    (b"{\\rtf", "application/rtf"),
    (b"%!PS", "application/postscript"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def detect_type(data: bytes) -> str | None:
    """Return the accepted MIME type of ``data`` judged from its content, or None if it is not accepted."""
    head = data[:1024]
    for signature, mime in _SIGNATURES:
        if head.startswith(signature):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    # PDF readers accept the header anywhere in the first KiB (some generators prepend junk); checked
    # last so that an archive storing a PDF uncompressed is still an archive.
    if b"%PDF-" in head:
        return PDF
    return None


def describe_type(data: bytes) -> str:
    """Best-effort name of an unsupported content type, for error messages."""
    head = data[:64]
    for signature, mime in _KNOWN_UNSUPPORTED:
        if head.startswith(signature):
            return mime
    stripped = head.lstrip()
    if stripped[:1] in (b"<",) and b"html" in data[:512].lower():
        return "text/html"
    if stripped[:1] in (b"{", b"["):
        return "application/json"
    try:
        sample = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    # NUL decodes as UTF-8 but never occurs in text: NUL-filled or NUL-padded bytes are binary.
    return "application/octet-stream" if "\x00" in sample else "text/plain"


def check_bytes(data: bytes, name: str, limits: Limits) -> str:
    """Validate size and type of one input; return its MIME type.

    Raises:
        EmptyFileError, FileTooLargeError, UnsupportedTypeError.
    """
    if not data:
        raise EmptyFileError(f"{name} is empty (0 bytes): expected a {ACCEPTED_TYPES} file")
    if len(data) > limits.max_file_bytes:
        raise FileTooLargeError(
            f"{name} is {len(data) / MB:.1f} MB: the limit is {limits.max_file_bytes / MB:.0f} MB per file"
        )
    mime = detect_type(data)
    if mime is None:
        raise UnsupportedTypeError(
            f"unsupported file type '{describe_type(data)}' for {name}: expected {ACCEPTED_TYPES}"
        )
    return mime


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_member_name(member: str) -> str:
    """Return a normalised relative member name, or raise if it would escape the archive.

    Raises:
        UnsafeArchivePathError: absolute paths, drive letters, ``..`` components or NUL bytes.
    """
    normalised = member.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if (
        "\x00" in member
        or normalised.startswith("/")
        or _DRIVE.match(normalised)
        or any(part == ".." for part in parts)
    ):
        raise UnsafeArchivePathError(
            f"unsafe path {member!r} in archive: expected a relative path inside the archive"
        )
    return "/".join(part for part in parts if part not in ("", "."))


def _is_metadata(member: str) -> bool:
    """Archive entries that are file-system metadata, never documents (macOS resource forks, .DS_Store)."""
    parts = member.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1] in (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass
class _Budget:
    """Uncompressed bytes still allowed for one top-level archive, shared with nested archives."""

    remaining: int


def expand(data: bytes, name: str, limits: Limits) -> Iterator[RawDocument | Rejected]:
    """Yield the documents in one input: itself, or each member of a zip archive (recursively).

    Never raises for bad input: every problem is yielded as :class:`Rejected`.
    """
    try:
        mime = check_bytes(data, name, limits)
    except IngestError as error:
        yield Rejected(name, error)
        return
    if mime != ZIP:
        yield RawDocument(name=name, data=data, mime=mime, sha256=sha256_of(data))
        return
    try:
        yield from _expand_zip(data, name, limits, depth=0, budget=_Budget(limits.zip_max_total_bytes))
    except IngestError as error:
        yield Rejected(name, error)


def _expand_zip(
    data: bytes, name: str, limits: Limits, depth: int, budget: _Budget
) -> Iterator[RawDocument | Rejected]:
    if depth > limits.zip_max_depth:
        raise ZipBombError(
            f"{name}: archives nested {depth} deep: expected at most {limits.zip_max_depth} levels of nesting"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        raise CorruptDocumentError(
            f"{name} is not a readable zip archive: {error}: expected an undamaged zip archive"
        ) from error
    if len(infos) > limits.zip_max_members:
        raise ZipBombError(
            f"{name} has {len(infos)} members: the limit is {limits.zip_max_members} per archive"
        )
    declared = sum(info.file_size for info in infos)
    if declared > budget.remaining:
        raise ZipBombError(
            f"{name} expands to {declared / MB:.1f} MB: the limit is "
            f"{limits.zip_max_total_bytes / MB:.0f} MB uncompressed per upload"
        )
    found = 0  # items yielded for this archive: an archive without any still gets one answer
    for info in infos:
        if _is_metadata(info.filename):
            continue
        found += 1
        display = f"{name}/{info.filename}"
        try:
            member_name = safe_member_name(info.filename)
            display = f"{name}/{member_name}"
            member = _read_member(archive, info, display, limits, budget)
        except IngestError as error:
            yield Rejected(display, error)
            continue
        try:
            mime = check_bytes(member, display, limits)
        except IngestError as error:
            yield Rejected(display, error)
            continue
        if mime == ZIP:
            try:
                yield from _expand_zip(member, display, limits, depth + 1, budget)
            except IngestError as error:
                yield Rejected(display, error)
        else:
            yield RawDocument(name=display, data=member, mime=mime, sha256=sha256_of(member))
    if not found:
        skipped = len(infos)
        raise EmptyArchiveError(
            f"{name} is a zip archive that holds no documents"
            + (f" (only {skipped} file-system metadata entries)" if skipped else "")
            + ": expected at least one PDF, PNG, JPEG, TIFF or WebP file in it"
        )


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    """A member stored as a symbolic link (Unix file type in the high bits of its external attributes)."""
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, display: str, limits: Limits, budget: _Budget
) -> bytes:
    if _is_symlink(info):
        # Its content is a link target ("/etc/passwd"), never a document; unzipping it elsewhere would follow it.
        raise UnsafeArchivePathError(
            f"{display} is a symbolic link in the archive: expected regular files (PDF, PNG, JPEG, TIFF or WebP)"
        )
    if info.flag_bits & 0x1:
        raise EncryptedDocumentError(
            f"{display} is password-protected: expected an unencrypted archive member"
        )
    if info.compress_size and info.file_size / info.compress_size > limits.zip_max_ratio:
        raise ZipBombError(
            f"{display} compresses {info.file_size / info.compress_size:.0f}:1: the limit is "
            f"{limits.zip_max_ratio:.0f}:1 (zip bomb protection)"
        )
    # Headers can lie about sizes: read at most what they declare, plus one byte to notice the lie.
    allowed = min(info.file_size, budget.remaining)
    try:
        with archive.open(info) as handle:
            content = handle.read(allowed + 1)
    except ARCHIVE_READ_ERRORS as error:
        raise CorruptDocumentError(
            f"{display} cannot be decompressed: {error}: expected an undamaged archive member"
        ) from error
    if len(content) > allowed:
        raise ZipBombError(
            f"{display} decompresses to more than its declared {info.file_size} bytes or the remaining "
            f"upload budget: rejected as a zip bomb"
        )
    budget.remaining -= len(content)
    return content


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield files from paths, walking folders recursively in sorted order, skipping hidden entries."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


def read_input(path: Path, limits: Limits) -> bytes:
    """Read one file, refusing oversize files before reading them.

    Raises:
        IngestError: missing, unreadable, empty or too large.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise IngestError(f"{path} does not exist: expected a file or folder") from error
    except OSError as error:
        raise IngestError(f"{path} cannot be read: {error.strerror}") from error
    if size > limits.max_file_bytes:
        raise FileTooLargeError(
            f"{path} is {size / MB:.1f} MB: the limit is {limits.max_file_bytes / MB:.0f} MB per file"
        )
    try:
        return path.read_bytes()
    except OSError as error:
        raise IngestError(f"{path} cannot be read: {error.strerror}") from error


def ingest_paths(paths: Iterable[Path], limits: Limits) -> IngestResult:
    """Ingest files, folders and zip archives; duplicates (same sha256) collapse onto the first seen."""
    result = IngestResult()
    for path in iter_files(paths):
        try:
            data = read_input(path, limits)
        except IngestError as error:
            result.rejected.append(Rejected(str(path), error))
            continue
        add_items(result, expand(data, str(path), limits))
    return result


def add_items(result: IngestResult, items: Iterable[RawDocument | Rejected]) -> None:
    """Add expanded items to ``result``, collapsing duplicates by sha256."""
    seen = {doc.sha256: doc.name for doc in result.documents}
    for item in items:
        if isinstance(item, Rejected):
            result.rejected.append(item)
        elif item.sha256 in seen:
            result.duplicates[item.name] = seen[item.sha256]
        else:
            seen[item.sha256] = item.name
            result.documents.append(item)

"""Where the documents of a batch come from: local files and folders, zip archives, and ``s3://bucket/prefix``.

A source is listed once, in the flow (:func:`list_sources`), and every document found is then read again by
location wherever its shard runs (:func:`read_file`): an absolute path (the workers must see the same file
system) or an S3 URL (read from the endpoint of the ``s3_endpoint_url`` setting with the ``s3_access_key_id`` /
``s3_secret_access_key`` settings, else the standard AWS variables or files). Both raise :class:`SourceError` (an ``IngestError``) for a location that cannot
be read, so a shard reports that document and goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.batch import DocumentRef, Unlisted, list_file
from pipelines.ingest import MB, FileTooLargeError, IngestError, Limits, iter_files, read_input

if TYPE_CHECKING:
    from flows.settings import Settings

S3_SCHEME = "s3://"


class SourceError(IngestError):
    """A source or one of its files cannot be listed or read."""


@dataclass(frozen=True)
class S3Config:
    """How to reach S3: the endpoint (None: AWS) and the credentials (None: the AWS variables or files)."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Config:
        """The ``s3_*`` settings (boto3 reads neither `.env` nor DOCCLASS_ variables: they are passed here)."""
        from flows.settings import reveal

        return cls(settings.s3_endpoint_url, settings.s3_access_key_id, reveal(settings.s3_secret_access_key))


def parse_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``(bucket, prefix)``.

    Raises:
        SourceError: not an ``s3://bucket[/prefix]`` URL.
    """
    rest = url[len(S3_SCHEME) :] if url.startswith(S3_SCHEME) else ""
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"source {url!r} is not an S3 location: expected s3://bucket or s3://bucket/prefix")
    return bucket, prefix


def check_sources(sources: Sequence[str]) -> None:
    """Fail before any work on a local source that does not exist or an S3 URL without a bucket.

    Raises:
        SourceError: naming the first bad source.
    """
    if not sources:
        raise SourceError("no source given: expected one or more folders, zip files or s3://bucket/prefix")
    for source in sources:
        if source.startswith(S3_SCHEME):
            parse_s3(source)
        elif not Path(source).exists():
            raise SourceError(
                f"source {source!r} does not exist: expected a folder, a file (PDF, image or zip) or "
                f"s3://bucket/prefix"
            )


# ------------------------------------------------------------------------------------------------------ S3

_clients: dict[S3Config, Any] = {}
_clients_lock = threading.Lock()


def s3_client(config: S3Config) -> Any:
    """One boto3 S3 client per configuration and process (clients are thread-safe; creating one is slow)."""
    with _clients_lock:
        if config not in _clients:
            import boto3

            _clients[config] = boto3.session.Session().client(
                "s3",
                endpoint_url=config.endpoint_url,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
            )
        return _clients[config]


def _s3_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _is_hidden(key: str, prefix: str) -> bool:
    relative = key[len(prefix) :].lstrip("/")
    return any(part.startswith(".") for part in relative.split("/"))


def list_s3(url: str, config: S3Config) -> Iterator[tuple[str, int]]:
    """``(s3://bucket/key, size)`` of every object under the prefix, in key order, hidden ones skipped.

    Raises:
        SourceError: the bucket cannot be listed (missing, no access, no answer).
    """
    bucket, prefix = parse_s3(url)
    paginator = s3_client(config).get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith("/") and not _is_hidden(key, prefix):
                    yield f"{S3_SCHEME}{bucket}/{key}", int(item["Size"])
    except _s3_errors() as error:
        raise SourceError(f"cannot list {url} (endpoint {config.endpoint_url or 'AWS'}): {error}") from error


def read_s3(url: str, config: S3Config, limits: Limits) -> bytes:
    """The bytes of one object, refusing one larger than ``ingest.max_file_mb``.

    Raises:
        SourceError: the object cannot be read.
        FileTooLargeError: it is larger than the limit.
    """
    bucket, key = parse_s3(url)
    try:
        body = s3_client(config).get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read(limits.max_file_bytes + 1)
        body.close()
    except _s3_errors() as error:
        raise SourceError(f"cannot read {url}: {error}") from error
    if len(data) > limits.max_file_bytes:
        raise FileTooLargeError(
            f"{url} is larger than the limit of {limits.max_file_bytes / MB:.0f} MB per file"
        )
    return data


# -------------------------------------------------------------------------------------------------- either


def read_file(location: str, config: S3Config, limits: Limits) -> bytes:
    """The bytes at ``DocumentRef.file``: an absolute path or an S3 URL.

    Raises:
        IngestError: it cannot be read, or it is larger than the limit.
    """
    if location.startswith(S3_SCHEME):
        return read_s3(location, config, limits)
    return read_input(Path(location), limits)


def _files(source: str, config: S3Config) -> Iterator[tuple[str, str]]:
    """``(name to show, location)`` of every file of a source; a folder is walked like `docclass predict` does."""
    if source.startswith(S3_SCHEME):
        found = False
        for url, _ in list_s3(source, config):
            found = True
            yield url, url
        if not found:
            raise SourceError(f"no objects under {source}: expected documents or zip archives there")
        return
    path = Path(source)
    found = False
    for file in iter_files([path]):
        found = True
        yield str(file), str(file.resolve())
    if not found:
        raise SourceError(f"no files in {source}: expected documents or zip archives there")


def list_sources(sources: Sequence[str], config: S3Config, limits: Limits) -> list[DocumentRef | Unlisted]:
    """Every document of the sources, in order, each listed once with the sha256 of its bytes.

    A file given twice (directly or through two sources) is listed once. A file that cannot be read, is not a
    document, or is an unreadable archive is listed as :class:`Unlisted` with the reason.

    Raises:
        SourceError: a source does not exist, is empty, or cannot be listed.
    """
    check_sources(sources)
    listed: list[DocumentRef | Unlisted] = []
    seen: set[str] = set()
    for source in sources:
        for name, location in _files(source, config):
            if location in seen:
                continue
            seen.add(location)
            try:
                data = read_file(location, config, limits)
            except IngestError as error:
                listed.append(Unlisted(name, None, str(error), type(error).__name__))
                continue
            listed.extend(list_file(name, location, data, limits))
    return listed

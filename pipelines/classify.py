"""One path for a document: read -> expand -> extract -> predict, per document a result or a :class:`Rejected`.

Every way into docclass classifies through here: `docclass predict` (:func:`classify_inputs`), the service
(:func:`extract_inputs` in a worker thread, then :func:`classify` in batches of concurrent requests),
pre-annotation (:func:`classify_inputs`) and `docclass split` (:func:`extract_inputs`, then the splitter).

The exception policy is that of :func:`pipelines.extract.extract_documents`: whatever goes wrong with one document
is a typed :class:`~pipelines.ingest.IngestError` and the document comes back as a :class:`Rejected` (``kind``
names the error class, ``reason`` says what was expected and what was found); the other documents go on.
The kinds: from reading and expanding (:mod:`pipelines.ingest`: ``EmptyFileError``, ``FileTooLargeError``,
``UnsupportedTypeError``, ``ZipBombError``, ``UnsafeArchivePathError``, ``EmptyArchiveError``...), from decoding
(:mod:`pipelines.render`: ``CorruptDocumentError``, ``EncryptedDocumentError``, ``TooManyPagesError``,
``ImageBombError``), from OCR (:mod:`pipelines.ocr`: ``OcrFailedError``, ``OcrUnavailableError``,
``OcrTimeoutError``). An extraction cache that cannot be written costs only the saving (a logged warning), never
the document.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from pipelines.document import Document
from pipelines.extract import ExtractConfig, ExtractionCache, extract_documents
from pipelines.ingest import IngestError, Limits, RawDocument, Rejected, expand, read_input
from pipelines.predict import ReviewRule, predict_documents

__all__ = [
    "Classified",
    "Input",
    "Rejected",
    "Upload",
    "classify",
    "classify_inputs",
    "expand_input",
    "extract_inputs",
]

# Inputs read and extracted together by :func:`classify_inputs`: their OCR pages share the pool, and no more
# than this many files are in memory at once.
CHUNK = 8


@dataclass(frozen=True)
class Upload:
    """An input that arrived as bytes (an HTTP upload): ``name`` is only used to show it, never as a path."""

    name: str
    data: bytes = field(repr=False)


# A file on disk (read with the size limit checked first) or bytes already in memory.
Input = Path | Upload


@dataclass(frozen=True)
class Classified:
    """A classified document: the extraction and the prediction of :func:`pipelines.predict.predict_documents`."""

    document: Document
    prediction: dict[str, Any]

    @property
    def name(self) -> str:
        return self.document.name


def expand_input(item: Input, limits: Limits) -> list[RawDocument | Rejected]:
    """Read one input and expand it: the document itself, or each member of a zip archive.

    Never raises for bad input: an unreadable file, a bad type, an unsafe or empty archive come back as
    :class:`Rejected`, so every input gives at least one item.
    """
    if isinstance(item, Path):
        name = str(item)
        try:
            data = read_input(item, limits)
        except IngestError as error:
            return [Rejected(name, error)]
    else:
        name, data = item.name, item.data
    return list(expand(data, name, limits))


def extract_inputs(
    items: Sequence[Input],
    config: ExtractConfig,
    limits: Limits,
    cache: ExtractionCache | None = None,
    cancel: threading.Event | None = None,
) -> list[list[Document | Rejected]]:
    """Read, expand and extract inputs; all their documents are extracted together (OCR in parallel).

    Args:
        items: files or uploads.
        config: extraction settings.
        limits: ingestion limits.
        cache: optional extraction cache.
        cancel: set it to give up (see :func:`pipelines.extract.extract_documents`).

    Returns:
        Per input, in order, its documents in archive order: each a :class:`Document` or a :class:`Rejected`.
        Never empty: an archive without documents gives one :class:`Rejected`.

    Raises:
        pipelines.extract.ExtractionCancelledError: ``cancel`` was set.
    """
    expanded = [expand_input(item, limits) for item in items]
    raws = [entry for group in expanded for entry in group if isinstance(entry, RawDocument)]
    extracted = iter(extract_documents(raws, config, limits, cache=cache, cancel=cancel) if raws else [])
    return [
        [next(extracted) if isinstance(entry, RawDocument) else entry for entry in group]
        for group in expanded
    ]


def classify(model: Any, documents: Sequence[Document], review: ReviewRule | float) -> list[Classified]:
    """Classify extracted documents in one batched model call (see :func:`pipelines.predict.predict_documents`;
    ``review`` is the review rule of params ``predict:``, or a fixed threshold)."""
    predictions = predict_documents(model, documents, review)
    return [
        Classified(document, prediction) for document, prediction in zip(documents, predictions, strict=True)
    ]


def classify_inputs(
    model: Any,
    items: Iterable[Input],
    config: ExtractConfig,
    limits: Limits,
    review: ReviewRule | float,
    cache: ExtractionCache | None = None,
    chunk: int = CHUNK,
) -> Iterator[list[Classified | Rejected]]:
    """Read, expand, extract and classify inputs: per input, in order, one entry per document it holds.

    Inputs go ``chunk`` at a time, so answers stream while memory stays bounded; each chunk is extracted
    together and classified in one model call.

    Yields:
        Per input, its documents in archive order, each :class:`Classified` or :class:`Rejected`; never empty.
    """
    iterator = iter(items)
    while batch := list(islice(iterator, max(1, chunk))):
        groups = extract_inputs(batch, config, limits, cache=cache)
        documents = [entry for group in groups for entry in group if isinstance(entry, Document)]
        classified = iter(classify(model, documents, review))
        for group in groups:
            yield [next(classified) if isinstance(entry, Document) else entry for entry in group]

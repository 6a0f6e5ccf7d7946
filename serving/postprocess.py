"""Pure pieces of the classification service: its settings from params.yaml, the answer JSON, page segments,
error bodies and messages. No BentoML, no registry, no I/O: every function here is tested alone.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.params import ServeParams, validate_section
from pipelines.predict import ReviewRule

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    """Service settings: the ``serve:`` section of params.yaml plus the review rule of ``predict:``
    (``target_accuracy``, ``review_floor`` and the fallback ``review_threshold``, see
    :class:`pipelines.predict.ReviewRule`)."""

    # No defaults: the values are params.yaml's serve: and predict: sections (from_params).
    poll_seconds: float  # how often each worker reads the `champion` alias
    cache_versions: int  # pinned versions kept loaded per worker (LRU), besides the champion
    max_upload_mb: float  # one request body
    max_pages: int  # pages per upload, all documents together
    request_timeout_s: float  # a request still working after this answers 504
    max_batch_size: int  # documents per batched inference call
    max_latency_ms: float  # longest wait for more requests to join a batch
    min_labels: int | None  # labels the first round needs; only used in the "no model yet" message
    max_concurrent_requests: int  # /classify requests in progress per worker; more are answered 429
    max_queued_pages: int  # OCR pages waiting in the worker's pool; at this backlog new requests get 503
    retry_after_s: int  # Retry-After of the 429 / 503 overload answers
    review_threshold: float
    target_accuracy: float
    review_floor: float

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ServeConfig:
        """Build from a loaded params.yaml (its ``serve:`` and ``predict:`` sections).

        Raises:
            ParamsError: a key of either section is unknown, missing, mistyped or out of range.
        """
        serve = validate_section(ServeParams, params.get("serve"), "serve")
        review = ReviewRule.from_params(params.get("predict"))
        return cls(
            **serve.model_dump(),
            review_threshold=review.fallback,
            target_accuracy=review.target_accuracy,
            review_floor=review.floor,
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def review(self) -> ReviewRule:
        """The rule that sets ``needs_review`` (each model's learned threshold, see ReviewRule)."""
        return ReviewRule(self.target_accuracy, self.review_floor, self.review_threshold)


def thumbnail_data_uri(image: Any) -> str:
    """A ``data:image/png;base64,...`` URI of a uint8 grayscale page thumbnail (numpy array)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def document_answer(
    prediction: Mapping[str, Any],
    name: str,
    page_info: Sequence[Mapping[str, Any]],
    thumbnails: Sequence[str] | None = None,
    segments: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One document of the answer: the prediction of ``pipelines.predict.predict_documents`` plus name, the text
    source of each page, optional thumbnails and, with ``split=auto``, the segments.

    ``needs_review``, ``review_score``, ``review_threshold`` and ``top`` are the prediction's: the threshold is the served model's
    own (learned from its out-of-fold answers at ``predict.target_accuracy``, see ``pipelines.predict``).

    Args:
        prediction: one entry of ``predict_documents``.
        name: the document's display name (upload name, or ``archive.zip/member``).
        page_info: per page ``{"source": "text"|"ocr"|"none", "rotation": int}``, same order as the pages.
        thumbnails: per page data URI, or None.
        segments: the documents found in this one by ``pipelines.split`` (``split=auto``), or None.
    """
    pages = []
    for k, page in enumerate(prediction["pages"]):
        entry = {**page, **(page_info[k] if k < len(page_info) else {})}
        if thumbnails is not None and k < len(thumbnails):
            entry["thumbnail"] = thumbnails[k]
        pages.append(entry)
    answer = {
        "name": name,
        "sha256": prediction["sha256"],
        "label": prediction["label"],
        "confidence": prediction["confidence"],
        "scores": prediction["scores"],
        "top": [dict(entry) for entry in prediction["top"]],
        "needs_review": bool(prediction["needs_review"]),
        "review_score": prediction["review_score"],
        "review_threshold": prediction["review_threshold"],
        "n_pages": prediction["n_pages"],
        "pages": pages,
    }
    if segments is not None:
        answer["segments"] = [dict(segment) for segment in segments]
    return answer


def split_by_counts(items: Sequence[Any], counts: Sequence[int]) -> list[list[Any]]:
    """Cut a flat batch result back into the requests it came from (``counts`` items each, in order).

    Raises:
        ValueError: the counts do not add up to the number of items.
    """
    if sum(counts) != len(items):
        raise ValueError(
            f"batch of {len(items)} results cannot be split into {list(counts)} (sum {sum(counts)})"
        )
    out, start = [], 0
    for count in counts:
        out.append(list(items[start : start + count]))
        start += count
    return out


def rejection_status(kinds: Sequence[str]) -> int:
    """HTTP status when no document of an upload could be read: 413 for size, 415 for type, 503 when the server
    cannot run OCR (Tesseract missing: not the client's fault), else 422."""
    if kinds and all(kind in ("FileTooLargeError", "TooManyPagesError", "ZipBombError") for kind in kinds):
        return 413
    if kinds and all(kind == "UnsupportedTypeError" for kind in kinds):
        return 415
    if kinds and all(kind == "OcrUnavailableError" for kind in kinds):
        return 503
    return 422


# BentoML keeps an upload's file name as the suffix of its temporary file ("tmp" + 8 characters + name) and file
# systems allow 255 bytes per name: a longer upload name made that file impossible to create (a 500 for the client).
MAX_UPLOAD_NAME_BYTES = 200
# A quoted value or, as python-multipart also accepts, a bare one up to the next ";".
_FILENAME = re.compile(rb'(?<![\w*-])(filename=)("(?:[^"\\\r\n]|\\.)*"|[^;\r\n]*)', re.IGNORECASE)
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type, or None for any other type."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    found = _BOUNDARY.search(content_type)
    return found.group(1).strip().encode("latin-1") if found else None


def short_name(name: bytes, max_bytes: int) -> bytes:
    """``name`` (UTF-8 bytes of a quoted header value) cut to ``max_bytes``, keeping its extension when it has a
    short one and never cutting a character or an escape in two."""
    if len(name) <= max_bytes:
        return name
    text = name.decode("utf-8", errors="replace")
    stem, dot, extension = text.rpartition(".")
    if not dot or len(extension) > 16 or not stem:
        stem, dot, extension = text, "", ""
    while stem and len(f"{stem}{dot}{extension}".encode()) > max_bytes:
        stem = stem[:-1]
    stem = stem.rstrip("\\")  # a cut escape would swallow the closing quote
    return f"{stem}{dot}{extension}".encode()[:max_bytes]


def _short_value(value: bytes, max_bytes: int) -> bytes:
    if len(value) >= 2 and value.startswith(b'"') and value.endswith(b'"'):
        return b'"' + short_name(value[1:-1], max_bytes) + b'"'
    return short_name(value, max_bytes)


def shorten_upload_names(body: bytes, boundary: bytes, max_bytes: int = MAX_UPLOAD_NAME_BYTES) -> bytes:
    """A multipart body whose part headers' file names (``filename="..."`` or bare) are at most ``max_bytes`` long.

    Only the header block of each part (from its boundary line to the first blank line) is rewritten: file contents
    are untouched.
    """
    delimiter = b"--" + boundary + b"\r\n"
    parts: list[bytes] = []
    position = 0
    while (start := body.find(delimiter, position)) >= 0:
        head = start + len(delimiter)
        end = body.find(b"\r\n\r\n", head)
        if end < 0:
            break
        parts.append(body[position:head])
        parts.append(
            _FILENAME.sub(lambda found: found[1] + _short_value(found[2], max_bytes), body[head:end])
        )
        position = end
    parts.append(body[position:])
    return b"".join(parts)


def forget_traceback(error: BaseException) -> None:
    """Drop the tracebacks of ``error`` and of the errors it was raised from or during (the frames they keep)."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        stack += [linked for linked in (current.__cause__, current.__context__) if linked is not None]


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    """The JSON of every 4xx / 5xx answer: ``{"error": message, ...}``."""
    return {"error": message, **extra}


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def upload_name(path: Any) -> str:
    """The client's file name BentoML kept as the suffix of its temporary upload file (``tmpXXXXXXXX<name>``).

    Only used for display: the name never becomes a path. Falls back to ``"upload"``.
    """
    name = str(getattr(path, "name", path))
    if name.startswith("tmp") and len(name) > 11:
        name = name[11:]
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\")[:200]
    return cleaned or "upload"

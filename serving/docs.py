"""The service's own API documentation: the page at ``/`` and the OpenAPI description at ``/docs.json``.

BentoML's index page is a Swagger UI whose description loads badges from outside the machine (broken offline) and
says nothing about docclass. The service replaces the ``/`` route with :func:`render_page` (one self-contained HTML
page plus ``/ui/static/api.css``, no script) and builds its OpenAPI document with :class:`DocclassService`.

The status codes, their causes and example bodies live once, in :func:`statuses`; the page, the OpenAPI responses
and a test that reads the service's source (every status it can answer is documented) all use it.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from string import Template
from typing import Any

import attrs
import bentoml
from bentoml._internal.service.openapi.specification import Info, OpenAPISpecification, PathItem
from bentoml._internal.utils.cattr import bentoml_cattr

from serving.postprocess import ServeConfig

TEMPLATE = Path(__file__).parent / "static" / "api.html"

ACCEPTED = "PDF, PNG, JPEG, TIFF, WebP or ZIP"

# Documented per field of the multipart form of POST /classify (added to the generated OpenAPI request schema).
FORM_FIELDS: dict[str, str] = {
    "file": f"The document: {ACCEPTED} (every member of a zip archive is a document of its own).",
    "version": '"1.N" pins a registered version (see GET /versions); empty or absent = the champion. '
    'Multipart text fields are JSON-decoded, so send 1.10 as ?version=1.10 or as the JSON string "1.10".',
    "thumbnails": "true adds a PNG data URI of every page (pages[].thumbnail); default false.",
    "split": '"auto" splits every document into the documents it holds (documents[].segments); '
    "empty or absent = no splitting. Any other value is a 400.",
}

EXAMPLE_ANSWER: dict[str, Any] = {
    "model_version": "1.3",
    "champion": "1.3",
    "pinned": False,
    "file": "bundle.pdf",
    "documents": [
        {
            "name": "bundle.pdf",
            "sha256": "9f2c4e0a7b1d3f5e8a6c2b4d0e1f3a5c7e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f",
            "label": "invoice",
            "confidence": 0.912345,
            "scores": {"1040": 0.012, "invoice": 0.912345, "other": 0.041, "payslip": 0.021655, "w9": 0.013},
            "top": [
                {"label": "invoice", "score": 0.912345},
                {"label": "other", "score": 0.041},
                {"label": "payslip", "score": 0.021655},
            ],
            "needs_review": False,
            "review_score": 0.871345,
            "review_threshold": 0.62,
            "n_pages": 3,
            "pages": [
                {
                    "page": 1,
                    "label": "invoice",
                    "confidence": 0.95,
                    "scores": {"1040": 0.01, "invoice": 0.95, "other": 0.02, "payslip": 0.01, "w9": 0.01},
                    "source": "text",
                    "rotation": 0,
                },
            ],
            "segments": [
                {"label": "invoice", "first_page": 1, "last_page": 2, "confidence": 0.93},
                {"label": "w9", "first_page": 3, "last_page": 3, "confidence": 0.88},
            ],
        }
    ],
    "rejected": [
        {
            "name": "batch.zip/notes.txt",
            "kind": "UnsupportedTypeError",
            "error": f"unsupported file type 'text/plain' for batch.zip/notes.txt: expected {ACCEPTED}",
        }
    ],
    "timings_ms": {"model": 0.01, "extract": 41.2, "inference": 6.3, "split": 2.1, "total": 50.4},
}


VERSIONS_EXAMPLE: dict[str, Any] = {
    "champion": "1.3",
    "versions": [
        {
            "version": "1.3",
            "labels": 60,
            "dataset_revision": "4c1f9a0e2b7d5c3a8e6f1b0d9c2a7e5f",
            "candidate": "fusion",
            "accuracy": 0.93,
            "macro_f1": 0.92,
            "forward_accuracy": 0.9,
            "forward_docs": 20,
            "gate": "pass",
            "reasons": [],
            "champion": True,
            "promoted_at": "2026-01-05T10:12:00",
            "created": "2026-01-05T10:11:41",
        }
    ],
    "worker": {
        "served": "1.3",
        "cached": [2],
        "last_poll": 1767607921.4,
        "poll_error": None,
        "poll_seconds": 5.0,
    },
}


@dataclass(frozen=True)
class Case:
    """One reason for a status: on which routes, when, and an example body (None: the body is the answer)."""

    routes: tuple[str, ...]
    when: str
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Status:
    """One HTTP status the service answers and every reason it does."""

    code: int
    title: str
    cases: tuple[Case, ...]

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(route for case in self.cases for route in case.routes))


CLASSIFY = ("/classify",)
VERSIONS = ("/versions",)
BOTH = ("/classify", "/versions")


def statuses(config: ServeConfig) -> tuple[Status, ...]:
    """Every status ``/classify`` and ``/versions`` answer, with this server's limits in the examples."""
    mb = f"{config.max_upload_mb:g}"
    timeout = f"{config.request_timeout_s:g}"
    unsupported = f"unsupported file type 'application/x-msdownload' for report.exe: expected {ACCEPTED}"
    empty = f"empty.pdf is empty (0 bytes): expected a {ACCEPTED} file"
    empty_zip = (
        "empty.zip is a zip archive that holds no documents: expected at least one PDF, PNG, JPEG, TIFF or WebP "
        "file in it"
    )
    first = f" (the first one runs at {config.min_labels} labels)" if config.min_labels else ""
    no_model = f"no model yet (version 1.0): no version is registered; label documents and run a training round{first}"
    retry = config.retry_after_s
    too_many = (
        f"too many requests: {config.max_concurrent_requests} in progress in this worker, the limit is "
        f"{config.max_concurrent_requests} (params serve.max_concurrent_requests): expected a retry after {retry} s"
    )
    backlog = (
        f"OCR backlog full: {config.max_queued_pages} pages wait for Tesseract in this worker, the limit is "
        f"{config.max_queued_pages} (params serve.max_queued_pages): expected a retry after {retry} s"
    )
    no_ocr = (
        "page 1: tesseract is not installed: expected the 'tesseract' binary on PATH "
        "(run `make install`, or `apt-get install tesseract-ocr tesseract-ocr-eng`)"
    )
    return (
        Status(
            200,
            "OK",
            (
                Case(
                    CLASSIFY,
                    "The answer (fields below). Documents of a batch that could not be read are listed in "
                    "rejected; the others are answered.",
                    None,
                ),
                Case(
                    VERSIONS, "The registered versions, the champion and this worker's state (below).", None
                ),
            ),
        ),
        Status(
            400,
            "Bad Request",
            (
                Case(
                    CLASSIFY,
                    'version is not "1.N".',
                    {"error": "version '2.1' is not valid: expected 1.N, e.g. 1.3 (1.0 = no model)"},
                ),
                Case(
                    CLASSIFY,
                    'split is neither "auto" nor empty.',
                    {"error": "split='yes' is not valid: expected 'auto' or nothing"},
                ),
                Case(
                    CLASSIFY,
                    "The form has no file part, or a field of the wrong type (BentoML's validation).",
                    {
                        "error": "1 validation error for Input",
                        "detail": [
                            {
                                "type": "missing",
                                "loc": ["file"],
                                "msg": "Field required",
                                "url": "https://errors.pydantic.dev/2.14/v/missing",
                            }
                        ],
                    },
                ),
            ),
        ),
        Status(
            401,
            "Unauthorized",
            (
                Case(
                    BOTH,
                    "DOCCLASS_API_KEY is set and the header Authorization: Bearer <key> is missing or wrong "
                    "(the answer carries WWW-Authenticate: Bearer).",
                    {
                        "error": "missing or wrong API key: expected the header 'Authorization: Bearer <key>' "
                        "with the key set in DOCCLASS_API_KEY"
                    },
                ),
            ),
        ),
        Status(
            404,
            "Not Found",
            (
                Case(
                    CLASSIFY,
                    "The pinned version is 1.0 (no model).",
                    {"error": "version 1.0 means no model: expected 1.N with N >= 1 (see GET /versions)"},
                ),
                Case(
                    CLASSIFY,
                    "The pinned version is not registered or cannot be loaded.",
                    {
                        "error": "version 1.9 cannot be loaded: <reason>: see GET /versions for the registered versions"
                    },
                ),
            ),
        ),
        Status(
            411,
            "Length Required",
            (
                Case(
                    CLASSIFY,
                    "A POST without Content-Length (e.g. a chunked upload).",
                    {"error": "upload without Content-Length: expected a multipart form with a `file` part"},
                ),
            ),
        ),
        Status(
            413,
            "Content Too Large",
            (
                Case(
                    CLASSIFY,
                    f"The request body is over {mb} MB (serve.max_upload_mb), refused before it is read.",
                    {
                        "error": f"upload is 31.5 MB: the limit is {mb} MB per request (params serve.max_upload_mb)"
                    },
                ),
                Case(
                    CLASSIFY,
                    f"The uploaded file is over the per-file limit (ingest.max_file_mb, at most {mb} MB).",
                    {"error": f"big.pdf is 24.0 MB: the limit is {mb} MB"},
                ),
                Case(
                    CLASSIFY,
                    f"The documents of the upload have more than {config.max_pages} pages together "
                    "(serve.max_pages).",
                    {
                        "error": f"scans.zip has {config.max_pages + 10} pages in 4 document(s): the limit is "
                        f"{config.max_pages} pages per request (params serve.max_pages)"
                    },
                ),
                Case(
                    CLASSIFY,
                    "Every document was rejected for its size (too large, too many pages, zip bomb); "
                    "rejected lists them.",
                    {
                        "error": "a.zip has 5000 members: the limit is 1000 per archive",
                        "rejected": [
                            {
                                "name": "a.zip",
                                "kind": "ZipBombError",
                                "error": "a.zip has 5000 members: the limit is 1000 per archive",
                            }
                        ],
                    },
                ),
            ),
        ),
        Status(
            415,
            "Unsupported Media Type",
            (
                Case(
                    CLASSIFY,
                    f"No document could be read and every one is of an unsupported type (expected "
                    f"{ACCEPTED}); rejected lists them.",
                    {
                        "error": unsupported,
                        "rejected": [
                            {"name": "report.exe", "kind": "UnsupportedTypeError", "error": unsupported}
                        ],
                    },
                ),
            ),
        ),
        Status(
            422,
            "Unprocessable Content",
            (
                Case(
                    CLASSIFY,
                    "No document could be read: empty, corrupt or password-protected files, images over "
                    "the pixel limit, OCR that failed or timed out (extract.ocr_timeout_s), or a mix of "
                    "reasons; rejected lists every one with its kind.",
                    {
                        "error": empty,
                        "rejected": [{"name": "empty.pdf", "kind": "EmptyFileError", "error": empty}],
                    },
                ),
                Case(
                    CLASSIFY,
                    "The upload is a zip archive that holds no documents.",
                    {
                        "error": empty_zip,
                        "rejected": [{"name": "empty.zip", "kind": "EmptyArchiveError", "error": empty_zip}],
                    },
                ),
            ),
        ),
        Status(
            429,
            "Too Many Requests",
            (
                Case(
                    CLASSIFY,
                    f"The worker already has {config.max_concurrent_requests} requests in progress "
                    "(serve.max_concurrent_requests; a request counts until its last thread ends). Answered at "
                    "once, before the upload is read, with the header Retry-After (seconds, "
                    "serve.retry_after_s): wait that long, then send it again.",
                    {"error": too_many, "retry_after_s": retry},
                ),
            ),
        ),
        Status(
            500,
            "Internal Server Error",
            (
                Case(
                    BOTH,
                    "An unexpected error (a bug): the server log has the traceback.",
                    {"error": "An unexpected error has occurred, please check the server log."},
                ),
            ),
        ),
        Status(
            503,
            "Service Unavailable",
            (
                Case(
                    CLASSIFY,
                    "No model yet: the registry has no champion (version 1.0); the message says what the "
                    "registry holds (no version yet, or why the latest one is not champion).",
                    {"error": no_model},
                ),
                Case(
                    CLASSIFY,
                    f"Overload: {config.max_queued_pages} OCR pages already wait for Tesseract in this worker "
                    "(serve.max_queued_pages). Answered at once, before the upload is read, whatever it holds, with "
                    "the header Retry-After (seconds): wait that long, then send it again.",
                    {"error": backlog, "retry_after_s": retry},
                ),
                Case(
                    CLASSIFY,
                    "Every document needs OCR and Tesseract cannot run on this server (not the client's "
                    "fault); rejected lists them.",
                    {
                        "error": no_ocr,
                        "rejected": [{"name": "scan.png", "kind": "OcrUnavailableError", "error": no_ocr}],
                    },
                ),
                Case(
                    VERSIONS,
                    "The model registry cannot be read; worker still says what this worker serves.",
                    {
                        "error": "registry unreachable: <reason>",
                        "worker": {
                            "served": "1.3",
                            "cached": [],
                            "last_poll": 1767225600.0,
                            "poll_error": None,
                            "poll_seconds": config.poll_seconds,
                        },
                    },
                ),
            ),
        ),
        Status(
            504,
            "Gateway Timeout",
            (
                Case(
                    CLASSIFY,
                    f"The request took longer than {timeout} s (serve.request_timeout_s).",
                    {
                        "error": f"request took longer than {timeout} s (params serve.request_timeout_s): "
                        "send fewer pages or documents"
                    },
                ),
            ),
        ),
    )


def description(config: ServeConfig) -> str:
    """The OpenAPI ``info.description`` (Markdown)."""
    codes = "\n".join(
        f"- **{status.code} {status.title}**: "
        + " ".join(f"{', '.join(case.routes)}: {case.when}" for case in status.cases)
        for status in statuses(config)
    )
    return f"""docclass classifies documents ({ACCEPTED}) into the classes of the model that is champion in the
registry, or a pinned version.

- `POST /classify`: multipart form with `file`; optional `version` ("1.N"), `split` ("auto") and `thumbnails`
  (true). Answers one JSON entry per document (label, confidence, scores, the top three classes, needs_review
  under the model's learned review threshold, pages, segments),
  the documents that could not be read (`rejected`), the model version and timings.
- `GET /versions`: registered versions with their metrics, the champion and what this worker serves.
- `GET /` explains the API with examples; `GET /ui` is the live page; `/readyz`, `/livez`, `/metrics`.

When `DOCCLASS_API_KEY` is set, `/classify` and `/versions` need the header `Authorization: Bearer <key>`.
Overload is shed at the door, never queued without bound: past {config.max_concurrent_requests} requests in progress
per worker `/classify` answers 429, and with {config.max_queued_pages} OCR pages waiting it answers 503, both at once
with `Retry-After: {config.retry_after_s}` (`/readyz` and `/livez` are never shed).
Every error answer is JSON `{{"error": "<what was expected and what was found>", ...}}`:

{codes}
"""


def _json(value: Any, width: int = 88, indent: str = "") -> str:
    """JSON for reading: a list or object that fits in ``width`` columns stays on one line, larger ones open up."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(key)}: {_json(item, width, inner).lstrip()}" for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    items = [f"{inner}{_json(item, width, inner).lstrip()}" for item in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def _status_rows(config: ServeConfig) -> str:
    rows = []
    for status in statuses(config):
        for k, case in enumerate(status.cases):
            head = ""
            if k == 0:
                head = (
                    f'<th rowspan="{len(status.cases)}" id="status-{status.code}">{status.code}'
                    f'<br><span class="title">{html.escape(status.title)}</span></th>'
                )
            routes = " ".join(f"<code>{html.escape(route)}</code>" for route in case.routes)
            body = (
                f"<pre>{html.escape(_json(case.body, width=100))}</pre>"
                if case.body is not None
                else '<a href="#answer">the answer</a>'
                if case.routes == CLASSIFY
                else '<a href="#versions">below</a>'
            )
            rows.append(
                f'<tr data-status="{status.code}">{head}<td>{routes}</td>'
                f"<td>{html.escape(case.when)}</td><td>{body}</td></tr>"
            )
    return "\n".join(rows)


def render_page(config: ServeConfig, base_url: str) -> str:
    """The HTML of ``/``: how to call docclass on this server (its address and limits in the examples).

    Args:
        config: the service's settings (limits in the text and examples).
        base_url: the address the client used, e.g. ``http://127.0.0.1:3000/`` (for copyable curl lines).
    """
    url = base_url.rstrip("/") or "http://127.0.0.1:3000"
    fields = "".join(
        f"<tr><td><code>{name}</code></td><td>{html.escape(text)}</td></tr>"
        for name, text in FORM_FIELDS.items()
    )
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        url=html.escape(url),
        accepted=ACCEPTED,
        fields=fields,
        max_upload_mb=f"{config.max_upload_mb:g}",
        max_pages=config.max_pages,
        request_timeout_s=f"{config.request_timeout_s:g}",
        max_concurrent_requests=config.max_concurrent_requests,
        max_queued_pages=config.max_queued_pages,
        retry_after_s=config.retry_after_s,
        review_threshold=f"{config.review_threshold:g}",
        target_accuracy=f"{config.target_accuracy:g}",
        review_floor=f"{config.review_floor:g}",
        poll_seconds=f"{config.poll_seconds:g}",
        answer=html.escape(_json(EXAMPLE_ANSWER)),
        versions=html.escape(_json(VERSIONS_EXAMPLE)),
        statuses=_status_rows(config),
        version=html.escape(package_version()),
    )


def package_version() -> str:
    try:
        return metadata.version("docclass")
    except metadata.PackageNotFoundError:
        return "unknown"


def _operation(path: PathItem, method: str) -> dict[str, Any]:
    operation = getattr(path, method)
    return dict(operation) if isinstance(operation, dict) else bentoml_cattr.unstructure(operation)


def _responses(config: ServeConfig, route: str) -> dict[str, Any]:
    """The OpenAPI ``responses`` of one route: every status with its reasons and example bodies."""
    responses: dict[str, Any] = {}
    for status in statuses(config):
        cases = [case for case in status.cases if route in case.routes]
        if not cases:
            continue
        content: dict[str, Any] = {"schema": {"type": "object"}}
        if status.code == 200 and route == "/classify":
            content["example"] = EXAMPLE_ANSWER
        examples = {
            f"case{k + 1}": {"summary": case.when, "value": case.body}
            for k, case in enumerate(cases)
            if case.body is not None
        }
        if examples:
            content["examples"] = examples
        responses[str(status.code)] = {
            "description": f"{status.title}: {' '.join(case.when for case in cases)}",
            "content": {"application/json": content},
        }
    return responses


def served_config() -> ServeConfig:
    """The limits this server runs with: the params.yaml its settings name (``DOCCLASS_PARAMS``)."""
    from flows.settings import Settings
    from pipelines.params import load_params

    return ServeConfig.from_params(load_params(Settings().params))


class DocclassService(bentoml.Service[Any]):
    """BentoML's service with docclass's OpenAPI title, description and status codes (``/docs.json``)."""

    @property
    def doc(self) -> str:
        return description(served_config())

    @property
    def openapi_spec(self) -> OpenAPISpecification:
        spec = super().openapi_spec
        config = served_config()
        paths = dict(spec.paths)
        if "/classify" in paths:
            post = _operation(paths["/classify"], "post")
            body = bentoml_cattr.unstructure(post.get("requestBody", {}))
            for media in body.get("content", {}).values():
                for name, prop in media.get("schema", {}).get("properties", {}).items():
                    if name in FORM_FIELDS:
                        prop["description"] = FORM_FIELDS[name]
            post.update(
                summary="Classify an uploaded document, image or zip archive",
                description=f"Multipart upload ({ACCEPTED}). See GET / for the answer's fields and examples.",
                requestBody=body,
                responses=_responses(config, "/classify"),
            )
            paths["/classify"] = PathItem(post=post)
        if "/versions" in paths and paths["/versions"].get is not None:
            get = _operation(paths["/versions"], "get")
            get["responses"] = _responses(config, "/versions")
            paths["/versions"] = PathItem(get=get)
        info = Info(title="docclass", version=package_version(), description=self.doc)
        return attrs.evolve(spec, info=info, paths=paths)

"""The docclass classification service: ``bentoml serve serving.service:DocClassifier``.

- ``POST /classify`` (multipart ``file``: PDF, image or zip; optional ``version`` "1.N"; optional ``thumbnails``)
  answers one JSON entry per document with label, confidence, scores, the top three classes, needs_review (under
  the model's learned review threshold), per-page results, the model version and timings. Before any model
  (version 1.0) it answers 503.
- ``GET /versions``: registered versions with their metrics, which one is champion, what this worker serves.
- ``GET /ui``: the live page (drop a document, see class, confidence, needs_review, the top three classes, page
  thumbnails and page classes; with "split", the documents a bundle holds and their page ranges).
- ``GET /``: the API documentation (:mod:`serving.docs`, replacing BentoML's Swagger UI); ``/docs.json`` its OpenAPI
  form; BentoML's ``/readyz``, ``/livez``, ``/metrics``.

Every worker follows the registry alias ``champion`` with a polling thread and swaps models atomically (see
:mod:`serving.models`); page inference of concurrent requests is batched (see :mod:`serving.batching`).
Configuration, read once when a worker starts (:class:`flows.settings.Settings`, environment or `.env`): ``serve:``
in params.yaml (``DOCCLASS_PARAMS``), the registry from ``DOCCLASS_MLFLOW_TRACKING_URI``, an optional API key from
``DOCCLASS_API_KEY`` (an empty variable counts as unset, so it cannot switch authentication off; the start log
says whether authentication is on).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import hmac
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Request
from pydantic import BeforeValidator, Field
from starlette.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from serving.admission import CURRENT_TICKET, Admission, Refusal, Ticket
from serving.docs import DocclassService, render_page
from serving.postprocess import (
    ServeConfig,
    document_answer,
    error_body,
    forget_traceback,
    multipart_boundary,
    parse_bearer,
    rejection_status,
    shorten_upload_names,
    thumbnail_data_uri,
    upload_name,
)

with bentoml.importing():
    from mlflow.exceptions import MlflowException

    from flows.settings import Settings, reveal
    from pipelines.classify import Upload, classify, extract_inputs
    from pipelines.document import Document
    from pipelines.extract import ExtractConfig
    from pipelines.ingest import Limits, Rejected
    from pipelines.ocr import configure_ocr_pool, ocr_pool
    from pipelines.params import load_params
    from serving.batching import Batcher
    from serving.models import ChampionPoller, ModelStore, UnknownVersionError
    from serving.registry import (
        RegistryError,
        RegistryReader,
        format_version,
        no_champion_message,
        parse_version,
    )

logger = logging.getLogger("docclass.serving")

STATIC = Path(__file__).parent / "static"
PROTECTED = ("/classify", "/versions")
ADMITTED = "/classify"  # the route admission control guards (POST); /readyz, /livez and the rest never shed
DRAIN_S = 5.0  # a shed request's upload is read and dropped for this long at most before the answer

web = FastAPI(title="docclass extras", docs_url=None, redoc_url=None, openapi_url=None)


def log_authentication(key: str | None) -> None:
    """Say at start whether the protected routes need the API key (never the key itself)."""
    # WARNING, not INFO: BentoML's root logger shows warnings only, and this line must be in the server log.
    if key is None:
        logger.warning(
            "authentication is OFF: DOCCLASS_API_KEY is not set, %s answer anyone who reaches this port",
            " and ".join(PROTECTED),
        )
    else:
        logger.warning(
            "authentication is on: %s need 'Authorization: Bearer <DOCCLASS_API_KEY>'",
            " and ".join(PROTECTED),
        )


class Guard:
    """ASGI middleware in front of everything: bearer API key on the protected routes, the upload size limit
    checked on ``Content-Length`` before a byte of the body is read, admission control of ``POST /classify``
    (:mod:`serving.admission`: 429 / 503 with ``Retry-After`` before the upload is read), and upload file names cut
    to :data:`serving.postprocess.MAX_UPLOAD_NAME_BYTES` (a longer one made BentoML fail with a 500).

    All are read from :class:`flows.settings.Settings` when the app is built and again when it starts (ASGI
    lifespan), never per request: rotating the key means restarting the service.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.key: str | None = None
        self.max_bytes = 0
        self.admission: Admission
        self.configure()

    def configure(self) -> None:
        """Read the API key, the upload limit and the admission limits."""
        settings = Settings()
        self.key = reveal(settings.api_key)
        config = ServeConfig.from_params(load_params(settings.params))
        self.max_bytes = config.max_upload_bytes
        self.admission = Admission(
            config.max_concurrent_requests,
            config.max_queued_pages,
            config.retry_after_s,
            lambda: ocr_pool().queued,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self.configure()
            log_authentication(self.key)
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        key = self.key
        if key is not None:
            token = parse_bearer(headers.get("authorization"))
            if token is None or not hmac.compare_digest(token.encode(), key.encode()):
                response = JSONResponse(
                    error_body(
                        "missing or wrong API key: expected the header 'Authorization: Bearer <key>' "
                        "with the key set in DOCCLASS_API_KEY"
                    ),
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        if scope["method"] == "POST":
            length = headers.get("content-length")
            if length is None or not length.isdigit():
                response = JSONResponse(
                    error_body("upload without Content-Length: expected a multipart form with a `file` part"),
                    status_code=411,
                )
                await response(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                response = JSONResponse(
                    error_body(
                        f"upload is {int(length) / 2**20:.1f} MB: the limit is {self.max_bytes / 2**20:.0f} MB "
                        f"per request (params serve.max_upload_mb)"
                    ),
                    status_code=413,
                )
                await response(scope, receive, send)
                return
            if scope["path"].rstrip("/").endswith(ADMITTED):
                admitted = self.admission.admit()
                if isinstance(admitted, Refusal):
                    await _shed(admitted, headers, scope, receive, send)
                    return
                await self._admitted(admitted, headers, scope, receive, send)
                return
        await self._forward(headers, scope, receive, send)

    async def _admitted(
        self, ticket: Ticket, headers: dict[str, str], scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        """Serve an admitted request; its slot is freed once the answer is sent and its threads are done."""
        token = CURRENT_TICKET.set(ticket)
        try:
            await self._forward(headers, scope, receive, send)
        finally:
            CURRENT_TICKET.reset(token)
            ticket.release()

    async def _forward(self, headers: dict[str, str], scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Hand the request on, its multipart upload names cut first."""
        boundary = multipart_boundary(headers.get("content-type", "")) if scope["method"] == "POST" else None
        if boundary is not None:
            body = await _read_body(receive)
            if body is None:  # the client went away
                return
            body = shorten_upload_names(body, boundary)
            rest = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*rest, (b"content-length", str(len(body)).encode())]}
            receive = _replay(body, receive)
        await self.app(scope, receive, send)


async def _shed(
    refusal: Refusal, headers: dict[str, str], scope: dict[str, Any], receive: Any, send: Any
) -> None:
    """Answer a request that was not admitted, its upload dropped unread.

    The upload is drained (read and thrown away, never kept) for at most :data:`DRAIN_S` first: a server that
    answers and closes while the client is still sending resets the connection, and the client then sees a broken
    connection instead of the 429. A client that asked ``Expect: 100-continue`` has sent nothing yet: it gets the
    answer at once and never sends the upload.
    """
    if headers.get("expect", "").lower() != "100-continue":
        try:
            await asyncio.wait_for(_drain(receive), DRAIN_S)
        except TimeoutError:
            pass
    response = JSONResponse(refusal.body, status_code=refusal.status, headers=refusal.headers)
    await response(scope, receive, send)


async def _drain(receive: Any) -> None:
    """Read the request body to its end (or the client's disconnect), keeping none of it."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


async def _read_body(receive: Any) -> bytes | None:
    """The whole request body (its size was checked against the limit first), or None if the client disconnected."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` giving ``body`` in one message, then whatever the connection says next (disconnect).

    It lets go of ``body`` once given: BentoML keeps each request's context (the Request, so this function) for
    ``traffic.timeout`` in a timer it never cancels, and the upload would live that long (300 s) with it.
    """
    pending = [body]
    del body

    async def replay() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replay


def extract_upload(
    data: bytes, name: str, config: ExtractConfig, limits: Limits, cancel: threading.Event | None = None
) -> tuple[list[Document], list[Rejected]]:
    """Expand an upload in memory (member names are only display names) and extract every document.

    Memory is given back as soon as it is done (the soak, flows/bench_soak.py, saw the service's RSS grow by
    hundreds of MB a minute without both):

    - a rejection keeps its error's kind and message only: the traceback is dropped. It referenced the
      extraction's frames, one of which holds the list the rejection is in: a reference cycle that kept everything
      those frames held (a rejected page's MuPDF display list: ~200 MB for a huge text layer) until Python's full
      garbage collection, which large C allocations do not trigger;
    - MuPDF's resource store and the C heap's free pages go back to the system (:func:`return_free_memory`).
    """
    try:
        [results] = extract_inputs([Upload(name, data)], config, limits, cancel=cancel)
        docs = [result for result in results if isinstance(result, Document)]
        rejected = [result for result in results if isinstance(result, Rejected)]
        for rejection in rejected:
            forget_traceback(rejection.error)
        del results
    finally:
        return_free_memory()
    return docs, rejected


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


# MuPDF's store is emptied at most this often: emptying it costs the next born-digital PDF ~7 ms of font loading.
STORE_SHRINK_EVERY_S = 5.0
_store_shrunk = [float("-inf")]  # monotonic time of the last emptying
_store_lock = threading.Lock()


def return_free_memory() -> None:
    """Give what the extraction freed back to the system: MuPDF's resource store (emptied at most every
    :data:`STORE_SHRINK_EVERY_S`), then glibc's free pages (``malloc_trim(0)``, well under a millisecond). Called
    after every extraction of the service.

    - MuPDF keeps decoded images, fonts and other resources of every document it opened in a process-wide store of
      up to 256 MB; documents of the service are all different, so it only grows (the soak, flows/bench_soak.py,
      saw ~0.7 MB/s for minutes).
    - glibc keeps what a request freed (rendered pages, MuPDF's display lists, up to hundreds of MB for a hostile
      PDF) in its per-thread arenas, so the worker's RSS would be the highest sum of concurrent peaks seen so far,
      creeping up as rarer coincidences of heavy uploads happen (the soak measured +45 % in 150 s).
    """
    import pymupdf

    now = time.monotonic()
    with _store_lock:
        due = now - _store_shrunk[0] >= STORE_SHRINK_EVERY_S
        if due:
            _store_shrunk[0] = now
    if due:
        pymupdf.TOOLS.store_shrink(
            100
        )  # only entries nothing else holds: a concurrent extraction keeps its own
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# BentoML JSON-decodes multipart text fields, so a form field 1.10 arrives as the number 1.1: send it as the query
# parameter ?version=1.10 (read first) or as a JSON string ("1.10").
VersionText = Annotated[
    str,
    BeforeValidator(_as_text),
    Field(description='"1.N" pins a registered version; empty = the champion', examples=["1.2"]),
]


class HTTPError(Exception):
    """Ends a request with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, **extra)


@bentoml.service(name="docclass", traffic={"timeout": 300}, workers=1, service_class=DocclassService)
@bentoml.asgi_app(web, path="/")
class DocClassifier:
    """Document classification with the registry's champion, pinned versions, hot swap and batching."""

    def __init__(self) -> None:
        settings = Settings()
        params = load_params(settings.params)
        self.settings = settings
        self.config = ServeConfig.from_params(params)
        ingest = Limits.from_params(params["ingest"])
        self.limits = replace(
            ingest,
            max_file_bytes=min(ingest.max_file_bytes, self.config.max_upload_bytes),
            max_pages=min(ingest.max_pages, self.config.max_pages),
        )
        self.extract_config = ExtractConfig.from_params(params["extract"])
        # Concurrent requests share one OCR pool: its size is the worker's bound on Tesseract processes.
        configure_ocr_pool(self.extract_config.workers)
        # One extraction thread per request in progress (admission bounds them), apart from the default executor:
        # extractions waiting for OCR must not hold up inference, model loads or splitting.
        self.extractor = ThreadPoolExecutor(self.config.max_concurrent_requests, thread_name_prefix="extract")
        self.split_params = params.get("split")
        self.registry = RegistryReader.from_settings(settings)
        self.workdir = Path(tempfile.mkdtemp(prefix="docclass-serve-"))
        self.store = ModelStore(self.registry, self.config.cache_versions, self.workdir)
        try:
            self.store.refresh()
        except Exception as error:  # noqa: BLE001 - the poller retries; the service answers 503 meanwhile
            self.store.last_error = f"{type(error).__name__}: {error}"
            logger.warning("registry not readable at start (%s): polling continues", self.store.last_error)
        self.poller = ChampionPoller(self.store, self.config.poll_seconds)
        self.poller.start()
        review = self.config.review  # each model's own learned threshold (pipelines.predict.ReviewRule)
        self.batcher = Batcher(
            lambda model, docs: classify(model, docs, review),
            self.config.max_batch_size,
            self.config.max_latency_ms,
        )

    @bentoml.on_shutdown
    async def shutdown(self) -> None:
        self.poller.stop()
        await self.batcher.close()
        self.extractor.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------------------------------- classify

    @bentoml.api
    async def classify(
        self,
        file: Path,
        ctx: bentoml.Context,
        version: VersionText = "",
        thumbnails: bool = False,
        split: str = "",
    ) -> dict[str, Any]:
        """Classify an uploaded PDF, image or zip archive (every member a document).

        Args:
            file: the document (multipart part ``file``).
            version: "1.N" pins a registered version; empty = the current champion.
            thumbnails: add a PNG data URI of every page (the live page uses them).
            split: "auto" splits each document into the documents it holds (per segment: label, first_page,
                last_page, confidence); empty keeps the document-level answer only.

        Returns:
            ``model_version``, ``champion``, ``documents`` (per document: name, label, confidence, scores,
            top, needs_review, review_threshold, n_pages, pages, segments), ``rejected`` (name, kind, error)
            and ``timings_ms``.
        """
        # The query string keeps the exact text (?version=1.10); a form field went through json.loads first.
        version = ctx.request.query_params.get("version") or version
        split = str(ctx.request.query_params.get("split") or split or "").strip()
        cancel = threading.Event()
        try:
            if split not in ("", "auto"):
                raise HTTPError(400, f"split={split!r} is not valid: expected 'auto' or nothing")
            body = await asyncio.wait_for(
                self._classify(file, version.strip(), thumbnails, split == "auto", cancel),
                self.config.request_timeout_s,
            )
        except HTTPError as error:
            ctx.response.status_code = error.status
            return error.body
        except TimeoutError:
            ctx.response.status_code = 504
            return error_body(
                f"request took longer than {self.config.request_timeout_s:g} s (params serve.request_timeout_s): "
                f"send fewer pages or documents"
            )
        finally:
            cancel.set()  # an ended request (answered, timed out, client gone): its OCR pages not started are dropped
            file.unlink(missing_ok=True)
        return body

    async def _classify(
        self,
        file: Path,
        version: str,
        thumbnails: bool,
        split: bool = False,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        model = await self._model(version)
        timings["model"] = (time.perf_counter() - start) * 1000
        name = upload_name(file)
        size = file.stat().st_size
        if size > self.limits.max_file_bytes:
            raise HTTPError(
                413,
                f"{name} is {size / 2**20:.1f} MB: the limit is {self.limits.max_file_bytes / 2**20:.0f} MB",
            )
        mark = time.perf_counter()
        docs, rejected = await self._in_extractor(file.read_bytes(), name, cancel)
        timings["extract"] = (time.perf_counter() - mark) * 1000
        if not docs:  # every upload gives a document or a rejection (an empty archive: EmptyArchiveError)
            raise HTTPError(
                rejection_status([r.kind for r in rejected]),
                "; ".join(r.reason for r in rejected),
                rejected=[{"name": r.name, "kind": r.kind, "error": r.reason} for r in rejected],
            )
        total_pages = sum(doc.n_pages for doc in docs)
        if total_pages > self.config.max_pages:
            raise HTTPError(
                413,
                f"{name} has {total_pages} pages in {len(docs)} document(s): the limit is {self.config.max_pages} "
                f"pages per request (params serve.max_pages)",
            )
        mark = time.perf_counter()
        predictions = [classified.prediction for classified in await self.batcher.submit(model.model, docs)]
        timings["inference"] = (time.perf_counter() - mark) * 1000
        segments: list[Any] = [None] * len(docs)
        if split:
            mark = time.perf_counter()
            segments = await asyncio.to_thread(self._split, model, docs)
            timings["split"] = (time.perf_counter() - mark) * 1000
        documents = []
        for doc, prediction, found in zip(docs, predictions, segments, strict=True):
            documents.append(
                document_answer(
                    prediction,
                    doc.name,
                    [{"source": page.source, "rotation": page.rotation} for page in doc.pages],
                    [thumbnail_data_uri(page.image) for page in doc.pages] if thumbnails else None,
                    [segment.to_dict() for segment in found] if found is not None else None,
                )
            )
        timings["total"] = (time.perf_counter() - start) * 1000
        champion = self.store.champion
        return {
            "model_version": model.version,
            "champion": format_version(champion.number if champion else None),
            "pinned": bool(version),
            "file": name,
            "documents": documents,
            "rejected": [{"name": r.name, "kind": r.kind, "error": r.reason} for r in rejected],
            "timings_ms": {key: round(value, 2) for key, value in timings.items()},
        }

    async def _model(self, version: str) -> Any:
        if version:
            try:
                number = parse_version(version)
            except ValueError as error:
                raise HTTPError(400, str(error)) from error
            if number == 0:
                raise HTTPError(
                    404, "version 1.0 means no model: expected 1.N with N >= 1 (see GET /versions)"
                )
            try:
                return await asyncio.to_thread(self.store.get, number)
            except UnknownVersionError as error:
                raise HTTPError(404, f"{error}: see GET /versions for the registered versions") from error
        model = self.store.champion
        if model is None:
            raise HTTPError(503, await asyncio.to_thread(self._no_model_message))
        return model

    async def _in_extractor(
        self, data: bytes, name: str, cancel: threading.Event | None
    ) -> tuple[list[Document], list[Rejected]]:
        """:meth:`_extract` in an extraction thread; the request's admission slot is held until that thread is done
        (after a 504 it still finishes the page it is in) or is dropped before it started."""
        ticket = CURRENT_TICKET.get()
        if ticket is not None:
            ticket.hold()
        try:
            future = self.extractor.submit(self._extract, data, name, cancel)
        except BaseException:
            if ticket is not None:
                ticket.release()
            raise
        if ticket is not None:
            future.add_done_callback(lambda _: ticket.release())
        return await asyncio.wrap_future(future)

    def _split(self, model: Any, docs: list[Any]) -> list[Any]:
        """Segments of every document: the model's trained splitter, or hand-set cue weights without one."""
        from pipelines.split import fallback_splitter, split_documents

        splitter = model.splitter
        if splitter is None:
            splitter = fallback_splitter(self.split_params)
        return split_documents(splitter, docs, model.model)

    def _extract(
        self, data: bytes, name: str, cancel: threading.Event | None = None
    ) -> tuple[list[Document], list[Rejected]]:
        return extract_upload(data, name, self.extract_config, self.limits, cancel)

    def _no_model_message(self) -> str:
        """Why there is no champion, from the registry (the labeler's files may live on another machine)."""
        try:
            versions = self.registry.versions()
        except (RegistryError, MlflowException, OSError) as error:
            return f"no model yet (version 1.0); the registry cannot say more: {error}"
        return no_champion_message(versions, self.config.min_labels)

    # ---------------------------------------------------------------------------------- versions and page

    @web.get("/versions")
    def versions(self) -> JSONResponse:
        """Registered versions with metrics, the champion, and what this worker serves."""
        served = self.store.champion
        status = {
            "served": format_version(served.number if served else None),
            "cached": self.store.cached_versions(),
            "last_poll": self.store.last_poll,
            "poll_error": self.store.last_error,
            "poll_seconds": self.config.poll_seconds,
        }
        try:
            rows = [info.row() for info in self.registry.versions()]
            champion = format_version(self.registry.champion_number())
        except (RegistryError, OSError) as error:
            return JSONResponse(error_body(f"registry unreachable: {error}", worker=status), status_code=503)
        return JSONResponse({"champion": champion, "versions": rows, "worker": status})

    @web.get("/", include_in_schema=False)
    def api_page(self, request: Request) -> HTMLResponse:
        """The API documentation, with this server's address and limits in the examples."""
        return HTMLResponse(render_page(self.config, str(request.base_url)))

    @web.get("/ui")
    def live_page(self) -> FileResponse:
        """The live page."""
        return FileResponse(STATIC / "index.html", media_type="text/html")


web.mount("/ui/static", StaticFiles(directory=STATIC), name="static")
# bentoml.service returns a Service wrapper; its stubs type the decorated name as the plain class
DocClassifier.add_asgi_middleware(Guard)  # type: ignore[attr-defined]

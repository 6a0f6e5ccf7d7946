"""Overload is shed early, never queued without bound (issue 13): admission control of ``POST /classify``.

- the admission decision alone (:mod:`serving.admission`): bounds, reasons, Retry-After, slots held by threads;
- the ASGI guard in front of the service (:class:`serving.service.Guard`) with a stand-in app: a request over the
  bound is answered before the app sees it, ``/readyz`` and ``/livez`` never are;
- the service in-process: a request that timed out keeps its slot while its extraction thread still works;
- the real service (`make serve-up`): more concurrent requests than the bound get only 200s and 429 / 503 with
  JSON reasons, and the service is ready during and after.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from serving.admission import LOG_EVERY_S, Admission, Refusal, Ticket
from tests.failure_cases import OK_WIDTH, scanned_png
from tests.make_server import MakeServer, environment, free_port
from tests.serving.conftest import World, serve_params

# ----------------------------------------------------------------------------------------- admission alone


def admission(max_requests: int = 2, max_queued_pages: int = 4, queued: list[int] | None = None) -> Admission:
    backlog = queued if queued is not None else [0]
    return Admission(max_requests, max_queued_pages, 3, lambda: backlog[0])


def test_admits_up_to_the_bound_then_answers_429_with_a_reason_and_retry_after() -> None:
    gate = admission(max_requests=2)
    first, second = gate.admit(), gate.admit()
    assert isinstance(first, Ticket) and isinstance(second, Ticket) and gate.in_progress == 2
    refused = gate.admit()
    assert isinstance(refused, Refusal) and refused.status == 429
    assert refused.reason == (
        "too many requests: 2 in progress in this worker, the limit is 2 (params serve.max_concurrent_requests): "
        "expected a retry after 3 s"
    )
    assert refused.headers == {"Retry-After": "3"}
    assert refused.body == {"error": refused.reason, "retry_after_s": 3}
    first.release()
    assert gate.in_progress == 1 and isinstance(gate.admit(), Ticket)
    assert gate.shed == {429: 1} and gate.admitted == 3


def test_an_ocr_backlog_at_its_bound_is_503_and_the_request_bound_comes_first() -> None:
    queued = [4]
    gate = admission(max_requests=1, max_queued_pages=4, queued=queued)
    refused = gate.admit()
    assert isinstance(refused, Refusal) and refused.status == 503
    assert "OCR backlog full: 4 pages wait for Tesseract" in refused.reason
    assert "the limit is 4 (params serve.max_queued_pages)" in refused.reason
    queued[0] = 3
    ticket = gate.admit()
    assert isinstance(ticket, Ticket)
    queued[0] = 10
    both = gate.admit()  # too many requests and a full backlog: the client's share is the answer
    assert isinstance(both, Refusal) and both.status == 429
    ticket.release()
    assert gate.shed == {503: 1, 429: 1}


def test_a_slot_is_freed_when_its_last_holder_lets_go() -> None:
    gate = admission(max_requests=1)
    ticket = gate.admit()
    assert isinstance(ticket, Ticket)
    ticket.hold()  # a thread working for the request
    ticket.release()  # the answer was sent (a 504): the thread still works
    assert gate.in_progress == 1 and isinstance(gate.admit(), Refusal)
    ticket.release()  # the thread is done
    assert gate.in_progress == 0
    with pytest.raises(RuntimeError, match="released more often than it was held"):
        ticket.release()
    with pytest.raises(RuntimeError, match="already freed"):
        ticket.hold()


def test_concurrent_admissions_never_pass_the_bound() -> None:
    gate = admission(max_requests=3)
    lock = threading.Lock()
    inside, most, outcomes = [0], [0], {"admitted": 0, "shed": 0}

    def client() -> None:
        for _ in range(300):
            admitted = gate.admit()
            if isinstance(admitted, Refusal):
                with lock:
                    outcomes["shed"] += 1
                continue
            with lock:
                outcomes["admitted"] += 1
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0)
            with lock:
                inside[0] -= 1
            admitted.release()

    threads = [threading.Thread(target=client) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most[0] <= 3 and gate.in_progress == 0
    assert outcomes["admitted"] + outcomes["shed"] == 12 * 300 == gate.admitted + sum(gate.shed.values())


def test_shedding_is_logged_at_most_every_few_seconds(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    gate = Admission(1, 4, 2, lambda: 0, clock=lambda: now[0])
    ticket = gate.admit()
    assert isinstance(ticket, Ticket)
    with caplog.at_level(logging.WARNING, logger="docclass.serving"):
        for _ in range(3):
            gate.admit()
        now[0] += LOG_EVERY_S
        gate.admit()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("shedding load: 1 x 429 since the last report")
    assert lines[1].startswith("shedding load: 3 x 429 since the last report")


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="admission limits must be >= 1: got max_requests=0"):
        Admission(0, 4, 2, lambda: 0)


# ------------------------------------------------------------------------------------ the guard (ASGI)


class StandIn:
    """The app behind the guard: ``/classify`` waits until released; other routes answer at once."""

    def __init__(self) -> None:
        self.entered: asyncio.Queue[str] = asyncio.Queue()
        self.release = asyncio.Event()
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        if scope["method"] == "POST":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            self.bodies.append(body)
        await self.entered.put(scope["path"])
        if scope["path"] == "/classify":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def call(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes, int]:
    """One request through ``app``: status, headers, body and how many times the app read the request."""
    content_type = "multipart/form-data; boundary=xyz"
    sent = {"content-length": str(len(body)), "content-type": content_type, **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in sent.items()],
    }
    chunks = [body[:10], body[10:]] if body else [b""]  # delivered once, then dropped (as a server does)
    del body
    reads = [0]
    answer: dict[str, Any] = {"headers": {}, "body": b""}

    async def receive() -> dict[str, Any]:
        reads[0] += 1
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await asyncio.sleep(3600)  # nothing more: a client waiting for its answer
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"], reads[0]


@pytest.fixture
def guard_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard reads the settings: one request in progress at most, three OCR pages waiting."""
    params = serve_params(max_concurrent_requests=1, max_queued_pages=3, retry_after_s=4)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("DOCCLASS_PARAMS", str(path))
    monkeypatch.delenv("DOCCLASS_API_KEY", raising=False)


def test_the_guard_sheds_before_the_app_and_never_sheds_health(guard_params: None) -> None:
    from serving.service import Guard

    async def scenario() -> None:
        inner = StandIn()
        guard = Guard(inner)
        upload = b"--xyz\r\n" + b"x" * 5000 + b"\r\n--xyz--\r\n"
        first = asyncio.create_task(call(guard, "POST", "/classify", upload))
        assert await asyncio.wait_for(inner.entered.get(), 5) == "/classify"
        status, headers, body, reads = await call(guard, "POST", "/classify", upload)
        assert status == 429 and headers["retry-after"] == "4"
        answer = json.loads(body)
        assert answer["retry_after_s"] == 4 and "serve.max_concurrent_requests" in answer["error"]
        assert reads == 2 and len(inner.bodies) == 1  # drained (read and dropped), never handed on
        # A client that waits for "100 Continue" has sent nothing: answered at once, nothing read.
        status, _, _, reads = await call(guard, "POST", "/classify", upload, {"expect": "100-continue"})
        assert (status, reads) == (429, 0)
        for path in ("/readyz", "/livez"):
            status, _, _, _ = await asyncio.wait_for(call(guard, "GET", path), 5)
            assert status == 200
        inner.release.set()
        assert (await first)[0] == 200
        assert guard.admission.in_progress == 0
        # An OCR backlog at its bound: 503, whatever the upload holds.
        guard.admission.queued_pages = lambda: 3
        status, headers, body, _ = await call(guard, "POST", "/classify", upload)
        assert status == 503 and headers["retry-after"] == "4"
        assert json.loads(body)["error"].startswith("OCR backlog full: 3 pages wait for Tesseract")
        assert (await call(guard, "GET", "/readyz"))[0] == 200
        assert guard.admission.shed == {429: 2, 503: 1}

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------- service in-process


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_timed_out_request_keeps_its_slot_until_its_thread_is_done(
    service_env: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound counts work, not connections: after a 504, an extraction busy in work that cannot stop halfway
    (MuPDF parsing a page, here a 3 s stand-in) keeps the request's slot until its thread is done."""
    import serving.service
    from tests.serving.test_http import make_client, post

    params = serve_params(max_concurrent_requests=1, request_timeout_s=1)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("DOCCLASS_PARAMS", str(path))
    real = serving.service.extract_upload
    busy = threading.Event()

    def extract(data: bytes, name: str, *args: Any) -> Any:
        if name == "slow.pdf":
            busy.set()
            time.sleep(3)  # deaf to the request's cancel event, as MuPDF is inside one page
            busy.clear()
        return real(data, name, *args)

    monkeypatch.setattr(serving.service, "extract_upload", extract)
    document = service_env.doc("invoice")
    with make_client() as client:
        timed_out = post(client, "slow.pdf", document.read_bytes())
        assert timed_out.status_code == 504, timed_out.text
        assert busy.is_set()  # its thread still works
        refused = post(client, document.name, document.read_bytes())
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == str(params["serve"]["retry_after_s"])
        deadline = time.monotonic() + 10
        while busy.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the thread returns once its (stand-in) page is done
        answered = post(client, document.name, document.read_bytes())
        assert answered.status_code == 200, answered.text


# ---------------------------------------------------------------------------------------- real service


@pytest.fixture(scope="module")
def small_server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service (one worker) allowing 2 requests in progress and 2 OCR pages waiting."""
    folder = tmp_path_factory.mktemp("overload")
    params = serve_params(max_concurrent_requests=2, max_queued_pages=2, retry_after_s=1)
    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    port = free_port()
    make_vars = {
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": "1",
        "SERVE_DATA": str(folder / "serve"),
        "BENTOML_BIN": str(Path(sys.executable).with_name("bentoml")),
    }
    env = environment(
        **world.env(DOCCLASS_PARAMS=str(params_file)), BENTOML_DO_NOT_TRACK="true", DOCCLASS_API_KEY=None
    )
    with MakeServer("serving/bentoml.mk", "serve", make_vars, env, timeout_s=180):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_real_service_sheds_overload_and_stays_ready(small_server: str, world: World) -> None:
    scans = [("scan.png", scanned_png(OK_WIDTH, height=700 + n)) for n in range(6)]
    pdfs = [(world.doc(label).name, world.doc(label).read_bytes()) for label in ("invoice", "w9", "payslip")]
    uploads = [*scans, *pdfs, *scans[:3]]
    start = threading.Barrier(len(uploads) + 1)
    answers: list[httpx.Response] = []
    errors: list[str] = []

    def send(name: str, data: bytes) -> None:
        start.wait(10)
        try:
            answers.append(httpx.post(f"{small_server}/classify", files={"file": (name, data)}, timeout=120))
        except httpx.HTTPError as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=send, args=upload) for upload in uploads]
    for thread in threads:
        thread.start()
    start.wait(10)
    time.sleep(0.3)
    ready = httpx.get(f"{small_server}/readyz", timeout=5)  # in the middle of the overload
    live = httpx.get(f"{small_server}/livez", timeout=5)
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert ready.status_code == 200 and live.status_code == 200
    statuses = sorted(response.status_code for response in answers)
    assert set(statuses) <= {200, 429, 503} and 200 in statuses, statuses
    shed = [response for response in answers if response.status_code != 200]
    assert len(shed) >= len(uploads) - 2 - 2, statuses  # 2 in progress, and a couple more once they end
    for response in shed:
        body = response.json()
        assert response.headers["retry-after"] == "1", response.headers
        assert body["retry_after_s"] == 1 and "expected a retry after 1 s" in body["error"], body
    assert httpx.get(f"{small_server}/readyz", timeout=5).status_code == 200
    after = httpx.post(f"{small_server}/classify", files={"file": pdfs[0]}, timeout=60)
    assert after.status_code == 200 and after.json()["documents"][0]["label"]


def test_the_guard_keeps_no_upload_once_it_was_handed_on(guard_params: None) -> None:
    """BentoML keeps every request's context (its Request, so the guard's receive) for traffic.timeout, 300 s, in
    a timer it never cancels: the soak saw the worker's RSS creep by the uploads of the last 5 minutes. Once the
    app has read the upload, the guard's receive holds none of it."""
    import tracemalloc

    from serving.service import Guard

    class Keeper(StandIn):
        """Reads the upload and keeps the receive it was given, as BentoML's long-lived context does."""

        def __init__(self) -> None:
            super().__init__()
            self.release.set()
            self.kept: list[Any] = []

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            self.kept.append(receive)
            await super().__call__(scope, receive, send)
            self.bodies.clear()

    async def scenario() -> int:
        guard = Guard(Keeper())
        upload = b"--xyz\r\n" + b"x" * 2**20 + b"\r\n--xyz--\r\n"
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(20):
                assert (await call(guard, "POST", "/classify", upload))[0] == 200
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    kept = asyncio.run(scenario())
    assert kept < 4 * 2**20, (
        f"{kept / 2**20:.0f} MB of 20 uploads of 1 MB still held after they were answered"
    )


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_an_idle_connection_outlives_the_clients_keep_alive(small_server: str) -> None:
    """Found by the soak: uvicorn closed idle connections after 5 s, httpx's pool reuses them for 5 s, and a request
    sent as the server closed its connection was reset (httpx.ReadError, no answer). The service keeps them 75 s
    (SERVE_KEEP_ALIVE, serving/bentoml.mk), longer than the common clients' pools."""
    import http.client

    host, port = small_server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/readyz")
        first = connection.getresponse()
        first.read()
        assert first.status == 200 and not first.will_close
        time.sleep(6.5)  # idle past httpx's keepalive_expiry (5 s) and uvicorn's default (5 s)
        try:
            connection.request("GET", "/readyz")
            second = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError) as error:
            raise AssertionError(f"the idle connection was closed by the service: {error!r}") from error
        second.read()
        assert second.status == 200
    finally:
        connection.close()

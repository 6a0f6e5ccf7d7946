"""Admission control of ``POST /classify``: overload is shed at the door, never queued without bound.

A request is admitted when fewer than ``serve.max_concurrent_requests`` requests are in progress in this worker and
fewer than ``serve.max_queued_pages`` OCR pages wait in its OCR pool (:attr:`pipelines.ocr.OcrPool.queued`).
Otherwise it is answered at once, before its upload is read, with a JSON reason and ``Retry-After``:

- 429 Too Many Requests: the worker already has its share of requests in progress;
- 503 Service Unavailable: the OCR backlog is full (the server's state, whatever this request holds).

A request stays in progress until its last piece of work has ended: the answer sent, and any thread still working
for it (an extraction finishing its running OCR pages after a 504) done too. So the bound holds for the work, not
only for the open connections (BentoML's own ``traffic.max_concurrency`` frees its slot at its timeout while the
work goes on, answers a bare ``{"error": "Too many requests"}`` without ``Retry-After``, and counts every route).

Pure: no BentoML, no I/O; thread-safe (slots are released from worker threads). The ASGI side is
:class:`serving.service.Guard`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from serving.postprocess import error_body

logger = logging.getLogger("docclass.serving")

LOG_EVERY_S = 10.0  # shedding is logged at most this often (it comes in bursts)


@dataclass(frozen=True)
class Refusal:
    """Why a request was not admitted: its status, the reason and the seconds to wait before retrying."""

    status: int
    reason: str
    retry_after_s: int

    @property
    def body(self) -> dict[str, Any]:
        """The JSON answer (the shape of every error answer, plus ``retry_after_s``)."""
        return error_body(self.reason, retry_after_s=self.retry_after_s)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Ticket:
    """The slot of one admitted request: freed when every holder has let go (the request itself, and each thread
    working for it that took a :meth:`hold`)."""

    def __init__(self, free: Callable[[], None]) -> None:
        self._free = free
        self._holders = 1
        self._lock = threading.Lock()

    def hold(self) -> None:
        """One more holder (a thread about to work for the request).

        Raises:
            RuntimeError: the slot was already freed (a hold taken too late would not be counted).
        """
        with self._lock:
            if self._holders == 0:
                raise RuntimeError(
                    "the request's slot was already freed: take the hold before the work starts"
                )
            self._holders += 1

    def release(self) -> None:
        """One holder lets go; the last one frees the slot."""
        with self._lock:
            if self._holders == 0:
                raise RuntimeError("the request's slot was released more often than it was held")
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._free()

    @property
    def holders(self) -> int:
        return self._holders


# The ticket of the request being served, set by the middleware for the code below it (and threads it starts with
# a copied context, such as asyncio.to_thread).
CURRENT_TICKET: ContextVar[Ticket | None] = ContextVar("docclass_admission_ticket", default=None)


class Admission:
    """The admission decision of one worker.

    Args:
        max_requests: requests in progress at most (params serve.max_concurrent_requests).
        max_queued_pages: OCR pages waiting in the pool at most (params serve.max_queued_pages).
        retry_after_s: what ``Retry-After`` says (params serve.retry_after_s).
        queued_pages: how many OCR pages wait now (``lambda: ocr_pool().queued``).
        clock: monotonic seconds (tests replace it).
    """

    def __init__(
        self,
        max_requests: int,
        max_queued_pages: int,
        retry_after_s: int,
        queued_pages: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_requests < 1 or max_queued_pages < 1 or retry_after_s < 1:
            raise ValueError(
                f"admission limits must be >= 1: got max_requests={max_requests}, "
                f"max_queued_pages={max_queued_pages}, retry_after_s={retry_after_s}"
            )
        self.max_requests = max_requests
        self.max_queued_pages = max_queued_pages
        self.retry_after_s = retry_after_s
        self.queued_pages = queued_pages
        self.clock = clock
        self._lock = threading.Lock()
        self._in_progress = 0
        self.admitted = 0
        self.shed: Counter[int] = Counter()
        self._unlogged: Counter[int] = Counter()
        self._logged_at = float("-inf")

    @property
    def in_progress(self) -> int:
        return self._in_progress

    def admit(self) -> Ticket | Refusal:
        """A ticket for a request admitted now (release it when the request's work is over), or why not."""
        refusal: Refusal | None = None
        with self._lock:
            if self._in_progress >= self.max_requests:
                refusal = Refusal(
                    status=429,  # the client's share: too many at once
                    reason=f"too many requests: {self._in_progress} in progress in this worker, the limit is "
                    f"{self.max_requests} (params serve.max_concurrent_requests): expected a retry after "
                    f"{self.retry_after_s} s",
                    retry_after_s=self.retry_after_s,
                )
            else:
                queued = self.queued_pages()
                if queued >= self.max_queued_pages:
                    refusal = Refusal(
                        status=503,  # the server's state, whatever this request holds
                        reason=f"OCR backlog full: {queued} pages wait for Tesseract in this worker, the limit is "
                        f"{self.max_queued_pages} (params serve.max_queued_pages): expected a retry after "
                        f"{self.retry_after_s} s",
                        retry_after_s=self.retry_after_s,
                    )
                else:
                    self._in_progress += 1
                    self.admitted += 1
            if refusal is not None:
                self.shed[refusal.status] += 1
                self._unlogged[refusal.status] += 1
        if refusal is None:
            return Ticket(self._free)
        self._log_shedding(refusal)
        return refusal

    def _free(self) -> None:
        with self._lock:
            if self._in_progress == 0:
                raise RuntimeError("admission slot freed twice")
            self._in_progress -= 1

    def _log_shedding(self, latest: Refusal) -> None:
        now = self.clock()
        with self._lock:
            if now - self._logged_at < LOG_EVERY_S:
                return
            self._logged_at = now
            counts, self._unlogged = dict(self._unlogged), Counter()
        # WARNING: BentoML's root logger shows warnings only, and an operator must see that the service sheds.
        logger.warning(
            "shedding load: %s since the last report; latest: %s",
            ", ".join(f"{count} x {status}" for status, count in sorted(counts.items())),
            latest.reason,
        )

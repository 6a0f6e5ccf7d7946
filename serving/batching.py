"""Adaptive batching of page inference across concurrent requests of one worker.

BentoML's own adaptive batching (``@bentoml.api(batchable=True)``) batches whole API calls with one input
argument; here one request carries an upload, a version and options, is extracted first and may hold several
documents, so the batching happens one level down: requests put their extracted documents in a queue, a single
consumer takes whatever arrived (up to ``max_batch_size`` documents, waiting at most ``max_latency_ms`` for more
once a first request is there), groups it by model version and runs one ``pipelines.classify.classify`` call per
group in one inference thread (each request extracted its documents before, with ``extract_inputs``). Under no load a request waits for nobody; under load batches grow by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.postprocess import split_by_counts

logger = logging.getLogger(__name__)

# predict(model, documents) -> one result per document, in order (pipelines.classify.classify).
Predict = Callable[[Any, Sequence[Any]], list[Any]]


@dataclass
class _Item:
    model: Any
    docs: Sequence[Any]
    future: asyncio.Future[list[Any]]
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Collects ``(model, documents)`` from concurrent requests and predicts them in batches.

    Args:
        predict: ``predict(model, docs) -> one result per doc`` (blocking; runs in a worker thread).
        max_batch_size: documents per call at most (a larger single request still goes alone).
        max_latency_ms: how long the consumer waits for more requests after the first.
    """

    def __init__(self, predict: Predict, max_batch_size: int, max_latency_ms: float) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.batched_docs = 0
        self.largest_batch = 0

    async def submit(self, model: Any, docs: Sequence[Any]) -> list[Any]:
        """Predict ``docs`` with ``model`` in the next batch; returns one result per document."""
        if not docs:
            return []
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._consume(self._queue))
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(model, docs, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _consume(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            first = await queue.get()
            items, size = [first], len(first.docs)
            deadline = time.perf_counter() + self.max_latency
            while size < self.max_batch_size:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except TimeoutError:
                        break
                items.append(item)
                size += len(item.docs)
            await self._run(items)

    async def _run(self, items: list[_Item]) -> None:
        groups: dict[int, list[_Item]] = {}
        for item in items:
            groups.setdefault(id(item.model), []).append(item)
        for group in groups.values():
            docs = [doc for item in group for doc in item.docs]
            self.batches += 1
            self.batched_docs += len(docs)
            self.largest_batch = max(self.largest_batch, len(docs))
            try:
                results = await asyncio.to_thread(self.predict, group[0].model, docs)
                parts = split_by_counts(results, [len(item.docs) for item in group])
            except Exception as error:  # noqa: BLE001 - handed to every waiting request
                for item in group:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            for item, part in zip(group, parts, strict=True):
                if not item.future.done():
                    item.future.set_result(part)

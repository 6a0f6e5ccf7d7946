"""The models a service worker holds: the champion, followed by polling the registry alias, and pinned versions in
a small LRU cache.

A swap is one reference assignment: a request takes the current :class:`LoadedModel` once and keeps it, so it
finishes on the model it started with while the next request already gets the new champion. A new model is
downloaded, verified against the digest registered with it, and loaded before the swap; a failed load (also a
tampered or unregistered artefact: nothing of it is unpickled) keeps the old champion serving and is retried next
poll.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipelines.models.base import ModelLoadError
from serving.registry import VerifiedModel

logger = logging.getLogger(__name__)

PARENT_CHECK_S = 0.5  # how often a worker's poller looks whether the service's main process is still there


class RegistryLike(Protocol):
    """What the store needs of :class:`serving.registry.RegistryReader`."""

    def champion_number(self) -> int | None: ...

    def load_version(self, number: int, workdir: Path) -> VerifiedModel: ...


class NoModelError(LookupError):
    """No champion yet (version 1.0)."""


class UnknownVersionError(LookupError):
    """A pinned version that does not exist or cannot be loaded."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and the registry version it came from."""

    number: int
    model: Any = field(repr=False)
    meta: dict[str, Any] = field(repr=False)
    loaded_at: float
    splitter: Any = field(default=None, repr=False)  # the page splitter trained with the model, if any

    @property
    def version(self) -> str:
        return f"1.{self.number}"


def load_from_registry(registry: RegistryLike, number: int, workdir: Path) -> LoadedModel:
    """Version ``number`` downloaded under ``workdir``, verified against its registered digest, loaded.

    Raises:
        ModelIntegrityError: the artefacts do not match the registered digest (nothing was unpickled).
        ModelLoadError, RegistryError: the version cannot be found or loaded.
    """
    verified = registry.load_version(number, workdir)
    return LoadedModel(
        number=number,
        model=verified.model,
        meta=verified.meta,
        loaded_at=time.time(),
        splitter=verified.splitter,
    )


class ModelStore:
    """Champion (hot-swapped) and pinned versions (LRU) of one worker.

    Args:
        registry: the MLflow registry read side (or anything with ``champion_number`` / ``load_version``).
        cache_versions: pinned versions kept besides the champion.
        workdir: scratch folder for downloads.
        loader: ``loader(registry, number, workdir) -> LoadedModel`` (tests replace it).
    """

    def __init__(
        self,
        registry: RegistryLike,
        cache_versions: int,
        workdir: Path,
        loader: Callable[[RegistryLike, int, Path], LoadedModel] = load_from_registry,
    ) -> None:
        self.registry = registry
        self.cache_versions = cache_versions
        self.workdir = workdir
        self.loader = loader
        self._champion: LoadedModel | None = None
        self._pinned: OrderedDict[int, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()  # guards _pinned and _loading
        self._loading: dict[int, threading.Lock] = {}
        self._refresh_lock = threading.Lock()
        self.last_poll: float | None = None
        self.last_error: str | None = None
        self.swaps = 0
        # a champion whose artefacts this process refused (integrity, library or model code): not downloaded
        # again at every poll while the alias stays on it
        self._refused: tuple[int, str] | None = None

    # ------------------------------------------------------------------------------------------- champion

    @property
    def champion(self) -> LoadedModel | None:
        """The current champion (one atomic read), or None before the first model."""
        return self._champion

    def require_champion(self) -> LoadedModel:
        model = self._champion
        if model is None:
            raise NoModelError("no champion")
        return model

    def refresh(self) -> bool:
        """Read the alias; load and swap in a new champion. Returns True when the champion changed.

        Raises:
            Exception: whatever the registry or the loader raise (the poller logs it and keeps the old model).
        """
        with self._refresh_lock:
            number = self.registry.champion_number()
            self.last_poll = time.time()
            current = self._champion
            if number is None:
                if current is not None:
                    logger.warning("champion alias removed: serving 1.0 (no model)")
                    self._champion = None
                    self.swaps += 1
                    return True
                return False
            if current is not None and current.number == number:
                return False
            if self._refused is not None and self._refused[0] == number:
                raise UnknownVersionError(self._refused[1])
            try:
                loaded = self._get_or_load(number)
            except UnknownVersionError as error:
                if isinstance(error.__cause__, ModelLoadError):  # the same bytes will be refused again
                    self._refused = (number, str(error))
                raise
            self._champion = loaded  # the swap: requests holding the old one keep it
            self.swaps += 1
            logger.info("champion is now %s (was %s)", loaded.version, current.version if current else "1.0")
            return True

    # --------------------------------------------------------------------------------------------- pinned

    def get(self, number: int) -> LoadedModel:
        """Version ``number``: the champion when it is that one, else from the LRU cache, loaded on demand.

        Raises:
            UnknownVersionError: no such version, or it cannot be loaded.
        """
        champion = self._champion
        if champion is not None and champion.number == number:
            return champion
        return self._get_or_load(number)

    def _get_or_load(self, number: int) -> LoadedModel:
        with self._lock:
            if number in self._pinned:
                self._pinned.move_to_end(number)
                return self._pinned[number]
            gate = self._loading.setdefault(number, threading.Lock())
        with gate:  # one download per version even when many requests ask at once
            with self._lock:
                if number in self._pinned:
                    return self._pinned[number]
            try:
                loaded = self.loader(self.registry, number, self.workdir)
            except Exception as error:  # noqa: BLE001 - any registry / load failure means "cannot serve it"
                raise UnknownVersionError(f"version 1.{number} cannot be loaded: {error}") from error
            with self._lock:
                self._pinned[number] = loaded
                self._pinned.move_to_end(number)
                while len(self._pinned) > self.cache_versions:
                    evicted, _ = self._pinned.popitem(last=False)
                    logger.info("evicted version 1.%s from the cache", evicted)
                self._loading.pop(number, None)
            return loaded

    def cached_versions(self) -> list[str]:
        with self._lock:
            return [f"1.{n}" for n in self._pinned]


def terminate_this_process() -> None:
    """Ask this process to stop cleanly (SIGTERM: the server runs its shutdown hooks)."""
    os.kill(os.getpid(), signal.SIGTERM)


class ChampionPoller:
    """A daemon thread per worker that calls ``store.refresh()`` every ``interval`` seconds.

    It also ends a worker whose parent is gone. BentoML's process manager (circus) starts each worker in a session
    of its own, so when the service's main process is killed (SIGKILL of its process group, the OOM killer) nothing
    stops the workers: they would go on serving, unmanaged, on the port the next start needs. The parent is checked
    every ``PARENT_CHECK_S`` seconds; once it has changed, ``on_orphaned`` is called (default: SIGTERM to this
    process) and the thread ends.
    """

    def __init__(
        self, store: ModelStore, interval: float, on_orphaned: Callable[[], None] = terminate_this_process
    ) -> None:
        self.store = store
        self.interval = interval
        self.on_orphaned = on_orphaned
        self._parent = os.getppid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        due = time.monotonic() + self.interval
        while not self._stop.wait(min(PARENT_CHECK_S, max(0.0, due - time.monotonic()))):
            if os.getppid() != self._parent:
                logger.warning(
                    "the service's main process (pid %s) is gone: stopping this worker (pid %s)",
                    self._parent,
                    os.getpid(),
                )
                self.on_orphaned()
                return
            if time.monotonic() < due:
                continue
            self._poll()
            due = time.monotonic() + self.interval

    def _poll(self) -> None:
        try:
            self.store.refresh()
            self.store.last_error = None
        except Exception as error:  # noqa: BLE001 - a registry outage must not kill the poller
            message = f"{type(error).__name__}: {error}"
            if message != self.store.last_error:  # once per distinct failure, not at every poll
                logger.warning("champion poll failed, still serving the current model: %s", message)
            self.store.last_error = message

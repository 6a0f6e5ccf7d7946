"""Fault suite (issue 13): the real service (`make serve-up`) killed with SIGKILL while the champion moves, and a
champion alias pointing at a version whose registration never completed.

Restarted, the service serves the champion the registry names; a version registered without ``complete=true`` (a
round that crashed between ``register`` and ``mark_complete``) is never served, neither as champion nor pinned,
and is served as soon as its round completes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.make_server import MakeServer, environment, free_port
from tests.serving.conftest import World

pytestmark = pytest.mark.faults


@dataclass
class Service:
    """One `make serve-up` service on its own port and data folder, against its own registry."""

    url: str
    server: MakeServer
    data: Path
    registry: Any  # flows.registry.Registry
    versions: list[int]  # the two complete versions, copies of the world's 1.1 and 1.2
    processes: list[psutil.Process] = field(default_factory=list)  # every process of every start

    def pid(self) -> int:
        return int((self.data / "server.pid").read_text())

    def up(self) -> None:
        """`make serve-up`, then note its processes: the workers live in sessions of their own, outside the
        process group `serve-down` stops, so a test that fails after a kill must stop them by pid."""
        self.server.up()
        main = psutil.Process(self.pid())
        self.processes += [main, *main.children(recursive=True)]

    def stop(self) -> None:
        """`make serve-down`, and any process of an earlier start still running (an orphaned worker)."""
        self.server.down()
        for process in self.processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.is_running():  # the same process (pid and start time), not a reused pid
                    process.kill()

    def classify(self, doc: Path, version: str = "") -> httpx.Response:
        data = {"version": version} if version else {}
        return httpx.post(
            f"{self.url}/classify", files={"file": (doc.name, doc.read_bytes())}, data=data, timeout=60
        )

    def served(self) -> str:
        return str(httpx.get(f"{self.url}/versions", timeout=10).json()["worker"]["served"])

    def worker(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/versions", timeout=10).json()["worker"])


def copy_version(world: World, number: int, registry: Any, work: Path, complete: bool = True) -> int:
    """Register world version ``number``'s model again in ``registry``: with ``complete=False`` as a round that
    crashed before :meth:`~flows.registry.Registry.mark_complete` leaves it (digest and tags, no ``complete``)."""
    model_dir = world.registry.download_model(number, work / f"src-{number}-{len(list(work.glob('*')))}")
    run = registry.start_run(f"copy of 1.{number}", {"kind": "test"})
    digest = registry.log_model(run, model_dir)
    registry.finish_run(run)
    tags = world.registry.version(number).tags
    copied = registry.register(run, tags, digest=digest)
    if complete:
        registry.mark_complete(copied)
    return copied


@pytest.fixture(scope="module")
def service(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from flows.registry import Registry

    root = tmp_path_factory.mktemp("faults-service")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri, "docclass", "docclass")
    versions = [copy_version(world, n, registry, root / "work") for n in (world.v1, world.v2)]
    registry.move_champion(versions[0], reason="first", by="test", automatic=False)
    port, data = free_port(), root / "serve"
    make_vars = {
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": "1",
        "SERVE_DATA": str(data),
        "BENTOML_BIN": str(Path(sys.executable).with_name("bentoml")),
    }
    env = environment(
        DOCCLASS_MLFLOW_TRACKING_URI=uri,
        DOCCLASS_PARAMS=str(world.params_file),  # serve.poll_seconds 0.5
        DOCCLASS_DATA_DIR=str(root / "data"),
        BENTOML_DO_NOT_TRACK="true",
        DOCCLASS_API_KEY=None,
    )
    service = Service(
        f"http://127.0.0.1:{port}",
        MakeServer("serving/bentoml.mk", "serve", make_vars, env, timeout_s=180),
        data,
        registry,
        versions,
    )
    try:
        service.up()
        yield service
    finally:
        service.stop()


def test_a_worker_whose_parent_is_gone_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit of the fix the real-service tests prove: the poller notices its parent change and stops the worker."""
    from serving import models

    stopped = threading.Event()
    store = models.ModelStore(registry=None, cache_versions=1, workdir=Path("unused"))  # type: ignore[arg-type]
    poller = models.ChampionPoller(store, interval=3600, on_orphaned=stopped.set)
    monkeypatch.setattr(models.os, "getppid", lambda: -1)  # the parent it started under is gone
    poller.start()
    assert stopped.wait(5 * models.PARENT_CHECK_S + 5)
    poller.stop()
    assert store.last_poll is None  # it stopped the worker without polling the registry


def kill_group(pid: int) -> None:
    """SIGKILL the service's whole process group (serve-up starts it in its own session) and wait for it."""
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pid} still alive 15 s after SIGKILL")


def wait_port_closed(service: Service, timeout_s: float = 10.0) -> float:
    """Seconds until nothing answers on the service's port any more: its workers (each in a session of its own,
    outside the killed group) must notice that the main process is gone and stop."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            httpx.get(f"{service.url}/readyz", timeout=1)
        except httpx.TransportError:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"the service still answers {timeout_s:.0f} s after its process group was killed")


def wait_served(service: Service, version: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while service.served() != version:
        assert time.monotonic() < deadline, f"the service did not serve {version} within {timeout_s:.0f} s"
        time.sleep(0.1)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_during_a_promotion_it_restarts_on_the_champion(service: Service, world: World) -> None:
    old, new = service.versions
    doc = world.doc("invoice")
    assert service.classify(doc).json()["model_version"] == f"1.{old}"
    history = len(service.registry.history())
    # The champion moves while the whole process group is killed (the service may be reading the alias or
    # downloading the new model at that moment).
    mover = threading.Thread(
        target=service.registry.move_champion,
        args=(new,),
        kwargs={"reason": "fault", "by": "test", "automatic": False},
    )
    mover.start()
    time.sleep(0.2)
    kill_group(service.pid())
    mover.join(60)
    print(f"orphaned worker gone after {wait_port_closed(service):.1f} s")
    # The promotion is whole and recorded once, whatever the service was doing.
    assert service.registry.champion_number() == new
    moves = [(e.from_version, e.to_version) for e in service.registry.history()[history:]]
    assert moves == [(old, new)]
    started = time.monotonic()
    service.up()  # the stale pid file of the killed service does not stop the restart
    print(f"restart after SIGKILL {time.monotonic() - started:.1f} s")
    answer = service.classify(doc).json()
    assert (answer["model_version"], answer["champion"]) == (f"1.{new}", f"1.{new}")
    assert (
        answer["documents"][0]["label"] == world.shift["invoice"]
    )  # the new model's answer, not the old one's


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_incomplete_version_is_never_served(service: Service, world: World) -> None:
    _, champion = service.versions
    doc = world.doc("w9")
    wait_served(service, f"1.{champion}")
    # A round crashed between register and mark_complete; someone points the alias at its version anyway
    # (`docclass promote` refuses: the alias is set directly, as a bad script or a partial restore would).
    incomplete = copy_version(world, world.v1, service.registry, service.data.parent / "work", complete=False)
    service.registry.client.set_registered_model_alias("docclass", "champion", str(incomplete))
    time.sleep(2.5)  # five polls of the running service
    answers = [service.classify(doc).json()["model_version"] for _ in range(5)]
    assert answers == [f"1.{champion}"] * 5, answers
    assert f"1.{incomplete} is incomplete" in (service.worker()["poll_error"] or "")
    pinned = service.classify(doc, version=f"1.{incomplete}")
    assert pinned.status_code == 404 and "incomplete" in pinned.json()["error"], pinned.text
    # Killed and restarted while the alias points at it: still not served (no model until it completes).
    kill_group(service.pid())
    wait_port_closed(service)
    service.up()
    refused = service.classify(doc)
    assert refused.status_code == 503, refused.text
    assert service.worker()["served"] == "1.0"
    # The round completes the version: the service converges on it without a restart.
    service.registry.mark_complete(incomplete)
    wait_served(service, f"1.{incomplete}")
    assert service.classify(doc).json()["model_version"] == f"1.{incomplete}"

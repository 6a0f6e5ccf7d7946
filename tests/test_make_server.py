"""mk/server.mk, the one start/stop recipe of every server target, driven through a throwaway fragment that runs
Python's http.server on a free loopback port; and the loop fragment's ports read from Settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.make_server import ROOT, MakeServer, environment, free_port

FRAGMENT = """\
include {root}/mk/server.mk
DUMMY_PORT ?= 0
DUMMY_DATA ?= {data}
DUMMY_HEALTH ?= http://127.0.0.1:$(DUMMY_PORT)/
DUMMY_TIMEOUT ?= 10
DUMMY_COMMAND ?= {python} -m http.server $(DUMMY_PORT) --bind 127.0.0.1
dummy-up:
\t$(call start-server,dummy server,$(DUMMY_DATA)/server.pid,$(DUMMY_DATA)/server.log,$(DUMMY_HEALTH),$(DUMMY_TIMEOUT),$(DUMMY_COMMAND),DUMMY_PORT)
\t@echo "dummy at $(DUMMY_PORT)"
dummy-down:
\t$(call stop-server,dummy server,$(DUMMY_DATA)/server.pid)
"""


def run(fragment: Path, target: str, **make_vars: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", "-f", str(fragment), target]
    command += [f"{key}={value}" for key, value in make_vars.items()]
    return subprocess.run(command, cwd=fragment.parent, capture_output=True, text=True, timeout=60)


@pytest.fixture
def fragment(tmp_path: Path) -> Path:
    path = tmp_path / "dummy.mk"
    path.write_text(FRAGMENT.format(root=ROOT, python=sys.executable, data=tmp_path / "data"))
    return path


def test_start_wait_already_running_and_stop(fragment: Path) -> None:
    port = str(free_port())
    data = fragment.parent / "data"
    first = run(fragment, "dummy-up", DUMMY_PORT=port)
    assert first.returncode == 0, first.stderr
    assert "dummy server is up" in first.stdout and f"dummy at {port}" in first.stdout
    pid = int((data / "server.pid").read_text())
    try:
        again = run(fragment, "dummy-up", DUMMY_PORT=port)
        assert again.returncode == 0 and f"dummy server already running (pid {pid})" in again.stdout
        # the process runs in its own session, so `-down` stops its whole group and nothing else
        assert os.getsid(pid) == pid
    finally:
        stopped = run(fragment, "dummy-down", DUMMY_PORT=port)
    assert stopped.returncode == 0 and f"dummy server stopped (pid {pid})" in stopped.stdout
    assert not (data / "server.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert f"is not running (no {data}/server.pid)" in run(fragment, "dummy-down").stdout


def test_a_busy_port_is_an_error_naming_the_variable_to_set(fragment: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(fragment, "dummy-up", DUMMY_PORT=str(port))
    assert result.returncode != 0
    assert (
        f"error: port {port} on 127.0.0.1 is in use: expected it free for dummy server (set DUMMY_PORT)"
        in result.stderr
    )
    assert not (fragment.parent / "data" / "server.pid").exists()


def test_a_server_that_dies_shows_its_log_tail(fragment: Path) -> None:
    command = f"{sys.executable} -c 'import sys; sys.exit(\"cannot open the database\")'"
    result = run(fragment, "dummy-up", DUMMY_PORT=str(free_port()), DUMMY_COMMAND=command)
    assert result.returncode != 0
    assert "error: dummy server exited before answering" in result.stderr
    assert "cannot open the database" in result.stderr  # the log's last lines
    assert not (fragment.parent / "data" / "server.pid").exists()


def test_a_server_that_never_answers_is_stopped_after_the_timeout(fragment: Path) -> None:
    command = f"{sys.executable} -c 'import time; print(\"still starting\", flush=True); time.sleep(60)'"
    result = run(fragment, "dummy-up", DUMMY_PORT=str(free_port()), DUMMY_COMMAND=command, DUMMY_TIMEOUT="2")
    assert result.returncode != 0
    assert "did not answer http://127.0.0.1:" in result.stderr and "within 2 s" in result.stderr
    assert "still starting" in result.stderr
    assert not (fragment.parent / "data" / "server.pid").exists()


def test_a_live_server_that_stops_answering_is_not_reported_as_running(fragment: Path) -> None:
    port = str(free_port())
    with MakeServer(str(fragment), "dummy", {"DUMMY_PORT": port}):
        result = run(fragment, "dummy-up", DUMMY_PORT=port, DUMMY_HEALTH=f"http://127.0.0.1:{port}/missing")
        assert result.returncode != 0
        assert "runs but http://127.0.0.1:" in result.stderr and "make dummy-down first" in result.stderr


def test_the_mail_catcher_and_webhook_ports_come_from_settings(tmp_path: Path) -> None:
    env = environment(DOCCLASS_SMTP_PORT="2626", DOCCLASS_WEBHOOK_PORT="8799")
    command = ["make", "--no-print-directory", "-n", "-f", "flows/loop.mk", "mail-up", "trigger-up"]
    result = subprocess.run(
        [*command, f"LOOP_DATA={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "flows.mailcatcher --host 127.0.0.1 --port 2626" in result.stdout
    assert "trigger-webhook --host 127.0.0.1 --port 8799" in result.stdout

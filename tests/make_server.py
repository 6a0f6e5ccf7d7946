"""Servers in tests start and stop through the same make targets as `make up` (mk/server.mk: pid file, health wait,
log tail on failure), with ports and data folders given as make variables."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MakeServer:
    """One server of a make fragment, e.g. ``MakeServer("serving/bentoml.mk", "serve", {"SERVE_PORT": "3001"})``
    runs ``make -f serving/bentoml.mk serve-up SERVE_PORT=3001`` and ``serve-down``.

    ``env`` replaces the environment make and the server get (default: this process's).
    """

    makefile: str
    name: str  # targets <name>-up and <name>-down
    make_vars: Mapping[str, str]
    env: Mapping[str, str] | None = None
    timeout_s: float = 900

    def make(self, target: str) -> subprocess.CompletedProcess[str]:
        """Run one target; AssertionError with make's output (which holds the server log's tail) on failure."""
        command = ["make", "--no-print-directory", "-f", self.makefile, target]
        command += [f"{key}={value}" for key, value in self.make_vars.items()]
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=dict(self.env) if self.env is not None else None,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def up(self) -> subprocess.CompletedProcess[str]:
        """Start and wait until healthy; a failed start is stopped and cleaned up by the target itself."""
        return self.make(f"{self.name}-up")

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.make(f"{self.name}-down")

    def restart(self) -> None:
        self.down()
        self.up()

    def __enter__(self) -> MakeServer:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def environment(**changes: str | None) -> dict[str, str]:
    """This process's environment with ``changes`` applied (None removes a variable)."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env

"""A real Label Studio server for the labeling and end-to-end tests: started once per test session through the
Makefile target (temporary data dir and port, its own .env), stopped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.make_server import ROOT, MakeServer

LS_PORT = os.environ.get("DOCCLASS_TEST_LS_PORT", "8089")


@dataclass
class LabelStudioServer:
    url: str
    server: (
        MakeServer  # `make -f labeling/labelstudio.mk labelstudio-up|down` with the test's port and folders
    )
    env: dict[str, str] = field(default_factory=dict)  # DOCCLASS_* values written by the target

    def restart(self) -> None:
        self.server.restart()


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    root = tmp_path_factory.mktemp("labelstudio")
    env_file = root / "env"
    make_vars = {"LS_PORT": LS_PORT, "LS_DATA": str(root / "data"), "LS_ENV_FILE": str(env_file)}
    server = MakeServer("labeling/labelstudio.mk", "labelstudio", make_vars)
    started = server.up()
    try:
        label_studio = LabelStudioServer(f"http://127.0.0.1:{LS_PORT}", server, read_env_file(env_file))
        token = label_studio.env["DOCCLASS_LABEL_STUDIO_TOKEN"]
        assert token not in started.stdout + started.stderr, "the API token was printed"
        yield label_studio
    finally:
        server.down()
    assert token not in (root / "data" / "server.log").read_text(), "the API token reached the server log"


@pytest.fixture()
def labeling_env(
    label_studio: LabelStudioServer, tmp_path: Path, request: pytest.FixtureRequest
) -> dict[str, str]:
    """DOCCLASS_* settings for one test: its own project title and data dir (set in os.environ too)."""
    title = f"test-{request.node.name}"[:50]
    env = {
        **label_studio.env,
        "DOCCLASS_DATA_DIR": str(tmp_path / "data"),
        "DOCCLASS_PROJECT_TITLE": title,
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("DOCCLASS_WEBHOOK_URL", raising=False)
        yield env


def run_cli(*args: str, env: dict[str, str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m flows.cli ...`: the `docclass` commands as users run them."""
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--params", str(ROOT / "params.yaml"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docclass {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result

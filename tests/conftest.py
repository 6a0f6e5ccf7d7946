"""Shared fixtures: a small generated corpus, a trained model, the CLI as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DOCCLASS_CORPUS", ROOT.parent / "shared" / "corpus"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")


def docclass(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the installed `docclass` console script as a user would."""
    executable = Path(sys.executable).with_name("docclass")
    result = subprocess.run(
        [str(executable), *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docclass {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS / "manifest.csv").exists():
        pytest.skip(
            f"corpus not found at {CORPUS} (set DOCCLASS_CORPUS); corpus tests need the real documents"
        )
    return CORPUS


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight generated documents per class (born-digital and scanned), folder per class."""
    from pipelines.samples import generate_corpus

    out = tmp_path_factory.mktemp("sample")
    generate_corpus(out, per_class=8, seed=7, scanned_share=0.25)
    return out


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DOCCLASS_DATA_DIR shared by the CLI tests (so the extraction cache is reused)."""
    return tmp_path_factory.mktemp("data")


# One Label Studio server per session, shared by tests/labeling and tests/e2e (registered here, once).
from tests.label_studio_server import label_studio, labeling_env  # noqa: E402, F401

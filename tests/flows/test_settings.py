"""The one Settings class: environment and `.env`, empty variables, derived paths; nobody else reads the
environment for configuration."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from flows.settings import Settings, reveal

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working directory without `.env` and no DOCCLASS_* variable set."""
    import os

    for key in [key for key in os.environ if key.startswith("DOCCLASS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_settings_from_the_environment(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCCLASS_MLFLOW_TRACKING_URI", "sqlite:///x.db")
    monkeypatch.setenv("DOCCLASS_DVC_REMOTE", "s3://bucket/docclass")
    monkeypatch.setenv("DOCCLASS_PARAMS", "/etc/docclass/params.yaml")
    settings = Settings()
    assert settings.mlflow_tracking_uri == "sqlite:///x.db" and settings.registered_model == "docclass"
    assert settings.dvc_remote == "s3://bucket/docclass"
    assert settings.params == Path("/etc/docclass/params.yaml")


def test_the_environment_wins_over_dotenv(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text(
        "DOCCLASS_LABEL_STUDIO_URL=http://dotenv:8080\nDOCCLASS_PROJECT_TITLE=from-file\n"
    )
    monkeypatch.setenv("DOCCLASS_LABEL_STUDIO_URL", "http://env:8080")
    settings = Settings()
    assert settings.label_studio_url == "http://env:8080" and settings.project_title == "from-file"


def test_an_empty_variable_is_unset_and_cannot_blank_a_dotenv_secret(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 3 at the source: DOCCLASS_API_KEY= used to override the key in `.env` with an empty one."""
    (clean / ".env").write_text("DOCCLASS_API_KEY=key-from-dotenv\nDOCCLASS_WEBHOOK_SECRET=hook\n")
    for key in ("DOCCLASS_API_KEY", "DOCCLASS_WEBHOOK_SECRET", "DOCCLASS_PARAMS", "DOCCLASS_DATA_DIR"):
        monkeypatch.setenv(key, "")
    settings = Settings()
    assert reveal(settings.api_key) == "key-from-dotenv" and reveal(settings.webhook_secret) == "hook"
    assert settings.params is None and settings.data_dir == Path(".data")
    (clean / ".env").write_text("DOCCLASS_API_KEY=\n")
    assert Settings().api_key is None


def test_secrets_are_not_printed(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCCLASS_API_KEY", "s3cret")
    monkeypatch.setenv("DOCCLASS_LABEL_STUDIO_TOKEN", "t0ken")
    text = repr(Settings())
    assert "s3cret" not in text and "t0ken" not in text
    assert reveal(None) is None


def test_smtp_host_none_turns_e_mail_off(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.notify import NotifyConfig

    assert Settings().smtp_host == "127.0.0.1"
    monkeypatch.setenv("DOCCLASS_SMTP_HOST", "none")
    assert Settings().smtp_host is None
    assert NotifyConfig.from_settings(Settings()).smtp_host is None


def test_paths_derive_from_data_dir(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCCLASS_DATA_DIR", "/srv/docclass")
    settings = Settings()
    data = Path("/srv/docclass")
    assert settings.originals_dir == data / "labeling" / "originals"
    assert settings.state_file == data / "labeling" / "pull-state.json"
    assert settings.events_file == data / "labeling" / "webhook-events.jsonl"
    assert settings.snapshot_dir == data / "snapshot"
    assert settings.cache_dir == data / "cache" / "extract"
    assert settings.snapshot_store == data / "versions" / "dvc-store"


# ------------------------------------------------------------------ who reads configuration


def environment_reads(path: Path) -> list[str]:
    """Places in ``path`` that read docclass configuration from the process environment.

    A read is an ``os.environ`` lookup (``get``, ``[...]``, ``pop``...) or ``os.getenv`` of a ``DOCCLASS_*`` name or of
    a name computed at run time, or ``from os import environ/getenv``. Process tuning by constant name for a
    library or a child process (``OMP_THREAD_LIMIT``, ``OMP_NUM_THREADS``) is not configuration and is allowed.
    """

    def configuration(key: ast.expr | None) -> bool:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value.startswith("DOCCLASS_")
        return True

    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        key: ast.expr | None = None
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "environ"
        ):
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func
            if target.attr == "getenv" or (
                isinstance(target.value, ast.Attribute) and target.value.attr == "environ"
            ):
                key = node.args[0] if node.args else None
            else:
                continue
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in ("environ", "getenv") for alias in node.names):
                found.append(f"{path}:{node.lineno}")
            continue
        else:
            continue
        if configuration(key):
            found.append(f"{path}:{node.lineno}")
    return sorted(found)


@pytest.mark.parametrize("package", ["pipelines", "labeling", "serving"])
def test_only_settings_reads_the_environment(package: str) -> None:
    reads = [place for path in sorted((ROOT / package).rglob("*.py")) for place in environment_reads(path)]
    assert reads == [], (
        f"read configuration through flows.settings.Settings at the entry point instead: {reads}"
    )


def test_the_environment_check_catches_a_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom os import getenv\nA = os.environ.get('DOCCLASS_A')\nB = os.environ['DOCCLASS_B']\n"
        "C = os.getenv(name)\nos.environ.setdefault('OMP_THREAD_LIMIT', '1')\nD = os.environ.get('OMP_NUM_THREADS')\n"
    )
    assert environment_reads(bad) == [f"{bad}:2", f"{bad}:3", f"{bad}:4", f"{bad}:5"]


def test_labeling_needs_no_settings() -> None:
    """labeling/ takes the URL, token and paths as arguments: it imports nothing from flows/."""
    for path in sorted((ROOT / "labeling").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        modules = [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [m for m in modules if m.split(".")[0] == "flows"], path

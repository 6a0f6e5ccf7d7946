"""The scale profile's steps without its servers (flows/scale.py): the settings file it writes, the refusal of
SQLite, each server's environment, PostgreSQL's SQL, nginx's configuration (checked by the real nginx), and the S3
credentials reaching boto3 and DVC. The profile itself runs in tests/scale."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.scale import (
    ENV_HEADER,
    Ports,
    ScaleProfileError,
    app,
    check,
    env_name,
    load_settings,
    masked,
    nginx_config,
    postgres_sql,
    profile_buckets,
    profile_values,
    read_env,
    s3_identities,
    server_environment,
    sqlite_problems,
    write_env,
)
from flows.settings import Settings, reveal

PORTS = Ports(postgres=5433, s3=8333, mlflow=5001, prefect=4201, label_studio=8090, dask=8786, service=3010)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DOCCLASS_*/PREFECT_API_URL from the caller: the settings file alone decides."""
    for key in [k for k in os.environ if k.startswith("DOCCLASS_") or k == "PREFECT_API_URL"]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def profile_file(tmp_path: Path, ports: Ports = PORTS) -> Path:
    env_file = tmp_path / "scale.env"
    write_env(env_file, profile_values(ports, tmp_path / "ls-files", read_env(env_file)))
    return env_file


def test_the_settings_file_names_every_endpoint_and_keeps_its_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "scale.env"
    env_file.write_text("DOCCLASS_LABEL_STUDIO_URL=http://127.0.0.1:8080\nDOCCLASS_API_KEY=kept\n")
    profile_file(tmp_path)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    settings = load_settings(env_file)
    assert settings.label_studio_url == "http://127.0.0.1:8090"  # replaced, not appended
    assert reveal(settings.api_key) == "kept"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5001"
    assert settings.prefect_api_url == "http://127.0.0.1:4201/api"
    assert settings.dask_address == "tcp://127.0.0.1:8786" and settings.service_url == "http://127.0.0.1:3010"
    assert (
        settings.s3_endpoint_url == "http://127.0.0.1:8333"
        and settings.dvc_remote == "s3://docclass-dvc/store"
    )
    assert settings.mlflow_artifacts_destination == "s3://docclass-mlflow/artifacts"
    mlflow_db = reveal(settings.mlflow_backend_store_uri) or ""
    assert mlflow_db.startswith("postgresql+psycopg2://docclass:") and mlflow_db.endswith(
        "@127.0.0.1:5433/mlflow"
    )
    assert (reveal(settings.prefect_database_url) or "").startswith("postgresql+asyncpg://")
    assert sqlite_problems(settings) == []
    secret, password = reveal(settings.s3_secret_access_key), mlflow_db.split(":")[2].split("@")[0]
    assert secret and len(password) == 32

    # Started again on other ports: endpoints follow, the secrets (already in the cluster and S3) stay.
    profile_file(tmp_path, Ports(6433, 9333, 6001, 5201, 9090, 9786, 4010))
    again = load_settings(env_file)
    assert reveal(again.s3_secret_access_key) == secret
    assert reveal(again.mlflow_backend_store_uri) == mlflow_db.replace(":5433/", ":6433/")
    assert (
        reveal(again.label_studio_database_url)
        == f"postgresql://docclass:{password}@127.0.0.1:6433/labelstudio"
    )
    lines = env_file.read_text().splitlines()
    assert lines.count(ENV_HEADER) == 1 and len(lines) == len(set(lines))
    assert (
        lines[0] == "DOCCLASS_API_KEY=kept"
        and [line.split("=")[0] for line in lines].count("DOCCLASS_LABEL_STUDIO_URL") == 1
    )
    # without the block, the embedded profile's defaults are back
    env_file.write_text("\n".join(lines[: lines.index(ENV_HEADER)]) + "\n")
    embedded = load_settings(env_file)
    assert (
        embedded.label_studio_url == "http://127.0.0.1:8080"
        and embedded.mlflow_tracking_uri == "http://127.0.0.1:5000"
    )
    assert reveal(embedded.api_key) == "kept" and embedded.dvc_remote == ".data/dvc-remote"


def test_sqlite_or_an_unset_store_is_refused_naming_the_setting(tmp_path: Path) -> None:
    env_file = profile_file(tmp_path)
    text = env_file.read_text()
    env_file.write_text(
        text.replace(
            next(line for line in text.splitlines() if line.startswith("DOCCLASS_PREFECT_DATABASE_URL=")),
            "DOCCLASS_PREFECT_DATABASE_URL=sqlite+aiosqlite:///prefect.db",
        )
    )
    problems = sqlite_problems(load_settings(env_file))
    assert problems == [
        "DOCCLASS_PREFECT_DATABASE_URL=sqlite+aiosqlite:///prefect.db points at SQLite: expected a PostgreSQL URL "
        "(postgresql://...) for the Prefect server's database; the scale profile runs no SQLite"
    ]
    result = CliRunner().invoke(app, ["check", "--env-file", str(env_file)])
    assert result.exit_code == 2 and "DOCCLASS_PREFECT_DATABASE_URL" in result.output

    settings = Settings(mlflow_tracking_uri="sqlite:///mlflow.db")
    messages = "\n".join(sqlite_problems(settings))
    for name in (
        "DOCCLASS_MLFLOW_BACKEND_STORE_URI is unset",
        "DOCCLASS_PREFECT_DATABASE_URL is unset",
        "DOCCLASS_LABEL_STUDIO_DATABASE_URL is unset",
        "DOCCLASS_MLFLOW_TRACKING_URI=sqlite:///mlflow.db points at SQLite",
        "PREFECT_API_URL is unset",
        "DOCCLASS_MLFLOW_ARTIFACTS_DESTINATION is unset",
    ):
        assert name in messages
    with pytest.raises(ScaleProfileError, match="the scale profile cannot start"):
        check(settings)


def test_messages_never_show_a_password() -> None:
    settings = Settings(mlflow_backend_store_uri="mysql://u:hunter2@db/mlflow")  # type: ignore[arg-type]
    assert masked("postgresql://u:hunter2@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert all("hunter2" not in problem for problem in sqlite_problems(settings))
    assert "DOCCLASS_MLFLOW_BACKEND_STORE_URI=mysql://u:***@db/mlflow" in "\n".join(sqlite_problems(settings))


def test_each_server_gets_the_variables_its_program_reads(tmp_path: Path) -> None:
    settings = load_settings(profile_file(tmp_path))
    mlflow = server_environment(settings, "mlflow")
    assert mlflow["MLFLOW_BACKEND_STORE_URI"] == reveal(settings.mlflow_backend_store_uri)
    assert mlflow["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://docclass-mlflow/artifacts"
    assert mlflow["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert mlflow["AWS_ACCESS_KEY_ID"] == "docclass"
    assert mlflow["AWS_SECRET_ACCESS_KEY"] == reveal(settings.s3_secret_access_key)
    prefect = server_environment(settings, "prefect-server")
    assert prefect["PREFECT_API_DATABASE_CONNECTION_URL"] == reveal(settings.prefect_database_url)
    studio = server_environment(settings, "label-studio")
    password = (reveal(settings.label_studio_database_url) or "").split(":")[2].split("@")[0]
    assert studio | {"PREFECT_API_URL": ""} == {
        "PREFECT_API_URL": "",
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "labelstudio",
        "POSTGRE_USER": "docclass",
        "POSTGRE_PASSWORD": password,
        "POSTGRE_HOST": "127.0.0.1",
        "POSTGRE_PORT": "5433",
    }
    assert server_environment(settings, "dask")["PREFECT_API_URL"] == "http://127.0.0.1:4201/api"
    assert "MLFLOW_S3_ENDPOINT_URL" not in server_environment(
        settings, "service"
    )  # clients use MLflow's proxy
    with pytest.raises(ScaleProfileError, match="unknown server 'redis': expected one of mlflow, "):
        server_environment(settings, "redis")


def test_exec_runs_the_server_with_its_environment_and_refuses_sqlite(tmp_path: Path) -> None:
    env_file = profile_file(tmp_path)
    probe = "import os; print(os.environ['MLFLOW_BACKEND_STORE_URI'].split('@')[1], os.environ['DOCCLASS_DVC_REMOTE'])"
    command = [sys.executable, "-m", "flows.scale", "exec", "--env-file", str(env_file), "mlflow", "--"]
    result = subprocess.run(
        [*command, sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["127.0.0.1:5433/mlflow", "s3://docclass-dvc/store"]

    env_file.write_text(env_file.read_text() + "DOCCLASS_MLFLOW_BACKEND_STORE_URI=sqlite:///m.db\n")
    marker = tmp_path / "ran"
    result = subprocess.run(
        [*command, "touch", str(marker)], capture_output=True, text=True, env={**os.environ}, check=False
    )
    assert result.returncode == 2 and not marker.exists()
    assert "DOCCLASS_MLFLOW_BACKEND_STORE_URI=sqlite:///m.db points at SQLite" in result.stderr


def test_postgres_sql_creates_the_role_and_databases_idempotently(tmp_path: Path) -> None:
    settings = load_settings(profile_file(tmp_path))
    sql = postgres_sql(settings)
    password = (reveal(settings.prefect_database_url) or "").split(":")[2].split("@")[0]
    assert f"ALTER ROLE docclass WITH LOGIN PASSWORD '{password}';" in sql
    for name in ("mlflow", "prefect", "labelstudio"):
        assert f"SELECT 'CREATE DATABASE {name} OWNER docclass' WHERE NOT EXISTS" in sql
    quoted = Settings(
        mlflow_backend_store_uri="postgresql://a:it's@h/m",  # type: ignore[arg-type]
        prefect_database_url="postgresql://a:it's@h/p",  # type: ignore[arg-type]
        label_studio_database_url="postgresql://a:it's@h/l",  # type: ignore[arg-type]
    )
    assert "PASSWORD 'it''s';" in postgres_sql(quoted)
    bad = Settings(
        mlflow_backend_store_uri="postgresql://a:pw@h/m",  # type: ignore[arg-type]
        prefect_database_url="postgresql://a@h/p",  # type: ignore[arg-type]
        label_studio_database_url="postgresql://a:pw@h/l",  # type: ignore[arg-type]
    )
    with pytest.raises(
        ScaleProfileError, match="DOCCLASS_PREFECT_DATABASE_URL: expected postgresql://USER:PASSWORD"
    ):
        postgres_sql(bad)


def test_s3_identity_and_buckets(tmp_path: Path) -> None:
    settings = load_settings(profile_file(tmp_path))
    identity = s3_identities(settings)["identities"][0]  # type: ignore[index]
    assert identity["credentials"] == [
        {"accessKey": "docclass", "secretKey": reveal(settings.s3_secret_access_key)}
    ]
    assert profile_buckets(settings) == ["docclass-mlflow", "docclass-dvc"]
    with pytest.raises(ScaleProfileError, match="DOCCLASS_S3_SECRET_ACCESS_KEY must both be set"):
        s3_identities(Settings(s3_access_key_id="k"))


def test_s3_credentials_reach_boto3_and_dvc_but_no_repr(tmp_path: Path) -> None:
    from flows.sources import S3Config
    from flows.versions import SnapshotStore, dvc_remote_options

    settings = load_settings(profile_file(tmp_path))
    secret = reveal(settings.s3_secret_access_key) or ""
    config = S3Config.from_settings(settings)
    assert (config.endpoint_url, config.access_key_id, config.secret_access_key) == (
        "http://127.0.0.1:8333",
        "docclass",
        secret,
    )
    assert secret not in repr(config)
    options = dvc_remote_options(settings)
    assert options == {
        "endpointurl": "http://127.0.0.1:8333",
        "access_key_id": "docclass",
        "secret_access_key": secret,
    }
    store = SnapshotStore(tmp_path / "store", settings.dvc_remote, options)
    store._repo(store.root).close()
    assert secret not in (store.root / ".dvc" / "config").read_text()
    assert secret in (store.root / ".dvc" / "config.local").read_text()
    # the same store pointed at a folder again: the S3 keys go
    SnapshotStore(tmp_path / "store", str(tmp_path / "remote"))._repo(store.root).close()
    assert secret not in (store.root / ".dvc" / "config.local").read_text()
    assert dvc_remote_options(settings.model_copy(update={"dvc_remote": "/srv/remote"})) == {}


def test_env_names_follow_the_settings() -> None:
    assert env_name("prefect_api_url") == "PREFECT_API_URL"
    assert env_name("s3_access_key_id") == "DOCCLASS_S3_ACCESS_KEY_ID"


def test_nginx_accepts_its_configuration(tmp_path: Path) -> None:
    text = nginx_config(3010, [3011, 3012], tmp_path)
    assert "server 127.0.0.1:3011" in text and "server 127.0.0.1:3012" in text
    assert "listen 127.0.0.1:3010;" in text and "non_idempotent" in text
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / kind).mkdir(parents=True)
    result = subprocess.run(
        [
            shutil.which("nginx") or "/usr/sbin/nginx",
            "-t",
            "-e",
            str(tmp_path / "error.log"),
            "-p",
            f"{tmp_path}/",
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with pytest.raises(ScaleProfileError, match="at least one service replica"):
        nginx_config(3010, [], tmp_path)

"""The scale profile (`make scale-up`, mk/scale.mk): what its make fragment cannot say in shell.

The profile runs on 127.0.0.1 a private PostgreSQL cluster (databases of MLflow, the Prefect server and Label
Studio), SeaweedFS as S3 (MLflow's artefacts, the DVC remote), a Dask scheduler with two workers, a Prefect worker,
and two service replicas behind nginx. Every endpoint and secret is a field of :class:`flows.settings.Settings`;
this module

- writes the profile's settings file (:func:`write_env`: the endpoints of this start, secrets generated once and
  kept, never printed);
- refuses SQLite (:func:`sqlite_problems`: each store must be PostgreSQL, the registry and Prefect API servers);
- gives each server the environment its own program reads, taken from the settings (:func:`server_environment`,
  ``exec``: MLflow's ``MLFLOW_BACKEND_STORE_URI``, Prefect's ``PREFECT_API_DATABASE_CONNECTION_URL``, Label
  Studio's ``POSTGRE_*``...), so no password ever appears on a command line;
- prepares PostgreSQL (:func:`postgres_sql`), SeaweedFS (:func:`s3_identities`, :func:`ensure_buckets`) and
  nginx (:func:`nginx_config`);
- registers the work pool's deployment `classify/docclass-classify` (``deploy``, :mod:`flows.deployments`).

Run as ``python -m flows.scale COMMAND --env-file FILE``; the make fragment is the only caller.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import unquote, urlsplit, urlunsplit

import typer

if TYPE_CHECKING:
    from flows.settings import Settings

HOST = "127.0.0.1"
DB_USER = "docclass"
S3_ACCESS_KEY = "docclass"
MLFLOW_BUCKET = "docclass-mlflow"
DVC_BUCKET = "docclass-dvc"
ENV_HEADER = "# scale profile (make scale-up): endpoints of its servers on 127.0.0.1; secrets generated once"

# The settings naming a store, what they are, and the server that would fall back to SQLite when unset.
STORES = {
    "mlflow_backend_store_uri": ("the MLflow server's database", "MLflow"),
    "prefect_database_url": ("the Prefect server's database", "the Prefect server"),
    "label_studio_database_url": ("Label Studio's database", "Label Studio"),
}
# The servers `exec` knows, and what each needs besides the settings themselves.
SERVERS = ("mlflow", "prefect-server", "label-studio", "dask", "prefect-worker", "service")


class ScaleProfileError(ValueError):
    """The settings cannot run the scale profile (SQLite, or a store missing), or a step failed."""


def env_name(field: str) -> str:
    """The variable a :class:`Settings` field is read from (``DOCCLASS_<FIELD>``, or its alias)."""
    from flows.settings import Settings

    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"DOCCLASS_{field.upper()}"


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (what error messages show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


# ------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Ports:
    """Where this start of the profile listens (each a make variable of mk/scale.mk)."""

    postgres: int
    s3: int
    mlflow: int
    prefect: int
    label_studio: int
    dask: int
    service: int


def profile_values(ports: Ports, label_studio_files: Path, existing: Mapping[str, str]) -> dict[str, str]:
    """The settings of the profile: endpoints from ``ports``, secrets taken from ``existing`` when there.

    The database password is the one in an existing database URL (the cluster keeps it), else a new one; the S3
    secret likewise.
    """
    password = next(
        (
            unquote(urlsplit(existing[env_name(field)]).password or "")
            for field in STORES
            if existing.get(env_name(field))
        ),
        "",
    ) or secrets.token_hex(16)
    s3_secret = existing.get(env_name("s3_secret_access_key")) or secrets.token_hex(20)
    s3_key = existing.get(env_name("s3_access_key_id")) or S3_ACCESS_KEY

    def db(scheme: str, name: str) -> str:
        return f"{scheme}://{DB_USER}:{password}@{HOST}:{ports.postgres}/{name}"

    values = {
        "mlflow_tracking_uri": f"http://{HOST}:{ports.mlflow}",
        "mlflow_backend_store_uri": db("postgresql+psycopg2", "mlflow"),
        "mlflow_artifacts_destination": f"s3://{MLFLOW_BUCKET}/artifacts",
        "prefect_api_url": f"http://{HOST}:{ports.prefect}/api",
        "prefect_database_url": db("postgresql+asyncpg", "prefect"),
        "label_studio_url": f"http://{HOST}:{ports.label_studio}",
        "label_studio_database_url": db("postgresql", "labelstudio"),
        "local_files_root": str(label_studio_files.resolve()),
        "s3_endpoint_url": f"http://{HOST}:{ports.s3}",
        "s3_access_key_id": s3_key,
        "s3_secret_access_key": s3_secret,
        "dvc_remote": f"s3://{DVC_BUCKET}/store",
        "dask_address": f"tcp://{HOST}:{ports.dask}",
        "service_url": f"http://{HOST}:{ports.service}",
    }
    return {env_name(field): value for field, value in values.items()}


def read_env(path: Path) -> dict[str, str]:
    """The ``KEY=value`` entries of a settings file, parsed as pydantic-settings does (python-dotenv)."""
    from dotenv import dotenv_values

    if not path.exists():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def write_env(path: Path, values: Mapping[str, str]) -> list[str]:
    """Write ``values`` as one block at the end of the settings file, under :data:`ENV_HEADER`, leaving every
    other line as it was; the file is readable by its owner only.

    A key of ``values`` found elsewhere in the file moves into the block, so deleting the block gives back the
    defaults of the embedded profile.

    Returns:
        The keys whose value was added or changed.
    """
    lines = path.read_text().splitlines() if path.exists() else []
    before = read_env(path)
    kept = [
        line
        for line in lines
        if line != ENV_HEADER
        and (line.lstrip().startswith("#") or line.partition("=")[0].strip() not in values)
    ]
    while kept and not kept[-1].strip():
        kept.pop()
    block = [ENV_HEADER, *(f"{key}={value}" for key, value in values.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("\n".join([*kept, *([""] if kept else []), *block]) + "\n")
    return [key for key, value in values.items() if before.get(key) != value]


def load_settings(env_file: Path) -> Settings:
    """The settings with ``env_file`` in place of `.env` (the environment still wins, as everywhere)."""
    from flows.settings import Settings

    return Settings(_env_file=env_file)  # type: ignore[call-arg]


# ------------------------------------------------------------------------------------------------ the check


def sqlite_problems(settings: Settings) -> list[str]:
    """Why ``settings`` cannot run the scale profile: a store on SQLite, or unset (its server would fall back to
    SQLite); one message per setting, naming it. Empty: fine."""
    from flows.settings import reveal

    problems = []
    for field, (what, server) in STORES.items():
        url = reveal(getattr(settings, field))
        name = env_name(field)
        if url is None:
            problems.append(
                f"{name} is unset: expected a PostgreSQL URL for {what} (unset, {server} falls back to SQLite)"
            )
        elif url.lower().startswith("sqlite"):
            problems.append(
                f"{name}={masked(url)} points at SQLite: expected a PostgreSQL URL (postgresql://...) for {what}; "
                f"the scale profile runs no SQLite"
            )
        elif not url.lower().startswith("postgresql"):
            problems.append(f"{name}={masked(url)}: expected a PostgreSQL URL (postgresql://...) for {what}")
    tracking = settings.mlflow_tracking_uri
    if not tracking.lower().startswith(("http://", "https://")):
        kind = "SQLite" if tracking.lower().startswith("sqlite") else "a local store"
        problems.append(
            f"{env_name('mlflow_tracking_uri')}={masked(tracking)} points at {kind}: expected the MLflow server "
            f"(http://...) in the scale profile"
        )
    if not settings.prefect_api_url:
        problems.append(
            f"{env_name('prefect_api_url')} is unset: expected the Prefect server's API (http://.../api); unset, "
            f"every flow starts a temporary Prefect server on SQLite"
        )
    if not settings.mlflow_artifacts_destination:
        problems.append(
            f"{env_name('mlflow_artifacts_destination')} is unset: expected where the MLflow server keeps "
            f"artefacts (e.g. s3://{MLFLOW_BUCKET}/artifacts)"
        )
    return problems


def check(settings: Settings) -> None:
    """Raise :class:`ScaleProfileError` listing every problem of :func:`sqlite_problems`."""
    problems = sqlite_problems(settings)
    if problems:
        raise ScaleProfileError("the scale profile cannot start:\n  " + "\n  ".join(problems))


# ------------------------------------------------------------------------------------ servers' environment


def _aws(settings: Settings) -> dict[str, str]:
    from flows.settings import reveal

    env = {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key_id,
        "AWS_SECRET_ACCESS_KEY": reveal(settings.s3_secret_access_key),
    }
    return {key: value for key, value in env.items() if value}


def server_environment(settings: Settings, server: str) -> dict[str, str]:
    """The variables ``server`` (one of :data:`SERVERS`) reads, from the settings; call :func:`check` first.

    Raises:
        ScaleProfileError: an unknown server.
    """
    from flows.settings import reveal

    env = {"PREFECT_API_URL": settings.prefect_api_url or ""}
    if server == "mlflow":
        env |= {
            "MLFLOW_BACKEND_STORE_URI": reveal(settings.mlflow_backend_store_uri) or "",
            "MLFLOW_ARTIFACTS_DESTINATION": settings.mlflow_artifacts_destination or "",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **_aws(settings),
        }
        if settings.s3_endpoint_url:
            # on the server only: clients go through its artefact proxy (../shared/STACK.md)
            env["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    elif server == "prefect-server":
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = reveal(settings.prefect_database_url) or ""
    elif server == "label-studio":
        url = urlsplit(reveal(settings.label_studio_database_url) or "")
        env |= {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": url.path.lstrip("/"),
            "POSTGRE_USER": unquote(url.username or ""),
            "POSTGRE_PASSWORD": unquote(url.password or ""),
            "POSTGRE_HOST": url.hostname or HOST,
            "POSTGRE_PORT": str(url.port or 5432),
        }
    elif server in ("dask", "prefect-worker", "service"):
        env |= _aws(settings)
    else:
        raise ScaleProfileError(f"unknown server {server!r}: expected one of {', '.join(SERVERS)}")
    return {key: value for key, value in env.items() if value}


# --------------------------------------------------------------------------------------------- PostgreSQL

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def postgres_sql(settings: Settings) -> str:
    """Idempotent SQL (for psql) creating the role of every database URL, with its password, and the databases.

    Raises:
        ScaleProfileError: a URL without user, password or database, or names that are not plain identifiers.
    """
    from flows.settings import reveal

    roles: dict[str, str] = {}
    databases: dict[str, str] = {}
    for field in STORES:
        url = urlsplit(reveal(getattr(settings, field)) or "")
        user, password, name = unquote(url.username or ""), unquote(url.password or ""), url.path.lstrip("/")
        if not (_IDENTIFIER.match(user) and _IDENTIFIER.match(name) and password):
            raise ScaleProfileError(
                f"{env_name(field)}: expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE with lower-case names "
                f"(found user {user!r}, database {name!r}, {'a' if password else 'no'} password)"
            )
        roles[user] = password
        databases[name] = user
    lines = []
    for user, password in roles.items():
        literal = password.replace("'", "''")
        lines += [
            f"SELECT 'CREATE ROLE {user} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{user}')\\gexec",
            f"ALTER ROLE {user} WITH LOGIN PASSWORD '{literal}';",
        ]
    for name, owner in databases.items():
        lines.append(
            f"SELECT 'CREATE DATABASE {name} OWNER {owner}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{name}')\\gexec"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- S3 storage


def s3_identities(settings: Settings) -> dict[str, object]:
    """SeaweedFS's ``-s3.config``: one identity with the settings' key and secret, allowed everything.

    Raises:
        ScaleProfileError: the key or the secret is unset.
    """
    from flows.settings import reveal

    key, secret = settings.s3_access_key_id, reveal(settings.s3_secret_access_key)
    if not key or not secret:
        raise ScaleProfileError(
            f"{env_name('s3_access_key_id')} and {env_name('s3_secret_access_key')} must both be set for the "
            f"profile's S3 server"
        )
    credentials = [{"accessKey": key, "secretKey": secret}]
    return {
        "identities": [
            {
                "name": "docclass",
                "credentials": credentials,
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def profile_buckets(settings: Settings) -> list[str]:
    """The buckets the settings name: MLflow's artefacts and the DVC remote (when they are ``s3://``)."""
    buckets = []
    for url in (settings.mlflow_artifacts_destination, settings.dvc_remote):
        if url and url.startswith("s3://"):
            bucket = url[len("s3://") :].partition("/")[0]
            if bucket and bucket not in buckets:
                buckets.append(bucket)
    return buckets


def ensure_buckets(settings: Settings) -> list[str]:
    """Create the buckets of :func:`profile_buckets` that do not exist yet; returns them all.

    Raises:
        ScaleProfileError: the S3 server refused or did not answer.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from flows.sources import S3Config, s3_client

    client = s3_client(S3Config.from_settings(settings))
    buckets = profile_buckets(settings)
    for bucket in buckets:
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise ScaleProfileError(
                    f"cannot create bucket {bucket} on {settings.s3_endpoint_url}: {error}"
                ) from error
        except BotoCoreError as error:
            raise ScaleProfileError(
                f"cannot create bucket {bucket} on {settings.s3_endpoint_url}: {error}"
            ) from error
    return buckets


# ------------------------------------------------------------------------------------------------- nginx


def nginx_config(port: int, replicas: Sequence[int], prefix: Path) -> str:
    """nginx in front of the service replicas on 127.0.0.1, everything it writes under ``prefix``.

    A request a replica cannot take (refused, 502/503/504, 429 past its concurrency) goes to the other one:
    classifying is read-only, so repeating a POST is safe (``non_idempotent``). Uploads are buffered and passed
    whole; the service itself refuses one over ``serve.max_upload_mb`` with its JSON error, so nginx sets no limit.

    Raises:
        ScaleProfileError: no replica.
    """
    if not replicas:
        raise ScaleProfileError("nginx needs at least one service replica: expected SCALE_SERVE_PORTS")
    prefix = prefix.resolve()
    servers = "\n".join(f"        server {HOST}:{p} max_fails=1 fail_timeout=2s;" for p in replicas)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/tmp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# written by `make scale-up` (flows/scale.py): the service replicas behind one port on {HOST}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 512;
}}

http {{
    # which replica answered each request ($upstream_addr lists both when the first one failed)
    log_format replicas '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                        'upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {prefix}/access.log replicas;
{temp}
    client_max_body_size 0;

    upstream docclass {{
{servers}
        keepalive 16;
    }}

    server {{
        listen {HOST}:{port};
        location / {{
            proxy_pass http://docclass;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 120s;
            proxy_next_upstream error timeout http_502 http_503 http_504 http_429 non_idempotent;
            proxy_next_upstream_tries {len(replicas)};
        }}
    }}
}}
"""


# --------------------------------------------------------------------------------------------------- CLI

app = typer.Typer(
    name="flows.scale",
    help="The scale profile's steps (called by mk/scale.mk).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
EnvFile = Annotated[Path, typer.Option("--env-file", help="the profile's settings file (in place of .env)")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("env")
def env_command(
    env_file: EnvFile,
    postgres: Annotated[int, typer.Option(help="PostgreSQL port")],
    s3: Annotated[int, typer.Option(help="S3 port")],
    mlflow: Annotated[int, typer.Option(help="MLflow port")],
    prefect: Annotated[int, typer.Option(help="Prefect server port")],
    label_studio: Annotated[int, typer.Option(help="Label Studio port")],
    dask: Annotated[int, typer.Option(help="Dask scheduler port")],
    service: Annotated[int, typer.Option(help="nginx port in front of the service replicas")],
    label_studio_files: Annotated[Path, typer.Option(help="Label Studio's local-files folder")],
) -> None:
    """Write the profile's settings into the settings file (secrets kept when there, never printed)."""
    ports = Ports(postgres, s3, mlflow, prefect, label_studio, dask, service)
    changed = write_env(env_file, profile_values(ports, label_studio_files, read_env(env_file)))
    typer.echo(
        f"{env_file}: {len(changed)} setting(s) written" + (f" ({', '.join(changed)})" if changed else "")
    )


@app.command("check")
def check_command(env_file: EnvFile) -> None:
    """Fail (exit 2) naming every setting that points at SQLite or leaves a store unset."""
    try:
        check(load_settings(env_file))
    except ScaleProfileError as error:
        _fail(str(error))


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_command(
    ctx: typer.Context,
    env_file: EnvFile,
    server: Annotated[str, typer.Argument(help=f"one of {', '.join(SERVERS)}")],
) -> None:
    """Check the settings, then replace this process by the command after ``--`` with the settings file's entries
    and the server's own variables in its environment."""
    command = list(ctx.args)
    if not command:
        _fail("no command to run: expected `exec SERVER -- COMMAND...`")
    settings = load_settings(env_file)
    try:
        check(settings)
        extra = server_environment(settings, server)
    except ScaleProfileError as error:
        _fail(str(error))
    for key, value in read_env(env_file).items():
        os.environ.setdefault(key, value)  # the environment wins, as in Settings
    os.environ.update(extra)
    sys.stdout.flush()
    try:
        os.execvp(command[0], command)
    except OSError as error:
        _fail(f"cannot run {command[0]}: {error}")


@app.command("postgres-sql")
def postgres_sql_command(env_file: EnvFile) -> None:
    """Print the SQL creating the role and databases (pipe it into psql; it holds the password)."""
    try:
        sql = postgres_sql(load_settings(env_file))
    except ScaleProfileError as error:
        _fail(str(error))
    sys.stdout.write(sql)


@app.command("s3-config")
def s3_config_command(
    env_file: EnvFile, out: Annotated[Path, typer.Option(help="where to write SeaweedFS's -s3.config")]
) -> None:
    """Write SeaweedFS's identity file (owner-readable only)."""
    try:
        identities = s3_identities(load_settings(env_file))
    except ScaleProfileError as error:
        _fail(str(error))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600, exist_ok=True)
    out.chmod(0o600)
    out.write_text(json.dumps(identities, indent=2) + "\n")


@app.command("buckets")
def buckets_command(env_file: EnvFile) -> None:
    """Create the buckets the settings name (MLflow's artefacts, the DVC remote)."""
    try:
        buckets = ensure_buckets(load_settings(env_file))
    except ScaleProfileError as error:
        _fail(str(error))
    typer.echo(f"buckets: {', '.join(buckets) or 'none'}")


@app.command("deploy")
def deploy_command(
    env_file: EnvFile,
    pool: Annotated[str, typer.Option(help="the work pool (a process pool, created when missing)")],
) -> None:
    """Register the deployment classify/docclass-classify on the work pool of the settings' Prefect server."""
    import httpx

    from flows.deployments import CLASSIFY_DEPLOYMENT, CLASSIFY_FLOW, DeploymentError, register_classify

    settings = load_settings(env_file)
    try:
        register_classify(settings.prefect_api_url or "", pool)
    except DeploymentError as error:
        _fail(str(error))
    except httpx.HTTPError as error:
        _fail(f"cannot register {CLASSIFY_FLOW}/{CLASSIFY_DEPLOYMENT} at {settings.prefect_api_url}: {error}")
    typer.echo(f"deployment {CLASSIFY_FLOW}/{CLASSIFY_DEPLOYMENT} on work pool {pool}")


@app.command("nginx-conf")
def nginx_conf_command(
    port: Annotated[int, typer.Option(help="the port nginx listens on")],
    replica: Annotated[list[int], typer.Option(help="a service replica's port (repeat)")],
    prefix: Annotated[Path, typer.Option(help="nginx's folder (pid, logs, temp files)")],
    out: Annotated[Path, typer.Option(help="the configuration file to write")],
) -> None:
    """Write nginx's configuration."""
    try:
        text = nginx_config(port, replica, prefix)
    except ScaleProfileError as error:
        _fail(str(error))
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / kind).mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    app()

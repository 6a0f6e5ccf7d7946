"""Endpoints, paths and secrets: the one pydantic-settings class of docclass, fed by the environment and `.env`.

Entry points (the `docclass` commands, the Prefect flows, the service) build one :class:`Settings` and pass the
values their callees need as arguments: ``labeling/`` and ``pipelines/`` never read settings or the environment.
ML parameters never live here: they are in params.yaml (:mod:`pipelines.params`), whose path is the ``params``
setting. `make labelstudio-up` writes the Label Studio URL, e-mail, password, API token and webhook secret to
`.env` the first time it runs.

An empty variable is the same as an unset one (``env_ignore_empty``): ``DOCCLASS_API_KEY=`` in the environment
cannot switch authentication off when `.env` holds a key, and no other setting can be blanked out by a stray
``export DOCCLASS_X=`` either.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# DOCCLASS_SMTP_HOST=none turns e-mail off (an empty value counts as unset, so it cannot say "off").
SMTP_OFF = "none"


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``DOCCLASS_<FIELD>`` in the environment or `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="DOCCLASS_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    # Where things live on this machine; a relative path is taken from the working directory.
    data_dir: Path = Path(".data")
    # params.yaml of this installation (DOCCLASS_PARAMS); unset: ./params.yaml, else the repository's.
    params: Path | None = None

    # Label Studio (labeling/): the client gets the URL and token, the converters the paths below.
    label_studio_url: str = "http://127.0.0.1:8080"
    label_studio_token: SecretStr | None = None
    label_studio_email: str | None = None
    project_title: str = "docclass"
    # Label Studio's LOCAL_FILES_DOCUMENT_ROOT is this folder's parent: a local-files storage only serves a
    # strict subdirectory of the document root.
    local_files_root: Path = Path(".data/labelstudio/files")
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8765
    webhook_secret: SecretStr | None = None
    # URL Label Studio posts annotation events to; `labeling init` registers it when set.
    webhook_url: str | None = None

    # The service: when set, /classify and /versions require `Authorization: Bearer <key>`.
    api_key: SecretStr | None = None
    service_url: str = "http://127.0.0.1:3000"

    # Registry and dataset versions.
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    registered_model: str = "docclass"
    mlflow_experiment: str = "docclass"
    # Any DVC remote URL (s3://, ssh://, a folder...); a relative folder is taken from the working directory.
    dvc_remote: str = ".data/dvc-remote"
    # Who promotes or rolls back by hand (recorded with the alias move); unset: the login name.
    user: str | None = None

    # Batch classification (`docclass classify`, flows/batch.py): the Dask scheduler to run shards on (e.g.
    # tcp://127.0.0.1:8786; unset: a local process pool).
    dask_address: str | None = None
    # S3 (s3:// sources of `docclass classify`, an s3:// dvc_remote, the MLflow server's artefacts): the endpoint
    # (unset: AWS) and credentials (unset: the standard AWS variables or files).
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # The Prefect API of flows and workers: the very PREFECT_API_URL Prefect reads itself (no DOCCLASS_ prefix),
    # so the two cannot disagree; unset: Prefect's own profile, else a temporary server per run.
    prefect_api_url: str | None = Field(default=None, validation_alias="PREFECT_API_URL")

    # The servers' own stores, read when the scale profile starts them (`make scale-up`, flows/scale.py; the
    # embedded profile keeps SQLite files under .data): PostgreSQL URLs (secret: they hold the password) and
    # where MLflow keeps artefacts (e.g. s3://docclass-mlflow/artifacts).
    mlflow_backend_store_uri: SecretStr | None = None
    mlflow_artifacts_destination: str | None = None
    prefect_database_url: SecretStr | None = None
    label_studio_database_url: SecretStr | None = None

    # Notifications (flows/notify.py): one e-mail per new version; `make mail-up` catches them in .data/mail.
    smtp_host: str | None = "127.0.0.1"  # "none": no e-mail
    smtp_port: int = 1025
    smtp_from: str = "docclass@localhost"
    smtp_to: str = "team@localhost"  # comma-separated
    notify_webhook_url: str | None = None  # optional: JSON POST per new version
    mlflow_ui_url: str | None = None  # links in notifications; default: mlflow_tracking_uri when http(s)

    @field_validator("smtp_host")
    @classmethod
    def _smtp_off(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() == SMTP_OFF else value

    @property
    def labeling_dir(self) -> Path:
        """Import originals, pull state and webhook events live here."""
        return self.data_dir / "labeling"

    @property
    def originals_dir(self) -> Path:
        """Original bytes of every imported document, named ``<sha256><ext>``."""
        return self.labeling_dir / "originals"

    @property
    def snapshot_dir(self) -> Path:
        """Default dataset snapshot written by `labeling pull` (documents + labels.csv)."""
        return self.data_dir / "snapshot"

    @property
    def cache_dir(self) -> Path:
        """Extraction cache shared by every command, the flows and pre-annotation."""
        return self.data_dir / "cache" / "extract"

    @property
    def events_file(self) -> Path:
        """JSON lines written by the webhook receiver."""
        return self.labeling_dir / "webhook-events.jsonl"

    @property
    def state_file(self) -> Path:
        """Watermark and labels of the last pull."""
        return self.labeling_dir / "pull-state.json"

    @property
    def snapshot_store(self) -> Path:
        """Local DVC repository (no git) that versions the dataset snapshots of training rounds."""
        return self.data_dir / "versions" / "dvc-store"


def reveal(secret: SecretStr | None) -> str | None:
    """The value of a secret setting, or None when it is unset."""
    return secret.get_secret_value() if secret is not None else None

"""Endpoints, paths and secrets: one pydantic-settings class fed by the environment and `.env`.

ML parameters never live here: they are in params.yaml. The Label Studio fields (and ``data_dir``) are
declared once, in :class:`labeling.settings.LabelingSettings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from labeling.settings import LabelingSettings


class Settings(LabelingSettings):
    """Runtime settings; every field can be set as ``DOCCLASS_<FIELD>`` in the environment or `.env`."""

    params: Path | None = None
    api_key: SecretStr | None = None  # DOCCLASS_API_KEY: when set, the service requires `Authorization: Bearer <key>`
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    registered_model: str = "docclass"
    mlflow_experiment: str = "docclass"
    # Any DVC remote URL (s3://, ssh://, a folder...); a relative folder is taken from the working directory.
    dvc_remote: str = ".data/dvc-remote"
    # Notifications (flows/notify.py): one e-mail per new version; `make mail-up` catches them in .data/mail.
    smtp_host: str | None = "127.0.0.1"  # empty disables e-mail
    smtp_port: int = 1025
    smtp_from: str = "docclass@localhost"
    smtp_to: str = "team@localhost"  # comma-separated
    notify_webhook_url: str | None = None  # optional: JSON POST per new version
    service_url: str = "http://127.0.0.1:3000"
    mlflow_ui_url: str | None = None  # links in notifications; default: mlflow_tracking_uri when http(s)

    @property
    def snapshot_store(self) -> Path:
        """Local DVC repository (no git) that versions the dataset snapshots of training rounds."""
        return self.data_dir / "versions" / "dvc-store"

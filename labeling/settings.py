"""Label Studio endpoints, paths and secrets, fed by the environment (``DOCCLASS_*``) and `.env`.

`make labelstudio-up` writes the URL, the admin e-mail and password, the API token and the webhook secret to
`.env` the first time it runs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LabelingSettings(BaseSettings):
    """Settings of the Label Studio client; every field can be set as ``DOCCLASS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="DOCCLASS_", env_file=".env", extra="ignore")

    label_studio_url: str = "http://127.0.0.1:8080"
    label_studio_token: SecretStr | None = None
    label_studio_email: str | None = None
    project_title: str = "docclass"
    # Label Studio's LOCAL_FILES_DOCUMENT_ROOT is this folder's parent: a local-files storage only serves a
    # strict subdirectory of the document root.
    local_files_root: Path = Path(".data/labelstudio/files")
    data_dir: Path = Path(".data")
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8765
    webhook_secret: SecretStr | None = None
    # URL Label Studio posts annotation events to; `labeling init` registers it when set.
    webhook_url: str | None = None

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
        """Extraction cache shared with the rest of docclass (same as flows.settings.Settings.cache_dir)."""
        return self.data_dir / "cache" / "extract"

    @property
    def events_file(self) -> Path:
        """JSON lines written by the webhook receiver."""
        return self.labeling_dir / "webhook-events.jsonl"

    @property
    def state_file(self) -> Path:
        """Watermark and labels of the last pull."""
        return self.labeling_dir / "pull-state.json"

"""Endpoints, paths and secrets: one pydantic-settings class fed by the environment and `.env`.

ML parameters never live here: they are in params.yaml.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``DOCCLASS_<FIELD>`` in the environment or `.env`."""

    model_config = SettingsConfigDict(env_prefix="DOCCLASS_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".data")
    params: Path | None = None

    @property
    def cache_dir(self) -> Path:
        """Extraction cache (by content hash and extraction settings)."""
        return self.data_dir / "cache" / "extract"

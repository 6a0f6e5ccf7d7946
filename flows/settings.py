"""Endpoints, paths and secrets: one pydantic-settings class fed by the environment and `.env`.

ML parameters never live here: they are in params.yaml. The Label Studio fields (and ``data_dir``) are
declared once, in :class:`labeling.settings.LabelingSettings`.
"""

from __future__ import annotations

from pathlib import Path

from labeling.settings import LabelingSettings


class Settings(LabelingSettings):
    """Runtime settings; every field can be set as ``DOCCLASS_<FIELD>`` in the environment or `.env`."""

    params: Path | None = None

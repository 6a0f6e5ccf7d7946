"""The `docclass` command line (entry point ``flows.cli:app``)."""

from flows.cli.app import app

__all__ = ["app"]

"""`python -m flows.cli ...` runs the same app as the `docclass` script."""

from flows.cli.app import app

app()

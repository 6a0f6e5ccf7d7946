"""`python -m flows.cli ...` runs the same app as the `docclass` script."""

from flows.cli.app import app

# Guarded: worker processes started with "spawn" (`docclass classify`'s local pool) import the main module
# again, and must not run the command a second time.
if __name__ == "__main__":
    app()

"""The Label Studio fixtures live in tests/label_studio_server.py and are registered once, in tests/conftest.py,
so the labeling and end-to-end tests share one server per session."""

from tests.label_studio_server import LabelStudioServer, read_env_file, run_cli  # noqa: F401

"""pipelines/ stays pure: it never imports the orchestration, registry, serving or labeling libraries."""

import ast
from pathlib import Path

import pytest

FORBIDDEN = {"prefect", "mlflow", "bentoml", "label_studio_sdk"}
ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            if isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value).split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").rglob("*.py")), ids=lambda p: p.name)
def test_pipelines_imports_no_orchestration_library(path):
    assert not imported_modules(path) & FORBIDDEN


def test_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mlflow import log_metric\n    import prefect.flows\n")
    assert imported_modules(bad) & FORBIDDEN == {"mlflow", "prefect"}


def test_importing_pipelines_loads_none_of_them():
    import subprocess
    import sys

    code = (
        "import sys, importlib, pkgutil, pipelines\n"
        "for m in pkgutil.iter_modules(pipelines.__path__): importlib.import_module('pipelines.' + m.name)\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"

"""The architecture holds: pipelines/ stays pure, and the modules of the four packages import one way (no cycle)."""

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
        "for m in pkgutil.walk_packages(pipelines.__path__, 'pipelines.'): importlib.import_module(m.name)\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


PACKAGES = ("pipelines", "labeling", "flows", "serving")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports anywhere (module level or inside functions)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import submodule` needs the submodule, other names need the module itself
                subs = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t for t in subs if t in modules] or [node.module]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for root in sorted(graph):
        if state.get(root):
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph.get(nxt, ()))))
    return None


def test_project_imports_have_no_cycle():
    graph = project_import_graph()
    assert "pipelines.models.base" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def serving_imports_of_flows(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """serving module -> the flows modules it imports other than flows.settings (module level or in functions)."""
    found = {
        module: {t for t in targets if t.split(".")[0] == "flows" and t != "flows.settings"}
        for module, targets in graph.items()
        if module.split(".")[0] == "serving"
    }
    return {module: targets for module, targets in found.items() if targets}


def test_serving_imports_no_flows_module_but_settings():
    graph = project_import_graph()
    assert {"serving.service", "serving.registry", "serving.models"} <= set(graph)
    assert "flows.settings" in graph["serving.registry"]  # the checker sees the one allowed import
    assert serving_imports_of_flows(graph) == {}


def test_serving_import_checker_catches_flows_orchestration():
    graph = {
        "serving.x": {"flows.settings", "flows.registry"},
        "serving.y": {"flows.settings"},
        "flows.a": {"flows.b"},
    }
    assert serving_imports_of_flows(graph) == {"serving.x": {"flows.registry"}}

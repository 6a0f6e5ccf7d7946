"""The README's command-line examples run as written (broken examples are the commonest MLOps defect)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)


def test_readme_opens_with_the_two_setup_commands():
    first = bash_blocks((ROOT / "README.md").read_text())[0]
    commands = [line.split("#")[0].strip() for line in first.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_command_line_examples_run(tmp_path):
    block = bash_blocks((ROOT / "README.md").read_text())[1]
    assert "docclass train" in block and "docclass predict" in block
    # Run from a copy of the paths the examples touch, so the checkout's own .data stays untouched.
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    shutil.copy(ROOT / "README.md", work / "README.md")
    shutil.copy(ROOT / "params.yaml", work / "params.yaml")
    env = {**os.environ, "DOCCLASS_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    predictions = [line for line in lines if "label" in line]
    errors = [line for line in lines if "error" in line]
    assert predictions and all(line["label"] == "invoice" for line in predictions)
    assert [line["file"] for line in errors] == ["README.md"]
    assert "unsupported file type 'text/plain'" in errors[0]["error"]


def test_every_documented_command_exists():
    """Blocks that need running servers are exercised by their integration tests; here: no command drifts."""
    commands = set()
    for block in bash_blocks((ROOT / "README.md").read_text()):
        for line in block.splitlines():
            words = line.split("#")[0].split()
            if words[:1] == [".venv/bin/docclass"]:
                sub = [w for w in words[1:3] if not w.startswith("-") and "/" not in w and "." not in w]
                commands.add(tuple(sub[:2]) if sub[:1] == ["labeling"] else tuple(sub[:1]))
    assert ("train",) in commands and ("labeling", "pull") in commands
    for command in sorted(commands):
        result = subprocess.run(
            [str(ROOT / ".venv/bin/docclass"), *command, "--help"], capture_output=True, text=True, cwd=ROOT
        )
        assert result.returncode == 0, (command, result.stderr[-500:])
    targets = set()
    for block in bash_blocks((ROOT / "README.md").read_text()):
        targets |= {line.split()[1] for line in block.splitlines() if line.startswith("make ")}
    makefile = "".join(path.read_text() for path in [ROOT / "Makefile", *ROOT.glob("*/*.mk")])
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), target

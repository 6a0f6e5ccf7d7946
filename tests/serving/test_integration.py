"""`bentoml serve` in a subprocess: a new champion promoted mid-test goes live with no failed request, and a bad
upload does not disturb the service."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.make_server import MakeServer, environment, free_port
from tests.serving.conftest import World

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real service (2 workers) on a free loopback port, started and stopped by `make serve-up/serve-down`."""
    port = free_port()
    make_vars = {
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": "2",
        "SERVE_DATA": str(tmp_path_factory.mktemp("serve")),
        "BENTOML_BIN": str(Path(sys.executable).with_name("bentoml")),
    }
    world.promote(world.v1)
    env = environment(**world.env(), BENTOML_DO_NOT_TRACK="true", DOCCLASS_API_KEY=None)
    with MakeServer("serving/bentoml.mk", "serve", make_vars, env, timeout_s=180):
        yield f"http://127.0.0.1:{port}"
    world.promote(world.v1)


def test_promotion_goes_live_without_a_failed_request(server: str, world: World) -> None:
    doc = world.doc("invoice")
    data = doc.read_bytes()
    answers: list[tuple[str, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.post("/classify", files={"file": (doc.name, data)})
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                body = response.json()
                answers.append((body["model_version"], body["documents"][0]["label"]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        world.promote(world.v2)
        deadline = time.time() + 20
        while time.time() < deadline and not (answers and answers[-1][0] == f"1.{world.v2}"):
            time.sleep(0.2)
        time.sleep(2)  # every worker has polled by now (poll_seconds 0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not failures, failures[:5]
    old, new = (f"1.{world.v1}", "invoice"), (f"1.{world.v2}", world.shift["invoice"])
    assert set(answers) == {old, new}, set(answers)
    first_new = answers.index(new)
    assert answers[:first_new] and all(a == old for a in answers[:first_new])
    assert answers[-20:] == [new] * 20  # both workers serve the new champion
    body = httpx.get(f"{server}/versions").json()
    assert body["champion"] == f"1.{world.v2}"


def test_bad_upload_then_good_one(server: str, world: World) -> None:
    bad = httpx.post(f"{server}/classify", files={"file": ("x.exe", b"MZ" + b"\0" * 64)})
    assert bad.status_code == 415 and "expected PDF" in bad.json()["error"]
    good = httpx.post(f"{server}/classify", files={"file": ("w9.pdf", world.doc("w9").read_bytes())})
    assert good.status_code == 200
    assert httpx.get(f"{server}/docs.json").json()["paths"]["/classify"]


def wait_until_served(server: str, version: str, timeout_s: float = 30.0) -> None:
    """Wait until 20 answers in a row, each on a new connection (so from any worker), say ``version`` is served."""
    deadline = time.monotonic() + timeout_s
    streak = 0
    while streak < 20:
        assert time.monotonic() < deadline, (
            f"the service did not switch to {version} within {timeout_s:.0f} s"
        )
        served = httpx.get(f"{server}/versions", timeout=10).json()["worker"]["served"]
        streak = streak + 1 if served == version else 0
        if served != version:
            time.sleep(0.1)  # a worker swaps at its next poll (serve.poll_seconds 0.5)


def test_readme_service_examples_run(server: str, world: World, tmp_path: Path) -> None:
    """The README's curl and Python examples, verbatim but for the port, against the real service."""
    import json
    import re

    from pipelines.samples import make_bundle

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Classification service", 1)[1].split("\n## ", 1)[0]
    shell, python = (
        re.findall(r"```bash\n(.*?)```", section, re.S)[0],
        re.findall(r"```python\n(.*?)```", section, re.S)[0],
    )
    (tmp_path / "invoice.pdf").write_bytes(world.doc("invoice").read_bytes())
    (tmp_path / "bundle.pdf").write_bytes(
        make_bundle([world.doc("w9").read_bytes(), world.doc("payslip").read_bytes()])
    )
    port = server.rsplit(":", 1)[1]
    champion = f"1.{world.v2}"  # the champion the examples must meet (the first test leaves it there)
    world.promote(world.v2)
    wait_until_served(server, champion)
    curls = [
        line.split("#")[0].strip().replace(":3000", f":{port}")
        for line in shell.splitlines()
        if line.startswith("curl ")
    ]
    assert len(curls) == 3
    outputs = [
        subprocess.run(["bash", "-c", c], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        for c in curls
    ]
    first, pinned, versions = (json.loads(out) for out in outputs)
    # 1.2 was trained on shifted labels: its answer for an invoice is the shifted class.
    assert (first["model_version"], first["champion"], first["pinned"]) == (champion, champion, False)
    assert first["documents"][0]["label"] == world.shift["invoice"]
    assert pinned["model_version"] == "1.1" and pinned["pinned"] is True
    assert [s["label"] for s in pinned["documents"][0]["segments"]] == ["w9", "payslip"]
    assert versions["champion"] == champion
    assert [(row["version"], row["champion"]) for row in versions["versions"]] == [
        (f"1.{world.v1}", False),
        (champion, True),
    ]
    assert versions["worker"]["served"] == champion
    result = subprocess.run(
        [sys.executable, "-c", python.replace(":3000", f":{port}")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == [champion, world.shift["invoice"]]

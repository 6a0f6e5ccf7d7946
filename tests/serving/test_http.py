"""HTTP tests through the service's ASGI app in-process (BentoML's ``to_asgi()`` under Starlette's TestClient, which
runs the startup and shutdown hooks): answers, pinning, hot swap, errors, auth and limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.serving.conftest import World, zip_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


_APP: list[Any] = []


def make_client() -> TestClient:
    """A client on the one ASGI app of this test session (BentoML registers Prometheus metrics once per process);
    every ``with`` block runs the lifespan, so each gets a fresh service instance reading the environment."""
    from serving.service import DocClassifier

    if not _APP:
        _APP.append(DocClassifier.to_asgi())
    return TestClient(_APP[0], raise_server_exceptions=False)


@pytest.fixture
def client(service_env: World) -> Iterator[TestClient]:
    service_env.promote(service_env.v1)
    with make_client() as c:
        yield c
    service_env.promote(service_env.v1)


def post(client: TestClient, name: str, data: bytes, **form: Any) -> Any:
    return client.post("/classify", files={"file": (name, data)}, data={k: str(v) for k, v in form.items()})


def test_classifies_a_pdf_with_the_champion(client: TestClient, service_env: World) -> None:
    path = service_env.doc("invoice")
    response = post(client, path.name, path.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == f"1.{service_env.v1}" and body["champion"] == body["model_version"]
    [doc] = body["documents"]
    assert doc["name"] == path.name and doc["label"] == "invoice"
    assert set(doc["scores"]) == {"w9", "1040", "invoice", "payslip", "other"}
    assert abs(sum(doc["scores"].values()) - 1) < 1e-4
    assert doc["pages"] and doc["pages"][0]["source"] == "text" and "thumbnail" not in doc["pages"][0]
    assert isinstance(doc["needs_review"], bool)
    assert {"model", "extract", "inference", "total"} <= set(body["timings_ms"])


def test_pinned_version_and_thumbnails(client: TestClient, service_env: World) -> None:
    path = service_env.doc("payslip")
    response = post(client, path.name, path.read_bytes(), version=f"1.{service_env.v2}", thumbnails="true")
    query = client.post(
        f"/classify?version=1.{service_env.v2}", files={"file": (path.name, path.read_bytes())}
    )
    assert query.json()["model_version"] == f"1.{service_env.v2}"
    body = response.json()
    assert response.status_code == 200, body
    assert body["model_version"] == f"1.{service_env.v2}" and body["pinned"] is True
    assert body["documents"][0]["label"] == service_env.shift["payslip"]
    assert body["documents"][0]["pages"][0]["thumbnail"].startswith("data:image/png;base64,")


def test_zip_answers_per_document_and_reports_bad_members(client: TestClient, service_env: World) -> None:
    members = {
        "a/invoice.pdf": service_env.doc("invoice").read_bytes(),
        "../../etc/w9.pdf": service_env.doc("w9").read_bytes(),
        "notes.txt": b"just some text",
        "w9.pdf": service_env.doc("w9", 1).read_bytes(),
    }
    response = post(client, "batch.zip", zip_bytes(members))
    body = response.json()
    assert response.status_code == 200, body
    assert [d["label"] for d in body["documents"]] == ["invoice", "w9"]
    assert [d["name"] for d in body["documents"]] == ["batch.zip/a/invoice.pdf", "batch.zip/w9.pdf"]
    reasons = {r["name"]: r["kind"] for r in body["rejected"]}
    assert reasons == {
        "batch.zip/../../etc/w9.pdf": "UnsafeArchivePathError",
        "batch.zip/notes.txt": "UnsupportedTypeError",
    }


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        (
            "report.exe",
            b"MZ\x90\x00" + b"\x00" * 100,
            415,
            "unsupported file type 'application/x-msdownload'",
        ),
        ("empty.pdf", b"", 422, "is empty"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj <<", 422, "broken.pdf"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_the_service_keeps_serving(
    client: TestClient, service_env: World, name: str, data: bytes, status: int, message: str
) -> None:
    response = post(client, name, data)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    good = service_env.doc("w9")
    assert post(client, good.name, good.read_bytes()).status_code == 200


def test_bad_versions(client: TestClient, service_env: World) -> None:
    data = service_env.doc("w9").read_bytes()
    response = post(client, "a.pdf", data, version="2.1")
    assert response.status_code == 400 and "expected 1.N" in response.json()["error"]
    response = post(client, "a.pdf", data, version="1.99")
    assert response.status_code == 404 and "1.99" in response.json()["error"]


def test_missing_file_part_is_a_400(client: TestClient) -> None:
    response = client.post("/classify", data={"version": "1.1"})
    assert response.status_code == 400
    assert "error" in response.json()


def test_limits_on_upload_size_and_pages(client: TestClient, service_env: World) -> None:
    big = b"%PDF-1.4\n" + b"0" * (6 * 1024 * 1024)
    response = post(client, "big.pdf", big)
    assert response.status_code == 413 and "the limit is 5 MB" in response.json()["error"]
    members = {
        f"d{i}.pdf": service_env.doc(label, i % 4).read_bytes()
        for i, label in enumerate(["w9", "invoice", "payslip", "other", "1040"] * 3)
    }
    response = post(client, "many.zip", zip_bytes(members))
    assert response.status_code == 413 and "the limit is 12 pages" in response.json()["error"]


def test_versions_and_health(client: TestClient, service_env: World) -> None:
    body = client.get("/versions").json()
    assert body["champion"] == f"1.{service_env.v1}"
    assert [v["version"] for v in body["versions"]] == [f"1.{service_env.v1}", f"1.{service_env.v2}"]
    assert body["versions"][0]["champion"] is True and body["versions"][1]["accuracy"] == 0.95
    assert body["worker"]["served"] == f"1.{service_env.v1}"
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200
    spec = client.get("/docs.json").json()
    assert "/classify" in spec["paths"]
    assert "drop" in client.get("/ui").text and client.get("/ui/static/live.js").status_code == 200


def test_hot_swap_follows_the_champion_alias(client: TestClient, service_env: World) -> None:
    path = service_env.doc("other")
    assert post(client, path.name, path.read_bytes()).json()["documents"][0]["label"] == "other"
    service_env.promote(service_env.v2)
    deadline = time.time() + 15
    while time.time() < deadline:
        body = post(client, path.name, path.read_bytes()).json()
        if body["model_version"] == f"1.{service_env.v2}":
            break
        time.sleep(0.2)
    assert body["model_version"] == f"1.{service_env.v2}"
    assert body["documents"][0]["label"] == service_env.shift["other"]


def test_no_model_yet_is_a_503_saying_what_the_registry_holds(service_env: World) -> None:
    labeling = service_env.root / "data" / "labeling"
    labeling.mkdir(parents=True, exist_ok=True)
    # The labeler's pull state may live on another machine: the service reads the registry, never this file.
    (labeling / "pull-state.json").write_text(
        '{"labels": {"1": {}, "2": {}, "3": {}, "4": {}, "5": {}, "6": {}, "7": {}}}'
    )
    service_env.promote(None)
    try:
        with make_client() as c:
            response = post(c, "a.pdf", service_env.doc("w9").read_bytes())
            assert response.status_code == 503
            assert response.json()["error"] == (
                f"no model yet (version 1.0): 2 version(s) registered, none is champion; the latest, "
                f"1.{service_env.v2} (20 labels), passed its gates but is not champion: promote it with "
                f"`docclass promote`"
            )
            assert c.get("/readyz").status_code == 200
    finally:
        service_env.promote(service_env.v1)


def test_api_key(service_env: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCCLASS_API_KEY", "s3cret-key")
    data = service_env.doc("w9").read_bytes()
    with make_client() as c:
        response = post(c, "a.pdf", data)
        assert response.status_code == 401 and "Authorization: Bearer" in response.json()["error"]
        assert c.get("/versions").status_code == 401
        wrong = c.post("/classify", files={"file": ("a.pdf", data)}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = c.post(
            "/classify", files={"file": ("a.pdf", data)}, headers={"Authorization": "Bearer s3cret-key"}
        )
        assert ok.status_code == 200
        assert c.get("/livez").status_code == 200 and c.get("/ui").status_code == 200


def test_an_empty_api_key_variable_does_not_switch_authentication_off(
    service_env: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 3: DOCCLASS_API_KEY= (empty) in the environment used to turn authentication off silently although
    `.env` held a key; an empty variable now counts as unset, and the start log says authentication is on."""
    (tmp_path / ".env").write_text("DOCCLASS_API_KEY=key-from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCCLASS_API_KEY", "")
    data = service_env.doc("w9").read_bytes()
    with caplog.at_level(logging.WARNING, logger="docclass.serving"), make_client() as c:
        assert post(c, "a.pdf", data).status_code == 401
        assert c.get("/versions").status_code == 401
        ok = c.post(
            "/classify", files={"file": ("a.pdf", data)}, headers={"Authorization": "Bearer key-from-dotenv"}
        )
        assert ok.status_code == 200
    assert "authentication is on" in caplog.text and "key-from-dotenv" not in caplog.text


def test_the_start_log_says_when_authentication_is_off(
    service_env: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="docclass.serving"), make_client() as c:
        assert c.get("/versions").status_code == 200
    assert "authentication is OFF: DOCCLASS_API_KEY is not set" in caplog.text


def test_split_auto_returns_the_documents_of_a_bundle(client: TestClient, service_env: World) -> None:
    from pipelines.samples import make_bundle

    parts = [service_env.doc("w9"), service_env.doc("payslip")]
    pages = []
    for part in parts:
        import pymupdf

        with pymupdf.open(part) as pdf:
            pages.append(pdf.page_count)
    bundle = make_bundle([part.read_bytes() for part in parts])
    plain = post(client, "bundle.pdf", bundle)
    assert plain.status_code == 200 and "segments" not in plain.json()["documents"][0]
    response = client.post("/classify?split=auto", files={"file": ("bundle.pdf", bundle)})
    assert response.status_code == 200, response.text
    [doc] = response.json()["documents"]
    assert [(s["label"], s["first_page"], s["last_page"]) for s in doc["segments"]] == [
        ("w9", 1, pages[0]),
        ("payslip", pages[0] + 1, pages[0] + pages[1]),
    ]
    assert all(0 < s["confidence"] <= 1 for s in doc["segments"])
    assert "split" in response.json()["timings_ms"]
    bad = client.post("/classify?split=yes", files={"file": ("bundle.pdf", bundle)})
    assert bad.status_code == 400 and "expected 'auto'" in bad.json()["error"]

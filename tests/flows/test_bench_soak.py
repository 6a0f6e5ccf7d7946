"""`make bench-soak` (flows/bench_soak.py): its verdicts on answers and figures, and a short soak of the real service
(40 s, a promotion every 15 s, extract.workers 1 so the Tesseract bound is 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.bench_soak import (
    Answer,
    Promotion,
    Sample,
    passed,
    percentile,
    promotion_latency,
    rss_growth,
)
from tests.conftest import ROOT


def answer(
    status: int,
    expected: int = 200,
    error: str = "",
    retry: str | None = None,
    sent: float = 1.0,
    done: float = 2.0,
    version: str | None = None,
) -> Answer:
    """One answer as the client saw it (a JSON reason when ``error`` is given)."""
    return Answer(sent, done, "pdf", "a.pdf", status, expected, error, bool(error), retry, version)


def test_only_documented_overload_answers_are_allowed_5xx() -> None:
    assert answer(200).outcome == "served"
    assert answer(422, expected=422, error="x is empty: expected ...").outcome == "served"
    assert answer(429, error="too many requests", retry="2").outcome == "shed"
    assert answer(503, error="OCR backlog full", retry="2").outcome == "shed"
    assert answer(504, error="request took longer than 60 s").outcome == "timeout"
    assert answer(503, error="no model yet").outcome == "5xx"  # a 503 that is not an overload answer
    assert answer(429, retry="2").outcome == "wrong"  # no JSON reason
    assert answer(500, error="An unexpected error").outcome == "5xx"
    assert answer(502).outcome == "5xx"
    assert answer(422).outcome == "wrong"  # a good document not answered
    assert answer(0, error="ReadError: reset").outcome == "transport"


def test_percentiles_rss_growth_and_promotions() -> None:
    assert percentile([], 0.5) is None
    assert percentile([float(n) for n in range(1, 101)], 0.5) == 50.0
    assert percentile([float(n) for n in range(1, 101)], 0.99) == 99.0
    samples = [Sample(float(t), 1000.0 if t < 570 else 1080.0, 0, 0, 10, 20) for t in range(0, 601, 5)]
    growth = rss_growth(samples, 600)
    assert (growth["start_mb"], growth["end_mb"], growth["growth_pct"], growth["met"]) == (
        1000.0,
        1080.0,
        8.0,
        True,
    )
    assert rss_growth(samples[:3], 600)["met"] is None  # no sample at minute 2: not judged
    promotions = [Promotion(10.0, "1.2"), Promotion(20.0, "1.1")]
    answers = [
        answer(200, sent=11.0, done=12.0, version="1.1"),  # still the old champion
        answer(200, sent=12.0, done=14.5, version="1.2"),
        answer(200, sent=25.0, done=26.0, version="1.2"),
    ]
    promotion_latency(promotions, answers)
    assert promotions[0].live_after_s == 4.5 and promotions[1].live_after_s is None
    result = {
        "failure_count": 0,
        "tesseract": {"within": True, "max_seen": 2, "bound": 2},
        "promotion_errors": [],
        "promotions_not_live": [{"at": 20.0, "version": "1.1", "live_after_s": None}],
        "ready_after": True,
    }
    assert passed(result) == ["1 promotions never answered before the next one"]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_short_soak_of_the_real_service(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "flows.bench_soak", "--seconds", "40", "--promote-every", "15"]
    command += ["--extract-workers", "1", "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "RSS (tree)" in run.stdout and "Tesseract       at most" in run.stdout
    result = json.loads(out.read_text())
    assert result["failure_count"] == 0
    for kind in ("pdf", "scan", "zip", "bad"):
        assert result["kinds"][kind]["served"] > 0, (kind, result["kinds"][kind])
    assert result["shed"] > 0  # 32 clients against 8 requests in progress
    assert result["tesseract"] == {**result["tesseract"], "bound": 1, "within": True, "max_seen": 1}
    assert len(result["promotions"]) == 2 and not result["promotions_not_live"]
    assert [p["version"] for p in result["promotions"]] == ["1.2", "1.1"]
    assert result["ready_after"] and result["rss"]["growth_pct"] is not None

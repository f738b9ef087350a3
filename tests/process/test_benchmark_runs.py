"""`make bench` at a tiny N: the benchmark starts its own stack, runs every phase to the end and
reports each, in API mode (`--api`: api.py beside the stack, the burst started over HTTP too).
A benchmark is not a test: nothing here asserts a time (bench/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from subchange.dev.devstack import ROOT

pytestmark = pytest.mark.one_pass(on="postgresql")

PHASES = ("bare_burst", "full_burst", "bare_single", "full_single", "full_single_big_org")


def test_the_benchmark_runs_every_phase_and_reports_it(tmp_path: Path) -> None:
    database = "postgresql" if os.environ.get("TEST_DATABASE") == "postgresql" else "sqlite"
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--changes", "3", "--singles", "2", "--warmup", "0",
         "--big-org-users", "12", "--starter-runs", "1", "--database", database,
         "--api", "--api-rounds", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.loads(run.stdout) == result
    assert result["setup"]["database"] == database
    for name in PHASES:
        phase = result["phases"][name]
        assert phase["failed"] == 0, (name, phase["failures"])
        assert phase["changes"] == (3 if name.endswith("burst") else 2)
        assert phase["throughput_per_s"] > 0
        assert phase["worker_cpu_ms_per_change"] > 0
        assert phase["latency_ms"]["p50"] <= phase["latency_ms"]["p99"]
    assert result["ratios"]["throughput_full_to_bare"] > 0
    assert all(rss > 0 for rss in result["worker_peak_rss_mb"])
    assert result["starter_change_seconds"] > 0
    assert "| throughput (changes/s), burst" in run.stderr

    api = result["api"]
    assert api["failed"] == 0
    for name in ("client_burst_1", "api_burst_1"):
        assert api["phases"][name]["changes"] == 3 and api["phases"][name]["failed"] == 0
    for where in ("burst", "alone"):
        for kind in ("client", "api"):
            figures = api["start_latency_ms"][where][kind]
            assert 0 < figures["p50"] <= figures["p99"], (where, kind, figures)
    assert api["throughput_api_to_client"] > 0
    assert api["api_cpu_ms_per_request"] > 0
    assert api["api_rss_mb"]["peak"] >= api["api_rss_mb"]["now"] > 0
    assert "| start latency p50, alone" in run.stderr

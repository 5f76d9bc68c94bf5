"""The benchmarks still run (their figures are for people; a test only keeps them working)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_every_benchmark_runs_in_quick_mode(tmp_path: Path):
    """1 to 5, on SQLite; 6 needs PostgreSQL and has its own test."""
    report = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--output", str(report), *"12345"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = report.read_text(encoding="utf-8")
    assert "Quick mode" in table
    for number in range(1, 6):
        assert f"\n| {number} | " in table


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="benchmark 6 needs PostgreSQL (set TEST_DATABASE_URL)",
)
def test_the_instances_benchmark_runs_in_quick_mode(tmp_path: Path):
    report = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--output", str(report), "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = report.read_text(encoding="utf-8")
    assert "prompts sent twice" in table
    assert "**missed**" not in table  # no duplicates

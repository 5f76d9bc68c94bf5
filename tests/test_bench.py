"""The benchmarks still run (their figures are for people; a test only keeps them working)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_quick(report: Path, numbers: str) -> None:
    """bench/run.py --quick for `numbers`. A benchmark that runs too long is killed with every
    process it started (instances, the fake Bot API), so none outlives the test and writes to
    the next test's database."""
    command = [sys.executable, "bench/run.py", "--quick", "--output", str(report), *numbers]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f"bench/run.py --quick {numbers} ran past 600 s:\n{output}")
    assert process.returncode == 0, output


@pytest.mark.slow
def test_every_benchmark_runs_in_quick_mode(tmp_path: Path):
    """1 to 5, on SQLite; 6 needs PostgreSQL and has its own test."""
    report = tmp_path / "RESULTS.md"
    run_quick(report, "12345")
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
    run_quick(report, "6")
    table = report.read_text(encoding="utf-8")
    duplicates = [line for line in table.splitlines() if "prompts sent twice" in line]
    assert len(duplicates) == 3  # one, two and three instances
    assert all(line.endswith("| 0 duplicates | met |") for line in duplicates), duplicates

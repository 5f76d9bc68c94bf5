"""The benchmarks still run (their figures are for people; a test only keeps them working)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_claim_benchmark_runs_on_a_small_database():
    result = subprocess.run(
        [sys.executable, "bench/claim_scaling.py", "--sent", "2000", "--future", "500"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| 2,000 sent, 500 future, partial index |" in result.stdout

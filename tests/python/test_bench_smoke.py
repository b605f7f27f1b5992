"""Smoke test of the benchmark harness on convexnn alone (the peers stay out of CI)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_harness_runs_on_convexnn_alone(tmp_path, formulation):
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gated_vs_peers.py"), "--formulation", formulation, "--n", "300",
         "--d", "5", "--P", "20", "--peers", "", "--dtypes", "float64", "--tols", "1e-2,1e-6", "--markdown", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    assert table.count("| convexnn |") == 2
    # The tighter run reaches the best objective found (relative excess printed as 0).
    assert "0.00e+00" in table

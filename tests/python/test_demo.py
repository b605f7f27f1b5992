"""The README's main job runs end to end (small pattern counts to stay fast)."""

import subprocess
import sys

import pytest


def test_demo_runs_and_prints_certificates():
    pytest.importorskip("cvxpy")
    out = subprocess.run(
        [sys.executable, "-m", "convexnn", "demo", "--n-patterns", "60", "--relu-patterns", "8"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "rel_gap=" in out.stdout and "dual_bound=" in out.stdout
    assert "non-convex objective" in out.stdout
    assert "test accuracy" in out.stdout

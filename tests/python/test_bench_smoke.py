"""Smoke tests of the benchmark harnesses on convexnn alone (the peers stay out of CI)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_harness_runs_on_convexnn_alone(tmp_path, formulation):
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gated_vs_peers.py"),
            "--formulation",
            formulation,
            "--n",
            "300",
            "--d",
            "5",
            "--P",
            "20",
            "--peers",
            "",
            "--dtypes",
            "float64",
            "--tols",
            "1e-2,1e-6",
            "--markdown",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    assert table.count("| convexnn |") == 2
    # The tighter run reaches the best objective found (relative excess printed as 0).
    assert "0.00e+00" in table


def test_suite_smoke_grid(tmp_path):
    """bench/suite.py --grid smoke: convexnn (two tolerances), CVXPY + Clarabel and Adam, each in its own process."""
    out = tmp_path / "suite"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "suite.py"),
            "--grid",
            "smoke",
            "--solvers",
            "convexnn,clarabel,adam",
            "--time-limit",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    problems = sorted({r["problem"] for r in records})
    assert problems == ["diabetes-P16", "syn-n120-d4-P16"]
    for p in problems:
        rows = {(r["solver"], r["setting"]): r for r in records if r["problem"] == p}
        assert sorted(s for s, _ in rows) == ["adam", "clarabel", "convexnn", "convexnn"]
        for r in rows.values():
            assert r["status"].startswith("ok"), r
            for field in ("time", "objective", "violation", "peak_mb", "n", "d", "P", "beta"):
                assert np.isfinite(r[field]), (field, r)
            assert 0 < r["time"] < 60 and 10 < r["peak_mb"] < 4000
            assert r["threads"] == 1 and r.get("child_threads") == 1
        clarabel = rows[("clarabel", "tight tolerances (1e-10)")]["objective"]
        tight = rows[("convexnn", "float64, tol=1e-06")]
        # The interior-point optimum and convexnn's certified point agree (both scored by the reference objective).
        assert abs(tight["objective"] - clarabel) <= 1e-6 * abs(clarabel)
        assert tight["reported_gap"] <= 1e-6
        # Adam's best non-convex objective can only lie above the convex optimum of the same gated program.
        adam = rows[("adam", "lr=0.03, full batch")]
        assert adam["objective"] >= clarabel * (1 - 1e-8)
        # The suite's own scoring of Adam's returned weights agrees with convexnn.nonconvex's objective.
        assert abs(adam["final_objective_rescored"] - adam["final_objective_reported"]) <= 1e-9 * clarabel
    table = (out / "results.md").read_text()
    for header in (
        "| problem | n | d | P | best objective (reached by) |",
        "Peak memory",
        "Time to match",
        "convexnn (float64, tol=1e-06)",
        "clarabel (tight tolerances (1e-10))",
        "Machine:",
        "commit",
    ):
        assert header in table
    try:
        import matplotlib  # noqa: F401  (in the test extra; the suite itself only skips the plot without it)
    except ImportError:
        assert "matplotlib is not installed" in proc.stdout
    else:
        assert (out / "time_vs_excess.png").stat().st_size > 1000


def _suite_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import suite

    return suite


def test_suite_peak_memory_is_the_solvers_own(tmp_path, monkeypatch):
    """The launcher reports the solver process's peak, not the (larger) peak of the process that started it."""
    suite = _suite_module(monkeypatch)
    ballast = np.ones(40_000_000)  # 320 MB held by this process while the children run
    small = [sys.executable, "-c", "import time; time.sleep(0.1)"]
    rc, killed, peak_small, _ = suite.run_child(small, None, 10.0, tmp_path / "never", tmp_path / "a.log")
    assert rc == 0 and not killed and peak_small < 100
    big = [sys.executable, "-c", "import numpy as np; a = np.ones(25_000_000); a += 1"]  # 200 MB
    rc, killed, peak_big, _ = suite.run_child(big, None, 10.0, tmp_path / "never", tmp_path / "b.log")
    assert rc == 0 and not killed and 200 < peak_big < 300
    del ballast


def test_suite_stops_a_run_past_the_cap(tmp_path, monkeypatch):
    suite = _suite_module(monkeypatch)
    monkeypatch.setattr(suite, "GRACE_S", 0.2)
    ready = tmp_path / "ready"
    sleeper = [sys.executable, "-c", f"import time; open({str(ready)!r}, 'w').close(); time.sleep(60)"]
    t0 = time.perf_counter()
    rc, killed, peak, wall = suite.run_child(sleeper, None, 0.5, ready, tmp_path / "c.log")
    assert rc is None and killed and np.isfinite(peak) and peak > 0
    assert time.perf_counter() - t0 < 10

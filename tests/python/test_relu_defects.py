"""Defects of the exact (cone-constrained) ReLU solver found by fuzzing, each pinned by a test.

The program is Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, eq. (3)-(4); the solver is
FISTA with the exact cone prox (cpp/src/convexnn/solvers/relu_solver.cpp).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import convexnn as cnn
from convexnn import _core
from convexnn.solve import _operator

# The children import the convexnn this process imported (the installed one in CI, not the source tree).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(cnn.__file__)))


_TINY = """
import numpy as np, warnings, convexnn as cnn
warnings.simplefilter("ignore")
base = [[0.30126030410890936], [0.1200823130019058], [0.0423344571344629], [0.41214561196567434],
        [0.4425028747127966]]
X = np.array(base * 2 + [[-0.6765857267233973]])
y = np.array([1, 1, 1, -1, 1, 1, 1, 1, -1, 1, -1], float)
"""


def _run_python(code, timeout):
    env = dict(os.environ, PYTHONPATH=_PACKAGE_PARENT, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("seed, max_iter", [(0, 4000), (1, 20000), (2, 20000)])
def test_vanishing_gradient_does_not_hang(seed, max_iter):
    # A denormal beta: the iterate interpolates exactly, the gradient vanishes and the step grew without bound
    # to inf, after which backtracking halved inf forever (no time limit or Ctrl-C could stop it).
    out = _run_python(
        _TINY
        + f"""
r = cnn.solve(X, y, 5e-324, patterns=15, seed={seed}, formulation="relu", loss="squared_hinge", bias=True,
              max_iter={max_iter})
print(r.status, r.n_iter)
""",
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    status, n_iter = out.stdout.split()
    assert status in ("max_iter", "converged") and int(n_iter) <= max_iter


def _hinge_instance(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 4))
    y = np.where(X[:, 0] + 0.5 * rng.standard_normal(100) > 0, 1.0, -1.0)
    pats = cnn.sample_patterns(X, 20, seed=1, bias=True)
    beta = 0.8 * cnn.beta_max(X, y, pats, loss="hinge", bias=True)
    return X, y, pats, beta


@pytest.mark.parametrize("seed", [1, 2])
def test_hinge_stops_once_certified(seed):
    # The certificate held at iteration 5, but the smoothing kept shrinking (to 0) and the run diverged.
    X, y, pats, beta = _hinge_instance(seed)
    r = cnn.solve(X, y, beta, patterns=pats, formulation="relu", loss="hinge", bias=True, time_limit=60)
    assert r.status == "converged" and np.isfinite(r.objective)
    assert r.gap <= 1e-6 and r.n_iter < 1000
    assert r.dual_objective <= r.objective * (1 + 1e-12)


_HUGE = np.array(
    [
        [
            -3.992129890959756e153,
            -1.4075458450955643e154,
            1.2140987222010653e154,
            3.105686450960769e153,
            1.1350755868758814e154,
        ]
    ]
)


def test_nan_objective_is_diverged_in_the_binding():
    # Unscaled data this large overflows ||X||^2: the objective is NaN, which is a divergence (it was reported
    # as "max_iter" / "time_limit", and without limits the solve ran forever).
    Xb = np.hstack([_HUGE, np.ones((1, 1))])
    pats = cnn.sample_patterns(_HUGE, 9, seed=0, bias=True)
    r = _core.solve_relu(_operator(Xb, pats), np.array([[1.0]]), 1.0, loss="squared_hinge", max_iter=10**9)
    assert r["status"] == "diverged" and not np.isfinite(r["objective"])
    assert r["n_iter"] <= 10


def test_huge_data_through_solve_is_finite():
    # solve() scales such data by a power of two first: a finite, honest certificate.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = cnn.solve(_HUGE, [1.0], 1.0, patterns=9, formulation="relu", loss="squared_hinge", bias=True, max_iter=100)
    assert np.isfinite(r.objective) and r.status in ("max_iter", "converged")
    assert r.dual_objective <= r.objective


def _slow_problem(n=2000, d=10, P=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 4)), 0) @ rng.standard_normal(4) + 0.1 * rng.standard_normal(n)
    Xb = np.hstack([X, np.ones((n, 1))])
    pats = cnn.sample_patterns(X, P, seed=seed, bias=True)
    return Xb, y[:, None], pats


def test_time_limit_is_kept_between_checks():
    Xb, Y, pats = _slow_problem()
    t0 = time.perf_counter()
    r = _core.solve_relu(_operator(Xb, pats), Y, 1e-3, tol=1e-14, max_iter=10**8, time_limit=0.5, check_every=10**8)
    elapsed = time.perf_counter() - t0
    assert r["status"] == "time_limit"
    assert elapsed < 0.5 * 1.1 + 1.0  # 1.1 x the limit + one iteration, with slack for a loaded machine
    assert np.isfinite(r["objective"]) and r["dual_objective"] <= r["objective"]


def test_callback_false_stops_between_checks():
    # The callback runs about every 0.5 s between checks too, so a long check interval does not delay a stop.
    Xb, Y, pats = _slow_problem()
    calls = []

    def callback(info):
        calls.append(info["time"])
        return False

    t0 = time.perf_counter()
    r = _core.solve_relu(
        _operator(Xb, pats),
        Y,
        1e-3,
        tol=1e-14,
        max_iter=10**8,
        check_every=10**8,
        callback=callback,
        time_limit=60,
    )
    elapsed = time.perf_counter() - t0
    assert r["status"] == "interrupted" and len(calls) == 1
    assert elapsed < 3.0
    assert np.isfinite(r["objective"])


def test_sigint_stops_a_solve_promptly():
    code = f"""
import sys, time, numpy as np
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from test_relu_defects import _slow_problem
from convexnn import _core
from convexnn.solve import _operator
Xb, Y, pats = _slow_problem()
print("start", flush=True)
r = _core.solve_relu(_operator(Xb, pats), Y, 1e-3, tol=1e-14, max_iter=10**8, check_every=10**8,
                     time_limit=60)
print(r["status"], time.time(), flush=True)
"""
    env = dict(os.environ, PYTHONPATH=_PACKAGE_PARENT, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(1.5)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    status, done = out.split()
    assert status == "interrupted", err
    assert float(done) - sent < 3.0


def test_timings_are_reported():
    Xb, Y, pats = _slow_problem(n=200, P=10)
    r = _core.solve_relu(_operator(Xb, pats), Y, 0.1, max_iter=200)
    t = r["timings"]
    assert {"prox", "forward", "certificate_oracle", "ray_newton", "total"} <= set(t)
    assert all(isinstance(v, float) and v >= 0.0 for v in t.values())
    assert sum(v for k, v in t.items() if k != "total") <= t["total"] * 1.01 + 1e-3
    res = cnn.solve(Xb[:, :-1], Y[:, 0], 0.1, patterns=pats, formulation="relu", bias=True, max_iter=200)
    assert set(res.timings) == set(t) and res.to_dict()["timings"].keys() == res.timings.keys()

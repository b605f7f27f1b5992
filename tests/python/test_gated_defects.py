"""The gated solver's budget, timings and float32 -> float64 continuation.

* ``time_limit`` is honoured on a hinge instance whose polish steps (dense KKT solves) are expensive, and a
  callback asking to stop ends the solve promptly;
* the binding returns per-phase ``timings`` that add up to at most the total;
* float32 iterations stop at their rounding floor ("precision_floor") instead of spinning to max_iter, and
  ``convexnn.solve`` finishes such a solve in float64: to tol 1e-8 it reaches the float64 certified optimum.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import convexnn as cx
from convexnn import _core


def _hinge_problem(seed, n=600, d=8, P=60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    G = rng.standard_normal((P, d))
    y = np.sign(np.maximum(X @ G[:3].T, 0).sum(1) - 1.0 + 0.5 * rng.standard_normal(n))
    y[y == 0] = 1.0
    op = _core.MaskedOperatorF64(X, _core.PatternSet.from_gates(X, G), method="gemm")
    return op, y


def _polish_heavy():
    """A hinge instance whose margin polish (dense KKT eigendecompositions, N ~ 500) dominates the solve."""
    op, y = _hinge_problem(0, n=800, d=12, P=40)
    return op, y, 3e-2 * _core.gated_beta_max(op, y, loss="hinge")


def _per_iteration(op, y, beta):
    r = _core.solve_gated(op, y, beta, loss="hinge", tol=1e-12, max_iter=20)
    return r["time"] / max(r["n_iter"], 1)


def test_time_limit_is_honoured_on_a_hinge_instance():
    op, y, beta = _polish_heavy()
    per_iter = _per_iteration(op, y, beta)
    for limit in (0.2, 1.0):
        t = time.perf_counter()
        r = _core.solve_gated(op, y, beta, loss="hinge", tol=1e-12, max_iter=10**9, time_limit=limit)
        wall = time.perf_counter() - t
        assert r["status"] == "time_limit"
        # The final certificate (one forward + adjoint) comes after the stop: allowed as one more iteration.
        assert r["time"] <= 1.1 * limit + 2 * per_iter + 0.05, (limit, r["time"], per_iter)
        assert wall <= 1.1 * limit + 2 * per_iter + 0.1


def test_callback_returning_false_stops_promptly():
    # The callback is asked every check_every iterations (and at least every 0.5 s inside the hinge polish,
    # between its dense KKT eigendecompositions; one of those cannot be interrupted).
    op, y = _hinge_problem(1, n=300, d=6, P=40)
    beta = 1e-4 * _core.gated_beta_max(op, y, loss="squared")
    first = []
    r = _core.solve_gated(
        op,
        y,
        beta,
        loss="squared",
        tol=1e-15,
        max_iter=10**9,
        check_every=10,
        newton=False,
        callback=lambda info: first.append(info["iteration"]) or False,
    )
    assert r["status"] == "interrupted" and first == [10] and r["n_iter"] == 10
    assert np.isfinite(r["gap"])  # the point returned is certified


def test_timings_present_and_add_up():
    op, y = _hinge_problem(2, n=200, P=30)
    beta = 1e-2 * _core.gated_beta_max(op, y, loss="logistic")
    r = _core.solve_gated(op, y, beta, loss="logistic", tol=1e-8)
    t = r["timings"]
    for phase in ("forward", "adjoint", "prox", "certificate", "newton", "working_set", "other", "total"):
        assert phase in t and t[phase] >= 0.0, phase
    assert t["total"] == r["time"]
    assert sum(v for k, v in t.items() if k != "total") <= t["total"] * (1 + 1e-9)
    assert t["forward"] + t["adjoint"] > 0


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), 2.0 * y - 1.0


def test_float32_core_stops_at_its_precision_floor():
    X, y = _breast_cancer()
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    pats = cx.sample_patterns(X32, 100, seed=0, bias=True)
    Xb = np.hstack([X32, np.ones((X.shape[0], 1), np.float32)])
    op = _core.MaskedOperatorF32(Xb, pats._set)
    cert = _core.MaskedOperatorF64(Xb.astype(np.float64), pats._set)
    beta = 1e-2 * _core.gated_beta_max(cert, y, loss="logistic")
    r = _core.solve_gated(op, y, beta, loss="logistic", tol=1e-10, max_iter=10000, certify_op=cert)
    assert r["status"] in ("precision_floor", "converged")
    assert r["n_iter"] < 3000  # not spinning to max_iter


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_float32_to_1e8_reaches_the_float64_optimum(loss):
    X, y = _breast_cancer()
    if loss == "squared":
        y = X[:, 0] - 0.5 * X[:, 1] ** 2 + 0.1 * np.random.default_rng(0).standard_normal(X.shape[0])
    X32 = X.astype(np.float32)
    # The same patterns for both precisions (sampled on the float32 data), so both solve one problem.
    pats = cx.sample_patterns(X32, 100, seed=0, bias=True)
    beta = 1e-2 * cx.beta_max(X32, y, patterns=pats, loss=loss, bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cx.ConvergenceWarning)
        r64 = cx.solve(X32.astype(np.float64), y, beta, patterns=pats, loss=loss, bias=True, tol=1e-8)
        r32 = cx.solve(X32, y, beta, patterns=pats, loss=loss, bias=True, tol=1e-8)
    assert r64.status == "converged" and r32.status == "converged"
    assert r32.gap <= 1e-8
    assert r32.dtype == "float32"
    assert "float64 continuation" in r32.solver or r32.gap <= 1e-8
    # Both certified to 1e-8 of the same optimum.
    assert abs(r32.objective - r64.objective) <= 3e-8 * abs(r64.objective)
    assert r32.n_iter <= 3 * r64.n_iter + 200


def test_breast_cancer_classifier_float32_does_not_hit_max_iter():
    X, y = _breast_cancer()
    clf = cx.ConvexReLUClassifier(formulation="gated", dtype="float32", tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X.astype(np.float32), y)
    assert clf.status_ == "converged", clf.status_
    assert clf.gap_ <= 1e-8

"""The neural gauge (minimum-norm interpolation, the beta -> 0 limit of the exact program) and its certificate."""

import numpy as np
import pytest

import convexnn as cnn

TOY_X = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]])
TOY_Y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])


def test_toy_gauge_value_and_interpolating_network():
    res = cnn.min_norm_interpolation(TOY_X, TOY_Y, cnn.enumerate_patterns(TOY_X, bias=True), bias=True)
    assert res.status == "converged"
    assert res.objective == pytest.approx(10.128990, abs=2e-6)
    assert res.dual_objective == pytest.approx(10.128990, abs=2e-6)
    net = res.network()
    assert np.abs(net.predict(TOY_X) - TOY_Y).max() < 1e-5
    # The unit-norm network's sum |alpha_j| ||u_j|| is the gauge.
    assert np.sum(np.abs(net.w2) * np.linalg.norm(net.W1, axis=1)) == pytest.approx(res.objective, rel=1e-9)
    # p*(beta) / beta approaches the gauge from below as beta -> 0.
    small = cnn.solve(
        TOY_X, TOY_Y, 1e-4, patterns=cnn.enumerate_patterns(TOY_X, bias=True), formulation="relu", bias=True, tol=1e-8
    )
    assert small.objective / 1e-4 <= res.objective * (1 + 1e-6)
    assert small.objective / 1e-4 >= 0.99 * res.objective


def test_gauge_matches_cvxpy_on_random_instances():
    cp = pytest.importorskip("cvxpy")
    for seed in range(2):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((8, 1))
        y = rng.standard_normal(8)
        pats = cnn.enumerate_patterns(X, bias=True)
        res = cnn.min_norm_interpolation(X, y, pats, bias=True, tol=1e-7)
        Xb = np.hstack([X, np.ones((8, 1))])
        D = pats.dense().astype(float)
        P, d = D.shape[1], Xb.shape[1]
        V, W = cp.Variable((d, P)), cp.Variable((d, P))
        fit = sum(cp.multiply(D[:, i], Xb @ (V[:, i] - W[:, i])) for i in range(P))
        cons = [fit == y]
        for i in range(P):
            S = (2 * D[:, i] - 1)[:, None] * Xb
            cons += [S @ V[:, i] >= 0, S @ W[:, i] >= 0]
        prob = cp.Problem(cp.Minimize(sum(cp.norm(V[:, i]) + cp.norm(W[:, i]) for i in range(P))), cons)
        prob.solve(solver="CLARABEL")
        assert res.status == "converged"
        assert res.objective == pytest.approx(prob.value, rel=1e-5)
        assert res.dual_objective <= prob.value * (1 + 1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="one output"):
        cnn.min_norm_interpolation(TOY_X, np.c_[TOY_Y, TOY_Y], 5, bias=True)
    with pytest.raises(ValueError, match="tol"):
        cnn.min_norm_interpolation(TOY_X, TOY_Y, 5, bias=True, tol=0)

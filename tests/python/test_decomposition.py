"""Cone decomposition of gated coefficients (convexnn.decomposition) and the gated warm start of the exact program."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn.decomposition import cone_decomposition
from convexnn.reference.objectives import relative_violation


def _problem(seed=0, n=300, d=5, P=40, bias=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) + 0.1 * rng.standard_normal(n)
    pats = cnn.sample_patterns(X, n_patterns=P, seed=seed, bias=bias)
    beta = 0.05 * cnn.beta_max(X, y, pats, bias=bias)
    return X, y, pats, beta


@pytest.mark.parametrize("max_iter", [0, 200])
@pytest.mark.parametrize("bias", [False, True])
def test_decomposition_is_exact_feasible_and_keeps_predictions(max_iter, bias):
    X, y, pats, beta = _problem(seed=3, bias=bias)
    g = cnn.solve(X, y, beta, patterns=pats, formulation="gated", tol=1e-8, bias=bias)
    Xb = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    V, W, info = cone_decomposition(Xb, pats, g.coef_, max_iter=max_iter)
    U = g.coef_
    assert np.abs(V - W - U).max() <= 1e-12 * max(1.0, np.abs(U).max())
    masks = pats.dense()
    assert relative_violation(Xb, masks, V, W) <= 1e-10
    assert info["max_residual"] <= 1e-10
    assert np.count_nonzero(np.linalg.norm(U, axis=1)) > 0  # the test decomposes something
    if max_iter == 0:
        assert info["iterations"] == 0 and info["gate_fallbacks"] == np.count_nonzero(np.linalg.norm(U, axis=1))
    # ReLU neurons (Xb v)_+ - (Xb w)_+ predict what the gated neurons D_i Xb u_i predict.
    relu = sum(np.maximum(Xb @ V[i], 0) - np.maximum(Xb @ W[i], 0) for i in range(U.shape[0]))
    gated = sum(masks[:, [i]] * (Xb @ U[i]) for i in range(U.shape[0]))
    np.testing.assert_allclose(relu, gated, rtol=0, atol=1e-9 * max(1.0, np.abs(gated).max()))


def test_exact_solve_warm_started_from_a_gated_result_reaches_the_cold_optimum():
    X, y, pats, beta = _problem(seed=5)
    cold = cnn.solve(X, y, beta, patterns=pats, formulation="relu", tol=1e-8)
    g = cnn.solve(X, y, beta, patterns=pats, formulation="gated", tol=1e-6)
    warm = cnn.solve(X, y, beta, patterns=pats, formulation="relu", tol=1e-8, warm_start=g)
    assert cold.status == warm.status == "converged"
    assert warm.objective == pytest.approx(cold.objective, rel=1e-7)
    assert warm.max_violation <= 1e-8


def test_bad_arguments():
    X, y, pats, beta = _problem(seed=1)
    with pytest.raises(ValueError, match="U must have shape"):
        cone_decomposition(X, pats, np.zeros((3, 5, 1)))
    with pytest.raises(ValueError, match="NaN"):
        cone_decomposition(X, pats, np.full((pats.n_patterns, 5, 1), np.nan))
    with pytest.raises(ValueError, match="max_iter"):
        cone_decomposition(X, pats, np.zeros((pats.n_patterns, 5, 1)), max_iter=-1)

"""convexnn.theory.linear: the closed forms of Ergen & Pilanci (ICML 2021) Secs. 2-3 against their test vectors,
CVXPY optima and trained networks."""

import numpy as np
import pytest

from convexnn import theory as T

X0 = np.array([[1.0, 0, 0], [0, 2.0, 0]])
Y0 = np.array([1.0, 1.0])


def test_two_layer_min_norm_vector_of_the_paper():
    res = T.two_layer_linear(X0, Y0, 0.0)
    assert res.info["paper_dual_value"] == pytest.approx(1.118034, abs=1e-6)  # D*
    assert res.objective == pytest.approx(2.236068, abs=1e-6)  # min ||W1||^2 + ||w2||^2
    assert res.dual_objective == pytest.approx(res.objective, rel=1e-12)
    u = res.info["neuron_directions"][:, 0]
    np.testing.assert_allclose(u * np.sign(u[0]), [0.894427, 0.447214, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.dual, [0.894427, 0.223607], atol=1e-6)  # lambda*
    assert np.linalg.norm(X0.T @ res.dual) == pytest.approx(1.0)  # dual feasible, active
    np.testing.assert_allclose(res.fitted, Y0, atol=1e-12)


@pytest.mark.parametrize("L, P, t", [(3, 3.231652, 1.037891), (4, 4.229485, 1.028286)])
def test_deep_linear_min_norm_values(L, P, t):
    res = T.deep_linear(X0, Y0, L, 0.0)
    assert res.objective == pytest.approx(P, abs=1e-6)
    assert res.objective == pytest.approx(L * np.linalg.norm(np.linalg.pinv(X0) @ Y0) ** (2 / L), rel=1e-12)
    # balanced: every layer has Frobenius = operator norm = t*
    for W in res.weights:
        assert np.linalg.norm(W) == pytest.approx(t, abs=1e-6)
        assert np.linalg.norm(W, 2) == pytest.approx(t, abs=1e-6)
    np.testing.assert_allclose(res.fitted, Y0, atol=1e-12)
    assert res.dual_objective == pytest.approx(res.objective, rel=1e-10)


def test_deep_linear_vector_min_norm_and_alignment():
    X, Y = np.eye(3), np.array([[3.0, 0], [0, 1.0], [0, 0]])
    assert T.deep_linear(X, Y, 2, 0.0).objective == pytest.approx(8.0, abs=1e-9)
    res = T.deep_linear(X, Y, 3, 0.0, seed=1, widths=[4, 5])
    assert res.objective == pytest.approx(9.240251, abs=1e-6)
    for W in res.weights:
        np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False)[:2], [1.44225, 1.0], atol=1e-5)
    # alignment: right singular vectors of W_l = left singular vectors of W_{l+1} (|V_l^T U_{l+1}| = I)
    for Wa, Wb in zip(res.weights[:-1], res.weights[1:]):
        Va = np.linalg.svd(Wa)[2][:2].T
        Ub = np.linalg.svd(Wb)[0][:, :2]
        np.testing.assert_allclose(np.abs(Va.T @ Ub), np.eye(2), atol=1e-8)
    np.testing.assert_allclose(res.fitted, Y, atol=1e-12)
    par = T.deep_linear(X, Y, 3, 0.0, architecture="parallel")
    assert par.objective == pytest.approx(res.objective, rel=1e-12)
    np.testing.assert_allclose(par.network.predict(X), Y, atol=1e-12)


def test_min_norm_needs_y_in_range():
    X = np.array([[1.0, 0], [2.0, 0], [0, 0]])
    with pytest.raises(ValueError, match="range of X"):
        T.deep_linear(X, np.array([1.0, 0, 1]), 3, 0.0)


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_regularized_scalar_matches_direct_optimization(L):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 20)), rng.standard_normal(10)
    res = T.deep_linear(X, y, L, 0.5)
    assert res.dual_objective == pytest.approx(res.objective, rel=1e-7)
    Z = res.info["end_to_end"][:, 0]
    # stationarity of 1/2 ||Xz - y||^2 + (beta L/2) ||z||^(2/L) (ICML 2021 Thm 3.3: radius beta t*^(2-L))
    g = X.T @ (X @ Z - y) + 0.5 * np.linalg.norm(Z) ** (2 / L - 2) * Z
    np.testing.assert_allclose(g, 0.0, atol=1e-7)
    # the end-to-end problem from random starts (L-BFGS) never goes below the closed form
    from scipy.optimize import minimize

    def f(z):
        r = X @ z - y
        nz = max(np.linalg.norm(z), 1e-300)
        return 0.5 * r @ r + 0.25 * L * nz ** (2 / L), X.T @ r + 0.5 * nz ** (2 / L - 2) * z

    for seed in range(5):
        z0 = np.random.default_rng(seed).standard_normal(20)
        assert minimize(f, z0, jac=True, method="L-BFGS-B").fun >= res.objective - 1e-9
    if L == 2:
        cp = pytest.importorskip("cvxpy")
        z = cp.Variable(20)
        p = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ z - y) + 0.5 * cp.norm(z, 2)))
        p.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        assert res.objective == pytest.approx(p.value, rel=1e-6)


def test_two_layer_regularized_vector_cvxpy_and_rank_staircase():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((12, 6)), rng.standard_normal((12, 3))
    res = T.two_layer_linear(X, Y, 0.7)
    Z = cp.Variable((6, 3))
    p = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ Z - Y) + 0.7 * cp.normNuc(Z)))
    p.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    assert res.objective == pytest.approx(p.value, rel=1e-6)
    assert res.dual_objective <= res.objective * (1 + 1e-9)
    assert np.linalg.norm(X.T @ res.dual, 2) <= 0.7 * (1 + 1e-6)  # sigma_max(Lambda^T X) <= beta
    # orthonormal columns: rank(W1) = #{sigma_i(X^T Y) > beta}, value 1/2||Y||^2 - 1/2 sum (sigma - beta)_+^2
    Q = np.linalg.qr(rng.standard_normal((40, 20)))[0]
    Y2 = rng.standard_normal((40, 5))
    sig = np.linalg.svd(Q.T @ Y2, compute_uv=False)
    for beta in [(sig[1] + sig[2]) / 2, (sig[3] + sig[4]) / 2]:
        r = T.two_layer_linear(Q, Y2, beta)
        assert r.info["rank"] == int(np.sum(sig > beta))
        assert np.linalg.matrix_rank(r.weights[0], tol=1e-8) == r.info["rank"]
        assert r.objective == pytest.approx(
            0.5 * np.sum(Y2**2) - 0.5 * np.sum(np.maximum(sig - beta, 0) ** 2), rel=1e-10
        )
        assert r.info["method"] == "svt_orthogonal"


def test_deep_linear_whitened_vector_regularized():
    rng = np.random.default_rng(2)
    X = np.linalg.qr(rng.standard_normal((12, 8)))[0].T  # X X^T = I_8
    Y = rng.standard_normal((8, 4))
    L, beta = 4, 0.4
    res = T.deep_linear(X, Y, L, beta)
    sig = np.linalg.svd(Y, compute_uv=False)
    s = res.info["singular_values"]
    # s_i minimizes 1/2 (sigma_i - s)^2 + (beta L / 2) s^(2/L): check against a dense scan
    grid = np.linspace(0, sig.max(), 200001)
    for a, si in zip(sig, np.pad(s, (0, sig.size - s.size))):
        h = 0.5 * (a - grid) ** 2 + 0.5 * beta * L * grid ** (2 / L)
        assert 0.5 * (a - si) ** 2 + 0.5 * beta * L * si ** (2 / L) <= h.min() + 1e-9
    norms = [np.linalg.norm(W) for W in res.weights]
    np.testing.assert_allclose(norms, norms[0], rtol=1e-10)  # equal Frobenius norms
    assert res.dual_objective == pytest.approx(res.objective, rel=1e-9)


def test_vector_deep_regularized_needs_structure():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="whitened"):
        T.deep_linear(rng.standard_normal((6, 4)), rng.standard_normal((6, 2)), 3, 0.1)


def test_validation():
    with pytest.raises(ValueError, match="L must be >= 2"):
        T.deep_linear(X0, Y0, 1, 0.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        T.deep_linear(X0, Y0, 2, -1.0)
    with pytest.raises(ValueError, match="y has 3 rows"):
        T.deep_linear(X0, np.ones(3), 2, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        T.deep_linear(X0, np.array([np.nan, 1.0]), 2, 0.1)

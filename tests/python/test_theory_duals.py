"""convexnn.theory.duals: projections, extreme points, dual constraints, spike-free test, Lemma 7 neurons."""

import warnings

import numpy as np
import pytest

from convexnn import theory as T


def test_projection_vector_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 5)), rng.standard_normal(8)
    P = T.project_dual_ball(X, y, 0.4)
    u = cp.Variable(8)
    p = cp.Problem(cp.Minimize(cp.sum_squares(u - y)), [cp.norm(X.T @ u, 2) <= 0.4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    np.testing.assert_allclose(P, u.value, atol=1e-6)
    assert np.linalg.norm(X.T @ P) == pytest.approx(0.4, rel=1e-10)
    np.testing.assert_allclose(T.project_dual_ball(X, y, 1e6), y)  # inside: unchanged


def test_projection_matrix_spectral_ball_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((7, 4)), rng.standard_normal((7, 3))
    P = T.project_dual_ball(X, Y, 0.5)
    U = cp.Variable((7, 3))
    p = cp.Problem(cp.Minimize(cp.sum_squares(U - Y)), [cp.sigma_max(U.T @ X) <= 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(P, U.value, atol=1e-5)
    assert np.linalg.norm(P.T @ X, 2) <= 0.5 * (1 + 1e-6)


def test_extreme_points_are_the_optimal_neurons():
    rng = np.random.default_rng(2)
    Q = np.linalg.qr(rng.standard_normal((30, 10)))[0]
    Y = rng.standard_normal((30, 4))
    sig = np.linalg.svd(Q.T @ Y, compute_uv=False)
    beta = 0.5 * (sig[1] + sig[2])
    E = T.extreme_points(Q, Y, beta)
    assert E.shape[1] == 2  # rank staircase at sigma_i(Y^T X)
    res = T.two_layer_linear(Q, Y, beta)
    D = res.info["neuron_directions"]
    np.testing.assert_allclose(np.abs(np.linalg.svd(E.T @ D, compute_uv=False)), 1.0, atol=1e-8)  # same span
    assert T.extreme_points(Q, Y, sig[0] * 1.01).shape[1] == 0


def test_relu_dual_constraint_and_duality_gap():
    rng = np.random.default_rng(3)
    A = np.linalg.qr(rng.standard_normal((6, 4)))[0].T
    y = np.array([1.5, -0.7, 2.0, -1.2])
    res = T.whitened_two_layer(A, y, 1.0)
    val, exact = T.relu_dual_constraint(A, res.dual)
    assert exact and val == pytest.approx(1.0)
    rep = T.duality_gap(res.network, A, y, 1.0, dual=res.dual)
    assert rep.certified and abs(rep.gap) < 1e-12
    # sampled estimate on non-whitened data never exceeds the exact maximum found by brute force in 2-D
    B = rng.standard_normal((5, 2))
    v = rng.standard_normal(5)
    ang = np.linspace(0, 2 * np.pi, 200001)
    brute = np.abs(v @ np.maximum(B @ np.vstack([np.cos(ang), np.sin(ang)]), 0)).max()
    est, exact = T.relu_dual_constraint(B, v)
    assert not exact and est <= brute + 1e-12 and est >= 0.999 * brute
    # a suboptimal network has a positive certified gap (linear network)
    X, Y = rng.standard_normal((8, 5)), rng.standard_normal(8)
    lin = T.MLP([rng.standard_normal((5, 3)), rng.standard_normal(3)], None, "linear")
    rep = T.duality_gap(lin, X, Y, 0.5)
    assert rep.certified and rep.gap > 0
    opt = T.two_layer_linear(X, Y, 0.5)
    assert T.duality_gap(opt.network, X, Y, 0.5).gap < 1e-9


def test_spike_free():
    assert T.spike_free_ratio(np.diag([1.0, 2.0, 3.0]))[0] <= 1 + 1e-12  # diagonal: spike-free
    rng = np.random.default_rng(4)
    Aw = np.linalg.qr(rng.standard_normal((7, 4)))[0].T
    assert T.spike_free_ratio(Aw)[0] <= 1 + 1e-12  # whitened (Lemma 4)
    c = np.abs(rng.standard_normal(5))
    assert T.spike_free_ratio(np.outer(c, rng.standard_normal(3)))[0] <= 1 + 1e-12  # rank one, c >= 0 (Lemma 5)
    r, exact = T.spike_free_ratio(np.array([[1.0], [-2.0], [0.5]]))  # d = 1 with both signs: not
    assert exact and r == np.inf
    assert T.spike_free_ratio(rng.standard_normal((6, 2)))[0] > 1  # n > d Gaussian: spikes


def test_hull_distance_neurons_lemma7():
    U, b, d = T.hull_distance_neurons(np.eye(3))
    np.testing.assert_allclose(d, np.sqrt(1.5), atol=1e-9)
    np.testing.assert_allclose(U[:, 0], [0.816497, -0.408248, -0.408248], atol=1e-6)
    np.testing.assert_allclose(b, 0.408248, atol=1e-6)
    np.testing.assert_allclose(np.maximum(np.eye(3) @ U + b, 0), np.sqrt(1.5) * np.eye(3), atol=1e-9)
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(5)
    A = rng.standard_normal((8, 12))
    U, b, d = T.hull_distance_neurons(A)
    for i in (0, 3):
        lam = cp.Variable(7)
        others = np.delete(A, i, axis=0)
        p = cp.Problem(cp.Minimize(cp.norm(A[i] - others.T @ lam)), [lam >= 0, cp.sum(lam) == 1])
        p.solve(solver=cp.CLARABEL)
        assert d[i] == pytest.approx(p.value, rel=1e-6)
    H = np.maximum(A @ U + b, 0)  # Theorem 6: diagonal activations, interpolation
    np.testing.assert_allclose(H, np.diag(d), atol=1e-8)

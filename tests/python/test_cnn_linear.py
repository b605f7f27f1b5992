"""Linear two-layer CNN = nuclear-norm program (Pilanci & Ergen, ICML 2020, eq. (12), A.5, A.7): optimum vs
CVXPY + Clarabel, honest certificate, SVD map back, optimal filters = top eigenvectors at the dual optimum, and
Adam and SGD on the non-convex linear CNN converging to the convex optimum."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexnn.cnn import LinearCNN, linear_cnn_beta_max, solve_linear_cnn, train_cnn
from convexnn.cnn.reference import cvx_linear_cnn

pytest.importorskip("cvxpy")


def _data(n=25, K=4, h=3, c=None, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n, K, h))
    y = rng.standard_normal(n if c is None else (n, c))
    return P, y


@pytest.mark.parametrize("c", [None, 2])
@pytest.mark.parametrize("ratio", [0.05, 0.3])
def test_optimum_matches_cvxpy_and_certificate_is_honest(c, ratio):
    P, y = _data(c=c)
    beta = ratio * linear_cnn_beta_max(P, y)
    res = solve_linear_cnn(P, y, beta, tol=1e-9)
    ref, _ = cvx_linear_cnn(P, y, beta)
    assert res.status == "converged" and res.gap <= 1e-9
    assert res.objective == pytest.approx(ref, rel=1e-6)
    assert res.dual_objective <= ref * (1 + 1e-8)  # a true lower bound
    assert res.objective >= ref * (1 - 1e-8)
    # the dual point is feasible: sigma_max([X_k^T v]) <= beta
    v = res.dual_point.reshape(len(P), -1)
    M = np.concatenate([P[:, k, :].T @ v for k in range(P.shape[1])], axis=1)
    assert np.linalg.norm(M, 2) <= beta * (1 + 1e-12)
    assert res.Z.shape == ((3, 4) if c is None else (3, 4, 2))
    np.testing.assert_allclose(res.predict(P), np.einsum("nkh,hk...->n...", P, res.Z), atol=1e-12)


@pytest.mark.parametrize("c", [None, 3])
def test_svd_map_back_has_the_convex_objective(c):
    P, y = _data(c=c, seed=1)
    beta = 0.1 * linear_cnn_beta_max(P, y)
    res = solve_linear_cnn(P, y, beta, tol=1e-10)
    net = res.network()
    assert isinstance(net, LinearCNN) and net.n_filters == res.singular_values.size
    assert net.n_filters <= min(3, 4 * (1 if c is None else c))
    assert net.objective(P, y, beta) == pytest.approx(res.objective, rel=1e-9)
    np.testing.assert_allclose(net.predict(P), res.predict(P), atol=1e-10)
    # balanced factors: ||u_j|| = ||alpha_j|| = sqrt(s_j)
    U, A = res.filters_and_weights()
    np.testing.assert_allclose(np.linalg.norm(U, axis=1) ** 2, res.singular_values, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(A.reshape(len(A), -1), axis=1) ** 2, res.singular_values, rtol=1e-10)


def test_optimal_filters_are_top_eigenvectors_at_the_dual_optimum():
    P, y = _data(n=30, K=5, h=4, seed=2)
    beta = 0.15 * linear_cnn_beta_max(P, y)
    res = solve_linear_cnn(P, y, beta, tol=1e-11)
    v = res.dual_point
    S = sum(P[:, k, :].T @ np.outer(v, v) @ P[:, k, :] for k in range(P.shape[1]))  # sum_k X_k^T v v^T X_k
    lam, vecs = np.linalg.eigh(S)
    assert lam[-1] == pytest.approx(beta**2, rel=1e-6)  # the dual constraint (10) is tight, rhs beta^2
    U, _ = res.filters_and_weights()
    assert len(U) >= 1
    for u in U:
        a = u / np.linalg.norm(u)
        assert a @ S @ a == pytest.approx(lam[-1], rel=1e-6)  # a_j is in the top eigenspace
    # each filter lies in the span of eigenvectors whose eigenvalue equals beta^2
    top = vecs[:, lam >= lam[-1] * (1 - 1e-5)]
    for u in U:
        assert np.linalg.norm(u - top @ (top.T @ u)) <= 1e-6 * np.linalg.norm(u)


def test_k1_is_the_group_lasso_of_one_group():
    P, y = _data(K=1, h=4, seed=3)
    X = P[:, 0, :]
    beta = 0.3 * np.linalg.norm(X.T @ y)
    res = solve_linear_cnn(P, y, beta, tol=1e-11)
    # the closed form z = (X^T X + mu I)^{-1} X^T y with mu = beta / ||z||: check its fixed-point equation
    z = res.Z[:, 0]
    mu = beta / np.linalg.norm(z)
    np.testing.assert_allclose((X.T @ X + mu * np.eye(4)) @ z, X.T @ y, rtol=1e-4)  # point error ~ sqrt(gap)


def test_zero_solution_above_beta_max():
    P, y = _data(seed=4)
    bmax = linear_cnn_beta_max(P, y)
    res = solve_linear_cnn(P, y, 1.001 * bmax)
    assert np.all(res.Z == 0) and res.objective == pytest.approx(0.5 * np.sum(y**2))
    assert solve_linear_cnn(P, y, 0.99 * bmax, tol=1e-9).objective < 0.5 * np.sum(y**2)


@pytest.mark.parametrize("c", [None, 2])
def test_adam_on_the_nonconvex_linear_cnn_converges_to_the_convex_objective(c):
    P, y = _data(n=40, K=4, h=3, c=c, seed=5)
    beta = 0.1 * linear_cnn_beta_max(P, y)
    res = solve_linear_cnn(P, y, beta, tol=1e-10)
    for seed in range(2):
        tr = train_cnn(
            P,
            y,
            beta,
            n_filters=3,
            model="linear",
            optimizer="adam",
            lr=1e-2,
            n_epochs=2000,
            seed=seed,
            record_every=100,
        )
        assert tr.objective == pytest.approx(tr.network.objective(P, y, beta), rel=1e-12)
        assert tr.objective >= res.dual_objective * (1 - 1e-12)  # weak duality: nothing goes below
        objs = tr.times_objectives()[1]
        assert objs[-1] < objs[0]
        assert tr.objective == pytest.approx(res.objective, rel=1e-6)  # every run reaches the global optimum


def test_sgd_on_the_nonconvex_linear_cnn_converges_to_the_convex_objective():
    """Full-batch SGD (PyTorch autograd when installed, else the NumPy trainer) reaches the nuclear-norm optimum."""
    try:
        import torch  # noqa: F401

        backend = "torch"
    except ImportError:
        backend = "numpy"
    P, y = _data(n=40, K=4, h=3, seed=5)
    beta = 0.1 * linear_cnn_beta_max(P, y)
    res = solve_linear_cnn(P, y, beta, tol=1e-10)
    tr = train_cnn(
        P,
        y,
        beta,
        n_filters=3,
        model="linear",
        optimizer="sgd",
        lr=0.1,
        n_epochs=6000,
        seed=0,
        record_every=500,
        backend=backend,
    )
    assert tr.status == "max_iter"
    assert tr.objective >= res.dual_objective * (1 - 1e-12)
    assert tr.objective == pytest.approx(res.objective, rel=1e-6)


def test_not_converged_warns():
    P, y = _data(seed=6)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        res = solve_linear_cnn(P, y, 0.01 * linear_cnn_beta_max(P, y), tol=1e-14, max_iter=3, check_every=1)
    assert res.status == "max_iter" and res.dual_objective <= res.objective


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(patches=np.zeros((5, 3)), y=np.zeros(5), beta=1.0), ValueError, "patches must have shape"),
        (dict(patches=np.zeros((5, 2, 3)), y=np.zeros(4), beta=1.0), ValueError, "y must have shape"),
        (dict(patches=np.zeros((5, 2, 3)), y=np.zeros(5), beta=0.0), ValueError, "beta must be >"),
        (dict(patches=np.zeros((5, 2, 3)), y=np.full(5, np.nan), beta=1.0), ValueError, "y contains NaN"),
        (dict(patches=np.full((5, 2, 3), np.inf), y=np.zeros(5), beta=1.0), ValueError, "patches contains NaN"),
        (dict(patches=np.zeros((5, 2, 3)), y=np.zeros(5), beta="a"), TypeError, "beta"),
    ],
)
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        solve_linear_cnn(**kwargs)

"""ReLU CNNs as convex programs (Pilanci & Ergen, ICML 2020, Section 4.1 and Appendix A.1): per-patch outputs
(the exact program on the stacked patch matrix) and sum-pooled outputs (the patch operator driving the C++
solvers), against CVXPY + Clarabel, with the Theorem-1 map back whose non-convex objective equals the convex one."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import convexnn as cnn
from convexnn import _core
from convexnn.cnn import (
    GatedReLUCNN,
    PatchOperator,
    ReLUCNN,
    cluster_gates,
    gaussian_patterns,
    network_gates,
    operator_interface_available,
    patterns_from_gates,
    relu_cnn_beta_max,
    solve_relu_cnn,
    stacked_patches,
    train_cnn,
)
from convexnn.cnn.reference import cvx_pooled_relu_cnn
from convexnn.reference.cvx import solve_gated_cvxpy, solve_relu_cvxpy

pytest.importorskip("cvxpy")

needs_operator_interface = pytest.mark.skipif(
    not operator_interface_available(),
    reason="this build of convexnn._core cannot run its solvers on Python operators (BlockOperatorF64 is not "
    "subclassable from Python), which the pooled ReLU CNN needs",
)


def _patches(n=6, K=3, h=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, K, h))


def _pooled_dense(P, masks):
    n, K, h = P.shape
    Xs = P.reshape(n * K, h)
    return [(masks[:, [i]] * Xs).reshape(n, K, h).sum(axis=1) for i in range(masks.shape[1])]


# ---- the patch operator ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_patch_operator_is_the_pooled_masked_operator(dtype):
    rng = np.random.default_rng(1)
    P = rng.standard_normal((9, 5, 4))
    Xs = stacked_patches(P)
    pats = cnn.sample_patterns(Xs, 30, seed=1)
    op = PatchOperator(Xs if dtype == np.float64 else Xs.astype(dtype), pats._set, 5, dtype=dtype)
    A = _pooled_dense(P, pats.dense())
    U = rng.standard_normal((pats.n_patterns, 4, 2))
    R = rng.standard_normal((9, 2))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(op.forward(U.astype(dtype)), sum(a @ u for a, u in zip(A, U)), **tol)
    np.testing.assert_allclose(op.adjoint(R.astype(dtype)), np.array([a.T @ R for a in A]), **tol)
    # the same as the dense MaskedOperatorF64 on the explicitly stacked matrix, pooled / expanded
    M = _core.MaskedOperatorF64(Xs, pats._set)
    np.testing.assert_allclose(op.forward(U.astype(dtype)), M.forward(U).reshape(9, 5, 2).sum(1), **tol)
    np.testing.assert_allclose(op.adjoint(R.astype(dtype)), M.adjoint(np.repeat(R, 5, axis=0)), **tol)
    sub = np.array([3, 0, 3], dtype=np.int64)
    np.testing.assert_allclose(op.forward(U[sub].astype(dtype), sub), sum(A[i] @ U[i] for i in sub), **tol)
    np.testing.assert_allclose(op.block_gram(2), A[2].T @ A[2], **tol)
    assert (op.n_samples, op.block_dim, op.n_blocks) == (9, 4, pats.n_patterns)
    assert np.shares_memory(Xs, P) and (dtype != np.float64 or np.shares_memory(op.stacked, P))  # no 2nd stack


def test_patch_operator_bad_shape():
    Xs = np.zeros((10, 3))
    pats = cnn.sample_patterns(np.random.default_rng(0).standard_normal((10, 3)), 5)
    with pytest.raises(ValueError, match="stacked must have"):
        PatchOperator(Xs, pats._set, 3)


# ---- per-patch outputs: the exact program on X' -----------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_per_patch_exact_matches_cvxpy_and_the_network(bias):
    P = _patches(n=4 + bias, seed=2)
    y = np.random.default_rng(3).standard_normal(P.shape[:2])
    Xs = stacked_patches(P)
    # all patterns of X' (the global optimum) without bias; 12 sampled ones with bias (smaller program)
    pats = gaussian_patterns(P, 12, bias=True) if bias else cnn.enumerate_patterns(Xs)
    beta = 0.1
    res = solve_relu_cnn(P, y, beta, patterns=pats, pooling="none", formulation="relu", bias=bias, tol=1e-8)
    Xb = np.hstack([Xs, np.ones((len(Xs), 1))]) if bias else Xs
    ref = solve_relu_cvxpy(Xb, pats.dense(), y.reshape(-1), beta)
    assert res.status == "converged" and res.max_violation <= 1e-8
    assert res.objective == pytest.approx(ref["objective"], rel=1e-4)
    assert res.dual_objective <= ref["objective"] * (1 + 1e-6)
    net = res.network()
    assert isinstance(net, ReLUCNN) and net.pooling == "none"
    assert net.predict(P).shape == y.shape
    assert net.objective(P, y, beta) == pytest.approx(res.objective, rel=1e-6)
    if not bias:  # all patterns: no run of the non-convex per-patch CNN goes below the global optimum
        tr = train_cnn(P, y, beta, n_filters=8, pooling="none", lr=1e-2, n_epochs=800, record_every=100)
        assert tr.objective >= res.dual_objective * (1 - 1e-9)


def test_per_patch_gated_matches_cvxpy():
    P = _patches(n=8, seed=4)
    y = np.random.default_rng(5).standard_normal(P.shape[:2] + (2,))
    pats = gaussian_patterns(P, 15, seed=0)
    res = solve_relu_cnn(P, y, 0.2, patterns=pats, pooling="none", formulation="gated", tol=1e-9)
    ref = solve_gated_cvxpy(stacked_patches(P), pats.dense(), y.reshape(-1, 2), 0.2)
    assert res.objective == pytest.approx(ref["objective"], rel=1e-6)
    net = res.network()
    assert isinstance(net, GatedReLUCNN)
    assert net.objective(P, y, 0.2) == pytest.approx(res.objective, rel=1e-6)


# ---- sum pooling: the patch operator in the C++ solvers ------------------------------------------------------------


@needs_operator_interface
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_pooled_gated_matches_cvxpy(loss):
    P = _patches(n=10, K=3, h=3, seed=6)
    rng = np.random.default_rng(7)
    y = rng.standard_normal(10) if loss == "squared" else np.where(rng.standard_normal(10) > 0, 1.0, -1.0)
    pats = gaussian_patterns(P, 12, seed=1)
    beta = 0.1 * relu_cnn_beta_max(P, y, pats, loss=loss)
    res = solve_relu_cnn(P, y, beta, patterns=pats, formulation="gated", loss=loss, tol=1e-9)
    ref = cvx_pooled_relu_cnn(P, pats.dense(), y, beta, loss=loss, exact=False)
    assert res.status == "converged"
    assert res.objective == pytest.approx(ref["objective"], rel=1e-6)
    assert res.dual_objective <= ref["objective"] * (1 + 1e-7)
    net = res.network()
    assert net.objective(P, y, beta, loss=loss) == pytest.approx(res.objective, rel=1e-6)


@needs_operator_interface
@pytest.mark.parametrize("bias", [False, True])
def test_pooled_exact_matches_cvxpy_and_the_network(bias):
    P = _patches(n=6, K=3, h=2, seed=8)
    y = np.random.default_rng(9).standard_normal(6)
    Xs = stacked_patches(P)
    # all patterns of X' (the global optimum) without bias; 15 sampled ones with bias (a smaller program)
    pats = gaussian_patterns(P, 15, seed=3, bias=True) if bias else cnn.enumerate_patterns(Xs)
    beta = 0.05
    res = solve_relu_cnn(P, y, beta, patterns=pats, formulation="relu", bias=bias, tol=1e-8)
    Pb = np.concatenate([P, np.ones(P.shape[:2] + (1,))], axis=2) if bias else P
    ref = cvx_pooled_relu_cnn(Pb, pats.dense(), y, beta, exact=True)
    assert res.status == "converged" and res.max_violation <= 1e-8
    assert res.objective == pytest.approx(ref["objective"], rel=1e-4)
    assert res.dual_objective <= ref["objective"] * (1 + 1e-6)
    net = res.network()
    assert isinstance(net, ReLUCNN) and net.pooling == "sum"
    assert net.objective(P, y, beta) == pytest.approx(res.objective, rel=1e-6)
    if not bias:  # all patterns: the non-convex pooled CNN trained by Adam never goes below the global optimum
        tr = train_cnn(P, y, beta, n_filters=6, lr=1e-2, n_epochs=800, record_every=100)
        assert tr.objective >= res.dual_objective * (1 - 1e-9)


@needs_operator_interface
def test_pooled_float32_iterations_certified_in_float64():
    P = _patches(n=12, K=4, h=3, seed=13)
    y = np.random.default_rng(14).standard_normal(12)
    pats = gaussian_patterns(P, 20, seed=4)
    r64 = solve_relu_cnn(P, y, 0.2, patterns=pats, formulation="gated", tol=1e-9)
    r32 = solve_relu_cnn(P, y, 0.2, patterns=pats, formulation="gated", tol=1e-5, dtype=np.float32)
    assert r32.status == "converged"
    assert r32.dual_objective <= r64.objective * (1 + 1e-9)  # the float64 certificate is a true bound
    assert r32.objective == pytest.approx(r64.objective, rel=1e-4)


@needs_operator_interface
def test_pooled_gated_is_a_lower_bound_of_the_exact_program():
    P = _patches(n=8, K=3, h=2, seed=10)
    y = np.random.default_rng(11).standard_normal(8)
    pats = gaussian_patterns(P, 10, seed=2)
    gated = solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="gated", tol=1e-9)
    exact = solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="relu", tol=1e-8)
    assert gated.objective <= exact.objective * (1 + 1e-6)


# ---- patterns -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_pattern_sources(bias):
    P = _patches(n=20, K=4, h=3, seed=12)
    Xs = stacked_patches(P)
    G = cluster_gates(P, n_clusters=5, seed=0, bias=bias)
    assert G.shape == (3 + bias, 5)
    pats = patterns_from_gates(P, G, bias=bias)
    Xb = np.hstack([Xs, np.ones((len(Xs), 1))]) if bias else Xs
    dense = pats.dense()
    for j in range(dense.shape[1]):  # every mask is the pattern of one of the gates
        assert any(np.array_equal(dense[:, j], Xb @ G[:, i] >= 0) for i in range(5))
    net = ReLUCNN(np.random.default_rng(0).standard_normal((4, 3 + bias)), np.ones(4), bias=bias)
    g = network_gates(net)
    act = (np.concatenate([P, np.ones(P.shape[:2] + (1,))], 2) if bias else P) @ g > 0
    pn = patterns_from_gates(P, g, bias=bias)
    assert pn.n_patterns <= 4
    for j in range(pn.n_patterns):
        assert any(np.array_equal(pn.dense()[:, j], act.reshape(-1, 4)[:, i]) for i in range(4))


def test_bad_input():
    P = _patches()
    with pytest.raises(ValueError, match="pooling"):
        solve_relu_cnn(P, np.zeros(6), 0.1, pooling="max")
    with pytest.raises(ValueError, match="one target per patch"):
        solve_relu_cnn(P, np.zeros(6), 0.1, pooling="none")
    with pytest.raises(ValueError, match="y has 5 rows"):
        solve_relu_cnn(P, np.zeros(5), 0.1, pooling="sum")
    with pytest.raises(ValueError, match="patches must have shape"):
        solve_relu_cnn(P[0], np.zeros(6), 0.1)
    with pytest.raises(ValueError, match="patterns were built on"):
        solve_relu_cnn(P, np.zeros(6), 0.1, patterns=cnn.sample_patterns(P[:, 0, :], 5))
    with pytest.raises(ValueError, match="beta"):
        solve_relu_cnn(P, np.zeros(6), -1.0)


@needs_operator_interface
def test_pooled_warm_start_validation_and_gated_warm_start():
    P = _patches(n=8, K=3, h=2, seed=15)
    y = np.random.default_rng(16).standard_normal(8)
    pats = gaussian_patterns(P, 6, seed=0)
    cold = solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="gated", tol=1e-9)
    warm = solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="gated", tol=1e-9, warm_start=cold)
    assert warm.objective == pytest.approx(cold.objective, rel=1e-8) and warm.n_iter <= cold.n_iter
    with pytest.raises(ValueError, match="warm_start must be finite with shape"):
        solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="gated", warm_start=np.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match="gated coefficients"):
        solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="gated", warm_start=(cold.coef_, cold.coef_))
    exact = solve_relu_cnn(P, y, 0.1, patterns=pats, formulation="relu", tol=1e-8, warm_start=cold)
    assert exact.status == "converged" and exact.objective >= cold.objective * (1 - 1e-8)


@needs_operator_interface
@pytest.mark.parametrize("loss", ["logistic", "squared_hinge"])
def test_pooled_exact_binary_losses_match_cvxpy(loss):
    P = _patches(n=10, K=3, h=2, seed=17)
    y = np.where(np.random.default_rng(18).standard_normal(10) > 0, 1.0, -1.0)
    pats = gaussian_patterns(P, 8, seed=5)
    beta = 0.2 * relu_cnn_beta_max(P, y, pats, loss=loss)
    res = solve_relu_cnn(P, y, beta, patterns=pats, formulation="relu", loss=loss, tol=1e-8)
    ref = cvx_pooled_relu_cnn(P, pats.dense(), y, beta, loss=loss, exact=True)
    assert res.max_violation <= 1e-8
    assert res.objective == pytest.approx(ref["objective"], rel=1e-4)
    assert res.dual_objective <= ref["objective"] * (1 + 1e-6)
    assert res.network().objective(P, y, beta, loss=loss) == pytest.approx(res.objective, rel=1e-6)


@needs_operator_interface
def test_pooled_exact_hinge_certificate_is_honest():
    # The hinge is non-smooth: FISTA converges slowly (a 1e-8 solve took ~300 s here); a short run must still bracket
    # the CVXPY optimum between its dual bound and its objective.
    P = _patches(n=10, K=3, h=2, seed=17)
    y = np.where(np.random.default_rng(18).standard_normal(10) > 0, 1.0, -1.0)
    pats = gaussian_patterns(P, 8, seed=5)
    beta = 0.2 * relu_cnn_beta_max(P, y, pats, loss="hinge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = solve_relu_cnn(P, y, beta, patterns=pats, formulation="relu", loss="hinge", tol=1e-8, max_iter=600)
    ref = cvx_pooled_relu_cnn(P, pats.dense(), y, beta, loss="hinge", exact=True)
    assert res.max_violation <= 1e-8
    assert res.dual_objective <= ref["objective"] * (1 + 1e-7) <= res.objective * (1 + 2e-7)
    assert res.objective == pytest.approx(ref["objective"], rel=1e-2)
    assert res.network().objective(P, y, beta, loss="hinge") == pytest.approx(res.objective, rel=1e-6)

"""convexnn.theory.relu: ICML 2021 Thm 4.1/4.2, Prop 4.1/4.2 (rank-one data) and Thm 4.4 (BN)."""

import numpy as np
import pytest

from convexnn import theory as T


def _rank_one(n=8, d=5, seed=0, signed=False):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(n) if signed else np.abs(rng.standard_normal(n))
    return np.outer(c, rng.standard_normal(d)), c, rng


@pytest.mark.parametrize("L", [2, 3, 5])
def test_rank_one_min_norm(L):
    X, c, _ = _rank_one()
    res = T.rank_one_relu(X, 2 * c, L, 0.0, widths=[3] * (L - 1))
    np.testing.assert_allclose(res.fitted, 2 * c, atol=1e-12)
    a0 = X[0] / c[0]
    assert res.objective == pytest.approx(L * (2 / np.linalg.norm(a0)) ** (2 / L), rel=1e-12)
    ranks = T.layer_ranks(res.network, rtol=1e-9)
    assert (ranks == 1).all()  # rank one
    norms = T.layer_norms(res.network)
    np.testing.assert_allclose(norms["frobenius"], res.info["t"], rtol=1e-12)  # equal norms t*
    np.testing.assert_allclose(norms["operator"], res.info["t"], rtol=1e-12)
    u1 = np.linalg.svd(res.weights[0])[0][:, 0]
    assert abs(u1 @ a0) / np.linalg.norm(a0) == pytest.approx(1.0)  # W1 aligned with a0


@pytest.mark.parametrize("L", [2, 3, 4])
def test_rank_one_regularized_never_beaten_by_training(L):
    X, c, rng = _rank_one(n=10, d=4, seed=1)
    y = rng.standard_normal(10)
    beta = 0.1
    res = T.rank_one_relu(X, y, L, beta)
    assert res.dual_objective == pytest.approx(res.objective, rel=1e-9)
    for seed in range(3):
        tr = T.train(T.MLP.random(4, [6] * (L - 1), seed=seed), X, y, beta, optimizer="lbfgs", n_iter=2000)
        assert tr.objective >= res.objective * (1 - 1e-9)
    assert tr.objective <= res.objective * 1.01 or L > 2  # L = 2 training reaches it


def test_rank_one_matches_library_exact_program():
    cnn = pytest.importorskip("convexnn")
    X, c, rng = _rank_one(n=6, d=3, seed=2)
    y = rng.standard_normal(6)
    res = T.rank_one_relu(X, y, 2, 0.3)
    lib = cnn.solve(X, y, 0.3, patterns=cnn.enumerate_patterns(X), formulation="relu", tol=1e-9)
    assert lib.objective == pytest.approx(res.objective, rel=1e-6)


def test_rank_one_assumptions():
    X, c, _ = _rank_one(signed=True)
    with pytest.raises(ValueError, match="c >= 0"):
        T.rank_one_relu(X, c, 2, 0.1)
    with pytest.raises(ValueError, match="rank one"):
        T.rank_one_relu(np.random.default_rng(0).standard_normal((5, 3)), np.ones(5), 2, 0.1)
    X, c, _ = _rank_one()
    with pytest.raises(ValueError, match="y = c k"):
        T.rank_one_relu(X, np.ones_like(c) + np.arange(c.size), 3, 0.0)


def test_rank_one_with_bias_is_the_spline_of_c():
    X, c, rng = _rank_one(n=7, d=4, seed=3, signed=True)
    y = rng.standard_normal(7)
    a0 = X[0] / c[0]
    res = T.rank_one_relu_bias(X, y, 0.2)
    sp = T.one_d_spline(c * np.linalg.norm(a0), y, 0.2)
    assert res.objective == pytest.approx(sp.objective, rel=1e-10)
    np.testing.assert_allclose(res.network.predict(X), sp.fitted, atol=1e-6)
    tr = T.train(T.MLP.random(4, [30], bias="all", seed=0, bias_init=1.0), X, y, 0.2, optimizer="lbfgs", n_iter=3000)
    assert tr.objective >= res.objective * (1 - 1e-9)


@pytest.mark.parametrize("L", [3, 4])
def test_prop41_last_hidden_bias(L):
    X, c, rng = _rank_one(n=6, d=3, seed=4)
    y = rng.standard_normal(6)
    res = T.rank_one_relu_bias(X, y, 0.0, L=L)
    np.testing.assert_allclose(res.fitted, y, atol=1e-7)
    assert res.info["network_value"] == pytest.approx(res.objective, rel=1e-6)
    reg = T.rank_one_relu_bias(X, y, 0.1, L=L)
    start = T.MLP.random(3, [4] * (L - 1), bias="last", seed=1, bias_init=1.0)
    tr = T.train(start, X, y, 0.1, optimizer="lbfgs", n_iter=2000)
    assert tr.objective >= reg.objective * (1 - 1e-6)


@pytest.mark.parametrize("beta, balanced, literal", [(0.1, 0.585, 0.7065), (0.5, 2.625, 2.8125), (1.0, 4.5, 4.5)])
def test_bn_last_layers(beta, balanced, literal):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((12, 30))
    Y = np.eye(3)[np.repeat([0, 1, 2], 4)]
    bal = T.bn_last_layers(A, Y, beta)
    lit = T.bn_last_layers(A, Y, beta, variant="literal")
    assert bal.objective == pytest.approx(balanced, abs=1e-10)
    assert lit.objective == pytest.approx(literal, abs=1e-10)
    assert bal.dual_objective == pytest.approx(bal.objective, abs=1e-10)
    np.testing.assert_allclose(bal.fitted, lit.fitted, atol=1e-12)  # same function
    np.testing.assert_allclose(bal.fitted, Y * max(1 - beta / 2, 0), atol=1e-12)
    # BN of the paper's weights outputs y_j / ||y_j||
    Z = T.bn_forward(A @ lit.network.W, lit.info["gamma"], lit.info["alpha"])
    np.testing.assert_allclose(Z, Y / 2.0, atol=1e-12)


def test_bn_gamma_alpha_and_converters():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((6, 10))
    res = T.bn_last_layers(A, np.eye(3)[[0, 0, 1, 1, 2, 2]], 0.1, variant="literal")
    np.testing.assert_allclose(res.info["gamma"], 0.816497, atol=1e-6)
    np.testing.assert_allclose(res.info["alpha"], 0.577350, atol=1e-6)
    g, a = T.bn_to_standard(res.info["gamma"], res.info["alpha"], 6)
    # standard BN with (g, a) equals the paper's BN
    Z = A @ res.network.W
    std = (Z - Z.mean(0)) / Z.std(0) * g + a
    np.testing.assert_allclose(std, T.bn_forward(Z, res.info["gamma"], res.info["alpha"]), atol=1e-12)
    np.testing.assert_allclose(T.bn_from_standard(g, a, 6), (res.info["gamma"], res.info["alpha"]))
    with pytest.raises(ValueError, match="full row rank"):
        T.bn_last_layers(np.ones((4, 6)), np.eye(2)[[0, 0, 1, 1]], 0.1)

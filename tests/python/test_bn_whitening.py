"""convexnn.bn: the BN layer and its PyTorch units, Lemma 1.1's rescaling, whitening U', truncation (Section 5.2 of
Ergen et al., ICLR 2022) and prediction on new data through the rebuilt network."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn import bn
from convexnn.reference.cvx import solve_relu_cvxpy


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These solves are tiny: on a shared 2-core machine OpenMP threads only add waiting (measured 13x slower).
    before = cnn.get_num_threads()
    cnn.set_num_threads(1)
    yield
    cnn.set_num_threads(before)


def _data(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ np.diag(np.geomspace(4.0, 0.1, d)) + 2.0
    y = np.abs(X[:, 0] - 2.0) - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, y


def _random_net(rng, m=5, d=3, c=None):
    w2 = rng.standard_normal(m) if c is None else rng.standard_normal((m, c))
    return bn.BNReLUNetwork(rng.standard_normal((m, d)), rng.standard_normal(m), rng.standard_normal(m), w2)


# ---- the BN layer ------------------------------------------------------------------------------------------------


def test_bn_forward_matches_the_definition_and_pytorch_units():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((9, 4)) * 3 + 1
    gamma, alpha = rng.standard_normal(4), rng.standard_normal(4)
    out = bn.bn_forward(Z, gamma, alpha)
    Zc = Z - Z.mean(0)
    np.testing.assert_allclose(out, Zc / np.linalg.norm(Zc, axis=0) * gamma + alpha / 3.0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(out, axis=0), np.hypot(gamma, alpha), rtol=1e-12)
    # PyTorch BatchNorm1d, training mode, biased variance, eps = 0: weight * (z - mean) / sqrt(var) + bias.
    weight, bias = bn.to_torch_units(gamma, alpha, 9)
    torch_formula = (Z - Z.mean(0)) / np.sqrt(Z.var(0)) * weight + bias
    np.testing.assert_allclose(out, torch_formula, atol=1e-13)
    g2, a2 = bn.from_torch_units(weight, bias, 9)
    np.testing.assert_allclose(g2, gamma, rtol=1e-15)
    np.testing.assert_allclose(a2, alpha, rtol=1e-15)
    # A constant column is the constant neuron alpha / sqrt(n).
    Zk = np.column_stack([np.full(9, 2.5), Z[:, 0]])
    np.testing.assert_allclose(bn.bn_forward(Zk, [1.0, 1.0], [0.6, 0.0])[:, 0], 0.2, atol=1e-15)


def test_lemma_1_1_balancing_and_theta_s_form():
    rng = np.random.default_rng(1)
    X, y = _data(1)
    for c in (None, 2):
        net = _random_net(rng, c=c)
        Y = y if c is None else np.column_stack([y, -y])
        bal, unit = net.balanced(), net.unit_form()
        for other in (bal, unit):
            np.testing.assert_allclose(other.forward(X), net.forward(X), atol=1e-12)
        wn = np.abs(bal.w2) if c is None else np.linalg.norm(bal.w2, axis=1)
        np.testing.assert_allclose(bal.gamma**2 + bal.alpha**2, wn**2, rtol=1e-12)
        np.testing.assert_allclose(unit.gamma**2 + unit.alpha**2, 1.0, rtol=1e-12)
        beta = 0.7
        wd, l1 = net.objective(X, Y, beta), net.objective(X, Y, beta, form="l1")
        assert wd >= l1 - 1e-12  # AM-GM
        assert bal.objective(X, Y, beta) == pytest.approx(l1, rel=1e-12)
        assert unit.objective(X, Y, beta, form="l1") == pytest.approx(l1, rel=1e-12)
        assert net.objective(X, Y, beta, include_w1=True) == pytest.approx(
            wd + 0.5 * beta * np.sum(net.W1**2), rel=1e-12
        )


def test_bn_is_invariant_to_the_scale_of_w1_and_statistics_reproduce_training_mode():
    rng = np.random.default_rng(2)
    X, _ = _data(2)
    net = _random_net(rng)
    scaled = bn.BNReLUNetwork(1e-6 * net.W1, net.gamma, net.alpha, net.w2)
    np.testing.assert_allclose(scaled.forward(X), net.forward(X), atol=1e-10)
    fitted = net.with_statistics(X)
    np.testing.assert_allclose(fitted.predict(X), net.forward(X), atol=1e-12)
    with pytest.raises(ValueError, match="statistics"):
        net.predict(X)


# ---- whitening and truncation --------------------------------------------------------------------------------------


def test_whitening_is_an_orthonormal_basis_of_the_centered_data_and_the_ones_vector():
    X, _ = _data(3, n=10, d=4)
    X = np.column_stack([X, X[:, 0] - 2 * X[:, 1]])  # rank-deficient: 5 columns, rank 4
    wh = bn.whiten(X)
    assert wh.rank == 4 and wh.k == 4
    Up = wh.Uprime
    np.testing.assert_allclose(Up.T @ Up, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(Up[:, -1], 1 / np.sqrt(10), rtol=1e-15)
    np.testing.assert_allclose(wh.U * wh.S @ wh.V.T, X - X.mean(0), atol=1e-12)
    np.testing.assert_allclose(wh.transform(X), Up, atol=1e-12)
    H = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose((X - X.mean(0)) @ wh.first_layer(H).T, wh.U @ H[:, :4].T, atol=1e-12)
    np.testing.assert_allclose(wh.coordinates(wh.first_layer(H)), H[:, :4], atol=1e-12)


def test_explained_variance_rule():
    S = np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    ratio = np.cumsum(S**2) / np.sum(S**2)
    for threshold in (0.5, 0.9, 0.95, 0.99, 1.0):
        k = bn.explained_variance_rank(S, threshold)
        assert ratio[k - 1] >= threshold * (1 - 1e-12)
        assert k == 1 or ratio[k - 2] < threshold
    X, _ = _data(4, n=30, d=6)
    wh = bn.whiten(X, truncate="auto")
    assert wh.k == bn.explained_variance_rank(wh.S, 0.95)
    assert wh.kept_variance >= 0.95
    assert bn.whiten(X, truncate=0.5).k <= wh.k
    assert bn.whiten(X, truncate=2).Uprime.shape == (30, 3)


@pytest.mark.parametrize(
    "bad, match", [(0, "out of range"), (7, "out of range"), (1.5, r"\(0, 1\]"), ("most", "truncate must be")]
)
def test_truncation_out_of_range(bad, match):
    X, _ = _data(4, n=30, d=6)
    with pytest.raises(ValueError, match=match):
        bn.whiten(X, truncate=bad)
    with pytest.raises(TypeError, match="truncate"):
        bn.whiten(X, truncate=True)


def test_whitening_rejects_one_sample_and_constant_data():
    with pytest.raises(ValueError, match="n >= 2"):
        bn.whiten(np.ones((1, 3)))
    with pytest.raises(ValueError, match="all rows equal"):
        bn.whiten(np.tile([1.0, 2.0], (5, 1)))


def test_truncated_program_equals_cvxpy_and_the_rebuilt_network_on_raw_data():
    X, y = _data(5, n=10, d=3)
    res = bn.solve_bn(X, y, 0.1, patterns=40, truncate=2, tol=1e-10, max_iter=200000)
    wh = res.whitening
    assert wh.k == 2 and wh.truncated
    Up = wh.Uprime
    ref = solve_relu_cvxpy(Up, res.patterns.dense(), y, 0.1)
    assert res.objective == pytest.approx(ref["objective"], rel=1e-6)
    net = res.network()
    # First-layer weights lie in span(V_k): on raw X and on the rank-k approximation g(X) the BN network is the same.
    gX = wh.mean + (wh.U[:, :2] * wh.S[:2]) @ wh.V[:, :2].T
    assert net.objective(X, y, 0.1) == pytest.approx(res.objective, rel=1e-6)
    assert net.objective(gX, y, 0.1) == pytest.approx(res.objective, rel=1e-6)
    # Truncation restricts the model: the same whitened directions padded with zeros are feasible without it.
    H = res.patterns.gates
    full = bn.solve_bn(
        X, y, 0.1, patterns=np.vstack([H[:2], np.zeros((1, H.shape[1])), H[2:]]), tol=1e-10, max_iter=200000
    )
    assert full.objective <= res.objective * (1 + 1e-7)


@pytest.mark.parametrize("truncate", [None, 2])
def test_prediction_on_new_data_whitens_with_the_training_svd(truncate):
    X, y = _data(6, n=10, d=3)
    res = bn.solve_bn(X, y, 0.05, patterns=30, truncate=truncate, tol=1e-10, max_iter=200000)
    Xnew = np.random.default_rng(7).standard_normal((25, 3)) * 3 + 2
    wh = res.whitening
    Unew = wh.transform(Xnew)
    V, W = res.coef_
    manual = sum(np.maximum(Unew @ V[i, :, 0], 0) - np.maximum(Unew @ W[i, :, 0], 0) for i in range(V.shape[0]))
    np.testing.assert_allclose(res.predict(Xnew), manual, atol=1e-9)
    # the explicit formula: u'(x) = [S_k^-1 V_k^T (x - mean); 1/sqrt(n)]
    k = wh.k
    np.testing.assert_allclose(Unew[:, :k], (Xnew - X.mean(0)) @ wh.V[:, :k] / wh.S[:k], atol=1e-12)
    np.testing.assert_allclose(res.predict(X), res.training_output(), atol=1e-9)
    # and equal to a network that stores the statistics of the training batch explicitly
    net = res.network()
    np.testing.assert_allclose(
        bn.BNReLUNetwork(net.W1, net.gamma, net.alpha, net.w2).with_statistics(X).predict(Xnew), manual, atol=1e-9
    )


def test_constant_neuron_edge_case_maps_to_w_zero():
    # A block s = [0, ..., 0, a] (s_{1:r} = 0) is the constant neuron a / sqrt(n) * 1: W1 = 0, gamma = 0.
    X, y = _data(8, n=8, d=2)
    wh = bn.whiten(X)
    V = np.zeros((2, 3, 1))
    V[0, :, 0] = [0.0, 0.0, 2.0]
    V[1, :, 0] = [0.6, -0.8, 0.3]
    W = np.zeros_like(V)
    for form in ("weight_decay", "unit"):
        net = bn.network_from_convex(V, W, wh, form=form)
        assert net.n_neurons == 2
        np.testing.assert_array_equal(net.W1[0], 0.0)
        assert net.gamma[0] == 0.0
        Up = wh.Uprime
        expected = np.maximum(Up @ V[0, :, 0], 0) + np.maximum(Up @ V[1, :, 0], 0)
        np.testing.assert_allclose(net.forward(X), expected, atol=1e-12)
        np.testing.assert_allclose(net.predict(X), expected, atol=1e-12)
        penalty = np.linalg.norm(V, axis=1).sum()
        value = 0.5 * np.sum((expected - y) ** 2) + 0.3 * penalty
        assert net.objective(X, y, 0.3, form="l1" if form == "unit" else "weight_decay") == pytest.approx(
            value, rel=1e-12
        )
    # Constant targets: the program's optimum is the constant neuron, value h_beta(||y||).
    yc = np.full(8, 3.0)
    res = bn.solve_bn(X, yc, 0.5, tol=1e-10, max_iter=200000)
    assert res.objective == pytest.approx(float(bn.huber(np.sqrt(72.0), 0.5)), rel=1e-8)
    net = res.network()
    assert np.abs(net.gamma).max() < 1e-4 * np.abs(net.alpha).max()
    assert net.objective(X, yc, 0.5) == pytest.approx(res.objective, rel=1e-6)

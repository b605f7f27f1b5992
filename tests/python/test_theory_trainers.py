"""convexnn.theory.trainers: gradients, optimizers, diagnostics, and GD never below the closed forms."""

import numpy as np
import pytest
from scipy.optimize import check_grad

from convexnn import theory as T
from convexnn.theory.trainers import _forward_backward


@pytest.mark.parametrize("activation, bias", [("relu", "all"), ("linear", "last"), ("relu", "none")])
def test_gradients(activation, bias):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    net = T.MLP.random(3, [4, 5], n_outputs=2, activation=activation, bias=bias, seed=1, bias_init=0.3)
    shapes = [w.shape for w in net.weights] + [v.shape for v in net.biases if v is not None]
    idx = [l for l, v in enumerate(net.biases) if v is not None]

    def unpack(t):
        out, k = [], 0
        for s in shapes:
            out.append(t[k : k + int(np.prod(s))].reshape(s))
            k += int(np.prod(s))
        b = [None] * len(net.biases)
        for j, l in enumerate(idx):
            b[l] = out[len(net.weights) + j]
        return out[: len(net.weights)], b

    def f(t):
        W, b = unpack(t)
        return _forward_backward(W, b, activation, X, Y, 0.3, "squared", None)[0]

    def g(t):
        W, b = unpack(t)
        _, gW, gb = _forward_backward(W, b, activation, X, Y, 0.3, "squared", None)
        return np.concatenate([x.ravel() for x in gW] + [gb[l].ravel() for l in idx])

    t0 = np.concatenate([w.ravel() for w in net.weights] + [net.biases[l].ravel() for l in idx])
    assert check_grad(f, g, t0) < 1e-5 * max(1.0, np.linalg.norm(g(t0)))
    assert f(t0) == pytest.approx(T.weight_decay_objective(net, X, Y, 0.3))


def test_gd_staircase_and_closed_form_lower_bound():
    rng = np.random.default_rng(2)
    Q = np.linalg.qr(rng.standard_normal((30, 8)))[0]
    Y = Q @ rng.standard_normal((8, 4)) + 0.1 * rng.standard_normal((30, 4))
    sig = np.linalg.svd(Q.T @ Y, compute_uv=False)
    beta = 0.5 * (sig[1] + sig[2])
    res = T.two_layer_linear(Q, Y, beta)
    for seed in range(3):
        tr = T.train(
            T.MLP.random(8, [12], n_outputs=4, activation="linear", seed=seed),
            Q,
            Y,
            beta,
            optimizer="gd",
            lr=1.0,
            n_iter=4000,
            momentum=0.9,
        )
        assert res.objective * (1 - 1e-9) <= tr.objective <= res.objective * (1 + 1e-6)
        assert T.layer_ranks(tr.network, rtol=1e-3)[0] == 2  # rank steps at sigma_i(Y^T X)
        nrm = T.layer_norms(tr.network)["frobenius"]
        assert nrm[0] == pytest.approx(nrm[1], rel=1e-3)  # equal norms (balanced at optimum)
        for M in T.alignment(tr.network):
            np.testing.assert_allclose(M, np.eye(2), atol=1e-3)


def test_deep_linear_sgd_and_lbfgs_never_below():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((10, 6)), rng.standard_normal(10)
    res = T.deep_linear(X, y, 3, 0.2)
    sgd = T.train(
        T.MLP.random(6, [5, 5], activation="linear", seed=0),
        X,
        y,
        0.2,
        optimizer="sgd",
        lr=0.05,
        n_iter=400,
        momentum=0.9,
        batch_size=5,
    )
    lb = T.train(T.MLP.random(6, [5, 5], activation="linear", seed=1), X, y, 0.2, optimizer="lbfgs", n_iter=2000)
    assert sgd.objective >= res.objective * (1 - 1e-9)
    assert lb.objective == pytest.approx(res.objective, rel=1e-5)  # L-BFGS finds the optimum here


def test_parallel_training_keeps_blocks():
    rng = np.random.default_rng(4)
    X, Y = np.eye(4), np.eye(2)[[0, 0, 0, 1]]
    towers = [[rng.standard_normal((4, 2)), rng.standard_normal((2, 1))] for _ in range(2)]
    net = T.ParallelMLP(towers, rng.standard_normal((2, 2)))
    tr = T.train(net, X, Y, 0.5, optimizer="lbfgs", n_iter=500)
    assert isinstance(tr.network, T.ParallelMLP)
    np.testing.assert_allclose(tr.network.to_mlp().predict(X), tr.network.predict(X), atol=1e-12)
    assert tr.objective >= T.whitened_deep_relu(X, Y, 3, 0.5).objective * (1 - 1e-9)


def test_neuron_projections():
    rng = np.random.default_rng(5)
    M = rng.standard_normal((3, 6))
    V = np.linalg.svd(M, full_matrices=False)[2]
    P = T.neuron_projections(V[:2].T * 3.0, M)
    np.testing.assert_allclose(P[:, :2], np.eye(2), atol=1e-12)


def test_torch_backend():
    pytest.importorskip("torch", reason="PyTorch is not installed: backend='torch' is optional")
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((8, 3)), rng.standard_normal(8)
    net = T.MLP.random(3, [5], seed=0)
    a = T.train(net, X, y, 0.1, lr=0.1, n_iter=50, momentum=0.5)
    b = T.train(net, X, y, 0.1, lr=0.1, n_iter=50, momentum=0.5, backend="torch")
    assert a.objective == pytest.approx(b.objective, rel=1e-8)


def test_validation():
    net = T.MLP.random(3, [4], seed=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        T.train(net, np.ones((4, 3)), np.ones(4), 0.1, optimizer="adam")
    with pytest.raises(ValueError, match="X has 2 features"):
        T.train(net, np.ones((4, 2)), np.ones(4), 0.1)
    with pytest.raises(TypeError, match="MLP or a ParallelMLP"):
        T.train(object(), np.ones((4, 3)), np.ones(4), 0.1)

"""convexnn.theory.models: networks, objectives (ICML 2021 Lemma 1.1) and the minimal-norm rebalancing."""

import numpy as np
import pytest

from convexnn import theory as T


def _forward(W, b, X, act):
    A = X
    for Wl, bl in zip(W[:-1], b):
        Z = A @ Wl + (0 if bl is None else bl)
        A = np.maximum(Z, 0) if act == "relu" else Z
    return A @ W[-1]


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("bias", ["none", "all", "last"])
def test_mlp_forward_and_rebalance(activation, bias):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 4))
    net = T.MLP.random(4, [5, 6, 3], n_outputs=2, activation=activation, bias=bias, seed=1, bias_init=0.5)
    np.testing.assert_allclose(net.predict(X), _forward(net.weights, net.biases, X, activation), atol=1e-12)
    # unbalance it: scale neuron 0 of layer 1 by 7 and its outgoing row by 1/7 (f unchanged)
    W = [w.copy() for w in net.weights]
    b = [None if v is None else v.copy() for v in net.biases]
    W[1][:, 0] *= 7.0
    if b[1] is not None:
        b[1][0] *= 7.0
    W[2][0] /= 7.0
    W[0] *= 3.0
    if b[0] is not None:
        b[0] *= 3.0
    W[1] /= 3.0
    skew = T.MLP(W, b, activation)
    np.testing.assert_allclose(skew.predict(X), net.predict(X), atol=1e-10)
    reb = T.rebalance(skew)
    np.testing.assert_allclose(reb.predict(X), net.predict(X), atol=1e-9)
    assert reb.squared_weight_norm() <= min(skew.squared_weight_norm(), net.squared_weight_norm()) + 1e-12
    # optimality: every hidden neuron has equal incoming and outgoing norms
    for l in range(len(reb.weights) - 1):
        np.testing.assert_allclose(
            np.linalg.norm(reb.weights[l], axis=0), np.linalg.norm(reb.weights[l + 1], axis=1), rtol=1e-6
        )
    y = rng.standard_normal((7, 2))
    assert T.rescaled_objective(reb, X, y, 0.3) <= T.weight_decay_objective(reb, X, y, 0.3) + 1e-12
    assert T.weight_decay_objective(reb, X, y, 0.3, form="unhalved") == pytest.approx(
        2 * T.weight_decay_objective(reb, X, y, 0.3)
    )


def test_rescaled_equals_weight_decay_at_balanced_two_layer():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal(6)
    net = T.rebalance(T.MLP.random(3, [8], seed=2))
    assert T.rescaled_objective(net, X, y, 0.7) == pytest.approx(T.weight_decay_objective(net, X, y, 0.7), rel=1e-10)


def test_rebalance_dead_neurons():
    W1 = np.array([[1.0, 0.0, 2.0]])
    W2 = np.array([0.0, 3.0, 1.0])
    net = T.MLP([W1, W2], None, "relu")
    reb = T.rebalance(net)
    np.testing.assert_allclose(reb.weights[0][:, :2], 0.0)  # both unused neurons removed
    np.testing.assert_allclose(reb.weights[1][:2, 0], 0.0)
    assert reb.squared_weight_norm() == pytest.approx(2 * 2.0)


def test_parallel_network_block_diagonal():
    rng = np.random.default_rng(3)
    towers = [[rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((2, 1))] for _ in range(3)]
    net = T.ParallelMLP(towers, rng.standard_normal((3, 2)))
    X = rng.standard_normal((5, 4))
    manual = sum(
        np.maximum(np.maximum(np.maximum(X @ t[0], 0) @ t[1], 0) @ t[2], 0) @ net.output[j : j + 1]
        for j, t in enumerate(towers)
    )
    np.testing.assert_allclose(net.predict(X), manual, atol=1e-12)
    mlp = net.to_mlp()
    np.testing.assert_allclose(mlp.predict(X), manual, atol=1e-12)
    assert mlp.squared_weight_norm() == pytest.approx(net.squared_weight_norm())
    reb = T.rebalance(net)
    np.testing.assert_allclose(reb.predict(X), manual, atol=1e-9)
    assert reb.squared_weight_norm() <= net.squared_weight_norm()


def test_validation():
    with pytest.raises(TypeError, match="non-empty list"):
        T.MLP(np.ones((2, 2)))
    with pytest.raises(ValueError, match="rows"):
        T.MLP([np.ones((2, 3)), np.ones((2, 1))])
    with pytest.raises(ValueError, match="activation must be one of"):
        T.MLP([np.ones((2, 1))], activation="tanh")
    with pytest.raises(ValueError, match="biases must have one entry"):
        T.MLP([np.ones((2, 3)), np.ones(3)], biases=[None, None])
    with pytest.raises(ValueError, match="single unit"):
        T.ParallelMLP([[np.ones((2, 2))]], np.ones(1))
    with pytest.raises(ValueError, match="X has 3 features"):
        T.MLP([np.ones((2, 1))]).predict(np.ones((4, 3)))

"""The NumPy CNN trainer: hand-written gradients against finite differences for every model, SGD and minibatches,
and the optional PyTorch backend (skipped with a message when torch is absent)."""

import numpy as np
import pytest

from convexnn.cnn import ReLUCNN, train_cnn
from convexnn.cnn.trainer import _forward_backward


@pytest.mark.parametrize(
    "model,pooling,loss,c",
    [
        ("linear", "sum", "squared", 1),
        ("linear", "sum", "squared", 2),
        ("relu", "sum", "logistic", 1),
        ("relu", "sum", "cross_entropy", 3),
        ("relu", "none", "squared", 2),
    ],
)
def test_gradients_match_finite_differences(model, pooling, loss, c):
    rng = np.random.default_rng(0)
    n, K, h, m = 5, 3, 4, 3
    P = rng.standard_normal((n, K, h))
    rows = n * K if (model == "relu" and pooling == "none") else n
    if loss == "logistic":
        Y = np.where(rng.standard_normal((rows, 1)) > 0, 1.0, -1.0)
    elif loss == "cross_entropy":
        Y = np.eye(c)[rng.integers(0, c, rows)]
    else:
        Y = rng.standard_normal((rows, c))
    U = rng.standard_normal((m, h))
    A = rng.standard_normal((m, K, c) if model == "linear" else (m, c))
    F, dU, dA = _forward_backward(model, pooling, P, Y, U, A, 0.3, loss, 1.0)
    eps = 1e-6
    for X, G in ((U, dU), (A, dA)):
        num = np.zeros_like(X)
        for idx in np.ndindex(X.shape):
            old = X[idx]
            X[idx] = old + eps
            fp = _forward_backward(model, pooling, P, Y, U, A, 0.3, loss, 1.0)[0]
            X[idx] = old - eps
            fm = _forward_backward(model, pooling, P, Y, U, A, 0.3, loss, 1.0)[0]
            X[idx] = old
            num[idx] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(G, num, rtol=1e-5, atol=1e-6)


def test_objective_is_the_networks_and_sgd_minibatches_decrease_it():
    rng = np.random.default_rng(1)
    P = rng.standard_normal((30, 4, 3))
    y = rng.standard_normal(30)
    tr = train_cnn(P, y, 0.5, 5, optimizer="sgd", lr=0.05, n_epochs=50, batch_size=8, seed=0)
    assert isinstance(tr.network, ReLUCNN) and tr.status == "max_iter" and tr.n_iter == 50 * 4
    assert tr.objective == pytest.approx(tr.network.objective(P, y, 0.5), rel=1e-12)
    assert tr.history[-1]["objective"] < tr.history[0]["objective"]


def test_bad_input():
    P = np.zeros((4, 3, 2))
    with pytest.raises(ValueError, match="model"):
        train_cnn(P, np.zeros(4), 0.1, 2, model="conv")
    with pytest.raises(ValueError, match="per-patch targets"):
        train_cnn(P, np.zeros(4), 0.1, 2, pooling="none")
    with pytest.raises(ValueError, match="filters_init"):
        train_cnn(P, np.zeros(4), 0.1, 2, filters_init=np.zeros((2, 5)))


def test_torch_backend_matches_numpy():
    pytest.importorskip("torch", reason="PyTorch is not installed; the torch backend is optional")
    rng = np.random.default_rng(2)
    P = rng.standard_normal((20, 3, 3))
    y = rng.standard_normal(20)
    a = train_cnn(P, y, 0.2, 4, n_epochs=40, seed=0, backend="numpy")
    b = train_cnn(P, y, 0.2, 4, n_epochs=40, seed=0, backend="torch")
    assert b.objective == pytest.approx(a.objective, rel=1e-6)


def test_torch_backend_absent_says_so():
    try:
        import torch  # noqa: F401

        pytest.skip("PyTorch is installed; this checks the message without it")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="needs PyTorch"):
        train_cnn(np.zeros((4, 3, 2)), np.zeros(4), 0.1, 2, backend="torch")

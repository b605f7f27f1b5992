"""The numpy Adam/SGD trainer of the non-convex network: losses and gradients against the reference and finite
differences, the objective against Network.objective, descent, the convex certificate as a lower bound, options
and bad input."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn.nonconvex import loss_and_grad, objective_and_grad, train_nonconvex
from convexnn.reference import losses as ref_losses


def _targets(loss, n, rng, c=3):
    if loss == "squared":
        return rng.standard_normal((n, 2))
    if loss == "cross_entropy":
        return np.eye(c)[rng.integers(0, c, n)]
    return np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)


@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge", "squared_hinge", "cross_entropy"])
def test_loss_and_grad_match_the_reference(loss):
    rng = np.random.default_rng(0)
    Y = _targets(loss, 23, rng)
    Z = 3 * rng.standard_normal(Y.shape)
    value, grad = loss_and_grad(Z, Y, loss)
    np.testing.assert_allclose(value, ref_losses.loss_value(Z, Y, loss), rtol=1e-12)
    np.testing.assert_allclose(grad, ref_losses.loss_grad(Z, Y, loss), rtol=1e-12, atol=1e-14)
    # Extreme margins stay finite (no overflow in exp).
    v, g = loss_and_grad(800 * np.sign(Z) + Z, Y, loss)
    assert np.isfinite(v) and np.isfinite(g).all()


@pytest.mark.parametrize("loss", ["squared", "logistic", "squared_hinge", "cross_entropy"])
@pytest.mark.parametrize("gated", [False, True])
def test_gradient_matches_finite_differences(loss, gated):
    rng = np.random.default_rng(1)
    n, d, m = 17, 4, 5
    Xb = np.column_stack([rng.standard_normal((n, d - 1)), np.ones(n)])
    Y = _targets(loss, n, rng)
    W1, W2 = rng.standard_normal((m, d)), rng.standard_normal((m, Y.shape[1]))
    gates = rng.standard_normal((d, m)) if gated else None
    F, dW1, dW2 = objective_and_grad(Xb, Y, W1, W2, 0.3, loss, gates)
    h = 1e-6
    for W, dW in ((W1, dW1), (W2, dW2)):
        for idx in [(0, 0), (m - 1, W.shape[1] - 1), (2, 1 % W.shape[1])]:
            old = W[idx]
            W[idx] = old + h
            fp = objective_and_grad(Xb, Y, W1, W2, 0.3, loss, gates)[0]
            W[idx] = old - h
            fm = objective_and_grad(Xb, Y, W1, W2, 0.3, loss, gates)[0]
            W[idx] = old
            np.testing.assert_allclose(dW[idx], (fp - fm) / (2 * h), rtol=1e-5, atol=1e-6)


def _regression(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.maximum(X[:, 0] - 0.3, 0) - 2 * np.maximum(0.5 - X[:, 1], 0) + 0.05 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize(
    "loss,make_y",
    [
        ("squared", lambda X: X[:, 0] ** 2),
        ("logistic", lambda X: np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)),
        ("cross_entropy", lambda X: np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)]),
    ],
)
def test_adam_descends_and_reports_network_objective(loss, make_y):
    X, _ = _regression()
    y = make_y(X)
    res = train_nonconvex(X, y, beta=0.1, n_neurons=20, loss=loss, bias=True, lr=2e-2, n_epochs=300, seed=3)
    assert res.status == "max_iter" and res.n_iter == 300
    assert res.history[0]["objective"] > 2 * res.objective
    np.testing.assert_allclose(res.objective, res.network.objective(X, y, 0.1, loss=loss), rtol=1e-10)
    times, objectives = res.times_objectives()
    assert np.all(np.diff(times) >= 0) and len(objectives) == 301


def test_objective_never_beats_the_convex_certificate_over_all_patterns():
    # The gated program over ALL patterns lower-bounds the ReLU network's objective (any width: a ReLU network is
    # a gated network gated by its own weights, and beta/2 (|u|^2 + a^2) >= beta |a| |u|). So its certified dual
    # bound must sit below every trained network's objective; and Adam on the gated network with all those gates
    # gets near the convex optimum (not necessarily to it: neurons decayed to zero are stationary points).
    rng = np.random.default_rng(4)
    X = rng.standard_normal((12, 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(12)
    beta = 0.05
    pats = cnn.enumerate_patterns(X, bias=True)
    res = cnn.solve(X, y, beta, patterns=pats, bias=True, tol=1e-9, max_iter=100_000)
    assert res.gap < 1e-6
    for seed in range(3):
        relu = train_nonconvex(X, y, beta, n_neurons=16, bias=True, lr=1e-2, n_epochs=1500, seed=seed)
        assert relu.objective >= res.dual_objective * (1 - 1e-9)
    gated = train_nonconvex(X, y, beta, gates=pats.gates, bias=True, lr=1e-2, n_epochs=3000, seed=0)
    assert gated.objective >= res.dual_objective * (1 - 1e-9)
    assert gated.objective <= res.objective * 1.1
    assert isinstance(gated.network, cnn.GatedNetwork)


def test_minibatch_sgd_time_limit_and_determinism():
    X, y = _regression(n=64)
    a = train_nonconvex(X, y, 0.05, n_neurons=8, bias=True, batch_size=10, n_epochs=40, seed=1)
    b = train_nonconvex(X, y, 0.05, n_neurons=8, bias=True, batch_size=10, n_epochs=40, seed=1)
    np.testing.assert_array_equal(a.network.W1, b.network.W1)
    assert a.n_iter == 40 * 7  # ceil(64 / 10) steps per epoch
    assert a.objective < a.history[0]["objective"]
    sgd = train_nonconvex(X, y, 0.05, n_neurons=8, bias=True, optimizer="sgd", lr=0.05, n_epochs=200, seed=1)
    assert sgd.objective < 0.7 * sgd.history[0]["objective"]
    slow = train_nonconvex(X, y, 0.05, n_neurons=8, n_epochs=10**7, time_limit=0.05, seed=1)
    assert slow.status == "time_limit" and slow.time < 1.0


def test_warm_start_weights_and_divergence():
    X, y = _regression()
    W1 = np.ones((3, 3))
    w2 = np.array([1.0, -1.0, 0.5])
    res = train_nonconvex(X, y, 0.1, bias=True, W1_init=W1, w2_init=w2, n_epochs=1, lr=1e-12)
    np.testing.assert_allclose(res.network.W1, W1, atol=1e-10)
    np.testing.assert_array_equal(W1, 1.0)  # the start is copied, not trained in place
    blown = train_nonconvex(X, 1e3 * y, 0.0, n_neurons=4, optimizer="sgd", lr=1e6, n_epochs=200, seed=0)
    assert blown.status == "diverged"
    assert np.isfinite(blown.objective) and np.isfinite(blown.network.W1).all()


def test_bad_input():
    X, y = _regression()
    with pytest.raises(ValueError, match="loss must be one of"):
        train_nonconvex(X, y, 0.1, n_neurons=3, loss="l1")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train_nonconvex(X, y, 0.1, n_neurons=3, optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr must be > 0"):
        train_nonconvex(X, y, 0.1, n_neurons=3, lr=0.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        train_nonconvex(X, y, -1.0, n_neurons=3)
    with pytest.raises(ValueError, match="n_neurons is required"):
        train_nonconvex(X, y, 0.1)
    with pytest.raises(ValueError, match=r"gates must have shape \(3, m\)"):
        train_nonconvex(X, y, 0.1, bias=True, gates=np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        train_nonconvex(np.where(X > 1, np.nan, X), y, 0.1, n_neurons=3)
    with pytest.raises(ValueError, match="rows but X has"):
        train_nonconvex(X, y[:-2], 0.1, n_neurons=3)
    with pytest.raises(ValueError, match=r"needs y in \{-1, \+1\}"):
        train_nonconvex(X, y, 0.1, n_neurons=3, loss="logistic")
    with pytest.raises(ValueError, match="W1_init must have shape"):
        train_nonconvex(X, y, 0.1, W1_init=np.ones((3, 5)))


def test_train_nonconvex_tol_stops_converged_once_the_objective_stalls():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = rng.standard_normal(40)
    long = train_nonconvex(X, y, 0.1, n_neurons=8, lr=1e-2, n_epochs=20000, record_every=50)
    early = train_nonconvex(X, y, 0.1, n_neurons=8, lr=1e-2, n_epochs=20000, record_every=50, tol=1e-6)
    assert long.status == "max_iter"
    assert early.status == "converged" and early.n_iter < long.n_iter
    # stopped only once the best record moved by less than tol over the last `patience` records
    best = np.minimum.accumulate([h["objective"] for h in early.history])
    assert best[-11] - best[-1] <= 1e-6 * abs(best[-1])
    assert early.objective <= 1.01 * long.objective
    with pytest.raises(ValueError, match="tol"):
        train_nonconvex(X, y, 0.1, n_neurons=8, tol=0.0)
    with pytest.raises(ValueError, match="patience"):
        train_nonconvex(X, y, 0.1, n_neurons=8, tol=1e-6, patience=0)

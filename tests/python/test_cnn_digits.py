"""The digits experiment in small (the shape of Pilanci & Ergen, ICML 2020, Fig. 10): the exact pooled ReLU CNN
program on Gaussian + k-means + trained-filter patterns, warm-started at the best of 5 Adam runs of the same CNN,
reaches a training objective <= every Adam run, with its network attaining it and a test accuracy beside them."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from convexnn.cnn import (
    cluster_gates,
    extract_patches,
    gaussian_patterns,
    network_gates,
    network_warm_start,
    operator_interface_available,
    patterns_from_gates,
    relu_cnn_beta_max,
    solve_relu_cnn,
    train_cnn,
)

needs_operator_interface = pytest.mark.skipif(
    not operator_interface_available(),
    reason="this build of convexnn._core cannot run its solvers on Python operators, which the pooled CNN needs",
)


def _split(n_train=160, n_test=100):
    d = load_digits()
    y = np.where(d.target >= 5, 1.0, -1.0)
    X = d.images / 16.0
    mu, sd = X[:n_train].mean(), X[:n_train].std()
    P = extract_patches((X - mu) / sd, 4, stride=2)  # K = 9 patches of 16 pixels
    return P[:n_train], y[:n_train], P[n_train : n_train + n_test], y[n_train : n_train + n_test]


@needs_operator_interface
def test_network_warm_start_is_feasible_with_the_same_predictions():
    Ptr, ytr, _, _ = _split(60)
    tr = train_cnn(Ptr, ytr, 1.0, 6, loss="logistic", bias=True, n_epochs=30, seed=0)
    pats = patterns_from_gates(Ptr, network_gates(tr.network), bias=True)
    V, W = network_warm_start(tr.network, Ptr, pats)
    with pytest.warns(ConvergenceWarning):  # one iteration: not converged, says so
        res = solve_relu_cnn(
            Ptr, ytr, 1.0, patterns=pats, formulation="relu", loss="logistic", bias=True, max_iter=1, warm_start=(V, W)
        )
    assert res.max_violation <= 1e-12
    start = res.history[0]["objective"] if res.history else res.objective
    assert start <= tr.objective * (1 + 1e-12)
    with pytest.raises(ValueError, match="not among"):
        network_warm_start(tr.network, Ptr, gaussian_patterns(Ptr, 3, seed=5, bias=True))


@needs_operator_interface
def test_convex_cnn_beats_every_adam_run_on_digits():
    Ptr, ytr, Pte, yte = _split()
    g0 = gaussian_patterns(Ptr, 20, seed=0, bias=True)
    beta = 0.02 * relu_cnn_beta_max(Ptr, ytr, g0, loss="logistic", bias=True)
    runs = [
        train_cnn(
            Ptr, ytr, beta, 8, loss="logistic", bias=True, lr=1e-2, n_epochs=60, batch_size=32, seed=s, record_every=60
        )
        for s in range(5)
    ]
    best = min(runs, key=lambda r: r.objective)
    gates = np.hstack([g0.gates, cluster_gates(Ptr, 10, seed=0, bias=True)] + [network_gates(r.network) for r in runs])
    pats = patterns_from_gates(Ptr, gates, bias=True)
    res = solve_relu_cnn(
        Ptr,
        ytr,
        beta,
        patterns=pats,
        formulation="relu",
        loss="logistic",
        bias=True,
        tol=1e-5,
        warm_start=network_warm_start(best.network, Ptr, pats),
    )
    assert res.status == "converged" and res.max_violation <= 1e-8
    assert res.objective <= best.objective  # <= the best of the 5 Adam runs
    assert res.dual_objective <= res.objective
    net = res.network()
    assert net.objective(Ptr, ytr, beta, loss="logistic") == pytest.approx(res.objective, rel=1e-6)
    acc = np.mean(np.where(net.predict(Pte) > 0, 1.0, -1.0) == yte)
    adam_acc = max(np.mean(np.where(r.network.predict(Pte) > 0, 1.0, -1.0) == yte) for r in runs)
    assert acc >= 0.75 and adam_acc >= 0.6  # both learn the task (accuracy is reported, not ranked)

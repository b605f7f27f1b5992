"""Pattern generation: patterns of trained networks, adam-seeded solves, and what they guarantee."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn.generation import network_to_blocks
from convexnn.nonconvex import train_nonconvex


def _data(seed=0, n=80, d=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X[:, 0] - 0.5 * X[:, 1], 0) - np.maximum(X[:, 2], 0) + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("seed", [0, 1])
def test_program_over_a_trained_networks_patterns_is_never_worse(seed):
    X, y = _data(seed)
    beta = 0.5
    run = train_nonconvex(X, y, beta, n_neurons=12, bias=True, lr=1e-2, n_epochs=300, seed=seed)
    pats = cnn.Patterns.from_network(run.network, X)
    Xb = np.hstack([X, np.ones((len(X), 1))])
    V, W = network_to_blocks(run.network, Xb, pats)
    # The mapped point is feasible, predicts like the network, and costs no more than its weight decay.
    op = cnn._core.MaskedOperatorF64(Xb, pats._set)
    np.testing.assert_allclose(op.forward(np.ascontiguousarray(V - W))[:, 0], run.network.predict(X), atol=1e-10)
    assert np.all(op.cone_violation(np.ascontiguousarray(V)) <= 1e-12)
    assert np.all(op.cone_violation(np.ascontiguousarray(W)) <= 1e-12)
    res = cnn.solve(X, y, beta, patterns=pats, formulation="relu", bias=True, tol=1e-8)
    assert res.objective <= run.objective * (1 + 1e-9)
    assert res.network().objective(X, y, beta) <= run.objective * (1 + 1e-9)


def test_adam_seeded_is_never_worse_than_adam_and_searches_by_default():
    X, y = _data(2, n=120)
    beta = 0.3
    adam = train_nonconvex(X, y, beta, n_neurons=20, bias=True, lr=1e-2, n_epochs=400, seed=0)
    res = cnn.solve(X, y, beta, patterns=20, formulation="relu", bias=True, cutting_planes=True, time_limit=20)
    assert res.network().objective(X, y, beta) <= adam.objective * (1 + 1e-9)
    assert "cutting-planes" in res.solver and res.search
    seeded = cnn.solve(
        X, y, beta, patterns=20, formulation="relu", bias=True, pattern_generation="adam-seeded", time_limit=20
    )
    assert seeded.patterns.n_patterns > cnn.sample_patterns(X, 20, seed=0, bias=True).n_patterns
    assert "no search" in seeded.global_statement


def test_pattern_generation_validation():
    X, y = _data()
    with pytest.raises(ValueError, match="pattern_generation"):
        cnn.solve(X, y, 0.1, pattern_generation="greedy")
    with pytest.raises(ValueError, match="relu"):
        cnn.solve(X, y, 0.1, pattern_generation="adam-seeded")
    with pytest.raises(TypeError, match="Network"):
        cnn.Patterns.from_network("not a network", X)

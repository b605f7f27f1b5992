"""Column generation for the exact program: certified global optima, the neuron oracle's search, honest
statuses and bounds (vector outputs, the round cap), and the comparison with gradient-trained networks."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn.cutting_planes import dual_constraint_values
from convexnn.oracle import neuron_oracle

TOY_X = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]])
TOY_Y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])


def test_toy_from_two_patterns_is_certified_global():
    start = cnn.Patterns.from_gates(TOY_X, np.array([[1.0, -1.0], [0.5, 0.5]]), bias=True)
    assert start.n_patterns == 2
    # Column generation alone (no seeding network) from the two patterns.
    res = cnn.solve(
        TOY_X,
        TOY_Y,
        1e-4,
        patterns=start,
        bias=True,
        formulation="relu",
        cutting_planes=True,
        tol=1e-5,
        pattern_generation="sample",
    )
    assert res.patterns.n_patterns > 2  # the search added patterns
    assert len(res.history) >= 2
    assert res.objective == pytest.approx(0.0010128, rel=2e-3)
    assert res.certified_global
    # The global dual bound (over all 9 arrangement patterns) is below the objective and tight.
    assert res.dual_objective <= res.objective
    assert res.gap <= 1e-5
    assert res.network().objective(TOY_X, TOY_Y, 1e-4) == pytest.approx(res.objective, rel=1e-6)
    # The default (adam-seeded, then the search) reaches the same certified optimum.
    default = cnn.solve(
        TOY_X, TOY_Y, 1e-4, patterns=start, bias=True, formulation="relu", cutting_planes=True, tol=1e-5
    )
    assert default.certified_global and default.objective == pytest.approx(0.0010128, rel=2e-3)


def test_not_certified_when_the_arrangement_is_too_large():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6))
    y = np.maximum(X[:, 0], 0) - np.maximum(X[:, 1], 0)
    res = cnn.solve(
        X, y, 5.0, patterns=5, formulation="relu", cutting_planes=True, tol=1e-4, max_iter=500, time_limit=10.0
    )
    assert not res.certified_global
    assert np.isfinite(res.max_dual_violation)


def _small_instance(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((16, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    pats = cnn.sample_patterns(X, n_patterns=3, seed=seed, bias=True)
    return X, y, pats


def test_oracle_finds_violations_whenever_the_exhaustive_check_does():
    agreements, cases = 0, 0
    for seed in range(12):
        X, y, pats = _small_instance(seed)
        res = cnn.solve(X, y, 0.05, patterns=pats, bias=True, formulation="relu", tol=1e-8)
        Xb = np.hstack([X, np.ones((len(X), 1))])
        V, W = res.coef_
        z = cnn._core.MaskedOperatorF64(Xb, pats._set).forward(np.ascontiguousarray(V - W))
        Y = y.reshape(-1, 1)
        everything = cnn.enumerate_patterns(X, bias=True)
        exhaustive, _, grad = dual_constraint_values(Xb, Y, "squared", z, everything)
        found = neuron_oracle(Xb, -grad)
        found_pats = cnn.Patterns.from_gates(X, found.neurons, bias=True)
        searched, _, _ = dual_constraint_values(Xb, Y, "squared", z, found_pats)
        # Every value the oracle reports is attained by its neuron, and below the exhaustive maximum.
        H = np.maximum(Xb @ found.neurons, 0.0)
        attained = found.signs * np.einsum("n,nm->m", -grad[:, 0], H)
        np.testing.assert_allclose(attained, found.values, rtol=1e-9, atol=1e-12)
        assert searched.max() <= exhaustive.max() * (1 + 1e-9)
        if exhaustive.max() > 0.05 * (1 + 1e-6):
            cases += 1
            agreements += searched.max() > 0.05 * (1 + 1e-6)
    assert cases >= 5  # 3 random patterns are far from optimal on this data
    assert agreements >= 0.95 * cases


def test_vector_outputs_bound_covers_networks_with_shared_neurons():
    """c = 2 copies of the toy target: a network whose neurons feed both outputs beats independent heads, and the
    certificate's lower bound must stay below it (no global claim from the heads' dual)."""
    Y = np.c_[TOY_Y, TOY_Y]
    for beta in (0.1, 0.01):
        heads = cnn.solve(
            TOY_X, Y, beta, patterns=10, formulation="relu", groups="output", bias=True, cutting_planes=True, tol=1e-8
        )
        shared_res = cnn.solve(
            TOY_X, Y, beta, patterns=10, formulation="relu", bias=True, cutting_planes=True, tol=1e-8
        )
        single = cnn.solve(
            TOY_X, TOY_Y, beta / np.sqrt(2), patterns=10, formulation="relu", bias=True, cutting_planes=True, tol=1e-8
        )
        net = single.network()
        shared = cnn.Network(net.W1 * 2**0.25, np.c_[net.w2, net.w2] / 2**0.25, bias=True)
        shared_objective = shared.objective(TOY_X, Y, beta)
        assert shared_objective < heads.objective * 0.9  # sharing really is better here
        # Both lower bounds hold for networks with shared neurons; neither result claims a false global optimum.
        for res in (heads, shared_res):
            assert res.dual_objective <= shared_objective * (1 + 1e-9)
            if res.certified_global:
                assert res.network().objective(TOY_X, Y, beta) <= shared_objective * (1 + 1e-6)
        # The default for c > 1 generates shared neurons and reaches the shared network's objective.
        assert shared_res.groups == "neuron"
        assert shared_res.network().objective(TOY_X, Y, beta) == pytest.approx(shared_res.objective, rel=1e-9)
        assert shared_res.objective <= shared_objective * (1 + 1e-5)


def test_round_cap_is_reported_not_converged():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = np.maximum(X[:, 0], 0) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(120)
    from convexnn import cutting_planes

    old = cutting_planes.MAX_ROUNDS
    try:
        cutting_planes.MAX_ROUNDS = 1
        res = cnn.solve(
            X,
            y,
            1.0,
            patterns=2,
            formulation="relu",
            bias=True,
            tol=1e-4,
            pattern_generation="sample",
            cutting_planes=True,
        )
    finally:
        cutting_planes.MAX_ROUNDS = old
    assert res.max_dual_violation > 1.0 * (1 + 1e-4)
    assert res.status == "max_iter"
    assert not res.certified_global


def test_two_dimensional_classification_is_certified_and_beats_sgd():
    """Pilanci & Ergen (ICML 2020), Fig. 3 setting: n = 50 points in 2-D, binary labels, bias; 10 Adam runs."""
    from convexnn.nonconvex import train_nonconvex

    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(50, 2))
    y = np.where(np.sin(3 * X[:, 0]) + X[:, 1] > 0, 1.0, -1.0)
    beta = 0.05
    res = cnn.solve(
        X, y, beta, patterns=20, bias=True, formulation="relu", loss="logistic", cutting_planes=True, tol=1e-6
    )
    assert res.certified_global, res.summary()
    for seed in range(10):
        run = train_nonconvex(
            X, y, beta, n_neurons=50, loss="logistic", bias=True, optimizer="adam", lr=5e-2, n_epochs=400, seed=seed
        )
        assert res.objective <= run.objective * (1 + 1e-6) + 1e-9

"""Column generation with a network incumbent: the returned network is never worse than the best network met
(the adam-seeded start, the refined networks), the boosting step lowers the objective, L-BFGS leaves the kinks
of a convex solution, the round's time split and the warnings of the keep-best step."""

import warnings

import numpy as np
import pytest

import convexnn as cnn
from convexnn import cutting_planes, generation
from convexnn.cutting_planes import _grown_network, _keep_best, _TimeSplit, _violating_neurons, dual_constraint_values
from convexnn.nonconvex import objective_and_grad
from convexnn.polish import polish_network
from convexnn.result import ConvergenceWarning


def _data(seed=0, n=150, d=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(2 * X[:, 0]) + np.maximum(X[:, 1] - X[:, 2], 0) + 0.1 * rng.standard_normal(n)
    return X, y


def _F(net, Xb, Y, beta):
    W1 = np.asarray(net[0], dtype=np.float64)
    return objective_and_grad(Xb, Y, W1, np.asarray(net[1]).reshape(W1.shape[0], -1), beta, "squared")[0]


@pytest.mark.parametrize("time_limit", [1.0, 6.0])
def test_adam_seeded_result_is_never_worse_than_its_seed_network(monkeypatch, time_limit):
    X, y = _data()
    beta = 0.02  # small: the restricted solves are cut by the time limit, the seed is a strong incumbent
    seeds = []
    original = generation.adam_seed

    def spy(*args, **kwargs):
        seeds.append(original(*args, **kwargs))
        return seeds[-1]

    monkeypatch.setattr(generation, "adam_seed", spy)
    res = cnn.solve(X, y, beta, patterns=20, formulation="relu", bias=True, cutting_planes=True, time_limit=time_limit)
    assert len(seeds) == 1
    assert res.network().objective(X, y, beta) <= seeds[0].objective(X, y, beta) * (1 + 1e-9)
    # The result's objective is its network's (Theorem 1 of Pilanci & Ergen, ICML 2020).
    assert res.network().objective(X, y, beta) == pytest.approx(res.objective, rel=1e-9)


def _restricted(beta=0.02, P=25):
    X, y = _data(1)
    res = cnn.solve(X, y, beta, patterns=P, formulation="relu", bias=True, tol=1e-8, max_iter=20000)
    Xb = np.hstack([X, np.ones((len(X), 1))])
    return X, y, Xb, y.reshape(-1, 1), beta, res


def test_polish_moves_a_convex_solution_off_its_cone_boundaries():
    X, y, Xb, Y, beta, res = _restricted()
    net = res.network()
    W1, W2 = np.asarray(net.W1), np.asarray(net.w2).reshape(-1, 1)
    F0 = _F((W1, W2), Xb, Y, beta)
    W1p, W2p, F = polish_network(W1, W2, Xb, Y, beta, "squared", max_iter=300)
    assert F == pytest.approx(_F((W1p, W2p), Xb, Y, beta), rel=1e-12)
    # 25 sampled patterns are far from optimal: moving the neurons across them lowers F clearly (before the
    # restarts, L-BFGS stopped at once at the convex solution's kinks and returned it unchanged).
    assert F < F0 * (1 - 1e-3)


def test_polish_never_returns_above_its_start():
    X, y, Xb, Y, beta, res = _restricted()
    net = res.network()
    W1, W2 = np.asarray(net.W1), np.asarray(net.w2).reshape(-1, 1)
    F0 = _F((W1, W2), Xb, Y, beta)
    for iters in (1, 2, 5):
        _, _, F = polish_network(W1, W2, Xb, Y, beta, "squared", max_iter=iters)
        assert F <= F0


def test_boosting_step_lowers_the_objective_by_the_violating_neurons():
    X, y, Xb, Y, beta, res = _restricted()
    V, W = res.coef_
    z = cnn._core.MaskedOperatorF64(Xb, res.patterns._set).forward(np.ascontiguousarray(V - W))
    cands = cnn.sample_patterns(X, 300, seed=5, bias=True)
    values, per_output, grad = dual_constraint_values(Xb, Y, "squared", z, cands)
    chosen = np.flatnonzero(values > beta * 1.01)[:10]
    assert chosen.size > 0
    U, A = _violating_neurons(Xb, grad, cands, chosen, per_output)
    assert U.shape[1] == chosen.size
    # Each neuron attains its pattern's dual-constraint value with the sign of A.
    theta = -grad[:, 0]
    attained = A[:, 0] * (theta @ np.maximum(Xb @ U, 0.0))
    np.testing.assert_allclose(attained, values[chosen], rtol=1e-6)
    net = res.network()
    F0 = _F((net.W1, net.w2), Xb, Y, beta)
    W1g, W2g = _grown_network(net, U, A, Xb, Y, "squared", beta)
    assert W1g.shape[0] == net.n_neurons + chosen.size
    assert _F((W1g, W2g), Xb, Y, beta) < F0


def test_time_split_follows_the_faster_descent():
    split = _TimeSplit()
    assert split.weight == cutting_planes.SOLVE_WEIGHT
    split.update("solve", 1.0, 1.0)
    assert split.weight == cutting_planes.SOLVE_WEIGHT  # one rate alone decides nothing
    split.update("polish", 9.0, 1.0)
    assert split.weight == pytest.approx(max(0.1, cutting_planes.SOLVE_WEIGHT_BOUNDS[0]))
    split.update("solve", 90.0, 1.0)
    assert split.weight == pytest.approx(cutting_planes.SOLVE_WEIGHT_BOUNDS[1])
    split.update("polish", np.inf, 1.0)  # not measured: kept
    assert split.weight == pytest.approx(cutting_planes.SOLVE_WEIGHT_BOUNDS[1])
    assert split.seconds("solve", None, 0.0) is None


def test_keep_best_silences_only_the_convergence_warning():
    X, y, Xb, Y, beta, res = _restricted()
    V, W = res.coef_
    worse = cnn.solve(X, y, beta, patterns=res.patterns, formulation="relu", bias=True, max_iter=1)
    worse.status = "time_limit"

    def solve_fn(*args, **kwargs):
        warnings.warn("the one step's cap", ConvergenceWarning, stacklevel=2)
        warnings.warn("something else", UserWarning, stacklevel=2)
        return cnn.solve(*args, **kwargs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _keep_best(
            worse, (res.objective, (V, W), res.patterns), solve_fn, X, y, beta, "squared", True, 0, 1e-6, False, {}
        )
    kinds = {w.category for w in caught}
    assert UserWarning in kinds and ConvergenceWarning not in kinds
    assert out.objective <= res.objective * (1 + 1e-9)
    assert out.status != "max_iter"  # the one step's cap is not reported as the loop's stopping reason

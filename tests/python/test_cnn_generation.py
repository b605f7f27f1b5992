"""Pattern generation by local descent for the exact sum-pooled ReLU CNN program (Pilanci & Ergen, ICML 2020,
Appendix A.1): every round's optimum is at most the objective of the descended network it starts from (the
reverse map of Theorem 1), the returned CNN reproduces the returned objective, and bad input is refused."""

import numpy as np
import pytest

from convexnn.cnn import extract_patches, solve_relu_cnn_generating


def _task(n=40, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, 5, 5))
    y = np.where(images[:, 1:4, 1:4].sum(axis=(1, 2)) > 0, 1.0, -1.0)
    return extract_patches(images, 3), y


def test_rounds_never_exceed_the_networks_they_start_from():
    P, y = _task()
    beta = 0.5
    res = solve_relu_cnn_generating(
        P, y, beta, n_filters=4, rounds=2, n_gaussian=10, n_clusters=4, seed_epochs=30, descent_epochs=20, tol=1e-6
    )
    log = res.rounds
    assert [e["round"] for e in log] == ["seed", 0, 1, 2]
    seed, rounds = log[0], log[1:]
    # round 0 starts at the seed network, round r + 1 at round r's descended network (or round r's optimum)
    assert rounds[0]["objective"] <= seed["objective"] * (1 + 1e-6)
    for prev, cur in zip(rounds, rounds[1:]):
        assert cur["objective"] <= min(prev["objective"], prev["descent_objective"]) * (1 + 1e-6)
        assert cur["n_patterns"] >= prev["n_patterns"]
    assert res.objective == min(e["objective"] for e in rounds)
    assert res.converged and res.max_violation < 1e-8
    # the mapped CNN's non-convex objective is the convex one (Theorem 1)
    net = res.network()
    assert net.objective(P, y, beta, loss="logistic") == pytest.approx(res.objective, rel=1e-8)
    times = [e["cpu_time"] for e in log]
    assert times == sorted(times) and all(e["wall_time"] >= 0 for e in log)


def test_zero_rounds_is_one_solve_and_bad_input_names_the_argument():
    P, y = _task(n=20, seed=1)
    res = solve_relu_cnn_generating(P, y, 0.5, n_filters=2, rounds=0, n_gaussian=5, n_clusters=0, seed_epochs=10)
    assert [e["round"] for e in res.rounds] == ["seed", 0]
    with pytest.raises(ValueError, match="rounds"):
        solve_relu_cnn_generating(P, y, 0.5, rounds=-1)
    with pytest.raises(ValueError, match="descent_epochs"):
        solve_relu_cnn_generating(P, y, 0.5, descent_epochs=0)
    with pytest.raises(ValueError, match="time_limit"):
        solve_relu_cnn_generating(P, y, 0.5, time_limit=0.0)

"""The gated hinge polish (dense KKT solves on the margin set) stops on time: a time limit or a callback stop
that falls inside it returns promptly, with a valid certificate."""

import time
import warnings

import numpy as np
import pytest

import convexnn as cnn


def _polish_heavy():
    """A hinge problem whose solve spends most of its time in the polish (measured: ~95% of it)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6))
    y = np.sign(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(300))
    pats = cnn.sample_patterns(X, n_patterns=80, seed=0, bias=True)
    beta = 0.005 * cnn.beta_max(X, y, pats, loss="hinge", bias=True)
    return X, y, pats, beta


@pytest.mark.parametrize("limit", [0.7, 1.5])
def test_a_time_limit_inside_the_polish_returns_promptly(limit):
    X, y, pats, beta = _polish_heavy()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cnn.solve(X, y, beta, patterns=pats, loss="hinge", bias=True, time_limit=limit, max_iter=10**6)
    elapsed = time.perf_counter() - t0
    assert res.status == "time_limit"
    assert res.timings["hinge_polish"] > 0.3 * limit  # the limit fell while polishing
    assert res.timings["total"] < limit + 0.3
    assert elapsed < limit + 1.0  # the Python side included
    assert res.dual_objective <= res.objective


def test_a_callback_stop_inside_the_polish_returns_promptly():
    X, y, pats, beta = _polish_heavy()
    stop_at = 1.0

    def callback(info):
        return info["time"] > stop_at

    res = cnn.solve(X, y, beta, patterns=pats, loss="hinge", bias=True, callback=callback, max_iter=10**6)
    assert res.status == "interrupted"
    assert res.timings["hinge_polish"] > 0.3 * stop_at
    # The callback runs at least every 0.5 s inside the polish (and the dense solve polls every 20 ms).
    assert res.timings["total"] < stop_at + 0.5 + 0.3
    assert res.dual_objective <= res.objective

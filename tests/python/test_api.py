"""Public API (docs/api.md): Pilanci & Ergen (ICML 2020) toy optimum, gated <= relu, enumeration counts, networks, bad input."""

import pickle

import numpy as np
import pytest

import convexnn as cnn
from convexnn.reference import network as ref_network
from convexnn.reference import patterns as ref_patterns

TOY_X = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]])
TOY_Y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])


def _random_regression(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0)
    return X, y + 0.1 * rng.standard_normal(n)


def test_toy_relu_optimum_and_network_objective():
    pytest.importorskip("cvxpy")
    pats = cnn.enumerate_patterns(TOY_X, bias=True)
    # Cover's count for n = 5 points, rank 2, is 10; the all-zero pattern's region exists and is dropped.
    assert pats.n_patterns == ref_patterns.cover_count(5, 2) - 1
    res = cnn.solve(TOY_X, TOY_Y, 1e-4, patterns=pats, formulation="relu", bias=True)
    assert res.objective == pytest.approx(0.0010128, rel=2e-3)
    assert res.max_violation <= 1e-6
    assert res.dual_objective <= res.objective * (1 + 1e-9)
    assert res.gap <= 1e-4
    net = res.network()
    assert isinstance(net, cnn.Network)
    assert net.objective(TOY_X, TOY_Y, 1e-4) == pytest.approx(res.objective, rel=1e-5)
    # The network agrees with the reference forward pass and with res.predict.
    np.testing.assert_allclose(
        net.predict(TOY_X),
        ref_network.network_predict(np.hstack([TOY_X, np.ones((5, 1))]), net.W1, net.w2)[:, 0],
        atol=1e-12,
    )
    np.testing.assert_allclose(res.predict(TOY_X), net.predict(TOY_X))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gated_optimum_below_relu_optimum(seed):
    pytest.importorskip("cvxpy")
    X, y = _random_regression(seed=seed)
    pats = cnn.sample_patterns(X, n_patterns=15, seed=seed, bias=True)
    beta = 0.1 * cnn.beta_max(X, y, pats, bias=True)
    gated = cnn.solve(X, y, beta, patterns=pats, bias=True, tol=1e-8)
    relu = cnn.solve(X, y, beta, patterns=pats, bias=True, formulation="relu")
    assert gated.status == "converged"
    # The gated program relaxes the relu one: its optimum (<= gated.objective) is at most relu's optimum
    # (>= relu.dual_objective).
    assert gated.dual_objective <= relu.objective * (1 + 1e-7)
    assert gated.objective * (1 - gated.gap) <= relu.objective * (1 + 1e-7)


@pytest.mark.parametrize("n,d,bias", [(9, 2, False), (10, 2, True), (11, 3, False), (8, 3, True)])
def test_enumeration_count_matches_cover_formula(n, d, bias):
    rng = np.random.default_rng(n * 10 + d)
    X = rng.standard_normal((n, d))
    pats = cnn.enumerate_patterns(X, bias=bias)
    r = d + int(bias)
    # Without bias the all-zero region is -(all-ones region): it exists only when some u has X u > 0.
    masks, _ = ref_patterns.enumerate_bruteforce(np.hstack([X, np.ones((n, 1))]) if bias else X)
    assert pats.n_patterns == masks.shape[1]
    expected = ref_patterns.cover_count(n, r)
    assert pats.n_patterns in (expected, expected - 1)
    # The gates reproduce the same masks.
    again = cnn.Patterns.from_gates(X, pats.gates, bias=bias)
    np.testing.assert_array_equal(again.dense(), pats.dense())


def test_patterns_pickle_and_bias_mismatch():
    X, y = _random_regression()
    pats = cnn.sample_patterns(X, n_patterns=20, seed=3)
    back = pickle.loads(pickle.dumps(pats))
    np.testing.assert_array_equal(back.dense(), pats.dense())
    np.testing.assert_array_equal(back.gates, pats.gates)
    with pytest.raises(ValueError, match="bias"):
        cnn.solve(X, y, 0.1, patterns=pats, bias=True)


def test_sampling_is_deterministic_and_bias_gates_split_data():
    X, _ = _random_regression()
    a = cnn.sample_patterns(X + 100.0, n_patterns=30, seed=7, bias=True)
    b = cnn.sample_patterns(X + 100.0, n_patterns=30, seed=7, bias=True)
    np.testing.assert_array_equal(a.gates, b.gates)
    dense = a.dense()
    # Hyperplanes through data points: no all-ones pattern dominates on uncentered data.
    assert (dense.mean(axis=0) < 1.0).sum() >= a.n_patterns - 1


def test_gated_network_predicts_like_convex_model():
    X, y = _random_regression(n=60, d=4, seed=5)
    res = cnn.solve(X, y, 0.05, patterns=40, bias=True, tol=1e-8)
    net = res.network()
    assert isinstance(net, cnn.GatedNetwork)
    np.testing.assert_allclose(net.predict(X), res.predict(X), atol=1e-10)
    Xnew = np.random.default_rng(9).standard_normal((7, 4))
    np.testing.assert_allclose(net.predict(Xnew), res.predict(Xnew), atol=1e-10)
    # Balanced weights: the gated network's weight decay equals the convex group norm.
    assert net.objective(X, y, 0.05) == pytest.approx(res.objective, rel=1e-9)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(X=np.array([[np.nan, 1.0], [0.0, 1.0]])), "X contains NaN"),
        (dict(X=np.ones(4)), "X must be 2-D"),
        (dict(X=np.ones((0, 2)), y=np.ones(0)), "0 samples"),
        (dict(y=np.ones(3)), "y has 3 rows"),
        (dict(y=np.array([1.0, np.inf, 0.0, 1.0])), "y contains NaN"),
        (dict(beta=-1.0), "beta must be >= 0"),
        (dict(loss="absolute"), "loss must be one of"),
        (dict(formulation="deep"), "formulation must be one of"),
        (dict(loss="logistic", y=np.array([0.0, 1.0, 2.0, 1.0])), "needs y in"),
        (dict(loss="logistic", y=np.ones((4, 2))), "one output column"),
        (dict(tol=0.0), "tol must be > 0"),
        (dict(patterns="many"), "patterns must be"),
        (dict(device="tpu"), "device must be one of"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(kwargs, match):
    args = dict(X=np.arange(8.0).reshape(4, 2), y=np.array([1.0, -1.0, 1.0, 1.0]), beta=0.1)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        cnn.solve(args.pop("X"), args.pop("y"), args.pop("beta"), **args)


def test_relu_neuron_groups_with_vector_output_trains_shared_neurons():
    """relu + groups='neuron' with c > 1: neurons shared by the outputs (a real network, objective attained)."""
    X, y = _random_regression()
    Y = np.c_[y, -y]
    res = cnn.solve(X, Y, 0.1, patterns=10, formulation="relu", groups="neuron")
    net = res.network()
    assert res.groups == "neuron" and not res.certified_global
    assert net.objective(X, Y, 0.1) == pytest.approx(res.objective, rel=1e-9)
    assert res.dual_objective <= res.objective * (1 + 1e-9)
    np.testing.assert_allclose(res.predict(X), net.predict(X))


def test_cuda_without_gpu_is_a_clear_error():
    X, y = _random_regression()
    with pytest.raises(ValueError, match="cuda"):
        cnn.solve(X, y, 0.1, device="cuda")


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, ("10000", None)),  # the default: spin ~0.3 ms, then sleep (see convexnn/__init__.py)
        ({"OMP_WAIT_POLICY": "PASSIVE"}, (None, "PASSIVE")),  # a user's choice is kept
        ({"GOMP_SPINCOUNT": "123"}, ("123", None)),
    ],
)
def test_openmp_waiting_default_respects_the_user(env, expected):
    import os
    import subprocess
    import sys

    child_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    child_env.update(env)
    code = "import os, convexnn; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True, check=True)
    spin, policy = out.stdout.split()
    assert (None if spin == "None" else spin, None if policy == "None" else policy) == expected


def test_forked_child_runs_products_instead_of_hanging():
    """After the parent used its OpenMP threads, a forked child still computes (on one thread)."""
    import multiprocessing as mp
    import sys

    if sys.platform != "linux":
        pytest.skip("fork start method: Linux only")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 20)).astype(np.float32)
    masks = X @ rng.standard_normal((20, 200)) >= 0
    U = rng.standard_normal((200, 20)).astype(np.float32)
    saved = cnn.get_num_threads()
    cnn.set_num_threads(2)
    try:
        op = cnn._core.MaskedOperatorF32(X, masks)
        want = op.forward(U)  # the parent's thread pool is now started
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=lambda: queue.put((cnn.get_num_threads(), op.forward(U))))
        child.start()
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
            pytest.fail("the forked child hung in a parallel region")
        threads, got = queue.get(timeout=5)
    finally:
        cnn.set_num_threads(saved)
    assert threads == 1
    np.testing.assert_array_equal(got, want)

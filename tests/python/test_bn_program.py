"""convexnn.bn: the paper's exact values, the convex program against CVXPY + Clarabel, the rebuilt network's
objective, and gradient methods never beating the certified optimum.

Reference: Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022 (Theorems 2.1, 2.2, 2.4).
"""

import numpy as np
import pytest

import convexnn as cnn
from convexnn import bn
from convexnn.reference.cvx import solve_relu_cvxpy
from convexnn.reference.objectives import relative_violation, relu_objective


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These solves are tiny: on a shared 2-core machine OpenMP threads only add waiting (measured 13x slower).
    before = cnn.get_num_threads()
    cnn.set_num_threads(1)
    yield
    cnn.set_num_threads(before)


X1D = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])[:, None]
Y1D = np.array([1.0, 0.0, -1.0, 0.5, 2.0, -0.5])


# ---- Theorem 2.1 / 2.4 test vectors ------------------------------------------------------------------------------


def test_theorem_2_1_example_weights_output_dual_and_value():
    X, y, beta = np.eye(3), np.array([2.0, -1.0, 0.5]), 0.5
    res = bn.closed_form(X, y, beta)
    assert res.objective == pytest.approx(1.2807764, abs=1e-7)
    assert res.objective == pytest.approx(0.5 * (np.sqrt(4.25) + 1) - 0.25, rel=1e-14)
    unit = res.unit_network
    np.testing.assert_allclose(unit.W1, [[2, 0, 0.5], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(unit.gamma, [0.714006, 0.816497], atol=1e-6)
    np.testing.assert_allclose(unit.alpha, [0.700140, 0.577350], atol=1e-6)
    np.testing.assert_allclose(unit.w2, [1.561553, -0.5], atol=1e-6)
    np.testing.assert_allclose(res.gamma, [0.892236, 0.577350], atol=1e-6)
    np.testing.assert_allclose(res.alpha, [0.874910, 0.408248], atol=1e-6)
    np.testing.assert_allclose(res.w2, [1.249621, -0.707107], atol=1e-6)
    np.testing.assert_allclose(res.output, [1.514929, -0.5, 0.378732], atol=1e-6)
    np.testing.assert_allclose(res.dual, [0.485071, -0.5, 0.121268], atol=1e-6)
    np.testing.assert_allclose(res.dual, y - res.output, atol=1e-14)
    # The networks realize the value in their own forms: (3) for the balanced one, (4) for Theta_s.
    np.testing.assert_allclose(res.network.forward(X), res.output, atol=1e-12)
    assert res.network.objective(X, y, beta) == pytest.approx(res.objective, rel=1e-12)
    assert unit.objective(X, y, beta, form="l1") == pytest.approx(res.objective, rel=1e-12)
    np.testing.assert_allclose(unit.gamma**2 + unit.alpha**2, 1.0, atol=1e-12)


def test_theorem_2_1_dual_point_is_feasible_and_tight_on_random_bn_neurons():
    rng = np.random.default_rng(3)
    X, y, beta = rng.standard_normal((6, 9)), rng.standard_normal(6), 0.4
    res = bn.closed_form(X, y, beta)
    # Dual constraint (7): max over w, gamma^2 + alpha^2 = 1 of |v^T (BN(Xw))_+| <= beta, attained at the neurons.
    W = rng.standard_normal((4000, 9))
    ang = rng.uniform(0, 2 * np.pi, 4000)
    H = bn.bn_forward(X @ W.T, np.cos(ang), np.sin(ang))
    assert np.abs(res.dual @ np.maximum(H, 0)).max() <= beta * (1 + 1e-9)
    H_opt = np.maximum(bn.bn_forward(X @ res.unit_network.W1.T, res.unit_network.gamma, res.unit_network.alpha), 0)
    np.testing.assert_allclose(np.abs(res.dual @ H_opt), beta, rtol=1e-9)


def test_theorem_2_4_example_and_random_instance():
    res = bn.closed_form_vector(np.eye(4), np.array([0, 0, 1, 2]), 1.2)
    assert res.objective == pytest.approx(1.9770563, abs=1e-7)
    np.testing.assert_allclose(res.unit_network.gamma, [0.707107, 0.866025, 0.866025], atol=1e-6)
    np.testing.assert_allclose(res.unit_network.alpha, [0.707107, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(res.unit_network.w2, np.diag([0.214214, 0, 0]), atol=1e-6)
    assert res.network.objective(np.eye(4), np.eye(3)[[0, 0, 1, 2]], 1.2) == pytest.approx(res.objective, rel=1e-12)
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((12, 40)), np.repeat([0, 1, 2], 4)
    r2 = bn.closed_form_vector(X, labels, 1.0)
    assert r2.objective == pytest.approx(4.5, abs=1e-12)
    np.testing.assert_allclose(r2.unit_network.gamma, 0.816497, atol=1e-6)
    np.testing.assert_allclose(r2.unit_network.alpha, 0.577350, atol=1e-6)
    assert r2.network.objective(X, np.eye(3)[labels], 1.0) == pytest.approx(4.5, rel=1e-10)
    np.testing.assert_allclose(r2.dual, np.eye(3)[labels] - r2.output, atol=1e-14)


def test_figure_4_setting_value():
    # 3 classes x 500 samples, d = 3072, beta = 1: p* = 3 (sqrt(500) - 0.5) for any full-row-rank X.
    rng = np.random.default_rng(1)
    X, labels = rng.standard_normal((1500, 3072)), np.repeat([0, 1, 2], 500)
    res = bn.closed_form_vector(X, labels, 1.0)
    assert res.objective == pytest.approx(65.58204, abs=1e-5)
    assert res.network.objective(X, np.eye(3)[labels], 1.0) == pytest.approx(res.objective, rel=1e-10)


# ---- Theorem 2.2: the exact program on U' ----------------------------------------------------------------------


@pytest.mark.parametrize("beta, value, active", [(0.1, 2.364225, 8), (0.5, 3.199603, 2), (1.0, 3.25, 0)])
def test_one_dimensional_example(beta, value, active):
    res = bn.solve_bn(X1D, Y1D, beta, patterns="enumerate", tol=1e-10)
    assert res.patterns.n_patterns == 11
    assert res.certified_global and res.converged
    assert res.objective == pytest.approx(value, abs=1e-6)
    assert res.dual_objective == pytest.approx(value, abs=1e-6)
    V, W = res.coef_
    blocks = np.concatenate([np.linalg.norm(V, axis=1), np.linalg.norm(W, axis=1)]).ravel()
    assert int(np.sum(blocks > 1e-6)) == active
    net = res.network()
    assert net.n_neurons == active
    assert net.objective(X1D, Y1D, beta) == pytest.approx(res.objective, rel=1e-9, abs=1e-12)
    assert res.network("unit").objective(X1D, Y1D, beta, form="l1") == pytest.approx(res.objective, rel=1e-9)
    np.testing.assert_allclose(net.forward(X1D), res.training_output(), atol=1e-10)
    np.testing.assert_allclose(res.predict(X1D), res.training_output(), atol=1e-10)
    np.testing.assert_allclose(res.dual_point(Y1D), Y1D - res.training_output(), atol=1e-14)


def _random_instance(seed, n=8, d=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.geomspace(3.0, 0.2, d) + 5.0
    y = np.sin(X[:, 0]) + 0.3 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("seed, beta", [(0, 0.05), (1, 0.3), (2, 1.0)])
def test_program_equals_cvxpy_clarabel_and_the_rebuilt_network(seed, beta):
    X, y = _random_instance(seed)
    res = bn.solve_bn(X, y, beta, patterns="enumerate", tol=1e-10, max_iter=200000)
    Up = res.whitening.Uprime
    np.testing.assert_allclose(Up.T @ Up, np.eye(Up.shape[1]), atol=1e-12)
    ref = solve_relu_cvxpy(Up, res.patterns.dense(), y, beta)
    assert res.objective == pytest.approx(ref["objective"], rel=1e-6)
    assert res.dual_objective <= ref["objective"] * (1 + 1e-9)
    net = res.network()
    assert net.objective(X, y, beta) == pytest.approx(res.objective, rel=1e-6)
    assert net.objective(X, y, beta, include_w1=True) >= net.objective(X, y, beta)


def test_program_with_logistic_loss_equals_cvxpy():
    X, y = _random_instance(4)
    labels = np.where(y > np.median(y), 1.0, -1.0)
    res = bn.solve_bn(X, labels, 0.2, loss="logistic", tol=1e-10, max_iter=200000)
    ref = solve_relu_cvxpy(res.whitening.Uprime, res.patterns.dense(), labels, 0.2, loss="logistic")
    assert res.objective == pytest.approx(ref["objective"], rel=1e-6)
    assert res.network().objective(X, labels, 0.2, loss="logistic") == pytest.approx(res.objective, rel=1e-6)


def test_closed_form_equals_the_program_when_n_le_d():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((6, 10)), rng.standard_normal(6)
    for beta in (0.2, 1.0):
        cf = bn.closed_form(X, y, beta)
        res = bn.solve_bn(X, y, beta, patterns="enumerate", tol=1e-10, max_iter=200000)
        assert res.patterns.n_patterns == 2**6 - 1  # n points in general position in R^n: every subset
        assert res.objective == pytest.approx(cf.objective, rel=1e-6)


def test_gradient_methods_never_go_below_the_certified_optimum():
    for beta in (0.1, 0.5):
        opt = bn.solve_bn(X1D, Y1D, beta, tol=1e-10)
        assert opt.certified_global
        for seed, optimizer, lr in ((0, "adam", 0.02), (1, "gd", 0.01)):
            tr = bn.train_bn(X1D, Y1D, beta, n_neurons=40, optimizer=optimizer, lr=lr, n_iter=3000, seed=seed)
            value = tr.network.objective(X1D, Y1D, beta)
            assert value == pytest.approx(tr.objective, rel=1e-10)
            assert value >= opt.objective - 1e-9
            assert value <= opt.objective + 0.1  # and the training itself worked
            # Any network is a feasible point of (8) over all patterns: its convex value is >= p* and <= (3).
            masks, V, W = bn.convex_from_network(tr.network.balanced(), opt.whitening)
            Up = opt.whitening.Uprime
            assert relative_violation(Up, masks, V, W) <= 1e-12
            convex_value = relu_objective(Up, masks, V, W, Y1D, beta, "squared")
            assert opt.objective - 1e-9 <= convex_value <= value + 1e-9


def test_sampled_and_user_patterns():
    X, y = _random_instance(7, n=12, d=2)
    full = bn.solve_bn(X, y, 0.1, tol=1e-9)
    sampled = bn.solve_bn(X, y, 0.1, patterns=30, seed=1, tol=1e-9)
    assert not sampled.enumerated and not sampled.certified_global
    assert sampled.objective >= full.objective * (1 - 1e-7)
    # Affine gates on the raw data are the same patterns as their whitened images.
    raw = cnn.sample_patterns(X, n_patterns=25, seed=3, bias=True)
    via_raw = bn.solve_bn(X, y, 0.1, patterns=raw, tol=1e-9)
    wh = bn.whiten(X)
    masks_raw = np.column_stack([X @ g[:-1] + g[-1] >= 0 for g in raw.gates.T])
    dense = via_raw.patterns.dense()
    # every converted pattern is one of the raw patterns (up to points exactly on a gate's hyperplane)
    agree = [(masks_raw == dense[:, [j]]).sum(axis=0).max() for j in range(dense.shape[1])]
    assert min(agree) >= X.shape[0] - 1
    H = np.random.default_rng(0).standard_normal((wh.k + 1, 12))
    direct = bn.solve_bn(X, y, 0.1, patterns=H, tol=1e-9)
    np.testing.assert_array_equal(direct.patterns.dense(), cnn.Patterns.from_gates(wh.Uprime, H).dense())


def test_vector_targets_independent_heads_rebuild():
    X, y = _random_instance(8, n=10, d=2)
    Y = np.column_stack([y, -0.5 * y + 1])
    res = bn.solve_bn(X, Y, 0.2, tol=1e-10, max_iter=200000)
    net = res.network()
    assert net.w2.shape[1] == 2
    assert (np.count_nonzero(net.w2, axis=1) == 1).all()  # every neuron feeds one output
    assert net.objective(X, Y, 0.2) == pytest.approx(res.objective, rel=1e-6)
    ref = solve_relu_cvxpy(res.whitening.Uprime, res.patterns.dense(), Y, 0.2)
    assert res.objective == pytest.approx(ref["objective"], rel=1e-6)

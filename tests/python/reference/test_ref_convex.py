"""Exact optima (CVXPY + CLARABEL), duality gaps, beta_max and network reconstruction.

Includes the Pilanci & Ergen (ICML 2020) toy numbers.
"""

import numpy as np
import pytest

from convexnn.reference import (
    LOSSES,
    add_bias,
    beta_max_gated,
    block_norms,
    cone_products,
    enumerate_bruteforce,
    forward,
    gated_dual,
    gated_network_predict,
    gated_objective,
    loss_value,
    masks_from_gates,
    network_objective,
    network_predict,
    relative_violation,
    relu_network_from_convex,
    relu_objective,
    sample_gates,
)

cp = pytest.importorskip("cvxpy", reason="cvxpy (the 'reference' extra) is needed for exact optima")
from convexnn.reference import solve_gated_cvxpy, solve_relu_cvxpy  # noqa: E402

TOY_X = add_bias(np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]]))
TOY_Y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])


@pytest.fixture(scope="module")
def toy_masks():
    masks, gates = enumerate_bruteforce(TOY_X)
    assert masks.shape == (5, 9)  # Cover's 10 regions minus the all-negative one
    return masks


def instance(loss, n=10, d=2, n_gates=8, seed=0, c=3):
    """Small random instance with a bias column and sampled patterns."""
    rng = np.random.default_rng(seed)
    Xraw = rng.standard_normal((n, d))
    X = add_bias(Xraw)
    masks, _ = masks_from_gates(X, sample_gates(Xraw, n_gates, seed=seed, bias=True))
    if loss == "squared":
        y = rng.standard_normal(n)
    elif loss == "cross_entropy":
        y = np.eye(c)[rng.integers(0, c, n)]
    else:
        y = np.where(Xraw[:, 0] * Xraw[:, 1] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, masks, y


# ------------------------------------------------------------------------- Pilanci & Ergen (ICML 2020) toy


@pytest.mark.parametrize("beta, expected", [(1e-4, 0.0010128), (1e-2, 0.1000738)])
def test_toy_relu_optimum_and_network(toy_masks, beta, expected):
    res = solve_relu_cvxpy(TOY_X, toy_masks, TOY_Y, beta)
    assert res["objective"] == pytest.approx(expected, rel=2e-3)
    assert res["violation"] <= 1e-8
    W1, w2 = relu_network_from_convex(res["V"], res["W"])
    assert 1 <= W1.shape[0] <= 2 * toy_masks.shape[1]
    assert network_objective(TOY_X, TOY_Y, W1, w2, beta, "squared") == pytest.approx(res["objective"], rel=1e-6)


def test_toy_gated_optima(toy_masks):
    for beta, expected in [(1e-4, 0.0003578), (1e-2, 0.0356171)]:
        res = solve_gated_cvxpy(TOY_X, toy_masks, TOY_Y, beta)
        assert res["objective"] == pytest.approx(expected, rel=2e-3)
        cert = gated_dual(TOY_X, toy_masks, res["U"], TOY_Y, beta, "squared")
        assert 0 <= cert["gap"] <= 1e-6


def test_toy_without_bias():
    X = TOY_X[:, :1]
    masks, _ = enumerate_bruteforce(X)
    assert masks.shape[1] == 2
    res = solve_relu_cvxpy(X, masks, TOY_Y, 1e-4)
    assert res["objective"] == pytest.approx(2.300040, rel=1e-5)


# ------------------------------------------------------------------ relaxation and duality


@pytest.mark.parametrize("loss", LOSSES)
def test_gated_lower_bounds_relu(loss):
    X, masks, y = instance(loss, seed=3)
    beta = 0.05
    gated = solve_gated_cvxpy(X, masks, y, beta, loss)
    relu = solve_relu_cvxpy(X, masks, y, beta, loss)
    assert gated["objective"] <= relu["objective"] * (1 + 1e-7) + 1e-10
    assert relu["violation"] <= 1e-8
    # the reconstructed network attains the relu objective (c > 1: one neuron per column)
    W1, w2 = relu_network_from_convex(relu["V"], relu["W"])
    assert network_objective(X, y, W1, w2, beta, loss) == pytest.approx(relu["objective"], rel=1e-6)


CASES = [
    ("squared", "output"),
    ("logistic", "output"),
    ("squared_hinge", "output"),
    ("cross_entropy", "output"),
    ("cross_entropy", "neuron"),
    ("squared", "neuron"),
    ("hinge", "output"),
]


@pytest.mark.parametrize("loss, groups", CASES)
def test_dual_bounds_and_gap(loss, groups):
    X, masks, y = instance(loss, seed=7)
    if loss == "squared" and groups == "neuron":
        y = np.c_[y, np.sin(3 * y)]  # c = 2, where the groups differ
    beta = 0.1
    opt = solve_gated_cvxpy(X, masks, y, beta, loss, groups)
    c = 1 if np.ndim(y) == 1 else y.shape[1]
    rng = np.random.default_rng(0)
    for scale in (0.0, 0.1, 1.0):
        U = scale * rng.standard_normal((masks.shape[1], X.shape[1], c))
        cert = gated_dual(X, masks, U, y, beta, loss, groups)
        assert np.isfinite(cert["dual"])
        assert cert["dual"] <= opt["objective"] + 1e-9 <= cert["primal"] + 2e-9
        assert cert["gap"] == pytest.approx((cert["primal"] - cert["dual"]) / cert["primal"])
        # the scaled dual point is feasible
        norms = block_norms(np.einsum("np,nd,nc->pdc", masks, X, cert["theta"]), groups)
        assert norms.max() <= beta * (1 + 1e-12)
    # at the solver's point, the gradient-based certificate ...
    cert = gated_dual(X, masks, opt["U"], y, beta, loss, groups)
    assert cert["dual"] <= opt["objective"] + 1e-9
    if loss in ("squared", "squared_hinge"):
        assert cert["gap"] <= 1e-8
    elif loss in ("logistic", "cross_entropy"):
        assert cert["gap"] <= 1e-4  # exp-cone losses: the primal point is less accurate
    else:
        # hinge: the subgradient at the kink cannot recover the optimal dual: valid, not tight
        assert cert["gap"] >= -1e-9
    # ... and the solver's dual variable certifies the optimum for every loss
    cert = gated_dual(X, masks, opt["U"], y, beta, loss, groups, theta=opt["theta"])
    assert -1e-9 <= cert["gap"] <= 1e-8


def test_solver_dual_variable_is_minus_gradient():
    X, masks, y = instance("logistic", seed=2)
    res = solve_gated_cvxpy(X, masks, y, 0.1, "logistic")
    from convexnn.reference import loss_grad

    assert np.allclose(res["theta"], -loss_grad(forward(X, masks, res["U"]), y, "logistic"), atol=1e-6)


@pytest.mark.parametrize("loss, groups", [("squared", "output"), ("logistic", "output"), ("cross_entropy", "neuron")])
def test_beta_max_gated(loss, groups):
    X, masks, y = instance(loss, seed=11)
    bmax = beta_max_gated(X, masks, y, loss, groups)
    zero_value = loss_value(np.zeros((X.shape[0], 1 if np.ndim(y) == 1 else y.shape[1])), y, loss)
    above = solve_gated_cvxpy(X, masks, y, 1.01 * bmax, loss, groups)
    assert np.max(block_norms(above["U"], groups)) <= 1e-7
    assert above["objective"] == pytest.approx(zero_value, rel=1e-8)
    below = solve_gated_cvxpy(X, masks, y, 0.97 * bmax, loss, groups)
    assert np.max(block_norms(below["U"], groups)) > 1e-4
    assert below["objective"] < zero_value * (1 - 1e-6)


# --------------------------------------------------------------------- networks and cones


def test_theorem1_exact_on_feasible_points():
    """T1: at any feasible point (here V_i = a g_i, exactly in the cone), network == convex."""
    rng = np.random.default_rng(4)
    Xraw = rng.standard_normal((12, 3))
    X = add_bias(Xraw)
    masks, gates = masks_from_gates(X, sample_gates(Xraw, 10, seed=1, bias=True))
    P, d = gates.shape[1], X.shape[1]
    for c, loss, y in [
        (1, "squared", rng.standard_normal(12)),
        (3, "cross_entropy", np.eye(3)[rng.integers(0, 3, 12)]),
    ]:
        a = rng.uniform(0, 2, (P, 1, c)) * (rng.random((P, 1, c)) < 0.7)
        b = rng.uniform(0, 2, (P, 1, c)) * (rng.random((P, 1, c)) < 0.7)
        V = gates.T[:, :, None] * a
        W = gates.T[:, :, None] * b
        assert relative_violation(X, masks, V, W) <= 1e-15  # exact up to roundoff
        assert np.all(cone_products(X, masks, V) >= -1e-14)
        W1, w2 = relu_network_from_convex(V, W)
        assert W1.shape[0] == np.count_nonzero(a) + np.count_nonzero(b)
        assert np.allclose(network_predict(X, W1, w2), forward(X, masks, V - W))
        assert network_objective(X, y, W1, w2, 0.3, loss) == pytest.approx(
            relu_objective(X, masks, V, W, y, 0.3, loss), rel=1e-12
        )


def test_relative_violation_value():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    masks = np.array([[True], [True]])
    V = np.array([[[1.0], [-0.5]]])  # second entry violates by 0.5
    W = np.zeros_like(V)
    expected = 0.5 / (np.linalg.norm(X, 2) * np.linalg.norm([1.0, -0.5]))
    assert relative_violation(X, masks, V, W) == pytest.approx(expected)
    assert relative_violation(X, masks, W, V) == pytest.approx(expected)
    assert relative_violation(X, masks, W, W) == 0.0


def test_gated_network_predict_uses_gates_without_dedup():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((8, 3))
    G = rng.standard_normal((3, 4))
    G = np.c_[G, G[:, :1]]  # duplicate gate
    U = rng.standard_normal((5, 3, 2))
    expected = sum((X @ G[:, i] >= 0)[:, None] * (X @ U[i]) for i in range(5))
    assert np.allclose(gated_network_predict(X, G, U), expected)
    assert gated_objective(X, X @ G >= 0, U, rng.standard_normal((8, 2)), 0.1, "squared") > 0

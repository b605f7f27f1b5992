"""Bad input gets a ValueError (or TypeError) that names the argument."""

import sys

import numpy as np
import pytest

import convexnn.reference as ref

X = np.random.default_rng(0).standard_normal((6, 2))
MASKS = X @ np.random.default_rng(1).standard_normal((2, 3)) >= 0
U = np.zeros((3, 2, 1))
Y = np.arange(6.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ref.add_bias(np.ones(5)), r"X must be 2-D, got shape \(5,\)"),
        (lambda: ref.add_bias(np.ones((0, 2))), "X must have at least one row"),
        (lambda: ref.add_bias([[1.0, np.nan]]), "X must not contain NaN"),
        (lambda: ref.masks_from_gates(X, np.ones((3, 4))), "G must have d = 2 rows"),
        (lambda: ref.sample_gates(X, 0), "n_patterns must be an integer >= 1"),
        (lambda: ref.enumerate_bruteforce(np.ones((17, 2))), "X must have at most 16 rows"),
        (lambda: ref.cover_count(5, -1), "r must be"),
        (lambda: ref.flip_patterns(X, np.ones(3), 0.1), "g must have shape"),
        (lambda: ref.flip_patterns(X, np.ones(2), -1.0), "threshold must be >= 0"),
        (lambda: ref.network_gates(np.ones(3)), "W1 must be 2-D"),
        (lambda: ref.loss_value(np.ones(5), Y, "squared"), "z must have the shape of y"),
        (lambda: ref.loss_value(Y, Y, "l1"), "loss must be one of"),
        (lambda: ref.loss_value(Y, Y, "logistic"), "y must contain only -1 and \\+1"),
        (lambda: ref.forward(X, MASKS[:5], U), "masks must have n = 6 rows"),
        (lambda: ref.forward(X, MASKS, np.zeros((3, 2))), "U must be 3-D"),
        (lambda: ref.forward(X, MASKS, np.zeros((2, 2, 1))), r"U must have shape \(3, 2, c\)"),
        (lambda: ref.forward(X, MASKS * 2.0, U), "masks must be a bool"),
        (lambda: ref.adjoint(X, MASKS, np.ones(5)), "R must have 6 rows"),
        (lambda: ref.cone_products(X, MASKS, U[:1]), r"V must have shape \(3, 2, c\)"),
        (lambda: ref.block_norms(U, "layer"), "groups must be one of"),
        (lambda: ref.forward(X, MASKS, U[:2], subset=[0, 3]), "subset has an index out of range"),
        (lambda: ref.gated_objective(X, MASKS, U, Y, -1.0, "squared"), "beta must be finite and >= 0"),
        (lambda: ref.gated_objective(X, MASKS, U, Y[:5], 1.0, "squared"), "y must have 6 rows"),
        (
            lambda: ref.gated_objective(X, MASKS, np.zeros((3, 2, 2)), Y, 1.0, "squared"),
            "U must have c = 1 output columns",
        ),
        (lambda: ref.relu_objective(X, MASKS, U, U[:2], Y, 1.0, "squared"), "W must have the shape of V"),
        (lambda: ref.beta_max_gated(X, MASKS, Y, "squared", "all"), "groups must be one of"),
        (lambda: ref.gated_dual(X, MASKS, U, Y, 1.0, "squared", theta=np.ones(5)), "theta must have"),
        (lambda: ref.relu_network_from_convex(U, U[:1]), "W must have the shape of V"),
        (lambda: ref.network_predict(X, np.ones((4, 3)), np.ones(4)), "W1 must have d = 2 columns"),
        (lambda: ref.network_predict(X, np.ones((4, 2)), np.ones(3)), r"w2 must have shape \(4, c\)"),
        (
            lambda: ref.network_objective(X, Y[:5], np.ones((4, 2)), np.ones(4), 1.0, "squared"),
            r"y must have shape \(6, 1\)",
        ),
        (lambda: ref.gated_network_predict(X, np.ones((3, 2)), U), r"gates must have shape \(2, P\)"),
        (lambda: ref.validate_targets(np.ones((2, 2, 2)), "squared"), "y must be 1-D"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match="X must be a numeric array"):
        ref.add_bias([["a", "b"]])
    with pytest.raises(TypeError, match="beta must be a real number"):
        ref.gated_objective(X, MASKS, U, Y, "big", "squared")


def test_cvx_needs_cvxpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvxpy", None)  # makes `import cvxpy` fail
    with pytest.raises(ImportError, match="pip install"):
        ref.solve_gated_cvxpy(X, MASKS, Y, 1.0)
    with pytest.raises(ImportError, match="cvxpy"):
        ref.solve_relu_cvxpy(X, MASKS, Y, 1.0)


def test_inputs_not_modified():
    Xc, Mc, Uc, Yc = X.copy(), MASKS.copy(), U + 1.0, Y.copy()
    U1 = Uc.copy()
    ref.gated_dual(Xc, Mc, U1, Yc, 0.5, "squared")
    ref.masks_from_gates(Xc, np.ones((2, 3)))
    assert np.array_equal(Xc, X) and np.array_equal(Mc, MASKS) and np.array_equal(U1, Uc)
    assert np.array_equal(Yc, Y)

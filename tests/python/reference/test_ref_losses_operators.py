"""Reference losses (values, gradients, conjugates) and masked operators."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from convexnn.reference import (
    LOSSES,
    adjoint,
    block_norms,
    cone_products,
    forward,
    loss_conjugate,
    loss_grad,
    loss_value,
    validate_targets,
)

RNG = np.random.default_rng(0)


def targets(loss, n=7, c=3, rng=RNG):
    if loss == "squared":
        return rng.standard_normal((n, 2))
    if loss == "cross_entropy":
        return np.eye(c)[rng.integers(0, c, n)]
    return rng.choice([-1.0, 1.0], n)


def dual_domain_point(loss, y, rng):
    """A random theta in dom L*."""
    Y = y if y.ndim == 2 else y[:, None]
    if loss == "squared":
        T = rng.standard_normal(Y.shape)
    elif loss == "logistic":
        T = -Y * rng.uniform(0, 1, Y.shape)
    elif loss == "hinge":
        T = Y * rng.uniform(-1, 0, Y.shape)
    elif loss == "squared_hinge":
        T = Y * -rng.exponential(1.0, Y.shape)
    else:
        T = rng.dirichlet(np.ones(Y.shape[1]), Y.shape[0]) - Y
    return T.reshape(y.shape)


def test_loss_values_by_hand():
    z = np.array([0.5, -2.0, 1.0])
    y = np.array([1.0, -1.0, -1.0])
    assert loss_value(z, y, "squared") == pytest.approx(0.5 * (0.25 + 1 + 4))
    assert loss_value(z, y, "logistic") == pytest.approx(
        np.log1p(np.exp(-0.5)) + np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0))
    )
    assert loss_value(z, y, "hinge") == pytest.approx(0.5 + 0 + 2)
    assert loss_value(z, y, "squared_hinge") == pytest.approx(0.25 + 0 + 4)
    Z = np.array([[1.0, 2.0, 0.0]])
    Y = np.array([[0.0, 1.0, 0.0]])
    assert loss_value(Z, Y, "cross_entropy") == pytest.approx(-np.log(np.exp(2) / (np.exp(1) + np.exp(2) + 1)))
    # large margins do not overflow
    assert np.isfinite(loss_value(np.array([1000.0, -1000.0]), np.array([-1.0, -1.0]), "logistic"))


@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_matches_finite_differences(loss):
    rng = np.random.default_rng(1)
    y = targets(loss, rng=rng)
    z = rng.standard_normal(y.shape)
    if loss == "hinge":  # stay away from the kink
        z = z + 0.1 * np.sign(1 - y * z)
    g = loss_grad(z, y, loss)
    assert g.shape == z.shape
    h = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        num[idx] = (loss_value(z + e, y, loss) - loss_value(z - e, y, loss)) / (2 * h)
    assert np.allclose(g, num, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
def test_fenchel_young(loss):
    rng = np.random.default_rng(2)
    y = targets(loss, rng=rng)
    for _ in range(20):
        z = 2 * rng.standard_normal(y.shape)
        theta = dual_domain_point(loss, y, rng)
        # inequality everywhere on the domain
        assert loss_value(z, y, loss) + loss_conjugate(theta, y, loss) >= np.sum(theta * z) - 1e-10
        # equality at theta = grad L(z)
        g = loss_grad(z, y, loss)
        assert loss_value(z, y, loss) + loss_conjugate(g, y, loss) == pytest.approx(np.sum(g * z), abs=1e-10)
    # L*(0) = -inf L = 0
    assert loss_conjugate(np.zeros(y.shape), y, loss) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("loss", ["logistic", "hinge", "squared_hinge"])
def test_conjugate_against_numerical_sup(loss):
    # scalar case: L*(t) = sup_z t z - L(z), computed by 1-D maximization
    for y in (1.0, -1.0):
        for s in (-0.9, -0.5, -0.1):  # y*theta in the interior of each domain
            t = y * s
            res = minimize_scalar(
                lambda z: -(t * z - loss_value([z], [y], loss)),
                bounds=(-60, 60),
                method="bounded",
                options={"xatol": 1e-10},
            )
            assert loss_conjugate([t], [y], loss) == pytest.approx(-res.fun, abs=1e-6)


def test_conjugate_domain():
    y = np.array([1.0, -1.0])
    assert loss_conjugate([0.5, 0.0], y, "logistic") == np.inf  # p = -y t = -0.5
    assert loss_conjugate([-1.0, 1.0], y, "logistic") == pytest.approx(0.0)  # p = 1 boundary
    assert loss_conjugate([-1 - 1e-13, 0.0], y, "logistic") == pytest.approx(0.0)  # roundoff ok
    assert loss_conjugate([-1.01, 0.0], y, "hinge") == np.inf
    assert loss_conjugate([-1.0, 1.0], y, "hinge") == pytest.approx(-2.0)
    assert loss_conjugate([0.1, 0.0], y, "squared_hinge") == np.inf
    Y = np.array([[1.0, 0.0]])
    assert loss_conjugate([[-0.5, 0.6]], Y, "cross_entropy") == np.inf  # rows must sum to 0
    assert loss_conjugate([[-1.0, 1.0]], Y, "cross_entropy") == pytest.approx(0.0)
    assert loss_conjugate([[0.1, -0.1]], Y, "cross_entropy") == np.inf  # q < 0


def test_validate_targets():
    assert validate_targets([1, -1, 1], "logistic").shape == (3, 1)
    with pytest.raises(ValueError, match="-1 and \\+1"):
        validate_targets([0, 1, 1], "hinge")
    with pytest.raises(ValueError, match="single column"):
        validate_targets(np.ones((3, 2)), "logistic")
    with pytest.raises(ValueError, match="one-hot"):
        validate_targets(np.array([[1, 1], [0, 1.0]]), "cross_entropy")
    with pytest.raises(ValueError, match="one-hot"):
        validate_targets(np.array([1.0, 0.0]), "cross_entropy")
    with pytest.raises(ValueError, match="NaN"):
        validate_targets([np.nan, 1.0], "squared")
    with pytest.raises(ValueError, match="loss must be one of"):
        validate_targets([1.0], "absolute")


# ---------------------------------------------------------------------------- operators


def problem(n=9, d=4, P=6, c=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    masks = rng.random((n, P)) < 0.5
    U = rng.standard_normal((P, d, c))
    return X, masks, U, rng


def test_forward_matches_definition():
    X, masks, U, _ = problem()
    expected = sum(np.diag(masks[:, i].astype(float)) @ X @ U[i] for i in range(masks.shape[1]))
    assert np.allclose(forward(X, masks, U), expected)


def test_forward_adjoint_consistency():
    X, masks, U, rng = problem()
    R = rng.standard_normal((X.shape[0], U.shape[2]))
    A = adjoint(X, masks, R)
    assert A.shape == U.shape
    assert np.sum(forward(X, masks, U) * R) == pytest.approx(np.sum(U * A), rel=1e-12)
    for i in range(masks.shape[1]):
        assert np.allclose(A[i], X.T @ np.diag(masks[:, i].astype(float)) @ R)
    # vector R is c = 1
    assert adjoint(X, masks, R[:, 0]).shape == (masks.shape[1], X.shape[1], 1)


def test_cone_products_and_block_norms():
    X, masks, U, _ = problem()
    C = cone_products(X, masks, U)
    for i in range(masks.shape[1]):
        D = np.diag(masks[:, i].astype(float))
        assert np.allclose(C[i], (2 * D - np.eye(X.shape[0])) @ X @ U[i])
    assert np.allclose(
        block_norms(U, "output"), [[np.linalg.norm(U[i][:, k]) for k in range(2)] for i in range(len(U))]
    )
    assert np.allclose(block_norms(U, "neuron"), [np.linalg.norm(Ui) for Ui in U])


def test_subsets():
    X, masks, U, rng = problem()
    sub = np.array([4, 1, 2])
    R = rng.standard_normal((X.shape[0], 2))
    assert np.allclose(forward(X, masks, U[sub], subset=sub), forward(X, masks[:, sub], U[sub]))
    assert np.allclose(adjoint(X, masks, R, subset=sub), adjoint(X, masks, R)[sub])
    assert np.allclose(cone_products(X, masks, U[sub], subset=sub), cone_products(X, masks, U)[sub])
    sel = np.zeros(masks.shape[1], dtype=bool)
    sel[[1, 2, 4]] = True
    assert np.allclose(forward(X, masks, U[sel], subset=sel), forward(X, masks[:, sel], U[sel]))
    assert np.allclose(block_norms(U[sub], "output", subset=sub), block_norms(U)[sub])
    with pytest.raises(ValueError, match="U must have shape"):
        forward(X, masks, U, subset=sub)
    with pytest.raises(ValueError, match="subset"):
        forward(X, masks, U[:1], subset=[17])

"""Sample weights in every loss: the C++ losses against their definition, integer weights against repeated rows,
zero weights against removed rows, and weighted solves (gated and exact) against CVXPY + CLARABEL."""

import warnings

import numpy as np
import pytest

import convexnn as cnn
from convexnn import _core
from convexnn._operators import make_operator
from convexnn.reference.cvx import CLARABEL_OPTS

LOSSES = ["squared", "logistic", "hinge", "squared_hinge", "cross_entropy"]


def _targets(loss, n, rng, c=3):
    if loss == "squared":
        return rng.standard_normal((n, 2))
    if loss == "cross_entropy":
        return np.eye(c)[rng.integers(0, c, n)]
    return np.where(rng.standard_normal((n, 1)) > 0, 1.0, -1.0)


def _per_sample(loss, z, y):
    """l(z_k, y_k) of each sample (NumPy definition)."""
    if loss == "squared":
        return 0.5 * ((z - y) ** 2).sum(1)
    if loss == "cross_entropy":
        zmax = z.max(1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(1))
        return lse - (y * z).sum(1)
    m = (y * z)[:, 0]
    if loss == "logistic":
        return np.logaddexp(0.0, -m)
    if loss == "hinge":
        return np.maximum(0.0, 1.0 - m)
    return np.maximum(0.0, 1.0 - m) ** 2


@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_value_gradient_and_conjugate_match_their_definition(loss):
    rng = np.random.default_rng(1)
    n = 17
    y = _targets(loss, n, rng)
    z = 1.5 * rng.standard_normal(y.shape)
    w = rng.uniform(0.1, 3.0, n)
    w[3] = 0.0
    value = _core.loss_value(z, y, loss, sample_weight=w)
    assert value == pytest.approx(float((w * _per_sample(loss, z, y)).sum()), rel=1e-13)
    grad = _core.loss_gradient(z, y, loss, sample_weight=w)
    np.testing.assert_allclose(grad, w[:, None] * _core.loss_gradient(z, y, loss), rtol=1e-14, atol=0)
    # Fenchel-Young equality at t = grad L_w(z) (hinge: the subgradient, where it holds too).
    conj = _core.loss_conjugate(grad, y, loss, sample_weight=w)
    assert conj == pytest.approx(float((grad * z).sum()) - value, rel=1e-10, abs=1e-10)
    # Fenchel-Young inequality at other points of the domain (scaled gradients stay inside it).
    for s in (0.3, 0.9):
        cs = _core.loss_conjugate(s * grad, y, loss, sample_weight=w)
        z2 = rng.standard_normal(y.shape)
        assert cs >= float((s * grad * z2).sum()) - _core.loss_value(z2, y, loss, sample_weight=w) - 1e-10
    # A weight-0 sample takes no dual: t != 0 there is outside the domain.
    t = grad.copy()
    t[3] = 0.1 if loss == "squared" else grad[0]
    assert _core.loss_conjugate(t, y, loss, sample_weight=w) == np.inf


@pytest.mark.parametrize("loss", LOSSES)
def test_integer_weights_equal_repeated_rows(loss):
    rng = np.random.default_rng(2)
    n = 13
    y = _targets(loss, n, rng)
    z = rng.standard_normal(y.shape)
    w = rng.integers(1, 4, n).astype(float)
    rep = np.repeat(np.arange(n), w.astype(int))
    value = _core.loss_value(z, y, loss, sample_weight=w)
    assert value == pytest.approx(_core.loss_value(z[rep], y[rep], loss), rel=1e-10)
    grad = _core.loss_gradient(z, y, loss, sample_weight=w)
    summed = np.zeros_like(grad)
    np.add.at(summed, rep, _core.loss_gradient(z[rep], y[rep], loss))
    np.testing.assert_allclose(grad, summed, rtol=1e-10, atol=1e-12)
    # The weighted conjugate is the replicated one with the dual split evenly over the copies.
    t = 0.7 * grad
    split = t[rep] / w[rep][:, None]
    assert _core.loss_conjugate(t, y, loss, sample_weight=w) == pytest.approx(
        _core.loss_conjugate(split, y[rep], loss), rel=1e-10, abs=1e-12
    )


def _problem(loss, n=14, d=3, n_patterns=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "squared":
        y = X[:, :1] - 0.5 * X[:, 1:2] ** 2 + 0.1 * rng.standard_normal((n, 1))
    elif loss == "cross_entropy":
        y = np.eye(3)[np.argmax(X @ rng.standard_normal((d, 3)) + 0.3 * rng.standard_normal((n, 3)), axis=1)]
    else:
        y = np.where(X[:, 0] + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)[:, None]
    gates = rng.standard_normal((d, n_patterns))
    w = rng.uniform(0.2, 2.5, n)
    return X, y, gates, w


def test_weighted_certificate_equals_the_repeated_rows_certificate():
    for loss in LOSSES:
        X, y, gates, _ = _problem(loss, seed=3)
        w = np.arange(len(X)) % 3 + 1.0
        rep = np.repeat(np.arange(len(X)), w.astype(int))
        masks = X @ gates >= 0
        rng = np.random.default_rng(4)
        U = 0.3 * rng.standard_normal((gates.shape[1], X.shape[1], y.shape[1]))
        a = _core.gated_certificate(
            make_operator(np.ascontiguousarray(X), masks), U, y, 0.5, loss=loss, sample_weight=w
        )
        b = _core.gated_certificate(make_operator(np.ascontiguousarray(X[rep]), masks[rep]), U, y[rep], 0.5, loss=loss)
        assert a["primal"] == pytest.approx(b["primal"], rel=1e-10)
        assert a["dual"] == pytest.approx(b["dual"], rel=1e-10, abs=1e-10)
        assert a["dual_norm"] == pytest.approx(b["dual_norm"], rel=1e-10)


def _cvx_optimum(X, masks, y, w, beta, loss, formulation):
    """Optimum of the weighted program (CVXPY + CLARABEL, tight tolerances)."""
    import cvxpy as cp

    d, c, P = X.shape[1], y.shape[1], masks.shape[1]
    if formulation == "gated":
        U = [cp.Variable((d, c)) for _ in range(P)]
        Z = sum(masks[:, [i]] * X @ U[i] for i in range(P))
        blocks, constraints = U, []
    else:
        V = [cp.Variable((d, c)) for _ in range(P)]
        W = [cp.Variable((d, c)) for _ in range(P)]
        Z = sum(masks[:, [i]] * X @ (V[i] - W[i]) for i in range(P))
        signed = [np.where(masks[:, [i]], 1.0, -1.0) * X for i in range(P)]
        constraints = [S @ B >= 0 for S, Vi, Wi in zip(signed, V, W) for B in (Vi, Wi)]
        blocks = V + W
    if loss == "squared":
        per = 0.5 * cp.sum(cp.square(Z - y), axis=1)
    elif loss == "cross_entropy":
        per = cp.log_sum_exp(Z, axis=1) - cp.sum(cp.multiply(y, Z), axis=1)
    else:
        m = cp.multiply(y, Z)[:, 0]
        per = {"logistic": cp.logistic(-m), "hinge": cp.pos(1 - m), "squared_hinge": cp.square(cp.pos(1 - m))}[loss]
    penalty = sum(cp.sum(cp.norm(B, 2, axis=0)) for B in blocks)
    problem = cp.Problem(cp.Minimize(cp.sum(cp.multiply(w, per)) + beta * penalty), constraints)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=cp.CLARABEL, **CLARABEL_OPTS)
    return float(problem.value)


@pytest.mark.parametrize("formulation", ["gated", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_solve_matches_cvxpy_with_an_honest_certificate(loss, formulation):
    pytest.importorskip("cvxpy")
    X, y, gates, w = _problem(loss, seed=5)
    masks = X @ gates >= 0
    beta = 0.2 * cnn.beta_max(X, y, gates, loss=loss)
    res = cnn.solve(X, y, beta, patterns=gates, formulation=formulation, loss=loss, sample_weight=w, tol=1e-9)
    opt = _cvx_optimum(X, masks, y, w, beta, loss, formulation)
    assert res.objective == pytest.approx(opt, rel=1e-6)
    assert res.dual_objective <= opt * (1 + 1e-7) + 1e-9  # the certificate is a true lower bound
    assert res.gap <= 1e-6
    # The weights matter (so the test cannot pass with them ignored).
    plain = cnn.solve(X, y, beta, patterns=gates, formulation=formulation, loss=loss, tol=1e-9)
    assert abs(plain.objective - res.objective) > 1e-3 * abs(opt)


@pytest.mark.parametrize("formulation", ["gated", "relu"])
@pytest.mark.parametrize("loss", ["logistic", "hinge", "cross_entropy"])
def test_zero_weight_equals_removing_the_row(loss, formulation):
    X, y, gates, w = _problem(loss, n=16, seed=6)
    w[[2, 9]] = 0.0
    keep = w > 0
    beta = 0.2 * cnn.beta_max(X, y, gates, loss=loss)
    kw = dict(patterns=gates, formulation=formulation, loss=loss, tol=1e-10)
    a = cnn.solve(X, y, beta, sample_weight=w, **kw)
    b = cnn.solve(X[keep], y[keep], beta, sample_weight=w[keep], **kw)
    assert a.objective == pytest.approx(b.objective, rel=1e-7)
    assert a.dual_objective <= b.objective * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("formulation", ["gated", "relu"])
@pytest.mark.parametrize("loss", ["logistic", "squared_hinge", "hinge"])
def test_integer_weight_solve_equals_the_repeated_rows_solve(loss, formulation):
    X, y, gates, _ = _problem(loss, seed=7)
    w = np.arange(len(X)) % 3 + 1.0
    rep = np.repeat(np.arange(len(X)), w.astype(int))
    beta = 0.2 * cnn.beta_max(X, y, gates, loss=loss)
    kw = dict(patterns=gates, formulation=formulation, loss=loss, tol=1e-11, max_iter=200_000)
    a = cnn.solve(X, y, beta, sample_weight=w, **kw)
    b = cnn.solve(X[rep], y[rep], beta, **kw)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)


def test_bad_weights_name_sample_weight():
    X, y, gates, w = _problem("logistic")
    op = make_operator(np.ascontiguousarray(X), X @ gates >= 0)
    with pytest.raises(ValueError, match="sample_weight"):
        _core.solve_gated(op, y, 0.1, loss="logistic", sample_weight=-w)
    with pytest.raises(ValueError, match="sample_weight"):
        _core.solve_gated(op, y, 0.1, loss="logistic", sample_weight=w[:-1])
    with pytest.raises(ValueError, match="sample_weight"):
        _core.loss_value(X[:, :1], y, "logistic", sample_weight=np.full(len(X), np.nan))


def test_classifier_takes_fractional_class_weights_under_every_loss():
    from convexnn.estimators import ConvexReLUClassifier

    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 2))
    labels = np.where(X[:, 0] + 0.3 * rng.standard_normal(40) > 0.6, "rare", "common")
    for loss in ("logistic", "hinge", "squared_hinge"):
        kw = dict(formulation="gated", n_patterns=10, loss=loss, tol=1e-6)
        weighted = ConvexReLUClassifier(class_weight={"rare": 2.5, "common": 0.5}, **kw).fit(X, labels)
        plain = ConvexReLUClassifier(**kw).fit(X, labels)
        assert weighted.gap_ <= 1e-6
        assert not np.array_equal(weighted.decision_function(X), plain.decision_function(X))

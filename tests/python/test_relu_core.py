"""Exact ReLU solver (C++, FISTA with the exact cone-norm prox) against CVXPY + Clarabel, every loss."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn.reference import objectives as ref_obj

cvx = pytest.importorskip("convexnn.reference.cvx")
pytest.importorskip("cvxpy")


def _problem(loss, seed, n=30, d=3, P=6, c=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = np.maximum(X @ rng.standard_normal((d, 4)), 0) @ rng.standard_normal((4, c))
    if loss == "squared":
        y = teacher + 0.1 * rng.standard_normal((n, c))
        y = y[:, 0] if c == 1 else y
    elif loss == "cross_entropy":
        y = np.eye(c)[np.argmax(teacher + 0.3 * rng.standard_normal((n, c)), axis=1)]
    else:
        y = np.where(teacher[:, 0] + 0.2 * rng.standard_normal(n) > np.median(teacher[:, 0]), 1.0, -1.0)
    pats = cnn.sample_patterns(X, n_patterns=P, seed=seed, bias=True)
    return X, y, pats


@pytest.mark.parametrize(
    "loss,c",
    [("squared", 1), ("squared", 2), ("logistic", 1), ("squared_hinge", 1), ("hinge", 1), ("cross_entropy", 3)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_relu_matches_clarabel_and_certificate_is_honest(loss, c, seed):
    X, y, pats = _problem(loss, seed, c=c)
    beta = 0.5 if loss != "squared" else 0.3
    # The hinge is solved through Moreau smoothing with continuation (sublinear): ask for 1e-4 there.
    tol = 1e-4 if loss == "hinge" else 1e-7
    res = cnn.solve(X, y, beta, patterns=pats, bias=True, formulation="relu", loss=loss, tol=tol)
    Xb = np.hstack([X, np.ones((len(X), 1))])
    Y = y.reshape(len(X), -1)
    ref = cvx.solve_relu_cvxpy(Xb, pats.dense(), Y, beta, loss=loss)
    opt = ref["objective"]
    assert res.status == "converged", res.summary()
    assert res.objective == pytest.approx(opt, rel=1e-4)
    # Honest certificate: the claimed lower bound is below the optimum, the claimed gap covers the excess.
    assert res.dual_objective <= opt * (1 + 1e-7) + 1e-9
    assert res.gap >= (res.objective - opt) / abs(res.objective) - 1e-7
    assert res.max_violation <= 1e-6
    # The reported objective is the objective of the returned point, in docs/api.md scaling.
    V, W = res.coef_
    assert ref_obj.relu_objective(Xb, pats.dense(), V, W, Y, beta, loss) == pytest.approx(res.objective, rel=1e-10)
    assert ref_obj.relative_violation(Xb, pats.dense(), V, W) <= 1e-6
    # Theorem 1: the network reproduces the convex objective.
    net = res.network()
    assert net.objective(X, y, beta, loss=loss) == pytest.approx(res.objective, rel=1e-6)


def test_relu_warm_start_and_path_reach_the_same_optimum():
    X, y, pats = _problem("squared", 3)
    cold = cnn.solve(X, y, 0.2, patterns=pats, bias=True, formulation="relu", tol=1e-8)
    warm = cnn.solve(X, y, 0.2, patterns=pats, bias=True, formulation="relu", tol=1e-8, warm_start=cold)
    assert warm.objective == pytest.approx(cold.objective, rel=1e-7)
    assert warm.n_iter <= cold.n_iter
    path = cnn.solve_path(X, y, [1.0, 0.5, 0.2], patterns=pats, bias=True, formulation="relu", tol=1e-8)
    assert [r.status for r in path] == ["converged"] * 3
    assert path[-1].objective == pytest.approx(cold.objective, rel=1e-6)
    objectives = [r.objective for r in path]
    assert objectives == sorted(objectives, reverse=True)  # C*(beta) is non-decreasing in beta


def test_relu_status_reports_max_iter_honestly():
    X, y, pats = _problem("squared", 4)
    res = cnn.solve(X, y, 0.01, patterns=pats, bias=True, formulation="relu", tol=1e-12, max_iter=3)
    assert res.status == "max_iter"
    assert res.n_iter == 3
    assert res.gap > 1e-12
    assert res.dual_objective <= res.objective
    # The same history rows as the gated solver: one dict per certificate, the last one the reported values.
    assert {"iteration", "objective", "dual_objective", "gap", "time"} <= set(res.history[-1])
    assert res.history[-1]["iteration"] == 3 and res.history[-1]["objective"] == res.objective


def test_relu_float32_iterations_keep_float64_certificate():
    X, y, pats = _problem("squared", 5, n=40)
    r64 = cnn.solve(X, y, 0.3, patterns=pats, bias=True, formulation="relu", tol=1e-8)
    # float32 predictions limit the attainable gap (the residual is a difference of nearby float32 numbers),
    # so ask for 1e-3; the certificate itself is computed in float64 and must stay a valid bound.
    r32 = cnn.solve(X, y, 0.3, patterns=pats, bias=True, formulation="relu", tol=1e-3, dtype=np.float32)
    assert r32.status == "converged"
    assert r32.coef_[0].dtype == np.float64  # returned in float64 for the Python layer
    assert r32.objective == pytest.approx(r64.objective, rel=1e-4)
    assert r32.dual_objective <= r64.objective * (1 + 1e-9)
    assert r32.gap >= (r32.objective - r64.objective) / r32.objective - 1e-9


def test_relu_float32_with_a_tight_tol_warns():
    X, y, pats = _problem("squared", 6)
    with pytest.warns(RuntimeWarning, match="float32"):
        res = cnn.solve(
            X.astype(np.float32), y, 0.3, patterns=pats, bias=True, formulation="relu", tol=1e-7, max_iter=5
        )
    assert res.status == "max_iter"


@pytest.mark.parametrize("loss,c", [("squared", 2), ("logistic", 1), ("cross_entropy", 3)])
def test_relu_ray_newton_and_plain_fista_certify_the_same_optimum(loss, c):
    """The ray-Newton steps (on by default) change the path, not the optimum or the honesty of the certificate;
    with c > 1 outputs the reduced design mixes the heads' columns, so it is checked against CVXPY too."""
    from convexnn import _core
    from convexnn.solve import _operator

    X, y, pats = _problem(loss, 7, n=90, c=c)
    Xb = np.hstack([X, np.ones((len(X), 1))])
    Y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    beta = 0.3 if loss == "squared" else 0.5
    runs = {
        flag: _core.solve_relu(_operator(Xb, pats), Y, beta, loss=loss, tol=1e-8, max_iter=100_000, ray_newton=flag)
        for flag in (True, False)
    }
    opt = cvx.solve_relu_cvxpy(Xb, pats.dense(), Y, beta, loss=loss)["objective"]
    assert runs[True]["n_newton"] >= 1 and runs[False]["n_newton"] == 0
    for raw in runs.values():
        assert raw["status"] == "converged"
        assert raw["objective"] == pytest.approx(opt, rel=1e-5)
        assert raw["dual_objective"] <= opt * (1 + 1e-7) + 1e-9
        assert raw["max_violation"] <= 1e-9
        assert ref_obj.relu_objective(Xb, pats.dense(), raw["V"], raw["W"], Y, beta, loss) == pytest.approx(
            raw["objective"], rel=1e-10
        )
    assert runs[True]["objective"] == pytest.approx(runs[False]["objective"], rel=1e-7)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relu_float32_stops_at_its_floor_and_float64_finishes_in_fewer_iterations(seed):
    """A float32 exact solve to a tol below its rounding floor stops there ("precision_floor", far from
    max_iter; it used to run to max_iter at gaps ~1e-2 when backtracking halved the step on float32 rounding), and
    the float64 continuation from that point never takes more iterations than the float64 solve from scratch:
    the float32 route is never slower in float64 iterations. Counted in iterations and statuses, not wall time."""
    from convexnn import _core
    from convexnn.solve import _operator

    rng = np.random.default_rng(seed)
    n, d = 150, 4
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 3)), 0) @ rng.standard_normal(3) + 0.1 * rng.standard_normal(n)
    Y = y[:, None]
    Xb = np.hstack([X, np.ones((n, 1))])
    pats = cnn.sample_patterns(X, 16, seed=seed, bias=True)
    op64, op32 = _operator(Xb, pats), _operator(Xb.astype(np.float32), pats)
    tol, max_iter, beta = 1e-8, 20_000, 0.5
    r64 = _core.solve_relu(op64, Y, beta, tol=tol, max_iter=max_iter)
    r32 = _core.solve_relu(op32, Y, beta, tol=tol, max_iter=max_iter, precision_floor=True, certify_op=op64)
    assert r64["status"] == "converged"
    assert r32["status"] == "precision_floor" and r32["n_iter"] < max_iter // 4
    assert tol < r32["gap"] <= 1e-3  # the floor rule's ceiling
    assert r32["dual_objective"] <= r64["objective"] * (1 + 1e-9)  # an honest bound at the floor too
    V0, W0 = (np.asarray(r32[k], dtype=np.float64) for k in ("V", "W"))
    cont = _core.solve_relu(op64, Y, beta, tol=tol, max_iter=max_iter, warm_V=V0, warm_W=W0)
    assert cont["status"] == "converged"
    assert cont["n_iter"] <= r64["n_iter"]
    assert cont["objective"] == pytest.approx(r64["objective"], rel=1e-7)
    # convexnn.solve takes the same route: float32 to the floor, then float64 to the certified tol.
    with pytest.warns(RuntimeWarning, match="float32"):  # tol below the float32 floor: solve() says so
        res = cnn.solve(X, y, beta, patterns=pats, bias=True, formulation="relu", tol=tol, dtype=np.float32)
    assert res.status == "converged" and res.gap <= tol and "float64 continuation" in res.solver
    assert res.objective == pytest.approx(r64["objective"], rel=1e-7)

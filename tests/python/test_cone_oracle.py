"""Cone projection and per-pattern dual-constraint oracle of ``convexnn._core`` vs CVXPY + Clarabel.

K_i = {u : (2 D_i - I) X u >= 0};  the oracle value is max{ r^T D_i X u : u in K_i, ||u|| <= 1 }
= ||Pi_{K_i}(X^T D_i r)||.  Thin cones (nearly opposite / coplanar rows), where an interior-point
solver is not accurate enough, are compared with an exact rational brute force instead.
"""

import itertools
import warnings
from fractions import Fraction

import numpy as np
import pytest

from convexnn import _core
from convexnn.reference.patterns import add_bias, masks_from_gates

cp = pytest.importorskip("cvxpy")

CLARABEL = dict(tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11, tol_ktratio=1e-9, max_iter=500)


def cvx_solve(problem):
    # At these tolerances Clarabel sometimes ends "AlmostSolved" (optimal_inaccurate); the comparisons below
    # then decide whether the point is accurate enough.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=cp.CLARABEL, **CLARABEL)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status


def cone_rows(X, mask):
    """A = (2 D - I) X in float64, shape (n, d)."""
    return np.where(mask[:, None], 1.0, -1.0) * np.asarray(X, dtype=np.float64)


def cvx_projection(A, g):
    u = cp.Variable(A.shape[1])
    cvx_solve(cp.Problem(cp.Minimize(cp.sum_squares(u - g)), [A @ u >= 0]))
    return u.value


def cvx_oracle_value(A, c):
    """max c^T u over {A u >= 0, ||u|| <= 1}."""
    u = cp.Variable(A.shape[1])
    problem = cp.Problem(cp.Maximize(c @ u), [A @ u >= 0, cp.norm(u, 2) <= 1])
    cvx_solve(problem)
    return problem.value


def exact_projection(A, g):
    """Pi_K(g) in exact rational arithmetic: over all subsets S of at most d rows with an invertible Gram
    matrix, project g onto null(A_S); the closest feasible candidate is the projection."""
    n, d = A.shape
    rows = [[Fraction(float(v)) for v in row] for row in A]
    gf = [Fraction(float(v)) for v in g]
    best, best_dist = None, None
    for m in range(d + 1):
        for S in itertools.combinations(range(n), m):
            M = [
                [sum(rows[p][j] * rows[q][j] for j in range(d)) for q in S]
                + [sum(rows[p][j] * gf[j] for j in range(d))]
                for p in S
            ]
            singular = False
            for c in range(m):  # Gauss-Jordan, exact
                piv = next((r for r in range(c, m) if M[r][c] != 0), None)
                if piv is None:
                    singular = True
                    break
                M[c], M[piv] = M[piv], M[c]
                for r in range(m):
                    if r != c and M[r][c] != 0:
                        f = M[r][c] / M[c][c]
                        M[r] = [a - f * b for a, b in zip(M[r], M[c])]
            if singular:
                continue
            y = [M[i][m] / M[i][i] for i in range(m)]
            u = [gf[j] - sum(y[i] * rows[S[i]][j] for i in range(m)) for j in range(d)]
            if all(sum(row[j] * u[j] for j in range(d)) >= 0 for row in rows):
                dist = sum((u[j] - gf[j]) ** 2 for j in range(d))
                if best_dist is None or dist < best_dist:
                    best, best_dist = u, dist
    return np.array([float(v) for v in best])


def make_data(rng, n, d, bias, dtype):
    """X (n, d) of dtype; with bias the last of the d columns is the ones column."""
    X = rng.standard_normal((n, d - 1 if bias else d))
    if bias:
        X = add_bias(X)
    return np.ascontiguousarray(X, dtype=dtype)


def pattern_set(X, gates):
    """_core.PatternSet of the gates (P, d) on X, and its masks (n, P) (checked against the reference)."""
    pats = _core.PatternSet.from_gates(X, np.ascontiguousarray(gates, dtype=np.float64))
    masks = pats.dense()
    reference, _ = masks_from_gates(np.asarray(X, dtype=np.float64), gates.T)
    np.testing.assert_array_equal(masks, reference)
    return pats, masks


def unit_violation(A, u):
    """max_k (-a_k^T u)_+ / ||a_k|| over nonzero rows."""
    norms = np.linalg.norm(A, axis=1)
    nz = norms > 0
    return max(0.0, float(np.max(-(A[nz] @ u) / norms[nz]))) if nz.any() else 0.0


# ---- projection --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("d", [2, 3, 8])
@pytest.mark.parametrize("n", [5, 37, 200])
def test_projection_matches_cvxpy(n, d, bias, dtype):
    rng = np.random.default_rng(1000 * n + 10 * d + bias)
    X = make_data(rng, n, d, bias, dtype)
    pats, masks = pattern_set(X, rng.standard_normal((4, d)))
    for i in range(pats.n_patterns):
        A = cone_rows(X, masks[:, i])
        g = rng.standard_normal(d) * 3.0
        res = _core.project_onto_pattern_cone(X, pats, i, g)
        expected = cvx_projection(A, g)
        scale = max(1.0, np.linalg.norm(g))
        assert res["converged"]
        np.testing.assert_allclose(res["u"], expected, rtol=0, atol=1e-7 * scale)
        assert res["norm"] == pytest.approx(np.linalg.norm(res["u"]), rel=1e-12, abs=1e-15)
        assert unit_violation(A, res["u"]) <= 1e-10 * np.linalg.norm(g) + 1e-15
        assert res["max_violation"] == pytest.approx(unit_violation(A, res["u"]), abs=1e-12 * scale)
        assert g @ res["u"] == pytest.approx(res["norm"] ** 2, abs=1e-9 * scale**2)
        # The same problem through an explicit sign vector.
        same = _core.project_onto_sign_cone(X, masks[:, i], g)
        np.testing.assert_array_equal(same["u"], res["u"])


def test_projection_arbitrary_sign_vectors_and_degenerate_data():
    """Sign vectors no gate realizes (K may be lower-dimensional or {0}), rank-deficient X, duplicate,
    opposite and zero rows, g = 0 and g inside the cone."""
    rng = np.random.default_rng(7)
    for rep in range(24):
        n, d = 12, 4
        X = rng.standard_normal((n, d))
        if rep % 4 == 1:
            X[:, 3] = X[:, 0] - 2 * X[:, 1]  # rank deficient
        elif rep % 4 == 2:
            X[1], X[2], X[5] = X[0], -X[0], 0.0  # duplicate, opposite, zero row
        elif rep % 4 == 3:
            X = np.outer(rng.standard_normal(n), rng.standard_normal(d))  # rank one
        mask = rng.random(n) < 0.5
        A = cone_rows(X, mask)
        g = rng.standard_normal(d)
        res = _core.project_onto_sign_cone(X, mask, g)
        assert res["converged"]
        np.testing.assert_allclose(res["u"], cvx_projection(A, g), rtol=0, atol=1e-7 * max(1, np.linalg.norm(g)))
    zero = _core.project_onto_sign_cone(X, mask, np.zeros(d))
    assert zero["converged"] and zero["norm"] == 0.0 and zero["iterations"] == 0
    gate = rng.standard_normal(d)
    X = rng.standard_normal((30, d))
    inside = _core.project_onto_sign_cone(X, X @ gate >= 0, gate)
    assert inside["iterations"] == 0
    np.testing.assert_array_equal(inside["u"], gate)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_projection_thin_cones_exact(dtype):
    """Rows nearly opposite or nearly coplanar (angle eps >> tol): the exact rational projection."""
    rng = np.random.default_rng(3)
    for rep in range(24):
        n, d = 7, 3
        X = rng.standard_normal((n, d))
        eps = 10.0 ** -(2 + 2 * (rep % 3))  # 1e-2, 1e-4, 1e-6
        noise = lambda size: eps * rng.uniform(0.5, 1.0, size) * rng.choice([-1.0, 1.0], size)  # noqa: E731
        if rep % 2 == 0:
            X[:, 2] = X[:, 0] + X[:, 1] + noise(n)
        else:
            X[1] = -X[0] + noise(d)
            X[3] = -X[2] + noise(d)
        mask = rng.random(n) < 0.5
        if rep % 2:
            mask[:4] = True  # both of each nearly opposite pair
        X = X.astype(dtype)
        g = rng.standard_normal(d)
        res = _core.project_onto_sign_cone(X, mask, g)
        assert res["converged"]
        expected = exact_projection(cone_rows(X, mask), g)
        np.testing.assert_allclose(res["u"], expected, rtol=0, atol=1e-9 * np.linalg.norm(g))


def test_projection_layouts_and_errors():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((70, 4))
    mask = X @ rng.standard_normal(4) >= 0
    g = rng.standard_normal(4)
    c = _core.project_onto_sign_cone(X, mask, g)
    f = _core.project_onto_sign_cone(np.asfortranarray(X), mask, g)
    np.testing.assert_allclose(f["u"], c["u"], rtol=0, atol=1e-13)
    early = _core.project_onto_sign_cone(X, mask, g, max_iter=1)
    if c["iterations"] > 1:
        assert not early["converged"] and early["iterations"] == 1
        assert early["norm"] >= c["norm"] * (1 - 1e-12)  # every iterate is an upper bound
    with pytest.raises(ValueError, match="tol"):
        _core.project_onto_sign_cone(X, mask, g, tol=-1.0)
    with pytest.raises(ValueError, match="g"):
        _core.project_onto_sign_cone(X, mask, np.ones(3))
    with pytest.raises(ValueError, match="g"):
        _core.project_onto_sign_cone(X, mask, np.array([1.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="mask"):
        _core.project_onto_sign_cone(X, mask[:-1], g)
    with pytest.raises(ValueError, match="X"):
        _core.project_onto_sign_cone(X.astype(np.int64), mask, g)


# ---- oracle ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("n,d", [(5, 2), (37, 3), (200, 8)])
def test_oracle_matches_cvxpy(n, d, bias, dtype):
    rng = np.random.default_rng(7 * n + d + bias)
    X = make_data(rng, n, d, bias, dtype)
    pats, masks = pattern_set(X, rng.standard_normal((6, d)))
    r = rng.standard_normal(n).astype(dtype)
    pos, neg, arg, info = _core.dual_constraint_oracle(X, pats, r, return_info=True)
    P = pats.n_patterns
    assert pos.shape == (P,) and neg.shape == (P,) and arg.shape == (P, d)
    assert info["n_unconverged"] == 0 and info["max_relative_violation"] <= 1e-10
    X64, r64 = X.astype(np.float64), r.astype(np.float64)
    for i in range(P):
        A = cone_rows(X, masks[:, i])
        g = X64.T @ (masks[:, i] * r64)
        scale = max(1.0, np.linalg.norm(g))
        assert pos[i] == pytest.approx(cvx_oracle_value(A, g), abs=1e-7 * scale)
        assert neg[i] == pytest.approx(cvx_oracle_value(A, -g), abs=1e-7 * scale)
        # the value is the norm of the projection
        assert pos[i] == pytest.approx(_core.project_onto_pattern_cone(X, pats, i, g)["norm"], abs=1e-12 * scale)
        assert neg[i] == pytest.approx(_core.project_onto_pattern_cone(X, pats, i, -g)["norm"], abs=1e-12 * scale)
        # the maximizer: unit (or 0), in K_i, attains the larger value
        u = arg[i]
        best, sign = (pos[i], 1.0) if pos[i] >= neg[i] else (neg[i], -1.0)
        assert np.linalg.norm(u) == pytest.approx(1.0 if best > 0 else 0.0, abs=1e-12)
        assert unit_violation(A, u) <= 1e-9
        assert sign * (r64 @ (masks[:, i] * (X64 @ u))) == pytest.approx(best, abs=1e-9 * scale)


def test_oracle_subsets_threads_and_errors():
    rng = np.random.default_rng(11)
    n, d = 120, 5
    X = rng.standard_normal((n, d))
    pats, _ = pattern_set(X, rng.standard_normal((25, d)))
    r = rng.standard_normal(n)
    threads = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        one = _core.dual_constraint_oracle(X, pats, r)
        _core.set_num_threads(2)
        two = _core.dual_constraint_oracle(X, pats, r)
    finally:
        _core.set_num_threads(threads)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)  # deterministic whatever the thread count
    picked = np.array([pats.n_patterns - 1, 0, 2])
    sub = _core.dual_constraint_oracle(X, pats, r, subset=picked)
    for a, b in zip(sub, one):
        np.testing.assert_array_equal(a, b[picked])
    f = _core.dual_constraint_oracle(np.asfortranarray(X), pats, r)
    np.testing.assert_allclose(f[0], one[0], rtol=1e-12, atol=1e-13)
    empty = _core.dual_constraint_oracle(X, pats, r, subset=np.zeros(0, dtype=np.int64))
    assert empty[0].shape == (0,) and empty[2].shape == (0, d)

    with pytest.raises(ValueError, match="r"):
        _core.dual_constraint_oracle(X, pats, r.astype(np.float32))  # r must have X's dtype
    with pytest.raises(ValueError, match="r"):
        _core.dual_constraint_oracle(X, pats, r[:-1])
    with pytest.raises(ValueError, match="subset"):
        _core.dual_constraint_oracle(X, pats, r, subset=np.array([0, pats.n_patterns]))
    with pytest.raises(ValueError):
        _core.dual_constraint_oracle(X[:-1], pats, r[:-1])  # patterns built on another X
    with pytest.raises(ValueError, match="pattern index"):
        _core.project_onto_pattern_cone(X, pats, pats.n_patterns, np.ones(d))

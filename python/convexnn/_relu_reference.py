"""Interim exact (relu) solver: the CVXPY + Clarabel reference, certified by the C++ cone oracle.

Used by :func:`convexnn.solve` for formulation="relu" until the C++ exact solver lands. The primal point
comes from the interior-point reference; the dual bound is computed independently: theta = s * grad L(z),
scaled so that every pattern's dual constraint max_{u in K_i, ||u|| <= 1} |theta_k^T D_i X u| <= beta holds
(the C++ oracle evaluates the left-hand side exactly by projecting onto each cone K_i).
"""

from __future__ import annotations

import time

import numpy as np

from . import _core


def relu_dual_bound(Xb, pats, Z, Y, beta, loss):
    """Dual bound of the exact program at prediction Z (n, c): returns (dual_objective, max_dual_constraint)."""
    from .reference.losses import loss_conjugate, loss_grad

    G = loss_grad(Z, Y, loss)  # (n, c)
    worst = 0.0
    for k in range(G.shape[1]):
        r = np.ascontiguousarray(G[:, k], dtype=Xb.dtype)
        pos, neg, _ = _core.dual_constraint_oracle(Xb, pats._set, r)
        worst = max(worst, float(np.max(pos, initial=0.0)), float(np.max(neg, initial=0.0)))
    scale = 1.0 if worst <= beta else beta / worst
    return float(-loss_conjugate(scale * G, Y, loss)), worst


def solve_relu_reference(Xb, Y, beta, pats, loss, tol):
    from .reference.cvx import solve_relu_cvxpy
    from .reference.objectives import relative_violation, relu_objective

    t0 = time.perf_counter()
    Xd = np.asarray(Xb, dtype=np.float64)
    masks = pats.dense()
    sol = solve_relu_cvxpy(Xd, masks, Y, beta, loss=loss)
    V = np.asarray(sol["V"], dtype=np.float64).reshape(pats.n_patterns, Xd.shape[1], -1)
    W = np.asarray(sol["W"], dtype=np.float64).reshape(V.shape)
    primal = float(relu_objective(Xd, masks, V, W, Y, beta, loss))
    Z = _core.MaskedOperatorF64(Xd, pats._set).forward(np.ascontiguousarray(V - W))
    dual, worst = relu_dual_bound(Xd, pats, Z.reshape(len(Xd), -1), Y, beta, loss)
    gap = (primal - dual) / abs(primal) if primal != 0 else (0.0 if dual == 0 else np.inf)
    violation = float(relative_violation(Xd, masks, V, W))
    status = "converged" if (gap <= tol and violation <= tol) else "max_iter"
    return dict(objective=primal, dual_objective=dual, gap=float(gap), status=status, n_iter=int(sol.get("n_iter", 0)),
                solver="reference-clarabel", coef_=(V, W), max_violation=violation, kkt_residual=max(float(gap), 0.0),
                max_dual_violation=worst, history=[{"time": time.perf_counter() - t0, "objective": primal,
                                                    "gap": float(gap)}])

"""Cone decomposition of gated coefficients: a warm start for the exact (cone-constrained) program.

A gated neuron u_i (pattern D_i) predicts D_i X u_i. Writing u_i = v_i - w_i with both v_i and w_i in the pattern's
cone K_i = {u : (2 D_i - I) X u >= 0} gives ReLU neurons that predict exactly the same thing (Mishkin, Sahiner &
Pilanci, "Fast convex optimization for two-layer ReLU networks", ICML 2022): D_i X v_i = (X v_i)_+ on K_i. When
K_i has an interior, K_i - K_i is the whole space, so the decomposition exists; we take the w_i of least norm,

    w_i = argmin ||w||  s.t.  w in K_i  and  u_i + w in K_i,      v_i = u_i + w_i,

computed by Dykstra's alternating projections onto K_i and K_i - u_i with the exact C++ cone projector. Where
Dykstra has not converged within ``max_iter`` steps (thin intersections converge slowly), the exact fallback
w_i = t g_i along the pattern's gate g_i (strictly inside K_i) is used, with the smallest t >= 0 that puts
u_i + t g_i in K_i: one pass over the data, not of least norm.

``solve(..., formulation="relu", warm_start=gated_result)`` uses it. Whether it pays off is measured in
bench/RESULTS.md: each Dykstra step costs two exact cone projections per block and column, as much as
several iterations of the exact solver's prox.
"""

from __future__ import annotations

import numpy as np

from . import _core


def cone_decomposition(Xb, patterns, U, tol=1e-8, max_iter=0):
    """Split gated coefficients into ReLU coefficients with the same predictions.

    Parameters
    ----------
    Xb : ndarray (n, d)
        The data the patterns were built on (with the bias column when the model has one), float64.
    patterns : Patterns or convexnn._core.PatternSet
        The P patterns of ``U``.
    U : ndarray (P, d, c)
        Gated coefficients (e.g. ``solve(..., formulation="gated").coef_``).
    tol : float
        Stop a block when the two Dykstra iterates agree to ``tol * ||u_i||``.
    max_iter : int
        Dykstra steps per block and output column towards the least-norm w_i. The default 0 skips them and
        decomposes along the gates (exact, one pass over the data per column): measured on the issue-5 problem,
        200 Dykstra steps cost 20-180 s (two exact cone projections each; most thin intersections still had
        not converged) against 0.4-0.9 s for the whole exact solve.

    Returns
    -------
    V, W : ndarray (P, d, c)
        ``V - W == U`` exactly; every column of W lies in its cone, and every column of V lies in it up to the
        reported residual.
    info : dict
        ``max_residual``: max over columns of ||v - Pi_K(v)|| / ||u|| (0 up to rounding when every column is
        decomposed); ``iterations``: total Dykstra steps; ``gate_fallbacks``: columns decomposed along the gate
        (all nonzero columns when max_iter = 0).
    """
    pset = getattr(patterns, "_set", patterns)
    Xb = np.ascontiguousarray(Xb, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    if U.ndim != 3 or U.shape[0] != pset.n_patterns or U.shape[1] != Xb.shape[1]:
        raise ValueError(f"U must have shape (P, d, c) = ({pset.n_patterns}, {Xb.shape[1]}, c); got {U.shape}")
    if not np.isfinite(U).all():
        raise ValueError("U contains NaN or Inf")
    if not (tol > 0 and max_iter >= 0):
        raise ValueError(f"tol must be > 0 and max_iter >= 0, got tol={tol}, max_iter={max_iter}")

    def project(i, g):
        return _core.project_onto_pattern_cone(Xb, pset, i, g, tol=1e-12)

    V = np.zeros_like(U)
    W = np.zeros_like(U)
    gates = np.asarray(pset.gates(), dtype=np.float64)  # (P, d)
    dense = row_norms = None  # (n, P) masks and ||x_k||, only if a gate decomposition needs them
    info = dict(max_residual=0.0, iterations=0, gate_fallbacks=0)
    for i in range(U.shape[0]):
        for j in range(U.shape[2]):
            u = np.ascontiguousarray(U[i, :, j])
            nu = float(np.linalg.norm(u))
            if nu == 0.0:
                continue
            x = np.zeros_like(u)
            p = np.zeros_like(u)
            q = np.zeros_like(u)
            y = x
            converged = False
            for _ in range(max_iter):
                info["iterations"] += 1
                y = project(i, x + p)["u"]  # onto K_i
                p = x + p - y
                x = project(i, y + q + u)["u"] - u  # onto K_i - u
                q = y + q - x
                if np.linalg.norm(x - y) <= tol * nu:
                    converged = True
                    break
            if not converged:
                if dense is None:  # once per call, only if a gate decomposition is needed
                    dense = np.asarray(pset.dense(), dtype=bool)
                    row_norms = np.linalg.norm(Xb, axis=1)
                y = _gate_shift(Xb, row_norms, dense[:, i], i, u, gates[i], project)
                info["gate_fallbacks"] += 1
            W[i, :, j] = y  # in K_i (a projection, or a multiple of the gate)
            V[i, :, j] = u + y
            v_in = project(i, V[i, :, j])
            info["max_residual"] = max(info["max_residual"], float(np.linalg.norm(V[i, :, j] - v_in["u"])) / nu)
    return V, W, info


_TIE_TOL = 1e-9  # relative margin below which a sample counts as lying on a gate's hyperplane


def _gate_shift(Xb, row_norms, mask, i, u, gate, project):
    """t * h with the smallest t >= 0 such that u + t * h lies in K_i, h strictly inside K_i: the pattern's gate,
    plus the projections onto K_i of the samples it passes through (sampled gates with a bias go through one
    training point: a tie, a_k^T gate = 0). For a sample row a_k, a_k^T Pi_K(a_k) = ||Pi_K(a_k)||^2 > 0 and every
    other a^T Pi_K(a_k) >= 0, so the sum is strictly inside whenever those projections are nonzero."""
    s = np.where(mask, 1.0, -1.0)
    a_u = s * (Xb @ u)
    need = a_u < 0
    if not need.any():
        return np.zeros_like(u)
    h = np.array(gate, dtype=np.float64)
    a_h = s * (Xb @ h)
    scale = float(np.linalg.norm(h))
    # Ties up to rounding: a sample on the gate's hyperplane has a_k^T gate ~ 1e-16, not 0 (the shift along the
    # gate alone would then be ~1e16 times too long).
    for k in np.flatnonzero(a_h <= _TIE_TOL * scale * row_norms):
        row = s[k] * Xb[k]
        nrm = float(np.linalg.norm(row))
        if nrm > 0:
            h = h + scale * project(i, np.ascontiguousarray(row / nrm))["u"]
    a_h = s * (Xb @ h)
    if np.any(a_h[need] <= _TIE_TOL * scale * row_norms[need]):
        raise ValueError(f"pattern {i}: no direction strictly inside its cone was found (degenerate cone)")
    return float(np.max(-a_u[need] / a_h[need])) * h

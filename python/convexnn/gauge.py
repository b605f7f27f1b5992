"""The neural gauge: minimum-norm interpolation by a two-layer ReLU network (the beta -> 0 limit).

Pilanci & Ergen, "Neural Networks are Convex Regularizers" (ICML 2020), eqs. (6)-(7) and Appendix A.10:

    p_gauge = min sum_j |alpha_j|  s.t.  sum_j (X u_j)_+ alpha_j = y,  ||u_j|| <= 1
            = min sum_i (||v_i|| + ||w_i||)  s.t.  sum_i D_i X (v_i - w_i) = y,  (2 D_i - I) X v_i, w_i >= 0,

the limit of p*(beta) / beta, with the polar dual  max z^T y  s.t.  |z^T (X u)_+| <= 1 for all ||u|| <= 1.

Solved by the method of multipliers on the equality constraint: each step is the exact program
``min (1/rho) R(v, w) + 1/2 ||A(v, w) - (y - lambda / rho)||^2`` (convexnn.solve, warm-started), then
``lambda += rho (A(v, w) - y)``. The inner solve's scaled residual z = -lambda is a polar-dual point; scaled to
satisfy the dual constraint of every given pattern exactly (the cone oracle), z^T y is a lower bound on the
gauge over those patterns (over all networks when the patterns are the whole arrangement).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import _core
from ._operators import make_operator
from ._validation import add_bias_column, check_scalar, check_X, check_y
from .network import Network, neurons_from_blocks
from .patterns import as_patterns

# Outer iterations at most; rho grows by RHO_GROWTH when the interpolation residual fell by less than
# RESIDUAL_DECREASE (a fixed rho converges; larger ones make the inner solves ill-conditioned);
# the first rho makes 1/rho this fraction of beta_max.
GAUGE_MAX_OUTER = 60
RHO_GROWTH = 3.0
RESIDUAL_DECREASE = 0.9
FIRST_BETA_RATIO = 0.05


@dataclass
class GaugeResult:
    """Minimum-norm interpolation and its certificate.

    Attributes
    ----------
    objective : float
        sum_i (||v_i|| + ||w_i||) at the returned point (= sum_j |alpha_j| of its unit-norm network).
    dual_objective : float
        z^T y for a polar-dual feasible z over ``patterns``: a lower bound on the gauge over them.
    gap : float
        (objective - dual_objective) / objective.
    residual : float
        Relative interpolation error ||A(v, w) - y|| / ||y||.
    status : str
        "converged" (gap and residual <= tol), "max_iter" or "time_limit".
    coef_ : tuple (V, W) of shape (P, d[+1], 1)
    patterns : Patterns
    n_outer, n_iter, time
    """

    objective: float
    dual_objective: float
    gap: float
    residual: float
    status: str
    coef_: tuple
    patterns: object
    bias: bool
    n_outer: int
    n_iter: int
    time: float

    def network(self):
        """The interpolating network (Theorem 1 map: u = v / sqrt||v||, alpha = +-sqrt||v||)."""
        V, W = self.coef_
        _, W1v, w2v = neurons_from_blocks(V, +1.0)
        _, W1w, w2w = neurons_from_blocks(W, -1.0)
        return Network(np.vstack([W1v, W1w]), np.vstack([w2v, w2w])[:, 0], bias=self.bias)


def _polar_bound(Xb, pats, z, y):
    pos, neg, _ = _core.dual_constraint_oracle(Xb, pats._set, np.ascontiguousarray(z))
    m = float(max(pos.max(initial=0.0), neg.max(initial=0.0)))
    return float(z @ y) / max(1.0, m)


def min_norm_interpolation(X, y, patterns=None, bias=False, seed=0, tol=1e-6, time_limit=None, verbose=False):
    """The neural gauge (minimum-norm interpolation) over ``patterns``, with a dual certificate.

    Parameters
    ----------
    X : array (n, d)
    y : array (n,)
        Real targets (scalar output).
    patterns : Patterns, gate array (d[+1], P), int or None
        As for :func:`convexnn.solve`; ``cnn.enumerate_patterns(X, bias)`` gives the gauge over all networks.
    bias : bool
    seed : int
    tol : float > 0
        On the relative gap and on the relative interpolation residual.
    time_limit : float or None
    verbose : bool

    Returns
    -------
    GaugeResult
    """
    from .solve import beta_max, solve

    start = time.perf_counter()
    X = check_X(X)
    Y, _ = check_y(y, X.shape[0], "squared")
    if Y.shape[1] != 1:
        raise ValueError(f"y must have one output for the gauge; got {Y.shape[1]} columns")
    tol = check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    if time_limit is not None:
        time_limit = check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False)
    yv = Y[:, 0].astype(np.float64)
    Xb = np.asarray(add_bias_column(X) if bias else X, dtype=np.float64)
    pats = as_patterns(patterns, X, bias, seed)
    norm_y = float(np.linalg.norm(yv))
    if norm_y == 0:
        P, d = pats.n_patterns, Xb.shape[1]
        zero = np.zeros((P, d, 1))
        return GaugeResult(0.0, 0.0, 0.0, 0.0, "converged", (zero, zero.copy()), pats, bias, 0, 0, 0.0)
    rho = 1.0 / (FIRST_BETA_RATIO * beta_max(X, yv, pats, bias=bias))
    lam = np.zeros_like(yv)
    warm, total, best_dual, status = None, 0, -np.inf, "max_iter"
    op = make_operator(Xb, pats, np.float64)
    res = residual = None
    for outer in range(GAUGE_MAX_OUTER):
        left = None if time_limit is None else time_limit - (time.perf_counter() - start)
        if left is not None and left <= 0:
            status = "time_limit"
            break
        target = yv - lam / rho
        res = solve(
            X,
            target,
            1.0 / rho,
            patterns=pats,
            formulation="relu",
            bias=bias,
            tol=min(tol, 1e-7),
            time_limit=left,
            warm_start=warm,
        )
        warm, total = res, total + res.n_iter
        V, W = res.coef_
        fit = op.forward(np.ascontiguousarray(V - W))[:, 0]
        lam = lam + rho * (fit - yv)
        best_dual = max(best_dual, _polar_bound(Xb, pats, -lam, yv))
        new_residual = float(np.linalg.norm(fit - yv)) / norm_y
        primal = float(np.linalg.norm(V, axis=1).sum() + np.linalg.norm(W, axis=1).sum())
        gap = (primal - best_dual) / primal if primal > 0 else np.inf
        if verbose:
            print(
                f"[convexnn gauge] outer {outer}: rho {rho:.3g} norm {primal:.10g} dual {best_dual:.10g} "
                f"residual {new_residual:.2e}",
                flush=True,
            )
        if new_residual <= tol and gap <= tol:
            residual, status = new_residual, "converged"
            break
        if residual is not None and new_residual > RESIDUAL_DECREASE * residual:
            rho *= RHO_GROWTH
        residual = new_residual
    V, W = res.coef_
    primal = float(np.linalg.norm(V, axis=1).sum() + np.linalg.norm(W, axis=1).sum())
    gap = (primal - best_dual) / primal if primal > 0 else np.inf
    return GaugeResult(
        primal, best_dual, gap, residual, status, (V, W), pats, bias, outer + 1, total, time.perf_counter() - start
    )

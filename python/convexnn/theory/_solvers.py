"""Exact and iterative solvers of the end-to-end convex problems behind the closed forms.

* :func:`group_lasso` -- ``min_z 1/2 ||X z - y||^2 + beta ||z||_2``, exact through the secular equation of the
  projection onto ``{u : ||X^T u||_2 <= beta}`` (the dual of Ergen & Pilanci, ICML 2021, eq. (10));
* :func:`nuclear_norm_regression` -- ``min_Z 1/2 ||X Z - Y||_F^2 + beta ||Z||_*``, the end-to-end form of the
  regularized two-layer linear network with K outputs (ICML 2021, Sec. 2.2.1): singular value thresholding when
  ``X X^T = I_n`` or ``X^T X = c I_d``, accelerated proximal gradient with a duality-gap stop otherwise;
* :func:`scalar_power_prox` -- ``argmin_{s >= 0} c/2 (a - s)^2 + (beta L / 2) s^(2/L)``, the per-singular-value
  problem of the regularized deep linear / whitened deep ReLU networks (non-convex for L > 2: the global minimum is
  either 0 or the larger stationary point).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from sklearn.exceptions import ConvergenceWarning

from ._common import is_whitened, orthonormal_columns_scale


def thin_svd(X, rtol=1e-12):
    """Thin SVD keeping the singular values above ``rtol * sigma_max * max(n, d)``.

    Tall matrices (n >= 4 d, n d > 4e6) go through the Gram matrix X^T X (one GEMM and a d x d eigh, several times
    faster than LAPACK's SVD of X); its singular values are accurate to ~1e-8 relative to sigma_max, so values
    below ``1e-7 sigma_max`` are dropped there.
    """
    n, d = X.shape
    if n >= 4 * d and n * d > 4_000_000:
        evals, V = np.linalg.eigh(X.T @ X)
        evals, V = evals[::-1], V[:, ::-1]
        s = np.sqrt(np.maximum(evals, 0.0))
        keep = s > max(rtol * max(X.shape), 1e-7) * (s[0] if s.size else 0.0)
        s, V = s[keep], V[:, keep]
        return (X @ V) / s, s, V.T
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    keep = s > rtol * (s[0] if s.size else 0.0) * max(X.shape)
    return U[:, keep], s[keep], Vt[keep]


def svt(M, tau):
    """Singular value soft-thresholding: U diag((s - tau)_+) V^T."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    return (U * np.maximum(s - tau, 0.0)) @ Vt


def _secular_mu(s, c, radius):
    """mu >= 0 with sum s^2 c^2 / (1 + mu s^2)^2 = radius^2 (0 when already inside)."""
    g = lambda mu: float(np.sum((s * c / (1.0 + mu * s * s)) ** 2)) - radius**2  # noqa: E731
    if g(0.0) <= 0.0:
        return 0.0
    hi = np.linalg.norm(c) / (radius * s.min() ** 2) + 1.0 / s.min() ** 2
    while g(hi) > 0.0:
        hi *= 2.0
    return brentq(g, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def group_lasso(X, y, beta):
    """Exact ``z* = argmin 1/2 ||Xz - y||^2 + beta ||z||_2`` and the dual ``lambda* = y - X z*``.

    Returns
    -------
    z : ndarray (d,)
    lam : ndarray (n,)
        The projection of y onto ``{u : ||X^T u||_2 <= beta}``.
    """
    U, s, Vt = thin_svd(X)
    if s.size == 0 or beta == 0.0:
        z = Vt.T @ ((U.T @ y) / s) if s.size else np.zeros(X.shape[1])
        return z, y - X @ z
    c = U.T @ y
    mu = _secular_mu(s, c, beta)
    lam = y - U @ (c * (mu * s * s / (1.0 + mu * s * s)))
    z = Vt.T @ (mu * s * c / (1.0 + mu * s * s))
    return z, lam


def nuclear_norm_regression(X, Y, beta, tol=1e-8, max_iter=50_000):
    """``Z* = argmin 1/2 ||XZ - Y||_F^2 + beta ||Z||_*`` and ``Lambda* = Y - X Z*``.

    Exact (SVT) for whitened X (X X^T = I_n: Z = X^T SVT_beta(Y)) and for X^T X = c I_d
    (Z = SVT_{beta/c}(X^T Y / c)); otherwise FISTA with restarts, stopped at a relative duality gap ``tol``
    (a ConvergenceWarning if ``max_iter`` is reached first; the gap of the scaled residual stalls near 1e-9).

    Returns
    -------
    Z : ndarray (d, K)
    Lam : ndarray (n, K)
    info : dict
        ``method`` ("svt_whitened", "svt_orthogonal" or "fista"), ``gap``, ``n_iter``.
    """
    if Y.shape[1] == 1:
        z, lam = group_lasso(X, Y[:, 0], beta)
        return z[:, None], lam[:, None], {"method": "secular", "gap": 0.0, "n_iter": 0}
    if is_whitened(X):
        Z = X.T @ svt(Y, beta)
        return Z, Y - X @ Z, {"method": "svt_whitened", "gap": 0.0, "n_iter": 0}
    c = orthonormal_columns_scale(X)
    if c is not None:
        Z = svt(X.T @ Y / c, beta / c)
        return Z, Y - X @ Z, {"method": "svt_orthogonal", "gap": 0.0, "n_iter": 0}
    return _fista_nuclear(X, Y, beta, tol, max_iter)


def _fista_nuclear(X, Y, beta, tol, max_iter):
    lip = np.linalg.norm(X, 2) ** 2
    Z = np.zeros((X.shape[1], Y.shape[1]))
    V, t, prev, gap = Z.copy(), 1.0, np.inf, np.inf
    half_y2 = 0.5 * float(np.sum(Y * Y))
    for it in range(1, max_iter + 1):
        Zn = svt(V - X.T @ (X @ V - Y) / lip, beta / lip)
        R = X @ Zn - Y
        primal = 0.5 * float(np.sum(R * R)) + beta * float(np.linalg.svd(Zn, compute_uv=False).sum())
        if primal > prev:  # adaptive restart
            t, V = 1.0, Z.copy()
            continue
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        V, Z, t, prev = Zn + ((t - 1.0) / tn) * (Zn - Z), Zn, tn, primal
        if it % 10 == 0 or it == max_iter:
            Lam = -R
            nrm = np.linalg.norm(X.T @ Lam, 2)
            Lf = Lam * min(1.0, beta / nrm) if nrm > 0 else Lam
            dual = half_y2 - 0.5 * float(np.sum((Lf - Y) ** 2))
            gap = (primal - dual) / max(primal, 1e-300)
            if gap <= tol:
                return Z, Y - X @ Z, {"method": "fista", "gap": gap, "n_iter": it}
    warnings.warn(
        f"nuclear-norm regression stopped at max_iter={max_iter} with relative gap {gap:.2e} > tol={tol:g}",
        ConvergenceWarning,
        stacklevel=3,
    )
    return Z, Y - X @ Z, {"method": "fista", "gap": gap, "n_iter": max_iter}


def scalar_power_prox(a, c, beta, L):
    """Global minimizer of ``h(s) = c/2 (a - s)^2 + (beta L / 2) s^(2/L)`` over s >= 0 (a >= 0, c > 0).

    L = 2: soft thresholding ``(a - beta/c)_+``.  L > 2: h is non-convex; its stationary points solve
    ``c (s - a) + beta s^(2/L - 1) = 0``, whose left side is convex in s, so there are at most two and the
    larger one is the only local minimum in (0, a]; the result is that point or 0, whichever is lower (ties go
    to the nonzero point).
    """
    if a <= 0.0:
        return 0.0
    if beta == 0.0:
        return float(a)
    if L == 2:
        return max(a - beta / c, 0.0)
    p = 2.0 / L
    g = lambda s: c * (s - a) + beta * s ** (p - 1.0)  # noqa: E731
    s_min = (beta * (1.0 - p) / c) ** (1.0 / (2.0 - p))  # argmin of g
    if s_min >= a or g(s_min) > 0.0:
        return 0.0
    s = brentq(g, s_min, a, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    h = lambda v: 0.5 * c * (a - v) ** 2 + 0.5 * beta * L * v**p  # noqa: E731
    return float(s) if h(s) <= h(0.0) else 0.0


def deep_scalar_end_to_end(X, y, beta, L):
    """Global ``argmin_z 1/2 ||Xz - y||^2 + (beta L / 2) ||z||^(2/L)`` for any X (a 1-D search).

    The minimizer lies on the trust-region curve ``z(mu) = (X^T X + mu I)^+ X^T y`` (mu in [0, inf]): for its
    norm r it minimizes the loss over the ball of radius r.  The curve is searched on a log grid of mu, refined
    with Brent's method, and compared with z = 0 (mu = inf).
    """
    U, s, Vt = thin_svd(X)
    if s.size == 0:
        return np.zeros(X.shape[1])
    c = U.T @ y
    perp = 0.5 * max(float(y @ y - c @ c), 0.0)
    p = 2.0 / L

    def point(mu):
        return Vt.T @ (s * c / (s * s + mu))

    def obj(log_mu):
        mu = np.exp(log_mu)
        r2 = float(np.sum((s * c / (s * s + mu)) ** 2))
        return 0.5 * float(np.sum((mu * c / (s * s + mu)) ** 2)) + perp + 0.5 * beta * L * r2 ** (p / 2)

    base = 2.0 * np.log(s.max())
    grid = np.linspace(base - 40.0, base + 40.0, 4001)
    vals = np.array([obj(g) for g in grid])
    k = int(np.argmin(vals))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = minimize_scalar(obj, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13})
    best_log, best = (res.x, res.fun) if res.fun <= vals[k] else (grid[k], vals[k])
    candidates = [(best, point(np.exp(best_log)))]
    z0 = point(0.0)
    candidates.append((0.5 * float(np.sum((X @ z0 - y) ** 2)) + 0.5 * beta * L * np.linalg.norm(z0) ** p, z0))
    candidates.append((0.5 * float(y @ y), np.zeros(X.shape[1])))
    return min(candidates, key=lambda t: t[0])[1]

"""Dual problems, projections, extreme points and certificates of the duality papers.

* :func:`project_dual_ball` -- the projection ``P_{X,r}`` onto ``{u : ||X^T u||_2 <= r}`` (vector y) or
  ``{U : sigma_max(U^T X) <= r}`` (matrix Y) of Ergen & Pilanci, ICML 2021, eqs. (10) and (12);
* :func:`extreme_points` -- the optimal neuron directions: maximal right singular vectors of
  ``P_{X,beta}(Y)^T X`` (ICML 2021 Cor. 2.1, Remark 2.1);
* :func:`relu_dual_constraint` -- ``max_{||u|| <= 1} |v^T (A u)_+|`` (JMLR 2021 eq. (12)): exact for d = 1 and for
  whitened A (where it is ``max(||(v)_+||, ||(-v)_+||)``, Lemma 10), sampled otherwise (a lower estimate; exact
  checking is NP-hard, Remark 3);
* :func:`spike_free_ratio` -- JMLR 2021 Lemma 3: ``max_{||u|| <= 1} ||A^+ (A u)_+||`` (A is spike-free iff <= 1 and
  ``(A u)_+`` stays in range(A)); exact for d = 1, sampled for d > 1;
* :func:`hull_distance_neurons` -- JMLR 2021 Lemma 7: the neuron of sample i points from the projection of a_i onto
  the convex hull of the other samples (simplex-constrained least squares) to a_i;
* :func:`duality_gap` -- primal minus dual for any two-layer network against a dual point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from .._validation import check_scalar
from ._common import as_matrix, as_targets, is_whitened
from ._solvers import group_lasso, nuclear_norm_regression


def project_dual_ball(X, y, radius: float) -> np.ndarray:
    """Euclidean projection of y onto ``{u : ||X^T u||_2 <= r}`` (y (n,)) or ``{U : sigma_max(U^T X) <= r}`` (Y (n, K)).

    Exact for vectors (secular equation) and for whitened / orthogonal-column X; otherwise computed as
    ``Y - X Z*`` with Z* the nuclear-norm regression solution (its optimality condition), to a 1e-8 relative gap.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    radius : float >= 0

    Returns
    -------
    ndarray, shape of y
    """
    X = as_matrix(X)
    Y, was_1d = as_targets(y, X.shape[0])
    r = float(check_scalar(radius, "radius", low=0.0))
    if was_1d:
        return group_lasso(X, Y[:, 0], r)[1]
    return nuclear_norm_regression(X, Y, r)[1]


def extreme_points(X, y, beta: float, rtol: float = 1e-6) -> np.ndarray:
    """Optimal first-layer directions of the regularized two-layer linear network (ICML 2021 Remark 2.1).

    The right singular vectors w of ``P_{X,beta}(Y)^T X`` with singular value ``beta`` (within ``rtol``): they
    maximize the dual constraint ``||P(Y)^T X w||_2`` over unit w.  Empty when ``beta >= sigma_max(X^T Y)``.

    Returns
    -------
    ndarray of shape (d, r)
        Unit-norm columns (any orthonormal combination of them is also optimal, Remark 2.2).
    """
    X = as_matrix(X)
    Lam = project_dual_ball(X, y, beta).reshape(X.shape[0], -1)
    _, s, Vt = np.linalg.svd(Lam.T @ X, full_matrices=False)
    keep = s >= beta * (1 - rtol) if beta > 0 else s > 0
    return Vt[keep].T


def relu_dual_constraint(A, v, n_samples: int = 20_000, seed: int = 0):
    """``max_{||u||_2 <= 1} |v^T (A u)_+|`` and whether the value is exact.

    Exact for d = 1 (u = +-1) and for whitened A (``max(||(v)_+||, ||(-v)_+||)``, JMLR 2021 Lemma 10); otherwise the
    maximum over ``n_samples`` random unit directions and the n directions ``A^T e_i`` / ``A^T (+-v)_+`` (a lower
    bound of the true value).

    Returns
    -------
    (float, bool)
    """
    A = as_matrix(A, "A")
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.shape != (A.shape[0],):
        raise ValueError(f"v must have shape ({A.shape[0]},); got {v.shape}")
    if A.shape[1] == 1:
        return float(max(abs(v @ np.maximum(A[:, 0], 0)), abs(v @ np.maximum(-A[:, 0], 0)))), True
    if is_whitened(A):
        return float(max(np.linalg.norm(np.maximum(v, 0)), np.linalg.norm(np.maximum(-v, 0)))), True
    n_samples = check_scalar(n_samples, "n_samples", low=1, integer=True)
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((A.shape[1], n_samples))
    U = np.hstack([U, A.T, A.T @ np.maximum(v, 0)[:, None], A.T @ np.maximum(-v, 0)[:, None]])
    nrm = np.linalg.norm(U, axis=0)
    U = U[:, nrm > 0] / nrm[nrm > 0]
    return float(np.abs(v @ np.maximum(A @ U, 0)).max()), False


def spike_free_ratio(A, n_samples: int = 20_000, seed: int = 0):
    """JMLR 2021 Lemma 3: ``max_{||u|| <= 1} ||A^+ (A u)_+||`` (inf when some ``(A u)_+`` leaves range(A)).

    A is spike-free (its rectified ellipsoid is convex) iff the value is <= 1.  Exact for d = 1 (u = +-1);
    for d > 1 a maximum over ``n_samples`` random unit directions (a lower bound: a value > 1 proves A is not
    spike-free, a value <= 1 is evidence only).

    Returns
    -------
    (float, bool)
        The ratio and whether it is exact.
    """
    A = as_matrix(A, "A")
    n_samples = check_scalar(n_samples, "n_samples", low=1, integer=True)
    if A.shape[1] == 1:
        U, exact = np.array([[1.0, -1.0]]), True
    else:
        U = np.random.default_rng(seed).standard_normal((A.shape[1], n_samples))
        U /= np.linalg.norm(U, axis=0)
        exact = False
    R = np.maximum(A @ U, 0.0)
    Ap = np.linalg.pinv(A)
    Z = Ap @ R
    resid = np.linalg.norm(A @ Z - R, axis=0)
    if (resid > 1e-9 * max(np.linalg.norm(A), 1.0)).any():
        return float("inf"), exact
    return float(np.linalg.norm(Z, axis=0).max()), exact


def _simplex_ls(a, B):
    """argmin_{lambda >= 0, 1^T lambda = 1} ||a - B lambda|| by NNLS on the augmented system, then KKT polish."""
    scale = max(np.linalg.norm(B), np.linalg.norm(a), 1.0)
    M = 1e4 * scale
    lam = nnls(np.vstack([B, M * np.ones((1, B.shape[1]))]), np.concatenate([a, [M]]), maxiter=50 * B.shape[1])[0]
    S = lam > 1e-12 * max(lam.max(), 1e-300)
    k = int(S.sum())
    K = np.block([[B[:, S].T @ B[:, S], np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
    sol = np.linalg.lstsq(K, np.concatenate([B[:, S].T @ a, [1.0]]), rcond=None)[0]
    if (sol[:k] >= 0).all():
        cand = np.zeros_like(lam)
        cand[S] = sol[:k]
        if np.linalg.norm(a - B @ cand) <= np.linalg.norm(a - B @ (lam / lam.sum())) + 1e-15:
            return cand
    return lam / lam.sum()


def hull_distance_neurons(A):
    """Extreme-point neurons along e_i (JMLR 2021 Lemma 7, eq. (10)): one biased neuron per sample.

    ``lambda = argmin ||a_i - sum_{j != i} lambda_j a_j|| s.t. lambda >= 0, 1^T lambda = 1`` (p_i = the projection
    of a_i onto the hull of the others, ``d_i = ||a_i - p_i||``), ``u_i = (a_i - p_i) / d_i``,
    ``b_i = min_{j != i} -a_j^T u_i``.  When every a_i is a vertex of the hull (d_i > 0),
    ``(A U + 1 b^T)_+ = diag(d)`` and ``w = y / d`` interpolates (Theorem 6).

    Parameters
    ----------
    A : array of shape (n, d), n >= 2

    Returns
    -------
    U : ndarray (d, n)
        Unit-norm neurons (zero columns for samples inside the hull of the others).
    b : ndarray (n,)
    dist : ndarray (n,)
        d_i.
    """
    A = as_matrix(A, "A")
    n = A.shape[0]
    if n < 2:
        raise ValueError("A must have at least 2 samples")
    U, b, dist = np.zeros((A.shape[1], n)), np.zeros(n), np.zeros(n)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        lam = _simplex_ls(A[i], A[others].T)
        r = A[i] - A[others].T @ lam
        dist[i] = np.linalg.norm(r)
        if dist[i] > 1e-12 * max(np.linalg.norm(A[i]), 1.0):
            U[:, i] = r / dist[i]
            b[i] = float(np.min(-A[others] @ U[:, i]))
        else:
            dist[i] = 0.0
    return U, b, dist


@dataclass
class GapReport:
    """Primal value, dual value, relative gap, and whether the dual value is a certified lower bound."""

    primal: float
    dual: float
    gap: float
    certified: bool
    constraint: float


def duality_gap(net, X, y, beta: float, dual=None, n_samples: int = 20_000, seed: int = 0) -> GapReport:
    """Duality-gap report of a two-layer network (linear or ReLU, no biases) for squared loss and weight decay.

    The dual of ``min 1/2 ||f - y||^2 + beta/2 (||W_1||^2 + ||W_2||^2)`` is
    ``max 1/2 ||Y||^2 - 1/2 ||Lambda - Y||^2`` s.t. ``||Lambda^T (X u)|| <= beta`` (linear, i.e.
    ``sigma_max(Lambda^T X) <= beta``; ICML 2021 Sec. 2) or ``|v^T (X u)_+| <= beta`` (ReLU, scalar; JMLR 2021
    eq. (58)) for all unit u.  The dual point (default: the residual ``Y - f(X)``) is scaled into the constraint; the
    value is a certified lower bound for linear networks and for ReLU networks when :func:`relu_dual_constraint` is
    exact (d = 1 without bias, whitened X), an estimate otherwise.

    Returns
    -------
    GapReport
    """
    from .models import MLP, weight_decay_objective

    if not isinstance(net, MLP) or net.depth != 2 or any(b is not None for b in net.biases):
        raise ValueError("duality_gap needs a two-layer MLP without biases")
    X = as_matrix(X)
    Y, _ = as_targets(y, X.shape[0])
    beta = float(check_scalar(beta, "beta", low=0.0, low_inclusive=False))
    primal = weight_decay_objective(net, X, y, beta)
    Lam = (Y - net.predict(X).reshape(Y.shape)) if dual is None else np.asarray(dual, float).reshape(Y.shape)
    if net.activation == "linear":
        cons, certified = float(np.linalg.norm(Lam.T @ X, 2)), True
    else:
        if Y.shape[1] != 1:
            raise ValueError("duality_gap for ReLU networks supports scalar outputs")
        cons, certified = relu_dual_constraint(X, Lam[:, 0], n_samples, seed)
    Lf = Lam * min(1.0, beta / cons) if cons > 0 else Lam
    dual_value = 0.5 * float(np.sum(Y * Y)) - 0.5 * float(np.sum((Lf - Y) ** 2))
    return GapReport(primal, dual_value, (primal - dual_value) / max(abs(primal), 1e-300), certified, cons / beta)

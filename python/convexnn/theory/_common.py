"""Shared plumbing of :mod:`convexnn.theory`: input checks, assumption checks and the result type.

Objective scaling (the library's, for every function of this subpackage): the squared loss is
``1/2 * sum_k ||f(x_k) - y_k||^2`` (a SUM over samples, no 1/n) and weight decay is
``beta/2 * sum_l ||W_l||_F^2`` on the weights only (biases are never regularized).  This is the scaling of
Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via Convex Duality" (ICML 2021), eq. (2), and of
eq. (16) of Ergen & Pilanci, "Convex Geometry and Duality of Over-parameterized Neural Networks" (JMLR 2021).
A paper objective with a 1/(2n) loss is recovered by dividing by n with ``beta_here = n * beta_paper``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_scalar, check_X

# Relative tolerance of the structural assumptions (whitened, rank one, one-hot, full row rank).
ASSUMPTION_TOL = 1e-8


def as_matrix(X, name="X") -> np.ndarray:
    """X as a finite float64 (n, d) array (ValueError / TypeError naming ``name`` otherwise)."""
    return np.array(check_X(X, name=name), dtype=np.float64)


def as_targets(y, n, name="y"):
    """Targets as a finite float64 (n, K) array and whether they were 1-D."""
    if y is None:
        raise ValueError(f"{name} must be an array of shape (n,) or (n, K); got None")
    arr = np.asarray(y)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (n, K); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but X has {n} samples")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 columns")
    out = np.array(arr, dtype=np.float64).reshape(n, -1)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return out, arr.ndim == 1


def as_beta(beta, name="beta") -> float:
    return float(check_scalar(beta, name, low=0.0))


def as_depth(L, name="L", low=2) -> int:
    return int(check_scalar(L, name, low=low, integer=True))


def as_tol(tol, name="tol") -> float:
    return float(check_scalar(tol, name, low=0.0, low_inclusive=False))


def check_whitened(X, tol=ASSUMPTION_TOL, name="X") -> None:
    """Raise ValueError unless ``X X^T = I_n`` (whitened data with orthonormal rows, needs n <= d)."""
    n, d = X.shape
    if n > d:
        raise ValueError(f"{name} must be whitened (X X^T = I_n), which needs n <= d; got n = {n} > d = {d}")
    err = np.linalg.norm(X @ X.T - np.eye(n))  # Frobenius >= spectral norm
    if err > tol * max(1.0, np.sqrt(n)):
        raise ValueError(
            f"{name} must be whitened: ||X X^T - I_n||_F = {err:.3g} exceeds the tolerance {tol:g} "
            "(use convexnn.theory.whiten)"
        )


def is_whitened(X, tol=ASSUMPTION_TOL) -> bool:
    try:
        check_whitened(X, tol)
    except ValueError:
        return False
    return True


def orthonormal_columns_scale(X, tol=ASSUMPTION_TOL) -> float | None:
    """c if ``X^T X = c I_d`` for some c > 0 (orthogonal columns of equal norm), else None."""
    G = X.T @ X
    c = float(np.trace(G)) / G.shape[0]
    if c <= 0:
        return None
    if np.linalg.norm(G - c * np.eye(G.shape[0])) > tol * c * max(1.0, np.sqrt(G.shape[0])):
        return None
    return c


def check_one_hot(Y, name="y") -> np.ndarray:
    """Raise ValueError unless Y (n, K) is one-hot with every class present; returns the class counts."""
    if not (np.isin(Y, (0.0, 1.0)).all() and (Y.sum(axis=1) == 1).all()):
        raise ValueError(
            f"{name} must be one-hot: every row a single 1 and zeros elsewhere (labels must be "
            "one-hot encoded, e.g. convexnn.theory.one_hot)"
        )
    counts = Y.sum(axis=0)
    if (counts == 0).any():
        raise ValueError(
            f"{name} must be one-hot with every class present; empty columns {np.flatnonzero(counts == 0).tolist()}"
        )
    return counts


def check_full_row_rank(X, tol=ASSUMPTION_TOL, name="X") -> None:
    """Raise ValueError unless X (n, d) has full row rank n (so X X^+ = I_n)."""
    n, d = X.shape
    ev = np.linalg.eigvalsh(X @ X.T) if n <= d else np.zeros(1)
    smin, smax = np.sqrt(max(ev[0], 0.0)), np.sqrt(max(ev[-1], 0.0))
    if n > d or smin <= max(tol * max(n, d), 1e-7) * max(smax, 1e-300):
        raise ValueError(
            f"{name} must have full row rank (rank n = {n}); its smallest singular value is "
            f"{smin:.3g} (n = {n}, d = {d})"
        )


def rank_one_factors(X, tol=ASSUMPTION_TOL, name="X"):
    """(c, a0) with X = c a0^T, c >= 0 elementwise and ||a0|| = ||X||_2 / ||c|| (c normalized to unit norm).

    Raises ValueError naming the assumption when X is not rank one or when c has entries of both signs
    (the deep ReLU results of Ergen & Pilanci, ICML 2021, Thm 4.1, assume c in R^n_+).
    """
    from ._solvers import thin_svd

    U, s, Vt = thin_svd(X, rtol=0.0)
    if s.size == 0 or s[0] == 0:
        raise ValueError(f"{name} must be rank one (X = c a0^T); got the zero matrix")
    if len(s) > 1 and s[1] > tol * s[0] * max(X.shape):
        raise ValueError(f"{name} must be rank one (X = c a0^T): sigma_2 / sigma_1 = {s[1] / s[0]:.3g}")
    c, a0 = U[:, 0], s[0] * Vt[0]
    if c.sum() < 0:
        c, a0 = -c, -a0
    if (c < -tol * np.abs(c).max()).any():
        raise ValueError(f"{name} must be rank one with c >= 0 (X = c a0^T, c in R^n_+); c has entries of both signs")
    return np.maximum(c, 0.0), a0


def squared_loss(F, Y) -> float:
    return 0.5 * float(np.sum((np.asarray(F).reshape(Y.shape) - Y) ** 2))


@dataclass
class TheoryResult:
    """A closed-form optimum: weights, objective, dual point and certificate.

    Attributes
    ----------
    objective : float
        Value of the training objective at the returned weights in the library's scaling (see the function's
        docstring: a weight-decay objective, or ``sum_l ||W_l||_F^2`` for min-norm interpolation).
    weights : list of ndarray
        Layer weights W_1 (d, m_1), ..., W_L (m_{L-1}, K) in the papers' convention f(X) = ... W_L.
    network : object
        The network the weights define (an :class:`~convexnn.theory.MLP`, a
        :class:`~convexnn.theory.ParallelMLP` or a :class:`~convexnn.theory.TwoLayerReLU`), with ``predict``.
    fitted : ndarray of shape (n,) or (n, K)
        The network's output on the training data.
    dual : ndarray or None
        The optimal dual point (lambda* or Lambda*, shape of y) of the paper's dual problem.
    dual_objective : float
        Value of the dual problem at ``dual`` converted to the scaling of ``objective`` (a lower bound where the
        theorem proves strong duality; nan when the theorem has no dual).
    gap : float
        ``(objective - dual_objective) / max(|objective|, 1e-300)``.
    theorem : str
        The result implemented.
    info : dict
        Extra quantities (end-to-end map, singular values, per-path scales, the paper's own values, ...).
    """

    objective: float
    weights: list
    network: Any
    fitted: np.ndarray
    dual: np.ndarray | None = None
    dual_objective: float = float("nan")
    theorem: str = ""
    info: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        if not np.isfinite(self.dual_objective):
            return float("nan")
        return (self.objective - self.dual_objective) / max(abs(self.objective), 1e-300)

    def predict(self, X):
        """The network's output on new data X (shape (n_new,) or (n_new, K))."""
        return self.network.predict(X)

    def __repr__(self) -> str:
        return (
            f"TheoryResult(theorem={self.theorem!r}, objective={self.objective:.10g}, "
            f"dual_objective={self.dual_objective:.10g})"
        )


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)

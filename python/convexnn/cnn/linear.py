"""Two-layer linear CNNs as nuclear-norm programs (Pilanci & Ergen, ICML 2020, eqs. (9)-(12), A.5, A.7).

The non-convex training problem of a linear CNN with m filters u_j in R^h and output weights alpha_j in R^K
(eq. (9)), or alpha_j in R^{K x c} for c outputs (Appendix A.7),

    min  1/2 ||sum_j sum_k X_k u_j alpha_jk - y||^2 + beta/2 * sum_j (||u_j||^2 + ||alpha_j||^2),

has, for m >= rank(Z*), the same optimal value as the convex program (eq. (12))

    min_Z  1/2 ||sum_k X_k Z_k - y||^2 + beta * ||[Z_1, ..., Z_K]||_*,

Z_k in R^{h x c} (z_k in R^h for scalar outputs), ||.||_* the nuclear norm of the h x (K c) matrix. Its dual
(eqs. (10)-(11), with the right-hand side beta^2, resp. beta, as the derivation in A.5 gives; the paper prints 1)

    max_v  -1/2 ||v - y||^2 + 1/2 ||y||^2   s.t.  sigma_max([X_1^T v, ..., X_K^T v]) <= beta

certifies every solution. The optimal filters are the top eigenvectors of sum_k X_k^T v v^T X_k at the dual
optimum v (eq. (10)), and the network is read off the SVD Z = sum_j s_j a_j b_j^T: u_j = sqrt(s_j) a_j,
alpha_j = sqrt(s_j) b_j, whose weight decay equals beta * sum_j s_j.

The solver is accelerated proximal gradient (FISTA with adaptive restart; Beck & Teboulle, SIAM J. Imaging
Sci. 2009; O'Donoghue & Candes, Found. Comput. Math. 2015) whose proximal step is singular-value thresholding
(Cai, Candes & Shen, SIAM J. Optim. 2010).
"""

from __future__ import annotations

import math
import time as _time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_scalar
from ..result import ConvergenceWarning
from .network import LinearCNN
from .patches import check_patches

__all__ = ["LinearCNNResult", "solve_linear_cnn", "linear_cnn_beta_max"]


class _PatchLinearMap:
    """A(Z) = sum_k X_k Z_k for Z of shape (h, K, c), and its adjoint R -> [X_k^T R]_k; Gram-based if smaller."""

    def __init__(self, patches):
        n, K, h = patches.shape
        self.n, self.K, self.h = n, K, h
        self.Pm = patches.reshape(n, K * h)  # column index k * h + t (a view)
        self.gram = self.Pm.T @ self.Pm if K * h <= n else None

    def to_flat(self, Z):  # (h, K, c) -> (K h, c)
        return np.ascontiguousarray(Z.transpose(1, 0, 2)).reshape(self.K * self.h, -1)

    def from_flat(self, F):  # (K h, c) -> (h, K, c)
        return np.ascontiguousarray(F.reshape(self.K, self.h, -1).transpose(1, 0, 2))

    def forward(self, Z):
        return self.Pm @ self.to_flat(Z)

    def adjoint(self, R):
        return self.from_flat(self.Pm.T @ R)

    def lipschitz(self):
        """||A||_2^2, the Lipschitz constant of the gradient of 1/2 ||A(Z) - y||^2."""
        if self.gram is not None:
            return float(np.linalg.eigvalsh(self.gram)[-1])
        return float(np.linalg.norm(self.Pm, 2) ** 2)


def _as_matrix(Z):
    """(h, K, c) -> the h x (K c) matrix [Z_1, ..., Z_K] whose nuclear norm is penalized."""
    return Z.reshape(Z.shape[0], -1)


def _svt(Z, threshold):
    """Singular-value thresholding: the prox of threshold * ||.||_* at the h x (K c) matrix of Z."""
    M = _as_matrix(Z)
    a, s, bt = np.linalg.svd(M, full_matrices=False)
    s = np.maximum(s - threshold, 0.0)
    r = int(np.count_nonzero(s))
    return ((a[:, :r] * s[:r]) @ bt[:r]).reshape(Z.shape)


def _nuclear(Z):
    return float(np.linalg.svd(_as_matrix(Z), compute_uv=False).sum())


def _sigma_max(G):
    return float(np.linalg.norm(_as_matrix(G), 2)) if G.size else 0.0


@dataclass
class LinearCNNResult:
    """Solution and certificate of :func:`solve_linear_cnn`.

    Attributes
    ----------
    objective : float
        1/2 ||sum_k X_k Z_k - y||^2 + beta ||Z||_* at ``Z`` (sum over samples).
    dual_objective : float
        -1/2 ||v - y||^2 + 1/2 ||y||^2 at the dual-feasible point ``dual_point`` (a lower bound on the optimum).
    gap : float
        (objective - dual_objective) / |objective|.
    status : str
        "converged" (gap <= tol), "max_iter" or "time_limit".
    n_iter, time : int, float
    beta : float
    Z : ndarray (h, K) or (h, K, c)
        Z[:, k] = z_k (column k of the matrix of eq. (12)).
    dual_point : ndarray (n,) or (n, c)
        v, the residual y - A(Z) scaled into the dual feasible set sigma_max([X_k^T v]_k) <= beta.
    singular_values : ndarray (r,)
        Nonzero singular values s_j of Z (its h x (K c) matrix), decreasing.
    history : list of dict
        ``{"iter", "objective", "dual_objective", "gap", "time"}`` at every certificate check.
    """

    objective: float
    dual_objective: float
    gap: float
    status: str
    n_iter: int
    time: float
    beta: float
    Z: np.ndarray
    dual_point: np.ndarray
    singular_values: np.ndarray
    output_1d: bool
    history: list = field(default_factory=list)

    @property
    def converged(self):
        return self.status == "converged"

    def filters_and_weights(self, rank_tol=1e-12):
        """The SVD map back: u_j = sqrt(s_j) a_j (m, h) and alpha_j = sqrt(s_j) b_j (m, K) or (m, K, c).

        Singular values below ``rank_tol * s_max`` are dropped (m = the numerical rank of Z).
        """
        h, K, c = self.Z.shape[0], self.Z.shape[1], (1 if self.Z.ndim == 2 else self.Z.shape[2])
        M = self.Z.reshape(h, K * c)
        a, s, bt = np.linalg.svd(M, full_matrices=False)
        keep = s > rank_tol * (s[0] if s.size else 0.0)
        root = np.sqrt(s[keep])
        U = (a[:, keep] * root).T  # (m, h)
        A = (bt[keep] * root[:, None]).reshape(-1, K, c)  # (m, K, c)
        return U, (A[:, :, 0] if self.Z.ndim == 2 else A)

    def network(self):
        """The linear CNN of the SVD map back (:meth:`filters_and_weights`); its non-convex objective equals
        :attr:`objective` (weight decay beta/2 (||u_j||^2 + ||alpha_j||^2) = beta s_j per filter)."""
        return LinearCNN(*self.filters_and_weights())

    def predict(self, patches):
        """sum_k X_k Z_k on new patches (n, K, h): (n,) or (n, c)."""
        P = check_patches(patches).astype(np.float64, copy=False)
        if P.shape[1:] != (self.Z.shape[1], self.Z.shape[0]):
            raise ValueError(f"patches must have shape (n, {self.Z.shape[1]}, {self.Z.shape[0]}); got {P.shape}")
        out = _PatchLinearMap(P).forward(self.Z.reshape(self.Z.shape[0], self.Z.shape[1], -1))
        return out[:, 0] if self.output_1d else out

    def __repr__(self):
        return (
            f"LinearCNNResult(objective={self.objective:.6g}, gap={self.gap:.2e}, status={self.status!r}, "
            f"rank={self.singular_values.size})"
        )


def _targets(y, n):
    Y = np.asarray(y)
    if Y.dtype == object or not np.issubdtype(Y.dtype, np.number) or np.iscomplexobj(Y):
        raise TypeError(f"y must hold real numbers; got dtype {Y.dtype}")
    if Y.ndim not in (1, 2) or Y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, c) (one row per sample); got {Y.shape}")
    if Y.ndim == 2 and Y.shape[1] == 0:
        raise ValueError("y has 0 outputs")
    Y2 = np.array(Y.reshape(n, -1), dtype=np.float64)
    if not np.isfinite(Y2).all():
        raise ValueError("y contains NaN or Inf")
    return Y2, Y.ndim == 1


def linear_cnn_beta_max(patches, y):
    """sigma_max([X_1^T y, ..., X_K^T y]): for beta >= this value Z = 0 solves eq. (12).

    Parameters
    ----------
    patches : array (n, K, h)
    y : array (n,) or (n, c)

    Returns
    -------
    float
    """
    P = check_patches(patches).astype(np.float64, copy=False)
    Y, _ = _targets(y, P.shape[0])
    return _sigma_max(_PatchLinearMap(P).adjoint(Y))


def _certificate(op, Y, Z, beta):
    """(primal, dual, relative gap, scaled dual point) at Z."""
    R = Y - op.forward(Z)
    primal = 0.5 * float(np.sum(R * R)) + beta * _nuclear(Z)
    s = _sigma_max(op.adjoint(R))
    v = R if s <= beta else R * (beta / s)
    dual = 0.5 * float(np.sum(Y * Y)) - 0.5 * float(np.sum((Y - v) ** 2))
    gap = (primal - dual) / abs(primal) if primal != 0 else (0.0 if dual == 0 else math.inf)
    return primal, dual, max(gap, 0.0), v


def solve_linear_cnn(patches, y, beta, tol=1e-8, max_iter=20_000, time_limit=None, check_every=10):
    """Globally optimal two-layer linear CNN: the nuclear-norm program (12) with a duality-gap certificate.

    Parameters
    ----------
    patches : array of shape (n, K, h)
        Patch matrices, ``patches[:, k, :] = X_k`` (see :func:`convexnn.cnn.extract_patches`).
    y : array of shape (n,) or (n, c)
        Real targets; c > 1 gives the vector-output CNN of Appendix A.7 (alpha_jk in R^c).
    beta : float > 0
        Weight decay of the non-convex network (beta/2 per squared weight), the nuclear-norm weight here.
    tol : float > 0
        Target relative duality gap.
    max_iter : int >= 1
        FISTA iterations.
    time_limit : float or None
        Seconds.
    check_every : int >= 1
        Iterations between certificate checks.

    Returns
    -------
    LinearCNNResult
        ``objective``, ``dual_objective``, ``gap``, ``status``, ``Z`` (h, K[, c]), ``network()`` (the filters
        from the SVD of Z), ``dual_point``.

    Warns
    -----
    ConvergenceWarning
        When the gap is still above ``tol`` at ``max_iter`` or ``time_limit``.

    Notes
    -----
    Pilanci & Ergen (ICML 2020), eq. (12) and Appendix A.5 (scalar output), A.7 (vector output). The objective
    is a SUM over samples (no 1/n). One iteration costs two products with the n x (K h) patch matrix (or one
    with its Gram matrix when K h <= n) and one SVD of the h x (K c) matrix Z.
    """
    start = _time.perf_counter()
    P = check_patches(patches).astype(np.float64, copy=False)
    Y, was_1d = _targets(y, P.shape[0])
    beta = check_scalar(beta, "beta", low=0.0, low_inclusive=False)
    tol = check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = check_scalar(max_iter, "max_iter", low=1, integer=True)
    check_every = check_scalar(check_every, "check_every", low=1, integer=True)
    time_limit = (
        math.inf
        if time_limit is None
        else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False, allow_inf=True)
    )
    op = _PatchLinearMap(P)
    n, K, h = P.shape
    c = Y.shape[1]
    L = op.lipschitz()
    step = 1.0 / L if L > 0 else 1.0
    PtY = op.adjoint(Y)

    def grad(Z):
        if op.gram is not None:
            return op.from_flat(op.gram @ op.to_flat(Z)) - PtY
        return op.adjoint(op.forward(Z) - Y)

    Z = np.zeros((h, K, c))
    Zm, t = Z.copy(), 1.0
    history, status, it = [], "max_iter", 0
    best = _certificate(op, Y, Z, beta) + (Z,)
    f_prev = best[0]
    for it in range(1, max_iter + 1):
        Z_new = _svt(Zm - step * grad(Zm), step * beta)
        if it % check_every == 0 or it == max_iter:
            cert = _certificate(op, Y, Z_new, beta)
            history.append(
                {
                    "iter": it,
                    "objective": cert[0],
                    "dual_objective": cert[1],
                    "gap": cert[2],
                    "time": _time.perf_counter() - start,
                }
            )
            if cert[2] <= best[2]:
                best = cert + (Z_new,)
            if cert[2] <= tol:
                best, status = cert + (Z_new,), "converged"
                break
            if cert[0] > f_prev:  # adaptive restart
                t, Zm, Z = 1.0, Z_new, Z_new
                f_prev = cert[0]
                continue
            f_prev = cert[0]
        if _time.perf_counter() - start > time_limit:
            status = "time_limit"
            break
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        Zm = Z_new + ((t - 1.0) / t_new) * (Z_new - Z)
        Z, t = Z_new, t_new
    primal, dual, gap, v, Zb = best
    if status != "converged":
        warnings.warn(
            f"solve_linear_cnn stopped with status {status!r} after {it} iterations at relative gap "
            f"{gap:.3g} (tol {tol:g}); the certificate bounds the suboptimality.",
            ConvergenceWarning,
            stacklevel=2,
        )
    s = np.linalg.svd(_as_matrix(Zb), compute_uv=False)
    s = s[s > 1e-12 * (s[0] if s.size else 0.0)]
    Zout = Zb[:, :, 0] if was_1d else Zb
    return LinearCNNResult(
        objective=primal,
        dual_objective=dual,
        gap=gap,
        status=status,
        n_iter=it,
        time=_time.perf_counter() - start,
        beta=beta,
        Z=Zout,
        dual_point=v[:, 0] if was_1d else v,
        singular_values=s,
        output_1d=was_1d,
        history=history,
    )

"""Linear circular CNNs as l1-regularized least squares over DFT features (Pilanci & Ergen, ICML 2020, eqs. (13),
(14), Appendix A.6).

A linear circular CNN on signals x in R^d has filters u_j in R^h (zero-padded to length d) applied at every
circular shift, ``(x conv u_j)_k = sum_t x_{(k + t) mod d} u_j[t]`` = ``(X U_j)_k`` with U_j the circulant
matrix of u_j, and output weights alpha_j in R^d (eq. (13)):

    min  1/2 ||sum_j X U_j alpha_j - y||^2 + beta/2 * sum_j (||u_j||^2 + ||alpha_j||^2).

With the unitary DFT F (F_ab = exp(-2 pi i a b / d) / sqrt(d)), U_j = F^H diag(sqrt(d) F u_j) F, so the network
output is ``X F^H z`` with z_w = sqrt(d) (F u_j)_w (F alpha_j)_w summed over j. Minimizing the weight decay over
all factorizations of z gives the complex lasso (eq. (14) with the constants of the unitary normalisation)

    min_{z in C^d}  1/2 ||X~ z - y||^2 + (beta / sqrt(d)) ||z||_1,    X~ = X F^H,

(the paper prints the weight beta, true for the unnormalized F / sqrt(d) convention only), exact for full-length
filters h = d. For real data the optimum is conjugate symmetric, z_{d-w} = conj(z_w), so the program is solved
over the real coordinates of one frequency per conjugate pair (a real group lasso with groups of size 2 and
weight 2 beta / sqrt(d), singletons w = 0 and w = d/2 with weight beta / sqrt(d)); each nonzero pair maps back to
one real filter. For h < d the filters cannot reach every Fourier vector: the value is then a lower bound on the
non-convex optimum; the exact value is the nuclear-norm program of the linear CNN on the circular patches,
``solve_linear_cnn(circular_patches(X, h), y, beta)``.
"""

from __future__ import annotations

import math
import time as _time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_scalar, check_X
from ..result import ConvergenceWarning
from .network import LinearCNN

__all__ = ["CircularCNNResult", "circular_patches", "solve_circular_cnn", "fourier_features"]


def circular_patches(X, filter_size):
    """Circular patches of signals: (n, d) -> (n, d, h), ``out[i, k, t] = X[i, (k + t) mod d]``.

    Parameters
    ----------
    X : array (n, d)
    filter_size : int, 1 <= filter_size <= d

    Returns
    -------
    ndarray (n, d, h)
        Patch matrices of the circular convolution (stride 1, wrap-around), usable with
        :func:`convexnn.cnn.solve_linear_cnn`.
    """
    X = check_X(X)
    d = X.shape[1]
    h = check_scalar(filter_size, "filter_size", low=1, high=d, integer=True)
    idx = (np.arange(d)[:, None] + np.arange(h)[None, :]) % d
    return np.ascontiguousarray(X[:, idx], dtype=np.float64)


def _groups(d):
    """Frequencies of one representative per conjugate pair: (singletons, pairs)."""
    singles = [0] + ([d // 2] if d % 2 == 0 else [])
    pairs = list(range(1, (d + 1) // 2))
    return singles, pairs


def fourier_features(X):
    """The conjugate-symmetric real design of eq. (14): X~ = X F^H split into real coordinates.

    Returns
    -------
    A : ndarray (n, d)
        Columns: Re X~[:, w] for the singletons w in {0, d/2}, then [2 Re X~[:, w], -2 Im X~[:, w]] per pair
        w = 1 .. ceil(d/2) - 1, so that ``X~ z = A theta`` for the conjugate-symmetric z of theta.
    weights : ndarray (number of groups,)
        Group weights divided by beta / sqrt(d): 1 (singletons) and 2 (pairs).
    groups : list of ndarray
        Column indices of every group.
    freqs : list of int
        The frequency of every group.
    """
    X = check_X(X).astype(np.float64, copy=False)
    n, d = X.shape
    Xt = np.conj(np.fft.fft(X, axis=1)) / math.sqrt(d)  # X F^H (F symmetric, unitary)
    singles, pairs = _groups(d)
    cols, groups, weights, freqs = [], [], [], []
    for w in singles:
        groups.append(np.array([len(cols)]))
        cols.append(Xt[:, w].real)
        weights.append(1.0)
        freqs.append(w)
    for w in pairs:
        groups.append(np.array([len(cols), len(cols) + 1]))
        cols += [2.0 * Xt[:, w].real, -2.0 * Xt[:, w].imag]
        weights.append(2.0)
        freqs.append(w)
    return np.column_stack(cols), np.array(weights), groups, freqs


@dataclass
class CircularCNNResult:
    """Solution and certificate of :func:`solve_circular_cnn`.

    Attributes
    ----------
    objective : float
        1/2 ||X~ z - y||^2 + beta / sqrt(d) ||z||_1 (sum over samples).
    dual_objective, gap, status, n_iter, time, beta
        Certificate (a dual-feasible point of the lasso) and run information, as for :func:`convexnn.solve`.
    z : ndarray (d,) complex
        Conjugate-symmetric Fourier coefficients (z[d - w] = conj(z[w])).
    filter_size : int
    exact : bool
        True when filter_size == d: :attr:`objective` is then the optimum of the circular CNN and
        :meth:`network` attains it. False: a lower bound on it.
    """

    objective: float
    dual_objective: float
    gap: float
    status: str
    n_iter: int
    time: float
    beta: float
    z: np.ndarray
    filter_size: int
    exact: bool
    history: list = field(default_factory=list)

    @property
    def converged(self):
        return self.status == "converged"

    def network(self):
        """The circular CNN with one real full-length filter per nonzero conjugate pair of z.

        Returns a :class:`LinearCNN` on ``circular_patches(X, d)`` with filters (m, d) and output weights (m, d):
        for the pair {w, d - w}, F u = F alpha = sqrt(|z_w| / sqrt(d)) e^{i arg(z_w) / 2} on w (and its conjugate on
        d - w), so sqrt(d) (F u)_w (F alpha)_w = z_w and beta/2 (||u||^2 + ||alpha||^2) = beta/sqrt(d) (|z_w| +
        |z_{d-w}|).

        Raises
        ------
        ValueError
            For filter_size < d (the Fourier program is then a relaxation without a network attaining it).
        """
        if not self.exact:
            raise ValueError(
                f"filter_size={self.filter_size} < d={self.z.size}: the Fourier program is a lower "
                "bound without a network attaining it; solve_linear_cnn(circular_patches(X, h), y, beta) "
                "gives the exact circular CNN"
            )
        d = self.z.size
        singles, pairs = _groups(d)
        filters, weights = [], []
        for w in singles + pairs:
            zw = self.z[w]
            if zw == 0:
                continue
            amp = math.sqrt(abs(zw) / math.sqrt(d))
            uh = np.zeros(d, dtype=complex)
            ah = np.zeros(d, dtype=complex)
            if w in singles:
                uh[w], ah[w] = amp, np.sign(zw.real) * amp
            else:
                phase = np.exp(0.5j * np.angle(zw))
                uh[w], ah[w] = amp * phase, amp * phase
                uh[d - w], ah[d - w] = np.conj(uh[w]), np.conj(ah[w])
            # u = F^H u^ (real by conjugate symmetry); numpy's ifft is F^H / sqrt(d).
            filters.append(np.fft.ifft(uh).real * math.sqrt(d))
            weights.append(np.fft.ifft(ah).real * math.sqrt(d))
        if not filters:
            return LinearCNN(np.zeros((0, d)), np.zeros((0, d)))
        return LinearCNN(np.array(filters), np.array(weights))

    def predict(self, X):
        """X~ z on new signals X (n, d): shape (n,)."""
        X = check_X(X)
        if X.shape[1] != self.z.size:
            raise ValueError(f"X has {X.shape[1]} features but the model was fit on d = {self.z.size}")
        return (np.conj(np.fft.fft(X.astype(np.float64), axis=1)) / math.sqrt(X.shape[1]) @ self.z).real


def _group_norms(theta, groups):
    return np.array([np.linalg.norm(theta[g]) for g in groups])


def _certificate(A, y, theta, groups, gw):
    r = y - A @ theta
    primal = 0.5 * float(r @ r) + float(gw @ _group_norms(theta, groups))
    corr = A.T @ r
    ratio = max((np.linalg.norm(corr[g]) / wg for g, wg in zip(groups, gw)), default=0.0)
    v = r if ratio <= 1 else r / ratio
    dual = 0.5 * float(y @ y) - 0.5 * float((y - v) @ (y - v))
    gap = (primal - dual) / abs(primal) if primal != 0 else (0.0 if dual == 0 else math.inf)
    return primal, dual, max(gap, 0.0)


def solve_circular_cnn(X, y, beta, filter_size=None, tol=1e-8, max_iter=50_000, time_limit=None, check_every=10):
    """The linear circular CNN by its Fourier-domain lasso (eq. (14)), with a duality-gap certificate.

    Parameters
    ----------
    X : array (n, d)
        Signals (flatten images, or use :func:`convexnn.cnn.solve_linear_cnn` on their patches).
    y : array (n,)
        Real targets.
    beta : float > 0
        Weight decay of the circular CNN; the l1 weight is beta / sqrt(d) (unitary DFT).
    filter_size : int or None
        h, the filter length (default d). For h < d the result is a lower bound (``exact=False``).
    tol : float > 0
        Target relative duality gap of the lasso.
    max_iter, time_limit, check_every
        FISTA iterations, seconds, iterations between certificate checks.

    Returns
    -------
    CircularCNNResult

    Warns
    -----
    ConvergenceWarning
        When the gap is above ``tol`` at ``max_iter`` or ``time_limit``.

    Notes
    -----
    FISTA with adaptive restart (Beck & Teboulle 2009; O'Donoghue & Candes 2015) and group soft-thresholding on
    the real conjugate-symmetric coordinates (:func:`fourier_features`). For h = d the optimum equals that of
    the nuclear-norm program of the linear CNN on ``circular_patches(X, d)`` (Pilanci & Ergen, ICML 2020, A.6).
    """
    start = _time.perf_counter()
    X = check_X(X).astype(np.float64, copy=False)
    n, d = X.shape
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n or not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise ValueError(f"y must be a real array of shape ({n},); got shape {y.shape} dtype {y.dtype}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or Inf")
    beta = check_scalar(beta, "beta", low=0.0, low_inclusive=False)
    h = d if filter_size is None else check_scalar(filter_size, "filter_size", low=1, high=d, integer=True)
    tol = check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = check_scalar(max_iter, "max_iter", low=1, integer=True)
    check_every = check_scalar(check_every, "check_every", low=1, integer=True)
    time_limit = (
        math.inf
        if time_limit is None
        else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False, allow_inf=True)
    )
    A, w, groups, freqs = fourier_features(X)
    gw = w * beta / math.sqrt(d)
    L = float(np.linalg.norm(A, 2) ** 2) or 1.0
    step = 1.0 / L
    G, Aty = A.T @ A, A.T @ y
    theta = np.zeros(d)
    mom, t, status, it, history = theta.copy(), 1.0, "max_iter", 0, []
    best = _certificate(A, y, theta, groups, gw) + (theta,)
    f_prev = best[0]
    for it in range(1, max_iter + 1):
        cand = mom - step * (G @ mom - Aty)
        new = np.empty_like(cand)
        for g, wg in zip(groups, gw):  # group soft-thresholding
            norm = np.linalg.norm(cand[g])
            new[g] = 0.0 if norm <= step * wg else cand[g] * (1 - step * wg / norm)
        if it % check_every == 0 or it == max_iter:
            cert = _certificate(A, y, new, groups, gw)
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
                best = cert + (new,)
            if cert[2] <= tol:
                status = "converged"
                break
            if cert[0] > f_prev:  # adaptive restart
                t, mom, theta, f_prev = 1.0, new, new, cert[0]
                continue
            f_prev = cert[0]
        if _time.perf_counter() - start > time_limit:
            status = "time_limit"
            break
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        mom = new + ((t - 1) / t_new) * (new - theta)
        theta, t = new, t_new
    primal, dual, gap, theta = best
    if status != "converged":
        warnings.warn(
            f"solve_circular_cnn stopped with status {status!r} after {it} iterations at relative gap "
            f"{gap:.3g} (tol {tol:g}).",
            ConvergenceWarning,
            stacklevel=2,
        )
    z = np.zeros(d, dtype=complex)
    for g, f in zip(groups, freqs):
        if len(g) == 1:
            z[f] = theta[g[0]]
        else:
            z[f] = theta[g[0]] + 1j * theta[g[1]]
            z[d - f] = np.conj(z[f])
    return CircularCNNResult(
        objective=primal,
        dual_objective=dual,
        gap=gap,
        status=status,
        n_iter=it,
        time=_time.perf_counter() - start,
        beta=beta,
        z=z,
        filter_size=h,
        exact=h == d,
        history=history,
    )

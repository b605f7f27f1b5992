"""The implicit whitening of batch normalization and its singular-value truncation.

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022, Section 2.2 and Section 5.2.

With the centered data ``X_c = P_n X = U diag(S) V^T`` (compact SVD, r = rank(X_c)), every BN pre-activation of
a two-layer network is ``BN_{gamma,alpha}(X w) = U' s`` with ``U' = [U, 1/sqrt(n)]`` (orthonormal columns) and
``s = [gamma q / ||q||; alpha]``, ``q = diag(S) V^T w``. The truncated model (eq. 17) keeps the top k singular
directions: ``U'_k = [U_{:, :k}, 1/sqrt(n)]``. A new point is whitened with the training SVD,
``u'(x) = [S_k^{-1} V_k^T (x - mean); 1/sqrt(n)]`` (Appendix A.1); on the training rows this is ``U'_k``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar, check_X

__all__ = ["Whitening", "whiten", "explained_variance_rank", "DEFAULT_EXPLAINED_VARIANCE"]

#: Truncation rule of Ergen et al. (ICLR 2022), Section 5.2 / Appendix A.7: keep the smallest k whose singular
#: values explain this fraction of the centered training variance, sum_{i<=k} s_i^2 / sum_i s_i^2 >= 0.95.
DEFAULT_EXPLAINED_VARIANCE = 0.95


@dataclass(frozen=True)
class Whitening:
    """Centered compact SVD of the training data and the whitened matrix ``U'_k`` of the BN convex program.

    Attributes
    ----------
    mean : ndarray of shape (d,)
        Training column means.
    U : ndarray of shape (n, r)
        Left singular vectors of the centered data (orthonormal, orthogonal to the ones vector).
    S : ndarray of shape (r,)
        Singular values, descending, all > 0 (``r`` = numerical rank of the centered data).
    V : ndarray of shape (d, r)
        Right singular vectors.
    n_samples : int
        n, the training size (the constant column of ``U'`` is ``1/sqrt(n)``).
    k : int
        Directions kept (``k = r`` without truncation).
    """

    mean: np.ndarray
    U: np.ndarray
    S: np.ndarray
    V: np.ndarray
    n_samples: int
    k: int

    @property
    def rank(self) -> int:
        """r, the numerical rank of the centered training data."""
        return int(self.S.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def truncated(self) -> bool:
        return self.k < self.rank

    @property
    def Uprime(self) -> np.ndarray:
        """``U'_k = [U_{:, :k}, 1/sqrt(n)]``, shape (n, k + 1), orthonormal columns."""
        ones = np.full((self.n_samples, 1), 1.0 / np.sqrt(self.n_samples))
        return np.hstack([self.U[:, : self.k], ones])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """``s_i^2 / sum_j s_j^2`` for every singular direction, shape (r,)."""
        energy = self.S**2
        return energy / energy.sum()

    @property
    def kept_variance(self) -> float:
        """Fraction of the centered training variance the k kept directions explain."""
        return float(self.explained_variance_ratio[: self.k].sum())

    def transform(self, X) -> np.ndarray:
        """Whitened points ``u'(x) = [S_k^{-1} V_k^T (x - mean); 1/sqrt(n)]``, shape (n_new, k + 1).

        Parameters
        ----------
        X : array of shape (n_new, d)
        """
        X = check_X(X).astype(np.float64, copy=False)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features but the whitening was fit on {self.n_features}")
        Z = (X - self.mean) @ self.V[:, : self.k] / self.S[: self.k]
        return np.hstack([Z, np.full((X.shape[0], 1), 1.0 / np.sqrt(self.n_samples))])

    def first_layer(self, H) -> np.ndarray:
        """First-layer weights ``w = V_k S_k^{-1} h_{1:k}`` of whitened directions ``h`` (rows), shape (m, d).

        ``X_c w = U_k h_{1:k}`` on the training data, so the BN network built on ``w`` reproduces ``U'_k h``.

        Parameters
        ----------
        H : array of shape (m, k) or (m, k + 1)
            Whitened directions (a last, bias entry is ignored).
        """
        H = np.asarray(H, dtype=np.float64)
        if H.ndim != 2 or H.shape[1] not in (self.k, self.k + 1):
            raise ValueError(f"H must have shape (m, {self.k}) or (m, {self.k + 1}); got {H.shape}")
        return (H[:, : self.k] / self.S[: self.k]) @ self.V[:, : self.k].T

    def coordinates(self, W1) -> np.ndarray:
        """``q_j = S_k V_k^T w_j`` of first-layer rows ``w_j`` (the reverse of :meth:`first_layer`), (m, k)."""
        W1 = np.asarray(W1, dtype=np.float64)
        if W1.ndim != 2 or W1.shape[1] != self.n_features:
            raise ValueError(f"W1 must have shape (m, {self.n_features}); got {W1.shape}")
        return (W1 @ self.V[:, : self.k]) * self.S[: self.k]


def explained_variance_rank(S, threshold: float = DEFAULT_EXPLAINED_VARIANCE) -> int:
    """Smallest k with ``sum_{i<=k} S_i^2 / sum_i S_i^2 >= threshold``.

    Parameters
    ----------
    S : array of shape (r,)
        Singular values (descending).
    threshold : float in (0, 1]

    Returns
    -------
    int in [1, r]
    """
    threshold = check_scalar(threshold, "threshold", low=0.0, high=1.0, low_inclusive=False)
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 1 or S.size == 0:
        raise ValueError(f"S must be a non-empty 1-D array of singular values; got shape {S.shape}")
    ratio = np.cumsum(S**2) / np.sum(S**2)
    # The last ratio is 1 up to rounding; compare with a small slack so threshold = 1 keeps all r directions.
    return int(min(S.size, np.searchsorted(ratio, threshold * (1 - 1e-12)) + 1))


def _resolve_k(truncate, S) -> int:
    r = S.size
    if truncate is None:
        return r
    if isinstance(truncate, str):
        if truncate != "auto":
            raise ValueError(
                f"truncate must be None, 'auto', an int k in [1, {r}] or a float in (0, 1]; got {truncate!r}"
            )
        return explained_variance_rank(S, DEFAULT_EXPLAINED_VARIANCE)
    if isinstance(truncate, bool):
        raise TypeError(f"truncate must be None, 'auto', an int or a float; got {truncate!r}")
    if isinstance(truncate, numbers.Integral):
        if not 1 <= truncate <= r:
            raise ValueError(
                f"truncate = {truncate} is out of range: k must be in [1, r] with r = {r}, the rank "
                "of the centered data"
            )
        return int(truncate)
    if isinstance(truncate, numbers.Real):
        if not 0.0 < float(truncate) <= 1.0:
            raise ValueError(f"truncate as an explained-variance fraction must be in (0, 1]; got {truncate}")
        return explained_variance_rank(S, float(truncate))
    raise TypeError(f"truncate must be None, 'auto', an int or a float; got {type(truncate).__name__}")


def whiten(X, truncate: None | int | float | str = None, rtol: float | None = None) -> Whitening:
    """Centered compact SVD of ``X`` and the whitened matrix of the BN convex program.

    Parameters
    ----------
    X : array of shape (n, d)
        Training data, n >= 2.
    truncate : None, int, float or "auto"
        None: keep all r directions. int k: keep the top k (1 <= k <= r). float in (0, 1]: the smallest k explaining
        that fraction of the variance. "auto": 0.95 (Ergen et al., ICLR 2022, Section 5.2).
    rtol : float or None
        Singular values <= ``rtol * S[0]`` are treated as zero (default ``max(n, d) * eps``).

    Returns
    -------
    Whitening

    Raises
    ------
    ValueError
        n < 2, all rows equal (the centered data is zero), or k out of range.
    """
    X = check_X(X).astype(np.float64, copy=False)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X has n = {n} sample; batch normalization needs n >= 2 (a single centered row is 0)")
    rtol = max(n, d) * np.finfo(np.float64).eps if rtol is None else check_scalar(rtol, "rtol", low=0.0)
    mean = X.mean(axis=0)
    U, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    if S[0] <= np.finfo(np.float64).tiny:
        raise ValueError("X has all rows equal: the centered data is 0, so every BN pre-activation is 0/0")
    r = int(np.sum(S > rtol * S[0]))
    U, S, V = U[:, :r], S[:r], Vt[:r].T
    k = _resolve_k(truncate, S)
    return Whitening(mean=mean, U=np.ascontiguousarray(U), S=S, V=np.ascontiguousarray(V), n_samples=n, k=k)

"""Closed-form global optima of BN ReLU networks on full-row-rank data (n <= d).

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022:

* Theorem 2.1 (scalar output, two layers) and Theorem 4.1 (the last two layers of a deep network whose
  activations ``A`` have range R^n): two neurons, one per sign of y;
* Theorem 2.4 (one-hot vector output) and Theorem 4.2 (deep): one neuron per class;
* Theorem G.2 (BN after the ReLU): one neuron.

Every optimal value is a sum of Huber functions ``h_beta(t) = beta t - beta^2/2`` (t >= beta), ``t^2/2`` (t < beta),
and the dual optimum is ``v* = y - f*`` (Lemma C.1). The squared loss ``1/2 ||f - y||^2`` is used throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar, check_X, check_y
from .layer import BNAfterReLUNetwork, BNReLUNetwork

__all__ = [
    "ClosedFormResult",
    "closed_form",
    "closed_form_deep",
    "closed_form_vector",
    "closed_form_vector_deep",
    "closed_form_bn_after_relu",
    "huber",
]


def huber(t, beta: float):
    """``h_beta(t) = beta t - beta^2 / 2`` if ``t >= beta`` else ``t^2 / 2`` (elementwise)."""
    t = np.asarray(t, dtype=np.float64)
    return np.where(t >= beta, beta * t - 0.5 * beta**2, 0.5 * t**2)


@dataclass
class ClosedFormResult:
    """A closed-form optimum: weights in both forms, output, dual optimum and value.

    Attributes
    ----------
    objective : float
        The optimal value p* (= the dual value d*).
    dual : ndarray of shape (n,) or (n, c)
        The dual optimum ``v* = y - f*``.
    output : ndarray of shape (n,) or (n, c)
        The optimal network's output on the training data.
    network : BNReLUNetwork or BNAfterReLUNetwork
        Weight-decay form (eq. 3 / 9): ``gamma^2 + alpha^2 = ||w2||^2``; inference statistics of the training data.
    unit_network : same type
        Theta_s form (eq. 4 / 10): ``gamma^2 + alpha^2 = 1``.
    W1, gamma, alpha, w2 : ndarrays
        The weight-decay form's weights (``network``'s).
    """

    objective: float
    dual: np.ndarray
    output: np.ndarray
    network: object
    unit_network: object

    @property
    def W1(self):
        return self.network.W1

    @property
    def gamma(self):
        return self.network.gamma

    @property
    def alpha(self):
        return self.network.alpha

    @property
    def w2(self):
        return self.network.w2


def _full_row_rank(X, name):
    """Check rank(X) = n and return X with a solver for ``X^+ u = X^T (X X^T)^{-1} u``.

    The rank is that of a pivoted Cholesky factorization of the Gram matrix ``X X^T`` (LAPACK ``dpstrf``, its
    default tolerance ``n eps max_i G_ii``, i.e. singular values below about ``sqrt(n eps) sigma_max`` count as
    zero). One n x n factorization instead of an SVD: the n = 1500, d = 3072 setting of Fig. 4 takes ~1 s.
    """
    from scipy.linalg import lapack, solve_triangular

    X = check_X(X, name).astype(np.float64, copy=False)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"{name} has n = {n} sample; batch normalization needs n >= 2")
    if n > d:
        raise ValueError(
            f"{name} must have full row rank (n <= d) for this closed form; got n = {n} > d = {d}. "
            "Use convexnn.bn.solve_bn for n > d"
        )
    L, piv, rank, info = lapack.dpstrf(X @ X.T, lower=1)
    if info != 0 or rank < n:
        raise ValueError(
            f"{name} must have full row rank (rank n = {n}) for this closed form; its numerical rank is {rank}"
        )
    L = np.tril(L)
    perm = piv - 1  # G[perm][:, perm] = L L^T

    def pinv_apply(u):
        z = solve_triangular(L, u[perm], lower=True)
        z = solve_triangular(L.T, z, lower=False)
        out = np.empty_like(z)
        out[perm] = z
        return X.T @ out

    return X, pinv_apply


def _bn_coefficients(u):
    """(gamma, alpha) of Theta_s form for a target column u (zero for u = 0): [||P u||; 1^T u / sqrt(n)] / ||u||."""
    n, nu = u.size, np.linalg.norm(u)
    if nu == 0:
        return 0.0, 0.0
    return float(np.linalg.norm(u - u.mean()) / nu), float(u.sum() / (np.sqrt(n) * nu))


def _result(net_cls, X, W1, gamma, alpha, w2_unit, y_fit, dual, value):
    unit = net_cls(W1, gamma, alpha, w2_unit).with_statistics(X)
    return ClosedFormResult(objective=float(value), dual=dual, output=y_fit, network=unit.balanced(), unit_network=unit)


def closed_form(X, y, beta: float) -> ClosedFormResult:
    """Theorem 2.1: the optimal two-layer BN ReLU network with scalar output when X has full row rank.

    For each sign s in (+1, -1) with ``u_s = (s y)_+``: ``w1 = X^+ u_s`` (so ``X w1 = u_s``),
    ``w2 = s (||u_s|| - beta)_+`` and ``[gamma; alpha] = [||P_n u_s||; 1^T u_s / sqrt(n)] / ||u_s||`` (Theta_s form).

    Parameters
    ----------
    X : array of shape (n, d)
        Full row rank (rank n, hence n <= d), n >= 2.
    y : array of shape (n,)
    beta : float >= 0

    Returns
    -------
    ClosedFormResult
        Two neurons (the + neuron first); a neuron with ``||u_s|| <= beta`` has w2 = 0. ``objective`` is
        ``h_beta(||(y)_+||) + h_beta(||(-y)_+||)``.

    Raises
    ------
    ValueError
        X not of full row rank, n < 2, y not of shape (n,).
    """
    X, pinv = _full_row_rank(X, "X")
    Y, was_1d = check_y(y, X.shape[0], "squared")
    if not was_1d:
        raise ValueError("y must have shape (n,) for Theorem 2.1; use closed_form_vector for one-hot labels")
    beta = check_scalar(beta, "beta", low=0.0)
    y = Y[:, 0]
    W1, gam, alp, w2, out, dual = [], [], [], [], np.zeros_like(y), np.zeros_like(y)
    value = 0.0
    for s in (1.0, -1.0):
        u = np.maximum(s * y, 0.0)
        nu = float(np.linalg.norm(u))
        g, a = _bn_coefficients(u)
        # Constant u (P_n u = 0) is the constant neuron: w1 = 0, only alpha.
        W1.append(pinv(u) if g > 0 else np.zeros(X.shape[1]))
        gam.append(g)
        alp.append(a)
        w2.append(s * max(nu - beta, 0.0))
        shrink = max(1.0 - beta / nu, 0.0) if nu > 0 else 0.0
        out += s * u * shrink
        dual += s * (beta * u / nu if nu >= beta and nu > 0 else u)
        value += float(huber(nu, beta))
    return _result(BNReLUNetwork, X, np.array(W1), np.array(gam), np.array(alp), np.array(w2), out, dual, value)


def closed_form_deep(A, y, beta: float) -> ClosedFormResult:
    """Theorem 4.1: the optimal last two layers of a deep BN ReLU network, scalar output.

    When the activations ``A = A^{(L-2)}`` feeding the last hidden layer have range R^n (full row rank), the
    optimal last two layers are Theorem 2.1's with X replaced by A, and the earlier layers' weight decay does not
    matter (Ergen et al., ICLR 2022, Section 4). ``network.W1`` are the weights ``W^{(L-1)}`` acting on A.

    Parameters
    ----------
    A : array of shape (n, m_{L-2})
        Full row rank.
    y : array of shape (n,)
    beta : float >= 0

    Returns
    -------
    ClosedFormResult
    """
    return closed_form(A, y, beta)


def _one_hot(y, n):
    arr = np.asarray(y)
    if arr.ndim == 1:
        if arr.shape[0] != n:
            raise ValueError(f"y has {arr.shape[0]} labels but X has {n} samples")
        classes, idx = np.unique(arr, return_inverse=True)
        return np.eye(len(classes))[idx]
    Y, _ = check_y(arr, n, "squared")
    if not (np.isin(Y, (0.0, 1.0)).all() and (Y.sum(axis=1) == 1).all()):
        raise ValueError("y must be labels of shape (n,) or a one-hot matrix of shape (n, C) (rows summing to 1)")
    return Y


def closed_form_vector(X, y, beta: float) -> ClosedFormResult:
    """Theorem 2.4: the optimal two-layer BN ReLU network with one-hot targets when X has full row rank.

    One neuron per class j: ``w1_j = X^+ y_j``, ``w2_j = (||y_j|| - beta)_+ e_j`` and
    ``[gamma_j; alpha_j] = [sqrt(1 - n_j/n); sqrt(n_j/n)]`` (Theta_s form), n_j the class count.

    Parameters
    ----------
    X : array of shape (n, d)
        Full row rank, n >= 2.
    y : array of shape (n,) (labels) or (n, C) (one-hot)
    beta : float >= 0

    Returns
    -------
    ClosedFormResult
        ``objective = sum_j h_beta(sqrt(n_j))``, ``dual`` and ``output`` of shape (n, C).
    """
    X, pinv = _full_row_rank(X, "X")
    Y = _one_hot(y, X.shape[0])
    beta = check_scalar(beta, "beta", low=0.0)
    C = Y.shape[1]
    norms = np.linalg.norm(Y, axis=0)  # sqrt(n_j)
    W1 = np.array([pinv(Y[:, j]) for j in range(C)])
    coef = [_bn_coefficients(Y[:, j]) for j in range(C)]
    w2 = np.diag(np.maximum(norms - beta, 0.0))
    shrink = np.where(norms > 0, np.maximum(1.0 - beta / np.where(norms > 0, norms, 1.0), 0.0), 0.0)
    out = Y * shrink
    dual = np.where(norms >= beta, beta * Y / np.where(norms > 0, norms, 1.0), Y)
    return _result(
        BNReLUNetwork,
        X,
        W1,
        np.array([g for g, _ in coef]),
        np.array([a for _, a in coef]),
        w2,
        out,
        dual,
        float(np.sum(huber(norms, beta))),
    )


def closed_form_vector_deep(A, y, beta: float) -> ClosedFormResult:
    """Theorem 4.2: Theorem 2.4 for the last two layers of a deep network with full-row-rank activations ``A``.

    Parameters and result as :func:`closed_form_vector` with X replaced by ``A = A^{(L-2)}``.
    """
    return closed_form_vector(A, y, beta)


def closed_form_bn_after_relu(X, y, beta: float) -> ClosedFormResult:
    """Theorem G.2: the optimal two-layer network with BN *after* the ReLU, scalar output, X of full row rank.

    One neuron: ``w1 = X^+ (y - min_i y_i 1)`` (so ``(X w1)_+ = y - min y >= 0``), ``w2 = (||y|| - beta)_+`` and
    ``[gamma; alpha] = [||P_n y||; 1^T y / sqrt(n)] / ||y||``; output ``y (1 - beta/||y||)_+``, value
    ``h_beta(||y||)``, dual ``beta y / ||y||`` (``y`` when ``||y|| < beta``).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,)
    beta : float >= 0

    Returns
    -------
    ClosedFormResult
        Its networks are :class:`BNAfterReLUNetwork`.
    """
    X, pinv = _full_row_rank(X, "X")
    Y, was_1d = check_y(y, X.shape[0], "squared")
    if not was_1d:
        raise ValueError("y must have shape (n,) for Theorem G.2")
    beta = check_scalar(beta, "beta", low=0.0)
    y = Y[:, 0]
    ny = float(np.linalg.norm(y))
    g, a = _bn_coefficients(y)
    w1 = pinv(y - y.min()) if g > 0 else np.zeros(X.shape[1])
    shrink = max(1.0 - beta / ny, 0.0) if ny > 0 else 0.0
    dual = beta * y / ny if ny >= beta and ny > 0 else y.copy()
    return _result(
        BNAfterReLUNetwork,
        X,
        w1[None, :],
        np.array([g]),
        np.array([a]),
        np.array([max(ny - beta, 0.0)]),
        y * shrink,
        dual,
        float(huber(ny, beta)),
    )

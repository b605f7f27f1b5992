"""CVXPY + Clarabel reference programs of the CNN convex programs, for tests on small instances.

Pilanci & Ergen, "Neural Networks are Convex Regularizers" (ICML 2020): the nuclear-norm program (12) of the
linear CNN (vector outputs, Appendix A.7), the Fourier-domain lasso (14) of the linear circular CNN, and the
pooled ReLU CNN program of Appendix A.1 (exact, and its gated relaxation without the cone constraints).
Objectives are recomputed in NumPy at the returned point (a SUM over samples). Needs cvxpy and clarabel.
"""

from __future__ import annotations

import numpy as np

from ..reference.cvx import _cvx_loss, _cvxpy, _solve

__all__ = ["cvx_linear_cnn", "cvx_fourier_lasso", "cvx_pooled_relu_cnn"]


def cvx_linear_cnn(patches, y, beta):
    """min_Z 1/2 ||sum_k X_k Z_k - Y||_F^2 + beta ||[Z_1, ..., Z_K]||_*; returns (value, Z (h, K, c))."""
    cp = _cvxpy()
    P = np.asarray(patches, dtype=np.float64)
    Y = np.asarray(y, dtype=np.float64).reshape(P.shape[0], -1)
    n, K, h = P.shape
    c = Y.shape[1]
    Z = cp.Variable((h, K * c))
    pred = sum(P[:, k, :] @ Z[:, k * c : (k + 1) * c] for k in range(K))
    _solve(cp, 0.5 * cp.sum_squares(pred - Y) + beta * cp.normNuc(Z), [])
    Zv = Z.value.reshape(h, K, c)
    pred_v = np.einsum("nkh,hkc->nc", P, Zv)
    value = 0.5 * np.sum((pred_v - Y) ** 2) + beta * np.linalg.svd(Z.value, compute_uv=False).sum()
    return float(value), Zv


def cvx_fourier_lasso(Xt, y, weight):
    """min_{z in C^d} 1/2 ||Re(Xt z) - y||^2 + weight ||z||_1 (complex moduli); returns (value, z)."""
    cp = _cvxpy()
    Xt = np.asarray(Xt)
    z = cp.Variable(Xt.shape[1], complex=True)
    pred = cp.real(Xt @ z)
    _solve(cp, 0.5 * cp.sum_squares(pred - y) + weight * cp.sum(cp.abs(z)), [])
    zv = z.value
    value = 0.5 * np.sum((np.real(Xt @ zv) - y) ** 2) + weight * np.abs(zv).sum()
    return float(value), zv


def cvx_pooled_relu_cnn(patches, masks, y, beta, loss="squared", exact=True):
    """The pooled ReLU CNN program (Appendix A.1) on the patterns ``masks`` (n K, P) of the stacked patches.

    ``min L(sum_i sum_k D_ik X_k (v_i - w_i), y) + beta sum_i (||v_i|| + ||w_i||)`` s.t.
    ``(2 D_ik - I) X_k v_i >= 0`` (and for w_i) when ``exact``; the gated relaxation
    ``min L(sum_i sum_k D_ik X_k u_i, y) + beta sum_i ||u_i||`` otherwise. Scalar output (c = 1).

    Returns
    -------
    dict with ``objective`` (recomputed), ``V``, ``W`` (P, h) (exact) or ``U`` (P, h) (gated).
    """
    cp = _cvxpy()
    P = np.asarray(patches, dtype=np.float64)
    n, K, h = P.shape
    Xs = P.reshape(n * K, h)
    M = np.asarray(masks, dtype=bool).reshape(n * K, -1)
    Y = np.asarray(y, dtype=np.float64).reshape(n, 1)
    npat = M.shape[1]
    # Pooled design of pattern i: A_i = sum_k D_ik X_k, shape (n, h).
    A = [(M[:, i, None] * Xs).reshape(n, K, h).sum(axis=1) for i in range(npat)]
    if exact:
        V = [cp.Variable(h) for _ in range(npat)]
        W = [cp.Variable(h) for _ in range(npat)]
        S = [np.where(M[:, [i]], 1.0, -1.0) * Xs for i in range(npat)]
        cons = [S[i] @ B[i] >= 0 for i in range(npat) for B in (V, W)]
        pred = sum(A[i] @ (V[i] - W[i]) for i in range(npat))
        pen = sum(cp.norm(V[i], 2) + cp.norm(W[i], 2) for i in range(npat))
    else:
        Uv = [cp.Variable(h) for _ in range(npat)]
        cons = []
        pred = sum(A[i] @ Uv[i] for i in range(npat))
        pen = sum(cp.norm(u, 2) for u in Uv)
    _solve(cp, _cvx_loss(cp, cp.reshape(pred, (n, 1), order="C"), Y, loss) + beta * pen, cons)
    from .. import _core

    if exact:
        Vv = np.array([v.value for v in V])
        Wv = np.array([w.value for w in W])
        z = sum(A[i] @ (Vv[i] - Wv[i]) for i in range(npat))
        obj = _core.loss_value(np.ascontiguousarray(z.reshape(n, 1)), Y, loss) + beta * (
            np.linalg.norm(Vv, axis=1).sum() + np.linalg.norm(Wv, axis=1).sum()
        )
        return dict(objective=float(obj), V=Vv, W=Wv)
    Uu = np.array([u.value for u in Uv])
    z = sum(A[i] @ Uu[i] for i in range(npat))
    obj = _core.loss_value(np.ascontiguousarray(z.reshape(n, 1)), Y, loss) + beta * np.linalg.norm(Uu, axis=1).sum()
    return dict(objective=float(obj), U=Uu)

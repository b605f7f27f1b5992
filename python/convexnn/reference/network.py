"""Two-layer networks: reconstruction from a convex solution (Pilanci & Ergen (ICML 2020) Theorem 1) and evaluation.

A ReLU network is ``f(X) = (X W1^T)_+ w2`` with W1 (m, d) (one hidden neuron per row) and w2 (m, c);
its weight-decayed objective is ``L(f(X), y) + beta/2 * (||W1||_F^2 + ||w2||_F^2)``.
"""

import numpy as np

from ._validate import as_beta, as_matrix
from .losses import loss_value, validate_targets
from .operators import forward


def relu_network_from_convex(V, W, tol=0.0):
    """Map a feasible point (V, W) of the exact ReLU program to a network (Theorem 1).

    For every block i and output column k with ``||V_i[:, k]|| > tol``, one neuron
    ``u = V_i[:, k] / sqrt(||V_i[:, k]||)`` with second-layer row ``sqrt(||V_i[:, k]||) e_k``; for W the
    same with ``-sqrt(||W_i[:, k]||) e_k``.  (For c = 1 this is one neuron per nonzero v_i and per
    nonzero w_i; for c > 1, groups="output", every column is a separate neuron feeding only output k.)
    Order: block by block, V before W, column by column.  On the cones, ``(X u)_+ alpha = D_i X v``
    and ``beta/2 (||u||^2 + alpha^2) = beta ||v||``, so the network objective equals the convex one.

    Parameters
    ----------
    V, W : array_like, shape (P, d, c)
    tol : float
        Columns with norm <= tol are dropped (default: only exact zeros).

    Returns
    -------
    W1 : ndarray, shape (m, d)
    w2 : ndarray, shape (m, c)
    """
    V = np.asarray(V, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    if V.ndim != 3:
        raise ValueError(f"V must be 3-D (P, d, c), got shape {V.shape}")
    if W.shape != V.shape:
        raise ValueError(f"W must have the shape of V {V.shape}, got {W.shape}")
    P, d, c = V.shape
    rows, outs = [], []
    for i in range(P):
        for B, sign in ((V, 1.0), (W, -1.0)):
            for k in range(c):
                col = B[i, :, k]
                norm = np.linalg.norm(col)
                if norm > tol and norm > 0:
                    rows.append(col / np.sqrt(norm))
                    out = np.zeros(c)
                    out[k] = sign * np.sqrt(norm)
                    outs.append(out)
    return np.array(rows).reshape(-1, d), np.array(outs).reshape(-1, c)


def _check_net(X, W1, w2):
    X = as_matrix(X)
    W1 = as_matrix(W1, "W1") if np.size(W1) else np.asarray(W1, dtype=np.float64).reshape(0, X.shape[1])
    w2 = np.asarray(w2, dtype=np.float64)
    if w2.ndim == 1:
        w2 = w2[:, None]
    if W1.shape[1] != X.shape[1]:
        raise ValueError(f"W1 must have d = {X.shape[1]} columns (as X), got shape {W1.shape}")
    if w2.ndim != 2 or w2.shape[0] != W1.shape[0]:
        raise ValueError(f"w2 must have shape ({W1.shape[0]}, c), got {np.shape(w2)}")
    return X, W1, w2


def network_predict(X, W1, w2):
    """Output of the ReLU network: (X W1^T)_+ w2.

    Parameters
    ----------
    X : array_like, shape (n, d)
    W1 : array_like, shape (m, d)
    w2 : array_like, shape (m, c) or (m,)

    Returns
    -------
    ndarray, shape (n, c)
    """
    X, W1, w2 = _check_net(X, W1, w2)
    return np.maximum(X @ W1.T, 0.0) @ w2


def network_objective(X, y, W1, w2, beta, loss):
    """Non-convex objective L((X W1^T)_+ w2, y) + beta/2 (||W1||_F^2 + ||w2||_F^2).

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,) or (n, c)
    W1 : array_like, shape (m, d)
    w2 : array_like, shape (m, c) or (m,)
    beta : float
    loss : str

    Returns
    -------
    float
    """
    beta = as_beta(beta)
    Y = validate_targets(y, loss)
    X, W1, w2 = _check_net(X, W1, w2)
    if Y.shape != (X.shape[0], w2.shape[1]):
        raise ValueError(f"y must have shape ({X.shape[0]}, {w2.shape[1]}) to match X and w2, got {np.shape(y)}")
    return loss_value(network_predict(X, W1, w2), Y, loss) + 0.5 * beta * float(np.sum(W1**2) + np.sum(w2**2))


def gated_network_predict(X, gates, U):
    """Output of a gated ReLU network: sum_i diag(1[X g_i >= 0]) X U_i (patterns NOT deduplicated).

    Parameters
    ----------
    X : array_like, shape (n, d)
    gates : array_like, shape (d, P)
    U : array_like, shape (P, d, c)

    Returns
    -------
    ndarray, shape (n, c)
    """
    X = as_matrix(X)
    G = np.asarray(gates, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != X.shape[1]:
        raise ValueError(f"gates must have shape ({X.shape[1]}, P), got {G.shape}")
    return forward(X, X @ G >= 0, U)

"""Objectives of the convex programs, the relative cone violation and beta_max.

``X`` is the design matrix actually used (already bias-augmented if a bias is used), ``masks`` the
(n, P) bool patterns, ``y`` targets of shape (n,) or (n, c) (see :mod:`.losses`).

* gated (``formulation="gated"``):
  ``L(sum_i D_i X U_i, y) + beta * sum_i sum_k ||U_i[:, k]||_2``   (groups="output")
  ``L(sum_i D_i X U_i, y) + beta * sum_i ||U_i||_F``              (groups="neuron")
* exact ReLU (``formulation="relu"``, groups="output" only):
  ``L(sum_i D_i X (V_i - W_i), y) + beta * sum_i sum_k (||V_i[:, k]|| + ||W_i[:, k]||)``
  subject to ``(2 D_i - I) X V_i >= 0`` and ``(2 D_i - I) X W_i >= 0``.
"""

import numpy as np

from ._validate import as_beta, as_masks, as_matrix, check_groups
from .losses import loss_grad, loss_value, validate_targets
from .operators import adjoint, block_norms, cone_products, forward


def _targets(X, y, loss):
    """Validated (X (n, d), Y (n, c))."""
    X = as_matrix(X)
    Y = validate_targets(y, loss)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have {X.shape[0]} rows (one per row of X), got shape {np.shape(y)}")
    return X, Y


def gated_objective(X, masks, U, y, beta, loss, groups="output"):
    """Objective of the gated-ReLU (group lasso) program at U.

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    U : array_like, shape (P, d, c)
    y : array_like, shape (n,) or (n, c)
    beta : float
        >= 0.
    loss : str
    groups : {"output", "neuron"}

    Returns
    -------
    float
    """
    beta = as_beta(beta)
    X, Y = _targets(X, y, loss)
    Z = forward(X, masks, U)
    if Z.shape != Y.shape:
        raise ValueError(f"U must have c = {Y.shape[1]} output columns (as y), got shape {np.shape(U)}")
    return loss_value(Z, Y, loss) + beta * float(np.sum(block_norms(U, groups)))


def relu_objective(X, masks, V, W, y, beta, loss):
    """Objective of the exact ReLU program at (V, W) (the cone constraints are NOT checked here;
    see :func:`relative_violation`).

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    V, W : array_like, shape (P, d, c)
    y : array_like, shape (n,) or (n, c)
    beta : float
    loss : str

    Returns
    -------
    float
    """
    beta = as_beta(beta)
    V = np.asarray(V, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    if V.shape != W.shape:
        raise ValueError(f"W must have the shape of V {V.shape}, got {W.shape}")
    X, Y = _targets(X, y, loss)
    Z = forward(X, masks, V - W)
    if Z.shape != Y.shape:
        raise ValueError(f"V must have c = {Y.shape[1]} output columns (as y), got shape {V.shape}")
    penalty = np.sum(block_norms(V, "output")) + np.sum(block_norms(W, "output"))
    return loss_value(Z, Y, loss) + beta * float(penalty)


def relative_violation(X, masks, V, W):
    """Largest relative violation of the cone constraints.

    ``max over blocks i, columns k of max_rows ((2 D_i - I) X V_i[:, k])_- / (||X||_2 ||V_i[:, k]||)``
    over the nonzero columns V_i[:, k], and the same for W; 0 if every block is zero.  For c = 1 this
    is the API's ``max_i max_k ((2 D_i - I) X v_i)_-[k] / (||X||_2 ||v_i||)``; for c > 1 each output
    column is its own (independent) ReLU program, so each column is normalized by its own norm.

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    V, W : array_like, shape (P, d, c)

    Returns
    -------
    float
    """
    X = as_matrix(X)
    norm_X = np.linalg.norm(X, 2)
    worst = 0.0
    for B in (V, W):
        neg = np.maximum(-cone_products(X, masks, B), 0.0).max(axis=1)  # (P, c)
        norms = block_norms(B, "output")  # (P, c)
        nz = norms > 0
        if np.any(nz) and norm_X > 0:
            worst = max(worst, float(np.max(neg[nz] / (norm_X * norms[nz]))))
    return worst


def beta_max_gated(X, masks, y, loss, groups="output"):
    """Smallest beta for which U = 0 solves the gated program.

    U = 0 is optimal iff beta >= Omega_dual(A^T grad L(0)), with A^T R = [X^T D_i R]_i:
    ``max_i max_k ||X^T D_i g[:, k]||_2`` (groups="output") or ``max_i ||X^T D_i G||_F``
    (groups="neuron"), where G = grad L(0, y).

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    y : array_like, shape (n,) or (n, c)
    loss : str
    groups : {"output", "neuron"}

    Returns
    -------
    float
    """
    check_groups(groups)
    X, Y = _targets(X, y, loss)
    as_masks(masks, X.shape[0])
    G = loss_grad(np.zeros_like(Y), Y, loss)
    norms = block_norms(adjoint(X, masks, G), groups)
    return float(np.max(norms)) if norms.size else 0.0

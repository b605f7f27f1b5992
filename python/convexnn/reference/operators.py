"""Masked products: the linear maps of the convex programs.

With patterns ``masks`` (n, P) (column i = diagonal of D_i) and coefficient blocks U (P, d, c):

* ``forward``:       sum_i D_i X U_i                    -> (n, c)
* ``adjoint``:       [X^T D_i R for each i]             -> (P, d, c)   (the adjoint of forward)
* ``cone_products``: [(2 D_i - I) X V_i for each i]     -> (P, n, c)   (>= 0 on the relu cone)
* ``block_norms``:   ||U_i[:, k]||_2 (P, c) for groups="output", ||U_i||_F (P,) for "neuron"

Every map takes an optional ``subset`` (pattern indices, or a bool selector of length P); the block
arrays then hold ``len(subset)`` blocks, block j belonging to pattern ``subset[j]``.
"""

import numpy as np

from ._validate import as_blocks, as_masks, as_matrix, as_subset, as_targets, check_groups


def _setup(X, masks, subset):
    X = as_matrix(X)
    M = as_masks(masks, X.shape[0])
    idx = as_subset(subset, M.shape[1])
    return X, M[:, idx]


def forward(X, masks, U, subset=None):
    """Prediction of the gated/convex model: sum_i D_i X U_i.

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    U : array_like, shape (P, d, c), or (len(subset), d, c) with ``subset``
    subset : array_like of int, optional

    Returns
    -------
    ndarray, shape (n, c)
    """
    X, M = _setup(X, masks, subset)
    U = as_blocks(U, M.shape[1], X.shape[1])
    return np.einsum("np,nd,pdc->nc", M.astype(np.float64), X, U, optimize=True)


def adjoint(X, masks, R, subset=None):
    """Adjoint of :func:`forward`: block i is X^T D_i R.

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    R : array_like, shape (n, c) or (n,)
    subset : array_like of int, optional

    Returns
    -------
    ndarray, shape (P, d, c) (or (len(subset), d, c))
    """
    X, M = _setup(X, masks, subset)
    R = as_targets(R, X.shape[0], "R")
    return np.einsum("np,nd,nc->pdc", M.astype(np.float64), X, R, optimize=True)


def cone_products(X, masks, V, subset=None):
    """Cone-constraint values: block i is (2 D_i - I) X V_i (>= 0 iff V_i is in the cone K_i).

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    V : array_like, shape (P, d, c) (or (len(subset), d, c))
    subset : array_like of int, optional

    Returns
    -------
    ndarray, shape (P, n, c)
    """
    X, M = _setup(X, masks, subset)
    V = as_blocks(V, M.shape[1], X.shape[1], "V")
    signs = np.where(M, 1.0, -1.0)  # (n, P)
    return np.einsum("np,nd,pdc->pnc", signs, X, V, optimize=True)


def block_norms(U, groups="output", subset=None):
    """Group norms of the coefficient blocks.

    Parameters
    ----------
    U : array_like, shape (P, d, c)
    groups : {"output", "neuron"}
        "output": the column norms ||U_i[:, k]||_2; "neuron": the Frobenius norms ||U_i||_F.
    subset : array_like of int, optional
        Accepted for a signature uniform with the other maps: as there, U then holds
        ``len(subset)`` blocks (checked), and the norms of those blocks are returned.

    Returns
    -------
    ndarray, shape (P, c) for "output" or (P,) for "neuron"
    """
    check_groups(groups)
    U = np.asarray(U, dtype=np.float64)
    if U.ndim != 3:
        raise ValueError(f"U must be 3-D (P, d, c), got shape {U.shape}")
    if subset is not None:
        S = np.asarray(subset)
        k = int(S.sum()) if S.dtype == np.bool_ else S.size
        if U.shape[0] != k:
            raise ValueError(f"U must have len(subset) = {k} blocks, got shape {U.shape}")
    if groups == "output":
        return np.linalg.norm(U, axis=1)
    return np.sqrt(np.sum(U**2, axis=(1, 2)))

"""Neural Collapse: the simplex ETF of batch-normalized optimal networks and a diagnostic for any features.

Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via Convex Duality" (ICML 2021), Definition 2 and
Corollary 4.3: with the optimal last two layers of its Theorem 4.4 (batch normalization before the last ReLU, one-hot
labels, n/K samples per class), every sample of class k has the same last-hidden activation, and the centred class
means are the columns of the general simplex ETF ``alpha * S``,
``S = sqrt(K/(K-1)) (I_K - 1 1^T / K)``, ``alpha = sqrt((K-1)/n)``; the centred activation matrix is
``sqrt(K/n) (I_K kron 1_{n/K} - 1_{n x K} / K)`` and the normalized Gram matrix of the means has ``-1/(K-1)`` off
the diagonal.  The diagnostic follows Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase
of deep learning training" (PNAS 2020): within-class variability ``tr(Sigma_W Sigma_B^+) / K``, equal norms and
equiangularity of the centred class means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar
from ._common import as_matrix


def simplex_etf(K: int) -> np.ndarray:
    """The standard simplex ETF ``S = sqrt(K/(K-1)) (I_K - 1 1^T / K)`` (K, K), K >= 2 (unit-norm columns)."""
    K = check_scalar(K, "K", low=2, integer=True)
    return np.sqrt(K / (K - 1.0)) * (np.eye(K) - np.full((K, K), 1.0 / K))


@dataclass
class ETF:
    """Closed form of ICML 2021 Corollary 4.3.

    Attributes
    ----------
    scale : float
        alpha = sqrt((K-1)/n).
    etf : ndarray (K, K)
        S, the standard simplex ETF.
    class_means : ndarray (K, K)
        Centred class means, column k = alpha * S e_k.
    activations : ndarray (n, K)
        Centred last-hidden activations (class k = rows k n/K ... (k+1) n/K - 1).
    gram_cosine : float
        -1/(K-1), the off-diagonal of the means' normalized Gram matrix.
    """

    scale: float
    etf: np.ndarray
    class_means: np.ndarray
    activations: np.ndarray
    gram_cosine: float


def neural_collapse_etf(n: int, K: int) -> ETF:
    """Last-hidden activations of the optimal batch-normalized network (ICML 2021 Cor. 4.3), balanced classes.

    The activations after BN of Theorem 4.4's optimal layers are ``y_k / ||y_k||`` (column k), i.e.
    ``A = Y / sqrt(n/K)`` for one-hot Y with n/K samples per class (ordered); this returns their centring
    ``(I - 1 1^T / n) A`` and its class means.

    Parameters
    ----------
    n : int
        Samples, a multiple of K.
    K : int >= 2
        Classes.

    Returns
    -------
    ETF

    Raises
    ------
    ValueError
        If n is not a positive multiple of K (the corollary needs balanced classes).
    """
    n = check_scalar(n, "n", low=1, integer=True)
    K = check_scalar(K, "K", low=2, integer=True)
    if n % K:
        raise ValueError(f"n must be a multiple of K (balanced classes, ICML 2021 Cor. 4.3); got n = {n}, K = {K}")
    Y = np.kron(np.eye(K), np.ones((n // K, 1)))
    A = Y / np.sqrt(n / K)
    C = A - A.mean(axis=0)
    means = np.stack([C[k * (n // K)] for k in range(K)], axis=1)
    return ETF(
        scale=float(np.sqrt((K - 1.0) / n)),
        etf=simplex_etf(K),
        class_means=means,
        activations=C,
        gram_cosine=-1.0 / (K - 1),
    )


@dataclass
class CollapseReport:
    """Neural-Collapse statistics of features H (n, p) with labels (Papyan et al. 2020, NC1-NC2).

    Attributes
    ----------
    classes : ndarray (K,)
    class_means : ndarray (p, K)
        Centred class means mu_k - mu_G.
    within_class_variability : float
        NC1 = tr(Sigma_W Sigma_B^+) / K (0 at collapse).
    within_class_trace : float
        tr(Sigma_W).
    norms : ndarray (K,)
        ||mu_k - mu_G||.
    norm_cv : float
        Coefficient of variation of ``norms`` (0 for equal norms).
    cosines : ndarray (K, K)
        Normalized Gram matrix of the centred means.
    cosine_deviation : float
        max_{k != l} |cos(mu_k, mu_l) + 1/(K-1)| (0 for a simplex ETF).
    etf_distance : float
        ``|| M^T M / ||M^T M||_F - S^T S / ||S^T S||_F ||_F`` with M the centred means.
    scale : float
        Mean norm of the centred means (alpha of an ETF ``alpha U S``).
    """

    classes: np.ndarray
    class_means: np.ndarray
    within_class_variability: float
    within_class_trace: float
    norms: np.ndarray
    norm_cv: float
    cosines: np.ndarray
    cosine_deviation: float
    etf_distance: float
    scale: float


def neural_collapse(features, labels) -> CollapseReport:
    """Neural-Collapse diagnostic for any network's features (e.g. last-hidden activations).

    Parameters
    ----------
    features : array of shape (n, p)
    labels : array of shape (n,) (class labels, any K >= 2 distinct values) or (n, K) one-hot

    Returns
    -------
    CollapseReport
    """
    H = as_matrix(features, "features")
    lab = np.asarray(labels)
    if lab.ndim == 2:
        if lab.shape[0] != H.shape[0] or not (np.isin(lab, (0, 1)).all() and (lab.sum(axis=1) == 1).all()):
            raise ValueError("labels of shape (n, K) must be one-hot with n = features.shape[0]")
        lab = lab.argmax(axis=1)
    if lab.ndim != 1 or lab.shape[0] != H.shape[0]:
        raise ValueError(f"labels must have shape (n,) = ({H.shape[0]},) or (n, K); got {np.shape(labels)}")
    classes = np.unique(lab)
    K = classes.size
    if K < 2:
        raise ValueError("labels must contain at least 2 classes")
    mu_g = H.mean(axis=0)
    means = np.stack([H[lab == c].mean(axis=0) for c in classes], axis=1) - mu_g[:, None]
    Sw = (
        sum(((H[lab == c] - H[lab == c].mean(axis=0)).T @ (H[lab == c] - H[lab == c].mean(axis=0))) for c in classes)
        / H.shape[0]
    )
    Sb = means @ means.T / K
    nc1 = float(np.trace(Sw @ np.linalg.pinv(Sb))) / K
    norms = np.linalg.norm(means, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    cos = (means.T @ means) / np.outer(safe, safe)
    off = ~np.eye(K, dtype=bool)
    G = means.T @ means
    S = simplex_etf(K)
    Gs = S.T @ S
    etf_dist = float(np.linalg.norm(G / max(np.linalg.norm(G), 1e-300) - Gs / np.linalg.norm(Gs)))
    return CollapseReport(
        classes=classes,
        class_means=means,
        within_class_variability=nc1,
        within_class_trace=float(np.trace(Sw)),
        norms=norms,
        norm_cv=float(norms.std() / max(norms.mean(), 1e-300)),
        cosines=cos,
        cosine_deviation=float(np.abs(cos[off] + 1.0 / (K - 1)).max()),
        etf_distance=etf_dist,
        scale=float(norms.mean()),
    )

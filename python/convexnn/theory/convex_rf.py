"""Convex-RF: extreme-point convolutional filters and an l1 output layer (JMLR 2021 Algorithm 2).

Ergen & Pilanci, "Convex Geometry and Duality of Over-parameterized Neural Networks" (JMLR 2021), Sec. 5 and
Algorithm 2: P random image patches are normalized (``(p - mean(p)) / sqrt(var(p) + eps)``), optionally ZCA
whitened, and every patch becomes a filter pointing from its projection onto the convex hull of the other patches
to the patch itself (the extreme points of Lemma 7, :func:`~convexnn.theory.hull_distance_neurons`); the image
features are ``pooling(ReLU(patches @ U))`` (max pooling over a q x q grid) and the output layer solves
``min_w 1/2 ||B w - y||^2 + beta ||w||_1`` per class (one-vs-all on one-hot targets) with a free intercept.
The convolutional pipeline is the single-layer network of Coates & Ng ("Learning feature representations with
K-means", 2012) with a ReLU instead of the triangle activation.  Patches come from
:func:`convexnn.cnn.extract_patches`.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from sklearn.utils.validation import check_is_fitted

from .._validation import check_scalar
from ..cnn.patches import check_images, extract_patches, patch_grid
from .duals import hull_distance_neurons


def normalize_patches(P, eps: float) -> np.ndarray:
    """Per-patch normalization ``(p - mean(p)) / sqrt(var(p) + eps)`` of rows P (m, h) (Algorithm 2, lines 3-5)."""
    P = np.asarray(P, dtype=np.float64)
    return (P - P.mean(axis=1, keepdims=True)) / np.sqrt(P.var(axis=1, keepdims=True) + eps)


class ConvexRF(ClassifierMixin, BaseEstimator):
    """Convex-RF image classifier (JMLR 2021 Algorithm 2).

    Parameters
    ----------
    n_filters : int
        P, the number of random patches turned into extreme-point filters (filters of patches inside the hull of the
        others have distance 0 and are dropped).
    patch_size : int
        Square filter size s (patches have s * s * C entries).
    stride : int
    pool : int
        q: each feature map is max-pooled over a q x q grid of regions.
    beta : float > 0
        l1 weight of the output layer, library scaling (``1/2 ||Bw - y||^2 + beta ||w||_1``, a sum over samples;
        scikit-learn's Lasso ``alpha`` is ``beta / n``).
    eps : float
        Patch-normalization constant.
    zca : bool
        ZCA-whiten the normalized patches (Algorithm 2 line 7, ``V (D + zca_eps I)^(-1/2) V^T``).
    zca_eps : float
    seed : int
    max_iter : int
        Coordinate-descent iterations of the output lasso (a ConvergenceWarning when reached).

    Attributes
    ----------
    filters_ : ndarray (h, P')
        Unit-norm extreme-point filters.
    hull_distances_ : ndarray (P',)
    classes_ : ndarray
    coef_ : ndarray (K, P' q^2), intercept_ : ndarray (K,)
    """

    def __init__(
        self,
        n_filters=100,
        patch_size=4,
        stride=1,
        pool=2,
        beta=1.0,
        eps=10.0,
        zca=False,
        zca_eps=0.1,
        seed=0,
        max_iter=5000,
    ):
        self.n_filters = n_filters
        self.patch_size = patch_size
        self.stride = stride
        self.pool = pool
        self.beta = beta
        self.eps = eps
        self.zca = zca
        self.zca_eps = zca_eps
        self.seed = seed
        self.max_iter = max_iter

    def _patches(self, images):
        return extract_patches(images, self.patch_size, self.stride)

    def _whiten(self, P):
        return P if self.zca_ is None else (P - self.zca_mean_) @ self.zca_

    def _features(self, images):
        imgs = check_images(images)
        Kr, Kc = patch_grid(imgs.shape[1:3], self.patch_size, self.stride)
        n = imgs.shape[0]
        P = self._patches(imgs).reshape(n * Kr * Kc, -1)
        H = np.maximum(self._whiten(normalize_patches(P, self.eps)) @ self.filters_, 0.0)
        H = H.reshape(n, Kr, Kc, -1)
        q = self.pool
        rows, cols = np.array_split(np.arange(Kr), q), np.array_split(np.arange(Kc), q)
        pooled = [H[:, r][:, :, c].max(axis=(1, 2)) for r in rows for c in cols if r.size and c.size]
        return np.concatenate(pooled, axis=1)

    def fit(self, images, y):
        """Learn the filters from random patches of ``images`` (n, H, W[, C]) and the l1 output layer on labels y."""
        for name, low in (("n_filters", 2), ("patch_size", 1), ("stride", 1), ("pool", 1), ("max_iter", 1)):
            check_scalar(getattr(self, name), name, low=low, integer=True)
        check_scalar(self.beta, "beta", low=0.0, low_inclusive=False)
        check_scalar(self.eps, "eps", low=0.0)
        check_scalar(self.zca_eps, "zca_eps", low=0.0, low_inclusive=False)
        imgs = check_images(images)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != imgs.shape[0]:
            raise ValueError(f"y must have shape ({imgs.shape[0]},); got {y.shape}")
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError("y must contain at least 2 classes")
        rng = np.random.default_rng(self.seed)
        allp = self._patches(imgs).reshape(-1, self.patch_size**2 * imgs.shape[3])
        pick = rng.choice(allp.shape[0], size=min(self.n_filters, allp.shape[0]), replace=False)
        P = normalize_patches(allp[pick], self.eps)
        self.zca_ = None
        if self.zca:
            self.zca_mean_ = P.mean(axis=0)
            evals, V = np.linalg.eigh(np.cov(P - self.zca_mean_, rowvar=False))
            self.zca_ = (V / np.sqrt(np.maximum(evals, 0) + self.zca_eps)) @ V.T
        U, _, dist = hull_distance_neurons(self._whiten(P))
        keep = dist > 0
        self.filters_, self.hull_distances_ = U[:, keep], dist[keep]
        B = self._features(imgs)
        Y = (y[:, None] == self.classes_[None, :]).astype(float)
        lasso = Lasso(alpha=self.beta / B.shape[0], fit_intercept=True, max_iter=self.max_iter, tol=1e-6)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            lasso.fit(B, Y)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            warnings.warn(
                f"ConvexRF: the output lasso did not converge in max_iter={self.max_iter}",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.coef_, self.intercept_ = np.atleast_2d(lasso.coef_), np.atleast_1d(lasso.intercept_)
        return self

    def decision_function(self, images):
        check_is_fitted(self, "filters_")
        return self._features(images) @ self.coef_.T + self.intercept_

    def predict(self, images):
        return self.classes_[np.argmax(self.decision_function(images), axis=1)]

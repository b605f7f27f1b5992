"""Sign patterns for ReLU CNNs: patterns of the stacked patch matrix X' (n K x h) from Gaussian gates, from
cluster centres of the patches, and from the filters of a trained non-convex CNN.

Pilanci & Ergen (ICML 2020) build the patterns of their CNN experiments (Section 6, Fig. 10) from "50 patch
clusters plus the GD patterns"; every candidate filter g gives the pattern D = diag(1[X' g >= 0]) of the stacked
patches, i.e. one K-tuple (D_1, ..., D_K) of per-patch patterns (Appendix A.1). Gates here have h (+1 with a
bias) entries, like the filters. Combine sources by stacking gate arrays, e.g.
``patterns_from_gates(patches, np.hstack([cluster_gates(patches, 50), network_gates(net)]))``.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_scalar
from ..patterns import Patterns, sample_patterns
from .patches import check_patches

__all__ = ["stacked_patches", "gaussian_patterns", "cluster_gates", "network_gates", "patterns_from_gates"]


def stacked_patches(patches):
    """X' = patches.reshape(n K, h): the stacked patch matrix, sample-major (a view of a C-contiguous array)."""
    P = check_patches(patches)
    return P.reshape(P.shape[0] * P.shape[1], P.shape[2])


def gaussian_patterns(patches, n_patterns=100, seed=0, bias=False):
    """Patterns of ``n_patterns`` Gaussian gates on the stacked patches (see :func:`convexnn.sample_patterns`).

    Parameters
    ----------
    patches : array (n, K, h)
    n_patterns : int
    seed : int
    bias : bool
        With a bias entry, each gate's hyperplane passes through a random patch.

    Returns
    -------
    Patterns
        On the n K rows of X'.
    """
    return sample_patterns(stacked_patches(patches), n_patterns=n_patterns, seed=seed, bias=bias)


def cluster_gates(patches, n_clusters=50, seed=0, bias=False, max_samples=20_000):
    """Gates from k-means cluster centres of the patches (scikit-learn's KMeans).

    The gate of centre c is the direction c - mu from the mean patch mu; with ``bias=True`` its hyperplane passes
    through mu (gate [c - mu; -(c - mu)^T mu]), so the pattern marks the patches on c's side of the mean.

    Parameters
    ----------
    patches : array (n, K, h)
    n_clusters : int >= 1
    seed : int
    bias : bool
    max_samples : int
        k-means runs on at most this many randomly chosen patches.

    Returns
    -------
    ndarray (h[+1], n_clusters)
    """
    from sklearn.cluster import KMeans

    X = stacked_patches(patches).astype(np.float64, copy=False)
    n_clusters = check_scalar(n_clusters, "n_clusters", low=1, integer=True)
    seed = check_scalar(seed, "seed", low=0, integer=True)
    max_samples = check_scalar(max_samples, "max_samples", low=1, integer=True)
    rng = np.random.default_rng(seed)
    sample = X if X.shape[0] <= max_samples else X[rng.choice(X.shape[0], max_samples, replace=False)]
    k = min(n_clusters, sample.shape[0])
    centres = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(sample).cluster_centers_
    mu = X.mean(axis=0)
    G = (centres - mu).T  # (h, k)
    if bias:
        G = np.vstack([G, -(mu @ G)[None, :]])
    return G


def network_gates(network):
    """The filters of a (trained) CNN as gates, shape (h[+1], m): their patterns are the network's activations."""
    filters = np.asarray(network.filters, dtype=np.float64)
    return filters.T.copy()


def patterns_from_gates(patches, gates, bias=False):
    """Patterns of gate vectors on the stacked patches (deduplicated, the all-zero pattern dropped).

    Parameters
    ----------
    patches : array (n, K, h)
    gates : array (h[+1], P)
    bias : bool

    Returns
    -------
    Patterns
    """
    return Patterns.from_gates(stacked_patches(patches), gates, bias=bias)

"""Sign patterns (activation patterns) of a data matrix: the reference versions.

A gate ``g`` in R^d defines the pattern ``D = diag(1[X g >= 0])`` (note ``>=``: ties count as active).
In this module a set of P patterns is a dense bool array ``masks`` of shape (n, P), column i being
the diagonal of D_i, and the gates that produce them are a float array ``gates`` of shape (d, P).

Pattern sets are deduplicated (the first occurrence of a mask is kept, with its gate) and the all-zero
mask is dropped, because its block contributes nothing.

``X`` is always the design matrix actually used, i.e. already augmented by :func:`add_bias` when a bias
column is wanted (exception: :func:`sample_gates` takes the raw X and a ``bias`` flag, since it needs
the raw points to place the bias entry).
"""

import math

import numpy as np
from scipy.optimize import linprog

from ._validate import as_matrix

# Largest n accepted by enumerate_bruteforce (its worst case is exponential in n).
BRUTEFORCE_MAX_N = 16

# A hyperplane region is accepted when its unit interior point has margin above this (rows normalized).
REGION_MARGIN = 1e-9


def add_bias(X):
    """Append a column of ones to ``X``.

    Parameters
    ----------
    X : array_like, shape (n, d)

    Returns
    -------
    ndarray, shape (n, d + 1)
        ``[X, 1]`` in float64.
    """
    X = as_matrix(X)
    return np.hstack([X, np.ones((X.shape[0], 1))])


def dedup_masks(masks):
    """Indices of the distinct, not all-zero columns of ``masks``, in first-occurrence order.

    Parameters
    ----------
    masks : ndarray of bool, shape (n, P)

    Returns
    -------
    ndarray of int, shape (P',)
        Column indices to keep.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.shape[1] == 0:
        return np.zeros(0, dtype=np.intp)
    _, first = np.unique(masks.T, axis=0, return_index=True)
    first = np.sort(first)
    return first[masks[:, first].any(axis=0)]


def masks_from_gates(X, G):
    """Patterns ``1[X g_i >= 0]`` of the gates, deduplicated, all-zero pattern dropped.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Design matrix (already bias-augmented if a bias is used).
    G : array_like, shape (d, P)
        One gate per column.

    Returns
    -------
    masks : ndarray of bool, shape (n, P')
        Distinct nonzero patterns, in the order of their first occurrence.
    gates : ndarray, shape (d, P')
        The gate of each kept pattern (its first occurrence).
    """
    X = as_matrix(X)
    G = as_matrix(G, "G") if np.size(G) else np.asarray(G, dtype=np.float64)
    if G.ndim != 2:
        raise ValueError(f"G must be 2-D (d, P), got shape {G.shape}")
    if G.shape[0] != X.shape[1]:
        raise ValueError(f"G must have d = {X.shape[1]} rows (one per column of X), got shape {G.shape}")
    masks = X @ G >= 0
    keep = dedup_masks(masks)
    return masks[:, keep], G[:, keep].copy()


def sample_gates(X, n_patterns, seed=0, bias=False):
    """Draw Gaussian gates (Pilanci & Ergen (ICML 2020) Remark 3.2), before deduplication.

    Feature entries are i.i.d. N(0, 1). With ``bias=True`` a last (bias) entry is added per gate,
    ``g_b = -x_j^T g_feat`` for a training point ``x_j`` chosen uniformly at random, so that the gate's
    hyperplane passes through ``x_j`` and the pattern splits the data even when it is not centered
    (``g_b`` is nudged up by a few ulps if needed so that ``x_j`` itself is active in
    ``add_bias(X) @ G``: no sampled pattern is all-zero; one is all-ones when the hyperplane through
    ``x_j`` happens to support the whole point cloud).

    Random stream (``numpy.random.default_rng(seed)``): first the ``(n_patterns, d)`` Gaussian matrix
    (gate by gate, so the first k gates do not depend on ``n_patterns`` when ``bias=False``), then,
    with ``bias=True``, the ``n_patterns`` point indices.

    Parameters
    ----------
    X : array_like, shape (n, d)
        The RAW data (without the ones column).
    n_patterns : int
        Number of gates drawn (>= 1).
    seed : int
    bias : bool

    Returns
    -------
    G : ndarray, shape (d, n_patterns) or (d + 1, n_patterns)
        Use ``masks_from_gates(add_bias(X) if bias else X, G)`` for the deduplicated patterns.
    """
    X = as_matrix(X)
    if isinstance(n_patterns, bool) or not isinstance(n_patterns, (int, np.integer)) or n_patterns < 1:
        raise ValueError(f"n_patterns must be an integer >= 1, got {n_patterns!r}")
    n, d = X.shape
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((int(n_patterns), d)).T
    if bias:
        j = rng.integers(0, n, size=int(n_patterns))
        g_b = -np.einsum("pd,dp->p", X[j], G)
        G = np.vstack([G, g_b[None, :]])
        # Roundoff may leave x_j just below its own hyperplane; nudge g_b up (by ulps) until
        # x_j counts as active (ties are >=), so no sampled pattern is all-zero.
        cols = np.arange(int(n_patterns))
        Xb = np.hstack([X, np.ones((n, 1))])
        while True:
            low = (Xb @ G)[j, cols] < 0
            if not low.any():
                break
            G[-1, low] = np.nextafter(G[-1, low], np.inf)
    return np.ascontiguousarray(G)


def _interior_point(A, signs):
    """Largest-margin point of the open cone {u : s_k a_k^T u > 0}, or None if it is empty.

    Solves the LP  max t  s.t.  s_k a_k^T u >= t,  -1 <= u <= 1,  t <= 1  (HiGHS), then checks the
    margin of the normalized maximizer directly.  ``A`` has unit-norm rows.
    """
    m, d = A.shape
    S = signs[:, None] * A
    c = np.zeros(d + 1)
    c[-1] = -1.0  # maximize t
    A_ub = np.hstack([-S, np.ones((m, 1))])  # t - s_k a_k^T u <= 0
    bounds = [(-1.0, 1.0)] * d + [(None, 1.0)]
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(m),
        bounds=bounds,
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status != 0 or -res.fun <= REGION_MARGIN:
        return None
    u = res.x[:d]
    u = u / np.linalg.norm(u)
    if m and np.min(S @ u) <= REGION_MARGIN:  # guard against LP tolerance
        return None
    return u


def distinct_hyperplanes(X):
    """Group the rows of ``X`` by the hyperplane {u : x_k^T u = 0} they define.

    Parameters
    ----------
    X : array_like, shape (n, d)

    Returns
    -------
    H : ndarray, shape (h, d)
        Unit normals of the distinct hyperplanes (first nonzero entry positive).
    which : ndarray of int, shape (n,)
        Hyperplane index of each row, -1 for a zero row.
    orient : ndarray, shape (n,)
        +1 if x_k is a positive multiple of ``H[which[k]]``, -1 if negative, 0 for a zero row.
    """
    X = as_matrix(X)
    n, d = X.shape
    which = np.full(n, -1, dtype=np.intp)
    orient = np.zeros(n)
    H = []
    for k in range(n):
        norm = np.linalg.norm(X[k])
        if norm == 0:
            continue
        h = X[k] / norm
        s = 1.0 if h[np.flatnonzero(h)[0]] > 0 else -1.0
        h = s * h
        for j, hj in enumerate(H):
            if np.linalg.norm(h - hj) <= 1e-12:
                which[k], orient[k] = j, s
                break
        else:
            H.append(h)
            which[k], orient[k] = len(H) - 1, s
    return np.array(H).reshape(-1, d), which, orient


def enumerate_bruteforce(X):
    """ALL sign patterns of ``X``: one per full-dimensional region of the central arrangement.

    The arrangement is {u : x_k^T u = 0}, k = 1..n, in R^d; its regions are the cells of the
    arrangement of the *distinct* hyperplanes (repeated or opposite rows define one hyperplane, zero
    rows none).  Sign vectors over the distinct hyperplanes are grown one hyperplane at a time: each
    feasible prefix is extended by +1 and by -1 and kept iff the open cone
    {u : s_j h_j^T u > 0 for all j} is nonempty (LP, see ``_interior_point``).  An infeasible prefix
    has no feasible extension, so this checks every strict sign vector without visiting all 2^h.
    Zero rows always get mask 1 (0 >= 0).  Works for any rank, including rank-deficient X.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Design matrix (already bias-augmented if a bias is used); n <= 16.

    Returns
    -------
    masks : ndarray of bool, shape (n, P)
        Every pattern ``1[X u >= 0]`` of a region, all-zero one dropped.
    gates : ndarray, shape (d, P)
        A unit vector strictly inside each region (the LP's max-margin point), so
        ``masks_from_gates(X, gates)`` returns the same masks.
    """
    X = as_matrix(X)
    n, d = X.shape
    if n > BRUTEFORCE_MAX_N:
        raise ValueError(f"X must have at most {BRUTEFORCE_MAX_N} rows for enumerate_bruteforce, got n = {n}")
    H, _, _ = distinct_hyperplanes(X)
    # Each region: (sign vector over H[:j], interior point).
    regions = [(np.zeros(0), np.eye(d)[0])]
    for j in range(len(H)):
        grown = []
        for signs, _ in regions:
            for s in (1.0, -1.0):
                new = np.append(signs, s)
                u = _interior_point(H[: j + 1], new)
                if u is not None:
                    grown.append((new, u))
        regions = grown
    G = np.array([u for _, u in regions]).T.reshape(d, -1)
    masks, gates = masks_from_gates(X, G)
    return masks, gates


def cover_count(n, r):
    """Cover's count 2 * sum_{k<r} C(n-1, k) of regions of n hyperplanes in general position in R^r.

    An upper bound on the number of patterns of any X with n rows and rank r (Pilanci & Ergen (ICML 2020), eq. 17).

    Parameters
    ----------
    n, r : int
        n >= 1 rows, rank r >= 0.

    Returns
    -------
    int
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
        raise ValueError(f"r must be an integer >= 0, got {r!r}")
    return 2 * sum(math.comb(int(n) - 1, k) for k in range(int(r)))


def flip_patterns(X, g, threshold):
    """The "Alg3" sampling heuristic of Pilanci & Ergen (ICML 2020), Sec. 3 experiments: a gate's pattern plus
    single-entry flips of its uncertain entries.

    For each gate g, the base pattern is ``1[X g >= 0]``; for every sample k with
    ``|x_k^T g| <= threshold`` (the entries closest to the gate's hyperplane) one extra pattern is
    emitted: the base pattern with entry k flipped.  Patterns of all gates are concatenated
    (base first, then flips in sample order), deduplicated and the all-zero one dropped.
    The flipped patterns need not be realizable by any gate, hence no gates are returned.
    The threshold is absolute (the seed gives no value; pass e.g. a quantile of ``|X g|``).

    Parameters
    ----------
    X : array_like, shape (n, d)
    g : array_like, shape (d,) or (d, m)
        One gate, or m gates as columns (e.g. ``network_gates(W1)``).
    threshold : float
        >= 0.

    Returns
    -------
    masks : ndarray of bool, shape (n, P)
    """
    X = as_matrix(X)
    G = np.asarray(g, dtype=np.float64)
    if G.ndim == 1:
        G = G[:, None]
    if G.ndim != 2 or G.shape[0] != X.shape[1]:
        raise ValueError(f"g must have shape ({X.shape[1]},) or ({X.shape[1]}, m), got {np.shape(g)}")
    if not np.all(np.isfinite(G)):
        raise ValueError("g must not contain NaN or Inf")
    threshold = float(threshold)
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    Z = X @ G
    cols = []
    for i in range(G.shape[1]):
        base = Z[:, i] >= 0
        cols.append(base)
        for k in np.flatnonzero(np.abs(Z[:, i]) <= threshold):
            flipped = base.copy()
            flipped[k] = not flipped[k]
            cols.append(flipped)
    masks = np.array(cols).T.reshape(X.shape[0], -1)
    return masks[:, dedup_masks(masks)]


def network_gates(W1):
    """Gates of a network's hidden neurons (Pilanci & Ergen (ICML 2020) "Alg2"/"Alg1"): ``G = W1.T``.

    Parameters
    ----------
    W1 : array_like, shape (m, d)
        First-layer weights, one neuron per row.

    Returns
    -------
    G : ndarray, shape (d, m)
    """
    return as_matrix(W1, "W1").T.copy()

"""Sign patterns D_i = diag(1[X g_i >= 0]) of the hyperplane arrangement of the data, bit-packed in C++."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import INT_LIMIT, _asarray, add_bias_column, check_bool, check_memory, check_scalar, check_X

# Default cap of enumerate_patterns (regions of the arrangement).
DEFAULT_MAX_PATTERNS = 100_000
SEED_LIMIT = 2**64 - 1  # seeds are unsigned 64-bit integers in the core


def _design(X, bias, name="X"):
    check_bool(bias, "bias")
    X = check_X(X, name)
    return add_bias_column(X) if bias else X


class Patterns:
    """A deduplicated set of P sign patterns with one gate vector per pattern.

    The masks are stored bit-packed (n x P bits) in the C++ core; only :meth:`dense` expands them.
    Build one with :func:`sample_patterns`, :func:`enumerate_patterns` or :meth:`Patterns.from_gates`.

    Attributes
    ----------
    gates : ndarray of shape (d[+1], P), float64
        One gate per kept pattern, in mask order; with ``bias=True`` the last row multiplies the ones column.
    n_patterns : int
        P, the number of distinct non-zero patterns kept.
    n_samples : int
        n, the number of training rows the masks were computed on.
    bias : bool
        Whether the patterns were built with a ones column appended to X.
    """

    dtype = "float64"  # see __init__

    def __init__(self, core_set, bias, dtype=np.float64):
        if not isinstance(core_set, _core.PatternSet):
            raise TypeError(
                "Patterns wraps a convexnn._core.PatternSet; use from_gates / sample_patterns / "
                "enumerate_patterns to build one"
            )
        self._set = core_set
        self.bias = check_bool(bias, "bias")
        # Precision of the data the masks were computed on: masks of the same gates on new data are computed in
        # it too (a gate through a training point would otherwise flip that point's mask with rounding).
        self.dtype = np.dtype(dtype).name

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_network(cls, net, X):
        """The sign patterns 1[X_b u_j >= 0] of a trained two-layer ReLU network's hidden neurons.

        The exact program over them is never worse than the network (Pilanci & Ergen, ICML 2020, "Alg2": each
        neuron lies in its own pattern's cone, so the network maps to a feasible point; see
        convexnn.generation.network_to_blocks).

        Parameters
        ----------
        net : Network
            W1 (m, d[+1]); ``net.bias`` decides whether a ones column is appended to X.
        X : array of shape (n, d)

        Returns
        -------
        Patterns
        """
        W1 = getattr(net, "W1", None)
        if W1 is None or not hasattr(net, "bias"):
            raise TypeError(f"net must be a convexnn Network; got {type(net).__name__}")
        return cls.from_gates(X, np.asarray(W1, dtype=np.float64).T, bias=bool(net.bias))

    @classmethod
    def from_gates(cls, X, G, bias=False):
        """Patterns of user gates.

        Parameters
        ----------
        X : array of shape (n, d)
            Training data (without the bias column; it is appended when ``bias=True``).
        G : array of shape (d[+1], P)
            Gate vectors, one per column (d+1 rows when ``bias=True``).
        bias : bool
            Append a ones column to X first.

        Returns
        -------
        Patterns
            Deduplicated (first occurrence kept), with the all-zero pattern dropped.
        """
        Xb = _design(X, bias)
        G = _asarray(G, "G")
        if np.iscomplexobj(G) or G.dtype == object or not (np.issubdtype(G.dtype, np.number) or G.dtype == bool):
            raise TypeError(f"G must hold real numbers; got dtype {G.dtype}")
        G = G.astype(np.float64)
        if G.ndim == 1:
            G = G[:, None]
        if G.ndim != 2 or G.shape[0] != Xb.shape[1]:
            raise ValueError(
                f"G must have shape ({Xb.shape[1]}, P) (rows = features{' + bias' if bias else ''}); got {G.shape}"
            )
        if G.shape[1] == 0:
            raise ValueError("G has no columns: at least one gate is required")
        if not np.isfinite(G).all():
            raise ValueError("G contains NaN or Inf")
        return cls(_core.PatternSet.from_gates(Xb, np.ascontiguousarray(G.T)), bias, Xb.dtype)

    # ---- inspection -------------------------------------------------------------------------------
    @property
    def n_patterns(self):
        return self._set.n_patterns

    @property
    def n_samples(self):
        return self._set.n_samples

    @property
    def gates(self):
        return self._set.gates().T

    def dense(self):
        """The masks as a dense (n, P) bool array (for inspection and tests only)."""
        return self._set.dense()

    def masks_on(self, X):
        """Dense (n_new, P) bool masks of the same gates on new data X (bias handled as at construction)."""
        return self._set.recompute(_design(X, self.bias).astype(self.dtype, copy=False)).dense()

    def subset(self, index):
        """A new Patterns with the patterns ``index`` (array of ints), in that order."""
        index = np.asarray(index, dtype=np.int64).ravel()
        return Patterns(self._set.subset(index), self.bias, self.dtype)

    def __len__(self):
        return self.n_patterns

    def __repr__(self):
        return f"Patterns(n_patterns={self.n_patterns}, n_samples={self.n_samples}, bias={self.bias})"

    def __getstate__(self):
        return {"set": self._set, "bias": self.bias, "dtype": self.dtype}

    def __setstate__(self, state):
        self._set = state["set"]
        self.bias = state["bias"]
        self.dtype = state.get("dtype", "float64")


def sample_patterns(X, n_patterns=1000, seed=0, bias=False):
    """Patterns of ``n_patterns`` Gaussian gates, deduplicated.

    Feature entries of each gate are N(0, 1). With ``bias=True`` the bias entry is chosen so that the gate's
    hyperplane passes through a randomly chosen training point, so patterns split uncentered data.
    Deterministic for a given ``seed``.

    Parameters
    ----------
    X : array of shape (n, d)
    n_patterns : int
        Number of gates drawn; ``result.n_patterns`` is what remains after deduplication.
    seed : int
    bias : bool

    Returns
    -------
    Patterns
    """
    n_patterns = check_scalar(n_patterns, "n_patterns", low=1, integer=True)
    seed = check_scalar(seed, "seed", low=0, high=SEED_LIMIT, integer=True)
    Xb = _design(X, bias)
    # Gates (d+1 floats each) and the bit-packed masks, before any allocation.
    check_memory(n_patterns * (8 * Xb.shape[1] + Xb.shape[0] / 8 + 16), f"sample_patterns(n_patterns={n_patterns})")
    return Patterns(_core.PatternSet.sample(Xb, int(n_patterns), int(seed), bool(bias)), bias, Xb.dtype)


def enumerate_patterns(X, bias=False, max_patterns=None):
    """ALL regions of the central hyperplane arrangement {u : x_k^T u = 0} of the data.

    The count is estimated first (Cover's bound for the rank r of X); above ``max_patterns`` a ValueError
    states the estimate. Gates lie strictly inside their regions, so
    ``Patterns.from_gates(X, pats.gates, bias)`` gives back the same patterns.

    Parameters
    ----------
    X : array of shape (n, d)
    bias : bool
    max_patterns : int or None
        Refuse above this many regions (default 100000).

    Returns
    -------
    Patterns
        Cover's count 2 * sum_{k<r} C(n-1, k) on general-position data, minus one when the all-zero
        pattern's region exists (it is dropped).
    """
    max_patterns = (
        DEFAULT_MAX_PATTERNS
        if max_patterns is None
        else check_scalar(max_patterns, "max_patterns", low=1, integer=True)
    )
    max_patterns = min(int(max_patterns), INT_LIMIT)  # larger means "no limit"; the core takes 64-bit integers
    Xb = _design(X, bias)
    summary = _core.arrangement_summary(Xb)
    bound = region_bound(summary["n_hyperplanes"], summary["rank"])
    if bound > max_patterns:
        raise ValueError(
            f"enumerate_patterns: X's arrangement may have up to {_count(bound)} regions (Cover's bound "
            f"for {summary['n_hyperplanes']} distinct hyperplanes in rank {summary['rank']}), more "
            f"than max_patterns = {max_patterns}; raise max_patterns or sample patterns instead"
        )
    # Each region keeps a gate (d[+1] floats) and its n mask bits; the enumeration holds about twice that.
    check_memory(
        2 * bound * (8 * Xb.shape[1] + Xb.shape[0] / 8 + 16),
        f"enumerate_patterns (up to {_count(bound)} regions of {Xb.shape[0]} samples)",
    )
    return Patterns(_core.enumerate_patterns(Xb, int(max_patterns)), bias, Xb.dtype)


def region_bound(n_hyperplanes, rank):
    """Cover's bound 2 * sum_{k<r} C(n-1, k) on the regions of n central hyperplanes in rank r (exact integer).

    Cover, "Geometrical and statistical properties of systems of linear inequalities", IEEE Trans. Electronic
    Computers, 1965; the count of the hyperplane arrangement in Pilanci & Ergen (ICML 2020), Section 2.
    """
    n, r = int(n_hyperplanes), int(rank)
    if n == 0 or r == 0:
        return 1
    return 2 * sum(math.comb(n - 1, k) for k in range(min(r, n)))


def _count(value):
    return str(value) if value < 10**12 else f"{float(value):.3g}"


def as_patterns(patterns, X, bias, seed):
    """Resolve solve()'s ``patterns`` argument: a Patterns, a (d[+1], P) gate array, an int P or None."""
    if patterns is None:
        patterns = 100
    if isinstance(patterns, Patterns):
        if patterns.bias != bool(bias):
            raise ValueError(f"patterns were built with bias={patterns.bias} but solve got bias={bias}")
        if patterns.n_samples != X.shape[0]:
            raise ValueError(f"patterns were built on {patterns.n_samples} samples but X has {X.shape[0]}")
        return patterns
    if isinstance(patterns, (int, np.integer)) and not isinstance(patterns, bool):
        return sample_patterns(X, int(patterns), seed=seed, bias=bias)
    if hasattr(patterns, "shape") or isinstance(patterns, (list, tuple)):
        return Patterns.from_gates(X, patterns, bias=bias)
    raise TypeError(f"patterns must be a Patterns, a (d, P) gate array, an int or None; got {type(patterns).__name__}")

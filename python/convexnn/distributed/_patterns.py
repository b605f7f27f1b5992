"""Sign patterns of distributed data: gates on the driver, masks on the workers."""

from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import check_scalar
from ..patterns import Patterns
from ._gates import complete_bias, draw_gates
from ._operator import DistributedOperator, unique_patterns


class DistributedPatterns(Patterns):
    """Patterns of a row-partitioned data set: the P gates, without the n x P masks.

    The masks 1[X g_i >= 0] live on the workers next to their rows (they are recomputed from the gates for
    each solve). Everything that needs only the gates works as for :class:`convexnn.Patterns`: ``gates``,
    ``masks_on(X_new)``, ``subset``, prediction of the networks built on them, pickling.

    Attributes
    ----------
    gates : ndarray of shape (d[+1], P), float64
    n_patterns : int
    n_samples : int
        n, the number of (distributed) training rows the patterns were deduplicated on.
    bias : bool
    """

    def __init__(self, gates_rows: np.ndarray, n_samples: int, bias: bool):
        gates_rows = np.ascontiguousarray(gates_rows, dtype=np.float64)
        P, d = gates_rows.shape
        # A one-row PatternSet carries the gates (its masks are not used: masks_on recomputes them).
        holder = _core.PatternSet.from_words(1, d, np.zeros((P, 1), dtype=np.uint64), gates_rows)
        super().__init__(holder, bias)
        self._n = int(n_samples)

    @property
    def n_samples(self):
        return self._n

    def dense(self):
        """Not available: the masks live on the workers. Use ``masks_on(X)`` with a numpy copy of X."""
        raise ValueError(
            "the masks of distributed patterns live on the workers; use masks_on(X) with the data "
            "as a numpy array (n x P bools) or convexnn.Patterns.from_gates(X, pats.gates, bias)"
        )

    def subset(self, index):
        index = np.asarray(index, dtype=np.int64).ravel()
        return DistributedPatterns(self._set.gates()[index], self._n, self.bias)

    def __repr__(self):
        return f"DistributedPatterns(n_patterns={self.n_patterns}, n_samples={self.n_samples}, bias={self.bias})"

    def __getstate__(self):
        return {"gates": self._set.gates(), "n": self._n, "bias": self.bias}

    def __setstate__(self, state):
        self.__init__(state["gates"], state["n"], state["bias"])


def sampled_gates(design, n_patterns: int, seed: int) -> np.ndarray:
    """The (n_patterns, d[+1]) Gaussian gates :func:`convexnn.sample_patterns` draws on the same data.

    Bit for bit the same gates: the core's portable stream is replayed on the driver, and with a bias column
    only the rows the hyperplanes pass through are fetched from the workers.
    """
    G, rows = draw_gates(design.n_samples, design.n_features, n_patterns, seed, design.bias)
    if design.bias:
        uniq, inverse = np.unique(rows, return_inverse=True)
        complete_bias(G, design.rows(uniq)[inverse, : design.n_features])
    return G


def resolve_patterns(patterns, design, seed, timeout=None):
    """solve()'s ``patterns`` argument on distributed data -> (DistributedOperator, DistributedPatterns).

    An int P (or None: 100) samples P gates and deduplicates them as :func:`convexnn.sample_patterns` does;
    a (d[+1], P) gate array is deduplicated like :meth:`convexnn.Patterns.from_gates`; a :class:`Patterns`
    (built on the same n rows, e.g. a :class:`DistributedPatterns`) is used as it is.
    """
    n, bias = design.n_samples, design.bias
    dedup = True
    if patterns is None:
        patterns = 100
    if isinstance(patterns, Patterns):
        if patterns.bias != bias:
            raise ValueError(f"patterns were built with bias={patterns.bias} but solve got bias={bias}")
        if patterns.n_samples != n:
            raise ValueError(f"patterns were built on {patterns.n_samples} samples but X has {n}")
        G, dedup = patterns._set.gates(), False
    elif isinstance(patterns, (int, np.integer)) and not isinstance(patterns, bool):
        P = check_scalar(int(patterns), "patterns", low=1, integer=True)
        G = sampled_gates(design, P, seed)
    elif hasattr(patterns, "shape") or isinstance(patterns, (list, tuple)):
        G = np.asarray(patterns, dtype=np.float64)
        if G.ndim == 1:
            G = G[:, None]
        if G.ndim != 2 or G.shape[0] != design.block_dim:
            raise ValueError(
                f"G must have shape ({design.block_dim}, P) (rows = features{' + bias' if bias else ''}); got {G.shape}"
            )
        if G.shape[1] == 0:
            raise ValueError("G has no columns: at least one gate is required")
        if not np.isfinite(G).all():
            raise ValueError("G contains NaN or Inf")
        G = np.ascontiguousarray(G.T)
    else:
        raise TypeError(
            f"patterns must be a Patterns, a (d, P) gate array, an int or None; got {type(patterns).__name__}"
        )
    op = DistributedOperator(design, G, timeout=timeout)
    if dedup:
        kept = unique_patterns(op)
        if len(kept) == 0:
            raise ValueError("all gates give the all-zero pattern on X: no pattern is left")
        if len(kept) < op.n_blocks:
            full = op
            op = full.with_patterns(kept)
            full.release()
    return op, DistributedPatterns(op.gates, n, bias)

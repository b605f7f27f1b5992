"""The patch operator of the pooled ReLU CNN: the library's masked products on the stacked patch matrix, pooled.

For a pooled two-layer ReLU CNN (Pilanci & Ergen, ICML 2020, Appendix A.1) the convex programs have one block
per sign pattern D_i of the stacked patch matrix X' (n K x h; here sample-major, row i K + k is patch k of
sample i), and the block operator

    forward:  A(U) = sum_i sum_k D_ik X_k U_i  = S (sum_i D_i X' U_i),       S: (n x n K) sums the K patches,
    adjoint:  A_i^T R = sum_k X_k^T D_ik R     = X'^T D_i (S^T R),           S^T R repeats every row K times,

is the pooling S of the masked operator of X' (bit-packed masks, BLAS tiles, threads:
``convexnn._core.MaskedOperatorF64`` / ``F32``). :class:`PatchOperator` is that composition, exposed through the
library's block-operator interface, so the C++ solvers (``_core.solve_gated``, ``_core.solve_relu``) run on it
unchanged. X' is the (n, K, h) patch array reshaped, a view: it is never formed twice.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._operators import make_operator

__all__ = ["PatchOperator", "operator_interface_available"]


def _subclassable(base):
    """True when Python subclasses of ``base`` can be constructed with (n_samples, block_dim, n_blocks)."""
    try:

        class _Probe(base):
            def forward(self, U, subset):  # pragma: no cover - never called
                raise NotImplementedError

            def adjoint(self, R, subset):  # pragma: no cover - never called
                raise NotImplementedError

            def block_gram(self, i):  # pragma: no cover - never called
                raise NotImplementedError

        _Probe(1, 1, 1)
    except TypeError:
        return False
    return True


_BASES = {np.dtype(np.float64): _core.BlockOperatorF64, np.dtype(np.float32): _core.BlockOperatorF32}
_AVAILABLE = {dt: _subclassable(base) for dt, base in _BASES.items()}


def operator_interface_available(dtype=np.float64):
    """Whether this build of convexnn lets Python operators drive the C++ solvers (``_core.BlockOperatorF64``
    subclassable from Python); the pooled ReLU CNN needs it."""
    return _AVAILABLE[np.dtype(dtype)]


def _make_class(dtype):
    dtype = np.dtype(dtype)
    base = _BASES[dtype] if _AVAILABLE[dtype] else object

    class _PatchOperator(base):
        __doc__ = PatchOperator.__doc__

        def __init__(self, stacked, patterns, n_patches, method="auto"):
            stacked = np.ascontiguousarray(stacked, dtype=dtype)
            if stacked.ndim != 2 or stacked.shape[0] % n_patches:
                raise ValueError(f"stacked must have n * K = n * {n_patches} rows; got shape {stacked.shape}")
            self._n = stacked.shape[0] // n_patches
            self._K = int(n_patches)
            self.stacked = stacked
            self.masked = make_operator(stacked, patterns, dtype, method=method)
            self._patterns = patterns
            self.dtype = dtype
            if base is not object:
                super().__init__(self._n, stacked.shape[1], self.masked.n_blocks)

        # The base class exposes these as read-only properties when it is the C++ interface.
        if base is object:
            n_samples = property(lambda self: self._n)
            block_dim = property(lambda self: self.stacked.shape[1])
            n_blocks = property(lambda self: self.masked.n_blocks)

        @property
        def n_patches(self):
            return self._K

        def forward(self, U, subset=None):
            z = self.masked.forward(np.ascontiguousarray(U, dtype=self.dtype), subset)  # (n K, c)
            return np.ascontiguousarray(z.reshape(self._n, self._K, -1).sum(axis=1))

        def adjoint(self, R, subset=None):
            R = np.asarray(R, dtype=self.dtype)
            R = R.reshape(self._n, -1)
            expanded = np.repeat(R, self._K, axis=0)  # S^T R, (n K, c) sample-major
            return self.masked.adjoint(expanded, subset)

        def block_gram(self, i):
            A = self.pooled_block(i)
            return np.ascontiguousarray(A.T @ A, dtype=self.dtype)

        def pooled_block(self, i):
            """A_i = sum_k D_ik X_k, the dense (n, h) pooled design of pattern i (for tests and Gram matrices)."""
            mask = self._patterns.subset(np.array([i], dtype=np.int64)).dense()[:, 0]
            X = self.stacked.astype(np.float64, copy=False)
            return (mask[:, None] * X).reshape(self._n, self._K, -1).sum(axis=1)

    _PatchOperator.__name__ = _PatchOperator.__qualname__ = f"PatchOperator{'F64' if dtype == np.float64 else 'F32'}"
    return _PatchOperator


class PatchOperator:
    """Pooled masked operator A(U) = sum_i sum_k D_ik X_k U_i over the stacked patch matrix (see module doc).

    Parameters
    ----------
    stacked : array (n K, h[+1])
        X', the patch matrices stacked sample-major (``patches.reshape(n * K, h)``, with a ones column when the
        filters have a bias).
    patterns : convexnn._core.PatternSet
        Sign patterns of ``stacked`` (n K rows), e.g. ``convexnn.sample_patterns(stacked, P)._set``.
    n_patches : int
        K.
    method : str
        Product method of the underlying ``MaskedOperator`` ("auto", "gemm", "tables", "amx").
    dtype : float64 or float32

    Methods
    -------
    forward(U (S, h, c), subset) -> (n, c);  adjoint(R (n, c), subset) -> (S, h, c);  block_gram(i) -> (h, h).
    """

    def __new__(cls, stacked, patterns, n_patches, method="auto", dtype=np.float64):
        return _CLASSES[np.dtype(dtype)](stacked, patterns, n_patches, method=method)


_CLASSES = {dt: _make_class(dt) for dt in _BASES}

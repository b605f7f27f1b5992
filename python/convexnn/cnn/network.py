"""Two-layer convolutional networks on patch matrices: predictions and the non-convex training objective.

Models (Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, Section 4 and Appendix A.1,
A.5-A.7), with patch matrices X_k in R^{n x h} (``patches[:, k, :]``), filters u_j in R^h, and the training
objective ``L(f, y) + beta/2 * sum_j (||u_j||^2 + ||alpha_j||^2)`` (a SUM over samples):

* :class:`LinearCNN`: f = sum_j sum_k X_k u_j alpha_jk, alpha_j in R^K (or R^{K x c} for vector outputs,
  Appendix A.7), the linear CNN of eq. (9);
* :class:`ReLUCNN` with ``pooling="sum"``: f = sum_j sum_k (X_k u_j)_+ alpha_j (Appendix A.1), one output per
  image; with ``pooling="none"``: one output per patch, f_k = sum_j (X_k u_j)_+ alpha_j (Section 4.1);
* :class:`GatedReLUCNN`: the same with fixed gates g_j, ``1[X_k g_j >= 0] * (X_k u_j)`` (the gated relaxation).

``bias=True`` appends a ones entry to every patch (one bias per filter, weight-decayed like the filter).
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import LOSSES, check_choice, check_scalar, check_y
from .patches import check_patches

__all__ = ["LinearCNN", "ReLUCNN", "GatedReLUCNN", "add_patch_bias"]

POOLINGS = ("sum", "none")


def add_patch_bias(patches):
    """Patches (n, K, h) with a ones entry appended to every patch: (n, K, h + 1)."""
    ones = np.ones(patches.shape[:2] + (1,), dtype=patches.dtype)
    return np.concatenate([patches, ones], axis=2)


def _weights(filters, output_weights, K=None):
    U = np.asarray(filters, dtype=np.float64)
    A = np.asarray(output_weights, dtype=np.float64)
    if U.ndim != 2:
        raise ValueError(f"filters must have shape (m, h); got {U.shape}")
    if A.shape[:1] != U.shape[:1]:
        raise ValueError(f"output_weights must have m = {U.shape[0]} rows (one per filter); got {A.shape}")
    if not (np.isfinite(U).all() and np.isfinite(A).all()):
        raise ValueError("filters and output_weights must be finite")
    return U, A


class _CNNBase:
    """Shared plumbing: patch checks, bias column, objective."""

    bias: bool
    filters: np.ndarray
    output_weights: np.ndarray

    @property
    def n_filters(self):
        """m, the number of filters (hidden channels)."""
        return self.filters.shape[0]

    @property
    def patch_size(self):
        """h, entries per patch the network expects (without the bias entry)."""
        return self.filters.shape[1] - int(self.bias)

    def _design(self, patches):
        P = check_patches(patches).astype(np.float64, copy=False)
        if P.shape[2] != self.patch_size:
            raise ValueError(
                f"patches have h = {P.shape[2]} entries but the network's filters expect {self.patch_size}"
            )
        return add_patch_bias(P) if self.bias else P

    def _penalty(self):
        return 0.5 * (float(np.sum(self.filters**2)) + float(np.sum(self.output_weights**2)))

    def objective(self, patches, y, beta, loss="squared"):
        """Non-convex objective ``L(predict(patches), y) + beta/2 * (||filters||^2 + ||output_weights||^2)``.

        Parameters
        ----------
        patches : array (n, K, h)
        y : array of :meth:`predict`'s shape
            Targets as for :func:`convexnn.solve` (real, {-1, +1} or one-hot; per-patch outputs are flattened
            sample-major to n*K rows).
        beta : float >= 0
        loss : {"squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}

        Returns
        -------
        float
        """
        check_choice(loss, "loss", LOSSES)
        beta = check_scalar(beta, "beta", low=0.0)
        pred = np.asarray(self.predict(patches), dtype=np.float64)
        rows = pred.shape[0] * (pred.shape[1] if getattr(self, "pooling", "sum") == "none" else 1)
        pred = pred.reshape(rows, -1)
        Y, _ = check_y(np.asarray(y).reshape(rows, -1), rows, loss)
        if Y.shape != pred.shape:
            raise ValueError(f"y has shape {np.shape(y)} but the network predicts {pred.shape}")
        data = _core.loss_value(np.ascontiguousarray(pred), Y, loss)
        return float(data + beta * self._penalty())


class LinearCNN(_CNNBase):
    """Two-layer linear CNN f = sum_j sum_k (X_k u_j) alpha_jk (eq. (9) of Pilanci & Ergen, ICML 2020).

    Parameters
    ----------
    filters : array (m, h[+1])
        u_j, one filter per row.
    output_weights : array (m, K) or (m, K, c)
        alpha_jk (scalar output) or alpha_jk in R^c (vector output, Appendix A.7).
    bias : bool
        Filters have a last entry multiplying a ones entry of every patch.
    """

    def __init__(self, filters, output_weights, bias=False):
        self.filters, self.output_weights = _weights(filters, output_weights)
        if self.output_weights.ndim not in (2, 3):
            raise ValueError(f"output_weights must have shape (m, K) or (m, K, c); got {self.output_weights.shape}")
        self.bias = bool(bias)

    @property
    def n_patches(self):
        """K, the number of patch positions."""
        return self.output_weights.shape[1]

    def predict(self, patches):
        """Outputs of shape (n,) (or (n, c) for vector outputs)."""
        P = self._design(patches)
        if P.shape[1] != self.n_patches:
            raise ValueError(f"patches have K = {P.shape[1]} positions but the network has {self.n_patches}")
        A = self.output_weights if self.output_weights.ndim == 3 else self.output_weights[:, :, None]
        out = np.einsum("nkh,mh,mkc->nc", P, self.filters, A, optimize=True)
        return out[:, 0] if self.output_weights.ndim == 2 else out

    def __repr__(self):
        return f"LinearCNN(n_filters={self.n_filters}, patch_size={self.patch_size}, n_patches={self.n_patches})"


class ReLUCNN(_CNNBase):
    """Two-layer ReLU CNN over patches.

    ``pooling="sum"``: f(x) = sum_j sum_k (X_k u_j)_+ alpha_j (Pilanci & Ergen, ICML 2020, Appendix A.1; sum
    pooling), output (n,) or (n, c). ``pooling="none"``: one output per patch, f_k(x) = sum_j (X_k u_j)_+ alpha_j
    (Section 4.1), output (n, K) or (n, K, c).

    Parameters
    ----------
    filters : array (m, h[+1])
    output_weights : array (m,) or (m, c)
    pooling : {"sum", "none"}
    bias : bool
    """

    def __init__(self, filters, output_weights, pooling="sum", bias=False):
        self.filters, self.output_weights = _weights(filters, output_weights)
        if self.output_weights.ndim not in (1, 2):
            raise ValueError(f"output_weights must have shape (m,) or (m, c); got {self.output_weights.shape}")
        self.pooling = check_choice(pooling, "pooling", POOLINGS)
        self.bias = bool(bias)

    def _activations(self, P):
        return np.maximum(P @ self.filters.T, 0.0)  # (n, K, m)

    def predict(self, patches):
        """Outputs: (n,) / (n, c) for sum pooling, (n, K) / (n, K, c) without pooling."""
        P = self._design(patches)
        H = self._activations(P)
        if self.pooling == "sum":
            H = H.sum(axis=1)  # (n, m)
        if self.n_filters == 0:
            return np.zeros(H.shape[:-1] + self.output_weights.shape[1:])
        return H @ self.output_weights

    def __repr__(self):
        return (
            f"{type(self).__name__}(n_filters={self.n_filters}, patch_size={self.patch_size}, "
            f"pooling={self.pooling!r}, bias={self.bias})"
        )


class GatedReLUCNN(ReLUCNN):
    """Gated-ReLU CNN: ``(X_k u_j)_+`` replaced by ``1[X_k g_j >= 0] * (X_k u_j)`` with fixed gates g_j.

    Parameters
    ----------
    gates : array (h[+1], m)
        Gate vector of every filter.
    filters, output_weights, pooling, bias
        As in :class:`ReLUCNN`.
    """

    def __init__(self, gates, filters, output_weights, pooling="sum", bias=False):
        super().__init__(filters, output_weights, pooling, bias)
        self.gates = np.asarray(gates, dtype=np.float64)
        if self.gates.shape != (self.filters.shape[1], self.filters.shape[0]):
            raise ValueError(
                f"gates must have shape {(self.filters.shape[1], self.filters.shape[0])}; got {self.gates.shape}"
            )

    def _activations(self, P):
        return (P @ self.gates >= 0) * (P @ self.filters.T)

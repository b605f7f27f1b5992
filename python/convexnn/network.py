"""Two-layer networks recovered from convex solutions and their non-convex objective.

The map is Theorem 1 of Pilanci & Ergen, "Neural Networks are Convex Regularizers" (ICML 2020).
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validation import LOSSES, _asarray, add_bias_column, check_bool, check_choice, check_scalar, check_X, check_y


def _real_array(value, name):
    arr = _asarray(value, name)
    if np.iscomplexobj(arr) or arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _as_2d_weights(W1, w2, name_w1="W1", name_w2="w2"):
    W1 = _real_array(W1, name_w1)
    w2 = _real_array(w2, name_w2)
    if W1.ndim != 2:
        raise ValueError(f"{name_w1} must have shape (m, d); got {W1.shape}")
    if w2.ndim not in (1, 2) or w2.shape[0] != W1.shape[0]:
        raise ValueError(f"{name_w2} must have shape (m,) or (m, c) with m = {W1.shape[0]}; got {w2.shape}")
    if not (np.isfinite(W1).all() and np.isfinite(w2).all()):
        raise ValueError(f"{name_w1} and {name_w2} must be finite")
    return W1, w2


class _TwoLayer:
    """Shared plumbing: bias handling, shape checks, objective with weight decay."""

    def __init__(self, W1, w2, bias=False):
        self.W1, self.w2 = _as_2d_weights(W1, w2)
        self.bias = check_bool(bias, "bias")
        if self.bias and self.W1.shape[1] < 2:
            raise ValueError(
                f"with bias=True, W1 needs at least 2 columns (features + the bias column); got {self.W1.shape}"
            )

    @property
    def n_neurons(self):
        return self.W1.shape[0]

    @property
    def n_features(self):
        return self.W1.shape[1] - (1 if self.bias else 0)

    def _design(self, X):
        X = check_X(X)
        Xb = add_bias_column(X) if self.bias else X
        if Xb.shape[1] != self.W1.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but the network expects {self.n_features}")
        return Xb.astype(np.float64, copy=False)

    def _output(self, hidden):
        if self.n_neurons == 0:  # the zero network (beta >= beta_max)
            return np.zeros((hidden.shape[0],) + self.w2.shape[1:])
        out = hidden @ self.w2.reshape(self.n_neurons, -1)
        return out[:, 0] if self.w2.ndim == 1 else out

    def to_torch(self, dtype=None):
        """A ``torch.nn.Module`` whose outputs equal :meth:`predict` (needs PyTorch)."""
        from .export import to_torch

        return to_torch(self, dtype=dtype)

    def objective(self, X, y, beta, loss="squared"):
        """Non-convex training objective L(f(X), y) + beta/2 * (||W1||_F^2 + ||w2||_F^2) (docs/api.md scaling).

        Parameters
        ----------
        X : array of shape (n, d)
        y : array of shape (n,) or (n, c)
        beta : float >= 0
        loss : str

        Returns
        -------
        float
        """
        check_choice(loss, "loss", LOSSES)
        beta = check_scalar(beta, "beta", low=0.0)
        pred = np.asarray(self.predict(X), dtype=np.float64).reshape(len(X), -1)
        Y, _ = check_y(y, pred.shape[0], loss)
        if Y.shape[1] != pred.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} outputs but the network has {pred.shape[1]}")
        data = _core.loss_value(np.ascontiguousarray(pred), Y, loss)
        return float(data + 0.5 * beta * (np.sum(self.W1**2) + np.sum(self.w2**2)))


class Network(_TwoLayer):
    """A plain two-layer ReLU network f(x) = sum_j (x^T W1_j)_+ w2_j.

    Parameters
    ----------
    W1 : array of shape (m, d[+1])
        First-layer weights, one neuron per row (last column multiplies the ones column when ``bias``).
    w2 : array of shape (m,) or (m, c)
        Output weights; with a 1-D ``w2`` :meth:`predict` returns shape (n,).
    bias : bool, default False
        Append a ones column to X before the first layer.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network(np.array([[1.0, 0.0]]), np.array([2.0]))     # f(x) = 2 * max(x_0, 0)
    >>> net.predict(np.array([[3.0, 5.0], [-1.0, 0.0]]))
    array([6., 0.])
    """

    def predict(self, X):
        """Network output, shape (n,) or (n, c)."""
        return self._output(np.maximum(self._design(X) @ self.W1.T, 0.0))

    def __repr__(self):
        return f"Network(n_neurons={self.n_neurons}, n_features={self.n_features}, bias={self.bias})"


class GatedNetwork(_TwoLayer):
    """A gated-ReLU network f(x) = sum_j 1[x^T g_j >= 0] (x^T W1_j) w2_j with fixed gates.

    Parameters
    ----------
    gates : array of shape (d[+1], m)
        Gate vector of each neuron.
    W1 : array of shape (m, d[+1])
        Input weights of each neuron (last column multiplies the ones column when ``bias``).
    w2 : array of shape (m,) or (m, c)
        Output weights; with a 1-D ``w2`` :meth:`predict` returns shape (n,).
    bias : bool, default False
        Append a ones column to X before the gates and the first layer.
    """

    def __init__(self, gates, W1, w2, bias=False):
        super().__init__(W1, w2, bias)
        self.gates = _real_array(gates, "gates")
        if not np.isfinite(self.gates).all():
            raise ValueError("gates must be finite")
        if self.gates.shape != (self.W1.shape[1], self.W1.shape[0]):
            raise ValueError(f"gates must have shape {(self.W1.shape[1], self.W1.shape[0])}; got {self.gates.shape}")

    def predict(self, X):
        """Network output, shape (n,) or (n, c)."""
        Xb = self._design(X)
        return self._output((Xb @ self.gates >= 0) * (Xb @ self.W1.T))

    def __repr__(self):
        return f"GatedNetwork(n_neurons={self.n_neurons}, n_features={self.n_features}, bias={self.bias})"


def neurons_from_blocks(blocks, sign):
    """Theorem-1 neurons of convex blocks (P, d, c): one neuron per nonzero column of each block.

    Returns (rows, W1 (m, d), w2 (m, c)) where rows[j] is the block index of neuron j. For a block column
    v != 0: u = v / sqrt(||v||), alpha = sign * sqrt(||v||) placed in output column k.
    """
    P, d, c = blocks.shape
    norms = np.linalg.norm(blocks, axis=1)  # (P, c)
    idx_p, idx_k = np.nonzero(norms > 0)
    scale = np.sqrt(norms[idx_p, idx_k])
    W1 = blocks[idx_p, :, idx_k] / scale[:, None]
    w2 = np.zeros((len(idx_p), c))
    w2[np.arange(len(idx_p)), idx_k] = sign * scale
    return idx_p, W1, w2

"""Export trained networks to PyTorch (optional dependency, imported only when used).

>>> module = convexnn.export.to_torch(net)            # doctest: +SKIP
>>> module(torch.as_tensor(X)).numpy() ~= net.predict(X)

Precision: a module has the dtype of what it exports (a network's float64 weights; an estimator fit in float32
exports float32) unless ``dtype`` says otherwise, and casts its input to that dtype, so float32 and float64 tensors
(or numpy arrays) both work. Modules return torch tensors. The other way round, ``Network.predict``,
``GatedNetwork.predict`` and the estimators' ``predict`` / ``decision_function`` / ``predict_proba`` read a CPU
torch tensor as a numpy array (detached) and return numpy arrays; a GPU tensor is a TypeError.

The module classes (:class:`TwoLayerReLU`, :class:`GatedTwoLayer`, :class:`Preprocessed`) are created on first
access, so importing convexnn never imports torch; they are ordinary module-level classes afterwards, so
``torch.save(module)`` and pickling work.
"""

from __future__ import annotations

import numpy as np

_TORCH_CLASSES = ("TwoLayerReLU", "GatedTwoLayer", "Preprocessed")


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "to_torch needs PyTorch, which is not installed; install it with `pip install torch` "
            "(see https://pytorch.org for the build matching your CUDA)"
        ) from exc
    return torch


def _build_classes():
    if all(name in globals() for name in _TORCH_CLASSES):
        return {name: globals()[name] for name in _TORCH_CLASSES}
    torch = _torch()
    nn = torch.nn

    class TwoLayerReLU(nn.Module):
        """f(x) = relu(x W1[:, :d]^T + W1[:, d]) w2 (bias column last when ``bias``); output (n,) for 1-D w2."""

        def __init__(self, W1, w2, bias, dtype=torch.float64):
            super().__init__()
            W1, w2_2d = np.asarray(W1, dtype=np.float64), np.asarray(w2, dtype=np.float64).reshape(len(W1), -1)
            d_in = W1.shape[1] - int(bias)
            self.squeeze_output = np.ndim(w2) == 1
            self.hidden = nn.Linear(d_in, W1.shape[0], bias=bool(bias), dtype=dtype)
            self.output = nn.Linear(W1.shape[0], w2_2d.shape[1], bias=False, dtype=dtype)
            with torch.no_grad():
                self.hidden.weight.copy_(torch.as_tensor(W1[:, :d_in]))
                if bias:
                    self.hidden.bias.copy_(torch.as_tensor(W1[:, d_in]))
                self.output.weight.copy_(torch.as_tensor(w2_2d.T))

        def forward(self, x):
            x = torch.as_tensor(x, dtype=self.hidden.weight.dtype)  # float32 or float64 input, as predict
            out = self.output(torch.relu(self.hidden(x)))
            return out[:, 0] if self.squeeze_output else out

    class GatedTwoLayer(TwoLayerReLU):
        """f(x) = sum_j 1[x~ g_j >= 0] (x~ W1_j) w2_j with fixed gates (a buffer, not trained); x~ = [x, 1]."""

        def __init__(self, gates, W1, w2, bias, dtype=torch.float64):
            super().__init__(W1, w2, bias, dtype=dtype)
            G = np.asarray(gates, dtype=np.float64)
            d_in = G.shape[0] - int(bias)
            self.register_buffer("gate_weight", torch.as_tensor(G[:d_in].T.copy(), dtype=dtype))
            self.register_buffer("gate_bias", torch.as_tensor(G[d_in] if bias else np.zeros(G.shape[1]), dtype=dtype))

        def forward(self, x):
            x = torch.as_tensor(x, dtype=self.hidden.weight.dtype)
            active = (x @ self.gate_weight.T + self.gate_bias >= 0).to(x.dtype)
            out = self.output(active * self.hidden(x))
            return out[:, 0] if self.squeeze_output else out

    class Preprocessed(nn.Module):
        """x -> network((x - mean) / scale) + offset (an estimator's standardization and y centering)."""

        def __init__(self, network, mean, scale, offset, dtype=torch.float64):
            super().__init__()
            self.network = network
            self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float64), dtype=dtype))
            self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float64), dtype=dtype))
            self.register_buffer("offset", torch.as_tensor(np.asarray(offset, dtype=np.float64), dtype=dtype))

        def forward(self, x):
            x = torch.as_tensor(x, dtype=self.mean.dtype)
            return self.network((x - self.mean) / self.scale) + self.offset

    out = {}
    for cls in (TwoLayerReLU, GatedTwoLayer, Preprocessed):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
        out[cls.__name__] = cls
    globals().update(out)  # later lookups (and unpickling) find them as plain module attributes
    return out


def __getattr__(name):
    if name in _TORCH_CLASSES:
        return _build_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dtype(dtype, default=np.float64):
    torch = _torch()
    if dtype is None:
        dtype = default
    if isinstance(dtype, torch.dtype):
        return dtype
    mapping = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
    try:
        return mapping[np.dtype(dtype)]
    except (TypeError, KeyError):
        raise ValueError(f"dtype must be None, float32 or float64 (numpy or torch); got {dtype!r}") from None


def to_torch(net, dtype=None):
    """A ``torch.nn.Module`` with the outputs of ``net.predict``.

    Parameters
    ----------
    net : Network or GatedNetwork
    dtype : None, float32 or float64 (numpy or torch dtypes)
        None: the network's dtype (``net.dtype`` where it has one, else float64, the dtype of its weights).

    Returns
    -------
    TwoLayerReLU or GatedTwoLayer
        Takes a tensor of shape (n, d) (without the bias column) and returns (n,) or (n, c) like ``predict``.
        Weights are trainable parameters; gates are fixed buffers.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    """
    from .network import GatedNetwork, Network

    torch_dtype = _dtype(dtype, getattr(net, "dtype", np.float64))
    classes = _build_classes()
    if isinstance(net, GatedNetwork):
        return classes["GatedTwoLayer"](net.gates, net.W1, net.w2, net.bias, dtype=torch_dtype)
    if isinstance(net, Network):
        return classes["TwoLayerReLU"](net.W1, net.w2, net.bias, dtype=torch_dtype)
    raise TypeError(f"to_torch expects a convexnn Network or GatedNetwork; got {type(net).__name__}")


def estimator_dtype(estimator):
    """The precision a fitted estimator computed in: its solve's dtype, else its ``dtype`` parameter, else float64."""
    result = getattr(estimator, "result_", None)
    if getattr(result, "dtype", None) is not None:
        return np.dtype(result.dtype)
    if getattr(estimator, "dtype", None) is not None:
        return np.dtype(estimator.dtype)
    return np.dtype(np.float64)


def estimator_to_torch(estimator, dtype=None):
    """A module computing a fitted estimator's raw output on raw X.

    The regressor's ``predict``, the classifier's network scores (``decision_function`` for two classes with a
    binary loss; one logit per class otherwise).

    Parameters
    ----------
    estimator : fitted ConvexReLURegressor or ConvexReLUClassifier
    dtype : None, float32 or float64 (numpy or torch dtypes)
        None: the estimator's (:func:`estimator_dtype`: float32 for a model fit in float32).

    Returns
    -------
    Preprocessed
        Takes a tensor (n, d) of raw features, returns (n,) or (n, c).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "network_")
    torch_dtype = _dtype(dtype, estimator_dtype(estimator))
    inner = to_torch(estimator.network_, dtype=torch_dtype)
    offset = getattr(estimator, "y_mean_", 0.0)
    return _build_classes()["Preprocessed"](inner, estimator.x_mean_, estimator.x_scale_, offset, dtype=torch_dtype)

"""Export BN networks to PyTorch: ``nn.Sequential(Linear, BatchNorm1d, ReLU, Linear)`` (optional dependency).

The paper's BN (Ergen et al., ICLR 2022, eq. 2) divides the centered pre-activation by its Euclidean norm and
shifts by alpha/sqrt(n); PyTorch's ``BatchNorm1d`` divides by ``sqrt(var + eps)`` with the biased batch variance.
With ``weight = gamma/sqrt(n)`` and ``bias = alpha/sqrt(n)`` they agree for eps = 0. For PyTorch's eps > 0 every
non-constant first-layer row is rescaled (BN is invariant to that scale) so that its training variance is
``1e12 * eps``, making the eps term a relative perturbation of ~5e-13. Constant neurons (w = 0) output
``bias = alpha / sqrt(n)`` exactly, as in the paper. The running statistics are set to the full-training-set
statistics and ``momentum=0.0`` keeps them there (a train-mode forward does not update them), so ``eval()`` mode
reproduces :meth:`BNReLUNetwork.predict` and ``train()`` mode on the training batch reproduces
:meth:`BNReLUNetwork.forward`, in either order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_torch", "torch_parameters"]

_VARIANCE_TARGET = 1e12


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "convexnn.bn.export.to_torch needs PyTorch, which is not installed; install it with "
            "`pip install torch` (see https://pytorch.org)"
        ) from exc
    return torch


def to_torch(net, X_train=None, eps: float = 1e-5, dtype=None):
    """A ``torch.nn.Sequential`` computing the BN network ``net``.

    Parameters
    ----------
    net : BNReLUNetwork
    X_train : array of shape (n, d) or None
        Training batch for the statistics (default: the statistics stored in ``net``).
    eps : float >= 0
        ``BatchNorm1d``'s eps.
    dtype : None (float64), numpy or torch float dtype

    Returns
    -------
    torch.nn.Sequential
        ``Linear(d, m, bias=False), BatchNorm1d(m), ReLU(), Linear(m, c, bias=False)`` (plus ``Flatten(0)`` for a
        1-D ``w2``, so the output has shape (n,)).

    Raises
    ------
    ImportError
        PyTorch is not installed.
    ValueError
        ``net`` has no statistics and no ``X_train`` is given.
    """
    from .layer import BNReLUNetwork

    if not isinstance(net, BNReLUNetwork):
        raise TypeError(f"to_torch expects a BNReLUNetwork; got {type(net).__name__}")
    torch = _torch()
    if X_train is not None:
        net = net.with_statistics(X_train)
    if dtype is None:
        tdtype = torch.float64
    elif isinstance(dtype, torch.dtype):
        tdtype = dtype
    else:
        try:
            tdtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}.get(np.dtype(dtype))
        except TypeError:
            tdtype = None
    if tdtype is None:
        raise ValueError(f"dtype must be None, float32 or float64; got {dtype!r}")
    params = torch_parameters(net, eps)
    m, d = net.W1.shape
    W2 = net.w2.reshape(m, -1)
    nn = torch.nn
    layers = [
        nn.Linear(d, m, bias=False, dtype=tdtype),
        # momentum 0: a train-mode forward leaves the running statistics (the full-training-set ones) unchanged;
        # PyTorch's default 0.1 would blend in the batch's UNBIASED variance and break eval() afterwards.
        nn.BatchNorm1d(m, eps=float(eps), momentum=0.0, dtype=tdtype),
        nn.ReLU(),
        nn.Linear(m, W2.shape[1], bias=False, dtype=tdtype),
    ]
    if net.w2.ndim == 1:
        layers.append(nn.Flatten(0))
    with torch.no_grad():
        layers[0].weight.copy_(torch.as_tensor(params["linear1.weight"]))
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(layers[1], name).copy_(torch.as_tensor(params[f"bn.{name}"]))
        layers[3].weight.copy_(torch.as_tensor(params["linear2.weight"]))
    return nn.Sequential(*layers)


def torch_parameters(net, eps: float = 1e-5) -> dict:
    """The parameters :func:`to_torch` loads, as numpy arrays (no PyTorch needed).

    Parameters
    ----------
    net : BNReLUNetwork
        With training statistics.
    eps : float >= 0
        ``BatchNorm1d``'s eps.

    Returns
    -------
    dict
        ``linear1.weight`` (m, d), ``bn.weight``, ``bn.bias``, ``bn.running_mean``, ``bn.running_var`` (m,),
        ``linear2.weight`` (c, m).
    """
    from .._validation import check_scalar

    eps = check_scalar(eps, "eps", low=0.0)
    if net.stats is None:
        raise ValueError("net has no training statistics: pass X_train (or build it with with_statistics)")
    mean, norm, n = net.stats
    var = norm**2 / n
    if eps == 0:
        if (var == 0).any():
            raise ValueError(
                "eps = 0 makes PyTorch's BatchNorm1d return NaN for the network's constant neurons (w = 0); use eps > 0"
            )
        scale = np.ones(net.n_neurons)
    else:
        scale = np.where(var > 0, np.sqrt(_VARIANCE_TARGET * eps / np.where(var > 0, var, 1.0)), 0.0)
    root = np.sqrt(float(n))
    return {
        "linear1.weight": net.W1 * scale[:, None],
        "bn.weight": net.gamma / root,
        "bn.bias": net.alpha / root,
        "bn.running_mean": mean * scale,
        "bn.running_var": var * scale**2,
        "linear2.weight": net.w2.reshape(net.n_neurons, -1).T.copy(),
    }

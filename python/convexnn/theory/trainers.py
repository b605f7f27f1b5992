"""Gradient training of the (non-convex) networks the closed forms describe, and structural diagnostics.

:func:`train` minimizes the weight-decay objective ``L(f(X), y) + beta/2 sum_l ||W_l||_F^2`` (library scaling:
a SUM over samples; biases unregularized) of an :class:`~convexnn.theory.MLP` or a
:class:`~convexnn.theory.ParallelMLP` by gradient descent / SGD with (heavy-ball) momentum or L-BFGS, in NumPy
(``backend="torch"`` uses PyTorch autograd when it is installed).  These are the trainers of the experiments of
Ergen & Pilanci (ICML 2021, Sec. 5: "GD" and "SGD with momentum"; JMLR 2021, Figs. 8-12); a closed form is
globally optimal, so no run may end below it.

Diagnostics (ICML 2021 Figs. 2-3, 5): :func:`layer_ranks` (thresholded singular values), :func:`layer_norms`
(operator and Frobenius norms), :func:`alignment` (``|V_l^T U_{l+1}|`` of consecutive layers) and
:func:`neuron_projections` (normalized neurons on the right singular vectors of a matrix).
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .. import _core
from .._validation import LOSSES, check_choice, check_scalar, check_X, check_y
from .models import MLP, ParallelMLP

OPTIMIZERS = ("gd", "sgd", "lbfgs")


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the trained network, its objective, a history and a status.

    Attributes
    ----------
    network : MLP or ParallelMLP
    objective : float
        Full-data weight-decay objective at the returned weights.
    history : list of dict
        ``{"iter", "time", "objective"}``.
    n_iter : int
    status : str
        "max_iter", "converged" (L-BFGS) or "diverged" (the last finite weights are returned).
    """

    network: object
    objective: float
    n_iter: int
    status: str
    history: list = field(default_factory=list)


def _forward_backward(W, b, act, X, Y, beta, loss, masks, scale=1.0):
    """Objective and gradients of an MLP given as lists (W, b)."""
    A, Zs = [X], []
    for Wl, bl in zip(W[:-1], b):
        Z = A[-1] @ Wl + (bl if bl is not None else 0.0)
        Zs.append(Z)
        A.append(np.maximum(Z, 0.0) if act == "relu" else Z)
    F = np.ascontiguousarray(A[-1] @ W[-1])
    value = float(_core.loss_value(F, Y, loss)) * scale
    G = np.asarray(_core.loss_gradient(F, Y, loss)) * scale
    gW, gb = [None] * len(W), [None] * len(b)
    dA = G
    for l in range(len(W) - 1, -1, -1):
        if l < len(W) - 1:
            dZ = dA * (Zs[l] > 0) if act == "relu" else dA
            if b[l] is not None:
                gb[l] = dZ.sum(axis=0)
        else:
            dZ = dA
        gW[l] = A[l].T @ dZ + beta * W[l]
        if masks is not None:
            gW[l] *= masks[l]
        dA = dZ @ W[l].T
    value += 0.5 * beta * sum(float(np.sum(w * w)) for w in W)
    return value, gW, gb


def _as_mlp(net):
    if isinstance(net, ParallelMLP):
        mlp = net.to_mlp()
        ones = ParallelMLP(
            [[np.ones_like(W) for W in t] for t in net.towers], np.ones_like(net.output), net.activation
        ).to_mlp()
        return mlp, [m if 0 < l < mlp.depth - 1 else np.ones_like(m) for l, m in enumerate(ones.weights)]
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an MLP or a ParallelMLP; got {type(net).__name__}")
    return net, None


def _back_to(net, W, b):
    """Rebuild a network of net's type from trained lists."""
    if isinstance(net, ParallelMLP):
        m, L = net.n_towers, net.depth
        sizes = [[t[l].shape for t in net.towers] for l in range(L - 1)]
        towers = [[] for _ in range(m)]
        for l in range(L - 1):
            r = c = 0
            for j, (p, q) in enumerate(sizes[l]):
                if l == 0:
                    towers[j].append(W[0][:, c : c + q].copy())
                else:
                    towers[j].append(W[l][r : r + p, c : c + q].copy())
                r, c = r + p, c + q
        return ParallelMLP(towers, W[-1][:, 0] if net.output_1d else W[-1], net.activation)
    last = W[-1][:, 0] if net.output_1d else W[-1]
    return MLP(W[:-1] + [last], b, net.activation)


def train(
    net,
    X,
    y,
    beta: float,
    loss: str = "squared",
    optimizer: str = "gd",
    lr: float = 0.1,
    n_iter: int = 1000,
    momentum: float = 0.0,
    batch_size: int | None = None,
    seed: int = 0,
    record_every: int = 10,
    backend: str = "numpy",
) -> TrainResult:
    """Train ``net`` on ``L(f(X), y) + beta/2 sum_l ||W_l||_F^2`` from its current weights.

    Parameters
    ----------
    net : MLP or ParallelMLP
        Starting point (not modified); a ParallelMLP is trained as its block-diagonal MLP with the zero blocks held
        at zero.
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float >= 0
    loss : str
        A library loss.
    optimizer : {"gd", "sgd", "lbfgs"}
        "gd": full-batch steps, "sgd": minibatches of ``batch_size`` (gradients scaled by n / batch); both use
        heavy-ball ``momentum``.  Steps are ``lr / n`` times the gradient of the summed objective (``lr`` is the step
        on the mean loss).  "lbfgs": SciPy L-BFGS for ``n_iter`` iterations.
    lr : float > 0
    n_iter : int
        Steps (gd), epochs (sgd) or L-BFGS iterations.
    momentum : float in [0, 1)
    batch_size : int, optional
    seed : int
        Minibatch order.
    record_every : int
    backend : {"numpy", "torch"}
        "torch" needs PyTorch (ImportError otherwise); gd / sgd only.

    Returns
    -------
    TrainResult
    """
    loss = check_choice(loss, "loss", LOSSES)
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    backend = check_choice(backend, "backend", ("numpy", "torch"))
    beta = check_scalar(beta, "beta", low=0.0)
    lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    n_iter = check_scalar(n_iter, "n_iter", low=1, integer=True)
    momentum = check_scalar(momentum, "momentum", low=0.0, high=0.999999)
    record_every = check_scalar(record_every, "record_every", low=1, integer=True)
    X = np.ascontiguousarray(check_X(X), dtype=np.float64)
    Y, _ = check_y(y, X.shape[0], loss)
    mlp, masks = _as_mlp(net)
    if X.shape[1] != mlp.weights[0].shape[0]:
        raise ValueError(f"X has {X.shape[1]} features but the network expects {mlp.weights[0].shape[0]}")
    if Y.shape[1] != mlp.weights[-1].shape[1]:
        raise ValueError(f"y has {Y.shape[1]} outputs but the network has {mlp.weights[-1].shape[1]}")
    W = [w.copy() for w in mlp.weights]
    b = [None if v is None else v.copy() for v in mlp.biases]
    first_order_args = (
        W,
        b,
        mlp.activation,
        X,
        Y,
        beta,
        loss,
        masks,
        optimizer,
        lr,
        n_iter,
        momentum,
        batch_size,
        seed,
        record_every,
    )
    if backend == "torch":
        from ._torch import train_torch

        W, b, hist, status = train_torch(*first_order_args)
    elif optimizer == "lbfgs":
        W, b, hist, status = _lbfgs(W, b, mlp.activation, X, Y, beta, loss, masks, n_iter)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            W, b, hist, status = _momentum(*first_order_args)
    if status == "diverged":
        warnings.warn(
            f"train: the objective became non-finite (lr={lr:g} too large?); the last finite weights are returned",
            RuntimeWarning,
            stacklevel=2,
        )
    out = _back_to(net, W, b)
    value = _forward_backward(W, b, mlp.activation, X, Y, beta, loss, masks)[0]
    return TrainResult(out, float(value), hist[-1]["iter"] if hist else 0, status, hist)


def _momentum(W, b, act, X, Y, beta, loss, masks, optimizer, lr, n_iter, momentum, batch_size, seed, record_every):
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    bs = (
        n
        if optimizer == "gd" or batch_size is None
        else min(check_scalar(batch_size, "batch_size", low=1, integer=True), n)
    )
    vW = [np.zeros_like(w) for w in W]
    vb = [None if v is None else np.zeros_like(v) for v in b]
    hist, t0, status = [], _time.perf_counter(), "max_iter"
    last = ([w.copy() for w in W], [None if v is None else v.copy() for v in b])
    for it in range(1, n_iter + 1):
        order = rng.permutation(n) if bs < n else np.arange(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            _, gW, gb = _forward_backward(W, b, act, X[idx], Y[idx], beta * len(idx) / n, loss, masks)
            for l in range(len(W)):
                vW[l] = momentum * vW[l] - (lr / len(idx)) * gW[l]
                W[l] += vW[l]
            for l in range(len(b)):
                if b[l] is not None:
                    vb[l] = momentum * vb[l] - (lr / len(idx)) * gb[l]
                    b[l] += vb[l]
        if it % record_every == 0 or it == n_iter:
            F = _forward_backward(W, b, act, X, Y, beta, loss, masks)[0]
            if not np.isfinite(F):
                status = "diverged"
                W, b = last
                break
            last = ([w.copy() for w in W], [None if v is None else v.copy() for v in b])
            hist.append({"iter": it, "time": _time.perf_counter() - t0, "objective": F})
    return W, b, hist, status


def _lbfgs(W, b, act, X, Y, beta, loss, masks, n_iter):
    shapes = [w.shape for w in W] + [v.shape for v in b if v is not None]
    bias_idx = [l for l, v in enumerate(b) if v is not None]

    def unpack(theta):
        out, k = [], 0
        for s in shapes:
            size = int(np.prod(s))
            out.append(theta[k : k + size].reshape(s))
            k += size
        Wl = out[: len(W)]
        bl = [None] * len(b)
        for j, l in enumerate(bias_idx):
            bl[l] = out[len(W) + j]
        return Wl, bl

    hist, t0 = [], _time.perf_counter()

    def fun(theta):
        Wl, bl = unpack(theta)
        value, gW, gb = _forward_backward(Wl, bl, act, X, Y, beta, loss, masks)
        grads = gW + [gb[l] for l in bias_idx]
        return value, np.concatenate([g.ravel() for g in grads])

    def callback(theta):
        hist.append({"iter": len(hist) + 1, "time": _time.perf_counter() - t0, "objective": fun(theta)[0]})

    theta0 = np.concatenate([w.ravel() for w in W] + [b[l].ravel() for l in bias_idx])
    res = minimize(
        fun,
        theta0,
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": n_iter, "gtol": 1e-12, "ftol": 1e-15, "maxcor": 30},
    )
    Wl, bl = unpack(res.x)
    return (
        [w.copy() for w in Wl],
        [None if v is None else v.copy() for v in bl],
        hist,
        "converged" if res.success else "max_iter",
    )


def _weights(net):
    return net.to_mlp().weights if isinstance(net, ParallelMLP) else net.weights


def layer_ranks(net, rtol: float = 1e-3, atol: float = 0.0) -> np.ndarray:
    """Rank of every layer: #singular values above ``max(rtol * sigma_max, atol)`` (ICML 2021 Figs. 2b, 3b).

    ``atol`` makes a layer that decayed to (numerically) zero count as rank 0.
    """
    rtol = check_scalar(rtol, "rtol", low=0.0)
    atol = check_scalar(atol, "atol", low=0.0)
    out = []
    for W in _weights(net):
        s = np.linalg.svd(W, compute_uv=False)
        out.append(int(np.sum(s > max(rtol * s.max(), atol))) if s.size and s.max() > 0 else 0)
    return np.array(out)


def layer_norms(net) -> dict:
    """``{"operator": (L,), "frobenius": (L,)}`` norms of the layers (ICML 2021 Prop. 3.1, Fig. 3a)."""
    Ws = _weights(net)
    return {
        "operator": np.array([np.linalg.norm(W, 2) for W in Ws]),
        "frobenius": np.array([np.linalg.norm(W) for W in Ws]),
    }


def alignment(net, rank: int | None = None) -> list:
    """``|V_l^T U_{l+1}|`` for consecutive layers, on their top ``rank`` singular vectors (default: each layer's
    :func:`layer_ranks`, the smaller of the two).  Identity matrices mean aligned layers (ICML 2021 Thm 3.1, 3.4)."""
    Ws = _weights(net)
    ranks = layer_ranks(net)
    out = []
    for l in range(len(Ws) - 1):
        r = min(ranks[l], ranks[l + 1]) if rank is None else check_scalar(rank, "rank", low=1, integer=True)
        V = np.linalg.svd(Ws[l])[2][:r].T
        U = np.linalg.svd(Ws[l + 1])[0][:, :r]
        out.append(np.abs(V.T @ U))
    return out


def neuron_projections(W1, M) -> np.ndarray:
    """|projection| of every normalized neuron (column of W1, (d, m)) on the right singular vectors of M (., d).

    Returns (m, r): entry (j, i) = |v_i^T w_j| / ||w_j|| (ICML 2021 appendix Fig. 5a: neurons align with the
    first right singular vectors of the optimal end-to-end map).
    """
    W1 = np.asarray(W1, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    if W1.ndim != 2 or M.ndim != 2 or M.shape[1] != W1.shape[0]:
        raise ValueError(f"W1 must be (d, m) and M (k, d) with the same d; got {W1.shape} and {M.shape}")
    V = np.linalg.svd(M, full_matrices=False)[2]
    nrm = np.linalg.norm(W1, axis=0)
    Wn = np.divide(W1, nrm, out=np.zeros_like(W1), where=nrm > 0)
    return np.abs(Wn.T @ V.T)

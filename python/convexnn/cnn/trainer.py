"""The usual way, for comparison: train a two-layer CNN on its non-convex objective with Adam or SGD (NumPy).

Models and objective as in :mod:`convexnn.cnn.network` (a SUM over samples plus weight decay
``beta/2 * (||filters||^2 + ||output weights||^2)``):

* ``model="linear"``: f = sum_j sum_k X_k u_j alpha_jk (Pilanci & Ergen, ICML 2020, eq. (9); vector outputs A.7);
* ``model="relu"``, ``pooling="sum"``: f = sum_j sum_k (X_k u_j)_+ alpha_j (Appendix A.1);
* ``model="relu"``, ``pooling="none"``: per-patch outputs f_k = sum_j (X_k u_j)_+ alpha_j (Section 4.1).

Minibatch gradients are scaled by n / batch, so they are unbiased for the gradient of the full objective.
SGD steps are ``lr / n`` times that gradient (``lr`` is the step on the mean loss); Adam steps are ``lr`` in
parameter units. ``backend="torch"`` runs the same training with PyTorch autograd when it is installed.
"""

from __future__ import annotations

import contextlib
import time as _time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import LOSSES, check_choice, check_scalar, check_y
from ..nonconvex import loss_and_grad
from .network import POOLINGS, LinearCNN, ReLUCNN, add_patch_bias
from .patches import check_patches

__all__ = ["CNNTrainingResult", "train_cnn"]

MODELS = ("linear", "relu")
OPTIMIZERS = ("adam", "sgd")
BACKENDS = ("numpy", "torch")


@dataclass
class CNNTrainingResult:
    """Outcome of :func:`train_cnn`.

    Attributes
    ----------
    network : LinearCNN or ReLUCNN
    objective : float
        Full non-convex objective at the returned weights.
    n_iter : int
        Optimizer steps.
    time : float
        Training seconds (full-objective evaluations for the history excluded).
    status : str
        "max_iter", "time_limit" or "diverged" (then the last finite weights are returned).
    history : list of dict
        ``{"iter", "epoch", "time", "objective"}`` at every recorded epoch.
    """

    network: object
    objective: float
    n_iter: int
    time: float
    status: str
    history: list = field(default_factory=list)

    def times_objectives(self):
        """(times, objectives) arrays of the history, for plotting."""
        return (np.array([h["time"] for h in self.history]), np.array([h["objective"] for h in self.history]))


def _forward_backward(model, pooling, P, Y, U, A, beta, loss, scale):
    """Objective (loss times ``scale``) and gradients (dU, dA) of one batch. P (b, K, h), U (m, h)."""
    H = P @ U.T  # (b, K, m)
    if model == "linear":
        Z = np.einsum("bkm,mkc->bc", H, A, optimize=True)
        value, G = loss_and_grad(Z, Y, loss)
        G *= scale
        dA = np.einsum("bkm,bc->mkc", H, G, optimize=True)
        dH = np.einsum("bc,mkc->bkm", G, A, optimize=True)
    elif pooling == "sum":
        S = np.maximum(H, 0.0).sum(axis=1)  # (b, m)
        value, G = loss_and_grad(S @ A, Y, loss)
        G *= scale
        dA = S.T @ G
        dH = (H > 0) * (G @ A.T)[:, None, :]
    else:
        Act = np.maximum(H, 0.0)
        b, K, m = Act.shape
        value, G = loss_and_grad(Act.reshape(b * K, m) @ A, Y, loss)  # Y: (b K, c)
        G *= scale
        dA = Act.reshape(b * K, m).T @ G
        dH = (H > 0) * (G @ A.T).reshape(b, K, m)
    dU = np.einsum("bkm,bkh->mh", dH, P, optimize=True)
    penalty = 0.5 * beta * (float(np.sum(U * U)) + float(np.sum(A * A)))
    return scale * value + penalty, dU + beta * U, dA + beta * A


def _rows(model, pooling, Y, idx, K):
    """Targets of the samples ``idx``: (b, c), or (b K, c) for per-patch outputs."""
    if model == "relu" and pooling == "none":
        return Y.reshape(-1, K, Y.shape[1])[idx].reshape(-1, Y.shape[1])
    return Y[idx]


def _check_targets(model, pooling, y, n, K, loss):
    arr = np.asarray(y)
    if model == "relu" and pooling == "none":
        if arr.shape[:2] != (n, K) or arr.ndim not in (2, 3):
            raise ValueError(f"per-patch targets y must have shape ({n}, {K}) or ({n}, {K}, c); got {arr.shape}")
        Y, _ = check_y(arr.reshape(n * K, -1), n * K, loss)
        return Y, arr.ndim == 2
    return check_y(arr, n, loss)


def train_cnn(
    patches,
    y,
    beta,
    n_filters,
    model="relu",
    pooling="sum",
    loss="squared",
    bias=False,
    optimizer="adam",
    lr=1e-2,
    n_epochs=500,
    batch_size=None,
    seed=0,
    time_limit=None,
    record_every=1,
    filters_init=None,
    weights_init=None,
    backend="numpy",
):
    """Train a two-layer CNN with Adam or SGD on its non-convex objective, from a random start.

    Parameters
    ----------
    patches : array (n, K, h)
        Patch matrices (see :func:`convexnn.cnn.extract_patches`).
    y : array
        Targets: (n,) or (n, c) (``model="linear"`` or sum pooling), (n, K) or (n, K, c) (``pooling="none"``).
        Real (squared loss), {-1, +1} (binary losses) or one-hot (cross_entropy).
    beta : float >= 0
        Weight decay: beta/2 * (||filters||^2 + ||output weights||^2).
    n_filters : int >= 1
        m (ignored when ``filters_init`` is given).
    model : {"linear", "relu"}
    pooling : {"sum", "none"}
        ReLU models only.
    loss : {"squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}
    bias : bool
        One bias per filter (a ones entry appended to every patch), weight-decayed.
    optimizer : {"adam", "sgd"}
    lr : float > 0
    n_epochs : int >= 1
    batch_size : int or None
        None: full batch.
    seed : int
        Initialization (filters ~ N(0, 2/h), output weights ~ N(0, 1/(m K))) and minibatch order.
    time_limit : float or None
    record_every : int
        Record the full objective every this many epochs (and at the end).
    filters_init, weights_init : arrays, optional
        Starting weights (m, h[+1]) and (m, K[, c]) (linear) or (m[, c]) (relu).
    backend : {"numpy", "torch"}
        "torch" needs PyTorch (ImportError otherwise).

    Returns
    -------
    CNNTrainingResult
    """
    model = check_choice(model, "model", MODELS)
    pooling = check_choice(pooling, "pooling", POOLINGS)
    loss = check_choice(loss, "loss", LOSSES)
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    backend = check_choice(backend, "backend", BACKENDS)
    beta = check_scalar(beta, "beta", low=0.0)
    lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    n_epochs = check_scalar(n_epochs, "n_epochs", low=1, integer=True)
    record_every = check_scalar(record_every, "record_every", low=1, integer=True)
    seed = check_scalar(seed, "seed", low=0, integer=True)
    time_limit = (
        np.inf
        if time_limit is None
        else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False, allow_inf=True)
    )
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}")
    P = check_patches(patches).astype(np.float64, copy=False)
    if bias:
        P = add_patch_bias(P)
    n, K, h = P.shape
    Y, was_1d = _check_targets(model, pooling, y, n, K, loss)
    c = Y.shape[1]
    batch_size = n if batch_size is None else min(check_scalar(batch_size, "batch_size", low=1, integer=True), n)
    rng = np.random.default_rng(seed)
    U, A = _initial_weights(model, filters_init, weights_init, n_filters, h, K, c, rng)
    if backend == "torch":
        from ._torch_trainer import train_torch

        U, A, history, step, status, train_time = train_torch(
            model, pooling, P, Y, U, A, beta, loss, optimizer, lr, n_epochs, batch_size, rng, time_limit, record_every
        )
    else:
        U, A, history, step, status, train_time = _train_numpy(
            model, pooling, P, Y, U, A, beta, loss, optimizer, lr, n_epochs, batch_size, rng, time_limit, record_every
        )
    F = _forward_backward(model, pooling, P, Y, U, A, beta, loss, 1.0)[0]
    if model == "linear":
        net = LinearCNN(U, A[:, :, 0] if was_1d else A, bias=bias)
    else:
        net = ReLUCNN(U, A[:, 0] if was_1d else A, pooling=pooling, bias=bias)
    return CNNTrainingResult(
        network=net, objective=float(F), n_iter=step, time=train_time, status=status, history=history
    )


def _initial_weights(model, filters_init, weights_init, n_filters, h, K, c, rng):
    if filters_init is not None:
        U = np.array(filters_init, dtype=np.float64)
        if U.ndim != 2 or U.shape[1] != h:
            raise ValueError(f"filters_init must have shape (m, {h}); got {U.shape}")
    else:
        m = check_scalar(n_filters, "n_filters", low=1, integer=True)
        U = rng.standard_normal((m, h)) * np.sqrt(2.0 / h)
    m = U.shape[0]
    shape = (m, K, c) if model == "linear" else (m, c)
    if weights_init is not None:
        A = np.array(weights_init, dtype=np.float64).reshape(shape)
    else:
        A = rng.standard_normal(shape) / np.sqrt(m * (K if model == "linear" else 1))
    if not (np.isfinite(U).all() and np.isfinite(A).all()):
        raise ValueError("filters_init and weights_init must be finite")
    return U, A


def _train_numpy(
    model, pooling, P, Y, U, A, beta, loss, optimizer, lr, n_epochs, batch_size, rng, time_limit, record_every
):
    n, K, h = P.shape
    params = [U, A]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = int(np.ceil(n / batch_size))
    full = batch_size == n

    def objective():
        return _forward_backward(model, pooling, P, Y, U, A, beta, loss, 1.0)[0]

    history = [{"iter": 0, "epoch": 0, "time": 0.0, "objective": objective()}]
    last_good = (U.copy(), A.copy())
    step, status, train_time = 0, "max_iter", 0.0
    small = batch_size * K * h * U.shape[0] < (1 << 22)
    with threadpool_limits(limits=1, user_api="blas") if small else contextlib.nullcontext():
        for epoch in range(1, n_epochs + 1):
            t0 = _time.perf_counter()
            order = None if full else rng.permutation(n)
            for b in range(steps_per_epoch):
                idx = slice(None) if full else order[b * batch_size : (b + 1) * batch_size]
                Pb = P if full else P[idx]
                Yb = Y if full else _rows(model, pooling, Y, idx, K)
                _, dU, dA = _forward_backward(model, pooling, Pb, Yb, U, A, beta, loss, n / Pb.shape[0])
                step += 1
                for p, g, m1, m2 in zip(params, (dU, dA), first, second):
                    if optimizer == "adam":
                        m1 *= b1
                        m1 += (1 - b1) * g
                        m2 *= b2
                        m2 += (1 - b2) * g * g
                        p -= lr * (m1 / (1 - b1**step)) / (np.sqrt(m2 / (1 - b2**step)) + eps)
                    else:
                        p -= (lr / n) * g
            train_time += _time.perf_counter() - t0
            out_of_time = train_time >= time_limit
            if epoch % record_every == 0 or epoch == n_epochs or out_of_time:
                F = objective()
                if not (np.isfinite(F) and np.isfinite(U).all() and np.isfinite(A).all()):
                    status = "diverged"
                    U[...], A[...] = last_good
                    break
                last_good = (U.copy(), A.copy())
                history.append({"iter": step, "epoch": epoch, "time": train_time, "objective": F})
            if out_of_time:
                status = "time_limit"
                break
    return U, A, history, step, status, train_time

"""The usual way: train the non-convex two-layer network with Adam or SGD (numpy), for comparison.

Objective (the API's scaling: a SUM over samples, the same as :meth:`convexnn.Network.objective`)::

    F(W1, w2) = L(relu(Xb W1^T) w2, y) + beta/2 * (||W1||_F^2 + ||w2||_F^2)

with ``Xb = [X, 1]`` when ``bias=True``. With ``gates`` given, the hidden layer is the gated ReLU
``1[Xb g_j >= 0] * (Xb W1_j)`` with those fixed gates (the non-convex counterpart of ``formulation="gated"``),
whose global optimum equals the convex gated program's on the same gates.

Minibatch gradients are scaled by n / batch so they are unbiased for the gradient of F. SGD steps are
``lr / n`` times the gradient of F (i.e. ``lr`` is the step on the mean loss), Adam steps are ``lr`` in parameter
units (Adam is invariant to the gradient's scale).
"""

from __future__ import annotations

import contextlib
import time as _time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from . import _core
from ._validation import LOSSES, add_bias_column, check_choice, check_scalar, check_X, check_y

OPTIMIZERS = ("adam", "sgd")


def loss_and_grad(Z, Y, loss):
    """Loss value L(Z, Y) (a sum over samples) and its gradient dL/dZ, both in float64.

    Parameters
    ----------
    Z : array (n, c)
        Network outputs.
    Y : array (n, c)
        Targets: real (squared), {-1, +1} with c = 1 (binary losses), one-hot (cross_entropy).
    loss : str

    Returns
    -------
    (float, ndarray (n, c))
        For hinge the subgradient -y * 1[y z < 1].
    """
    check_choice(loss, "loss", LOSSES)
    # The C++ core's losses (one implementation of the math for the convex and the non-convex side).
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    return float(_core.loss_value(Z, Y, loss)), _core.loss_gradient(Z, Y, loss)


# Products of the network's forward/backward pass below this size (rows x neurons x inputs x outputs) run on one
# BLAS thread: measured on diabetes (n = 442, 300 neurons), one evaluation costs 4.5 ms of CPU on one thread
# against 20 ms on two (the threads spin; under load far worse), and 6000 Adam epochs on breast cancer
# (569 x 300 x 31, 5.3e6) took 62 s of CPU on two threads against 5.5 s at 170 neurons on one; larger ones keep
# the library's own threading.
SMALL_PRODUCT = 1 << 24


def small_product_threads(n, m, d, c):
    """A context limiting BLAS to one thread when the network's products are small (see SMALL_PRODUCT)."""
    if n * m * d * max(c, 1) < SMALL_PRODUCT:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def objective_and_grad(Xb, Y, W1, W2, beta, loss, gates=None, scale=1.0, gate_mask=None):
    """F and its gradients for weights W1 (m, d~) and W2 (m, c) on design Xb (n, d~).

    The loss part is multiplied by ``scale`` (n / batch for minibatches). ``gate_mask`` (n, m) bool may give the
    precomputed ``Xb @ gates >= 0``. Returns (F, dW1, dW2).
    """
    H = Xb @ W1.T  # (n, m) pre-activations
    if gates is None and gate_mask is None:
        # The ReLU network: in-place masking, no (n, m) temporaries beyond A and one product (3-4x faster at
        # 300 neurons on diabetes than the np.where form below, which the gated network needs).
        A = np.maximum(H, 0.0)
        value, G = loss_and_grad(A @ W2, Y, loss)
        G *= scale
        dW2 = A.T @ G
        dW2 += beta * W2
        M = G @ W2.T
        M *= H > 0
        dW1 = M.T @ Xb
        dW1 += beta * W1
        return scale * value + 0.5 * beta * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2))), dW1, dW2
    if gate_mask is not None:
        active = gate_mask
    else:
        active = (H > 0) if gates is None else (Xb @ gates >= 0)  # ReLU derivative, or the fixed gates
    A = np.where(active, H, 0.0)
    value, G = loss_and_grad(A @ W2, Y, loss)
    G *= scale
    dW2 = A.T @ G + beta * W2
    dW1 = np.where(active, G @ W2.T, 0.0).T @ Xb + beta * W1
    F = scale * value + 0.5 * beta * (float(np.sum(W1 * W1)) + float(np.sum(W2 * W2)))
    return F, dW1, dW2


@dataclass
class NonconvexResult:
    """Outcome of :func:`train_nonconvex`.

    Attributes
    ----------
    network : Network or GatedNetwork
    objective : float
        F at the returned weights (full data).
    history : list of dict
        ``{"iter", "epoch", "time", "objective"}`` after every recorded step; ``time`` is training time in
        seconds (full-objective evaluations of the minibatch mode are not counted).
    n_iter : int
        Optimizer steps taken.
    time : float
    status : str
        "max_iter" (all epochs ran), "converged" (``tol`` met), "time_limit" or "diverged" (non-finite
        objective; the last finite weights are returned).
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


def train_nonconvex(
    X,
    y,
    beta,
    n_neurons=None,
    loss="squared",
    bias=False,
    gates=None,
    optimizer="adam",
    lr=1e-2,
    n_epochs=500,
    batch_size=None,
    seed=0,
    time_limit=None,
    record_every=1,
    W1_init=None,
    w2_init=None,
    adam_betas=(0.9, 0.999),
    adam_eps=1e-8,
    tol=None,
    patience=10,
):
    """Train a two-layer (gated) ReLU network on F with Adam or SGD from a random start.

    Parameters
    ----------
    X : array (n, d)
    y : array (n,) or (n, c)
        Targets as for :func:`convexnn.solve` (real, {-1, +1} or one-hot).
    beta : float >= 0
        Weight decay: F has beta/2 * (||W1||^2 + ||w2||^2).
    n_neurons : int
        Hidden width m (ignored when ``gates`` or ``W1_init`` is given: then m is their count).
    loss : str
    bias : bool
        Append a ones column to X (the bias weight is weight-decayed like the others).
    gates : array (d[+1], m), optional
        Fixed gates: train the gated ReLU network instead of the ReLU network.
    optimizer : {"adam", "sgd"}
    lr : float > 0
    n_epochs : int
        Passes over the data (full batch: one step per epoch).
    batch_size : int or None
        None: full batch.
    seed : int
        Initialization (W1 ~ N(0, 2/d~), w2 ~ N(0, 1/m)) and minibatch order.
    time_limit : float or None
        Stop after this many seconds of training.
    record_every : int
        Record the full objective every this many epochs (and at the end).
    W1_init, w2_init : arrays (m, d~), (m,) or (m, c), optional
        Starting weights instead of the random ones.
    tol : float > 0 or None
        Stop with status "converged" once the best recorded objective improved by less than ``tol`` (relative)
        over the last ``patience`` records (``patience * record_every`` epochs). None: run all ``n_epochs``.
    patience : int >= 1
        The window of records for ``tol``.

    Returns
    -------
    NonconvexResult
    """
    from .network import GatedNetwork, Network

    loss = check_choice(loss, "loss", LOSSES)
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    beta = check_scalar(beta, "beta", low=0.0)
    lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    n_epochs = check_scalar(n_epochs, "n_epochs", low=1, integer=True)
    record_every = check_scalar(record_every, "record_every", low=1, integer=True)
    seed = check_scalar(seed, "seed", low=0, integer=True)
    if tol is not None:
        tol = check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    patience = check_scalar(patience, "patience", low=1, integer=True)
    time_limit = (
        np.inf
        if time_limit is None
        else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False, allow_inf=True)
    )
    X = check_X(X)
    Y, was_1d = check_y(y, X.shape[0], loss)
    Xb = (add_bias_column(X) if bias else X).astype(np.float64, copy=False)
    n, d_tilde = Xb.shape
    c = Y.shape[1]
    if batch_size is None:
        batch_size = n
    batch_size = min(check_scalar(batch_size, "batch_size", low=1, integer=True), n)

    if gates is not None:
        gates = np.asarray(gates, dtype=np.float64)
        if gates.ndim != 2 or gates.shape[0] != d_tilde or gates.shape[1] == 0:
            raise ValueError(f"gates must have shape ({d_tilde}, m) with m >= 1; got {gates.shape}")
        if not np.isfinite(gates).all():
            raise ValueError("gates contains NaN or Inf")
    rng = np.random.default_rng(seed)
    if W1_init is not None:
        W1 = np.array(W1_init, dtype=np.float64)
        if W1.ndim != 2 or W1.shape[1] != d_tilde:
            raise ValueError(f"W1_init must have shape (m, {d_tilde}); got {W1.shape}")
    else:
        m = gates.shape[1] if gates is not None else n_neurons
        if m is None:
            raise ValueError("n_neurons is required (or gates / W1_init)")
        m = check_scalar(m, "n_neurons", low=1, integer=True)
        W1 = rng.standard_normal((m, d_tilde)) * np.sqrt(2.0 / d_tilde)
    m = W1.shape[0]
    if gates is not None and gates.shape[1] != m:
        raise ValueError(f"gates has {gates.shape[1]} columns but W1_init has {m} neurons")
    if w2_init is not None:
        W2 = np.array(w2_init, dtype=np.float64).reshape(m, -1)
        if W2.shape != (m, c):
            raise ValueError(f"w2_init must have shape ({m},) or ({m}, {c}); got {np.shape(w2_init)}")
    else:
        W2 = rng.standard_normal((m, c)) / np.sqrt(m)
    if not (np.isfinite(W1).all() and np.isfinite(W2).all()):
        raise ValueError("W1_init and w2_init must be finite")

    # Fixed gates: their (n, m) activation pattern never changes, compute it once.
    gate_mask = (Xb @ gates >= 0) if gates is not None else None
    params = [W1, W2]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    b1, b2 = adam_betas
    steps_per_epoch = int(np.ceil(n / batch_size))
    full_batch = batch_size == n

    def full_objective():
        return objective_and_grad(Xb, Y, W1, W2, beta, loss, gates, gate_mask=gate_mask)[0]

    def run():
        history, step, status = [], 0, "max_iter"
        best = (full_objective(), W1.copy(), W2.copy())
        best_trace = [best[0]]  # the best objective at each record, for the tol test
        history.append({"iter": 0, "epoch": 0, "time": 0.0, "objective": best[0]})
        train_time = 0.0
        for epoch in range(1, n_epochs + 1):
            t0 = _time.perf_counter()
            order = None if full_batch else rng.permutation(n)
            for b in range(steps_per_epoch):
                if full_batch:
                    _, dW1, dW2 = objective_and_grad(Xb, Y, W1, W2, beta, loss, gates, gate_mask=gate_mask)
                else:
                    idx = order[b * batch_size : (b + 1) * batch_size]
                    _, dW1, dW2 = objective_and_grad(
                        Xb[idx],
                        Y[idx],
                        W1,
                        W2,
                        beta,
                        loss,
                        gates,
                        scale=n / len(idx),
                        gate_mask=None if gate_mask is None else gate_mask[idx],
                    )
                step += 1
                for p, g, m1, m2 in zip(params, (dW1, dW2), first, second):
                    if optimizer == "adam":
                        m1 *= b1
                        m1 += (1 - b1) * g
                        m2 *= b2
                        m2 += (1 - b2) * g * g
                        p -= lr * (m1 / (1 - b1**step)) / (np.sqrt(m2 / (1 - b2**step)) + adam_eps)
                    else:
                        p -= (lr / n) * g
            train_time += _time.perf_counter() - t0
            record = epoch % record_every == 0 or epoch == n_epochs
            out_of_time = train_time >= time_limit
            if record or out_of_time:
                F = full_objective()
                if not np.isfinite(F) or not (np.isfinite(W1).all() and np.isfinite(W2).all()):
                    status = "diverged"
                    break
                history.append({"iter": step, "epoch": epoch, "time": train_time, "objective": F})
                if F <= best[0]:
                    best = (F, W1.copy(), W2.copy())
                best_trace.append(best[0])
                if (
                    tol is not None
                    and len(best_trace) > patience
                    and best_trace[-1 - patience] - best[0] <= tol * max(abs(best[0]), np.finfo(float).tiny)
                ):
                    status = "converged"
                    break
            if out_of_time:
                status = "time_limit"
                break
        return history, step, status, best, train_time

    with small_product_threads(batch_size, m, d_tilde, c):
        history, step, status, best, train_time = run()
    F, W1_out, W2_out = best if status == "diverged" else (full_objective(), W1, W2)
    w2_out = W2_out[:, 0] if was_1d else W2_out
    net = GatedNetwork(gates, W1_out, w2_out, bias=bias) if gates is not None else Network(W1_out, w2_out, bias=bias)
    return NonconvexResult(
        network=net, objective=float(F), n_iter=step, time=train_time, status=status, history=history
    )

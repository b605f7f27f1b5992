"""Implicit regularization of gradient descent on BN networks (Section 5 of Ergen et al., ICLR 2022).

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022.

* The BN model (9): ``f = sum_j (BN_{gamma_j,alpha_j}(X w_j))_+ w2_j^T`` with weights W1 of shape (m, d).
* The whitened model (16) (Lemma 5.1): ``f = sum_j (U q_j/||q_j|| gamma_j + alpha_j/sqrt(n) 1)_+ w2_j^T`` with
  ``q_j`` in R^r (weight normalization on the whitened data U); ``q_j = S V^T w_j`` gives the same output.
* Gradients of both (Appendix E.2; the printed ``grad_alpha`` misses a 1/sqrt(n) and the pattern is that of the BN
  pre-activation) and gradient descent / Adam on them: no weight decay on W1 / Q (it does not change the infimum),
  ``beta`` on gamma, alpha and w2, i.e. the objective (9) without its W1 term.
* Theorem 5.1: ``S V^T grad_{w_j} L = S^2 grad_{q_j} L`` (the printed last line of Appendix E.2 has S^2 on the wrong
  side): GD on the BN model is GD on the whitened model preconditioned by S^2, so high-variance directions are
  fitted first (:func:`preconditioning_check`).
* The cosine diagnostic (18) per singular direction (:func:`cosine_per_direction`).

Rows are neurons throughout (W1 of shape (m, d), Q of shape (m, r)), as in :class:`convexnn.Network`.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np

from .._validation import LOSSES, check_choice, check_scalar, check_X, check_y
from .layer import BNReLUNetwork
from .whitening import whiten

__all__ = [
    "bn_gradients",
    "whitened_gradients",
    "preconditioning_check",
    "PreconditioningCheck",
    "cosine_per_direction",
    "train_bn",
    "BNTrainResult",
]


def _grads(Z, Y, gamma, alpha, W2, beta, loss):
    """Loss, objective and gradients w.r.t. (Z, gamma, alpha, W2) of the BN layer on pre-activations Z (n, m).

    Z are centered pre-activations (X_0 W1^T or U Q^T); returns (F, dZ, dgamma, dalpha, dW2) where dZ is the
    gradient w.r.t. the *un-normalized* Z (the chain rule through z / ||z||).
    """
    from ..nonconvex import loss_and_grad

    n = Z.shape[0]
    nu = np.linalg.norm(Z, axis=0)
    safe = np.where(nu > 0, nu, 1.0)
    Zhat = np.where(nu > 0, Z / safe, 0.0)
    B = Zhat * gamma + alpha / np.sqrt(n)
    A = np.maximum(B, 0.0)
    value, G = loss_and_grad(A @ W2, Y, loss)  # G = dL/df, (n, c)
    gB = np.where(B > 0, G @ W2.T, 0.0)  # (n, m)
    dgamma = np.sum(Zhat * gB, axis=0) + beta * gamma
    dalpha = gB.sum(axis=0) / np.sqrt(n) + beta * alpha
    dW2 = A.T @ G + beta * W2
    gZhat = gB * gamma
    dZ = np.where(nu > 0, (gZhat - Zhat * np.sum(Zhat * gZhat, axis=0)) / safe, 0.0)
    F = value + 0.5 * beta * (float(np.sum(gamma**2)) + float(np.sum(alpha**2)) + float(np.sum(W2**2)))
    return F, dZ, dgamma, dalpha, dW2


def _as_params(W, gamma, alpha, W2, wname, width):
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] != width:
        raise ValueError(f"{wname} must have shape (m, {width}); got {W.shape}")
    m = W.shape[0]
    gamma = np.asarray(gamma, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if gamma.shape != (m,) or alpha.shape != (m,):
        raise ValueError(f"gamma and alpha must have shape ({m},); got {gamma.shape} and {alpha.shape}")
    W2 = np.asarray(W2, dtype=np.float64)
    W2 = W2.reshape(m, -1) if W2.ndim == 1 else W2
    if W2.ndim != 2 or W2.shape[0] != m:
        raise ValueError(f"W2 must have shape ({m},) or ({m}, c); got {np.shape(W2)}")
    return W, gamma, alpha, W2


def bn_gradients(X, Y, W1, gamma, alpha, W2, beta: float = 0.0, loss: str = "squared"):
    """Objective (9) without its W1 term and its gradients for the BN model (Appendix E.2).

    Parameters
    ----------
    X : array of shape (n, d)
    Y : array of shape (n,) or (n, c)
    W1 : array of shape (m, d)
    gamma, alpha : arrays of shape (m,)
    W2 : array of shape (m,) or (m, c)
    beta : float >= 0
        Weight decay on gamma, alpha and W2.
    loss : str

    Returns
    -------
    dict
        ``objective`` (float), ``W1`` (m, d), ``gamma`` (m,), ``alpha`` (m,), ``W2`` (m, c) gradients.
    """
    X = check_X(X).astype(np.float64, copy=False)
    W1, gamma, alpha, W2 = _as_params(W1, gamma, alpha, W2, "W1", X.shape[1])
    Yv, _ = check_y(Y, X.shape[0], check_choice(loss, "loss", LOSSES))
    X0 = X - X.mean(axis=0)
    F, dZ, dg, da, dW2 = _grads(X0 @ W1.T, Yv, gamma, alpha, W2, beta, loss)
    return {"objective": F, "W1": dZ.T @ X0, "gamma": dg, "alpha": da, "W2": dW2}


def whitened_gradients(U, Y, Q, gamma, alpha, W2, beta: float = 0.0, loss: str = "squared"):
    """Objective of the whitened model (16) (without a Q term) and its gradients.

    Parameters
    ----------
    U : array of shape (n, r)
        Left singular vectors of the centered data (orthonormal, orthogonal to the ones vector).
    Y, gamma, alpha, W2, beta, loss
        As :func:`bn_gradients`.
    Q : array of shape (m, r)

    Returns
    -------
    dict
        ``objective``, ``Q`` (m, r), ``gamma``, ``alpha``, ``W2`` gradients.
    """
    U = check_X(U, "U").astype(np.float64, copy=False)
    Q, gamma, alpha, W2 = _as_params(Q, gamma, alpha, W2, "Q", U.shape[1])
    Yv, _ = check_y(Y, U.shape[0], check_choice(loss, "loss", LOSSES))
    F, dZ, dg, da, dW2 = _grads(U @ Q.T, Yv, gamma, alpha, W2, beta, loss)
    return {"objective": F, "Q": dZ.T @ U, "gamma": dg, "alpha": da, "W2": dW2}


@dataclass
class PreconditioningCheck:
    """Both sides of Theorem 5.1 at one point.

    Attributes
    ----------
    bn_step : ndarray of shape (m, r)
        ``S V^T grad_{w_j} L`` (the BN model's W1 gradient mapped to q-space), one row per neuron.
    whitened_step : ndarray of shape (m, r)
        ``S^2 grad_{q_j} L`` at ``q_j = S V^T w_j``.
    max_abs_error, relative_error : float
        ``max |bn_step - whitened_step|`` and that over ``max |bn_step|``.
    other_max_abs_error : float
        Largest difference of the gamma, alpha and W2 gradients of the two models (they coincide).
    """

    bn_step: np.ndarray
    whitened_step: np.ndarray
    max_abs_error: float
    relative_error: float
    other_max_abs_error: float


def preconditioning_check(X, Y, W1, gamma, alpha, W2, beta: float = 0.0, loss: str = "squared") -> PreconditioningCheck:
    """Evaluate Theorem 5.1's identity ``S V^T grad_w L = S^2 grad_q L`` at the given BN-model weights.

    Parameters
    ----------
    X, Y, W1, gamma, alpha, W2, beta, loss
        As :func:`bn_gradients`; the whitened model is evaluated at ``Q = W1 V S`` (rows ``q_j = S V^T w_j``).

    Returns
    -------
    PreconditioningCheck
    """
    wh = whiten(X)
    g_bn = bn_gradients(X, Y, W1, gamma, alpha, W2, beta, loss)
    g_wh = whitened_gradients(wh.U, Y, wh.coordinates(W1), gamma, alpha, W2, beta, loss)
    lhs = (g_bn["W1"] @ wh.V) * wh.S
    rhs = g_wh["Q"] * wh.S**2
    err = float(np.max(np.abs(lhs - rhs), initial=0.0))
    other = max(float(np.max(np.abs(g_bn[k] - g_wh[k]), initial=0.0)) for k in ("gamma", "alpha", "W2"))
    return PreconditioningCheck(lhs, rhs, err, err / max(float(np.max(np.abs(lhs), initial=0.0)), 1e-300), other)


def cosine_per_direction(V, W, W0) -> np.ndarray:
    """The diagnostic (18): per direction i, the cosine between ``W v_i`` and ``W0 v_i``.

    ``d_i(W, W0) = <W v_i, W0 v_i> / (||W v_i|| ||W0 v_i||)`` with ``v_i`` column i of V; rows of W are neurons.
    For the BN model pass the data's right singular vectors V (d, r) and first-layer weights (m, d); for the
    whitened model pass ``V = I_r`` and Q (m, r), giving the cosine between columns i of Q and Q0. A low value means
    the weights moved far from their initialization along that direction (Ergen et al., ICLR 2022, Fig. 1).

    Parameters
    ----------
    V : array of shape (d, r)
    W, W0 : arrays of shape (m, d)

    Returns
    -------
    ndarray of shape (r,)
        NaN where a projection is zero.
    """
    V = np.asarray(V, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    W0 = np.asarray(W0, dtype=np.float64)
    if V.ndim != 2 or W.ndim != 2 or W.shape != W0.shape or W.shape[1] != V.shape[0]:
        raise ValueError(f"need V (d, r), W and W0 (m, d) with matching d; got {V.shape}, {W.shape}, {W0.shape}")
    A, B = W @ V, W0 @ V
    den = np.linalg.norm(A, axis=0) * np.linalg.norm(B, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.sum(A * B, axis=0) / np.where(den > 0, den, 1.0), np.nan)


@dataclass
class BNTrainResult:
    """Outcome of :func:`train_bn`.

    Attributes
    ----------
    network : BNReLUNetwork
        The trained network (for ``model="whitened"`` mapped back with ``w_j = V S^{-1} q_j``), with training
        statistics.
    objective : float
        Objective (9) without the W1 term at the returned weights (in the paper's BN units).
    history : list of dict
        ``{"iter", "time", "objective"}`` every ``record_every`` steps.
    snapshots : list of ndarray
        First-layer weights (W1 (m, d) or Q (m, r)) at the recorded steps when ``keep_snapshots``.
    time : float
    status : str
        "max_iter", "time_limit" or "diverged".
    """

    network: BNReLUNetwork
    objective: float
    history: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    time: float = 0.0
    status: str = "max_iter"


def _init(rng, m, width, c):
    # Kaiming-uniform-like first layer and output layer; BN initialized as in PyTorch (gamma = sqrt(n) * 1, alpha = 0
    # in the paper's units is weight = 1, bias = 0; gamma = 1 keeps the paper's scale instead).
    W = rng.uniform(-1, 1, size=(m, width)) * np.sqrt(6.0 / width)
    return W, np.ones(m), np.zeros(m), rng.uniform(-1, 1, size=(m, c)) / np.sqrt(m)


def train_bn(
    X,
    y,
    beta: float,
    n_neurons: int = 50,
    model: str = "bn",
    optimizer: str = "adam",
    lr: float = 1e-2,
    n_iter: int = 1000,
    loss: str = "squared",
    seed: int = 0,
    truncate=None,
    time_limit: float | None = None,
    record_every: int = 10,
    keep_snapshots: bool = False,
    init=None,
) -> BNTrainResult:
    """Full-batch GD or Adam on the BN model (9) or the whitened model (16).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, c)
    beta : float >= 0
        Weight decay on gamma, alpha and W2 (Appendix E.2; none on W1 / Q).
    n_neurons : int
        Hidden width m.
    model : {"bn", "whitened"}
    optimizer : {"gd", "adam"}
        "gd": ``p <- p - lr * grad`` (Appendix E.2, on the summed objective). "adam": (0.9, 0.999, 1e-8).
    lr : float > 0
    n_iter : int
    loss : str
    seed : int
        Initialization.
    truncate : None, int, float or "auto"
        Train on the rank-k data ``g(X) = 1 mean^T + U_k S_k V_k^T`` (SGD-Truncated, Section 5.2); the whitened
        model then uses U_k.
    time_limit : float or None
    record_every : int
    keep_snapshots : bool
        Store the first-layer weights at every record (for :func:`cosine_per_direction`).
    init : tuple (W1 or Q, gamma, alpha, W2) or None
        Starting weights instead of the random ones.

    Returns
    -------
    BNTrainResult
    """
    check_choice(model, "model", ("bn", "whitened"))
    check_choice(optimizer, "optimizer", ("gd", "adam"))
    loss = check_choice(loss, "loss", LOSSES)
    beta = check_scalar(beta, "beta", low=0.0)
    lr = check_scalar(lr, "lr", low=0.0, low_inclusive=False)
    n_iter = check_scalar(n_iter, "n_iter", low=1, integer=True)
    record_every = check_scalar(record_every, "record_every", low=1, integer=True)
    n_neurons = check_scalar(n_neurons, "n_neurons", low=1, integer=True)
    time_limit = np.inf if time_limit is None else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False)
    X = check_X(X).astype(np.float64, copy=False)
    Yv, was_1d = check_y(y, X.shape[0], loss)
    wh = whiten(X, truncate=truncate)
    Uk = wh.U[:, : wh.k]
    X0 = Uk @ (wh.S[: wh.k, None] * wh.V[:, : wh.k].T) if wh.truncated else X - wh.mean
    data = X0 if model == "bn" else Uk
    rng = np.random.default_rng(check_scalar(seed, "seed", low=0, integer=True))
    params = list(
        _init(rng, n_neurons, data.shape[1], Yv.shape[1])
        if init is None
        else _as_params(*init, "W1" if model == "bn" else "Q", data.shape[1])
    )
    params = [np.array(p, dtype=np.float64) for p in params]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]

    def evaluate():
        F, dZ, dg, da, dW2 = _grads(data @ params[0].T, Yv, params[1], params[2], params[3], beta, loss)
        return F, [dZ.T @ data, dg, da, dW2]

    history, snapshots, status, elapsed = [], [], "max_iter", 0.0
    F, grads = evaluate()
    for step in range(1, n_iter + 1):
        t0 = _time.perf_counter()
        previous = [p.copy() for p in params]
        for p, g, (m1, m2) in zip(params, grads, moments):
            if optimizer == "adam":
                m1 *= 0.9
                m1 += 0.1 * g
                m2 *= 0.999
                m2 += 0.001 * g * g
                p -= lr * (m1 / (1 - 0.9**step)) / (np.sqrt(m2 / (1 - 0.999**step)) + 1e-8)
            else:
                p -= lr * g
        F, grads = evaluate()
        elapsed += _time.perf_counter() - t0
        if not (np.isfinite(F) and all(np.isfinite(p).all() for p in params)):
            status = "diverged"
            params = previous
            F, grads = evaluate()
            break
        if step % record_every == 0 or step == n_iter:
            history.append({"iter": step, "time": elapsed, "objective": F})
            if keep_snapshots:
                snapshots.append(params[0].copy())
        if elapsed >= time_limit:
            status = "time_limit"
            break
    W1 = params[0] if model == "bn" else wh.first_layer(params[0])
    W2 = params[3][:, 0] if was_1d else params[3]
    net = BNReLUNetwork(W1, params[1], params[2], W2)
    Xfit = X if not wh.truncated else X0 + wh.mean
    net = net.with_statistics(Xfit)
    return BNTrainResult(
        network=net, objective=float(F), history=history, snapshots=snapshots, time=elapsed, status=status
    )

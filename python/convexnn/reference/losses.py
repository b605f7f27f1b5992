"""Losses, their gradients and Fenchel conjugates (the API's SUM scaling, no 1/n).

Predictions ``z`` and targets ``y`` have shape (n, c) (a vector (n,) is treated as c = 1).

========================  ==========================================  ==========================
loss                      L(z, y)                                     targets
========================  ==========================================  ==========================
``"squared"``             1/2 * sum_k ||z_k - y_k||^2                 any real (n, c)
``"logistic"``            sum_k log(1 + exp(-y_k z_k))                {-1, +1}, c = 1
``"hinge"``               sum_k max(0, 1 - y_k z_k)                   {-1, +1}, c = 1
``"squared_hinge"``       sum_k max(0, 1 - y_k z_k)^2                 {-1, +1}, c = 1
``"cross_entropy"``       sum_k -log softmax(z_k)[class of k]         one-hot (n, c), c >= 2
========================  ==========================================  ==========================

Conjugates ``L*(theta) = sup_z <theta, z> - L(z, y)`` (theta of the shape of z), with m = y * theta
for the binary losses (y^2 = 1):

* squared: ``1/2 ||theta||^2 + <theta, y>``
* logistic: ``sum p log p + (1 - p) log(1 - p)``, p = -y theta in [0, 1]
* hinge: ``sum y theta``, y theta in [-1, 0]
* squared_hinge: ``sum s + s^2 / 4``, s = y theta <= 0
* cross_entropy: ``sum_k sum_j q_kj log q_kj``, q = theta + y, every row of q in the simplex

and ``+inf`` outside the domain (a 1e-12 roundoff at the boundary is tolerated and clipped).
For every loss 0 is in the domain of L* and L*(0) = -inf_z L = 0.
"""

import numpy as np
from scipy.special import expit, log_softmax, xlogy

from ._validate import as_targets

LOSSES = ("squared", "logistic", "hinge", "squared_hinge", "cross_entropy")
BINARY_LOSSES = ("logistic", "hinge", "squared_hinge")

# Roundoff tolerated at the boundary of dom L*.
DOMAIN_TOL = 1e-12


def check_loss(loss):
    """Raise ValueError unless ``loss`` is one of :data:`LOSSES`."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def validate_targets(y, loss):
    """Check targets for a loss and return them as float64 of shape (n, c).

    Parameters
    ----------
    y : array_like, shape (n,) or (n, c)
    loss : str
        One of :data:`LOSSES`.

    Returns
    -------
    Y : ndarray, shape (n, c)

    Raises
    ------
    ValueError
        Binary losses need c = 1 and values in {-1, +1}; cross_entropy needs a one-hot (n, c)
        array with c >= 2; NaN/Inf are rejected for every loss.
    """
    check_loss(loss)
    Y = as_targets(y)
    if loss in BINARY_LOSSES:
        if Y.shape[1] != 1:
            raise ValueError(f"y must have a single column for the binary loss {loss!r}, got shape {np.shape(y)}")
        if not np.all(np.abs(Y) == 1):
            raise ValueError(f"y must contain only -1 and +1 for loss {loss!r}")
    elif loss == "cross_entropy":
        if Y.shape[1] < 2:
            raise ValueError(
                f"y must be one-hot of shape (n, c) with c >= 2 for cross_entropy, got shape {np.shape(y)}"
            )
        if not (np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1)):
            raise ValueError("y must be one-hot (each row a single 1, zeros elsewhere) for cross_entropy")
    return Y


def _prepare(z, y, loss, zname="z"):
    Y = validate_targets(y, loss)
    Z = np.asarray(z, dtype=np.float64)
    Z2 = Z[:, None] if Z.ndim == 1 else Z
    if Z2.shape != Y.shape:
        raise ValueError(f"{zname} must have the shape of y {Y.shape}, got shape {Z.shape}")
    return Z2, Y, Z.shape


def loss_value(z, y, loss):
    """Loss value L(z, y) (a sum over samples).

    Parameters
    ----------
    z : array_like, shape (n, c) or (n,)
        Predictions.
    y : array_like, shape (n, c) or (n,)
    loss : str

    Returns
    -------
    float
    """
    Z, Y, _ = _prepare(z, y, loss)
    if loss == "squared":
        return 0.5 * float(np.sum((Z - Y) ** 2))
    if loss == "logistic":
        return float(np.sum(np.logaddexp(0.0, -Y * Z)))
    if loss == "hinge":
        return float(np.sum(np.maximum(0.0, 1.0 - Y * Z)))
    if loss == "squared_hinge":
        return float(np.sum(np.maximum(0.0, 1.0 - Y * Z) ** 2))
    return float(-np.sum(Y * log_softmax(Z, axis=1)))  # cross_entropy


def loss_grad(z, y, loss):
    """Gradient of L(., y) at z (hinge: the subgradient -y * 1[y z < 1], i.e. 0 at y z = 1).

    Parameters
    ----------
    z : array_like, shape (n, c) or (n,)
    y : array_like, shape (n, c) or (n,)
    loss : str

    Returns
    -------
    ndarray, same shape as z
    """
    Z, Y, shape = _prepare(z, y, loss)
    if loss == "squared":
        g = Z - Y
    elif loss == "logistic":
        g = -Y * expit(-Y * Z)
    elif loss == "hinge":
        g = -Y * (Y * Z < 1.0)
    elif loss == "squared_hinge":
        g = -2.0 * Y * np.maximum(0.0, 1.0 - Y * Z)
    else:  # cross_entropy
        g = np.exp(log_softmax(Z, axis=1)) - Y
    return g.reshape(shape)


def loss_conjugate(theta, y, loss):
    """Fenchel conjugate L*(theta) = sup_z <theta, z> - L(z, y).

    Parameters
    ----------
    theta : array_like, shape (n, c) or (n,)
    y : array_like, shape (n, c) or (n,)
    loss : str

    Returns
    -------
    float
        ``+inf`` outside the domain (see the module docstring); entries within 1e-12 of the
        boundary are clipped onto it.
    """
    T, Y, _ = _prepare(theta, y, loss, "theta")
    tol = DOMAIN_TOL
    if loss == "squared":
        return float(0.5 * np.sum(T**2) + np.sum(T * Y))
    if loss in BINARY_LOSSES:
        s = Y * T
        if loss == "logistic":
            p = -s
            if np.any(p < -tol) or np.any(p > 1 + tol):
                return np.inf
            p = np.clip(p, 0.0, 1.0)
            return float(np.sum(xlogy(p, p) + xlogy(1.0 - p, 1.0 - p)))
        if loss == "hinge":
            if np.any(s < -1 - tol) or np.any(s > tol):
                return np.inf
            return float(np.sum(np.clip(s, -1.0, 0.0)))
        # squared_hinge
        if np.any(s > tol):
            return np.inf
        s = np.minimum(s, 0.0)
        return float(np.sum(s + s**2 / 4.0))
    # cross_entropy: every row of q = theta + y must lie in the probability simplex.
    Q = T + Y
    if np.any(Q < -tol) or np.any(np.abs(Q.sum(axis=1) - 1.0) > tol * Q.shape[1]):
        return np.inf
    Q = np.maximum(Q, 0.0)
    return float(np.sum(xlogy(Q, Q)))

"""Batch normalization in the parameterization of Ergen et al. (ICLR 2022) and two-layer BN ReLU networks.

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022, eq. (2): on a full batch of n
rows the BN of a pre-activation column z = X w is

    BN_{gamma, alpha}(z) = gamma * P_n z / ||P_n z||_2 + (alpha / sqrt(n)) * 1,      P_n = I - 11^T / n,

i.e. the centered column divided by its Euclidean norm (not by its standard deviation), so the output has norm
sqrt(gamma^2 + alpha^2). PyTorch's ``BatchNorm1d`` (training mode, biased variance) computes
``weight * (z - mean) / sqrt(var + eps) + bias`` with ``var = ||P_n z||^2 / n``; with eps = 0 the two agree for

    gamma = sqrt(n) * weight,        alpha = sqrt(n) * bias

(:func:`to_torch_units`, :func:`from_torch_units`). Weight decay in the paper's units is therefore
``beta/2 (gamma^2 + alpha^2) = beta/2 * n * (weight^2 + bias^2)``.

A neuron whose centered pre-activation is zero (w = 0, or X w constant) is the *constant neuron*: its BN output
is alpha / sqrt(n) * 1 (the normalized part 0/0 is taken as 0, which is also what PyTorch returns for eps > 0).
"""

from __future__ import annotations

import numpy as np

from .._validation import LOSSES, check_choice, check_scalar, check_X, check_y

__all__ = ["BNReLUNetwork", "BNAfterReLUNetwork", "bn_forward", "to_torch_units", "from_torch_units"]

# A centered pre-activation with norm below this fraction of ||X||_F ||w|| is treated as exactly constant.
_CONSTANT_RTOL = 1e-12


def _normalize_columns(Z, rel_scale):
    """(P_n Z / ||P_n Z||, ||P_n Z||, mean) column-wise; columns with a (relatively) zero norm give 0."""
    mean = Z.mean(axis=0)
    Zc = Z - mean
    norm = np.linalg.norm(Zc, axis=0)
    const = norm <= _CONSTANT_RTOL * rel_scale
    safe = np.where(const, 1.0, norm)
    Zhat = np.where(const, 0.0, Zc / safe)
    return Zhat, np.where(const, 0.0, norm), mean


def bn_forward(Z, gamma, alpha):
    """Full-batch BN of the columns of ``Z`` in the paper's parameterization (Ergen et al., ICLR 2022, eq. 2).

    Parameters
    ----------
    Z : array of shape (n, m)
        Pre-activations, one column per neuron.
    gamma, alpha : arrays of shape (m,)

    Returns
    -------
    ndarray of shape (n, m)
        ``gamma_j * P_n z_j / ||P_n z_j|| + alpha_j / sqrt(n)``; a constant column gives ``alpha_j / sqrt(n)``.
    """
    Z = check_X(Z, "Z").astype(np.float64, copy=False)
    n, m = Z.shape
    gamma = _vector(gamma, "gamma", m)
    alpha = _vector(alpha, "alpha", m)
    Zhat, _, _ = _normalize_columns(Z, np.abs(Z).max(axis=0) * np.sqrt(n))
    return Zhat * gamma + alpha / np.sqrt(n)


def to_torch_units(gamma, alpha, n_samples):
    """(weight, bias) of ``torch.nn.BatchNorm1d`` for the paper's (gamma, alpha) on batches of ``n_samples``.

    ``weight = gamma / sqrt(n)``, ``bias = alpha / sqrt(n)``. Exact in training mode with ``eps = 0``; with
    PyTorch's ``eps > 0`` the normalization is ``sqrt(var + eps)`` instead of ``sqrt(var)``, a relative error of
    about ``eps / (2 var)`` (see :func:`convexnn.bn.export.to_torch`, which rescales W1 to make it negligible).

    Parameters
    ----------
    gamma, alpha : float or array of shape (m,)
    n_samples : int >= 1
        Batch size n (the theory uses the full training set).

    Returns
    -------
    (ndarray, ndarray)
    """
    n = check_scalar(n_samples, "n_samples", low=1, integer=True)
    root = np.sqrt(float(n))
    return np.asarray(gamma, dtype=np.float64) / root, np.asarray(alpha, dtype=np.float64) / root


def from_torch_units(weight, bias, n_samples):
    """The paper's (gamma, alpha) of a ``BatchNorm1d`` (weight, bias) on batches of ``n_samples``.

    ``gamma = sqrt(n) * weight``, ``alpha = sqrt(n) * bias`` (inverse of :func:`to_torch_units`).
    """
    n = check_scalar(n_samples, "n_samples", low=1, integer=True)
    root = np.sqrt(float(n))
    return np.asarray(weight, dtype=np.float64) * root, np.asarray(bias, dtype=np.float64) * root


def _vector(v, name, m):
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (m,):
        raise ValueError(f"{name} must have shape ({m},); got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return v


class _BNBase:
    """Weights, shape checks, balancing and objectives shared by the BN-before-ReLU and BN-after-ReLU networks."""

    def __init__(self, W1, gamma, alpha, w2, stats=None):
        W1 = np.asarray(W1, dtype=np.float64)
        if W1.ndim != 2:
            raise ValueError(f"W1 must have shape (m, d); got {W1.shape}")
        m = W1.shape[0]
        w2 = np.asarray(w2, dtype=np.float64)
        if w2.ndim not in (1, 2) or w2.shape[0] != m:
            raise ValueError(f"w2 must have shape ({m},) or ({m}, c); got {w2.shape}")
        if not (np.isfinite(W1).all() and np.isfinite(w2).all()):
            raise ValueError("W1 and w2 must be finite")
        self.W1, self.w2 = W1, w2
        self.gamma = _vector(gamma, "gamma", m)
        self.alpha = _vector(alpha, "alpha", m)
        self.stats = None
        if stats is not None:
            mean, norm, n = stats
            n = check_scalar(n, "n_train", low=1, integer=True)
            self.stats = (_vector(mean, "mean", m), _vector(norm, "norm", m), int(n))

    @property
    def n_neurons(self) -> int:
        return self.W1.shape[0]

    @property
    def n_features(self) -> int:
        return self.W1.shape[1]

    @property
    def n_outputs(self) -> int:
        return 1 if self.w2.ndim == 1 else self.w2.shape[1]

    def _copy(self, gamma, alpha, w2):
        return type(self)(self.W1, gamma, alpha, w2, stats=self.stats)

    def _w2_norms(self):
        return np.abs(self.w2) if self.w2.ndim == 1 else np.linalg.norm(self.w2, axis=1)

    def _design(self, X):
        X = check_X(X).astype(np.float64, copy=False)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features but the network expects {self.n_features}")
        return X

    def _output(self, A):
        if self.n_neurons == 0:
            return np.zeros((A.shape[0],) + self.w2.shape[1:])
        return A @ self.w2

    def with_statistics(self, X):
        """A copy whose inference statistics are the full-batch statistics of ``X`` (BN momentum 1).

        Parameters
        ----------
        X : array of shape (n, d)
            The training batch.
        """
        X = self._design(X)
        _, norm, mean = self._normalized(X)
        return type(self)(self.W1, self.gamma, self.alpha, self.w2, stats=(mean, norm, X.shape[0]))

    def balanced(self):
        """The rescaled network with ``gamma_j^2 + alpha_j^2 = ||w2_j||^2`` (same output).

        Ergen et al. (ICLR 2022), Appendix B.2.2: ``eta_j = sqrt(||w2_j|| / sqrt(gamma_j^2 + alpha_j^2))``,
        ``(gamma, alpha) <- eta (gamma, alpha)``, ``w2 <- w2 / eta``. Neurons with a zero output weight or zero
        (gamma, alpha) contribute nothing and are set to zero. At balance the weight-decay objective (3)/(9) equals
        the l1 objective (4)/(10) (Lemma 1.1 / Lemma 2.1).
        """
        rho, wn = np.hypot(self.gamma, self.alpha), self._w2_norms()
        live = (rho > 0) & (wn > 0)
        eta = np.sqrt(np.where(live, wn, 0.0) / np.where(live, rho, 1.0))
        w2 = self.w2 / np.where(live, eta, 1.0).reshape((-1,) + (1,) * (self.w2.ndim - 1))
        w2 = np.where(live.reshape((-1,) + (1,) * (self.w2.ndim - 1)), w2, 0.0)
        return self._copy(eta * self.gamma, eta * self.alpha, w2)

    def unit_form(self):
        """The same network in the Theta_s form ``gamma_j^2 + alpha_j^2 = 1`` (eq. 4 / 10), output unchanged.

        ``(gamma, alpha) <- (gamma, alpha) / rho``, ``w2 <- rho * w2`` with ``rho = sqrt(gamma^2 + alpha^2)``
        (the ReLU is positively homogeneous); neurons with rho = 0 output 0 and get w2 = 0, (gamma, alpha) = (1, 0).
        """
        rho = np.hypot(self.gamma, self.alpha)
        live = rho > 0
        safe = np.where(live, rho, 1.0)
        shape = (-1,) + (1,) * (self.w2.ndim - 1)
        w2 = np.where(live.reshape(shape), self.w2 * rho.reshape(shape), 0.0)
        return self._copy(np.where(live, self.gamma / safe, 1.0), np.where(live, self.alpha / safe, 0.0), w2)

    def objective(
        self, X, y, beta: float, loss: str = "squared", form: str = "weight_decay", include_w1: bool = False
    ) -> float:
        """Training objective of the network on the full batch ``X`` (sums over samples, no 1/n).

        Parameters
        ----------
        X : array of shape (n, d)
            Training batch (BN uses its statistics).
        y : array of shape (n,) or (n, c)
        beta : float >= 0
        loss : str
            Any loss of :func:`convexnn.solve` ("squared" is the paper's).
        form : {"weight_decay", "l1"}
            "weight_decay": ``L(f(X), y) + beta/2 * sum_j (gamma_j^2 + alpha_j^2 + ||w2_j||^2)``, eq. (3) / (9).
            "l1": ``L(f(X), y) + beta * sum_j ||w2_j|| * sqrt(gamma_j^2 + alpha_j^2)``, i.e. eq. (4) / (10)
            evaluated at the network's Theta_s rescaling (:meth:`unit_form`); it is <= the weight-decay value,
            with equality at balance (Lemma 1.1).
        include_w1 : bool
            Add ``beta/2 * ||W1||_F^2``. BN is invariant to the scale of W1, so this term does not change the
            infimum of (3) (Appendix B.2.1) and is left out by default.

        Returns
        -------
        float
        """
        from .._core import loss_value

        check_choice(loss, "loss", LOSSES)
        check_choice(form, "form", ("weight_decay", "l1"))
        beta = check_scalar(beta, "beta", low=0.0)
        F = np.asarray(self.forward(X), dtype=np.float64).reshape(len(X), -1)
        Y, _ = check_y(y, F.shape[0], loss)
        if Y.shape[1] != F.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} outputs but the network has {F.shape[1]}")
        data = float(loss_value(np.ascontiguousarray(F), Y, loss))
        if form == "weight_decay":
            reg = 0.5 * (np.sum(self.gamma**2) + np.sum(self.alpha**2) + np.sum(self.w2**2))
        else:
            reg = float(np.sum(self._w2_norms() * np.hypot(self.gamma, self.alpha)))
        if include_w1:
            reg += 0.5 * float(np.sum(self.W1**2))
        return data + beta * float(reg)

    def _normalized(self, X):
        raise NotImplementedError  # pragma: no cover - defined by the two network classes

    def __repr__(self):
        return (
            f"{type(self).__name__}(n_neurons={self.n_neurons}, n_features={self.n_features}, "
            f"n_outputs={self.n_outputs}, statistics={'set' if self.stats else 'unset'})"
        )


class BNReLUNetwork(_BNBase):
    """Two-layer network with BN before the ReLU: ``f(X) = sum_j (BN_{gamma_j, alpha_j}(X w_j))_+ w2_j``.

    Ergen et al. (ICLR 2022), eq. (6) (scalar output) and eq. (9) (vector output), BN as in eq. (2).

    Parameters
    ----------
    W1 : array of shape (m, d)
        First-layer weights, one neuron per row (no bias: BN removes it).
    gamma, alpha : arrays of shape (m,)
        BN scale and shift in the paper's units (:func:`to_torch_units` converts to PyTorch's).
    w2 : array of shape (m,) or (m, c)
        Output weights.
    stats : tuple (mean (m,), norm (m,), n_train) or None
        Inference statistics: per neuron the training mean of ``X w_j`` and the norm ``||P_n X w_j||`` of its
        centered training pre-activation, and the training size n (for the ``alpha / sqrt(n)`` shift). Set by
        :meth:`with_statistics`; :meth:`predict` needs them, :meth:`forward` (training mode) does not.
    """

    def _normalized(self, X):
        Z = X @ self.W1.T
        return _normalize_columns(Z, np.linalg.norm(X) * np.linalg.norm(self.W1, axis=1))

    def forward(self, X):
        """Training-mode output on the full batch ``X`` (BN with the batch's own statistics), (n,) or (n, c)."""
        X = self._design(X)
        Zhat, _, _ = self._normalized(X)
        return self._output(np.maximum(Zhat * self.gamma + self.alpha / np.sqrt(X.shape[0]), 0.0))

    def hidden(self, X):
        """Inference-mode hidden activations ``(BN(x^T w_j))_+`` with the stored training statistics, (n, m)."""
        if self.stats is None:
            raise ValueError(
                "the network has no inference statistics; call with_statistics(X_train) first "
                "(or use forward(X) for training-mode BN on a full batch)"
            )
        X = self._design(X)
        mean, norm, n = self.stats
        const = norm == 0
        Z = np.where(const, 0.0, (X @ self.W1.T - mean) / np.where(const, 1.0, norm))
        return np.maximum(Z * self.gamma + self.alpha / np.sqrt(n), 0.0)

    def predict(self, X):
        """Inference-mode output (training statistics, BN momentum 1), shape (n,) or (n, c).

        On the training rows it equals :meth:`forward` of the training batch. For a network rebuilt from the
        convex program it is ``sum_i (u'(x)^T s_i)_+ - (u'(x)^T s'_i)_+`` with ``u'(x)`` the whitened test point
        (Ergen et al., ICLR 2022, Appendix A.1).
        """
        return self._output(self.hidden(X))

    def to_torch(self, X_train=None, eps: float = 1e-5, dtype=None):
        """``nn.Sequential(Linear, BatchNorm1d, ReLU, Linear)`` with this network's outputs (needs PyTorch).

        See :func:`convexnn.bn.export.to_torch`.
        """
        from .export import to_torch

        return to_torch(self, X_train=X_train, eps=eps, dtype=dtype)


class BNAfterReLUNetwork(_BNBase):
    """Two-layer network with BN after the ReLU: ``f(X) = sum_j BN_{gamma_j, alpha_j}((X w_j)_+) w2_j``.

    Ergen et al. (ICLR 2022), Appendix G, eq. (45). Parameters as :class:`BNReLUNetwork`; the statistics are
    those of the post-ReLU columns ``(X w_j)_+``.
    """

    def _normalized(self, X):
        Z = np.maximum(X @ self.W1.T, 0.0)
        return _normalize_columns(Z, np.linalg.norm(X) * np.linalg.norm(self.W1, axis=1))

    def forward(self, X):
        """Training-mode output on the full batch ``X``, (n,) or (n, c)."""
        X = self._design(X)
        Zhat, _, _ = self._normalized(X)
        return self._output(Zhat * self.gamma + self.alpha / np.sqrt(X.shape[0]))

    def predict(self, X):
        """Inference-mode output with the stored training statistics, (n,) or (n, c)."""
        if self.stats is None:
            raise ValueError("the network has no inference statistics; call with_statistics(X_train) first")
        X = self._design(X)
        mean, norm, n = self.stats
        const = norm == 0
        Z = np.where(const, 0.0, (np.maximum(X @ self.W1.T, 0.0) - mean) / np.where(const, 1.0, norm))
        return self._output(Z * self.gamma + self.alpha / np.sqrt(n))

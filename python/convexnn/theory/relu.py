"""Deep ReLU networks on rank-one data and the batch-normalized last two layers.

Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via Convex Duality" (ICML 2021):

* :func:`rank_one_relu` -- Theorem 4.1 and Proposition 4.2: for ``X = c a0^T`` with ``c >= 0`` and no biases, the
  optimal L-layer network is a rank-one chain ``W_l = (phi_{l-1}/||phi_{l-1}||) phi_l^T`` with nonnegative phi_l,
  aligned with a0, all layers of norm ``t* = (||f(a0)|| / ||a0||)^(1/L)``;
* :func:`rank_one_relu_bias` -- Theorem 4.2 (L = 2, c of any sign) and Proposition 4.1 (bias on the last hidden layer
  only, c >= 0): the neurons' kinks sit at the data, ``w_i = s_i a0/||a0||``, ``b_i = -s_i c_i ||a0||``; the optimum
  is the 1-D spline problem of the points ``c_i ||a0||`` (:func:`~convexnn.theory.one_d_spline`);
* :func:`bn_last_layers` -- Theorem 4.4: batch normalization before the last ReLU, one-hot labels, arbitrary data
  whose last-hidden input has range R^n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from .._validation import check_choice, check_scalar
from ._common import (
    TheoryResult,
    as_beta,
    as_depth,
    as_matrix,
    as_targets,
    check_full_row_rank,
    check_one_hot,
    rank_one_factors,
    squared_loss,
)
from ._solvers import scalar_power_prox, thin_svd
from .models import MLP, rebalance
from .one_d import one_d_spline


def _chain(a_hat, t, L, widths, out_dir):
    """Rank-one nonnegative chain: W_1 = t a_hat phi_1^T, W_l = t phi_{l-1} phi_l^T, W_L = t phi_{L-1} out_dir^T."""
    phis = [np.full(m, 1.0 / np.sqrt(m)) for m in widths]
    W = [t * np.outer(a_hat, phis[0])]
    W += [t * np.outer(phis[l - 1], phis[l]) for l in range(1, L - 1)]
    W.append(t * np.outer(phis[-1], out_dir))
    return W


def rank_one_relu(X, y, L: int, beta: float, widths=None) -> TheoryResult:
    """Optimal bias-free L-layer ReLU network on rank-one data ``X = c a0^T``, ``c >= 0`` (ICML 2021 Thm 4.1, Prop 4.2).

    By positive homogeneity ``f(X) = c f(a0)^T`` and ``||f(a0)|| <= ||a0|| prod_l ||W_l||_2``, so with
    ``u = f(a0)`` the problem is ``min_u 1/2 ||c u^T - Y||^2 + (beta L / 2) (||u|| / ||a0||)^(2/L)`` (beta > 0) or
    ``L (||u|| / ||a0||)^(2/L)`` with ``c u^T = Y`` (beta = 0), attained by the aligned rank-one chain.

    Parameters
    ----------
    X : array of shape (n, d), rank one with ``X = c a0^T``, c >= 0 (checked)
    y : array of shape (n,) or (n, K)
    L : int >= 2
    beta : float >= 0
        0: min-norm interpolation (needs ``y = c k^T``).
    widths : sequence of L-1 ints, optional
        Hidden widths (default 1); the chain uses the uniform nonnegative unit vectors phi_l.

    Returns
    -------
    TheoryResult
        ``info["t"]`` (every layer's Frobenius = operator norm), ``info["a0"]``, ``info["c"]`` (unit norm).

    Raises
    ------
    ValueError
        X not rank one, c with both signs, or (beta = 0) y not of the form c k^T.
    """
    X = as_matrix(X)
    Y, was_1d = as_targets(y, X.shape[0])
    L, beta = as_depth(L), as_beta(beta)
    widths = [1] * (L - 1) if widths is None else [check_scalar(int(m), "widths", low=1, integer=True) for m in widths]
    if len(widths) != L - 1:
        raise ValueError(f"widths must have L - 1 = {L - 1} entries; got {len(widths)}")
    c, a0 = rank_one_factors(X)
    na = np.linalg.norm(a0)
    k = Y.T @ c  # the best u direction: Y^T c (c has unit norm)
    if beta == 0.0:
        if np.linalg.norm(Y - np.outer(c, k)) > 1e-8 * max(np.linalg.norm(Y), 1.0):
            raise ValueError(
                "beta = 0 on rank-one data without biases needs y = c k^T (f(X) = c f(a0)^T; "
                "ICML 2021 Thm 4.1); use beta > 0 or rank_one_relu_bias"
            )
        omega = np.linalg.norm(k) / na
    else:
        omega = scalar_power_prox(np.linalg.norm(k) / na, na**2, beta, L)
    t = omega ** (1.0 / L)
    direction = k / np.linalg.norm(k) if np.linalg.norm(k) > 0 else np.eye(Y.shape[1])[0]
    W = _chain(a0 / na, t, L, widths, direction)
    if was_1d:
        W[-1] = W[-1][:, 0]
    net = MLP(W, None, "relu")
    F = net.predict(X)
    if beta == 0.0:
        obj, dual, dual_obj = net.squared_weight_norm(), None, float("nan")
    else:
        obj = squared_loss(F, Y) + 0.5 * beta * net.squared_weight_norm()
        dual = Y - F.reshape(Y.shape)
        dual_obj = 0.5 * float(np.sum(Y * Y)) - 0.5 * float(np.sum((dual - Y) ** 2)) + 0.5 * beta * (L - 2) * t**2
        dual = dual[:, 0] if was_1d else dual
    return TheoryResult(
        float(obj),
        net.weights,
        net,
        F,
        dual,
        dual_obj,
        "Ergen & Pilanci ICML 2021 Thm 4.1 / Prop 4.2",
        {"t": t, "a0": a0, "c": c, "end_to_end_value": omega * na},
    )


def rank_one_relu_bias(
    X, y, beta: float, L: int = 2, intercept: bool = True, intercept_bias: float = 1e6
) -> TheoryResult:
    """Optimal ReLU network with unregularized biases on rank-one data (ICML 2021 Thm 4.2, Prop 4.1).

    L = 2 (Thm 4.2, c of any sign): hidden neurons ``(s_i a0^T x / ||a0|| - s_i c_i ||a0||)_+`` with kinks at the
    data; the objective (squared loss, unit-norm form = weight decay) is :func:`~convexnn.theory.one_d_spline` on the
    1-D points ``g_i = c_i ||a0||``.  L > 2 (Prop 4.1, bias on the last hidden layer only, c >= 0): a rank-one chain
    of norm t feeds the same kinks, scaled by ``t^(L-2)``; beta = 0 gives
    ``min sum_l ||W_l||_F^2 = L P1^(2/L)`` with P1 the 1-D min-norm value, beta > 0 the 1-D search over t of
    ``V(beta / t^(L-2)) + beta/2 (L-2) t^2`` (V the 1-D lasso value).

    Parameters
    ----------
    X : array of shape (n, d), rank one
    y : array of shape (n,)
    beta : float >= 0
    L : int >= 2
    intercept : bool
        Free intercept (the infimum given by unregularized biases; see :func:`one_d_spline`).
    intercept_bias : float
        Bias B of the two neurons realizing the intercept in ``network`` (exact on |g| < B).

    Returns
    -------
    TheoryResult
        ``objective`` (L = 2: unit-norm form; L > 2: weight-decay value, beta = 0: ``sum_l ||W_l||^2``),
        ``info["spline"]`` (the 1-D solution), ``info["t"]``.
    """
    X = as_matrix(X)
    Y, was_1d = as_targets(y, X.shape[0])
    if not was_1d:
        raise ValueError("rank_one_relu_bias supports scalar targets y of shape (n,)")
    L, beta = as_depth(L), as_beta(beta)
    if L == 2:
        U, s, Vt = thin_svd(X, rtol=0.0)
        if len(s) > 1 and s[1] > 1e-8 * s[0] * max(X.shape):
            raise ValueError(f"X must be rank one (X = c a0^T): sigma_2 / sigma_1 = {s[1] / s[0]:.3g}")
        c, a0 = U[:, 0], s[0] * Vt[0]
    else:
        c, a0 = rank_one_factors(X)
    na = np.linalg.norm(a0)
    g = c * na
    if L == 2:
        sp = one_d_spline(g, Y[:, 0], beta, intercept=intercept)
        net1 = sp.network(intercept_bias)
        W1 = np.outer(a0 / na, net1.weights[0][0])  # (x^T a0/||a0||) = g for a training row
        net = MLP([W1, net1.weights[1][:, 0]], net1.biases, "relu")
        return TheoryResult(
            sp.objective,
            net.weights,
            net,
            net.predict(X),
            sp.dual,
            sp.dual_objective,
            "Ergen & Pilanci ICML 2021 Thm 4.2",
            {"spline": sp, "a0": a0, "c": c, "t": 1.0},
        )
    return _prop41(X, Y[:, 0], g, a0 / na, beta, L, intercept, intercept_bias)


def _prop41(X, y, g, a_hat, beta, L, intercept, intercept_bias):
    if beta == 0.0:
        sp1 = one_d_spline(g, y, 0.0, intercept=intercept)
        t = sp1.objective ** (1.0 / L)
    else:

        def total(log_t):
            t_ = np.exp(log_t)
            return (
                one_d_spline(g, y, beta / t_ ** (L - 2), intercept=intercept).objective + 0.5 * beta * (L - 2) * t_**2
            )

        grid = np.linspace(-6.0, 4.0, 41)
        vals = [total(v) for v in grid]
        k = int(np.argmin(vals))
        res = minimize_scalar(
            total, bounds=(grid[max(k - 1, 0)], grid[min(k + 1, 40)]), method="bounded", options={"xatol": 1e-10}
        )
        t = float(np.exp(res.x if res.fun <= vals[k] else grid[k]))
        sp1 = one_d_spline(g, y, beta / t ** (L - 2), intercept=intercept)
    G = t ** (L - 2)
    m = sp1.knots.size
    s = np.concatenate([np.ones(m), -np.ones(m)])
    b = -s * np.concatenate([sp1.knots, sp1.knots]) * G
    w = sp1.coef / G
    if sp1.intercept != 0.0:
        s, b = np.concatenate([s, [1.0, -1.0]]), np.concatenate([b, [intercept_bias, intercept_bias]])
        w = np.concatenate([w, [sp1.intercept / (2 * intercept_bias)] * 2])
    W = [t * a_hat[:, None]] + [np.array([[t]]) for _ in range(L - 3)] + [s[None, :], w]
    net = rebalance(MLP(W, [None] * (L - 2) + [b], "relu"))
    F = net.predict(X)
    if beta == 0.0:
        obj = L * sp1.objective ** (2.0 / L)
    else:
        obj = squared_loss(F, y) + 0.5 * beta * net.squared_weight_norm()
    return TheoryResult(
        float(obj),
        net.weights,
        net,
        F,
        sp1.dual,
        float("nan"),
        "Ergen & Pilanci ICML 2021 Prop 4.1",
        {"spline": sp1, "t": t, "network_value": (net.squared_weight_norm() if beta == 0.0 else obj)},
    )


def bn_forward(Z, gamma, alpha) -> np.ndarray:
    """Batch normalization of ICML 2021 Sec. 4.2 on each column of Z (n, m).

    ``BN(z) = gamma (I - 11^T/n) z / ||(I - 11^T/n) z||_2 + alpha 1 / sqrt(n)`` (batch statistics of Z; a
    constant column has a zero centred part).  Standard BN (mean / standard deviation, scale g, shift b) is
    ``gamma = g sqrt(n)``, ``alpha = b sqrt(n)``: see :func:`bn_from_standard`.
    """
    n = Z.shape[0]
    C = Z - Z.mean(axis=0)
    nrm = np.linalg.norm(C, axis=0)
    C = np.divide(C, nrm, out=np.zeros_like(C), where=nrm > 1e-300)
    return C * gamma + alpha / np.sqrt(n)


def bn_to_standard(gamma, alpha, n: int):
    """(scale, shift) of standard BN, ``(x - mean) / std * scale + shift``, equal to the paper's (gamma, alpha)."""
    n = check_scalar(n, "n", low=1, integer=True)
    return np.asarray(gamma) / np.sqrt(n), np.asarray(alpha) / np.sqrt(n)


def bn_from_standard(scale, shift, n: int):
    """Inverse of :func:`bn_to_standard`."""
    n = check_scalar(n, "n", low=1, integer=True)
    return np.asarray(scale) * np.sqrt(n), np.asarray(shift) * np.sqrt(n)


@dataclass
class BNReLUHead:
    """The last two layers ``f(A) = (BN_{gamma, alpha}(A W))_+ W_out`` of ICML 2021 Thm 4.4 (BN on A's batch)."""

    W: np.ndarray
    gamma: np.ndarray
    alpha: np.ndarray
    W_out: np.ndarray

    def hidden_features(self, A) -> np.ndarray:
        """Last-hidden activations (n, m) after BN and ReLU."""
        A = as_matrix(A, "A")
        return np.maximum(bn_forward(A @ self.W, self.gamma, self.alpha), 0.0)

    def predict(self, A) -> np.ndarray:
        return self.hidden_features(A) @ self.W_out

    def regularizer(self) -> float:
        """sum_j gamma_j^2 + alpha_j^2 + ||w_{L,j}||^2 (the parameters Thm 4.4 regularizes)."""
        return float(np.sum(self.gamma**2) + np.sum(self.alpha**2) + np.sum(self.W_out**2))


def bn_last_layers(A, Y, beta: float, variant: str = "balanced") -> TheoryResult:
    """Optimal BN + ReLU last two layers for one-hot labels on any features (ICML 2021 Theorem 4.4).

    Problem: ``min 1/2 ||sum_j (BN(A w_j))_+ w_{L,j}^T - Y||_F^2 + beta/2 sum_j (gamma_j^2 + alpha_j^2 +
    ||w_{L,j}||^2)`` with A = A_{L-2} (n, p) of range R^n.  Paper's weights: ``w_j = A^+ y_j``,
    ``(gamma_j, alpha_j) = (||y_j - mean(y_j)||, 1^T y_j / sqrt(n)) / ||y_j||`` (so BN outputs ``y_j / ||y_j||``),
    ``w_{L,j} = (||y_j|| - beta)_+ e_j``; ``variant="balanced"`` rescales (gamma, alpha) by ``sqrt(s_j)`` and
    ``w_{L,j}`` by ``1/sqrt(s_j)``, ``s_j = (sqrt(n_j) - beta)_+`` (same function; the minimizer), with value
    ``sum_j [1/2 min(beta, sqrt(n_j))^2 + beta (sqrt(n_j) - beta)_+]``.

    Parameters
    ----------
    A : array of shape (n, p)
        Input of the last hidden layer, full row rank (checked).
    Y : array of shape (n, K), one-hot (checked)
    beta : float >= 0
    variant : {"balanced", "literal"}

    Returns
    -------
    TheoryResult
        ``network`` a :class:`BNReLUHead`; ``dual`` = Y - f; ``info["gamma"], info["alpha"]``.
    """
    variant = check_choice(variant, "variant", ("balanced", "literal"))
    A = as_matrix(A, "A")
    Yv, _ = as_targets(Y, A.shape[0], "Y")
    beta = as_beta(beta)
    check_full_row_rank(A, name="A")
    counts = check_one_hot(Yv, "Y")
    n, root = A.shape[0], np.sqrt(counts)
    W = A.T @ np.linalg.solve(A @ A.T, Yv)  # A^+ Y (full row rank)
    gamma = np.linalg.norm(Yv - Yv.mean(axis=0), axis=0) / root
    alpha = counts / (np.sqrt(n) * root)
    s = np.maximum(root - beta, 0.0)
    if variant == "balanced":
        gamma, alpha, W_out = gamma * np.sqrt(s), alpha * np.sqrt(s), np.diag(np.sqrt(s))
    else:
        W_out = np.diag(s)
    head = BNReLUHead(W, gamma, alpha, W_out)
    F = head.predict(A)
    obj = squared_loss(F, Yv) + 0.5 * beta * head.regularizer()
    Lam = Yv - F
    dual_obj = 0.5 * float(np.sum(Yv * Yv)) - 0.5 * float(np.sum((Lam - Yv) ** 2))
    pred = float(np.sum(0.5 * np.minimum(beta, root) ** 2 + beta * s))
    return TheoryResult(
        obj,
        [W, W_out],
        head,
        F,
        Lam,
        dual_obj,
        f"Ergen & Pilanci ICML 2021 Thm 4.4 ({variant})",
        {"gamma": gamma, "alpha": alpha, "s": s, "predicted_objective": pred},
    )

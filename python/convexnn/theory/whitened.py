"""Closed forms for whitened data ``X X^T = I_n`` (n <= d): two-layer and deep ReLU networks, l0 forms.

* :func:`whitened_two_layer` -- Ergen & Pilanci, "Convex Geometry and Duality of Over-parameterized Neural
  Networks" (JMLR 2021), Theorem 9 (squared loss), Theorem 12 (hinge loss), Theorem 15 (multiclass squared loss
  with one-hot labels);
* :func:`whitened_deep_relu` -- Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via Convex
  Duality" (ICML 2021), Theorem 4.3 (one-hot labels), in the paper-literal (t* = 1) and the balanced variants;
* :func:`l0_interpolation` -- JMLR 2021 Lemma 9 (scalar) and Lemma 12 (nonnegative vector labels);
* :func:`whiten` -- a feature-space whitening map that can be applied to test data.

Scaling: the squared loss is ``1/2 sum_i ||f(x_i) - y_i||^2``, hinge ``sum_i max(0, 1 - y_i f(x_i))``, and the
regularizer ``beta ||w||_1`` with unit-norm hidden neurons (the l1 form), which equals weight decay
``beta/2 (||W_1||_F^2 + ||w||^2)`` at the balanced network returned (JMLR 2021 Lemma 1, Theorem 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice
from ._common import (
    TheoryResult,
    as_beta,
    as_depth,
    as_matrix,
    as_targets,
    check_full_row_rank,
    check_one_hot,
    check_whitened,
    squared_loss,
)
from ._networks import balanced_two_layer
from ._solvers import scalar_power_prox, thin_svd
from .models import MLP

WHITENED_LOSSES = ("squared", "hinge", "multiclass")


@dataclass
class Whitening:
    """Feature-space whitening ``x -> W^T x`` with ``W = V_r diag(1/s_r) V_r^T`` from the thin SVD of X.

    ``transform(X)`` of the training data has orthonormal rows (X X^T = I_n when rank X = n <= d) and, unlike
    ``(X X^T)^(-1/2) X``, it maps each row on its own, so it applies to test rows.
    """

    matrix: np.ndarray

    def transform(self, X) -> np.ndarray:
        X = as_matrix(X)
        if X.shape[1] != self.matrix.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features but the whitening was fit on {self.matrix.shape[0]}")
        return X @ self.matrix


def whiten(X) -> Whitening:
    """Fit the feature-space whitening of X (n, d), n <= d with full row rank, so that X W has orthonormal rows.

    Raises
    ------
    ValueError
        If X does not have full row rank (whitening X X^T = I_n needs rank n <= d).
    """
    X = as_matrix(X)
    check_full_row_rank(X)
    _, s, Vt = thin_svd(X)
    return Whitening((Vt.T / s) @ Vt)


def _squared_sides(X, y, beta):
    """Theorem 9: soft-thresholded neurons along X^T (y)_+ and X^T (-y)_+."""
    U, w, v = [], [], np.zeros_like(y)
    for sign in (1.0, -1.0):
        part = np.maximum(sign * y, 0.0)
        p = np.linalg.norm(part)
        if p == 0:
            continue
        U.append(X.T @ part / p)
        w.append(sign * max(p - beta, 0.0))
        v += sign * (beta * part / p if beta <= p else part)
    return U, w, v


def _hinge_sides(X, y, beta):
    """Theorem 12: neuron X^T (+-y)_+ / sqrt(n_+-) with weight +-sqrt(n_+-) when beta <= sqrt(n_+-)."""
    U, w, v = [], [], np.zeros_like(y)
    for sign in (1.0, -1.0):
        part = np.maximum(sign * y, 0.0)
        p = np.linalg.norm(part)
        if p == 0:
            continue
        U.append(X.T @ part / p)
        w.append(sign * p if beta <= p else 0.0)
        v += sign * part * min(1.0, beta / p)
    return U, w, v


def whitened_two_layer(A, y, beta: float, loss: str = "squared") -> TheoryResult:
    """Globally optimal two-layer ReLU network on whitened data (JMLR 2021, Theorems 9, 12, 15).

    Problem (l1 form, unit-norm neurons u_j, no biases): ``min L((A U)_+ w, y) + beta ||w||_1`` with
    ``L = 1/2 ||.||^2`` (squared, multiclass) or the summed hinge loss; the returned balanced network has the same
    weight-decay value ``L + beta/2 (||U||_F^2 + ||w||^2)``.

    * "squared" (Thm 9, real y): ``w = [(p - beta)_+, -(q - beta)_+]`` on ``u = A^T (y)_+ / p, A^T (-y)_+ / q``,
      ``p = ||(y)_+||``, ``q = ||(-y)_+||``;
    * "hinge" (Thm 12, y in {-1, +1}): weight ``+-sqrt(n_+-)`` on ``A^T (+-y)_+ / sqrt(n_+-)`` when
      ``beta <= sqrt(n_+-)``, else no neuron (at equality every weight in [0, sqrt(n_+-)] is optimal; the full one
      is returned);
    * "multiclass" (Thm 15, one-hot y (n, K)): neuron ``A^T y_j / sqrt(n_j)`` with output ``(sqrt(n_j) - beta)_+ e_j``.

    Parameters
    ----------
    A : array of shape (n, d)
        Whitened data: ``A A^T = I_n`` (checked; see :func:`whiten`).
    y : array of shape (n,) or, for "multiclass", (n, K) one-hot
    beta : float >= 0
    loss : {"squared", "hinge", "multiclass"}

    Returns
    -------
    TheoryResult
        ``info["neurons"]`` (d, m) unit-norm neurons, ``info["output_weights"]`` (m,) or (m, K) l1-form weights;
        ``dual``: v* of the dual ``max -L*(v)`` s.t. ``|v^T (A u)_+| <= beta`` for all unit u (JMLR 2021 Thm 8, 10,
        13), ``dual_objective`` its value (equal to ``objective``: strong duality, Cor. 7).

    Raises
    ------
    ValueError
        If A is not whitened, y is not in {-1, +1} for "hinge", or not one-hot for "multiclass".
    """
    loss = check_choice(loss, "loss", WHITENED_LOSSES)
    A = as_matrix(A, "A")
    Y, was_1d = as_targets(y, A.shape[0])
    beta = as_beta(beta)
    check_whitened(A, name="A")
    if loss == "multiclass":
        counts = check_one_hot(Y)
        root = np.sqrt(counts)
        U = A.T @ Y / root
        Wout = np.diag(np.maximum(root - beta, 0.0))
        V = np.where(beta <= root, beta * Y / root, Y)
        net = balanced_two_layer(U, Wout, output_1d=False)
        F = net.predict(A)
        obj = squared_loss(F, Y) + beta * float(np.abs(Wout).sum())
        dual_obj = 0.5 * float(np.sum(Y * Y)) - 0.5 * float(np.sum((V - Y) ** 2))
        return TheoryResult(
            obj,
            net.weights,
            net,
            F,
            V,
            dual_obj,
            "Ergen & Pilanci JMLR 2021 Thm 15",
            {"neurons": U, "output_weights": Wout, "class_counts": counts},
        )
    if Y.shape[1] != 1:
        raise ValueError(f"loss={loss!r} needs a scalar target y of shape (n,); got {Y.shape} (use 'multiclass')")
    yv = Y[:, 0]
    if loss == "hinge":
        if not np.isin(yv, (-1.0, 1.0)).all():
            raise ValueError("loss='hinge' needs y in {-1, +1}")
        U, w, v = _hinge_sides(A, yv, beta)
    else:
        U, w, v = _squared_sides(A, yv, beta)
    U = np.stack(U, axis=1) if U else np.zeros((A.shape[1], 0))
    w = np.array(w)
    net = balanced_two_layer(U if U.size else np.zeros((A.shape[1], 1)), w if w.size else np.zeros(1))
    F = net.predict(A)
    if loss == "hinge":
        obj = float(np.sum(np.maximum(0.0, 1.0 - yv * F))) + beta * float(np.abs(w).sum())
        dual_obj = float(v @ yv)
        theorem = "Ergen & Pilanci JMLR 2021 Thm 12"
    else:
        obj = squared_loss(F, yv) + beta * float(np.abs(w).sum())
        dual_obj = 0.5 * float(yv @ yv) - 0.5 * float(np.sum((v - yv) ** 2))
        theorem = "Ergen & Pilanci JMLR 2021 Thm 9"
    return TheoryResult(obj, net.weights, net, F, v, dual_obj, theorem, {"neurons": U, "output_weights": w})


def whitened_deep_relu(X, Y, L: int, beta: float, variant: str = "balanced") -> TheoryResult:
    """Deep ReLU network of ICML 2021 Theorem 4.3 for whitened X and one-hot Y.

    Objective ``1/2 ||f(X) - Y||_F^2 + beta/2 sum_l ||W_l||_F^2``.  Path j (one per class, ``phi_{0,j} = X^T y_j``,
    ``||y_j|| = sqrt(n_j)``) uses unit j of every hidden layer (nonnegative, disjoint, hence orthogonal
    ``phi_{l,j}``): ``W_1 e_j = t_j X^T y_j / sqrt(n_j)``, ``W_l = diag(t)`` for 1 < l < L, ``W_L = diag(w)``.

    * ``variant="balanced"``: ``t_j = w_j = s_j^(1/L)`` with ``s_j = argmin_s 1/2 (sqrt(n_j) - s)^2 +
      (beta L / 2) s^(2/L)`` (a scalar non-convex problem solved globally; s_j may jump to 0).  Its value
      ``sum_j min_s [...]`` is the global optimum of the parallel architecture (one sub-network per class);
      for the standard architecture it is an upper bound.
    * ``variant="literal"``: the paper's weights with ``t* = 1`` and output ``(sqrt(n_j) - beta)_+``.  For L = 2 it
      computes the optimal function with unbalanced weights; for L > 2 it is not optimal for this objective
      (larger value).  Paths with ``(sqrt(n_j) - beta)_+ = 0`` are dropped (their 0/0 directions are undefined).

    Parameters
    ----------
    X : array of shape (n, d), ``X X^T = I_n``
    Y : array of shape (n, K), one-hot
    L : int >= 2
    beta : float >= 0
    variant : {"balanced", "literal"}

    Returns
    -------
    TheoryResult
        ``info["s"]`` (end-to-end scale per class), ``info["t"]`` (hidden scales);
        ``dual``: ``Lambda = Y - f(X)``, ``dual_objective`` the value of ICML 2021 eq. (3) at the t_j (balanced:
        equal to the objective).

    Raises
    ------
    ValueError
        If X is not whitened or Y is not one-hot.
    """
    variant = check_choice(variant, "variant", ("balanced", "literal"))
    X = as_matrix(X)
    Y, _ = as_targets(Y, X.shape[0], "Y")
    L, beta = as_depth(L), as_beta(beta)
    check_whitened(X)
    counts = check_one_hot(Y, "Y")
    root = np.sqrt(counts)
    if variant == "balanced":
        s = np.array([scalar_power_prox(a, 1.0, beta, L) for a in root])
        t = s ** (1.0 / L)
        out = t
    else:
        out = np.maximum(root - beta, 0.0)
        t = (out > 0).astype(float)
        s = out
    W = [X.T @ Y / root * t] + [np.diag(t) for _ in range(L - 2)] + [np.diag(out)]
    net = MLP(W, None, "relu")
    F = net.predict(X)
    obj = squared_loss(F, Y) + 0.5 * beta * net.squared_weight_norm()
    Lam = Y - F
    dual_obj = (
        0.5 * float(np.sum(Y * Y)) - 0.5 * float(np.sum((Lam - Y) ** 2)) + 0.5 * beta * (L - 2) * float(np.sum(t**2))
    )
    return TheoryResult(
        obj,
        W,
        net,
        F,
        Lam,
        dual_obj if variant == "balanced" else float("nan"),
        f"Ergen & Pilanci ICML 2021 Thm 4.3 ({variant})",
        {
            "s": s,
            "t": t,
            "class_counts": counts,
            "parallel_optimum": float(
                sum(
                    0.5 * (a - v) ** 2 + 0.5 * beta * L * v ** (2.0 / L)
                    for a, v in zip(root, [scalar_power_prox(a, 1.0, beta, L) for a in root])
                )
            ),
        },
    )


def l0_interpolation(A, y) -> TheoryResult:
    """Fewest-neuron interpolating ReLU network for full-row-rank data (JMLR 2021 Lemma 9 and Lemma 12).

    Scalar y (Lemma 9): neurons ``A^+ (y)_+ / ||A^+ (y)_+||`` and ``A^+ (-y)_+ / ||A^+ (-y)_+||`` with output weights
    ``||A^+ (y)_+||`` and ``-||A^+ (-y)_+||`` (A A^+ = I_n makes ``(A u)_+`` the label's positive / negative part).
    Nonnegative Y (n, K) (Lemma 12, e.g. one-hot): neuron k ``A^+ y_k / ||A^+ y_k||``, output ``||A^+ y_k|| e_k``.

    Parameters
    ----------
    A : array of shape (n, d), full row rank (n <= d)
    y : array of shape (n,) or nonnegative (n, K)

    Returns
    -------
    TheoryResult
        ``objective`` = the l1-form value ``sum_j ||w_j||`` of these neurons; ``info["n_neurons"]`` the l0 count.

    Raises
    ------
    ValueError
        A without full row rank, or vector labels with negative entries.
    """
    A = as_matrix(A, "A")
    Y, was_1d = as_targets(y, A.shape[0])
    check_full_row_rank(A, name="A")
    Ap = A.T @ np.linalg.inv(A @ A.T)  # A^+ (full row rank)
    if was_1d:
        parts = [(s, np.maximum(s * Y[:, 0], 0.0)) for s in (1.0, -1.0)]
        cols = [(s, Ap @ p) for s, p in parts if np.any(p > 0)]
        U = np.stack([c / np.linalg.norm(c) for _, c in cols], axis=1)
        w = np.array([s * np.linalg.norm(c) for s, c in cols])
    else:
        if (Y < 0).any():
            raise ValueError("vector labels y must be nonnegative (e.g. one-hot) for JMLR 2021 Lemma 12")
        keep = np.flatnonzero(np.abs(Y).sum(axis=0) > 0)
        cols = Ap @ Y[:, keep]
        nrm = np.linalg.norm(cols, axis=0)
        U = cols / nrm
        w = np.zeros((keep.size, Y.shape[1]))
        w[np.arange(keep.size), keep] = nrm
    net = balanced_two_layer(U, w, output_1d=was_1d)
    F = net.predict(A)
    obj = float(np.abs(w).sum()) if w.ndim == 1 else float(np.linalg.norm(w, axis=1).sum())
    return TheoryResult(
        obj,
        net.weights,
        net,
        F,
        None,
        float("nan"),
        "Ergen & Pilanci JMLR 2021 Lemma 9 / 12",
        {"neurons": U, "output_weights": w, "n_neurons": U.shape[1]},
    )

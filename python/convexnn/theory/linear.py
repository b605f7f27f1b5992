"""Closed-form optima of two-layer and deep linear networks (Ergen & Pilanci, ICML 2021, Secs. 2-3).

Every network ``f(X) = X W_1 ... W_L`` with end-to-end map ``Z = W_1 ... W_L`` of singular values s_i satisfies
``sum_l ||W_l||_F^2 >= L * sum_i s_i^(2/L)`` with equality for the balanced, aligned factorization
``W_1 = U diag(t) Q_1^T, W_l = Q_{l-1} diag(t) Q_l^T, W_L = Q_{L-1} diag(t) V^T``, ``t_i = s_i^(1/L)`` (the
rank-r, aligned layers of ICML 2021 Thm 3.1 / 3.4 / 3.6 with the per-direction magnitudes t_j* of its parallel
model).  The problems therefore reduce to the end-to-end map:

* min-norm interpolation (beta = 0): ``Z = X^+ Y`` and ``P* = min sum_l ||W_l||_F^2 = L sum_i sigma_i(X^+ Y)^(2/L)``
  (Thm 2.1 / 3.1 / 3.4; for L = 2 and scalar y, ``P* = 2 ||X^+ y||`` and the paper's dual value
  ``D* = max {lambda^T y : ||X^T lambda||_2 <= 1} = ||X^+ y||``);
* regularized (beta > 0), objective ``1/2 ||f(X) - Y||_F^2 + beta/2 sum_l ||W_l||_F^2``: ``Z`` minimizes
  ``1/2 ||XZ - Y||^2 + (beta L / 2) sum_i s_i^(2/L)`` -- a nuclear-norm regression for L = 2 (eq. (10), (12);
  rank(W_1) = #{sigma_i(X^T Y) > beta} when X^T X = I), the group-lasso fixed point of Thm 3.3 for scalar y
  (direction ``X^T P(y)``, P the projection onto ``{u : ||X^T u|| <= beta t*^(2-L)}``), and per singular value
  ``s_i = argmin 1/2 (sigma_i(Y) - s)^2 + (beta L / 2) s^(2/L)`` for whitened X (Thm 3.6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import check_choice, check_scalar
from ._common import (
    TheoryResult,
    as_beta,
    as_depth,
    as_matrix,
    as_targets,
    is_whitened,
    orthonormal_columns_scale,
    squared_loss,
)
from ._solvers import deep_scalar_end_to_end, nuclear_norm_regression, scalar_power_prox, thin_svd
from .models import MLP, ParallelMLP


def _orthonormal(m, r, rng):
    if rng is None:
        return np.eye(m)[:, :r]
    Q, R = np.linalg.qr(rng.standard_normal((m, r)))
    return Q * np.sign(np.diag(R))


def balanced_factors(
    Z,
    L: int,
    widths: Sequence[int] | None = None,
    seed: int | None = None,
    architecture: str = "standard",
    output_1d: bool = False,
):
    """The balanced, aligned L-layer factorization of an end-to-end map Z (d, K).

    Parameters
    ----------
    Z : array of shape (d, K)
    L : int >= 2
    widths : sequence of L-1 ints, optional
        Hidden widths of the standard network (each >= rank Z; default rank Z).
    seed : int, optional
        Draw the orthonormal chains Q_l (the paper's arbitrary rho_l) at random; default: coordinate vectors.
    architecture : {"standard", "parallel"}
        "parallel": one width-1 sub-network per singular direction (ICML 2021, Thm 3.4).
    output_1d : bool

    Returns
    -------
    MLP or ParallelMLP
        Linear network with f(X) = X Z and ``sum_l ||W_l||_F^2 = L sum_i s_i^(2/L)``.
    """
    L = as_depth(L)
    architecture = check_choice(architecture, "architecture", ("standard", "parallel"))
    U, s, Vt = thin_svd(np.asarray(Z, dtype=np.float64), rtol=1e-14)
    r, t = s.size, s ** (1.0 / L)
    d, K = Z.shape
    if architecture == "parallel":
        if r == 0:
            U, t, Vt, r = np.zeros((d, 1)), np.zeros(1), np.zeros((1, K)), 1
        towers = [[t[j] * U[:, j : j + 1]] + [np.array([[t[j]]]) for _ in range(L - 2)] for j in range(r)]
        out = t[:, None] * Vt
        return ParallelMLP(towers, out[:, 0] if output_1d else out, "linear")
    widths = [max(r, 1)] * (L - 1) if widths is None else [int(m) for m in widths]
    if len(widths) != L - 1 or min(widths) < max(r, 1):
        raise ValueError(f"widths must have L - 1 = {L - 1} entries, each >= rank(Z) = {r}; got {widths}")
    rng = None if seed is None else np.random.default_rng(check_scalar(seed, "seed", low=0, integer=True))
    Q = [_orthonormal(m, r, rng) for m in widths]
    W = [(U * t) @ Q[0].T] + [(Q[l - 1] * t) @ Q[l].T for l in range(1, L - 1)] + [(Q[-1] * t) @ Vt]
    if output_1d:
        W[-1] = W[-1][:, 0]
    return MLP(W, None, "linear")


def _min_norm_end_to_end(X, Y):
    U, s, Vt = thin_svd(X)
    Z = (Vt.T / s) @ (U.T @ Y)
    res = np.linalg.norm(X @ Z - Y)
    if res > 1e-8 * max(np.linalg.norm(Y), 1.0):
        raise ValueError(
            f"beta = 0 is min-norm interpolation, which needs y in the range of X; "
            f"||X X^+ y - y|| = {res:.3g} (use beta > 0)"
        )
    return Z


def _regularized_end_to_end(X, Y, beta, L):
    if L == 2:
        Z, _, info = nuclear_norm_regression(X, Y, beta)
        return Z, info["method"]
    if Y.shape[1] == 1:
        return deep_scalar_end_to_end(X, Y[:, 0], beta, L)[:, None], "trust_region_search"
    if is_whitened(X):
        U, sig, Vt = np.linalg.svd(Y, full_matrices=False)
        s = np.array([scalar_power_prox(a, 1.0, beta, L) for a in sig])
        return X.T @ ((U * s) @ Vt), "whitened_svd"
    c = orthonormal_columns_scale(X)
    if c is not None:
        U, sig, Vt = np.linalg.svd(X.T @ Y / c, full_matrices=False)
        s = np.array([scalar_power_prox(a, c, beta, L) for a in sig])
        return (U * s) @ Vt, "orthogonal_svd"
    raise ValueError(
        "deep_linear with K > 1 outputs, L > 2 and beta > 0 needs whitened X (X X^T = I_n) or "
        "orthogonal columns (X^T X = c I_d) (Ergen & Pilanci, ICML 2021, Thm 3.6); use L = 2 for "
        "general X"
    )


def deep_linear(
    X,
    y,
    L: int,
    beta: float,
    architecture: str = "standard",
    widths: Sequence[int] | None = None,
    seed: int | None = None,
) -> TheoryResult:
    """Globally optimal L-layer linear network (Ergen & Pilanci, ICML 2021, Thm 2.1-2.4, 3.1, 3.3, 3.4, 3.6).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    L : int >= 2
        Depth (number of weight matrices).
    beta : float >= 0
        0: min-norm interpolation ``min sum_l ||W_l||_F^2 s.t. f(X) = y`` (needs y in range(X)).
        > 0: ``min 1/2 ||f(X) - y||^2 + beta/2 sum_l ||W_l||_F^2``.
    architecture : {"standard", "parallel"}
        Network returned (the optimum is the same for both).
    widths : sequence of L-1 ints, optional
        Hidden widths of the standard network (>= rank of the end-to-end map).
    seed : int, optional
        Random orthonormal chains instead of coordinate vectors (all are optimal).

    Returns
    -------
    TheoryResult
        ``objective``: ``sum_l ||W_l||_F^2`` (beta = 0) or the regularized objective; ``info["end_to_end"]``
        (Z, d x K), ``info["singular_values"]`` (s_i of Z), ``info["t"]`` (layer singular values s_i^(1/L)),
        ``info["paper_dual_value"]`` (beta = 0: ``tr(Lambda^T Y) = ||X^+ Y||_*``); ``dual``: Lambda* (beta = 0:
        ``(X^+)^T U_Z V_Z^T`` with ``sigma_max(Lambda^T X) = 1``; beta > 0: ``Y - X Z``).

    Raises
    ------
    ValueError
        beta = 0 with y outside range(X); K > 1, L > 2, beta > 0 with X neither whitened nor with orthogonal
        columns.

    Notes
    -----
    ``dual_objective`` is in the scale of ``objective``: beta = 0 gives ``L * D*^(2/L)`` (a valid lower bound for
    K = 1 or L = 2, since ``lambda^T y <= ||Z||_*``; nan otherwise), beta > 0 the value of the dual of ICML 2021
    eq. (3), ``1/2 ||Y||^2 - 1/2 ||Lambda - Y||^2 + beta/2 (L-2) sum_j t_j^2``, at the optimal t_j (equal to the
    objective exactly at the optimum; the problem in Z is non-convex for L > 2 and the global minimum is found by
    the exact reductions above).
    """
    X = as_matrix(X)
    Y, was_1d = as_targets(y, X.shape[0])
    L, beta = as_depth(L), as_beta(beta)
    if beta == 0.0:
        Z, method = _min_norm_end_to_end(X, Y), "pseudo_inverse"
    else:
        Z, method = _regularized_end_to_end(X, Y, beta, L)
    net = balanced_factors(Z, L, widths, seed, architecture, output_1d=was_1d)
    s = np.linalg.svd(Z, compute_uv=False)
    s = s[s > 1e-14 * max(s.max(initial=0.0), 1e-300)]
    fitted = net.predict(X)
    info = {"end_to_end": Z, "singular_values": s, "t": s ** (1.0 / L), "method": method}
    if beta == 0.0:
        objective = net.squared_weight_norm()
        Uz, _, Vzt = thin_svd(Z, rtol=1e-14)
        Ux, sx, Vxt = thin_svd(X)
        Lam = (Ux / sx) @ (Vxt @ (Uz @ Vzt))  # (X^+)^T U_Z V_Z^T
        D = float(np.sum(Lam * Y))
        info["paper_dual_value"] = D
        dual_obj = L * D ** (2.0 / L) if (Y.shape[1] == 1 or L == 2) and D > 0 else (0.0 if D == 0 else np.nan)
        theorem = "Ergen & Pilanci ICML 2021 Thm 2.1/3.1 (scalar) / 2.4/3.4 (vector), min-norm"
    else:
        objective = squared_loss(fitted, Y) + 0.5 * beta * net.squared_weight_norm()
        Lam = Y - X @ Z
        dual_obj = (
            0.5 * float(np.sum(Y * Y))
            - 0.5 * float(np.sum((Lam - Y) ** 2))
            + 0.5 * beta * (L - 2) * float(np.sum(s ** (2.0 / L)))
        )
        theorem = "Ergen & Pilanci ICML 2021 eq. (10)/(12) (L = 2), Thm 3.3 (scalar), Thm 3.6 (vector)"
    return TheoryResult(
        objective=float(objective),
        weights=list(net.to_mlp().weights if architecture == "parallel" else net.weights),
        network=net,
        fitted=fitted,
        dual=Lam[:, 0] if was_1d else Lam,
        dual_objective=float(dual_obj),
        theorem=theorem,
        info=info,
    )


def two_layer_linear(X, y, beta: float, widths: int | None = None) -> TheoryResult:
    """Globally optimal two-layer linear network ``f(X) = X W_1 W_2`` (Ergen & Pilanci, ICML 2021, Sec. 2).

    beta = 0: min-norm interpolation, ``objective = min ||W_1||_F^2 + ||W_2||_F^2 = 2 ||X^+ y||_*`` (Thm 2.1, 2.4;
    the unit-norm form's value ``min ||w_2||_1 = D* = ||X^+ y||`` is ``info["paper_dual_value"]``).  beta > 0:
    ``1/2 ||X W_1 W_2 - y||^2 + beta/2 (||W_1||^2 + ||W_2||^2)``, whose end-to-end map is the group-lasso /
    nuclear-norm solution (eq. (10), (12)); the optimal neurons ``info["neuron_directions"]`` (columns, unit norm)
    are the maximal right singular vectors of ``P_{X,beta}(Y)^T X`` (extreme points, Cor. 2.1, Remark 2.1).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float >= 0
    widths : int, optional
        Hidden width (>= the rank of the optimum).

    Returns
    -------
    TheoryResult
        As :func:`deep_linear` with L = 2.
    """
    res = deep_linear(X, y, 2, beta, widths=None if widths is None else [widths])
    U = thin_svd(res.info["end_to_end"], rtol=1e-14)[0]
    res.info["neuron_directions"] = U
    res.info["rank"] = U.shape[1]
    res.theorem = "Ergen & Pilanci ICML 2021 Thm 2.1-2.4, eq. (10), (12)"
    return res

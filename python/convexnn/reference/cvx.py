"""Exact optima of the convex programs with CVXPY + CLARABEL (interior point, tight tolerances).

CVXPY is an optional dependency (``pip install "convexnn[reference]"``); it is imported on first
use.  The objectives returned are recomputed with :mod:`.objectives` (the API's exact scaling), not
taken from the solver.  Meant for small problems (tests, toy examples).

Accuracy: with the tolerances below the objective is accurate to ~1e-9 relative or better (the
``theta`` returned by :func:`solve_gated_cvxpy` certifies it through :func:`.duality.gated_dual`).
The primal POINT is less accurate for the exponential-cone losses (logistic, cross_entropy): the
gradient-based certificate ``gated_dual(..., U)`` at it is typically 1e-7..1e-4, not 1e-9.  A status
"optimal_inaccurate" (CLARABEL's "AlmostSolved" at these tight tolerances) is returned, not raised.
"""

import warnings

import numpy as np

from ._validate import as_beta, as_masks, as_matrix, check_groups
from .losses import validate_targets
from .objectives import gated_objective, relative_violation, relu_objective

# CLARABEL settings: tight tolerances so that the optimum is certified to ~1e-9.
CLARABEL_OPTS = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8, max_iter=500)


def _cvxpy():
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "convexnn.reference.cvx needs cvxpy and clarabel: "
            'pip install "convexnn[reference]" (or pip install cvxpy clarabel)'
        ) from exc
    return cp


def _cvx_loss(cp, Z, Y, loss):
    """CVXPY expression of L(Z, Y) (Y already validated, shape (n, c))."""
    if loss == "squared":
        return 0.5 * cp.sum_squares(Z - Y)
    if loss == "logistic":
        return cp.sum(cp.logistic(-cp.multiply(Y, Z)))
    if loss == "hinge":
        return cp.sum(cp.pos(1 - cp.multiply(Y, Z)))
    if loss == "squared_hinge":
        return cp.sum_squares(cp.pos(1 - cp.multiply(Y, Z)))
    # cross_entropy: sum_k logsumexp(z_k) - <y_k, z_k>
    return cp.sum(cp.log_sum_exp(Z, axis=1)) - cp.sum(cp.multiply(Y, Z))


def _solve(cp, objective, constraints):
    problem = cp.Problem(cp.Minimize(objective), constraints)
    with warnings.catch_warnings():  # "inaccurate" is reported through the status
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=cp.CLARABEL, **CLARABEL_OPTS)
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"CLARABEL failed: status {problem.status}")
    return problem.status


def _drop_tiny_columns(blocks, zero_tol):
    """Set to exactly 0 the columns B_i[:, k] with norm <= zero_tol * (largest column norm)."""
    if zero_tol <= 0 or not any(B.size for B in blocks):
        return blocks
    norms = [np.linalg.norm(B, axis=1, keepdims=True) for B in blocks]  # (P, 1, c) each
    largest = max(float(N.max()) for N in norms)
    return [np.where(N <= zero_tol * largest, 0.0, B) for B, N in zip(blocks, norms)]


def _inputs(X, masks, y, beta, loss):
    X = as_matrix(X)
    M = as_masks(masks, X.shape[0])
    Y = validate_targets(y, loss)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have {X.shape[0]} rows (one per sample), got shape {np.shape(y)}")
    return X, M, Y, as_beta(beta)


def solve_gated_cvxpy(X, masks, y, beta, loss="squared", groups="output", zero_tol=0.0):
    """Solve the gated-ReLU program exactly.

    ``min_U L(sum_i D_i X U_i, y) + beta * Omega(U)`` (see :mod:`.objectives`).

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    y : array_like, shape (n,) or (n, c)
    beta : float
    loss : str
    groups : {"output", "neuron"}
    zero_tol : float
        Coefficient columns with norm <= zero_tol * (largest column norm) are set to exactly 0.
        Default 0: keep the raw interior-point solution, whose near-zero (~1e-10) columns matter
        for the duality gap at small beta (the dual bound is sensitive to the residual there).

    Returns
    -------
    dict
        ``objective`` (float, recomputed with :func:`.objectives.gated_objective`), ``U``
        ((P, d, c)), ``theta`` ((n, c), the solver's dual for z = A U in the residual convention
        -grad L(z), usable in :func:`.duality.gated_dual`), ``status`` (CVXPY status string).
    """
    cp = _cvxpy()
    check_groups(groups)
    X, M, Y, beta = _inputs(X, masks, y, beta, loss)
    (n, d), c, P = X.shape, Y.shape[1], M.shape[1]
    U = [cp.Variable((d, c)) for _ in range(P)]
    Z = cp.Variable((n, c))
    fit = [Z == sum(M[:, [i]] * X @ U[i] for i in range(P))] if P else [Z == 0]
    if groups == "output":
        penalty = sum(cp.sum(cp.norm(U[i], 2, axis=0)) for i in range(P)) if P else 0
    else:
        penalty = sum(cp.norm(U[i], "fro") for i in range(P)) if P else 0
    status = _solve(cp, _cvx_loss(cp, Z, Y, loss) + beta * penalty, fit)
    Uval = np.array([u.value for u in U]).reshape(P, d, c)
    (Uval,) = _drop_tiny_columns([Uval], zero_tol)
    theta = np.asarray(fit[0].dual_value, dtype=np.float64).reshape(n, c)
    return dict(objective=gated_objective(X, M, Uval, Y, beta, loss, groups), U=Uval, theta=theta, status=status)


def solve_relu_cvxpy(X, masks, y, beta, loss="squared", zero_tol=1e-7):
    """Solve the exact ReLU program (Pilanci & Ergen (ICML 2020) eq. (8) / (39)) exactly; groups="output".

    ``min L(sum_i D_i X (V_i - W_i), y) + beta * sum_i sum_k (||V_i[:, k]|| + ||W_i[:, k]||)``
    s.t. ``(2 D_i - I) X V_i >= 0`` and ``(2 D_i - I) X W_i >= 0`` (every column).

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    y : array_like, shape (n,) or (n, c)
    beta : float
    loss : str
    zero_tol : float
        Interior-point methods never return exact zeros: coefficient columns with norm
        <= zero_tol * (largest column norm) are set to exactly 0 (0 keeps the raw solution).
        The objective is evaluated after this clean-up.

    Returns
    -------
    dict
        ``objective`` (float, recomputed with :func:`.objectives.relu_objective` at the returned
        point), ``V``, ``W`` ((P, d, c)), ``violation`` (:func:`.objectives.relative_violation`),
        ``status``.
    """
    cp = _cvxpy()
    X, M, Y, beta = _inputs(X, masks, y, beta, loss)
    (n, d), c, P = X.shape, Y.shape[1], M.shape[1]
    V = [cp.Variable((d, c)) for _ in range(P)]
    W = [cp.Variable((d, c)) for _ in range(P)]
    Z = sum(M[:, [i]] * X @ (V[i] - W[i]) for i in range(P)) if P else np.zeros((n, c))
    signed = [np.where(M[:, [i]], 1.0, -1.0) * X for i in range(P)]  # (2 D_i - I) X
    constraints = [S @ B >= 0 for S, Vi, Wi in zip(signed, V, W) for B in (Vi, Wi)]
    penalty = sum(cp.sum(cp.norm(B, 2, axis=0)) for B in V + W) if P else 0
    if not constraints:
        Zv = cp.Variable((n, c))
        constraints, Z = [Zv == 0], Zv
    status = _solve(cp, _cvx_loss(cp, Z, Y, loss) + beta * penalty, constraints)
    Vval = np.array([v.value for v in V]).reshape(P, d, c)
    Wval = np.array([w.value for w in W]).reshape(P, d, c)
    Vval, Wval = _drop_tiny_columns([Vval, Wval], zero_tol)
    return dict(
        objective=relu_objective(X, M, Vval, Wval, Y, beta, loss),
        V=Vval,
        W=Wval,
        violation=relative_violation(X, M, Vval, Wval),
        status=status,
    )

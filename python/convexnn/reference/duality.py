"""Duality-gap certificate for the gated-ReLU program.

Primal (A U := sum_i D_i X U_i, Omega the group norm):

    p* = min_U  L(A U, y) + beta * Omega(U).

Fenchel duality (write L(z) = sup_t <t, z> - L*(t) and exchange min and sup) gives, for every t,

    p* >= -L*(t)   whenever   Omega_dual(A^T t) <= beta,

because min_U <A^T t, U> + beta Omega(U) is 0 if Omega_dual(A^T t) <= beta and -inf otherwise.
Here Omega_dual is ``max_i max_k ||X^T D_i t[:, k]||_2`` (groups="output") or
``max_i ||X^T D_i t||_F`` (groups="neuron").  At an optimum t = grad L(A U*).

We use the API's "residual" sign convention theta = -t (for the squared loss theta = y - z, the
residual), so the bound reads ``dual = -L*(-theta)`` with
``Omega_dual(A^T theta) <= beta``; for the squared loss it is ``1/2||y||^2 - 1/2||y - theta||^2``.

Candidate: theta = -grad L(z) at z = A U, scaled by s = min(1, beta / Omega_dual(A^T theta)).
Scaling by s in [0, 1] keeps -s*theta in dom L*, since dom L* is convex and contains 0 for every
loss here (L is bounded below by 0, L*(0) = 0): logistic p = s*sigmoid in [0, 1], hinge
y t in [-s, 0], squared hinge y t <= 0, cross entropy q = s*softmax + (1 - s)*y in the simplex.
So the bound is always valid (never +inf/-inf).

Tightness: for squared, logistic, squared_hinge and cross_entropy the loss is differentiable, so
the gap goes to 0 as U -> U*.  For the HINGE loss the optimal dual at the samples with
y_k z_k = 1 exactly is some value in [-1, 0] * y_k that the (sub)gradient at z cannot reveal
(the reference picks 0 there, see :func:`.losses.loss_grad`); the bound stays valid but is in
general NOT tight at the optimum.  Pass ``theta`` (e.g. the dual variable returned by
:func:`.cvx.solve_gated_cvxpy`) to certify a hinge solution; it is rescaled and clipped onto the
domain the same way.
"""

import numpy as np

from ._validate import as_beta, check_groups
from .losses import BINARY_LOSSES, loss_conjugate, loss_grad, validate_targets
from .objectives import gated_objective
from .operators import adjoint, block_norms, forward


def relative_gap(primal, dual):
    """(primal - dual) / |primal|; 0 if both are 0, inf if primal is 0 and dual is not."""
    if primal == 0:
        return 0.0 if dual == 0 else np.inf
    return (primal - dual) / abs(primal)


def _project_dual_domain(theta, Y, loss):
    """Clip theta (residual convention) into {theta : L*(-theta) < inf} where that is a box."""
    if loss == "logistic" or loss == "hinge":
        return Y * np.clip(Y * theta, 0.0, 1.0)  # -y t = y theta in [0, 1]
    if loss == "squared_hinge":
        return Y * np.maximum(Y * theta, 0.0)
    if loss == "cross_entropy":  # y - theta must be a probability row
        Q = np.maximum(Y - theta, 0.0)
        total = Q.sum(axis=1, keepdims=True)
        Q = np.where(total > 0, Q / np.where(total > 0, total, 1.0), Y)
        return Y - Q
    return theta


def gated_dual(X, masks, U, y, beta, loss, groups="output", theta=None):
    """Primal value, a dual lower bound and the relative gap of the gated program at U.

    Parameters
    ----------
    X : array_like, shape (n, d)
    masks : array_like of bool, shape (n, P)
    U : array_like, shape (P, d, c)
    y : array_like, shape (n,) or (n, c)
    beta : float
    loss : str
    groups : {"output", "neuron"}
    theta : array_like, shape (n, c) or (n,), optional
        Dual candidate in the residual convention (theta = -grad L(z) at an optimum). Default:
        ``-loss_grad(forward(X, masks, U), y, loss)``.  A user theta is first clipped onto the
        domain of the conjugate (binary losses, cross entropy), then rescaled.

    Returns
    -------
    dict
        ``primal`` (float), ``dual`` (float, <= the optimum), ``gap`` (relative, see
        :func:`relative_gap`), ``theta`` ((n, c), the scaled dual-feasible point, residual
        convention), ``scale`` (the factor s), ``dual_norm`` (Omega_dual(A^T theta) before scaling).
    """
    check_groups(groups)
    beta = as_beta(beta)
    Y = validate_targets(y, loss)
    primal = gated_objective(X, masks, U, Y, beta, loss, groups)
    if theta is None:
        theta = -loss_grad(forward(X, masks, U), Y, loss)
    else:
        shape = np.shape(theta)
        theta = np.asarray(theta, dtype=np.float64)
        theta = theta[:, None] if theta.ndim == 1 else theta
        if theta.shape != Y.shape:
            raise ValueError(f"theta must have the shape of y {Y.shape}, got {shape}")
        if loss in BINARY_LOSSES or loss == "cross_entropy":
            theta = _project_dual_domain(theta, Y, loss)
    norms = block_norms(adjoint(X, masks, theta), groups)
    dual_norm = float(np.max(norms)) if norms.size else 0.0
    scale = 1.0 if dual_norm <= beta else beta / dual_norm
    theta = scale * theta
    dual = -loss_conjugate(-theta, Y, loss)
    return dict(primal=primal, dual=dual, gap=relative_gap(primal, dual), theta=theta, scale=scale, dual_norm=dual_norm)

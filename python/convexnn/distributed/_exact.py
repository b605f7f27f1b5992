"""The exact (cone-constrained) ReLU program on row-partitioned data: a distributed augmented Lagrangian.

Program (Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, eq. (8)), for each output
column independently (groups="output"):

    min_{V, W}  L(sum_i D_i X (v_i - w_i), y) + beta sum_i (||v_i|| + ||w_i||)
    s.t.        (2 D_i - I) X v_i >= 0,   (2 D_i - I) X w_i >= 0.

The n x P x 2 cone constraints are row-wise, so each one stays on the worker holding its row, with its
multiplier lam >= 0 (the method of multipliers, Rockafellar's augmented Lagrangian for inequalities):

    F(V, W) = L(z) + sum_r ((lam_r - rho g_r)_+^2 - lam_r^2) / (2 rho),   g_r = s_r x_r^T u_i.

The inner problem min F + beta * group norms is solved by FISTA with backtracking and adaptive restart; every
iteration is ONE actor call per worker (the trial point's value and the next extrapolated point's value and
gradient), which returns two scalars, a (2, P, c) violation maximum and a (2, P, d, c) gradient. The outer step
is lam <- (lam - rho g)_+ on the workers, and rho grows when the violation does not shrink.

Certificate (valid for every lam >= 0, by weak duality). With t = grad L(z) and mu = (lam - rho g)_+ >= 0,
the Lagrangian dual of the program gives the lower bound -L*(t) whenever

    ||X^T (D_i t - S_i mu_i)|| <= beta   and   ||X^T (D_i t + S_i nu_i)|| <= beta   for all i,

(S_i = 2 D_i - I; mu, nu the v- and w-multipliers). These vectors are exactly the blocks of grad F, so with
m = max_i of their norms and s = min(1, beta / m), (s t, s mu, s nu) is dual feasible and -L*(s t) is a lower
bound on the optimum (the dual used by the single-machine solvers, -L*(-theta) with theta = -s t).
"""

from __future__ import annotations

import math
import time as _time
import uuid

import numpy as np

from .. import _core
from ._design import WorkerLostError

SOLVER_NAME = "distributed augmented Lagrangian (FISTA inner solves, per-row multipliers on the workers)"
_CHECK_EVERY = 10  # iterations between certificate checks (the check rides on a regular call)
_RHO0 = 1.0  # initial penalty; the loss curvature per row is O(1) for every supported loss
_RHO_GROWTH = 10.0  # rho *= this when an outer step shrinks the violation by less than _SHRINK
_SHRINK = 0.25
_RHO_MAX = 1e4
_LOSS_CURVATURE = {"squared": 1.0, "logistic": 0.25, "squared_hinge": 2.0, "cross_entropy": 0.5}


class _Workers:
    """The operator's actors with per-solve multipliers: one call per worker per request, failures reported."""

    def __init__(self, op, Y, loss):
        self.op, self.key = op, uuid.uuid4().hex
        rows = op.design.block_rows
        self.servers = [srv for srv, _, _ in op._servers]
        self._call(
            [
                srv.exact_init(self.key, [Y[slice(*rows[b])] for b in blocks], loss)
                for srv, (_, _, blocks) in zip(self.servers, op._servers)
            ]
        )
        self.block_lists = [blocks for _, _, blocks in op._servers]

    def _call(self, futures):
        try:
            return [f.result(timeout=self.op.timeout) for f in futures]
        except Exception as exc:  # noqa: BLE001 - a lost worker surfaces as a comm error of any type
            raise WorkerLostError(
                self.op._lost_message(f"the exact solver's multipliers live on the workers and a call failed ({exc!r})")
            ) from exc

    def evaluate(self, points, flags, rho):
        """[(F-parts: loss, al), viol (2, P, c), grad or None, t (n, c) or None] for each point, summed."""
        outs = self._call([srv.exact_eval(self.key, points, flags, rho) for srv in self.servers])
        result = []
        for j in range(len(points)):
            parts = [o[j] for o in outs]
            loss = sum(p[0] for p in parts)
            al = sum(p[1] for p in parts)
            viol = np.max([p[2] for p in parts], axis=0)
            grad = None if parts[0][3] is None else np.sum([p[3] for p in parts], axis=0)
            t = None
            if parts[0][4] is not None:  # t parts come back per block; place them in row order
                order = [(b, tb) for p, blocks in zip(parts, self.block_lists) for b, tb in zip(blocks, p[4])]
                t = np.concatenate([tb for _, tb in sorted(order, key=lambda q: q[0])])
            result.append((loss, al, viol, grad, t))
        return result

    def update(self, x, rho):
        self._call([srv.exact_update(self.key, x, rho) for srv in self.servers])

    def drop(self):
        try:
            for srv in self.servers:
                srv.exact_drop(self.key).result(timeout=30)
        except Exception:  # noqa: BLE001 - freeing is best effort; the actors go when the operator is released
            pass


def _prox(u, thresh):
    """Group soft-thresholding over the feature axis of (2, P, d, c)."""
    norms = np.linalg.norm(u, axis=2, keepdims=True)
    return u * np.maximum(0.0, 1.0 - thresh / np.where(norms > 0, norms, 1.0))


def _certificate(x, ev, Y, beta, loss, x_norm):
    """objective, dual bound, relative gap, relative violation at x from its evaluation ev (with grad and t)."""
    loss_v, _, viol, grad, t = ev
    norms = np.linalg.norm(x, axis=2)  # (2, P, c)
    objective = float(loss_v + beta * norms.sum())
    m = float(np.linalg.norm(grad, axis=2).max(initial=0.0))
    s = 1.0 if m <= beta else beta / m
    dual = float(-_core.loss_conjugate(np.ascontiguousarray(s * t), Y, loss))
    if objective != 0:
        gap = (objective - dual) / abs(objective)
    else:
        gap = 0.0 if dual == 0 else math.inf
    rel = np.where(norms > 0, viol / np.where(norms > 0, x_norm * norms, 1.0), 0.0) if x_norm > 0 else 0.0 * viol
    # the penalty schedule follows the violation relative to the whole network (tiny groups on their way to 0
    # have large relative violations that the multiplier steps do not shrink)
    total = float(viol.max(initial=0.0)) / max(x_norm * float(norms.max(initial=0.0)), 1e-300)
    return objective, dual, gap, float(np.max(rel, initial=0.0)), total


def _drop_small_infeasible(workers, x, rho, x_norm, tol):
    """x with the groups that violate their cone by more than tol (relative) zeroed when they are small (below
    1e-2 of the largest): the multiplier method leaves such groups on their way to 0, and their relative
    violation does not shrink. The returned point's objective and violation are measured afresh."""
    viol = workers.evaluate([x], [(False, False)], rho)[0][2]
    norms = np.linalg.norm(x, axis=2)
    top = float(norms.max(initial=0.0))
    rel = viol / np.maximum(x_norm * norms, 1e-300)
    drop = (norms > 0) & (rel > tol) & (norms < 1e-2 * top)
    if not drop.any():
        return x
    x = x.copy()
    x[np.broadcast_to(drop[:, :, None, :], x.shape)] = 0.0
    return x


def warm_point(warm_start, P, d, c):
    """(2, P, d, c) start from a relu SolveResult or a (V, W) tuple, or zeros."""
    from ..result import SolveResult

    x = np.zeros((2, P, d, c))
    if warm_start is None:
        return x
    if isinstance(warm_start, SolveResult) and warm_start.formulation != "relu":
        raise ValueError(
            "warm_start for distributed formulation='relu' must be a relu SolveResult or a tuple "
            "(V, W); a gated result's cone decomposition needs all rows on one machine"
        )
    coef = warm_start.coef_ if isinstance(warm_start, SolveResult) else warm_start
    if not isinstance(coef, tuple) or len(coef) != 2:
        raise ValueError("warm_start for formulation='relu' must be a relu SolveResult or a tuple (V, W)")
    for k, (name, B) in enumerate(zip(("V", "W"), coef)):
        B = np.asarray(B, dtype=np.float64)
        if B.shape != (P, d, c) or not np.isfinite(B).all():
            raise ValueError(f"warm_start {name} must be finite with shape {(P, d, c)}; got {B.shape}")
        x[k] = B
    return x


def solve_exact(op, Y, beta, loss, tol, max_iter, time_limit, warm_start=None, verbose=False, callback=None):
    """Solve the exact program on a DistributedOperator; the result dict of the single-machine binding's form.

    Parameters
    ----------
    op : DistributedOperator
        Row blocks and masks (P patterns of dimension d) on the workers.
    Y : ndarray (n, c)
    beta, loss, tol, max_iter, time_limit : as :func:`convexnn.solve` (max_iter counts FISTA iterations).
    warm_start : relu SolveResult, (V, W) tuple, or None
    callback : callable(info) -> bool, optional
        Called at every certificate check; False stops ("interrupted").

    Returns
    -------
    dict with objective, dual_objective, gap, max_violation, status, n_iter, solver, V, W (P, d, c), history.
    """
    if loss not in _LOSS_CURVATURE:
        raise ValueError(
            f"loss={loss!r} is not available for distributed formulation='relu' (its loss is not "
            f"smooth; the augmented Lagrangian's FISTA needs a gradient): use one of "
            f"{sorted(_LOSS_CURVATURE)}, or formulation='gated'"
        )
    start = _time.perf_counter()
    P, d, c = op.n_blocks, op.block_dim, Y.shape[1]
    x = warm_point(warm_start, P, d, c)
    x_norm = op.design.spectral_norm()
    workers = _Workers(op, Y, loss)
    try:
        return _run(workers, x, Y, beta, loss, tol, max_iter, time_limit, x_norm, start, verbose, callback)
    finally:
        workers.drop()


def _run(workers, x, Y, beta, loss, tol, max_iter, time_limit, x_norm, start, verbose, callback):
    """Outer (multiplier) and inner (FISTA) loops; see the module docstring."""
    rho = _RHO0
    L = max((_LOSS_CURVATURE[loss] + rho) * x_norm**2, 1e-12)
    hist = {k: [] for k in ("iteration", "objective", "dual_objective", "gap", "max_violation", "rho", "time")}
    ev_y = workers.evaluate([x], [(True, True)], rho)[0]
    y, tk, prev_viol, inner_tol = x.copy(), 1.0, math.inf, 1e-2
    n_iter, status, inner_iter = 0, "max_iter", 0
    best = None
    while n_iter < max_iter:
        F_y, g_y = ev_y[0] + ev_y[1], ev_y[3]
        x_new = _prox(y - g_y / L, beta / L)
        dx = x_new - y
        step = x_new - x
        if np.vdot(y - x_new, step) > 0:  # adaptive restart (O'Donoghue & Candes): momentum points uphill
            tk = 1.0
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * tk * tk))
        y_next = x_new + ((tk - 1.0) / t_next) * step
        check = (n_iter + 1) % _CHECK_EVERY == 0
        ev_x, ev_next = workers.evaluate([x_new, y_next], [(check, check), (True, False)], rho)
        n_iter += 1
        F_x = ev_x[0] + ev_x[1]
        bound = F_y + np.vdot(g_y, dx) + 0.5 * L * np.vdot(dx, dx)
        if F_x > bound + 1e-12 * max(1.0, abs(F_y)):
            L *= 2.0  # backtrack: y and its gradient stay
            continue
        x, y, tk, ev_y, L = x_new, y_next, t_next, ev_next, L * 0.95
        inner_iter += 1
        if not check:
            continue
        objective, dual, gap, viol, absviol = _certificate(x, ev_x, Y, beta, loss, x_norm)
        elapsed = _time.perf_counter() - start
        for k, v in zip(hist, (n_iter, objective, dual, gap, viol, rho, elapsed)):
            hist[k].append(v)
        if best is None or dual > best[1]:
            best = (objective, dual)
        if verbose:
            print(
                f"[convexnn.distributed relu] it {n_iter:6d} obj {objective:.10e} dual {dual:.10e} gap {gap:.2e} "
                f"viol {viol:.2e} rho {rho:.1e} L {L:.2e}"
            )
        if not math.isfinite(objective):
            status = "diverged"
            break
        if gap <= tol and viol <= tol:
            status = "converged"
            break
        if (
            callback is not None
            and callback(
                {
                    "iteration": n_iter,
                    "objective": objective,
                    "dual_objective": dual,
                    "gap": gap,
                    "max_violation": viol,
                    "time": elapsed,
                }
            )
            is False
        ):
            status = "interrupted"
            break
        if elapsed > time_limit:
            status = "time_limit"
            break
        residual = L * float(np.linalg.norm(dx)) / max(beta, float(np.linalg.norm(g_y)), 1e-300)
        if residual <= inner_tol or inner_iter >= 2000:  # inner solve done: multiplier step
            if verbose:
                print(
                    f"  outer step: viol {absviol:.2e} prev {prev_viol:.2e} residual {residual:.2e} inner {inner_iter}"
                )
            workers.update(x, rho)
            if absviol > _SHRINK * prev_viol and rho < _RHO_MAX:
                rho *= _RHO_GROWTH
            prev_viol = absviol
            inner_tol = max(0.1 * inner_tol, 1e-3 * tol)
            y, tk, inner_iter = x.copy(), 1.0, 0
            ev_y = workers.evaluate([y], [(True, False)], rho)[0]
    x = _drop_small_infeasible(workers, x, rho, x_norm, tol)
    ev = workers.evaluate([x], [(True, True)], rho)[0]
    objective, dual, gap, viol, absviol = _certificate(x, ev, Y, beta, loss, x_norm)
    if best is not None and best[1] > dual:  # every dual point is valid: report the best bound seen
        dual = best[1]
        gap = (objective - dual) / abs(objective) if objective != 0 else (0.0 if dual == 0 else math.inf)
    if status == "converged" and not (gap <= tol and viol <= tol):
        status = "max_iter"
    return dict(
        objective=objective,
        dual_objective=dual,
        gap=gap,
        max_violation=viol,
        status=status,
        n_iter=n_iter,
        solver=SOLVER_NAME,
        V=x[0].copy(),
        W=x[1].copy(),
        history=hist,
    )

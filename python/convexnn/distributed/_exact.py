"""The exact (cone-constrained) ReLU program on row-partitioned data, by constraint generation over the rows.

Program (Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, eq. (8)), per output column:

    min_{V, W}  L(sum_i D_i X (v_i - w_i), y) + beta sum_i (||v_i|| + ||w_i||)
    s.t.        (2 D_i - I) X v_i >= 0,   (2 D_i - I) X w_i >= 0.

The loss and the products A(U) = sum_i D_i X U_i involve all n rows and run distributed (the
:class:`DistributedOperator`). The cone constraints are per row, and at the optimum only few rows are active,
so the driver keeps a working set S of rows (|S| x d numbers and their |S| x P mask bits, gathered from the
workers) and runs the library's exact C++ solver with the cone constraints restricted to S
(``_core.solve_relu`` on ``_core.ConeOperatorF64(op, X_S, masks of S)``: the same FISTA with the exact cone
prox, ray Newton and cone-oracle certificate as on one machine). Then the workers check every row of the
returned point (the relative violation (s_r x_r^T u)_- / (||X||_2 ||u||) of each nonzero column u), the most
violated rows join S, and the solve is warm-started again, until no row outside S is violated. The sequence is
the classical cutting-plane (constraint generation) method for the row constraints: each restricted program is
a relaxation.

Guarantees (the single-machine ones):

* The dual bound of a restricted program is a lower bound on its optimum, which is at most the full program's
  optimum (fewer constraints): so every round's bound is a valid certificate for the full program.
* The objective is computed over all rows (the distributed products), and ``max_violation`` over all rows on the
  workers, in the single-machine definition. ``status="converged"`` only when the last solve certified gap <= tol,
  the violation over ALL rows is <= tol, and no row outside S was violated beyond rounding.

Rounds that still add rows solve at a loose tolerance and at most _LOOSE_ITER iterations (their points only
choose rows); a round after which no row is violated is followed by one at ``tol``.
A lost worker is handled by the operator (its blocks are recomputed and the product re-run); the working set is
on the driver, so nothing of the solve's state is lost with a worker.
"""

from __future__ import annotations

import math
import time as _time

import numpy as np

from .. import _core
from . import _worker

SOLVER_NAME = "distributed constraint generation (exact C++ solver on a working set of cone rows)"
# A row outside the working set joins it when its relative violation exceeds this (rounding of the margins
# is ~1e-16 relative; the cone projections on S are accurate to 1e-12).
_ADD_TOL = 1e-12
# A warm start's rows active within this relative slack seed the working set (at an optimum of the full
# program they hold its active constraints; without them the first restricted solve would move away from it).
_ACTIVE_TOL = 1e-9
_LOOSE_TOL = 1e-4  # tolerance of the rounds that only choose rows (tightened to tol when none is violated)
_LOOSE_ITER = 20  # iterations of such a round at most: a few rows' relaxation is nearly gated, and slow to solve
_MAX_ADD = 4096  # rows added per round at most (the most violated ones)
_MAX_ROUNDS = 200
_MEMO_BYTES = 64 << 20  # products remembered across rounds (the C++ solver's start-up power iteration)


class _WorkingSet:
    """Global row indices S (sorted), their rows X_S (|S|, d) and masks (|S|, P), gathered from the workers."""

    def __init__(self, op):
        self.op = op
        self.index = np.zeros(0, dtype=np.int64)
        self.rows = np.zeros((0, op.block_dim))
        self.masks = np.zeros((0, op.n_blocks), dtype=bool)
        self._stops = np.array([r1 for _, r1 in op.design.block_rows], dtype=np.int64)

    def add(self, index) -> int:
        """Fetch the rows ``index`` (global) not yet in S from their workers; the number added."""
        index = np.setdiff1d(np.asarray(index, dtype=np.int64), self.index)
        if len(index) == 0:
            return 0
        starts = [r0 for r0, _ in self.op.design.block_rows]
        owner = np.searchsorted(self._stops, index, side="right")
        per_block = [index[owner == b] - starts[b] for b in range(len(starts))]
        parts = self.op._map(_worker.block_cone_rows, per_block=lambda b: (per_block[b],))
        rows = np.concatenate([self.rows] + [p[0] for p in parts])
        masks = np.concatenate([self.masks] + [p[1] for p in parts])
        all_index = np.concatenate([self.index] + [per_block[b] + starts[b] for b in range(len(starts))])
        order = np.argsort(all_index, kind="stable")
        self.index, self.rows, self.masks = all_index[order], np.ascontiguousarray(rows[order]), masks[order]
        return len(index)

    def patterns(self) -> _core.PatternSet:
        """The masks of the op's gates on the rows of S, in the order of S (a PatternSet on |S| rows)."""
        m = len(self.index)
        padded = np.zeros((self.op.n_blocks, 64 * ((m + 63) // 64)), dtype=bool)
        padded[:, :m] = self.masks.T
        words = np.packbits(padded, axis=1, bitorder="little").view("<u8")
        return _core.PatternSet.from_words(m, self.op.block_dim, np.ascontiguousarray(words), self.op.gates)


def _seed_rows(n, d) -> np.ndarray:
    """The first working set: 2 d rows spread evenly over the data (the restricted program needs >= 1 row)."""
    return np.unique(np.linspace(0, n - 1, min(n, 2 * d)).astype(np.int64))


def check_rows(op, V, W, x_norm, per_group, add_tol=_ADD_TOL):
    """The cone constraints of (V, W) over ALL rows, on the workers.

    Returns
    -------
    rel_violation : float
        max over nonzero columns u of max_rows (s_r x_r^T u)_- / (||X||_2 ||u||) (the single-machine measure).
    candidates : ndarray of int64
        Global rows with relative violation above ``add_tol``: per column its ``per_group`` worst, the union
        ordered by violation.
    """
    U = np.stack([V, W])  # (2, P, d, c)
    norms = np.linalg.norm(U, axis=2)  # (2, P, c)
    s_idx, p_idx, k_idx = np.nonzero(norms > 0)
    if len(p_idx) == 0 or x_norm == 0:
        return 0.0, np.zeros(0, dtype=np.int64)
    vectors = np.ascontiguousarray(U[s_idx, p_idx, :, k_idx].T)  # (d, m)
    scale = 1.0 / (x_norm * norms[s_idx, p_idx, k_idx])
    parts = op._map(_worker.block_cone_check, (vectors, p_idx, scale, int(per_group), float(add_tol)))
    viol = np.max([p[0] for p in parts], axis=0)
    starts = [r0 for r0, _ in op.design.block_rows]
    group = np.concatenate([p[1] for p in parts])
    row = np.concatenate([p[2] + s for p, s in zip(parts, starts)])
    score = np.concatenate([p[3] for p in parts])
    keep = np.zeros(len(row), dtype=bool)  # per column, its per_group worst rows over all blocks
    for g in np.unique(group):
        where = np.flatnonzero(group == g)
        keep[where[np.argsort(-score[where], kind="stable")[:per_group]]] = True
    row, score = row[keep], score[keep]
    order = np.argsort(-score, kind="stable")
    _, first = np.unique(row[order], return_index=True)
    return float(np.max(viol * scale)), row[order][np.sort(first)]


def _solve_restricted(op, ws, Y, beta, loss, tol, max_iter, time_limit, V0, W0, verbose, callback):
    """The exact C++ solver with the products on ``op`` (all rows) and the cone constraints on the rows of S."""
    # ConeOperatorF64 keeps op, X_S and the PatternSet alive; m = |S| < n: ray Newton uses single-block products
    cone = _core.ConeOperatorF64(op, ws.rows, ws.patterns())
    return _core.solve_relu(
        cone,
        Y,
        beta,
        loss=loss,
        tol=tol,
        max_iter=max_iter,
        time_limit=time_limit,
        warm_V=V0,
        warm_W=W0,
        verbose=verbose,
        callback=callback,
    )


def warm_point(warm_start, P, d, c):
    """(V, W) of shape (P, d, c) each from a relu SolveResult or a (V, W) tuple, or (None, None)."""
    from ..result import SolveResult

    if warm_start is None:
        return None, None
    if isinstance(warm_start, SolveResult) and warm_start.formulation != "relu":
        raise ValueError(
            "warm_start for distributed formulation='relu' must be a relu SolveResult or a tuple "
            "(V, W); a gated result's cone decomposition needs all rows on one machine"
        )
    coef = warm_start.coef_ if isinstance(warm_start, SolveResult) else warm_start
    if not isinstance(coef, tuple) or len(coef) != 2:
        raise ValueError("warm_start for formulation='relu' must be a relu SolveResult or a tuple (V, W)")
    out = []
    for name, B in zip(("V", "W"), coef):
        B = np.asarray(B, dtype=np.float64)
        if B.shape != (P, d, c) or not np.isfinite(B).all():
            raise ValueError(f"warm_start {name} must be finite with shape {(P, d, c)}; got {B.shape}")
        out.append(np.ascontiguousarray(B))
    return tuple(out)


class _Progress:
    """History rows and callback of the rounds, with iterations and times counted from the solve's start."""

    def __init__(self, callback, start):
        self.callback, self.start = callback, start
        self.rows, self.done, self.round_start, self.n_rows = [], 0, start, 0

    def hook(self):
        if self.callback is None:
            return None
        done, t0, n_rows = self.done, self.round_start - self.start, self.n_rows
        return lambda info: self.callback(
            dict(info, iteration=int(info["iteration"]) + done, time=float(info["time"]) + t0, rows=n_rows)
        )

    def record(self, raw):
        t0 = self.round_start - self.start
        for values in zip(*raw["history"].values()):
            row = dict(zip(raw["history"], values))
            self.rows.append(dict(row, iteration=int(row["iteration"]) + self.done, time=float(row["time"]) + t0))
        self.done += int(raw["n_iter"])

    def history(self):
        keys = self.rows[0].keys() if self.rows else ()
        return {k: [r[k] for r in self.rows] for k in keys}


def solve_exact(op, Y, beta, loss, tol, max_iter, time_limit, warm_start=None, verbose=False, callback=None):
    """Solve the exact program on a DistributedOperator; the result dict of the single-machine binding's form.

    Parameters
    ----------
    op : DistributedOperator
        Row blocks and masks (P patterns of dimension d) on the workers.
    Y : ndarray (n, c)
    beta, loss, tol, max_iter, time_limit : as :func:`convexnn.solve` (max_iter counts the C++ solver's
        iterations over all rounds).
    warm_start : relu SolveResult, (V, W) tuple, or None
    callback : callable(info) -> bool, optional
        Called at every certificate of the C++ solver (info also has "rows", the working-set size); False stops
        ("interrupted").

    Returns
    -------
    dict with objective, dual_objective, gap, max_violation, status, n_iter, solver, V, W (P, d, c), history,
    n_rounds and working_set (the global indices of the constraint rows of the last round).
    """
    op.memoize(_MEMO_BYTES)
    try:
        return _constraint_generation(op, Y, beta, loss, tol, max_iter, time_limit, warm_start, verbose, callback)
    finally:
        op.memoize(0)


def _constraint_generation(op, Y, beta, loss, tol, max_iter, time_limit, warm_start, verbose, callback):
    """The rounds of solve_exact (see the module docstring)."""
    start = _time.perf_counter()
    n, P, d, c = op.n_samples, op.n_blocks, op.block_dim, Y.shape[1]
    V, W = warm_point(warm_start, P, d, c)
    x_norm = op.design.spectral_norm()
    ws = _WorkingSet(op)
    ws.add(_seed_rows(n, d))
    if V is not None:  # rows the warm start violates or holds active
        ws.add(check_rows(op, V, W, x_norm, d, -_ACTIVE_TOL)[1][:_MAX_ADD])
    progress = _Progress(callback, start)
    best_dual, round_tol, rounds = -math.inf, max(tol, _LOOSE_TOL), 0
    while True:
        rounds += 1
        progress.round_start, progress.n_rows = _time.perf_counter(), len(ws.index)
        raw = _solve_restricted(
            op,
            ws,
            Y,
            beta,
            loss,
            round_tol,
            max_iter - progress.done if round_tol <= tol else min(max_iter - progress.done, _LOOSE_ITER),
            max(time_limit - (progress.round_start - start), 1e-6),
            V,
            W,
            verbose,
            progress.hook(),
        )
        progress.record(raw)
        V, W = np.ascontiguousarray(raw["V"]), np.ascontiguousarray(raw["W"])
        if np.isfinite(raw["dual_objective"]):
            best_dual = max(best_dual, float(raw["dual_objective"]))
        violation, candidates = check_rows(op, V, W, x_norm, d)
        added = ws.add(candidates[:_MAX_ADD])
        if verbose:
            print(
                f"[convexnn.distributed relu] round {rounds}: {raw['status']} at tol {round_tol:.0e} after "
                f"{raw['n_iter']} iterations, objective {raw['objective']:.10e}, violation over all rows "
                f"{violation:.2e}, {added} rows added ({len(ws.index)} in the working set)"
            )
        if raw["status"] not in ("converged", "max_iter") or progress.done >= max_iter or rounds >= _MAX_ROUNDS:
            break
        if not added and round_tol <= tol:
            break
        # no row violated: the next round certifies at the caller's tolerance; rows added: back to choosing rows
        round_tol = max(tol, _LOOSE_TOL) if added else tol
    objective = float(raw["objective"])
    dual = best_dual if math.isfinite(best_dual) else float(raw["dual_objective"])
    gap = (objective - dual) / abs(objective) if objective != 0 else (0.0 if dual == 0 else math.inf)
    status = raw["status"]
    if status == "converged" and not (added == 0 and round_tol <= tol and gap <= tol and violation <= tol):
        status = "max_iter"
    return dict(
        objective=objective,
        dual_objective=dual,
        gap=gap,
        max_violation=violation,
        status=status,
        n_iter=progress.done,
        solver=f"{SOLVER_NAME}: {rounds} rounds, cone constraints on {len(ws.index)} of {n} rows",
        V=V,
        W=W,
        history=progress.history(),
        n_rounds=rounds,
        working_set=ws.index.copy(),
    )

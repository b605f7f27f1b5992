"""Cutting planes for the exact program (seed 001 Algorithm 1; seed 003 dual (4)/(15)).

Solve the exact program on a working set of patterns, evaluate the dual constraint
``max_{u in K_i, ||u|| <= 1} |theta^T D_i X u| <= beta`` of candidate patterns at the current dual point
``theta = -grad L(z)`` with the C++ cone oracle, add the most violated ones, re-solve warm, repeat.

When the arrangement can be enumerated, the candidates are ALL its patterns: once none is violated (to
``tol``) and the restricted solve has converged, the scaled dual point is feasible for the program over every
pattern, so its dual objective is a lower bound on the optimum of a ReLU network of ANY width; the result
then has ``certified_global = True`` and its ``dual_objective``/``gap`` are those global ones. Otherwise the
candidates are heuristic (fresh Gaussian gates, sign flips of near-zero entries of the current neurons, seed
003 "Alg3") and ``max_dual_violation`` reports the largest violation found.
"""

from __future__ import annotations

import time

import numpy as np

from . import _core
from .patterns import Patterns, enumerate_patterns, sample_patterns

# Candidate pool sizes of the heuristic search: Gaussian gates per round (at least this many, or 10 per
# current pattern) and the relative |x^T g| threshold under which a sign is flipped.
HEURISTIC_MIN_SAMPLES = 2000
HEURISTIC_SAMPLES_PER_PATTERN = 10
FLIP_THRESHOLD = 0.05


def dual_constraint_values(Xb, Y, loss, z, candidates):
    """Largest dual-constraint value per candidate pattern at prediction z.

    Returns (values (P_cand,), grad (n, c)): values[j] = max_k max(+-) max_{u in K_j, ||u||<=1} theta_k^T D_j X u
    with theta = -grad L(z).
    """
    grad = _core.loss_gradient(np.ascontiguousarray(z, dtype=np.float64).reshape(len(Xb), -1), Y, loss)
    values = np.zeros(candidates.n_patterns)
    for k in range(grad.shape[1]):
        r = np.ascontiguousarray(-grad[:, k], dtype=Xb.dtype)
        pos, neg, _ = _core.dual_constraint_oracle(Xb, candidates._set, r)
        values = np.maximum(values, np.maximum(pos, neg))
    return values, grad


def heuristic_candidates(X, bias, current, round_index, seed):
    """Gaussian gates plus Alg3 sign flips of the current patterns' gates (deduplicated)."""
    n_samples = max(HEURISTIC_MIN_SAMPLES, HEURISTIC_SAMPLES_PER_PATTERN * current.n_patterns)
    pool = sample_patterns(X, n_patterns=n_samples, seed=seed + 7919 * (round_index + 1), bias=bias)
    Xb = np.hstack([X, np.ones((len(X), 1), dtype=X.dtype)]) if bias else X
    flipped = _core.flip_patterns(Xb, np.ascontiguousarray(current.gates.T), FLIP_THRESHOLD)
    merged, _ = pool._set.merge(flipped)
    return Patterns(merged, bias)


def solve_cutting_planes(solve_fn, X, Xb, Y, y_user, beta, patterns, *, loss, bias, seed, tol, time_limit,
                         verbose, max_rounds=100, add_per_round=10, enumerate_limit=50_000, **solve_kwargs):
    """Run the cutting-plane loop around ``solve_fn`` (convexnn.solve with formulation='relu')."""
    start = time.perf_counter()
    try:
        pool = enumerate_patterns(X, bias=bias, max_patterns=enumerate_limit)
        exhaustive = True
    except ValueError:
        pool, exhaustive = None, False
    current, warm, total_iter, history = patterns, None, 0, []
    threshold = beta * (1.0 + tol)
    worst = np.inf
    res = grad = None
    for round_index in range(max_rounds):
        remaining = None if time_limit is None else max(1e-3, time_limit - (time.perf_counter() - start))
        res = solve_fn(X, y_user, beta, patterns=current, formulation="relu", loss=loss, bias=bias, seed=seed,
                       tol=tol, time_limit=remaining, warm_start=warm, verbose=verbose, **solve_kwargs)
        total_iter += res.n_iter
        V, W = res.coef_
        z = _core.MaskedOperatorF64(np.asarray(Xb, dtype=np.float64), current._set).forward(np.ascontiguousarray(V - W))
        candidates = pool if exhaustive else heuristic_candidates(X, bias, current, round_index, seed)
        values, grad = dual_constraint_values(Xb, Y, loss, z, candidates)
        worst = float(values.max(initial=0.0))
        # Candidates already in the working set are the restricted solve's business (its own certificate);
        # only new patterns can improve the objective.
        merged, index = current._set.merge(candidates._set)
        is_new = np.asarray(index) >= current.n_patterns
        new_violated = np.flatnonzero(is_new & (values > threshold))
        history.append({"round": round_index, "patterns": current.n_patterns, "objective": res.objective,
                        "max_dual_constraint": worst, "violated": int(new_violated.size),
                        "time": time.perf_counter() - start})
        if verbose:
            print(f"[convexnn cutting planes] round {round_index}: {current.n_patterns} patterns, objective "
                  f"{res.objective:.10g}, max dual constraint {worst:.6g} (beta {beta:.6g}), "
                  f"{new_violated.size} new violated", flush=True)
        if new_violated.size == 0 or res.status in ("interrupted", "time_limit", "diverged"):
            break
        chosen = new_violated[np.argsort(-values[new_violated], kind="stable")][:add_per_round]
        merged, _ = current._set.merge(candidates._set.subset(np.asarray(chosen, dtype=np.int64)))
        pad = np.zeros((merged.n_patterns - current.n_patterns,) + V.shape[1:])
        warm = (np.concatenate([V, pad]), np.concatenate([W, pad]))
        current = Patterns(merged, bias)

    res.n_iter = total_iter
    res.time = time.perf_counter() - start
    res.max_dual_violation = worst
    res.history = history
    res.solver = res.solver + "+cutting-planes"
    if exhaustive and grad is not None:
        # theta scaled to satisfy the dual constraint of EVERY pattern of the arrangement: its dual objective
        # is a lower bound on the training objective of a ReLU network of any width (seed 003, Theorem 1).
        scale = 1.0 if worst <= beta else beta / worst
        dual = float(-_core.loss_conjugate(scale * grad, Y, loss))
        res.dual_objective = dual
        res.gap = (res.objective - dual) / abs(res.objective) if res.objective != 0 else (0.0 if dual == 0 else np.inf)
        res.kkt_residual = max(res.gap, 0.0)
        res.certified_global = bool(res.gap <= tol and res.max_violation <= tol)
        if res.status != "converged" and res.certified_global:
            res.status = "converged"
    return res

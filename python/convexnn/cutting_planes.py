"""Column generation for the exact program: add the patterns of the neurons that violate the dual constraint.

The exact program over a set of patterns is optimal over ALL two-layer ReLU networks exactly when its dual
point theta = -grad L(z) satisfies the dual constraint of every neuron (Pilanci & Ergen, "Neural Networks are
Convex Regularizers", ICML 2020, eq. (4) and Theorem 1):

    max_{||u|| <= 1} |theta_k^T (X u)_+| <= beta    for every output k.

The loop (the cutting-plane method of Ergen & Pilanci, "Convex Geometry and Duality of Over-parameterized
Neural Networks", JMLR 2021, Algorithms 1 and 3, with an exact instead of a relaxed oracle where possible):

1. solve the exact program on the current patterns (warm-started);
2. search for violating neurons at its dual point: over ALL regions of the arrangement when it can be enumerated
   (exact), otherwise by the local-ascent neuron oracle (convexnn.oracle) from many starts; each found neuron's
   region is scored exactly by the per-pattern cone oracle;
3. add the most violated new patterns and repeat, until none is found, the time is up or the round cap is hit.

Guarantees. With enumeration, "none violated" proves the scaled dual point feasible for the program over every
pattern, so its dual objective is a lower bound for a ReLU network of ANY width (``certified_global``). With the
oracle, the result says what was searched and the largest violation found (``max_dual_violation``); it is never
called global. For c > 1 outputs the program solved has independent heads (a neuron per output); a network
whose neurons feed several outputs pays beta ||u|| ||alpha||_2 instead of beta ||u|| ||alpha||_1 and can do
better, so the global lower bound for c > 1 constrains ||Theta^T (X u)_+||_2 <= beta for every neuron, bounded
per region by min(sigma_max(X^T D_i Theta), sqrt(sum_k M_ik^2)) (M_ik: the head-k cone maxima), which is valid
for shared neurons.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from . import _core
from ._operators import make_operator
from .oracle import default_starts, neuron_oracle
from .patterns import Patterns, enumerate_patterns
from .result import ConvergenceWarning

# Rounds of column generation at most, new patterns per round (at least ADD_MIN, or this fraction of the
# current count), and the largest arrangement enumerated for an exact search.
MAX_ROUNDS = 100
ADD_MIN = 10
ADD_FRACTION = 0.25
ENUMERATE_LIMIT = 50_000
# Inner solves stop at this relative tolerance until the search finds no violation; the last solve uses `tol`.
INNER_TOL = 1e-4
# Share of the remaining time a round's restricted solve and L-BFGS refinement of the current network take
# together, the solve's part of it at first and its bounds (then set by the measured rates, see _TimeSplit),
# and the refinement's iterations at most when a time limit bounds it (else POLISH_MAX_ITER of convexnn.polish).
ROUND_TIME_SHARE = 0.65
SOLVE_WEIGHT = 0.75
SOLVE_WEIGHT_BOUNDS = (0.15, 0.9)
POLISH_TIMED_ITER = 5000
# Share of the remaining time a round's neuron-oracle search may take.
ORACLE_TIME_SHARE = 0.2
# The refinement starts from the restricted solution's network plus the round's violating neurons.
GROW = True
# The refined network's patterns replace the working set (see _polished_patterns).
PRUNE = True


def dual_constraint_values(Xb, Y, loss, z, candidates):
    """Largest head dual-constraint value per candidate pattern at prediction z, and the per-output values.

    Returns (values (P_cand,), per_output (P_cand, c), grad (n, c)): per_output[j, k] =
    max(+-) max_{u in K_j, ||u|| <= 1} theta_k^T D_j X u with theta = -grad L(z); values = per_output.max(1).
    """
    grad = _core.loss_gradient(np.ascontiguousarray(z, dtype=np.float64).reshape(len(Xb), -1), Y, loss)
    values, per_output = _values_at(Xb, grad, candidates)
    return values, per_output, grad


def _values_at(Xb, grad, candidates):
    """(values, per_output) of :func:`dual_constraint_values` for a gradient already computed."""
    per_output = np.zeros((candidates.n_patterns, grad.shape[1]))
    for k in range(grad.shape[1]):
        r = np.ascontiguousarray(-grad[:, k], dtype=Xb.dtype)
        pos, neg, _ = _core.dual_constraint_oracle(Xb, candidates._set, r)
        per_output[:, k] = np.maximum(pos, neg)
    return per_output.max(axis=1, initial=0.0), per_output


def shared_neuron_bound(Xb, patterns, grad, per_output):
    """Upper bound on max_{u in K_i, ||u|| <= 1} ||Theta^T D_i X u||_2 for every pattern i (Theta = -grad).

    Both min(...) terms are valid: the spectral norm of the (d, c) block X^T D_i Theta ignores the cone, and
    ||a||_2 <= sqrt(sum_k max_u a_k(u)^2) bounds the vector by its per-output maxima.
    """
    Xb64 = np.asarray(Xb, dtype=np.float64)
    G = make_operator(Xb64, patterns, np.float64).adjoint(np.ascontiguousarray(-grad))  # (P, d, c)
    spectral = np.linalg.norm(G, ord=2, axis=(1, 2))
    return np.minimum(spectral, np.sqrt((per_output**2).sum(axis=1)))


def global_dual_bound(Xb, Y, loss, pool, grad, per_output, beta):
    """Dual objective of theta = -grad scaled to satisfy the dual constraint of EVERY neuron of the enumerated
    arrangement ``pool``: a lower bound on the training objective of a ReLU network of any width (Theorem 1 of
    Pilanci & Ergen, ICML 2020); for c > 1 outputs valid for neurons shared by the outputs."""
    c = grad.shape[1]
    bound = per_output.max(initial=0.0) if c == 1 else shared_neuron_bound(Xb, pool, grad, per_output).max(initial=0.0)
    scale = 1.0 if bound <= beta else beta / float(bound)
    return float(-_core.loss_conjugate(scale * grad, Y, loss))


def relative_gap(objective, dual):
    """(objective - dual) / |objective|; 0 when both are 0, inf when only the objective is."""
    if objective != 0:
        return (objective - dual) / abs(objective)
    return 0.0 if dual == 0 else np.inf


def enumerate_or_none(X, bias, limit=None):
    """All regions of the arrangement when there are at most ``limit`` (default ENUMERATE_LIMIT), else None."""
    try:
        return enumerate_patterns(X, bias=bias, max_patterns=ENUMERATE_LIMIT if limit is None else limit)
    except ValueError:
        return None


def _current_neurons(V, W):
    """Unit directions of the nonzero columns of the blocks (d, m): starts for the oracle."""
    cols = [B.transpose(1, 0, 2).reshape(B.shape[1], -1) for B in (V, W)]
    U = np.hstack(cols)
    norms = np.linalg.norm(U, axis=0)
    return U[:, norms > 0] / norms[norms > 0]


def _oracle_candidates(Xb, grad, V, W, previous, seed, time_limit=None):
    """The neurons the local-ascent oracle finds at theta = -grad (an OracleResult, one per distinct region)."""
    theta = -grad
    extra = _current_neurons(V, W)
    if previous is not None and previous.size:
        extra = np.hstack([extra, previous])
    starts = default_starts(Xb, theta, extra=extra, seed=seed)
    found = neuron_oracle(Xb, theta, starts=starts, time_limit=time_limit)
    return found


def _search(res, current, Xb, Xb64, Y, loss, bias, pool, previous, seed, time_limit=None):
    """Candidate patterns and their exact dual-constraint values at the restricted solution ``res``.

    Returns (candidates, values, per_output, grad, description, neurons found by the oracle or None).
    """
    V, W = res.coef_
    z = make_operator(Xb64, current, np.float64).forward(np.ascontiguousarray(V - W))
    if pool is not None:
        values, per_output, grad = dual_constraint_values(Xb, Y, loss, z, pool)
        return pool, values, per_output, grad, f"all {pool.n_patterns} regions of the arrangement", previous
    grad = _core.loss_gradient(np.ascontiguousarray(z, dtype=np.float64).reshape(len(Xb), -1), Y, loss)
    found = _oracle_candidates(Xb64, grad, V, W, previous, seed, time_limit)
    candidates = Patterns(_core.PatternSet.from_gates(Xb, np.ascontiguousarray(found.neurons.T)), bias)
    values, per_output = _values_at(Xb, grad, candidates)
    searched = (
        f"local ascent of the neuron oracle from {found.n_starts} starts per output and sign, "
        f"{candidates.n_patterns} regions scored exactly"
    )
    return candidates, values, per_output, grad, searched, found.neurons


def _violating_neurons(Xb, grad, candidates, chosen, per_output):
    """The unit neurons attaining the chosen candidates' dual-constraint values and their output signs.

    Returns (U (d, k) unit columns inside their patterns' cones, A (k, c)): neuron j feeds output k_j (its
    most violated head) with sign +1 where theta_k^T (X u_j)_+ is the violated value, -1 where its negative is.
    """
    chosen = np.asarray(chosen, dtype=np.int64)
    heads = per_output[chosen].argmax(axis=1) if chosen.size else np.zeros(0, dtype=np.int64)
    U = np.zeros((Xb.shape[1], chosen.size))
    A = np.zeros((chosen.size, grad.shape[1]))
    for k in np.unique(heads):
        cols = np.flatnonzero(heads == k)
        r = np.ascontiguousarray(-grad[:, k], dtype=Xb.dtype)
        pos, neg, maximisers = _core.dual_constraint_oracle(Xb, candidates._set, r, chosen[cols])
        U[:, cols] = np.asarray(maximisers, dtype=np.float64).T
        A[cols, k] = np.where(pos >= neg, 1.0, -1.0)
    keep = np.linalg.norm(U, axis=0) > 0
    return U[:, keep], A[keep]


def _grown_network(net, U, A, Xb64, Y, loss, beta):
    """``net`` (W1 (m, d), W2 (m, c)) with the violating neurons (U, A) added at a scale that lowers F.

    At balanced scale a neuron b^(1/2) (u, a) (unit u, a) adds phi(b) = L(z + b h a^T) - L(z) + beta b with
    h = (X u)_+; phi'(0) = beta - theta^T h a < 0 for a violated one ("boosting a neuron"). Each neuron's b_j
    minimises phi_j on a geometric grid; all k are added at b_j / k, which lowers F by convexity of L (Jensen:
    L(z + sum_j b_j h_j a_j^T / k) <= sum_j L(z + b_j h_j a_j^T) / k).
    """
    W1 = np.asarray(net.W1, dtype=np.float64)
    W2 = np.asarray(net.w2, dtype=np.float64).reshape(W1.shape[0], -1)
    if U.shape[1] == 0:
        return W1, W2
    Z = np.maximum(Xb64 @ W1.T, 0.0) @ W2
    base = float(_core.loss_value(np.ascontiguousarray(Z), Y, loss))
    H = np.maximum(Xb64 @ U, 0.0)
    scales = np.zeros(U.shape[1])
    for j in range(U.shape[1]):
        hn = float(H[:, j] @ H[:, j])
        if hn <= 0:
            continue
        b0 = float(np.linalg.norm(Y)) / np.sqrt(hn)  # the size of a step that moves z by about ||y||
        best_phi, best_b = 0.0, 0.0
        for b in b0 * 2.0 ** np.arange(-24, 3):
            phi = float(_core.loss_value(np.ascontiguousarray(Z + b * np.outer(H[:, j], A[j])), Y, loss)) - base
            phi += beta * b
            if phi < best_phi:
                best_phi, best_b = phi, b
        scales[j] = best_b
    keep = scales > 0
    if not keep.any():
        return W1, W2
    s = np.sqrt(scales[keep] / keep.sum())
    return np.vstack([W1, (U[:, keep] * s).T]), np.vstack([W2, A[keep] * s[:, None]])


class _TimeSplit:
    """A round's time for the restricted solve and the refinement, in proportion to their measured rates of
    descent (objective decrease per second) in the last round. Either can be the faster: measured at
    1e-3 beta_max, L-BFGS on the network takes diabetes (squared loss) from 25.26 to 25.21 in 1 s while the
    exact solver needs 5 s for 25.31 -> 25.26; on breast cancer (logistic) the exact solver goes 19.43 -> 19.30
    in 5 s and L-BFGS 19.43 -> 19.41 in 2 s."""

    def __init__(self):
        self.weight = SOLVE_WEIGHT
        self.rates = {}

    def update(self, which, gain, seconds):
        if not (np.isfinite(gain) and seconds > 0):
            return
        self.rates[which] = max(gain, 0.0) / seconds
        if len(self.rates) == 2 and self.rates["solve"] + self.rates["polish"] > 0:
            w = self.rates["solve"] / (self.rates["solve"] + self.rates["polish"])
            self.weight = float(np.clip(w, *SOLVE_WEIGHT_BOUNDS))

    def seconds(self, which, time_limit, start):
        if time_limit is None:
            return None
        part = self.weight if which == "solve" else 1.0 - self.weight
        return max(1e-3, ROUND_TIME_SHARE * part * (time_limit - (time.perf_counter() - start)))


def _polished_patterns(res, current, warm, Xb64, Y, loss, beta, bias, left, grow=None):
    """Add the patterns of the restricted solution's network refined by L-BFGS (convexnn.polish); its blocks are
    the warm start when the refined network is better. ``grow`` = (U, A): violating neurons added to the network
    before the refinement (see _grown_network). Returns (patterns, warm start, F): F is the refined network's
    objective, an upper bound on its blocks' convex objective, or inf when it was not better."""
    from .generation import network_to_blocks
    from .polish import polish_network

    net = res.network()
    if net.n_neurons == 0 and (grow is None or grow[0].shape[1] == 0):
        return current, warm, np.inf
    if grow is not None:
        W1, W2 = _grown_network(net, grow[0], grow[1], Xb64, Y, loss, beta)
    else:
        W1 = np.asarray(net.W1, dtype=np.float64)
        W2 = np.asarray(net.w2, dtype=np.float64).reshape(net.n_neurons, -1)
    iters = {} if left is None else {"max_iter": POLISH_TIMED_ITER}
    W1p, W2p, F = polish_network(W1, W2, Xb64, Y, beta, loss, time_limit=left, **iters)
    if not F < res.objective * (1 - 1e-12):
        return current, warm, np.inf
    refined = _core.PatternSet.from_gates(Xb64, np.ascontiguousarray(W1p))
    if PRUNE:
        # The refined network's patterns replace the working set: the moved neurons' old patterns are zero
        # columns of the warm start, which only slow the restricted solve (the oracle re-finds any that matter).
        grown = Patterns(refined, bias)
    else:
        merged, _ = current._set.merge(refined)
        grown = Patterns(merged, bias)
    from .network import Network

    V, W = network_to_blocks(Network(W1p, W2p, bias=bias), Xb64, grown)
    return grown, (V, W), F


def _blocks_objective(Xb64, Y, loss, beta, patterns, warm):
    """The exact program's objective at a (V, W) warm start over ``patterns`` (inf for none or another kind)."""
    if not (isinstance(warm, tuple) and len(warm) == 2):
        return np.inf
    from .reference.objectives import relu_objective

    V, W = (np.asarray(a, dtype=np.float64) for a in warm)
    if V.shape != W.shape or V.ndim != 3 or V.shape[0] != patterns.n_patterns:
        return np.inf
    return float(relu_objective(Xb64, patterns.dense(), V, W, Y, beta, loss))


def _keep_best(res, best, solve_fn, X, y_user, beta, loss, bias, seed, tol, verbose, solve_kwargs):
    """``res``, or a one-iteration restricted solve from the best point met when that point is better.

    ``best`` = (F, (V, W), patterns): an upper bound F on the convex objective of the blocks (V, W) over
    ``patterns`` (a refined network's blocks, the warm start). A proximal-gradient step from a feasible point
    does not increase the objective, and the step recomputes the certificate at the returned point; the point
    is kept as given when even the step came out worse.
    """
    F, warm, pats = best
    if not F < res.objective * (1 - 1e-10) or warm is None:
        return res
    V, W = (np.asarray(a, dtype=np.float64) for a in warm)
    kwargs = dict(solve_kwargs, max_iter=1)
    with warnings.catch_warnings():  # the one step stops at max_iter by design
        warnings.simplefilter("ignore", ConvergenceWarning)
        alt = solve_fn(
            X,
            y_user,
            beta,
            patterns=pats,
            formulation="relu",
            loss=loss,
            bias=bias,
            seed=seed,
            tol=tol,
            warm_start=(V, W),
            verbose=verbose,
            **kwargs,
        )
    if alt.objective < res.objective:
        alt.n_iter += res.n_iter
        if alt.status == "max_iter":  # the one step's cap is not the loop's stopping reason
            alt.status = res.status
        return alt
    return res


def _pad_warm(V, W, n_new):
    pad = np.zeros((n_new,) + V.shape[1:])
    return np.concatenate([V, pad]), np.concatenate([W, pad])


def solve_cutting_planes(
    solve_fn,
    X,
    Xb,
    Y,
    y_user,
    beta,
    patterns,
    *,
    loss,
    bias,
    seed,
    tol,
    time_limit,
    verbose,
    max_rounds=None,
    enumerate_limit=ENUMERATE_LIMIT,
    warm_start=None,
    progress=None,
    polish=True,
    **solve_kwargs,
):
    """Run the column-generation loop around ``solve_fn`` (convexnn.solve with formulation='relu').

    ``progress``, if given, is called with a dict per round (round, patterns, objective, max_dual_constraint).
    """
    start = time.perf_counter()
    max_rounds = MAX_ROUNDS if max_rounds is None else max_rounds
    pool = enumerate_or_none(X, bias, enumerate_limit)
    exhaustive = pool is not None
    Xb64 = np.asarray(Xb, dtype=np.float64)
    current, warm, total_iter, history = patterns, warm_start, 0, []
    threshold = beta * (1.0 + tol)
    worst, res, grad, per_output, previous = np.inf, None, None, None, None
    status_override, searched, tight = None, "", False
    # The best point met (the warm start, a refined network's blocks): the time-limited restricted solves are not
    # monotone, so the result is checked against it at the end (see _keep_best).
    best = (_blocks_objective(Xb64, Y, loss, beta, patterns, warm_start), warm_start, patterns)
    split, f_warm = _TimeSplit(), best[0]
    for round_index in range(max_rounds + 1):
        t_solve = time.perf_counter()
        res = solve_fn(
            X,
            y_user,
            beta,
            patterns=current,
            formulation="relu",
            loss=loss,
            bias=bias,
            seed=seed,
            tol=tol if tight or round_index == max_rounds else max(tol, INNER_TOL),
            time_limit=split.seconds("solve", time_limit, start),
            warm_start=warm,
            verbose=verbose,
            **solve_kwargs,
        )
        split.update("solve", f_warm - res.objective, time.perf_counter() - t_solve)
        total_iter += res.n_iter
        V, W = res.coef_
        oracle_time = (
            None if time_limit is None else max(1e-3, ORACLE_TIME_SHARE * (time_limit - (time.perf_counter() - start)))
        )
        candidates, values, per_output, grad, searched, previous = _search(
            res, current, Xb, Xb64, Y, loss, bias, pool, previous, seed + round_index, oracle_time
        )
        worst = float(values.max(initial=0.0))
        # Candidates already in the working set are the restricted solve's business (its own certificate);
        # only new patterns can improve the objective.
        _, index = current._set.merge(candidates._set)
        is_new = np.asarray(index) >= current.n_patterns
        new_violated = np.flatnonzero(is_new & (values > threshold))
        record = {
            "round": round_index,
            "patterns": current.n_patterns,
            "objective": res.objective,
            "max_dual_constraint": worst,
            "violated": int(new_violated.size),
            "time": time.perf_counter() - start,
        }
        history.append(record)
        if progress is not None:
            progress(record)
        if verbose:
            print(
                f"[convexnn cutting planes] round {round_index}: {current.n_patterns} patterns, objective "
                f"{res.objective:.10g}, max dual constraint {worst:.6g} (beta {beta:.6g}), "
                f"{new_violated.size} new violated",
                flush=True,
            )
        out_of_time = time_limit is not None and time.perf_counter() - start >= time_limit
        finished = new_violated.size == 0 and res.status == "converged"
        if finished and res.gap > tol and not tight and not out_of_time and round_index < max_rounds:
            # The search ended on an inner solve at INNER_TOL: re-solve at the requested tolerance and search
            # again at that point (its dual point differs; violations there are added like any round's).
            tight, warm, f_warm = True, res, res.objective
            continue
        if new_violated.size == 0 or res.status in ("interrupted", "diverged") or out_of_time:
            if res.status == "converged" and new_violated.size and out_of_time:
                status_override = "time_limit"
            break
        if round_index == max_rounds:
            status_override = "max_iter"  # the round cap, with violated patterns left
            break
        n_add = max(ADD_MIN, int(ADD_FRACTION * current.n_patterns))
        chosen = new_violated[np.argsort(-values[new_violated], kind="stable")][:n_add]
        merged, _ = current._set.merge(candidates._set.subset(np.asarray(chosen, dtype=np.int64)))
        warm = _pad_warm(V, W, merged.n_patterns - current.n_patterns)
        current, f_warm = Patterns(merged, bias), res.objective
        if polish and not exhaustive:
            grow = _violating_neurons(Xb, grad, candidates, chosen, per_output) if GROW else None
            t_polish = time.perf_counter()
            left = split.seconds("polish", time_limit, start)
            current, warm, F = _polished_patterns(res, current, warm, Xb64, Y, loss, beta, bias, left, grow)
            split.update("polish", res.objective - min(F, res.objective), time.perf_counter() - t_polish)
            f_warm = min(F, res.objective)
            if verbose:
                print(
                    f"[convexnn cutting planes] refined network: objective {F:.10g}; next solve's share of the "
                    f"round {split.weight:.2f}",
                    flush=True,
                )
            if F < best[0]:
                best = (F, warm, current)
    res = _keep_best(res, best, solve_fn, X, y_user, beta, loss, bias, seed, tol, verbose, solve_kwargs)
    return _finish(
        res,
        Xb,
        Y,
        loss,
        beta,
        tol,
        exhaustive,
        pool,
        grad,
        per_output,
        worst,
        status_override,
        total_iter,
        history,
        searched,
        start,
    )


def _finish(
    res,
    Xb,
    Y,
    loss,
    beta,
    tol,
    exhaustive,
    pool,
    grad,
    per_output,
    worst,
    status_override,
    total_iter,
    history,
    searched,
    start,
):
    res.n_iter = total_iter
    res.time = time.perf_counter() - start
    res.max_dual_violation = worst
    res.history = history
    res.solver = res.solver + "+cutting-planes"
    res.search = searched
    if status_override is not None and res.status == "converged":
        res.status = status_override
    if not exhaustive or grad is None:
        return res
    dual = global_dual_bound(Xb, Y, loss, pool, grad, per_output, beta)
    gap = relative_gap(res.objective, dual)
    res.dual_objective = dual
    res.gap = gap
    res.kkt_residual = max(gap, 0.0)
    res.certified_global = bool(gap <= tol and res.max_violation <= tol)
    if res.certified_global and res.status in ("max_iter", "time_limit"):
        res.status = "converged"
    return res

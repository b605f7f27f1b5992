"""The neuron oracle: the most violated dual constraint over ALL neurons, by local ascent.

The dual of the exact program over every sign pattern (Pilanci & Ergen, "Neural Networks are Convex
Regularizers", ICML 2020, eq. (4) and its finite form in the proof of Theorem 1) constrains a dual point
theta (n,) by

    max_{||u|| <= 1}  |theta^T (X u)_+|  <=  beta,

a maximum over every neuron u. Its maximiser is the neuron that improves the restricted program most (column
generation, "boosting a neuron"); its sign pattern 1[X u >= 0] is the pattern to add. Maximising is NP-hard in
general, so this module maximises it locally from many starts: the function f(u) = r^T (X u)_+ is positively
homogeneous and linear on every region of the arrangement, f(u) = (X^T D(u) r)^T u, so the fixed-point step

    u  <-  X^T D(u) r / ||X^T D(u) r||

moves to the best unit direction of the current region's linear piece (an exact maximiser of the linearization);
a step that lowers f is halved towards the previous point (a backtracking line search on the sphere). A fixed
point u* = X^T D(u*) r / ||.|| lies inside its own pattern's cone, where it attains the cone-constrained maximum
of that pattern: a local maximiser of f.

Vector outputs with shared neurons (a hidden neuron feeding every output: Sahiner et al., "Vector-output ReLU
neural network problems are copositive programs", ICLR 2021) need max_{||u|| <= 1} ||Theta^T (X u)_+||_2; the
same ascent alternates u with the unit output direction w = Theta^T (X u)_+ / ||.||.

All starts are updated together (two GEMMs with the (n, d) data per step), so a round of the oracle costs a few
dozen matrix products. Every value returned is attained by the returned neuron (a lower bound on the maximum,
never a claim that it is the maximum).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

# Ascent steps per oracle call and the relative improvement below which a start counts as converged.
DEFAULT_STEPS = 40
STALL_RTOL = 1e-10
# Random Gaussian starts added to the data-driven ones.
DEFAULT_RANDOM_STARTS = 64
# Regions kept per polishing round, and the nearest hyperplanes (samples) across which each neuron's region is
# flipped to a neighbour.
POLISH_WIDTH = 32
FLIPS_PER_NEURON = 8


@dataclass
class OracleResult:
    """Neurons found by :func:`neuron_oracle`, best first.

    Attributes
    ----------
    values : ndarray (m,)
        f(u_j) for each returned neuron (attained values: lower bounds on the true maximum).
    neurons : ndarray (d, m)
        Unit neurons u_j, one per column.
    signs : ndarray (m,)
        +1 where the value is theta^T (X u)_+, -1 where it is -theta^T (X u)_+ (heads); +1 for shared.
    outputs : ndarray (m,)
        The output column k whose theta_k gives the value (heads); -1 for shared neurons.
    n_starts : int
        Starts ascended.
    """

    values: np.ndarray
    neurons: np.ndarray
    signs: np.ndarray
    outputs: np.ndarray
    n_starts: int

    @property
    def best(self) -> float:
        return float(self.values[0]) if self.values.size else 0.0


def _normalize_columns(U):
    norms = np.linalg.norm(U, axis=0)
    keep = norms > 0
    return U[:, keep] / norms[keep], keep


def default_starts(Xb, Theta, extra=None, n_random=DEFAULT_RANDOM_STARTS, seed=0, max_data_starts=256):
    """Starting directions: given neurons, data points weighted by |theta|, X^T theta_+-, random Gaussians.

    Parameters
    ----------
    Xb : ndarray (n, d)
    Theta : ndarray (n, c)
    extra : ndarray (d, m) or None
        Neurons to start from (current neurons, the previous round's maximisers).
    n_random : int
    seed : int
    max_data_starts : int
        Data points used as starts: those with the largest |theta| (their neurons split the data there).

    Returns
    -------
    ndarray (d, S), unit columns.
    """
    rng = np.random.default_rng(seed)
    n, d = Xb.shape
    cols = []
    if extra is not None and extra.size:
        cols.append(np.asarray(extra, dtype=np.float64).reshape(d, -1))
    weight = np.abs(Theta).sum(axis=1)
    top = np.argsort(-weight, kind="stable")[: min(n, max_data_starts)]
    cols.append(Xb[top].T)
    for k in range(Theta.shape[1]):
        for s in (1.0, -1.0):
            cols.append((Xb.T @ np.maximum(s * Theta[:, k], 0.0))[:, None])
    if n_random:
        cols.append(rng.standard_normal((d, n_random)))
    U, _ = _normalize_columns(np.hstack(cols))
    return U


def _values(Xb, R, U):
    """f for every (residual column, neuron) pair: R (n, S) paired column-wise with U (d, S) -> (S,)."""
    H = Xb @ U
    np.maximum(H, 0.0, out=H)
    return np.einsum("ns,ns->s", R, H), H


def _attained(Xb, Theta, U, signs, outputs):
    """f(u_j) of each unit neuron: s_j theta_{k_j}^T (X u_j)_+, or ||Theta^T (X u_j)_+|| where k_j = -1."""
    H = np.maximum(Xb @ U, 0.0)
    out = np.empty(U.shape[1])
    heads = outputs >= 0
    if heads.any():
        out[heads] = signs[heads] * np.einsum("nm,nm->m", Theta[:, outputs[heads]], H[:, heads])
    if (~heads).any():
        out[~heads] = np.linalg.norm(Theta.T @ H[:, ~heads], axis=0)
    return out


def _ascend(Xb, R, U, steps, deadline=None):
    """Fixed-point ascent of f_s(u) = R[:, s]^T (X u)_+ over unit u, column s of U for column s of R."""
    f, _ = _values(Xb, R, U)
    active = np.ones(U.shape[1], dtype=bool)
    for _ in range(steps):
        if not active.any() or (deadline is not None and time.perf_counter() > deadline):
            break
        idx = np.flatnonzero(active)
        H = Xb @ U[:, idx]
        G = Xb.T @ np.where(H >= 0.0, R[:, idx], 0.0)
        Unew, ok = _normalize_columns(G)
        cand = U[:, idx].copy()
        cand[:, ok] = Unew
        fnew, _ = _values(Xb, R[:, idx], cand)
        worse = fnew < f[idx]
        if worse.any():  # backtrack once: the midpoint of the old and new direction on the sphere
            mid = U[:, idx][:, worse] + cand[:, worse]
            mid, okm = _normalize_columns(mid)
            sub = np.flatnonzero(worse)[okm]
            fm, _ = _values(Xb, R[:, idx][:, sub], mid)
            better = fm > f[idx][sub]
            cand[:, sub[better]] = mid[:, better]
            fnew[sub[better]] = fm[better]
            still = np.flatnonzero(worse)
            still = still[fnew[still] < f[idx][still]]
            cand[:, still] = U[:, idx][:, still]
            fnew[still] = f[idx][still]
        gain = fnew - f[idx]
        U[:, idx] = cand
        f[idx] = fnew
        active[idx] = gain > STALL_RTOL * np.maximum(np.abs(fnew), 1e-300)
    return f, U


def _ascend_shared(Xb, Theta, U, steps, deadline=None):
    """Alternating ascent of ||Theta^T (X u)_+||_2 over unit u (shared neurons of a c-output network)."""
    H = np.maximum(Xb @ U, 0.0)
    Wout = Theta.T @ H  # (c, S)
    f = np.linalg.norm(Wout, axis=0)
    for _ in range(steps):
        if deadline is not None and time.perf_counter() > deadline:
            break
        Wn = Wout / np.maximum(f, 1e-300)
        R = Theta @ Wn  # (n, S): the direction's scalar residual
        fr, Unew = _ascend(Xb, R, U.copy(), 3)
        H = np.maximum(Xb @ Unew, 0.0)
        Wnew = Theta.T @ H
        fnew = np.linalg.norm(Wnew, axis=0)
        better = fnew > f * (1 + STALL_RTOL)
        if not better.any():
            break
        U[:, better], Wout[:, better], f[better] = Unew[:, better], Wnew[:, better], fnew[better]
    return f, U


def _neighbour_regions(Xb, U, n_flips=None):
    """The regions of the neurons U (d, m) and, for each, its neighbours across the ``n_flips`` hyperplanes
    nearest to it (one sample's side flipped), as a PatternSet (gates: the neuron itself, for bookkeeping)."""
    from . import _core

    n, d = Xb.shape
    n_flips = min(n, FLIPS_PER_NEURON if n_flips is None else n_flips)
    H = Xb @ U  # (n, m)
    rel = np.abs(H) / np.maximum(np.linalg.norm(Xb, axis=1), 1e-300)[:, None]
    near = (
        np.argpartition(rel, n_flips - 1, axis=0)[:n_flips]
        if n_flips < n
        else np.tile(np.arange(n)[:, None], (1, U.shape[1]))
    )
    base = H >= 0
    masks = [base]
    for f in range(near.shape[0]):
        flipped = base.copy()
        cols = np.arange(U.shape[1])
        flipped[near[f], cols] = ~flipped[near[f], cols]
        masks.append(flipped)
    M = np.concatenate(masks, axis=1)  # (n, m (1 + n_flips))
    pad = (-n) % 64
    if pad:
        M = np.vstack([M, np.zeros((pad, M.shape[1]), dtype=bool)])
    words = np.ascontiguousarray(np.packbits(M.T, axis=1, bitorder="little")).view("<u8").astype(np.uint64)
    gates = np.ascontiguousarray(np.tile(U.T, (1 + near.shape[0], 1)))
    pats = _core.PatternSet.from_words(n, d, np.ascontiguousarray(words), gates)
    return pats


def _polish_heads(Xb, r, U, rounds, width, deadline=None):
    """Hill-climb on the arrangement's regions with exact per-region maxima (the C++ cone oracle).

    A maximiser of f usually lies on a face between regions, where the fixed-point step oscillates. Each round
    evaluates, exactly, the cone-constrained maximum of the regions of the current neurons and of their
    neighbours across nearly-tight hyperplanes (single-sample flips), and moves to the best regions' maximisers.
    Returns (values (m,), neurons (d, m)) of the best ``width`` regions found, for the residual +r.
    """
    from . import _core

    best_vals = np.zeros(0)
    best_U = np.zeros((Xb.shape[1], 0))
    current = U
    top = -np.inf
    for _ in range(rounds):
        if deadline is not None and time.perf_counter() > deadline and best_vals.size:
            break
        merged = _neighbour_regions(Xb, current)
        pos, _, maximisers = _core.dual_constraint_oracle(Xb, merged, np.ascontiguousarray(r), None, 1e-12, 0, False)
        # dual_constraint_oracle's maximiser is for the larger sign; recompute the +r one where they differ.
        order = np.argsort(-pos, kind="stable")[:width]
        cand = maximisers[order].T.copy()
        vals = pos[order]
        fix = np.flatnonzero(
            np.einsum("ns,ns->s", np.tile(r[:, None], (1, cand.shape[1])), np.maximum(Xb @ cand, 0.0))
            < vals * (1 - 1e-6)
        )
        dense = merged.dense() if fix.size else None
        for j in fix:
            proj = _core.project_onto_pattern_cone(Xb, merged, int(order[j]), Xb.T @ (dense[:, order[j]] * r))
            u = proj["u"]
            cand[:, j] = u / np.linalg.norm(u) if np.linalg.norm(u) > 0 else 0.0
        best_vals = np.concatenate([best_vals, vals])
        best_U = np.hstack([best_U, cand])
        if vals.size == 0 or vals[0] <= top * (1 + 1e-12):
            break
        top = vals[0]
        current = cand[:, np.linalg.norm(cand, axis=0) > 0]
        if current.shape[1] == 0:
            break
    return best_vals, best_U


def neuron_oracle(Xb, Theta, starts=None, steps=DEFAULT_STEPS, shared=False, keep=32, polish_rounds=8, time_limit=None):
    """Maximise the dual constraint over all unit neurons by local ascent from many starts.

    Parameters
    ----------
    Xb : ndarray (n, d)
        Data (with the bias column when the network has biases), float64.
    Theta : ndarray (n,) or (n, c)
        Dual point (theta = -grad L(z) at the current predictions z).
    starts : ndarray (d, S) or None
        Starting neurons (default: :func:`default_starts`).
    steps : int
        Ascent steps per start.
    shared : bool
        c > 1: maximise ||Theta^T (X u)_+||_2 (shared neurons) instead of max_k |theta_k^T (X u)_+| (heads).
    keep : int
        Neurons returned (the best distinct patterns).
    polish_rounds : int
        Rounds of the exact region hill-climb after the ascent (heads only; 0 to skip).
    time_limit : float or None
        Seconds for the whole search (the ascent and the polish stop early, keeping what they found).

    Returns
    -------
    OracleResult
    """
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    Xb = np.asarray(Xb, dtype=np.float64)
    Theta = np.asarray(Theta, dtype=np.float64).reshape(len(Xb), -1)
    U0 = default_starts(Xb, Theta) if starts is None else _normalize_columns(np.asarray(starts, float))[0]
    S = U0.shape[1]
    if shared and Theta.shape[1] > 1:
        f, U = _ascend_shared(Xb, Theta, U0.copy(), steps, deadline)
        vals, neurons = f, U
        signs = np.ones(S)
        outputs = -np.ones(S, dtype=np.int64)
    else:
        c = Theta.shape[1]
        # Every start ascends for every (output, sign) pair: columns of R are +-theta_k.
        R = np.repeat(np.concatenate([Theta, -Theta], axis=1), S, axis=1)
        U = np.tile(U0, (1, 2 * c))
        # The ascent gets 60% of the time, the polish the rest.
        ascent_deadline = None if deadline is None else time.perf_counter() + 0.6 * time_limit
        vals, neurons = _ascend(Xb, R, U, steps, ascent_deadline)
        signs = np.repeat(np.concatenate([np.ones(c), -np.ones(c)]), S)
        outputs = np.repeat(np.concatenate([np.arange(c), np.arange(c)]), S)
    if polish_rounds and not (shared and Theta.shape[1] > 1):
        pv, pu, ps, po = [vals], [neurons], [signs], [outputs]
        for k in range(Theta.shape[1]):
            for sgn in (1.0, -1.0):
                sel = np.flatnonzero((outputs == k) & (signs == sgn))
                sel = sel[np.argsort(-vals[sel], kind="stable")][:POLISH_WIDTH]
                v, u = _polish_heads(Xb, sgn * Theta[:, k], neurons[:, sel], polish_rounds, POLISH_WIDTH, deadline)
                pv.append(v), pu.append(u), ps.append(np.full(v.size, sgn)), po.append(np.full(v.size, k))
        vals, neurons = np.concatenate(pv), np.hstack(pu)
        signs, outputs = np.concatenate(ps), np.concatenate(po).astype(np.int64)
    # Report what each neuron attains (the cone maxima of the polish are attained up to the projection's
    # accuracy; zero maximisers of empty regions are dropped).
    nonzero = np.linalg.norm(neurons, axis=0) > 0
    vals, neurons, signs, outputs = vals[nonzero], neurons[:, nonzero], signs[nonzero], outputs[nonzero]
    vals = _attained(Xb, Theta, neurons, signs, outputs)
    order = np.argsort(-vals, kind="stable")
    # One neuron per (pattern, sign, output): equal patterns give the same cone maximum.
    masks = (Xb @ neurons[:, order]) >= 0
    seen, chosen = set(), []
    for j, col in zip(order, masks.T):
        key = (np.packbits(col).tobytes(), signs[j], outputs[j])
        if key in seen:
            continue
        seen.add(key)
        chosen.append(j)
        if len(chosen) >= keep:
            break
    chosen = np.asarray(chosen, dtype=np.int64)
    return OracleResult(
        values=vals[chosen], neurons=neurons[:, chosen], signs=signs[chosen], outputs=outputs[chosen], n_starts=S
    )

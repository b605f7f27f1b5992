"""Pattern generation: where the exact program's sign patterns come from.

- "sample": Gaussian gates (Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, Remark 3.2).
- "adam-seeded": the patterns of a briefly trained non-convex network (Adam, then L-BFGS) join the initial set
  (the paper's "Alg2": sign patterns of a network trained by gradient descent). The trained network is itself a feasible
  point of the exact program over its own patterns (each neuron u lies in the cone of 1[X u >= 0]), so the
  convex optimum over them is never worse than that network; it is also the warm start.
- "oracle": column generation (convexnn.cutting_planes) adds the patterns of violating neurons.
"""

from __future__ import annotations

import time

import numpy as np

from ._validation import add_bias_column
from .patterns import Patterns

PATTERN_GENERATIONS = ("sample", "oracle", "adam-seeded")
# The short training of "adam-seeded": the width is n + 1 (a global optimum needs at most n + 1 neurons,
# Pilanci & Ergen ICML 2020, Theorem 1 and its Caratheodory bound), at least P, and at most SEED_WORK / (n d)
# so that one evaluation costs about 1 ms: measured on diabetes at beta = 1e-3 beta_max, L-BFGS from width 600
# reaches 24.67 in 8 s of CPU against 25.18 from width 300 (which stalls there). Then Adam's epochs, step and
# share of the training time, L-BFGS iterations, the training's share of solve()'s time limit (or its seconds
# without one).
SEED_WORK = 3_000_000
ADAM_EPOCHS = 500
ADAM_LR = 1e-2
ADAM_SHARE = 0.1
LBFGS_MAX_ITER = 3000
ADAM_TIME_SHARE = 0.4
ADAM_DEFAULT_SECONDS = 5.0


def network_to_blocks(net, Xb, patterns):
    """Map a network's neurons onto the exact program's blocks (V, W) over ``patterns`` (P, d, c) each.

    Neuron j with pattern i and output weights alpha_j adds u_j max(alpha_jk, 0) to V_i[:, k] and
    u_j max(-alpha_jk, 0) to W_i[:, k]: a feasible point with the network's predictions on the training data
    and a convex objective no larger than the network's weight-decay objective (at balanced scale
    ||u_j|| = ||alpha_j||, beta/2 (||u||^2 + ||alpha||^2) >= beta ||u|| ||alpha||_2, and per-column norms of
    sums in a cone are at most the sums of norms). Neurons whose pattern is not in ``patterns`` or is all-zero
    are dropped (they are zero on the training data or not representable).
    """
    W1 = np.asarray(net.W1, dtype=np.float64)
    A = np.asarray(net.w2, dtype=np.float64).reshape(W1.shape[0], -1)
    P, d, c = patterns.n_patterns, Xb.shape[1], A.shape[1]
    V = np.zeros((P, d, c))
    W = np.zeros((P, d, c))
    masks = Xb @ W1.T >= 0  # (n, m)
    dense = patterns.dense()  # (n, P) bool
    keys = {np.packbits(dense[:, i]).tobytes(): i for i in range(P)}
    for j in range(W1.shape[0]):
        i = keys.get(np.packbits(masks[:, j]).tobytes())
        if i is None or not masks[:, j].any():
            continue
        V[i] += W1[j][:, None] * np.maximum(A[j], 0.0)[None, :]
        W[i] += W1[j][:, None] * np.maximum(-A[j], 0.0)[None, :]
    return V, W


def seed_width(n, d, n_patterns):
    """Width of the seed network: n + 1, at least ``n_patterns`` and 8, at most SEED_WORK / (n d)."""
    return int(max(8, n_patterns, min(n + 1, SEED_WORK // max(1, n * d))))


def adam_seed(X, Y, beta, loss, bias, seed, time_budget, width):
    """A network trained briefly by Adam from a random start, then refined by L-BFGS (convexnn.polish).

    Adam takes ADAM_SHARE of the budget (it leaves the random start's poor basin quickly), L-BFGS the rest (it
    converges much faster near a solution: measured on diabetes at beta = 1e-3 beta_max, 29.0 in 9 s against
    Adam's 31.2 in 15 s). Returns the trained :class:`Network`.
    """
    from .network import Network
    from .nonconvex import train_nonconvex
    from .polish import polish_network

    start = time.perf_counter()
    run = train_nonconvex(
        X,
        Y,
        beta,
        n_neurons=width,
        loss=loss,
        bias=bias,
        lr=ADAM_LR,
        n_epochs=ADAM_EPOCHS,
        seed=seed,
        time_limit=ADAM_SHARE * time_budget,
        record_every=50,
    )
    net = run.network
    Xb = np.asarray(add_bias_column(X) if bias else X, dtype=np.float64)
    W2 = np.asarray(net.w2, dtype=np.float64).reshape(net.W1.shape[0], -1)
    left = max(1e-3, time_budget - (time.perf_counter() - start))
    W1, W2, _ = polish_network(
        np.asarray(net.W1, dtype=np.float64),
        W2,
        Xb,
        np.asarray(Y, dtype=np.float64),
        beta,
        loss,
        max_iter=LBFGS_MAX_ITER,
        time_limit=left,
    )
    return Network(W1, W2, bias=bias)


def seeded_patterns(X, Y, beta, pats, loss, bias, seed, time_limit):
    """The "adam-seeded" initial set: ``pats`` plus a short Adam run's patterns, and the warm start (V, W).

    Returns (Patterns, (V, W), trained Network).
    """
    budget = ADAM_DEFAULT_SECONDS if time_limit is None or not np.isfinite(time_limit) else ADAM_TIME_SHARE * time_limit
    width = seed_width(X.shape[0], X.shape[1] + int(bias), pats.n_patterns)
    net = adam_seed(X, Y, beta, loss, bias, seed, budget, width)
    Xb = add_bias_column(X) if bias else X
    Xb = np.asarray(Xb, dtype=np.float64)
    net_pats = Patterns.from_network(net, X)
    merged, _ = pats._set.merge(net_pats._set)
    combined = Patterns(merged, bias)
    V, W = network_to_blocks(net, Xb, combined)
    return combined, (V, W), net

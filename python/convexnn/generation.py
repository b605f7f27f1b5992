"""Pattern generation: where the exact program's sign patterns come from.

- "sample": Gaussian gates (Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, Remark 3.2).
- "adam-seeded": the patterns of a briefly trained non-convex network join the initial set (the paper's
  "Alg2": sign patterns of a network trained by gradient descent). The trained network is itself a feasible
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
# The short Adam run of "adam-seeded": width (at most), epochs, learning rates tried, and its share of a
# time limit.
ADAM_WIDTH = 300
ADAM_EPOCHS = 1000
ADAM_LRS = (1e-2, 3e-2)
ADAM_TIME_SHARE = 0.3
ADAM_DEFAULT_SECONDS = 5.0


def patterns_from_network(net, X):
    """The sign patterns 1[X_b u_j >= 0] of a two-layer ReLU network's hidden neurons, deduplicated.

    Parameters
    ----------
    net : Network
        W1 (m, d[+1]); its ``bias`` decides whether a ones column is appended to X.
    X : array (n, d)

    Returns
    -------
    Patterns
    """
    return Patterns.from_gates(X, np.asarray(net.W1, dtype=np.float64).T, bias=net.bias)


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
    masks = Xb @ W1.T >= 0                                   # (n, m)
    dense = patterns.dense()                                 # (n, P) bool
    keys = {np.packbits(dense[:, i]).tobytes(): i for i in range(P)}
    for j in range(W1.shape[0]):
        i = keys.get(np.packbits(masks[:, j]).tobytes())
        if i is None or not masks[:, j].any():
            continue
        V[i] += W1[j][:, None] * np.maximum(A[j], 0.0)[None, :]
        W[i] += W1[j][:, None] * np.maximum(-A[j], 0.0)[None, :]
    return V, W


def adam_seed(X, Y, beta, loss, bias, seed, time_budget, width):
    """Best of a few short Adam runs of the non-convex network (the paper's "Alg2" patterns).

    Returns the trained :class:`Network` with the lowest objective.
    """
    from .nonconvex import train_nonconvex

    deadline = time.perf_counter() + time_budget
    best = None
    for k, lr in enumerate(ADAM_LRS):
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        run = train_nonconvex(X, Y, beta, n_neurons=width, loss=loss, bias=bias, lr=lr, n_epochs=ADAM_EPOCHS,
                              seed=seed + k, time_limit=left / (len(ADAM_LRS) - k), record_every=50)
        if best is None or run.objective < best.objective:
            best = run
    return best


def seeded_patterns(X, Y, beta, pats, loss, bias, seed, time_limit):
    """The "adam-seeded" initial set: ``pats`` plus a short Adam run's patterns, and the warm start (V, W).

    Returns (Patterns, (V, W), trained Network).
    """
    budget = ADAM_DEFAULT_SECONDS if time_limit is None or not np.isfinite(time_limit) else \
        ADAM_TIME_SHARE * time_limit
    width = int(min(ADAM_WIDTH, max(8, pats.n_patterns)))
    run = adam_seed(X, Y, beta, loss, bias, seed, budget, width)
    Xb = add_bias_column(X) if bias else X
    Xb = np.asarray(Xb, dtype=np.float64)
    net_pats = patterns_from_network(run.network, X)
    merged, _ = pats._set.merge(net_pats._set)
    combined = Patterns(merged, bias)
    V, W = network_to_blocks(run.network, Xb, combined)
    return combined, (V, W), run.network

"""Local refinement of a network on its own non-convex objective, as a source of new neurons.

Column generation adds neurons one region (c = 1) or one direction (shared neurons, c > 1) at a time; near the
optimum its neurons still need small moves that a quasi-Newton method on the weight-decay objective
F(W1, w2) = L(relu(Xb W1^T) w2, y) + beta/2 (||W1||^2 + ||w2||^2) makes quickly. The refined network's neurons
(and their patterns) then join the convex program, whose optimum over them is never worse than the refined
network: descent on F is a proposal step, the convex solve and its certificate remain the result.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

from .nonconvex import objective_and_grad, small_product_threads

# L-BFGS iterations per refinement and its history length.
POLISH_MAX_ITER = 300
POLISH_MEMORY = 20
# Restarts after a failed line search, from the best point perturbed by this relative amount.
MAX_RESTARTS = 3
PERTURB = 1e-3
# A run that stops (line search failed, or "converged") within this many iterations counts as stuck at a kink.
STUCK_ITER = 10


def polish_network(W1, W2, Xb, Y, beta, loss, max_iter=POLISH_MAX_ITER, time_limit=None):
    """Refine (W1 (m, d~), W2 (m, c)) by L-BFGS on F; returns (W1, W2, F) with F never above the start's."""
    m, d = W1.shape
    c = W2.shape[1]
    deadline = None if time_limit is None else time.perf_counter() + time_limit

    best = {"F": np.inf, "x": None}

    class _OutOfTime(Exception):
        pass

    def fun(theta):
        if deadline is not None and best["x"] is not None and time.perf_counter() > deadline:
            raise _OutOfTime
        A = theta[: m * d].reshape(m, d)
        B = theta[m * d :].reshape(m, c)
        F, dA, dB = objective_and_grad(Xb, Y, A, B, beta, loss)
        if np.isfinite(F) and F < best["F"]:
            best["F"], best["x"] = float(F), theta.copy()
        return F, np.concatenate([dA.ravel(), dB.ravel()])

    x0 = np.concatenate([W1.ravel(), W2.ravel()])
    rng = np.random.default_rng(0)
    with small_product_threads(Xb.shape[0], m, d, c):
        fun(x0)
        F0 = best["F"]
        x, left = x0, max_iter
        for _ in range(MAX_RESTARTS + 1):
            try:
                out = minimize(fun, x, jac=True, method="L-BFGS-B", options={"maxiter": left, "maxcor": POLISH_MEMORY})
            except _OutOfTime:
                break
            left -= max(1, out.nit)
            stuck = out.status == 2 or (out.status == 0 and out.nit < STUCK_ITER)  # 2: the line search failed
            if not stuck or left <= 0:
                break
            # A network from the convex program has neurons on their cones' boundaries (X u = 0 on some samples),
            # kinks of F where the line search fails or "converges" at once; a small relative perturbation of the
            # best point leaves them (measured on diabetes: 26.35 -> 25.01 in 1000 iterations, against 0).
            x = best["x"] * (1.0 + PERTURB * rng.standard_normal(best["x"].size))
    if best["x"] is None or not best["F"] <= F0:
        return W1, W2, F0
    x = best["x"]
    return x[: m * d].reshape(m, d), x[m * d :].reshape(m, c), best["F"]

"""One solver run of the benchmark suite, in its own process (started by bench/suite.py, main environment).

    python bench/suite_child.py SOLVER PROBLEM.npz OUT.npz [--tol T] [--dtype float64] [--time-limit S]
                                [--lr LR] [--ready FILE]

SOLVER: ``convexnn`` (cnn.solve, gated or relu), ``clarabel`` (convexnn.reference.cvx: CVXPY + Clarabel, the exact
optimum) or ``adam`` (convexnn.nonconvex.train_nonconvex, full batch, on the non-convex counterpart: the gated
network with the problem's gates for "gated", the ReLU network of width P for "relu").
The thread count comes from the environment (the parent sets OMP/OPENBLAS/MKL_NUM_THREADS before this starts);
``time`` (wall) and ``cpu_time`` (process CPU) in OUT.npz cover the solve only (data loading, imports and pattern
objects excluded). ``--ready`` is touched right before the timed part, so the parent can start its kill clock there.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("solver", choices=["convexnn", "clarabel", "adam"])
    p.add_argument("problem")
    p.add_argument("out")
    p.add_argument("--formulation", default="gated", choices=["gated", "relu"])
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--time-limit", type=float, default=None)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--ready", default=None)
    a = p.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))

    import convexnn as cnn

    cnn.set_num_threads(threads)
    prob = np.load(a.problem)
    X, y, gates, beta = prob["X"], prob["y"], prob["gates"], float(prob["beta"])
    extra = {}
    if a.solver == "convexnn":
        pats = cnn.Patterns.from_gates(X, gates)
        assert pats.n_patterns == gates.shape[1], "gates of a deduplicated set must give back P patterns"
        Xd = np.ascontiguousarray(X, dtype=a.dtype)
        ready(a.ready)
        t0, c0 = time.perf_counter(), time.process_time()
        res = cnn.solve(
            Xd, y, beta, patterns=pats, formulation=a.formulation, tol=a.tol, max_iter=10**7, time_limit=a.time_limit
        )
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        coef = {"U": res.coef_} if a.formulation == "gated" else {"V": res.coef_[0], "W": res.coef_[1]}
        hist = res.history
        extra = dict(
            status=res.status,
            reported_gap=res.gap,
            n_iter=res.n_iter,
            solver_name=res.solver,
            hist_time=np.array([h["time"] for h in hist], dtype=float),
            hist_objective=np.array([h["objective"] for h in hist], dtype=float),
        )
    elif a.solver == "clarabel":
        from convexnn.reference.cvx import solve_gated_cvxpy, solve_relu_cvxpy

        masks = prob["masks"]
        ready(a.ready)
        t0, c0 = time.perf_counter(), time.process_time()
        if a.formulation == "gated":
            out = solve_gated_cvxpy(X, masks, y, beta, "squared")
            coef = {"U": out["U"]}
        else:
            out = solve_relu_cvxpy(X, masks, y, beta, "squared")
            coef = {"V": out["V"], "W": out["W"]}
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        extra = dict(status=str(out["status"]))
    else:
        from convexnn.nonconvex import train_nonconvex

        P = gates.shape[1]
        # The full objective is recorded every 10 epochs (one extra forward pass each, not counted as training
        # time: a few % of the wall time, within the parent's grace after the cap).
        record_every = 10
        ready(a.ready)
        t0, c0 = time.perf_counter(), time.process_time()
        res = train_nonconvex(
            X,
            y,
            beta,
            n_neurons=P,
            gates=gates if a.formulation == "gated" else None,
            optimizer="adam",
            lr=a.lr,
            n_epochs=10**8,
            seed=0,
            time_limit=a.time_limit,
            record_every=record_every,
        )
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        t_hist, f_hist = res.times_objectives()
        best = int(np.argmin(f_hist))
        net = res.network
        coef = {"W1": net.W1, "w2": np.asarray(net.w2).reshape(-1)}
        extra = dict(
            status=res.status,
            n_iter=res.n_iter,
            best_objective=f_hist[best],
            best_time=t_hist[best],
            final_objective=res.objective,
            hist_time=t_hist,
            hist_objective=f_hist,
        )
    np.savez(a.out, time=elapsed, cpu_time=cpu, threads=threads, **coef, **extra)


def ready(path):
    if path:
        Path(path).touch()


if __name__ == "__main__":
    main()

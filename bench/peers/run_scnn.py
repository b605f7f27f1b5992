"""Run scnn (pyscnn 0.0.10) on a problem file; called by the bench harness inside the scnn venv.

    python run_scnn.py PROBLEM.npz OUT.npz --formulation gated|relu --tol TOL [--max-iter N]

PROBLEM.npz holds X (n, d), y (n,), gates (d, P) and beta in convexnn's scaling (sum loss); scnn minimises
1/(2n) ||.||^2 + lam * sum ||U_i||, so lam = beta / n. OUT.npz gets the weights in convexnn's layout
(U (P, d, 1), or V and W) and the wall time of the solve (data already in memory, threads as set by the caller).
"""

import argparse
import time

import numpy as np
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("problem")
    p.add_argument("out")
    p.add_argument("--formulation", default="gated")
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--max-iter", type=int, default=10000)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--ready", default=None, help="touch this file right before the timed solve")
    a = p.parse_args()
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU, ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL, RFISTA

    prob = np.load(a.problem)
    X, y, G, beta = prob["X"], prob["y"].reshape(-1, 1), prob["gates"], float(prob["beta"])
    n = X.shape[0]
    torch.set_num_threads(int(prob["threads"]) if "threads" in prob else 2)
    if a.formulation == "gated":
        model = ConvexGatedReLU(G)
        solver = RFISTA(model, max_iters=a.max_iter, tol=a.tol)
    else:
        model = ConvexReLU(G)
        solver = AL(model, max_primal_iters=a.max_iter, max_dual_iters=a.max_iter, tol=a.tol, constraint_tol=a.tol)
    metrics = Metrics(metric_freq=10**9, objective=False, grad_norm=False, time=False)
    if a.ready:  # the suite (bench/suite.py) starts its kill clock here
        open(a.ready, "w").close()
    t0, c0 = time.perf_counter(), time.process_time()
    model, metrics = optimize_model(
        model,
        solver,
        metrics,
        X,
        y,
        regularizer=NeuronGL1(beta / n),
        return_convex=True,
        unitize_data=False,
        dtype=a.dtype,
    )
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0  # all threads of the process
    params = [np.asarray(p) for p in model.parameters]
    if a.formulation == "gated":
        np.savez(a.out, U=np.transpose(params[0], (1, 2, 0)), time=elapsed, cpu_time=cpu)  # (c,P,d) -> (P,d,c)
    else:
        np.savez(
            a.out,
            V=np.transpose(params[0], (1, 2, 0)),
            W=np.transpose(params[1], (1, 2, 0)),
            time=elapsed,
            cpu_time=cpu,
        )


if __name__ == "__main__":
    main()

"""Exact (relu) solver on the issue-5 problem: time, iterations and objective per tolerance, no peers.

    PYTHONPATH=build/dev-NAME/stage python bench/relu_solver_bench.py [--n 10000 --d 50 --P 100]
        [--tols 1e-2,1e-4,1e-6] [--repeat 3] [--target 3453.386148]

Same problem as bench/gated_vs_peers.py --formulation relu (make_problem, seed 0), so objectives compare with the
peers' rows of bench/RESULTS.md; --target (adelie's objective at n = 10k, tol 1e-7) prints the time at which each run
first beats it, taken from the solver history. Times are medians over --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gated_vs_peers import make_problem  # noqa: E402

import convexnn as cnn  # noqa: E402
from convexnn.reference.objectives import relative_violation, relu_objective  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--P", type=int, default=100)
    ap.add_argument("--beta-ratio", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tols", default="1e-2,1e-4,1e-6")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--target", type=float, default=None, help="objective to beat (e.g. a peer's)")
    a = ap.parse_args()
    cnn.set_num_threads(a.threads)
    X, y, pats, beta = make_problem(a.n, a.d, a.P, a.beta_ratio, 0, "relu")
    masks = pats.dense()
    print(f"n={a.n} d={a.d} P={pats.n_patterns} beta={beta:.6g} threads={a.threads}")
    for tol in [float(t) for t in a.tols.split(",")]:
        times, res = [], None
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            res = cnn.solve(X, y, beta, patterns=pats, formulation="relu", tol=tol, max_iter=100_000)
            times.append(time.perf_counter() - t0)
        V, W = res.coef_
        obj = relu_objective(X, masks, V, W, y, beta, "squared")
        viol = relative_violation(X, masks, V, W)
        line = (
            f"tol={tol:g}: median {statistics.median(times):.3f} s (runs {', '.join(f'{t:.3f}' for t in times)}) "
            f"iters={res.n_iter} status={res.status} objective={obj:.10g} gap={res.gap:.2e} viol={viol:.1e}"
        )
        if a.target is not None:
            hit = [h for h in res.history if h["objective"] <= a.target]
            line += (
                f" | target first beaten at {hit[0]['time']:.3f} s (iter {hit[0]['iteration']})"
                if hit
                else " | target not beaten"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()

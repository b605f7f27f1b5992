"""How often the hinge loss converges to the default tol, gated and exact (relu) formulations.

Instances: X ~ N(0, 1) of shape (100, 4), y = sign(x0 + 0.5 noise), 20 sampled gates with bias, beta a ratio of
beta_max(loss="hinge") cycling over (0.1, 0.5, 0.8). Each instance is solved with the defaults of ``solve`` (tol
1e-6, default max_iter) and an optional time limit per solve; the script prints one line per solve and the number
converged per formulation.

Usage::

    python bench/hinge_convergence.py [--instances 50] [--first 0] [--formulations gated relu]
        [--time-limit 60] [--json out.json]
"""

import argparse
import json
import time
import warnings

import numpy as np

import convexnn as cnn

RATIOS = (0.1, 0.5, 0.8)


def instance(seed, n=100, d=4, n_patterns=20):
    """(X, y, patterns, beta) of instance ``seed``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sign(X[:, 0] + 0.5 * rng.standard_normal(n))
    y[y == 0] = 1.0
    pats = cnn.sample_patterns(X, n_patterns=n_patterns, seed=seed, bias=True)
    beta = RATIOS[seed % len(RATIOS)] * cnn.beta_max(X, y, pats, loss="hinge", bias=True)
    return X, y, pats, beta


def run(instances, formulations, time_limit, first=0):
    """One row per (instance, formulation): status, gap, iterations and seconds."""
    rows = []
    for seed in range(first, first + instances):
        X, y, pats, beta = instance(seed)
        for formulation in formulations:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = cnn.solve(
                    X, y, beta, patterns=pats, formulation=formulation, loss="hinge", bias=True, time_limit=time_limit
                )
            row = dict(
                seed=seed,
                formulation=formulation,
                ratio=RATIOS[seed % len(RATIOS)],
                status=res.status,
                gap=float(res.gap),
                n_iter=int(res.n_iter),
                seconds=time.perf_counter() - t0,
            )
            rows.append(row)
            print(
                f"{seed:3d} {formulation:6s} ratio {row['ratio']:.1f} {row['status']:14s} gap {row['gap']:.2e} "
                f"iter {row['n_iter']:7d} {row['seconds']:7.2f} s",
                flush=True,
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--first", type=int, default=0, help="seed of the first instance")
    parser.add_argument("--formulations", nargs="+", default=["gated", "relu"])
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = run(args.instances, args.formulations, args.time_limit, args.first)
    for formulation in args.formulations:
        mine = [r for r in rows if r["formulation"] == formulation]
        ok = sum(r["status"] == "converged" for r in mine)
        secs = sum(r["seconds"] for r in mine)
        print(f"{formulation}: {ok}/{len(mine)} converged to tol 1e-6, {secs:.1f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

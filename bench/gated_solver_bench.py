"""Profile of the certified gated-ReLU solver (convexnn._core.solve_gated) on the issue-4 problem.

    python bench/gated_solver_bench.py [--n 10000 --d 50 --P 500 --beta-ratio 0.05] [--threads 2]
                                       [--variants auto,fista-no-newton,bcd,...] [--markdown out.md]

Problem (as bench/gated_vs_peers.py): Gaussian X with unit-norm columns, y from a random two-layer ReLU teacher
plus noise, standardized; no bias; P Gaussian gates (masks deduplicated, all-zero dropped); squared loss;
beta = ratio * beta_max. For each solver variant it reports the iterations and wall time to CERTIFY a relative
duality gap of 1e-4 and of 1e-7 (separate solves at those tolerances), and, from the history of the 1e-7
solve against a reference optimum (auto at tol 1e-11), when the TRUE relative excess first fell below 1e-4 /
1e-7 (so the cost of the certificate itself is visible). One iteration = one FISTA step, one BCD epoch or one
Newton-CG step: about one forward and one adjoint product each (BCD: per block).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

VARIANTS = {
    # name: (solve_gated keyword arguments, dtype)
    "auto": (dict(), np.float64),
    "fista-no-newton": (dict(solver="fista", newton=False), np.float64),
    "fista-no-ws": (dict(solver="fista", working_set=False), np.float64),
    "bcd": (dict(solver="bcd"), np.float64),
    "auto-f32+f64cert": (dict(), np.float32),
}


def make_problem(n, d, P, beta_ratio, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=0)
    teacher = rng.standard_normal((d, 20))
    y = np.maximum(X @ teacher, 0) @ rng.standard_normal(20) + 0.1 * rng.standard_normal(n) / np.sqrt(n)
    y = (y - y.mean()) / y.std()
    masks = X @ rng.standard_normal((d, P)) >= 0
    masks = np.unique(masks, axis=1)
    masks = masks[:, masks.any(axis=0)]
    return X, y, np.ascontiguousarray(masks)


def first_below(hist, p_star, level):
    excess = (hist["objective"] - p_star) / hist["objective"]
    idx = np.flatnonzero(excess <= level)
    if idx.size == 0:
        return None, None
    return int(hist["iteration"][idx[0]]), float(hist["time"][idx[0]])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--P", type=int, default=500)
    ap.add_argument("--beta-ratio", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads of the core (default: as set)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    ap.add_argument("--max-iter", type=int, default=5000)
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--markdown", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)

    from convexnn import _core

    if args.threads:
        _core.set_num_threads(args.threads)
    X, y, masks = make_problem(args.n, args.d, args.P, args.beta_ratio, args.seed)
    op64 = _core.MaskedOperatorF64(X, masks)
    X32 = X.astype(np.float32)
    op32 = _core.MaskedOperatorF32(X32, masks)
    op64_of_32 = _core.MaskedOperatorF64(X32.astype(np.float64), masks)
    beta = args.beta_ratio * _core.gated_beta_max(op64, y)
    P = masks.shape[1]
    print(
        f"# n={args.n} d={args.d} P={P} (after dedup) beta={beta:.6g} ({args.beta_ratio} beta_max) "
        f"threads={_core.get_num_threads()} cpu={platform.processor() or platform.machine()}",
        flush=True,
    )

    t = time.perf_counter()
    ref = _core.solve_gated(op64, y, beta, tol=1e-11, max_iter=args.max_iter, time_limit=args.time_limit)
    print(
        f"# reference: objective {ref['objective']:.12g} gap {ref['gap']:.2e} ({ref['status']}, "
        f"{ref['n_iter']} it, {time.perf_counter() - t:.2f} s)",
        flush=True,
    )
    p_star = ref["objective"]  # within ref['gap'] of the optimum

    rows = []
    header = (
        "| variant | it to gap 1e-4 | s to gap 1e-4 | it to gap 1e-7 | s to gap 1e-7 | status | "
        "first it (s) with excess <= 1e-4 | first it (s) with excess <= 1e-7 | active |"
    )
    rows.append(header)
    rows.append("|" + "---|" * 9)
    for name in args.variants.split(","):
        kw, dtype = VARIANTS[name]
        op = op32 if dtype == np.float32 else op64
        extra = dict(certify_op=op64_of_32) if dtype == np.float32 else {}
        res = {}
        for tol in (1e-4, 1e-7):
            t = time.perf_counter()
            r = _core.solve_gated(
                op, y, beta, tol=tol, max_iter=args.max_iter, time_limit=args.time_limit, **kw, **extra
            )
            r["wall"] = time.perf_counter() - t
            res[tol] = r
        r4, r7 = res[1e-4], res[1e-7]
        # float32 runs are certified against the float64 copy of the float32 data: same p* up to ~1e-7.
        i4, s4 = first_below(r7["history"], p_star, 1e-4)
        i7, s7 = first_below(r7["history"], p_star, 1e-7)
        fmt = lambda i, s: "-" if i is None else f"{i} ({s:.2f})"
        row = (
            f"| {name} | {r4['n_iter']} | {r4['wall']:.2f} | {r7['n_iter']} | {r7['wall']:.2f} | "
            f"{r4['status']}/{r7['status']} | {fmt(i4, s4)} | {fmt(i7, s7)} | {r7['n_active']} |"
        )
        rows.append(row)
        print(row, flush=True)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(f"n={args.n} d={args.d} P={P} beta_ratio={args.beta_ratio} threads={_core.get_num_threads()}\n\n")
            fh.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

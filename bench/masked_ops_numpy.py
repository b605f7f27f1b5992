"""Masked forward + adjoint: numpy formulations (as in scnn) against convexnn's C++ operator, same run.

    PYTHONPATH=<dir holding the convexnn package with a built _core> python bench/masked_ops_numpy.py

Problem (bench/README.md): n = 10000, d = 50, P = 500, c = 1; X Gaussian, masks 1[X g_i >= 0] from
Gaussian gates, D the (n, P) 0/1 matrix in X's dtype (scnn keeps D dense). One "pair" is a forward
product z = sum_i D_i X u_i and an adjoint G_i = X^T D_i r, i.e. 4 n d P flops.

Formulations timed (median of --repeats pairs each, after one warm-up pair):
  scnn             scnn's numpy einsum kernel exactly as scnn runs it: its strings
                   "ij,lkj,ik->il" (forward) and "ij,i,il->jl" (adjoint) through
                   opt_einsum.contract(..., backend="numpy"), which is what scnn's `lab.einsum` calls
                   (needs `pip install opt-einsum`; skipped with a note otherwise)
  einsum-optimize  the same strings with np.einsum(..., optimize=True)
  einsum-plain     the same strings with np.einsum's default optimize=False (no BLAS; slow)
  gemm+mask        z = (D * (X @ U.T)).sum(1) and G = np.einsum("ij,il->lj", X, D * r[:, None],
                   optimize=True): the "one GEMM then mask-and-reduce" formulation written by hand
  convexnn         convexnn._core.MaskedOperatorF64/F32 forward + adjoint (bit-packed masks), default
                   method (at this shape: subset-sum tables; in float32 AMX tiles where the CPU has them)
  convexnn-tables  the same operator with method="tables" (float32 on an AMX machine only)
  convexnn-gemm    the same operator with method="gemm" (GEMM tiles with mask epilogues)
Every formulation's result is checked against convexnn's before timing.
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np


def _time(fn, repeats):
    fn()  # warm-up (page faults, thread pools)
    # Let every thread pool go idle first: OpenBLAS workers (numpy's) keep spinning for ~0.1 s after their
    # last call (2^28 cycles by default) and would otherwise share the cores with whatever is timed next.
    time.sleep(0.5)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--P", type=int, default=500)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="convexnn OpenMP threads (default: all)")
    ap.add_argument("--skip-slow", action="store_true", help="skip the optimize=False einsum")
    args = ap.parse_args()

    from convexnn import _core

    if args.threads:
        _core.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    n, d, P = args.n, args.d, args.P
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    masks = (X.astype(np.float64) @ rng.standard_normal((d, P))) >= 0
    D = masks.astype(dtype)
    U = rng.standard_normal((P, d)).astype(dtype)
    r = rng.standard_normal(n).astype(dtype)
    W = U[None]  # scnn's (c, P, d) weights

    Op = _core.MaskedOperatorF64 if dtype == np.float64 else _core.MaskedOperatorF32
    op = Op(X, masks)
    op_gemm = Op(X, masks, method="gemm")

    def convexnn_pair():
        return op.forward(U), op.adjoint(r)

    def convexnn_gemm_pair():
        return op_gemm.forward(U), op_gemm.adjoint(r)

    def einsum_pair(einsum):
        def run():
            z = einsum("ij,lkj,ik->il", X, W, D)[:, 0]
            G = einsum("ij,i,il->jl", D, r, X)
            return z, G

        return run

    def gemm_mask_pair():
        z = (D * (X @ U.T)).sum(axis=1)
        G = np.einsum("ij,il->lj", X, D * r[:, None], optimize=True)
        return z, G

    z_ref, G_ref = convexnn_pair()
    tol = 1e-9 if dtype == np.float64 else 1e-3
    candidates = [("convexnn-gemm", convexnn_gemm_pair)]
    if op.resolved_method() != "tables":
        op_tables = Op(X, masks, method="tables")
        candidates.insert(0, ("convexnn-tables", lambda: (op_tables.forward(U), op_tables.adjoint(r))))
    try:
        import opt_einsum

        candidates.append(("scnn", einsum_pair(lambda *a: opt_einsum.contract(*a, backend="numpy"))))
    except ImportError:
        print("# opt_einsum is not installed: the exact scnn call is skipped (pip install opt-einsum)")
    candidates.append(("einsum-optimize", einsum_pair(lambda *a: np.einsum(*a, optimize=True))))
    candidates.append(("gemm+mask", gemm_mask_pair))
    if not args.skip_slow:
        candidates.append(("einsum-plain", einsum_pair(lambda *a: np.einsum(*a, optimize=False))))
    for name, fn in candidates:
        z, G = fn()
        for got, want in ((z, z_ref), (G, G_ref)):
            err = np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))
            assert err < tol, f"{name} disagrees with convexnn: relative error {err:.2e}"

    flops = 4.0 * n * d * P
    t_cnn = _time(convexnn_pair, args.repeats)
    rows = [("convexnn", t_cnn)]
    for name, fn in candidates:
        rows.append((name, _time(fn, args.repeats if name != "einsum-plain" else max(3, args.repeats // 2))))
    print(
        f"# n={n} d={d} P={P} c=1 {dtype.name}; convexnn threads={_core.get_num_threads()} "
        f"kernel={_core.masked_kernel_isa()} method={op.resolved_method()}; numpy {np.__version__}; {platform.processor() or platform.machine()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'formulation':<18}{'median ms':>11}{'GFLOP/s':>10}{'vs convexnn':>13}")
    for name, t in rows:
        print(f"{name:<18}{t * 1e3:>11.2f}{flops / t * 1e-9:>10.1f}{t / t_cnn:>12.1f}x")


if __name__ == "__main__":
    main()

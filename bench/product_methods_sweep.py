"""Forward + adjoint pair time of each float32 product method over a grid of shapes (the Auto choice's data).

    PYTHONPATH=<dir holding convexnn> python bench/product_methods_sweep.py [--n 10000] [--d 10,20,50,100]
                                    [--P 32,64,128,256,512,1024] [--threads 2] [--repeats 21] [--errors]

For each (d, P): X Gaussian (n x d, float32, C order), masks 1[X g >= 0] from Gaussian gates, c = 1; the median
(--best: the fastest) of --repeats pairs (forward + adjoint) for method="tables", "amx" (where convexnn._core.amx_available()), "bf16"
(where convexnn._core.bf16_available()) and "gemm", on --threads OpenMP threads, timed as bench/masked_ops_numpy.py
times (a warm-up pair, then a 0.5 s pause: numpy's OpenBLAS workers, used to build the masks, spin ~0.1 s after
their last call). Prints the CPU (lscpu model name and its SIMD flags) and the load average, ms per pair and each
bf16 / AMX time over the tables'. --errors instead prints, per float32 method, the largest error of forward and
adjoint against a float64 reference relative to the largest reference entry (n = 1e4: d = 50, P = 500;
n = 5e4: d = 20, P = 300). Results: bench/RESULTS.md, docs/tuning.md.
"""

import argparse
import os
import subprocess
import time

import numpy as np
from masked_ops_numpy import _time  # the same timing: warm-up, 0.5 s pause, median (this script's folder)

from convexnn import _core


def _cpu():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = [f for f in fields.get("Flags", "").split() if f.startswith(("avx", "amx", "fma"))]
    return (
        f"{fields.get('Model name', '?').strip()} (family {fields.get('CPU family', '?').strip()}, model "
        f"{fields.get('Model', '?').strip()}); {' '.join(flags)}"
    )


def _best(fn, repeats):
    """The fastest of `repeats` calls after a warm-up: on a shared, loaded host the minimum is the run least
    disturbed by other processes (the median there measures the load as much as the kernel)."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def _methods():
    return (
        ["tables"]
        + (["amx"] if _core.amx_available() else [])
        + (["bf16"] if _core.bf16_available() else [])
        + ["gemm"]
    )


def _errors(methods):
    rng = np.random.default_rng(1)
    print("# max |got - reference| / max |reference| (float64 reference), forward / adjoint")
    for n, d, P in ((10_000, 50, 500), (50_000, 20, 300)):
        X = rng.standard_normal((n, d))
        masks = X @ rng.standard_normal((d, P)) >= 0
        U = rng.standard_normal((P, d))
        r = rng.standard_normal(n)
        X32, U32, r32 = X.astype(np.float32), U.astype(np.float32), r.astype(np.float32)
        Xd, Ud, rd = X32.astype(np.float64), U32.astype(np.float64), r32.astype(np.float64)
        Df = masks.astype(np.float64)
        z_ref = np.einsum("ki,ki->k", Df, Xd @ Ud.T)
        G_ref = (Df * rd[:, None]).T @ Xd
        cells = []
        for method in methods:
            op = _core.MaskedOperatorF32(X32, masks, method=method)
            ez = np.max(np.abs(op.forward(U32) - z_ref)) / np.max(np.abs(z_ref))
            eg = np.max(np.abs(op.adjoint(r32) - G_ref)) / np.max(np.abs(G_ref))
            cells.append(f"{method} {ez:.2e} / {eg:.2e}")
        print(f"n={n} d={d} P={P}: " + "; ".join(cells), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", default="10,20,50,100")
    ap.add_argument("--P", default="32,64,128,256,512,1024")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--errors", action="store_true", help="print rounding errors instead of times")
    ap.add_argument("--best", action="store_true", help="the fastest of --repeats pairs instead of the median")
    args = ap.parse_args()
    _core.set_num_threads(args.threads)
    methods = _methods()
    print(f"# {_cpu()}")
    if args.errors:
        _errors(methods)
        return
    fast = [m for m in ("amx", "bf16") if m in methods]
    print(
        f"# n={args.n} float32 c=1 threads={args.threads}; ms per forward + adjoint pair "
        f"({'fastest' if args.best else 'median'} of {args.repeats}); "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print("d P | " + " ".join(methods) + "".join(f" | {m}/tables" for m in fast))
    rng = np.random.default_rng(0)
    for d in (int(v) for v in args.d.split(",")):
        for P in (int(v) for v in args.P.split(",")):
            X = rng.standard_normal((args.n, d)).astype(np.float32)
            masks = X @ rng.standard_normal((d, P)) >= 0
            U = rng.standard_normal((P, d)).astype(np.float32)
            r = rng.standard_normal(args.n).astype(np.float32)
            times = {}
            for method in methods:
                op = _core.MaskedOperatorF32(X, masks, method=method)
                timer = _best if args.best else _time
                times[method] = 1e3 * timer(lambda: (op.forward(U), op.adjoint(r)), args.repeats)
            ratios = "".join(f" | {times[m] / times['tables']:.2f}" for m in fast)
            print(f"{d} {P} | " + " ".join(f"{times[m]:.2f}" for m in methods) + ratios, flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()

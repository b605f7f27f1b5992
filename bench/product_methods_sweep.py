"""Forward + adjoint pair time of each float32 product method over a grid of shapes (the Auto choice's data).

    PYTHONPATH=<dir holding convexnn> python bench/product_methods_sweep.py [--n 10000] [--d 10,20,50,100]
                                                                              [--P 32,64,128,256,512,1024]

For each (d, P): X Gaussian (n x d, float32, C order), masks 1[X g >= 0] from Gaussian gates, c = 1; the median
of 21 pairs (forward + adjoint) for method="tables", "amx" (where convexnn._core.amx_available()) and "gemm", on
2 OpenMP threads, timed as bench/masked_ops_numpy.py times (a warm-up pair, then a 0.5 s pause: numpy's
OpenBLAS workers, used to build the masks, spin ~0.1 s after their last call). Prints ms per pair and the AMX / tables ratio. Results: bench/RESULTS.md.
"""

import argparse

import numpy as np
from masked_ops_numpy import _time  # the same timing: warm-up, 0.5 s pause, median (this script's folder)

from convexnn import _core


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", default="10,20,50,100")
    ap.add_argument("--P", default="32,64,128,256,512,1024")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    _core.set_num_threads(args.threads)
    methods = ["tables"] + (["amx"] if _core.amx_available() else []) + ["gemm"]
    rng = np.random.default_rng(0)
    print(f"# n={args.n} float32 c=1 threads={args.threads}; ms per forward + adjoint pair")
    print("d P | " + " ".join(methods) + (" | amx/tables" if "amx" in methods else ""))
    for d in (int(v) for v in args.d.split(",")):
        for P in (int(v) for v in args.P.split(",")):
            X = rng.standard_normal((args.n, d)).astype(np.float32)
            masks = X @ rng.standard_normal((d, P)) >= 0
            U = rng.standard_normal((P, d)).astype(np.float32)
            r = rng.standard_normal(args.n).astype(np.float32)
            times = {}
            for method in methods:
                op = _core.MaskedOperatorF32(X, masks, method=method)
                times[method] = 1e3 * _time(lambda: (op.forward(U), op.adjoint(r)), 21)
            ratio = f" | {times['amx'] / times['tables']:.2f}" if "amx" in times else ""
            print(f"{d} {P} | " + " ".join(f"{times[m]:.2f}" for m in methods) + ratio, flush=True)


if __name__ == "__main__":
    main()

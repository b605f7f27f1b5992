"""Pooled patch operator (convexnn.cnn.PatchOperator) forward + adjoint against the masked operator on the explicitly
stacked patch matrix, and against building the stack.

    PYTHONPATH=python python bench/cnn_operator_bench.py [--P 500] [--repeats 7] [--dtype float64]

Problem: scikit-learn's digits (1797 images 8x8), 3x3 patches, stride 1 (K = 36 patches, h = 9 + 1 bias entry),
stacked patch matrix X' of n K = 64692 rows; P patterns from Gaussian gates on X'; c = 1.
One "pair" is a forward product and an adjoint product. Timed (median of --repeats pairs after a warm-up):

  stack            extract_patches(images, 3) + the bias column (building X' once)
  masked X'        MaskedOperatorF64 on X' (n K outputs): forward + adjoint with an (n K, 1) residual
  patch operator   PatchOperator: the same masked products, pooled to n outputs / residual expanded to n K rows
  dense pooled     the explicit pooled designs A_i = sum_k D_ik X_k (n x h each, P of them) as one (n, P h) matrix:
                   forward A u, adjoint A^T r by BLAS (only when it fits in --dense-limit-mb)

Results are checked against each other before timing. Prints a markdown table headed by the machine.
"""

import argparse
import platform
import statistics
import subprocess
import time

import numpy as np


def _time(fn, repeats):
    fn()
    time.sleep(0.3)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _machine():
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    isa = [f for f in ("avx2", "avx512f", "amx_tile") if f in flags]
    return (
        f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, "
        f"ISA: {', '.join(isa) or 'no AVX2'}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--P", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--dense-limit-mb", type=float, default=1024)
    args = ap.parse_args()

    from sklearn.datasets import load_digits

    import convexnn as cnn
    from convexnn import _core
    from convexnn.cnn import PatchOperator, extract_patches
    from convexnn.cnn.network import add_patch_bias

    dtype = np.dtype(args.dtype)
    images = load_digits().images.astype(dtype) / 16.0
    P = add_patch_bias(extract_patches(images, 3))
    n, K, h = P.shape
    Xs = P.reshape(n * K, h)
    pats = cnn.sample_patterns(Xs[:, :-1], args.P, seed=0, bias=True)
    masked = (_core.MaskedOperatorF64 if dtype == np.float64 else _core.MaskedOperatorF32)(Xs, pats._set)
    op = PatchOperator(Xs, pats._set, K, dtype=dtype)
    rng = np.random.default_rng(0)
    U = rng.standard_normal((pats.n_patterns, h, 1)).astype(dtype)
    R = rng.standard_normal((n, 1)).astype(dtype)
    Rx = np.repeat(R, K, axis=0)

    # consistency before timing
    z = op.forward(U)
    np.testing.assert_allclose(z, masked.forward(U).reshape(n, K, 1).sum(1), rtol=1e-4)
    np.testing.assert_allclose(op.adjoint(R), masked.adjoint(Rx), rtol=1e-4)

    rows = [
        ("stack (extract_patches + bias)", _time(lambda: add_patch_bias(extract_patches(images, 3)), args.repeats)),
        ("masked X' (n K outputs)", _time(lambda: (masked.forward(U), masked.adjoint(Rx)), args.repeats)),
        ("patch operator (pooled)", _time(lambda: (op.forward(U), op.adjoint(R)), args.repeats)),
    ]
    dense_mb = n * pats.n_patterns * h * dtype.itemsize / 2**20
    if dense_mb <= args.dense_limit_mb:

        def build():
            M = pats.dense()
            A = np.empty((n, pats.n_patterns * h), dtype=dtype)
            for i in range(pats.n_patterns):
                A[:, i * h : (i + 1) * h] = (M[:, [i]] * Xs).reshape(n, K, h).sum(axis=1)
            return A

        t0 = time.perf_counter()
        A = build()
        rows.append(("building the dense pooled designs (once)", time.perf_counter() - t0))
        u = U.reshape(-1, 1)
        np.testing.assert_allclose(A @ u, z, rtol=1e-4, atol=1e-6)
        rows.append((f"dense pooled designs ({dense_mb:.0f} MB)", _time(lambda: (A @ u, A.T @ R), args.repeats)))
    print(f"Machine: {_machine()}; convexnn threads: {_core.get_num_threads()}")
    print(
        f"digits n = {n}, K = {K}, h = {h} (3x3 + bias), n K = {n * K}, P = {pats.n_patterns}, {dtype}, "
        f"median of {args.repeats}\n"
    )
    print("| operation | ms | vs masked X' |")
    print("|---|---|---|")
    base = rows[1][1]
    for name, t in rows:
        print(f"| {name} | {1e3 * t:.2f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()

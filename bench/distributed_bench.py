"""Row-partitioned products on Dask (convexnn.distributed): time and bytes per iteration, network model, memory.

    python bench/distributed_bench.py [--quick] [--memory-n 1000000] [--out bench/results_distributed.md]

1. Per-iteration time (one forward + one adjoint product: what a FISTA / BCD iteration of the gated solver
   needs) and the driver <-> worker payload per iteration, against n, on LocalCluster(k, threads_per_worker=1,
   processes=True) for k = 1, 2, next to the single-process C++ operator.
2. The k-worker network model: bytes per iteration and the latency-bound regime.
3. Memory: n = 1e6, d = 50, P = 500 built on 2 workers from a dask-generated X (no copy on the driver), the
   per-worker peak RSS against the single-process peak (a child process building the same operator).
4. The exact program (formulation="relu") by constraint generation on 2 workers against n: rounds, the
   working set's rows (the cone constraints gathered on the driver) against n, iterations, payload per
   iteration and per round, and the objective against the single-machine solve.

Performance is measured, never asserted. Markdown goes to --out (a section headed by the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _machine():
    info = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("Flags")), [])
    isa = [f for f in ("avx2", "avx512f", "amx_tile") if f in flags]
    load = os.getloadavg()[0]
    isa = "/".join(isa) or "no AVX2"
    return f"{model}, {os.cpu_count()} cores, {isa} (Python {platform.python_version()}, load {load:.1f})"


def _median_time(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _products_table(sizes, d, P, reps):
    import dask.array as da
    import distributed

    import convexnn as cnn
    from convexnn import _core
    from convexnn.distributed import DistributedDesign, DistributedOperator

    rows = []
    rng = np.random.default_rng(0)
    G = rng.standard_normal((P, d + 1))
    data = {n: rng.standard_normal((n, d)) for n in sizes}
    for n in sizes:
        X = data[n]
        Xb = np.hstack([X, np.ones((n, 1))])
        op = _core.MaskedOperatorF64(Xb, _core.PatternSet.from_gates(Xb, G, deduplicate=False, drop_zero=False))
        U, R = rng.standard_normal((P, d + 1, 1)), rng.standard_normal((n, 1))
        t = _median_time(lambda: (op.forward(U), op.adjoint(R)), reps)
        rows.append(dict(n=n, workers=0, time=t, bytes=0))
    del cnn
    for k in (1, 2):
        with (
            distributed.LocalCluster(
                n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            for n in sizes:
                X = data[n]
                design = DistributedDesign.from_dask(da.from_array(X, chunks=(-(-n // k), d)), True, client)
                dop = DistributedOperator(design, G)
                U, R = rng.standard_normal((P, d + 1, 1)), rng.standard_normal((n, 1))
                before = dict(dop.stats)
                t = _median_time(lambda: (dop.forward(U), dop.adjoint(R)), reps)
                calls = dop.stats["forward"] - before["forward"]
                moved = (
                    dop.stats["bytes_sent"]
                    + dop.stats["bytes_received"]
                    - before["bytes_sent"]
                    - before["bytes_received"]
                ) / calls
                rows.append(dict(n=n, workers=k, time=t, bytes=moved))
                dop.release()
                design.release()
    return rows


def _exact_table(sizes, d, P, tol):
    """The exact program on LocalCluster(2): constraint generation against the single-machine solver."""
    import dask.array as da
    import distributed

    import convexnn as cnn
    from convexnn.distributed import DistributedOperator

    counted = []  # every operator of the solves, for its payload counters
    original = DistributedOperator.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        counted.append(self)

    rows = []
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        DistributedOperator.__init__ = init
        try:
            for n in sizes:
                rng = np.random.default_rng(n)
                X = rng.standard_normal((n, d))
                y = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0)
                y += 0.1 * rng.standard_normal(n)
                beta = 0.05 * cnn.beta_max(X, y, P, bias=True)
                t = time.perf_counter()
                ref = cnn.solve(X, y, beta, patterns=P, formulation="relu", bias=True, tol=tol)
                t_ref = time.perf_counter() - t
                Xd = da.from_array(X, chunks=(-(-n // 4), d))
                counted.clear()
                t = time.perf_counter()
                res = cnn.solve(Xd, y, beta, patterns=P, formulation="relu", bias=True, tol=tol, client=client)
                elapsed = time.perf_counter() - t
                op = max(counted, key=lambda o: o.stats["forward"])
                moved = op.stats["bytes_sent"] + op.stats["bytes_received"]
                rounds, used = res.solver.split(": ")[1].split(" rounds, cone constraints on ")
                rows.append(
                    dict(
                        n=n,
                        rounds=int(rounds),
                        rows=int(used.split(" of ")[0]),
                        iters=res.n_iter,
                        status=res.status,
                        rel=abs(res.objective - ref.objective) / abs(ref.objective),
                        gap=res.gap,
                        viol=res.max_violation,
                        kib_iter=moved / max(res.n_iter, 1) / 1024,
                        time=elapsed,
                        t_ref=t_ref,
                        ref_iters=ref.n_iter,
                    )
                )
        finally:
            DistributedOperator.__init__ = original
    return rows


def _network_model(n, d, P, c, k_values, latency, bandwidth):
    """Bytes per iteration and time model: 2 round trips (forward, adjoint) per iteration.

    forward: U (P d c) to each of k workers, z (n c) back; adjoint: R (n c) out, G (P d c) back from each worker.
    t_iter = 2 * latency + bytes / bandwidth + t_compute(1 worker) / k.
    """
    out = []
    for k in k_values:
        nbytes = 8 * (2 * k * P * d * c + 2 * n * c)
        out.append(dict(k=k, bytes=nbytes, comm=2 * latency + nbytes / bandwidth))
    return out


_MEMORY_CHILD = r"""
import json, resource, sys, numpy as np
n, d, P = map(int, sys.argv[1:4])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from convexnn import _core
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
Xb = np.empty((n, d + 1)); Xb[:, d] = 1.0   # the least memory one process can hold the design in
rng = np.random.default_rng(0)
for i in range(0, n, 65536):
    Xb[i:i + 65536, :d] = rng.standard_normal((min(65536, n - i), d))
G = np.random.default_rng(1).standard_normal((P, d + 1))
op = _core.MaskedOperatorF64(Xb, _core.PatternSet.from_gates(Xb, G, deduplicate=False, drop_zero=False))
U = np.random.default_rng(2).standard_normal((P, d + 1, 1)); z = op.forward(U); g = op.adjoint(z)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
held = (Xb.nbytes + P * ((n + 63) // 64) * 8) / 2**20  # the design and the packed masks
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "held_mb": held}))
"""


def _worker_peak():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_held(dask_worker):
    """MiB of row blocks and packed masks in this worker's memory."""
    total = 0
    for v in dask_worker.data.values():
        if hasattr(v, "patterns"):
            total += v.Xb.nbytes + v.patterns.n_patterns * v.patterns.words_per_pattern * 8
    return total / 2**20


def _memory_run(n, d, P):
    import dask.array as da
    import distributed

    from convexnn.distributed import DistributedDesign, DistributedOperator

    child = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(n), str(d), str(P)], capture_output=True, text=True, check=True
    )
    single = json.loads(child.stdout.strip().splitlines()[-1])
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=0
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(lambda: __import__("convexnn")._core)
        base = client.run(_worker_peak)
        t = time.perf_counter()
        Xd = da.random.RandomState(0).standard_normal((n, d), chunks=(-(-n // 8), d))  # 4 chunks per worker
        design = DistributedDesign.from_dask(Xd, True, client)
        G = np.random.default_rng(1).standard_normal((P, d + 1))
        op = DistributedOperator(design, G)
        build = time.perf_counter() - t
        U = np.random.default_rng(2).standard_normal((P, d + 1, 1))
        t = time.perf_counter()
        op.adjoint(op.forward(U))
        product = time.perf_counter() - t
        peaks = client.run(_worker_peak)
        held = client.run(_worker_held)
        op.release()
        design.release()
    return dict(single=single, base=base, peaks=peaks, held=held, build=build, product=product)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--memory-n", type=int, default=1_000_000, help="rows of the memory run (0: skip it)")
    ap.add_argument("--out", default=None, help="write the markdown section here")
    ap.add_argument("--exact-only", action="store_true", help="only the exact program's table (4.)")
    args = ap.parse_args(argv)
    if args.exact_only:
        return _print_exact(args)
    if args.memory_n:  # first: the other runs' clusters would sit in this process's peak
        mem = _memory_run(args.memory_n, 50, 500)
        single = mem["single"]["peak_mb"] - mem["single"]["base_mb"]
        per_worker = [mem["peaks"][w] - mem["base"][w] for w in mem["peaks"]]
        mem_lines = [
            "",
            f"Memory, n = {args.memory_n}, d = 50, P = 500 (X generated on the workers, 8 chunks): "
            "peak RSS "
            f"above the imports: single process {single:.0f} MiB, per worker "
            f"{', '.join(f'{m:.0f}' for m in per_worker)} MiB (ratio {max(per_worker) / single:.2f}). Data "
            f"held (design + packed masks): {mem['single']['held_mb']:.0f} MiB in one process, "
            f"{', '.join(f'{m:.0f}' for m in mem['held'].values())} MiB per worker. Build "
            f"{mem['build']:.1f} s, one forward + adjoint {mem['product']:.1f} s.",
        ]
    sizes = [500, 5000] if args.quick else [2_000, 20_000, 200_000]
    d, P, reps = (10, 20, 3) if args.quick else (20, 100, 7)
    lines = [f"### convexnn.distributed on {_machine()}", ""]
    rows = _products_table(sizes, d, P, reps)
    lines += [
        f"Per-iteration products (forward + adjoint), d = {d} (+ bias), P = {P}, c = 1; median of {reps}.",
        "workers = 0: the single-process C++ operator. Bytes: numpy payload between driver and workers.",
        "",
        "| n | workers | ms / iteration | KiB moved / iteration |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['n']} | {r['workers']} | {1e3 * r['time']:.2f} | {r['bytes'] / 1024:.1f} |" for r in rows]
    two = [r for r in rows if r["workers"] == 2]
    latency = min(r["time"] for r in two) / 2  # two round trips per iteration at the smallest n
    lines += [
        "",
        f"Model for k workers on a network (n = 1e8, d = 50, P = 500, c = 1; 10 Gbit/s, measured round "
        f"trip here {1e3 * latency:.1f} ms): bytes/iteration = 8 (2 k P d c + 2 n c).",
        "",
        "The n-vectors dominate: the C++ solver keeps z and R on the driver. The last column is the payload if",
        "they stayed on the workers (only U out and the d x P x c adjoint sums back, 16 k P d c bytes).",
        "",
        "| k | MB / iteration | communication s / iteration | MB / iteration, vectors on workers |",
        "|---:|---:|---:|---:|",
    ]
    for m in _network_model(1e8, 51, 500, 1, [1, 2, 8, 32, 128], latency, 1.25e9):
        lines.append(f"| {m['k']} | {m['bytes'] / 1e6:.1f} | {m['comm']:.3f} | {16 * m['k'] * 500 * 51 / 1e6:.2f} |")
    lines += mem_lines if args.memory_n else []
    _emit(lines + [""] + _exact_lines(args), args.out)


def _exact_lines(args):
    sizes, d, P, tol = ([400, 2000], 4, 10, 1e-8) if args.quick else ([1_000, 10_000, 100_000], 5, 20, 1e-8)
    rows = _exact_table(sizes, d, P, tol)
    lines = [
        f"Exact program (formulation='relu', tol = {tol:g}) on 2 workers, d = {d} (+ bias), P = {P}, "
        "beta = 0.05 beta_max, 4 chunks: constraint generation. Rows: the working set (cone constraints on the "
        "driver) in the last round. KiB / iteration: the operator's whole payload (products, violation checks and "
        "rows fetched) over the C++ iterations of all rounds.",
        "",
        "| n | rounds | rows | iterations (1 machine) | status | objective vs 1 machine | gap | violation "
        "| KiB / iteration | s (1 machine) |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['n']} | {r['rounds']} | {r['rows']} | {r['iters']} ({r['ref_iters']}) | {r['status']} | "
        f"{r['rel']:.1e} | {r['gap']:.1e} | {r['viol']:.1e} | {r['kib_iter']:.1f} | {r['time']:.1f} "
        f"({r['t_ref']:.2f}) |"
        for r in rows
    ]
    return lines


def _print_exact(args):
    _emit([f"### convexnn.distributed, exact program, on {_machine()}", ""] + _exact_lines(args), args.out)


def _emit(lines, out):
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()

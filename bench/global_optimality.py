"""The exact program with pattern generation against the best of many Adam runs of the same network.

For every (data set, beta) case: convexnn's ``solve(X, y, beta, patterns=P, formulation="relu", bias=True,
cutting_planes=True, time_limit=T)`` (the default pattern generation: adam-seeded initial patterns, then column
generation by the neuron oracle; shared neurons for c > 1) scored by ``res.network().objective(X, y, beta)``,
against Adam on the non-convex two-layer ReLU network with the same objective (convexnn.nonconvex), widths
{P, 2P, 300}, learning rates {1e-3, 1e-2, 3e-2}, 5 initializations, full batch to convergence. beta is a
fraction {1e-3, 1e-2, 1e-1} of beta_max over P sampled patterns. The objective is the library's (a sum over
samples).

    python bench/global_optimality.py [--quick] [--time-limit 30] [--out bench/results/global_optimality.json]

Writes the JSON, a markdown table (stdout) and a PNG (objective ratio convexnn / best Adam per case).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

import convexnn as cnn
from convexnn.nonconvex import train_nonconvex

ROOT = Path(__file__).resolve().parents[1]


def datasets():
    """(name, X standardized, y, loss) for scikit-learn's bundled real sets."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

    def std(X):
        X = np.asarray(X, dtype=np.float64)
        s = X.std(axis=0)
        keep = s > 1e-12
        return (X[:, keep] - X[:, keep].mean(axis=0)) / s[keep]

    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", std(X), (y - y.mean()) / y.std(), "squared"
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer", std(X), np.where(y == 1, 1.0, -1.0), "logistic"
    X, y = load_wine(return_X_y=True)
    yield "wine (3 classes)", std(X), np.eye(3)[y], "cross_entropy"
    X, y = load_digits(return_X_y=True)
    yield "digits (<5 vs >=5)", std(X), np.where(y < 5, 1.0, -1.0), "logistic"


def adam_grid(X, y, beta, loss, P, quick, max_runs=None):
    widths = (P, 300) if quick else (P, 2 * P, 300)
    lrs = (1e-2, 3e-2) if quick else (1e-3, 1e-2, 3e-2)
    seeds = range(2 if quick else 5)
    grid = [(w, lr, s) for s in seeds for w in widths for lr in lrs]  # init-major: a prefix covers every (w, lr)
    if max_runs is not None:
        grid = grid[:max_runs]
    epochs = 2000 if quick else 20000  # the full grid runs to convergence (tol below), capped at 20000 epochs
    best, total, runs, converged = np.inf, 0.0, 0, 0
    for width, lr, seed in grid:
        run = train_nonconvex(
            X,
            y,
            beta,
            n_neurons=width,
            loss=loss,
            bias=True,
            lr=lr,
            n_epochs=epochs,
            seed=seed,
            record_every=100,
            tol=None if quick else 1e-7,
            patience=10,
        )
        total += run.time
        runs += 1
        converged += run.status == "converged"
        # the best recorded network of the run (Adam's last iterate can sit above it at large rates)
        finite = [h["objective"] for h in run.history if np.isfinite(h["objective"])]
        if finite:
            best = min(best, min(finite))
    return best, total, runs, converged


def machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    isa = [f for f in flags if f.startswith(("avx", "amx"))]
    return f"{model}, {cnn.get_num_threads()} threads, ISA: {' '.join(isa)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer Adam runs (widths {P, 300}, 2 lrs, 2 inits)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="convexnn's time limit per case (s)")
    parser.add_argument("--patterns", type=int, default=100, help="P: sampled patterns (and Adam's width)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    parser.add_argument("--sets", nargs="+", default=None, help="data set names to run (default all)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "global_optimality.json"))
    parser.add_argument(
        "--adam-cache",
        default=None,
        help="JSON of the Adam grids' results: read for the cases it holds, extended with new ones "
        "(the Adam objectives do not depend on the load; convexnn's time-limited solve does)",
    )
    parser.add_argument("--adam-only", action="store_true", help="fill --adam-cache and skip convexnn")
    parser.add_argument(
        "--max-runs",
        type=int,
        default=None,
        help="at most this many Adam runs per case, spread over the widths and learning rates",
    )
    args = parser.parse_args(argv)
    rows = []
    cache_path = Path(args.adam_cache) if args.adam_cache else None
    cache = json.loads(cache_path.read_text()) if cache_path and cache_path.exists() else {}
    for name, X, y, loss in datasets():
        if args.sets and not any(name.startswith(s) for s in args.sets):
            continue
        pats = cnn.sample_patterns(X, args.patterns, seed=0, bias=True)
        bmax = cnn.beta_max(X, y, pats, loss=loss, bias=True)
        for ratio in args.ratios:
            beta = ratio * bmax
            key = f"{name}|{ratio:g}|{args.patterns}|{'quick' if args.quick else 'full'}|{args.max_runs}"
            if key not in cache:
                adam, t_adam, n_runs, n_conv = adam_grid(X, y, beta, loss, args.patterns, args.quick, args.max_runs)
                cache[key] = dict(best=adam, time=t_adam, runs=n_runs, converged=n_conv)
                if cache_path:
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    cache_path.write_text(json.dumps(cache, indent=1))
                print(
                    f"{name:20s} beta={ratio:g}*bmax adam best {adam:.8g} ({n_runs} runs, {n_conv} converged, "
                    f"{t_adam:.1f}s)",
                    flush=True,
                )
            if args.adam_only:
                continue
            adam, t_adam, n_runs, n_conv = (cache[key][k] for k in ("best", "time", "runs", "converged"))
            t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
            res = cnn.solve(
                X,
                y,
                beta,
                patterns=args.patterns,
                formulation="relu",
                loss=loss,
                bias=True,
                cutting_planes=True,
                time_limit=args.time_limit,
            )
            t_cnn, cpu_cnn = time.perf_counter() - t0, time.process_time() - c0
            load = 0.5 * (load0 + os.getloadavg()[0])
            obj = res.network().objective(X, y, beta, loss=loss)
            rows.append(
                dict(
                    set=name,
                    n=X.shape[0],
                    d=X.shape[1],
                    loss=loss,
                    ratio=ratio,
                    beta=beta,
                    convexnn=obj,
                    convexnn_time=t_cnn,
                    convexnn_cpu=cpu_cnn,
                    load=load,
                    status=res.status,
                    neurons=res.network().n_neurons,
                    certified_global=bool(res.certified_global),
                    dual_bound=res.dual_objective,
                    max_dual_violation=float(res.max_dual_violation),
                    adam_best=adam,
                    adam_time=t_adam,
                    adam_runs=n_runs,
                    adam_converged=n_conv,
                )
            )
            r = rows[-1]
            print(
                f"{name:20s} beta={ratio:g}*bmax convexnn {obj:.8g} ({t_cnn:.1f}s, cpu {cpu_cnn:.1f}s, "
                f"load {load:.1f}, {res.status}) "
                f"adam best {adam:.8g} ({n_runs} runs, {n_conv} converged, {t_adam:.1f}s) ratio {obj / adam:.6f}",
                flush=True,
            )
    if args.adam_only:
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(machine=machine(), quick=args.quick, rows=rows), indent=1))
    print(f"\nMachine: {machine()}\n")
    print(
        "| data set | beta / beta_max | convexnn objective (wall, CPU, load, status) | best Adam objective (runs, "
        "total time) | convexnn / Adam |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['set']} (n={r['n']}, d={r['d']}, {r['loss']}) | {r['ratio']:g} | {r['convexnn']:.8g} "
            f"({r['convexnn_time']:.1f} s, {r['convexnn_cpu']:.1f} s, {r['load']:.1f}, {r['status']}) | "
            f"{r['adam_best']:.8g} ({r['adam_runs']}, "
            f"{r['adam_time']:.0f} s) | {r['convexnn'] / r['adam_best']:.6f} |"
        )
    _plot(rows, out.with_suffix(".png"))


def _plot(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    labels = [f"{r['set'].split(' ')[0]}\n{r['ratio']:g}" for r in rows]
    ratios = [r["convexnn"] / r["adam_best"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(rows)), 3.8))
    ax.bar(range(len(rows)), ratios, color=["tab:green" if q <= 1 else "tab:red" for q in ratios])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("objective: convexnn / best Adam")
    lo = min(ratios + [1.0])
    ax.set_ylim(min(0.95, lo - 0.01), max(1.02, max(ratios) + 0.01))
    ax.set_title("exact program with pattern generation vs the best Adam run (below 1: convexnn better)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

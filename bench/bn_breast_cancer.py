"""BN ReLU network on breast cancer: the convex program (convexnn.bn) versus NumPy Adam on the same BN network.

Ergen et al., "Demystifying Batch Normalization in ReLU Networks" (ICLR 2022): the two-layer BN network (3) with the
squared loss on {-1, +1} labels, weight decay beta on (gamma, alpha, w2) in the paper's units. Four models:
Convex (program (8) on U', sampled patterns), Convex-Trunc (U'_k, k at 95% variance), Adam and Adam-Trunc (full
batch, on the rank-k data g(X)). Same objective for all; test accuracy on a held-out 30%.

Usage: python bench/bn_breast_cancer.py [--out bench/results_bn.md] [--plot bench/bn_breast_cancer.png]
Runs in about a minute on 2 cores (one BLAS / OpenMP thread).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import convexnn as cnn
from convexnn import bn


def _machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = info.get("Flags", "").split()
    isa = ", ".join(f for f in ("avx2", "avx512f", "amx_tile") if f in flags) or "no AVX2"
    return f"{info.get('Model name', '?').strip()}, {info.get('CPU(s)', '?').strip()} CPUs, ISA flags: {isa}"


def _accuracy(scores, y):
    return float(np.mean(np.where(scores > 0, 1.0, -1.0) == y))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--patterns", type=int, default=300)
    ap.add_argument("--neurons", type=int, default=300)
    ap.add_argument("--adam-iters", type=int, default=3000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args(argv)
    cnn.set_num_threads(1)

    data = load_breast_cancer()
    X_tr, X_te, y_tr, y_te = train_test_split(
        data.data, np.where(data.target == 1, 1.0, -1.0), test_size=0.3, random_state=0, stratify=data.target
    )
    mu, sd = X_tr.mean(0), X_tr.std(0)
    X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd  # the features span 5 orders of magnitude
    beta = args.beta
    k = bn.whiten(X_tr, truncate="auto").k
    rows, curves = [], {}
    with threadpool_limits(1):
        for name, trunc in (("Convex", None), ("Convex-Trunc", "auto")):
            t0 = time.perf_counter()
            res = bn.solve_bn(X_tr, y_tr, beta, patterns=args.patterns, truncate=trunc, seed=0, tol=1e-6, time_limit=60)
            wall = time.perf_counter() - t0
            net = res.network()
            rows.append(
                (
                    name,
                    wall,
                    res.objective,
                    res.dual_objective,
                    net.objective(X_tr, y_tr, beta),
                    _accuracy(net.predict(X_tr), y_tr),
                    _accuracy(net.predict(X_te), y_te),
                    net.n_neurons,
                    res.status,
                )
            )
            curves[name] = (wall, res.objective)
        for name, trunc in (("Adam", None), ("Adam-Trunc", "auto")):
            tr = bn.train_bn(
                X_tr,
                y_tr,
                beta,
                n_neurons=args.neurons,
                optimizer="adam",
                lr=1e-2,
                n_iter=args.adam_iters,
                seed=0,
                truncate=trunc,
                record_every=10,
            )
            net = tr.network
            # Adam-Trunc trains on g(X) (rank k, centered + training mean); its objective is on g(X), the test data
            # are not truncated (Ergen et al., Appendix A.1).
            train_value = tr.objective
            rows.append(
                (
                    name,
                    tr.time,
                    train_value,
                    float("nan"),
                    train_value,
                    _accuracy(net.predict(X_tr), y_tr),
                    _accuracy(net.predict(X_te), y_te),
                    net.n_neurons,
                    tr.status,
                )
            )
            curves[name] = ([h["time"] for h in tr.history], [h["objective"] for h in tr.history])
            if trunc is None:
                adam_net = net
        # The exact program on the Adam network's own patterns (plus the sampled ones): its certified optimum over
        # that pattern set can only be below Adam's objective (Adam's network is a feasible point of it).
        wh = bn.whiten(X_tr)
        Q = wh.coordinates(adam_net.W1)
        H = np.hstack(
            [adam_net.gamma[:, None] * Q / np.linalg.norm(Q, axis=1, keepdims=True), adam_net.alpha[:, None]]
        ).T
        H = np.hstack([H, np.random.default_rng(0).standard_normal((wh.k + 1, args.patterns))])
        t0 = time.perf_counter()
        res = bn.solve_bn(X_tr, y_tr, beta, patterns=H, tol=1e-6, time_limit=60)
        wall = time.perf_counter() - t0
        net = res.network()
        rows.append(
            (
                "Convex on Adam's patterns + sampled",
                wall,
                res.objective,
                res.dual_objective,
                net.objective(X_tr, y_tr, beta),
                _accuracy(net.predict(X_tr), y_tr),
                _accuracy(net.predict(X_te), y_te),
                net.n_neurons,
                res.status,
            )
        )
        curves["Convex on Adam's patterns + sampled"] = (curves["Adam"][0][-1] + wall, res.objective)

    head = (
        f"### BN network on breast cancer (n_train = {len(y_tr)}, d = 30, beta = {beta:g}, squared loss on "
        f"+-1 labels, k = {k} at 95% variance)\n\nMachine: {_machine()}; one thread.\n\n"
        "| model | time (s) | objective (3) | dual bound (sampled patterns) | rebuilt-network objective | "
        "train acc | test acc | neurons | status |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r[0]} | {r[1]:.2f} | {r[2]:.6f} | {r[3]:.6f} | {r[4]:.6f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]} | {r[8]} |\n"
        for r in rows
    )
    table = head + body
    print(table)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n" + table)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name, style in (("Adam", "C0-"), ("Adam-Trunc", "C1-")):
            t, f = curves[name]
            ax.plot(t, f, style, label=name)
        for name, style in (("Convex", "C0*"), ("Convex-Trunc", "C1*"), ("Convex on Adam's patterns + sampled", "C2*")):
            t, f = curves[name]
            ax.plot([t], [f], style, markersize=14, label=f"{name} (certified over its patterns)")
        ax.set_yscale("log")
        ax.set_xlabel("wall-clock time (s)")
        ax.set_ylabel("objective (3), paper's BN units")
        ax.set_title(f"BN ReLU net, breast cancer, beta = {beta:g}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    return rows


if __name__ == "__main__":
    main()

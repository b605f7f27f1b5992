"""Two-layer sum-pooled ReLU CNN on scikit-learn's digits: the convex program vs Adam on the same CNN.

    PYTHONPATH=python python bench/cnn_digits.py [--runs 5] [--epochs 150] [--patterns 60] [--clusters 20]

Task: digits (8x8, 1797 images), binary "digit >= 5" (labels {-1, +1}), 75/25 stratified split, pixels / 16,
standardized; 3x3 patches, stride 1 (K = 36), a bias per filter; logistic loss (a SUM over images) with weight
decay beta/2 (||u_j||^2 + alpha_j^2); beta = --beta-ratio * beta_max of the gated program on the patterns.

Non-convex baseline: --runs Adam runs (NumPy, convexnn.cnn.train_cnn; PyTorch when installed and --torch) of the
CNN with --filters filters, minibatches of 128, --epochs epochs, lr 1e-2, seeds 0..runs-1.

Convex: the exact program of Pilanci & Ergen (ICML 2020, Appendix A.1) (convexnn.cnn.solve_relu_cnn,
formulation="relu") on the patterns of --patterns Gaussian gates, --clusters k-means centres of the training
patches and the filters of every Adam run (the paper's "patch clusters plus the GD patterns"), warm-started at the
best Adam network mapped into the program (convexnn.cnn.network_warm_start, the reverse of Theorem 1's map: every
trained filter lies in the cone of its own pattern). So its optimum is <= every Adam objective, and the
certificate says how far the returned point is from that optimum. For each Adam run the table also gives the
training time at which it first reached the convex objective (never, if it did not).

Prints a markdown table (objective, certificate, test accuracy, time) headed by the machine.
"""

import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--patterns", type=int, default=60)
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--beta-ratio", type=float, default=0.01)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--time-limit", type=float, default=90.0)
    ap.add_argument("--torch", action="store_true", help="train the baseline with PyTorch (needs torch)")
    args = ap.parse_args()

    from cnn_operator_bench import _machine
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from convexnn.cnn import (
        cluster_gates,
        extract_patches,
        network_gates,
        network_warm_start,
        patterns_from_gates,
        relu_cnn_beta_max,
        solve_relu_cnn,
        train_cnn,
    )
    from convexnn.patterns import sample_patterns

    d = load_digits()
    y_all = np.where(d.target >= 5, 1.0, -1.0)
    Xtr, Xte, ytr, yte = train_test_split(d.images / 16.0, y_all, test_size=0.25, random_state=0, stratify=y_all)
    mu, sd = Xtr.mean(), Xtr.std()
    Ptr = extract_patches((Xtr - mu) / sd, 3)
    Pte = extract_patches((Xte - mu) / sd, 3)
    n, K, h = Ptr.shape
    Xs = Ptr.reshape(n * K, h)

    def accuracy(net, P, y):
        return float(np.mean(np.where(net.predict(P) > 0, 1.0, -1.0) == y))

    # beta from the Gaussian patterns alone (fixed before any training run)
    g0 = sample_patterns(Xs, args.patterns, seed=0, bias=True)
    beta = args.beta_ratio * relu_cnn_beta_max(Ptr, ytr, g0, loss="logistic", bias=True)

    rows, adam_gates, runs = [], [], []
    for seed in range(args.runs):
        tr = train_cnn(
            Ptr,
            ytr,
            beta,
            args.filters,
            loss="logistic",
            bias=True,
            lr=1e-2,
            n_epochs=args.epochs,
            batch_size=128,
            seed=seed,
            record_every=5,
            backend="torch" if args.torch else "numpy",
        )
        adam_gates.append(network_gates(tr.network))
        runs.append(tr)
        rows.append(
            [f"Adam run {seed} ({args.filters} filters)", tr.objective, "", accuracy(tr.network, Pte, yte), tr.time]
        )
    adam_time = sum(tr.time for tr in runs)
    best = min(runs, key=lambda tr: tr.objective)
    best_adam = best.objective

    t0 = time.perf_counter()
    gates = np.hstack([g0.gates, cluster_gates(Ptr, args.clusters, seed=0, bias=True)] + adam_gates)
    pats = patterns_from_gates(Ptr, gates, bias=True)
    res = solve_relu_cnn(
        Ptr,
        ytr,
        beta,
        patterns=pats,
        formulation="relu",
        loss="logistic",
        bias=True,
        tol=args.tol,
        time_limit=args.time_limit,
        warm_start=network_warm_start(best.network, Ptr, pats),
    )
    t_convex = time.perf_counter() - t0
    net = res.network()
    cert = f"gap {res.gap:.1e}, violation {res.max_violation:.1e}, {res.status}"
    rows.append(
        (
            f"convex exact program ({pats.n_patterns} patterns, {net.n_filters} filters)",
            res.objective,
            cert,
            accuracy(net, Pte, yte),
            t_convex,
        )
    )
    recomputed = net.objective(Ptr, ytr, beta, loss="logistic")
    for row, tr in zip(rows, runs):
        times, objs = tr.times_objectives()
        hit = np.nonzero(objs <= res.objective)[0]
        row[2] = (
            f"reached the convex objective at {times[hit[0]]:.1f} s"
            if hit.size
            else "never reached the convex objective"
        )

    print(f"Machine: {_machine()}")
    print(
        f"digits >= 5 vs < 5: n_train = {n}, n_test = {len(Pte)}, K = {K}, h = {h} + bias, logistic loss, "
        f"beta = {beta:.4g} ({args.beta_ratio} beta_max), Adam: {args.epochs} epochs, batch 128, lr 1e-2\n"
    )
    print(
        "| method | training objective | certificate (convex) / first time at the convex objective (Adam) | test accuracy | time (s) |"
    )
    print("|---|---|---|---|---|")
    for name, obj, c, acc, t in rows:
        print(f"| {name} | {obj:.4f} | {c} | {100 * acc:.1f}% | {t:.1f} |")
    print(
        f"\nconvex objective {res.objective:.6f} vs best Adam {best_adam:.6f} "
        f"({'<=' if res.objective <= best_adam else '>'}); the convex CNN's non-convex objective recomputed: "
        f"{recomputed:.6f} (relative difference {abs(recomputed - res.objective) / res.objective:.1e}); "
        f"dual bound {res.dual_objective:.6f}. Convex solve {t_convex:.1f} s (patterns + solve) after "
        f"{adam_time:.1f} s of Adam runs whose patterns it uses."
    )


if __name__ == "__main__":
    main()

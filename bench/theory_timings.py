"""Timings of the convexnn.theory closed forms at n = 1e4, d = 1e3, and GD vs the closed form (time to its value).

Not run in CI.  Usage: ``python bench/theory_timings.py [--quick]``; prints markdown tables (bench/results_theory.md).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from convexnn import theory as T


def _time(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def closed_form_table(n, d, K, rng):
    X = rng.standard_normal((n, d))
    Z = rng.standard_normal((d, K))
    Y = X @ Z + 0.1 * rng.standard_normal((n, K))
    y = Y[:, 0]
    Q = np.linalg.qr(rng.standard_normal((n, d)))[0]  # X^T X = I_d
    W = np.linalg.qr(rng.standard_normal((n, d)))[0].T  # whitened (d x n): X X^T = I_d
    lab = rng.integers(0, K, d)
    one_hot = np.eye(K)[lab]
    yw = rng.standard_normal(d)
    cases = [
        ("two_layer_linear min-norm, scalar (Thm 2.1)", lambda: T.two_layer_linear(X[: d // 2], y[: d // 2], 0.0)),
        ("two_layer_linear beta>0, scalar, any X (eq. 10, secular)", lambda: T.two_layer_linear(X, y, 10.0)),
        (f"two_layer_linear beta>0, K={K}, X^T X = I (SVT)", lambda: T.two_layer_linear(Q, Y, 5.0)),
        ("deep_linear L=4 beta>0, scalar, any X (Thm 3.3, 1-D search)", lambda: T.deep_linear(X, y, 4, 10.0)),
        (f"deep_linear L=4 beta>0, K={K}, X^T X = I (Thm 3.6)", lambda: T.deep_linear(Q, Y, 4, 5.0)),
        (f"whitened_two_layer squared (Thm 9), n={d}, d={n}", lambda: T.whitened_two_layer(W, yw, 1.0)),
        (
            f"whitened_two_layer multiclass (Thm 15), K={K}, n={d}, d={n}",
            lambda: T.whitened_two_layer(W, one_hot, 1.0, loss="multiclass"),
        ),
        (
            f"whitened_deep_relu L=4 (ICML Thm 4.3), K={K}, n={d}, d={n}",
            lambda: T.whitened_deep_relu(W, one_hot, 4, 1.0),
        ),
        (
            "rank_one_relu L=5 (Thm 4.1)",
            lambda: T.rank_one_relu(np.outer(np.abs(y), rng.standard_normal(d)), y, 5, 1.0),
        ),
        (f"bn_last_layers (Thm 4.4), n={d}, p={n}", lambda: T.bn_last_layers(W, one_hot, 1.0)),
    ]
    rows = []
    for name, fn in cases:
        t, res = _time(fn)
        rows.append((name, t, res.objective))
    return rows


def gd_vs_closed_form(rng, n=2000, d=200, L=3, beta=5.0, budget=60.0):
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    t_cf, res = _time(lambda: T.deep_linear(X, y, L, beta))
    out = []
    for opt, kw in (("gd", dict(lr=0.5, momentum=0.9)), ("lbfgs", {})):
        net = T.MLP.random(d, [20] * (L - 1), activation="linear", seed=0)
        t0 = time.perf_counter()
        reached, it, tr = None, 0, None
        step = 100
        while time.perf_counter() - t0 < budget:
            tr = T.train(net, X, y, beta, optimizer=opt, n_iter=step, **kw)
            net, it = tr.network, it + step
            if tr.objective <= res.objective * (1 + 1e-6):
                reached = time.perf_counter() - t0
                break
        out.append((opt, reached, it, tr.objective, res.objective))
    return t_cf, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="n = 2000, d = 200 instead of 1e4, 1e3")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, d, K = (2000, 200, 10) if args.quick else (10_000, 1_000, 10)
    print(f"| closed form (n = {n}, d = {d}) | time (s) | objective |\n|---|---|---|")
    for name, t, obj in closed_form_table(n, d, K, rng):
        print(f"| {name} | {t:.3f} | {obj:.6g} |")
    t_cf, rows = gd_vs_closed_form(rng)
    print(f"\nDeep linear L = 3, n = 2000, d = 200, beta = 5: closed form {t_cf:.3f} s")
    print("| optimizer | time to closed-form value (1e-6 rel.) | iterations | final objective | closed form |")
    print("|---|---|---|---|---|")
    for opt, reached, it, obj, cf in rows:
        print(
            f"| {opt} | {'not within budget' if reached is None else f'{reached:.2f} s'} | {it} | {obj:.9g} | "
            f"{cf:.9g} |"
        )


if __name__ == "__main__":
    main()

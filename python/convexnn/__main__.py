"""Command line: ``python -m convexnn demo`` (the README's main job)."""

from __future__ import annotations

import argparse
import sys
import time


def _split(X, y, seed=0, test_fraction=0.25):
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    return X[idx[n_test:]], X[idx[:n_test]], y[idx[n_test:]], y[idx[:n_test]]


def _standardize(X_train, X_test):
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0)
    sd[sd == 0] = 1.0
    return (X_train - mu) / sd, (X_test - mu) / sd


def demo(args) -> int:
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import LogisticRegression, Ridge

    import convexnn as cnn

    print(f"convexnn {cnn.__version__}: certified convex training of two-layer ReLU networks\n")

    # ---- regression: scikit-learn's diabetes data (442 patients, 10 features) ----------------------
    X, y = load_diabetes(return_X_y=True)
    Xtr, Xte, ytr, yte = _split(X, y)
    Xtr, Xte = _standardize(Xtr, Xte)
    y_mu, y_sd = ytr.mean(), ytr.std()
    ytr_s = (ytr - y_mu) / y_sd
    pats = cnn.sample_patterns(Xtr, n_patterns=args.n_patterns, seed=0, bias=True)
    bmax = cnn.beta_max(Xtr, ytr_s, pats, bias=True)
    beta = args.beta_ratio * bmax
    print(f"[diabetes] n_train={len(Xtr)} d={X.shape[1]} patterns={pats.n_patterns} "
          f"beta={beta:.4g} ({args.beta_ratio} x beta_max)")
    res = cnn.solve(Xtr, ytr_s, beta, patterns=pats, bias=True, formulation="gated", tol=1e-7)
    print("  gated ReLU (C++):\n    " + res.summary().replace("\n", "\n    "))
    pred = res.predict(Xte) * y_sd + y_mu
    r2 = 1 - np.sum((yte - pred) ** 2) / np.sum((yte - yte.mean()) ** 2)
    ridge = Ridge(alpha=1.0).fit(Xtr, ytr)
    print(f"  test R^2: convexnn gated {r2:.3f} | ridge {ridge.score(Xte, yte):.3f}")

    try:
        import cvxpy  # noqa: F401
    except ImportError:
        print("  (exact relu formulation skipped: install the 'reference' extra for CVXPY + Clarabel)")
    else:
        relu_pats = cnn.sample_patterns(Xtr, n_patterns=args.relu_patterns, seed=1, bias=True)
        t0 = time.perf_counter()
        exact = cnn.solve(Xtr, ytr_s, beta, patterns=relu_pats, bias=True, formulation="relu")
        net = exact.network()
        nonconvex = net.objective(Xtr, ytr_s, beta)
        print(f"  exact ReLU program ({relu_pats.n_patterns} patterns, {time.perf_counter() - t0:.1f}s):\n    "
              + exact.summary().replace("\n", "\n    "))
        print(f"    ReLU network: {net.n_neurons} neurons, non-convex objective {nonconvex:.10g} "
              f"(convex {exact.objective:.10g})")
        pred = exact.predict(Xte) * y_sd + y_mu
        print(f"    test R^2: {1 - np.sum((yte - pred) ** 2) / np.sum((yte - yte.mean()) ** 2):.3f}")

    # ---- classification: breast cancer (569 samples, 30 features), logistic loss --------------------
    X, y = load_breast_cancer(return_X_y=True)
    y = np.where(y == 1, 1.0, -1.0)
    Xtr, Xte, ytr, yte = _split(X, y)
    Xtr, Xte = _standardize(Xtr, Xte)
    pats = cnn.sample_patterns(Xtr, n_patterns=args.n_patterns, seed=0, bias=True)
    bmax = cnn.beta_max(Xtr, ytr, pats, loss="logistic", bias=True)
    beta = args.beta_ratio * bmax
    print(f"\n[breast cancer] n_train={len(Xtr)} d={X.shape[1]} patterns={pats.n_patterns} beta={beta:.4g}")
    res = cnn.solve(Xtr, ytr, beta, patterns=pats, bias=True, loss="logistic", tol=1e-7)
    print("  gated ReLU (C++), logistic:\n    " + res.summary().replace("\n", "\n    "))
    acc = np.mean(np.sign(res.predict(Xte)) == yte)
    lr = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
    print(f"  test accuracy: convexnn gated {acc:.3f} | logistic regression {lr.score(Xte, yte):.3f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convexnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="certified fits on scikit-learn's bundled diabetes and breast cancer data")
    p_demo.add_argument("--n-patterns", type=int, default=500, help="Gaussian gates drawn (default 500)")
    p_demo.add_argument("--relu-patterns", type=int, default=40, help="patterns for the exact program (default 40)")
    p_demo.add_argument("--beta-ratio", type=float, default=0.05, help="beta as a fraction of beta_max")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

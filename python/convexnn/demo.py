"""The demo: certified fits on scikit-learn's bundled real data beside MLPs and linear models, and pictures.

Run it with ``python -m convexnn demo`` (or ``convexnn demo``); :func:`demo` takes the parsed arguments of that
command (see :mod:`convexnn.cli`).
"""

from __future__ import annotations

import os
import time
import warnings


def _split(X, y, seed=0, test_fraction=0.25):
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    return X[idx[n_test:]], X[idx[:n_test]], y[idx[n_test:]], y[idx[:n_test]]


def _indent(text, prefix="    "):
    return prefix + text.replace("\n", "\n" + prefix)


def _timed_fit(model, X, y):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # The MLP baselines may stop at max_iter; the demo reports their scores as they are.
        warnings.filterwarnings("ignore", message=".*Maximum iterations.*")
        model.fit(X, y)
    return time.perf_counter() - t0


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  " + "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*r) for r in rows])


def demo(args) -> int:
    """Run the demo with the parsed ``demo`` arguments (n_patterns, relu_patterns, beta_ratio, ...); returns 0."""
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import convexnn as cnn
    from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

    t_start = time.perf_counter()
    print(f"convexnn {cnn.__version__}: certified convex training of two-layer ReLU networks\n")

    # ---- regression: scikit-learn's diabetes data (442 patients, 10 features) ----------------------
    data = load_diabetes()
    X, y = data.data, data.target
    Xtr, Xte, ytr, yte = _split(X, y)
    gated = ConvexReLURegressor(
        formulation="gated", n_patterns=args.n_patterns, beta_ratio=args.beta_ratio, time_limit=args.time_limit
    )
    t_gated = _timed_fit(gated, Xtr, ytr)
    print(
        f"[diabetes] n_train={len(Xtr)} n_test={len(Xte)} d={X.shape[1]} patterns={gated.n_patterns_} "
        f"beta={gated.beta_:.4g} ({args.beta_ratio} x beta_max); X standardized, y centered"
    )
    print("  gated ReLU network (C++ solver):\n" + _indent(gated.result_.summary()))
    rows = [
        ["convexnn gated", f"{gated.score(Xte, yte):.3f}", f"{t_gated:.2f}s", f"gap {gated.gap_:.1e} ({gated.status_})"]
    ]
    # The exact program at the same beta (same units: both estimators see the same pre-processed data).
    # Pattern generation (a short Adam + L-BFGS run's patterns, then the neuron oracle's column generation) makes
    # the exact program's network at least as good as gradient training; sampled patterns alone do not.
    exact = ConvexReLURegressor(
        formulation="relu",
        n_patterns=args.relu_patterns,
        beta=gated.beta_,
        cutting_planes=True,
        time_limit=args.time_limit,
    )
    t_exact = _timed_fit(exact, Xtr, ytr)
    net = exact.network_
    Xs, ys = (Xtr - exact.x_mean_) / exact.x_scale_, ytr - exact.y_mean_
    nonconvex = net.objective(Xs, ys, exact.beta_)
    print(f"  exact ReLU program ({exact.n_patterns_} patterns, {t_exact:.1f}s):\n" + _indent(exact.result_.summary()))
    print(
        f"    ReLU network: {net.n_neurons} neurons, non-convex objective {nonconvex:.10g} "
        f"(convex {exact.objective_:.10g})"
    )
    rows.append(
        [
            "convexnn relu (exact)",
            f"{exact.score(Xte, yte):.3f}",
            f"{t_exact:.2f}s",
            f"gap {exact.gap_:.1e}, violation {exact.max_violation_:.1e}",
        ]
    )
    width = max(8, min(100, gated.network_.n_neurons))
    mlp = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(width,), alpha=1e-3, learning_rate_init=1e-2, max_iter=500, random_state=0),
    )
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    t_mlp, t_ridge = _timed_fit(mlp, Xtr, ytr), _timed_fit(ridge, Xtr, ytr)
    rows.append(
        [
            f"sklearn MLPRegressor ({width} ReLU)",
            f"{mlp.score(Xte, yte):.3f}",
            f"{t_mlp:.2f}s",
            "none (non-convex, local)",
        ]
    )
    rows.append(["sklearn Ridge", f"{ridge.score(Xte, yte):.3f}", f"{t_ridge:.2f}s", "n/a"])
    print("  test R^2 on the same split:\n" + _table(rows, ["model", "test R^2", "fit time", "certificate"]))

    # ---- classification: breast cancer (569 samples, 30 features), logistic loss --------------------
    data_c = load_breast_cancer()
    Xc, yc = data_c.data, data_c.target_names[data_c.target]  # labels "malignant" / "benign"
    Xctr, Xcte, yctr, ycte = _split(Xc, yc)
    clf = ConvexReLUClassifier(
        formulation="gated", n_patterns=args.n_patterns, beta_ratio=args.beta_ratio, time_limit=args.time_limit
    )
    t_clf = _timed_fit(clf, Xctr, yctr)
    print(
        f"\n[breast cancer] n_train={len(Xctr)} n_test={len(Xcte)} d={Xc.shape[1]} patterns={clf.n_patterns_} "
        f"beta={clf.beta_:.4g} classes={clf.classes_.tolist()}"
    )
    print("  gated ReLU network (C++), logistic loss:\n" + _indent(clf.result_.summary()))
    mlp_c = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(width,), alpha=1e-3, max_iter=500, random_state=0)
    )
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    t_mlp_c, t_lr = _timed_fit(mlp_c, Xctr, yctr), _timed_fit(logreg, Xctr, yctr)
    rows = [
        ["convexnn gated", f"{clf.score(Xcte, ycte):.3f}", f"{t_clf:.2f}s", f"gap {clf.gap_:.1e} ({clf.status_})"],
        [
            f"sklearn MLPClassifier ({width} ReLU)",
            f"{mlp_c.score(Xcte, ycte):.3f}",
            f"{t_mlp_c:.2f}s",
            "none (non-convex, local)",
        ],
        ["sklearn LogisticRegression", f"{logreg.score(Xcte, ycte):.3f}", f"{t_lr:.2f}s", "n/a"],
    ]
    print("  test accuracy on the same split:\n" + _table(rows, ["model", "test accuracy", "fit time", "certificate"]))

    # ---- pictures -------------------------------------------------------------------------------------
    if args.no_plots:
        print(f"\ndone in {time.perf_counter() - t_start:.1f}s")
        return 0
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        print("\n(plots skipped: install the 'plot' extra for matplotlib)")
        return 0
    plots_dir = args.plots_dir
    if plots_dir is None:
        import tempfile

        plots_dir = tempfile.mkdtemp(prefix="convexnn-demo-")
    os.makedirs(plots_dir, exist_ok=True)
    written = _demo_plots(plots_dir, X, y, Xctr, yctr, data_c.feature_names, gated, exact, args)
    print(f"\nplots written to {plots_dir}:")
    for path in written:
        print(f"  {path}")
    print(f"done in {time.perf_counter() - t_start:.1f}s")
    return 0


def _demo_plots(plots_dir, X, y, Xctr, yctr, feature_names, gated, exact, args):
    import matplotlib.pyplot as plt

    from convexnn import plots
    from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor
    from convexnn.nonconvex import train_nonconvex

    written = []
    # 1) one feature: body-mass index against disease progression, the fit with its kinks. In 1-D the arrangement
    # is small, so cutting planes can certify the optimum over ReLU networks of any width.
    bmi = X[:, [2]]
    one_d = ConvexReLURegressor(
        formulation="relu",
        n_patterns=args.relu_patterns,
        beta_ratio=args.beta_ratio,
        cutting_planes=True,
        time_limit=args.time_limit,
    )
    one_d.fit(bmi, y)
    claim = "certified global optimum" if one_d.certified_global_ else "certified on sampled patterns"
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    plots.plot_fit_1d(
        one_d,
        bmi,
        y,
        ax=ax,
        label=f"convexnn exact ReLU ({one_d.network_.n_neurons} neurons)",
        title=f"diabetes: progression vs BMI, {claim} (gap {one_d.gap_:.1e})",
    )
    ax.set_xlabel("body-mass index (standardized by scikit-learn)")
    ax.set_ylabel("disease progression after one year")
    written.append(_save(fig, plots_dir, "fit_1d.png"))

    # 2) two features: decision regions of the breast-cancer classifier on "worst radius" and "worst texture".
    cols = [20, 21]
    two_d = ConvexReLUClassifier(
        formulation="gated", n_patterns=args.n_patterns, beta_ratio=args.beta_ratio, time_limit=args.time_limit
    )
    two_d.fit(Xctr[:, cols], yctr)
    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    plots.plot_decision_regions(
        two_d,
        Xctr[:, cols],
        yctr,
        ax=ax,
        feature_names=[feature_names[c] for c in cols],
        title=f"breast cancer: gated ReLU network regions ({two_d.network_.n_neurons} neurons)",
    )
    written.append(_save(fig, plots_dir, "decision_regions.png"))

    # 3) objective against time on the diabetes training data (pre-processed as the estimator does):
    # the convex gated solve, Adam on the same gated network (same gates, non-convex), Adam on a ReLU network.
    Xs, ys = _training_data(gated, X, y)
    res = gated.result_
    curves = {f"convexnn gated program (C++, {res.patterns.n_patterns} patterns)": res}
    adam_gated = train_nonconvex(
        Xs,
        ys,
        gated.beta_,
        gates=res.patterns.gates,
        bias=True,
        lr=2e-2,
        n_epochs=args.adam_epochs,
        record_every=10,
        seed=0,
    )
    curves[f"Adam, same gated network ({res.patterns.n_patterns} neurons)"] = adam_gated
    width = max(8, gated.network_.n_neurons)
    adam_relu = train_nonconvex(
        Xs, ys, gated.beta_, n_neurons=width, bias=True, lr=2e-2, n_epochs=args.adam_epochs, record_every=10, seed=0
    )
    curves[f"Adam, ReLU network ({width} neurons)"] = adam_relu
    curves[f"convexnn exact ReLU program, pattern generation ({exact.n_patterns_} patterns)"] = exact.result_
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    plots.plot_objective_vs_time(
        curves,
        ax=ax,
        lower_bound=res.dual_objective,
        lower_bound_label="certified lower bound for the gated network",
        title=f"diabetes: training objective (beta = {gated.beta_:.3g})",
    )
    written.append(_save(fig, plots_dir, "objective_vs_time.png"))
    print(
        f"\n[1-D fit] BMI only: exact ReLU program with cutting planes, {one_d.network_.n_neurons} neurons, "
        f"objective {one_d.objective_:.8g}, rel_gap {one_d.gap_:.1e}, certified_global={one_d.certified_global_}"
    )
    print(
        "[objective vs time] the gated program fixes each neuron's gate, a relaxation: its optimum lies below "
        "every ReLU network's; the exact program's objective is a real ReLU network's, compared with Adam's."
    )
    print(
        f"  exact ReLU program: {exact.objective_:.6g} in {exact.result_.time:.2f}s ({exact.result_.global_statement})"
    )
    print(
        f"  convexnn gated: {res.objective:.6g} in {res.time:.2f}s (dual bound "
        f"{res.dual_objective:.6g}); Adam gated: {adam_gated.objective:.6g} in {adam_gated.time:.2f}s; "
        f"Adam ReLU: {adam_relu.objective:.6g} in {adam_relu.time:.2f}s"
    )
    return written


def _training_data(est, X, y):
    """The estimator's pre-processed training split (the demo's split of X, y)."""
    Xtr, _, ytr, _ = _split(X, y)
    return (Xtr - est.x_mean_) / est.x_scale_, ytr - est.y_mean_


def _save(fig, plots_dir, name):
    import matplotlib.pyplot as plt

    path = os.path.join(plots_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""Command line of convexnn.

  python -m convexnn demo [--plots-dir DIR]          certified fits on scikit-learn's bundled real data, beside
                                                     MLPs and linear models, plus pictures
  python -m convexnn fit DATA --target COL --output MODEL [options]
  python -m convexnn predict MODEL DATA [--output PRED.csv]
  python -m convexnn report MODEL [--json]

DATA is a CSV file with a header row (numeric feature columns, the target column holds numbers or labels) or an
.npz file with arrays X (n, d) and y (n,). Exit status: 0 on success, 2 on bad usage or bad input (one line on
stderr saying why).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

CLASSIFICATION_LOSSES = ("logistic", "hinge", "squared_hinge", "cross_entropy")


class UsageError(ValueError):
    """Bad command-line input: reported as one line, exit status 2."""


# ---- demo --------------------------------------------------------------------------------------------------------

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
    import numpy as np
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
    gated = ConvexReLURegressor(formulation="gated", n_patterns=args.n_patterns, beta_ratio=args.beta_ratio,
                                time_limit=args.time_limit)
    t_gated = _timed_fit(gated, Xtr, ytr)
    print(f"[diabetes] n_train={len(Xtr)} n_test={len(Xte)} d={X.shape[1]} patterns={gated.n_patterns_} "
          f"beta={gated.beta_:.4g} ({args.beta_ratio} x beta_max); X standardized, y centered")
    print("  gated ReLU network (C++ solver):\n" + _indent(gated.result_.summary()))
    rows = [["convexnn gated", f"{gated.score(Xte, yte):.3f}", f"{t_gated:.2f}s",
             f"gap {gated.gap_:.1e} ({gated.status_})"]]
    # The exact program at the same beta (same units: both estimators see the same pre-processed data).
    exact = ConvexReLURegressor(formulation="relu", n_patterns=args.relu_patterns, beta=gated.beta_,
                                time_limit=args.time_limit)
    t_exact = _timed_fit(exact, Xtr, ytr)
    net = exact.network_
    Xs, ys = (Xtr - exact.x_mean_) / exact.x_scale_, ytr - exact.y_mean_
    nonconvex = net.objective(Xs, ys, exact.beta_)
    print(f"  exact ReLU program ({exact.n_patterns_} patterns, {t_exact:.1f}s):\n" + _indent(exact.result_.summary()))
    print(f"    ReLU network: {net.n_neurons} neurons, non-convex objective {nonconvex:.10g} "
          f"(convex {exact.objective_:.10g})")
    rows.append(["convexnn relu (exact)", f"{exact.score(Xte, yte):.3f}", f"{t_exact:.2f}s",
                 f"gap {exact.gap_:.1e}, violation {exact.max_violation_:.1e}"])
    width = max(8, min(100, gated.network_.n_neurons))
    mlp = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(width,), alpha=1e-3, learning_rate_init=1e-2,
                                                       max_iter=500, random_state=0))
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    t_mlp, t_ridge = _timed_fit(mlp, Xtr, ytr), _timed_fit(ridge, Xtr, ytr)
    rows.append([f"sklearn MLPRegressor ({width} ReLU)", f"{mlp.score(Xte, yte):.3f}", f"{t_mlp:.2f}s",
                 "none (non-convex, local)"])
    rows.append(["sklearn Ridge", f"{ridge.score(Xte, yte):.3f}", f"{t_ridge:.2f}s", "n/a"])
    print("  test R^2 on the same split:\n" + _table(rows, ["model", "test R^2", "fit time", "certificate"]))

    # ---- classification: breast cancer (569 samples, 30 features), logistic loss --------------------
    data_c = load_breast_cancer()
    Xc, yc = data_c.data, data_c.target_names[data_c.target]  # labels "malignant" / "benign"
    Xctr, Xcte, yctr, ycte = _split(Xc, yc)
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=args.n_patterns, beta_ratio=args.beta_ratio,
                               time_limit=args.time_limit)
    t_clf = _timed_fit(clf, Xctr, yctr)
    print(f"\n[breast cancer] n_train={len(Xctr)} n_test={len(Xcte)} d={Xc.shape[1]} patterns={clf.n_patterns_} "
          f"beta={clf.beta_:.4g} classes={clf.classes_.tolist()}")
    print("  gated ReLU network (C++), logistic loss:\n" + _indent(clf.result_.summary()))
    mlp_c = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(width,), alpha=1e-3, max_iter=500,
                                                          random_state=0))
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    t_mlp_c, t_lr = _timed_fit(mlp_c, Xctr, yctr), _timed_fit(logreg, Xctr, yctr)
    rows = [["convexnn gated", f"{clf.score(Xcte, ycte):.3f}", f"{t_clf:.2f}s", f"gap {clf.gap_:.1e} ({clf.status_})"],
            [f"sklearn MLPClassifier ({width} ReLU)", f"{mlp_c.score(Xcte, ycte):.3f}", f"{t_mlp_c:.2f}s",
             "none (non-convex, local)"],
            ["sklearn LogisticRegression", f"{logreg.score(Xcte, ycte):.3f}", f"{t_lr:.2f}s", "n/a"]]
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
    import numpy as np

    from convexnn import plots
    from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor
    from convexnn.nonconvex import train_nonconvex

    written = []
    # 1) one feature: body-mass index against disease progression, the fit with its kinks. In 1-D the arrangement
    # is small, so cutting planes can certify the optimum over ReLU networks of any width.
    bmi = X[:, [2]]
    one_d = ConvexReLURegressor(formulation="relu", n_patterns=args.relu_patterns, beta_ratio=args.beta_ratio,
                                cutting_planes=True, time_limit=args.time_limit)
    one_d.fit(bmi, y)
    claim = "certified global optimum" if one_d.certified_global_ else "certified on sampled patterns"
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    plots.plot_fit_1d(one_d, bmi, y, ax=ax, label=f"convexnn exact ReLU ({one_d.network_.n_neurons} neurons)",
                      title=f"diabetes: progression vs BMI, {claim} (gap {one_d.gap_:.1e})")
    ax.set_xlabel("body-mass index (standardized by scikit-learn)")
    ax.set_ylabel("disease progression after one year")
    written.append(_save(fig, plots_dir, "fit_1d.png"))

    # 2) two features: decision regions of the breast-cancer classifier on "worst radius" and "worst texture".
    cols = [20, 21]
    two_d = ConvexReLUClassifier(formulation="gated", n_patterns=args.n_patterns, beta_ratio=args.beta_ratio,
                                 time_limit=args.time_limit)
    two_d.fit(Xctr[:, cols], yctr)
    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    plots.plot_decision_regions(two_d, Xctr[:, cols], yctr, ax=ax, feature_names=[feature_names[c] for c in cols],
                                title=f"breast cancer: gated ReLU network regions ({two_d.network_.n_neurons} neurons)")
    written.append(_save(fig, plots_dir, "decision_regions.png"))

    # 3) objective against time on the diabetes training data (pre-processed as the estimator does):
    # the convex gated solve, Adam on the same gated network (same gates, non-convex), Adam on a ReLU network.
    Xs, ys = _training_data(gated, X, y)
    res = gated.result_
    curves = {f"convexnn gated program (C++, {res.patterns.n_patterns} patterns)": res}
    adam_gated = train_nonconvex(Xs, ys, gated.beta_, gates=res.patterns.gates, bias=True, lr=2e-2,
                                 n_epochs=args.adam_epochs, record_every=10, seed=0)
    curves[f"Adam, same gated network ({res.patterns.n_patterns} neurons)"] = adam_gated
    width = max(8, gated.network_.n_neurons)
    adam_relu = train_nonconvex(Xs, ys, gated.beta_, n_neurons=width, bias=True, lr=2e-2,
                                n_epochs=args.adam_epochs, record_every=10, seed=0)
    curves[f"Adam, ReLU network ({width} neurons)"] = adam_relu
    curves[f"convexnn exact ReLU program ({exact.n_patterns_} patterns)"] = exact.result_
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    plots.plot_objective_vs_time(curves, ax=ax, lower_bound=res.dual_objective,
                                 lower_bound_label="certified lower bound for the gated network",
                                 title=f"diabetes: training objective (beta = {gated.beta_:.3g})")
    written.append(_save(fig, plots_dir, "objective_vs_time.png"))
    print(f"\n[1-D fit] BMI only: exact ReLU program with cutting planes, {one_d.network_.n_neurons} neurons, "
          f"objective {one_d.objective_:.8g}, rel_gap {one_d.gap_:.1e}, certified_global={one_d.certified_global_}")
    print(f"[objective vs time] convexnn gated: {res.objective:.6g} in {res.time:.2f}s (dual bound "
          f"{res.dual_objective:.6g}); Adam gated: {adam_gated.objective:.6g} in {adam_gated.time:.2f}s; "
          f"Adam ReLU: {adam_relu.objective:.6g} in {adam_relu.time:.2f}s")
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


# ---- fit / predict / report ----------------------------------------------------------------------------------------

def _task_of(args, y):
    import numpy as np

    if args.loss is not None:
        task = "classification" if args.loss in CLASSIFICATION_LOSSES else "regression"
        if args.task not in ("auto", task):
            raise UsageError(f"--loss {args.loss} is a {task} loss but --task is {args.task}")
        return task
    if args.task != "auto":
        return args.task
    return "regression" if np.issubdtype(y.dtype, np.number) else "classification"


def cmd_fit(args) -> int:
    from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor
    from convexnn.io import read_data, save

    if args.beta is not None and args.beta_ratio is not None:
        raise UsageError("give either --beta or --beta-ratio, not both")
    is_npz = args.data.lower().endswith(".npz")
    if not is_npz and args.target is None:
        raise UsageError("fit on a CSV file needs --target COLUMN (the name of the target column)")
    X, y, features = read_data(args.data, target=args.target)
    task = _task_of(args, y)
    common = dict(beta=args.beta, beta_ratio=args.beta_ratio, n_patterns=args.n_patterns,
                  formulation=args.formulation, bias=not args.no_bias, standardize=not args.no_standardize,
                  random_state=args.seed, tol=args.tol, max_iter=args.max_iter, time_limit=args.time_limit,
                  cutting_planes=args.cutting_planes, device=args.device)
    if task == "regression":
        if args.loss not in (None, "squared"):
            raise UsageError(f"regression uses --loss squared; got {args.loss}")
        if not (hasattr(y.dtype, "kind") and y.dtype.kind == "f"):
            raise UsageError(f"the target column {args.target!r} holds labels, not numbers: use --task "
                             "classification")
        est = ConvexReLURegressor(**common)
    else:
        est = ConvexReLUClassifier(loss=args.loss or "auto", **common)
    t0 = time.perf_counter()
    est.fit(X, y)
    elapsed = time.perf_counter() - t0
    target_name = args.target if args.target is not None else "y"
    data = {"source": os.path.basename(args.data), "target": target_name, "task": task, "n_samples": int(X.shape[0]),
            "feature_names": list(features)}
    if task == "classification":
        data["class_counts"] = {str(c): int((y == c).sum()) for c in est.classes_}
    else:
        data.update(y_mean=float(y.mean()), y_std=float(y.std()), y_min=float(y.min()), y_max=float(y.max()))
    data["train_score"] = float(est.score(X, y))
    save(est, args.output, data=data)
    kind = "R^2" if task == "regression" else "accuracy"
    print(f"fit {type(est).__name__} ({task}, formulation={est.formulation}"
          f"{', loss=' + est.loss_ if task == 'classification' else ''}) on {X.shape[0]} rows x {X.shape[1]} "
          f"features of {args.data} in {elapsed:.2f}s")
    print(f"  objective={est.objective_:.10g} dual_bound={est.dual_objective_:.10g} rel_gap={est.gap_:.3e} "
          f"status={est.status_}" + (" certified_global=True" if est.certified_global_ else ""))
    print(f"  network: {est.network_.n_neurons} neurons; beta={est.beta_:.6g} (beta_max={est.beta_max_:.6g}); "
          f"training {kind}={data['train_score']:.4f}")
    print(f"  model saved to {args.output}")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from convexnn.io import load, read_data

    est = load(args.model)
    if not hasattr(est, "n_features_in_"):
        raise UsageError(f"{args.model} holds a bare {type(est).__name__}, not a fitted estimator")
    meta = est.model_metadata_
    data_meta = meta.get("data") or {}
    features = data_meta.get("feature_names") or [f"x{j}" for j in range(est.n_features_in_)]
    target = data_meta.get("target")
    X, y, _ = read_data(args.data, target=target, features=features, require_target=False)
    pred = est.predict(X)
    columns = {target or "prediction": pred}
    is_classifier = hasattr(est, "classes_")
    if is_classifier and hasattr(est, "predict_proba"):
        proba = est.predict_proba(X)
        for j, c in enumerate(est.classes_):
            columns[f"proba_{c}"] = proba[:, j]
    lines = [",".join(_csv_field(name) for name in columns)]
    for i in range(len(X)):
        lines.append(",".join(_csv_field(_fmt(col[i])) for col in columns.values()))
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {len(X)} predictions to {args.output}")
    else:
        sys.stdout.write(text)
    if y is not None:
        try:
            if not is_classifier:
                y = np.asarray(y, dtype=float)
            score = est.score(X, y)
        except (ValueError, TypeError) as exc:
            print(f"convexnn predict: warning: cannot score against the {target!r} column: {exc}", file=sys.stderr)
        else:
            kind = "accuracy" if is_classifier else "R^2"
            print(f"{kind} against the {target!r} column of {args.data}: {score:.4f}", file=sys.stderr)
    return 0


def _fmt(value):
    import numpy as np

    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _csv_field(text):
    text = str(text)
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _num(value, spec):
    """A metadata number formatted with ``spec`` (strings such as "inf" and missing values as they are)."""
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def cmd_report(args) -> int:
    import json

    from convexnn import _core
    from convexnn.io import read_metadata

    meta = read_metadata(args.model)
    if args.json:
        print(json.dumps(meta, indent=2, sort_keys=True))
        return 0
    net = meta.get("network", {})
    print(f"{args.model}: {meta.get('kind')} (model format {meta.get('format_version')}, written by convexnn "
          f"{meta.get('convexnn_version')} on {meta.get('created')}; this is convexnn {_core.__version__})")
    params = meta.get("params")
    if params:
        print("parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))
    cert = meta.get("certificate")
    if cert:
        g = lambda key, spec=".10g": _num(cert.get(key), spec)  # noqa: E731
        print("certificate:")
        print(f"  objective={g('objective')} dual_bound={g('dual_objective')} rel_gap={g('gap', '.3e')} "
              f"status={cert.get('status')}")
        print(f"  iterations={cert.get('n_iter')} time={g('time', '.3f')}s solver={cert.get('solver')} "
              f"formulation={cert.get('formulation')} max_violation={g('max_violation', '.3e')}")
        print(f"  beta={g('beta', '.6g')} beta_max={g('beta_max', '.6g')} patterns={cert.get('n_patterns')} "
              f"certified_global={cert.get('certified_global')}")
    print(f"network: {net.get('type')} with {net.get('n_neurons')} neurons, {net.get('n_features')} features, "
          f"{net.get('n_outputs')} output(s), bias={net.get('bias')}" + (f", loss={meta['loss']}" if "loss" in meta
                                                                         else ""))
    data = meta.get("data")
    if data:
        print(f"data: {data.get('source')} ({data.get('task')}), {data.get('n_samples')} rows, target "
              f"{data.get('target')!r}, features {data.get('feature_names')}")
        if "class_counts" in data:
            print(f"  class counts: {data['class_counts']}")
        if "y_mean" in data:
            print(f"  target mean={data['y_mean']:.6g} std={data['y_std']:.6g} range=[{data['y_min']:.6g}, "
                  f"{data['y_max']:.6g}]")
        if "train_score" in data:
            print(f"  training score: {data['train_score']:.4f}")
    return 0


# ---- argument parsing -------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``prog: error: reason (see prog --help)``, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _Parser(prog="python -m convexnn", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="certified fits on scikit-learn's bundled diabetes and breast cancer data")
    p_demo.add_argument("--n-patterns", type=int, default=300, help="Gaussian gates drawn (default 300)")
    p_demo.add_argument("--relu-patterns", type=int, default=300, help="patterns for the exact program (default 300)")
    p_demo.add_argument("--beta-ratio", type=float, default=0.05, help="beta as a fraction of beta_max")
    p_demo.add_argument("--adam-epochs", type=int, default=1000, help="Adam epochs of the comparison (default 1000)")
    p_demo.add_argument("--time-limit", type=float, default=15.0,
                        help="seconds per convex solve (default 15; the certificate reports where it stopped)")
    p_demo.add_argument("--plots-dir", default=None, help="directory for the plots (default: a new temporary one)")
    p_demo.add_argument("--no-plots", action="store_true", help="skip the plots")

    p_fit = sub.add_parser("fit", help="fit a certified model on a CSV/NPZ file and save it")
    p_fit.add_argument("data", help="CSV file with a header row, or .npz with arrays X and y")
    p_fit.add_argument("--target", help="name of the target column (CSV)")
    p_fit.add_argument("--output", "-o", required=True, help="model file to write (.npz)")
    p_fit.add_argument("--task", choices=("auto", "regression", "classification"), default="auto",
                       help="auto: regression for a numeric target, classification for labels")
    p_fit.add_argument("--formulation", choices=("relu", "gated"), default="relu",
                       help="relu: the exact ReLU program (default); gated: the gated ReLU program (faster)")
    p_fit.add_argument("--loss", choices=("squared",) + CLASSIFICATION_LOSSES, default=None,
                       help="default: squared (regression); logistic / cross_entropy (classification)")
    beta = p_fit.add_mutually_exclusive_group()
    beta.add_argument("--beta", type=float, default=None, help="absolute regularization weight")
    beta.add_argument("--beta-ratio", type=float, default=None, help="beta as a fraction of beta_max (default 0.01)")
    p_fit.add_argument("--n-patterns", type=int, default=100, help="Gaussian gates drawn (default 100)")
    p_fit.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p_fit.add_argument("--seed", type=int, default=0, help="seed of the pattern sampler")
    p_fit.add_argument("--tol", type=float, default=1e-6)
    p_fit.add_argument("--max-iter", type=int, default=None)
    p_fit.add_argument("--time-limit", type=float, default=None, help="seconds")
    p_fit.add_argument("--cutting-planes", action="store_true",
                       help="relu: add violated patterns until none is left (global certificate on small data)")
    p_fit.add_argument("--no-bias", action="store_true", help="neurons without bias")
    p_fit.add_argument("--no-standardize", action="store_true", help="do not standardize X / center y")

    p_pred = sub.add_parser("predict", help="predict with a saved model")
    p_pred.add_argument("model")
    p_pred.add_argument("data", help="CSV with the model's feature columns (others ignored), or .npz with X")
    p_pred.add_argument("--output", "-o", default=None, help="CSV file to write (default: standard output)")

    p_rep = sub.add_parser("report", help="certificate, network size and data summary of a saved model")
    p_rep.add_argument("model")
    p_rep.add_argument("--json", action="store_true", help="print the raw metadata as JSON")
    return parser


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    print(f"convexnn: warning: {str(message).splitlines()[0] if str(message) else category.__name__}",
          file=sys.stderr)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)  # bad usage: a one-line reason on stderr, exit status 2
    commands = {"fit": cmd_fit, "predict": cmd_predict, "report": cmd_report}
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warnings
    try:
        if args.command == "demo":  # no user input: a failure there is a bug and keeps its traceback
            return demo(args)
        try:
            return commands[args.command](args)
        except (ValueError, TypeError, OSError, KeyError, ImportError, MemoryError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror and exc.filename and not isinstance(exc, FileNotFoundError):
                reason = f"{exc.filename}: {exc.strerror}"
            print(f"convexnn {args.command}: error: {reason}", file=sys.stderr)
            return 2
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())

"""Command line of convexnn (``convexnn ...`` or ``python -m convexnn ...``).

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
# --task auto: an integer-valued numeric target with at most this many distinct values is a class label.
CLASSIFICATION_MAX_CLASSES = 10

EXAMPLES = """examples:
  convexnn fit data.csv --target y --output model.npz               # task chosen from the target column
  convexnn fit data.csv --target label -o m.npz --formulation gated --beta-ratio 0.05 --time-limit 60
  convexnn predict model.npz new.csv --output predictions.csv
  convexnn report model.npz --json | head
  convexnn demo --plots-dir plots

The GPU is not available in this version: --device cuda is refused (use the default, cpu)."""


class UsageError(ValueError):
    """Bad command-line input: reported as one line, exit status 2."""


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
    if not np.issubdtype(y.dtype, np.number):
        return "classification"
    # Integer-valued targets with few distinct values (0/1, 1..5 ratings) are labels.
    values = np.unique(y)
    if np.all(values == np.round(values)) and 2 <= len(values) <= max(2, min(CLASSIFICATION_MAX_CLASSES, len(y) // 2)):
        return "classification"
    return "regression"


def cmd_fit(args) -> int:
    import numpy as np

    from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor
    from convexnn.io import read_data, save

    if args.beta is not None and args.beta_ratio is not None:
        raise UsageError("give either --beta or --beta-ratio, not both")
    is_npz = args.data.lower().endswith(".npz")
    if not is_npz and args.target is None:
        raise UsageError("fit on a CSV file needs --target COLUMN (the name of the target column)")
    X, y, features = read_data(args.data, target=args.target)
    task = _task_of(args, y)
    if args.task == "auto" and args.loss is None:
        kinds = len(set(y.tolist()))
        print(
            f"task: {task} (the target column holds {kinds} distinct "
            f"{'numbers' if task == 'regression' else 'labels'}; --task overrides)"
        )
    common = dict(
        beta=args.beta,
        beta_ratio=args.beta_ratio,
        n_patterns=args.n_patterns,
        formulation=args.formulation,
        bias=not args.no_bias,
        standardize=not args.no_standardize,
        random_state=args.seed,
        tol=args.tol,
        max_iter=args.max_iter,
        time_limit=args.time_limit,
        cutting_planes=args.cutting_planes,
        device=args.device,
        dtype=args.dtype,
        verbose=args.verbose,
    )
    if task == "regression":
        if args.loss not in (None, "squared"):
            raise UsageError(f"regression uses --loss squared; got {args.loss}")
        if not (hasattr(y.dtype, "kind") and y.dtype.kind in "fiub"):
            raise UsageError(f"the target column {args.target!r} holds labels, not numbers: use --task classification")
        est = ConvexReLURegressor(**common)
    else:
        est = ConvexReLUClassifier(loss=args.loss or "auto", **common)
    t0 = time.perf_counter()
    est.fit(X, y)
    elapsed = time.perf_counter() - t0
    target_name = args.target if args.target is not None else "y"
    data = {
        "source": os.path.basename(args.data),
        "target": target_name,
        "task": task,
        "n_samples": int(X.shape[0]),
        "feature_names": list(features),
    }
    if task == "classification":
        data["class_counts"] = {str(c): int((y == c).sum()) for c in est.classes_}
    else:
        data.update(y_mean=float(y.mean()), y_std=float(y.std()), y_min=float(y.min()), y_max=float(y.max()))
    score = float(est.score(X, y))
    data["train_score"] = score if np.isfinite(score) else None  # R^2 of one row (or a constant y) is undefined
    save(est, args.output, data=data)
    kind = "R^2" if task == "regression" else "accuracy"
    print(
        f"fit {type(est).__name__} ({task}, formulation={est.formulation}"
        f"{', loss=' + est.loss_ if task == 'classification' else ''}) on {X.shape[0]} rows x {X.shape[1]} "
        f"features of {args.data} in {elapsed:.2f}s"
    )
    print(
        f"  objective={est.objective_:.10g} dual_bound={est.dual_objective_:.10g} rel_gap={est.gap_:.3e} "
        f"status={est.status_}" + (" certified_global=True" if est.certified_global_ else "")
    )
    print(
        f"  network: {est.network_.n_neurons} neurons; beta={est.beta_:.6g} (beta_max={est.beta_max_:.6g}); "
        f"training {kind}=" + ("undefined" if data["train_score"] is None else f"{data['train_score']:.4f}")
    )
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
    columns = {f"predicted_{target}" if target else "prediction": pred}
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
        sys.stdout.write(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()
        return 0
    net = meta.get("network", {})
    print(
        f"{args.model}: {meta.get('kind')} (model format {meta.get('format_version')}, written by convexnn "
        f"{meta.get('convexnn_version')} on {meta.get('created')}; this is convexnn {_core.__version__})"
    )
    params = meta.get("params")
    if params:
        print("parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))
    cert = meta.get("certificate")
    if cert:
        g = lambda key, spec=".10g": _num(cert.get(key), spec)  # noqa: E731
        print("certificate:")
        print(
            f"  objective={g('objective')} dual_bound={g('dual_objective')} rel_gap={g('gap', '.3e')} "
            f"status={cert.get('status')}"
        )
        print(
            f"  iterations={cert.get('n_iter')} time={g('time', '.3f')}s solver={cert.get('solver')} "
            f"formulation={cert.get('formulation')} max_violation={g('max_violation', '.3e')}"
        )
        print(
            f"  beta={g('beta', '.6g')} beta_max={g('beta_max', '.6g')} patterns={cert.get('n_patterns')} "
            f"certified_global={cert.get('certified_global')}"
        )
    print(
        f"network: {net.get('type')} with {net.get('n_neurons')} neurons, {net.get('n_features')} features, "
        f"{net.get('n_outputs')} output(s), bias={net.get('bias')}"
        + (f", loss={meta['loss']}" if "loss" in meta else "")
    )
    data = meta.get("data")
    if data:
        print(
            f"data: {data.get('source')} ({data.get('task')}), {data.get('n_samples')} rows, target "
            f"{data.get('target')!r}, features {data.get('feature_names')}"
        )
        if "class_counts" in data:
            print(f"  class counts: {data['class_counts']}")
        if "y_mean" in data:
            print(
                f"  target mean={data['y_mean']:.6g} std={data['y_std']:.6g} range=[{data['y_min']:.6g}, "
                f"{data['y_max']:.6g}]"
            )
        if isinstance(data.get("train_score"), (int, float)):
            print(f"  training score: {data['train_score']:.4f}")
    return 0


# ---- argument parsing -------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``prog: error: reason (see prog --help)``, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    parser = _Parser(
        prog="python -m convexnn",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_demo = sub.add_parser("demo", help="certified fits on scikit-learn's bundled diabetes and breast cancer data")
    p_demo.add_argument("--n-patterns", type=int, default=300, help="Gaussian gates drawn (default 300)")
    p_demo.add_argument("--relu-patterns", type=int, default=300, help="patterns for the exact program (default 300)")
    p_demo.add_argument("--beta-ratio", type=float, default=0.05, help="beta as a fraction of beta_max")
    p_demo.add_argument("--adam-epochs", type=int, default=1000, help="Adam epochs of the comparison (default 1000)")
    p_demo.add_argument(
        "--time-limit",
        type=float,
        default=15.0,
        help="seconds per convex solve (default 15; the certificate reports where it stopped)",
    )
    p_demo.add_argument("--plots-dir", default=None, help="directory for the plots (default: a new temporary one)")
    p_demo.add_argument("--no-plots", action="store_true", help="skip the plots")

    p_fit = sub.add_parser(
        "fit",
        help="fit a certified model on a CSV/NPZ file and save it",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_fit.add_argument("data", help="CSV file with a header row, or .npz with arrays X and y")
    p_fit.add_argument("--target", help="name of the target column (CSV)")
    p_fit.add_argument("--output", "-o", required=True, help="model file to write (.npz)")
    p_fit.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        default="auto",
        help="auto (default): classification for labels or an integer target with at most "
        f"{CLASSIFICATION_MAX_CLASSES} distinct values, else regression (the choice is printed)",
    )
    p_fit.add_argument(
        "--formulation",
        choices=("relu", "gated"),
        default="relu",
        help="relu: the exact ReLU program (default); gated: the gated ReLU program (faster)",
    )
    p_fit.add_argument(
        "--loss",
        choices=("squared",) + CLASSIFICATION_LOSSES,
        default=None,
        help="default: squared (regression); logistic / cross_entropy (classification)",
    )
    beta = p_fit.add_mutually_exclusive_group()
    beta.add_argument("--beta", type=float, default=None, help="absolute regularization weight")
    beta.add_argument("--beta-ratio", type=float, default=None, help="beta as a fraction of beta_max (default 0.01)")
    p_fit.add_argument("--n-patterns", type=int, default=100, help="Gaussian gates drawn (default 100)")
    p_fit.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu (default); cuda is not available in this version and is refused",
    )
    p_fit.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="precision of the iterations (default: float64, that of the data); certificates are always in float64",
    )
    p_fit.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help="-v: a progress bar of the solve; -vv: also the solver's lines",
    )
    p_fit.add_argument("--seed", type=int, default=0, help="seed of the pattern sampler")
    p_fit.add_argument(
        "--tol",
        type=float,
        default=1e-6,
        help="target relative duality gap (gated) or KKT residual (relu); default 1e-6",
    )
    p_fit.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="iteration cap (default 10000 for gated, 100000 for relu); hitting it gives a warning "
        "with the gap reached",
    )
    p_fit.add_argument("--time-limit", type=float, default=None, help="seconds")
    p_fit.add_argument(
        "--cutting-planes",
        dest="cutting_planes",
        action="store_const",
        const=True,
        default="auto",
        help="relu: always run the pattern search (default: on for relu without sample weights; "
        "a global certificate on small data)",
    )
    p_fit.add_argument(
        "--no-cutting-planes",
        dest="cutting_planes",
        action="store_const",
        const=False,
        help="relu: only the sampled patterns (faster, optimal over them only)",
    )
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
    print(f"convexnn: warning: {str(message).splitlines()[0] if str(message) else category.__name__}", file=sys.stderr)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)  # bad usage: a one-line reason on stderr, exit status 2
    commands = {"fit": cmd_fit, "predict": cmd_predict, "report": cmd_report}
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warnings
    try:
        if args.command == "demo":  # no user input: a failure there is a bug and keeps its traceback
            from .demo import demo

            return demo(args)
        try:
            return commands[args.command](args)
        except BrokenPipeError:
            # The reader went away (``report --json | head``): not an error. Python would complain again when it
            # flushes stdout at exit, so point stdout at /dev/null first.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except (ValueError, TypeError, OSError, KeyError, ImportError, MemoryError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror and exc.filename and not isinstance(exc, FileNotFoundError):
                reason = f"{exc.filename}: {exc.strerror}"
            print(f"convexnn {args.command}: error: {reason}", file=sys.stderr)
            return 2
    finally:
        warnings.showwarning = previous

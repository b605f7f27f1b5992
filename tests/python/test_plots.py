"""Plots (matplotlib, optional extra): kinks of 1-D fits, decision regions, objective against time, the demo's
pictures."""

import os
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need the optional 'plot' extra (matplotlib)")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import convexnn as cnn  # noqa: E402
from convexnn import plots  # noqa: E402
from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor  # noqa: E402
from convexnn.nonconvex import train_nonconvex  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_kinks_of_a_known_network():
    # Neurons: relu(2x - 1) bends at 0.5, relu(-x + 3) at 3, relu(0 x + 1) never, relu(4x - 2) again at 0.5.
    net = cnn.Network(np.array([[2.0, -1.0], [-1.0, 3.0], [0.0, 1.0], [4.0, -2.0]]), np.ones(4), bias=True)
    np.testing.assert_allclose(plots.kinks_1d(net), [0.5, 3.0])
    no_bias = cnn.Network(np.array([[2.0], [-1.0]]), np.ones(2), bias=False)
    np.testing.assert_allclose(plots.kinks_1d(no_bias), [0.0])
    gated = cnn.GatedNetwork(np.array([[1.0, 2.0], [-1.0, 1.0]]), np.ones((2, 2)), np.ones(2), bias=True)
    np.testing.assert_allclose(plots.kinks_1d(gated), [-0.5, 1.0])  # where the gates switch
    with pytest.raises(ValueError, match="1 feature"):
        plots.kinks_1d(cnn.Network(np.ones((2, 3)), np.ones(2), bias=True))


def _one_feature(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(10, 40, n)  # raw units far from standardized ones
    y = 100 + 8 * np.maximum(x - 25, 0) - 3 * np.maximum(18 - x, 0) + rng.standard_normal(n)
    return x[:, None], y


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_fit_is_linear_between_the_reported_kinks(formulation):
    X, y = _one_feature()
    est = ConvexReLURegressor(
        formulation=formulation, n_patterns=10 if formulation == "relu" else 40, beta_ratio=0.01
    ).fit(X, y)
    kinks = plots.kinks_1d(est)
    assert kinks.size >= 1
    # Between consecutive kinks (and beyond the outer ones) the model is affine: the midpoint value is the mean of
    # the quarter-point values. A missing or misplaced kink (e.g. in standardized units) breaks this.
    edges = np.concatenate([[kinks[0] - 10.0], kinks, [kinks[-1] + 10.0]])
    a, b = edges[:-1], edges[1:]
    gap = b - a
    keep = gap > 1e-6
    q1, mid, q3 = a + 0.25 * gap, a + 0.5 * gap, a + 0.75 * gap
    f = lambda t: est.predict(t[keep, None])  # noqa: E731
    np.testing.assert_allclose(f(mid), 0.5 * (f(q1) + f(q3)), rtol=1e-9, atol=1e-7 * np.abs(y).max())
    ax = plots.plot_fit_1d(est, X, y)
    inside = kinks[(kinks > X.min()) & (kinks < X.max())]
    marker_lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("kinks")]
    if inside.size:
        assert len(marker_lines) == 1 and len(marker_lines[0].get_xdata()) >= inside.size


def test_plot_fit_1d_writes_a_png(tmp_path):
    X, y = _one_feature()
    est = ConvexReLURegressor(formulation="gated", n_patterns=30).fit(X, y)
    fig, ax = plt.subplots()
    assert plots.plot_fit_1d(est, X[:, 0], y, ax=ax) is ax
    path = tmp_path / "fit.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"shape \(n, 1\)"):
        plots.plot_fit_1d(est, np.ones((5, 2)), y[:5])
    with pytest.raises(ValueError, match="y has 4 values"):
        plots.plot_fit_1d(est, X, y[:4])


def test_decision_regions_binary_multiclass_and_regressor():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    y = np.where((X**2).sum(1) < 1, "in", "out")
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=40).fit(X, y)
    ax = plots.plot_decision_regions(clf, X, y, resolution=40, feature_names=("a", "b"))
    assert ax.get_xlabel() == "a" and [t.get_text() for t in ax.get_legend().get_texts()] == ["in", "out"]
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    clf3 = ConvexReLUClassifier(formulation="gated", n_patterns=40).fit(X, y3)
    plots.plot_decision_regions(clf3, X, y3, resolution=30)
    reg = ConvexReLURegressor(formulation="gated", n_patterns=20).fit(X, X[:, 0] ** 2)
    ax = plots.plot_decision_regions(reg, X, X[:, 0] ** 2, resolution=30)
    assert len(ax.figure.axes) == 2  # the colorbar
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        plots.plot_decision_regions(clf, X[:, :1], y)


def test_objective_vs_time_accepts_results_and_pairs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = np.maximum(X[:, 0], 0)
    res = cnn.solve(X, y, 0.5, patterns=20, bias=True)
    adam = train_nonconvex(X, y, 0.5, n_neurons=10, bias=True, n_epochs=50)
    ax = plots.plot_objective_vs_time(
        {"convex": res, "adam": adam, "pair": ([0.1, 0.2], [3.0, 2.0])}, lower_bound=res.dual_objective
    )
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels[:3] == ["convex", "adam", "pair"] and "certified lower bound" in labels
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), adam.times_objectives()[1])
    plots.plot_objective_vs_time({"adam": adam}, lower_bound=res.dual_objective, relative=True)
    with pytest.raises(ValueError, match="needs lower_bound"):
        plots.plot_objective_vs_time({"adam": adam}, relative=True)
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.plot_objective_vs_time({})
    with pytest.raises(ValueError, match="equally long"):
        plots.plot_objective_vs_time({"bad": ([1.0, 2.0], [1.0])})


def test_plots_without_matplotlib_raise_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install 'convexnn\\[plot\\]'"):
        plots.plot_objective_vs_time({"a": ([1.0], [1.0])})


def test_demo_writes_its_plots(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "convexnn",
            "demo",
            "--n-patterns",
            "40",
            "--relu-patterns",
            "6",
            "--adam-epochs",
            "100",
            "--plots-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for name in ("fit_1d.png", "decision_regions.png", "objective_vs_time.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
        assert os.path.join(str(tmp_path), name) in out.stdout
    assert "MLPRegressor" in out.stdout and "MLPClassifier" in out.stdout
    assert "Ridge" in out.stdout and "LogisticRegression" in out.stdout

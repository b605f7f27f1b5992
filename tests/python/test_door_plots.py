"""plot_decision_regions through scikit-learn's DecisionBoundaryDisplay (probabilities where the classifier has
them), and objective-vs-time curves that start at their first timing (matplotlib Agg)."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plots need the optional 'plot' extra (matplotlib)")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from convexnn import plots  # noqa: E402
from convexnn.estimators import ConvexReLUClassifier  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _disc(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, np.where((X**2).sum(1) < 1.2, "in", "out")


def test_binary_regions_are_shaded_by_probability():
    X, y = _disc()
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=30).fit(X, y)
    ax = plots.plot_decision_regions(clf, X, y, resolution=25)
    colorbar_axes = [a for a in ax.figure.axes if a is not ax]
    assert len(colorbar_axes) == 1 and colorbar_axes[0].get_ylabel() == "P(out)"
    filled = [c for c in ax.collections if hasattr(c, "get_array") and c.get_array() is not None]
    values = np.concatenate([np.ravel(c.get_array()) for c in filled])
    assert values.min() >= 0.0 and values.max() <= 1.0  # probabilities, not labels or raw scores


def test_losses_without_probabilities_use_the_scores():
    X, y = _disc(seed=1)
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=30, loss="hinge").fit(X, y)
    assert not hasattr(clf, "predict_proba")
    ax = plots.plot_decision_regions(clf, X, y, resolution=25)
    assert [a for a in ax.figure.axes if a is not ax][0].get_ylabel().startswith("score")


def test_multiclass_regions_and_legend():
    X, _ = _disc(seed=2)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=30).fit(X, y)
    ax = plots.plot_decision_regions(clf, X, y, resolution=20, feature_names=("a", "b"))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"


def test_objective_curves_start_at_their_first_timing():
    t = np.array([0.0, 0.02, 0.05, 0.3])
    f = np.array([5.0, 3.0, 2.0, 1.5])
    ax = plots.plot_objective_vs_time({"run": (t, f), "late": (t + 1.0, f)})
    first = [line.get_xdata()[0] for line in ax.get_lines()[:2]]
    assert first == [0.02, 1.0]  # t = 0 drawn at the first positive timing (log axis), never at a fixed 1e-4
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), f)

"""Pictures of what the network learned (matplotlib, the optional ``plot`` extra: ``pip install convexnn[plot]``).

* :func:`plot_fit_1d`: a one-feature fit with its kinks (each ReLU neuron bends the curve where its input
  crosses zero; a gated neuron switches where its gate does);
* :func:`plot_decision_regions`: the regions of a two-feature classifier (or the surface of a regressor);
* :func:`plot_objective_vs_time`: training objective against time for several optimizers, with a certified lower
  bound.

Every function draws on ``ax`` (a new figure when None) and returns the axes. matplotlib is imported only when
one of them is called.
"""

from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("convexnn.plots needs matplotlib: pip install 'convexnn[plot]' (or matplotlib)") from exc
    return plt


def _axes(ax, figsize=(6.0, 4.0)):
    if ax is not None:
        return ax
    plt = _pyplot()
    return plt.subplots(figsize=figsize)[1]


def _unwrap(model):
    """(network, x_mean, x_scale) of an estimator or a bare network (identity pre-processing)."""
    from .network import GatedNetwork, Network

    if isinstance(model, (Network, GatedNetwork)):
        d = model.n_features
        return model, np.zeros(d), np.ones(d)
    if hasattr(model, "network_"):
        return model.network_, np.asarray(model.x_mean_, dtype=float), np.asarray(model.x_scale_, dtype=float)
    raise TypeError(f"expected a fitted convexnn estimator, Network or GatedNetwork; got {type(model).__name__}")


def kinks_1d(model):
    """Where a one-feature model's output can bend, in the units of the raw feature, sorted.

    ReLU neuron j: where ``w_j x + b_j = 0`` (x = 0 without bias); gated neuron: where its gate crosses zero.
    Neurons with zero input weight never bend and are skipped; duplicates are removed.

    Returns
    -------
    ndarray of shape (k,)
    """
    from .network import GatedNetwork

    net, mean, scale = _unwrap(model)
    if net.n_features != 1:
        raise ValueError(f"kinks_1d needs a model of 1 feature; this one has {net.n_features}")
    hyper = net.gates.T if isinstance(net, GatedNetwork) else net.W1  # (m, 1[+1]) rows: (w, b)
    w = hyper[:, 0]
    b = hyper[:, 1] if net.bias else np.zeros_like(w)
    keep = np.abs(w) > 1e-12 * np.maximum(1.0, np.abs(b))
    t = -b[keep] / w[keep]  # in pre-processed units
    return np.unique(mean[0] + scale[0] * t)


def _predict(model, X):
    from .network import GatedNetwork, Network

    if isinstance(model, (Network, GatedNetwork)):
        return np.asarray(model.predict(X))
    return np.asarray(model.predict(X))


def plot_fit_1d(model, X, y, ax=None, n_grid=500, show_kinks=True, label="convexnn", title=None):
    """Data points, the fitted curve on a fine grid and (optionally) its kinks.

    Parameters
    ----------
    model : fitted estimator, Network or GatedNetwork with one feature and one output
    X : array (n, 1) or (n,)
    y : array (n,)
    ax : matplotlib Axes, optional
    n_grid : int
        Grid points of the curve (kinks are added to the grid so they are drawn sharply).
    show_kinks : bool
        Mark the kinks inside the plotted range (dotted vertical lines, dots on the curve).

    Returns
    -------
    matplotlib Axes
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"plot_fit_1d needs X of shape (n, 1); got {X.shape}")
    y = np.asarray(y, dtype=float).ravel()
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} values but X has {X.shape[0]} rows")
    ax = _axes(ax)
    lo, hi = float(X.min()), float(X.max())
    pad = 0.05 * (hi - lo if hi > lo else 1.0)
    lo, hi = lo - pad, hi + pad
    kinks = kinks_1d(model)
    kinks = kinks[(kinks > lo) & (kinks < hi)]
    grid = np.union1d(np.linspace(lo, hi, int(n_grid)), kinks)
    curve = _predict(model, grid[:, None]).reshape(len(grid), -1)
    if curve.shape[1] != 1:
        raise ValueError("plot_fit_1d needs a model with one output")
    ax.scatter(X[:, 0], y, s=12, color="0.55", alpha=0.7, label="data", zorder=1)
    ax.plot(grid, curve[:, 0], color="C0", lw=2, label=label, zorder=3)
    if show_kinks and kinks.size:
        for k in kinks:
            ax.axvline(k, color="C1", lw=0.8, ls=":", alpha=0.7, zorder=2)
        at = _predict(model, kinks[:, None]).reshape(len(kinks), -1)[:, 0]
        ax.plot(kinks, at, "o", color="C1", ms=4, label=f"kinks ({kinks.size})", zorder=4)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title if title is not None else "two-layer ReLU fit and its kinks")
    ax.legend(loc="best", fontsize="small")
    return ax


def _response_method(model):
    """predict_proba where the classifier has it (a probability map), else its scores or labels."""
    if hasattr(model, "predict_proba"):  # available_if hides it for losses without probabilities
        return "predict_proba"
    if len(model.classes_) == 2 and hasattr(model, "decision_function"):
        return "decision_function"
    return "predict"


def _class_regions(model, X, y, ax, resolution, eps, names):
    """Classifier regions by scikit-learn's DecisionBoundaryDisplay, coloured by probability where available."""
    import inspect

    from sklearn.inspection import DecisionBoundaryDisplay

    classes = model.classes_
    method = _response_method(model)
    options = dict(
        grid_resolution=int(resolution),
        eps=eps,
        plot_method="contourf",
        xlabel=names[0],
        ylabel=names[1],
        ax=ax,
        alpha=0.5,
    )
    if len(classes) == 2:
        options["cmap"] = "RdBu_r"
        if method == "predict_proba":
            options["levels"] = np.linspace(0.0, 1.0, 11)
    elif "multiclass_colors" in inspect.signature(DecisionBoundaryDisplay.from_estimator).parameters:
        options["multiclass_colors"] = "tab10"
    try:
        display = DecisionBoundaryDisplay.from_estimator(model, X, response_method=method, **options)
    except ValueError:  # scikit-learn < 1.4 draws multiclass regions from predict only
        method = "predict"
        display = DecisionBoundaryDisplay.from_estimator(model, X, response_method=method, **options)
    if len(classes) == 2 and method != "predict":
        level = 0.5 if method == "predict_proba" else 0.0
        label = f"P({classes[1]})" if method == "predict_proba" else f"score ({classes[1]} > 0)"
        ax.figure.colorbar(display.surface_, ax=ax, label=label)
        ax.contour(display.xx0, display.xx1, display.response, levels=[level], colors="k", linewidths=0.8)
        colors = [_pyplot().get_cmap("RdBu_r")(v) for v in (0.0, 1.0)]
    else:
        colors = getattr(display, "multiclass_colors_", None)
        if colors is None:
            cmap = _pyplot().get_cmap("tab10")
            colors = [cmap(i % 10) for i in range(len(classes))]
    if y is not None:
        y = np.asarray(y)
        for i, c in enumerate(classes):
            sel = y == c
            ax.scatter(X[sel, 0], X[sel, 1], s=14, color=colors[i], edgecolors="k", linewidths=0.3, label=str(c))
        ax.legend(loc="best", fontsize="small", title="class")
    return display


def plot_decision_regions(model, X, y=None, ax=None, resolution=200, feature_names=None, title=None):
    """Predicted class regions (classifier) or prediction surface (regressor) of a 2-feature model.

    Drawn by scikit-learn's :class:`~sklearn.inspection.DecisionBoundaryDisplay`: a classifier with
    ``predict_proba`` is shaded by its probabilities (two classes: P(``classes_[1]``) with the 0.5 contour; more:
    each class's colour weighted by its probability, scikit-learn >= 1.7), otherwise by its scores or labels.

    Parameters
    ----------
    model : fitted estimator (or network) on 2 features
    X : array (n, 2)
    y : array (n,), optional
        Labels (classifier) or targets (regressor) to scatter on top.
    ax : matplotlib Axes, optional
    resolution : int
        Grid points per axis.
    feature_names : pair of str, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_regions needs X of shape (n, 2); got {X.shape}")
    ax = _axes(ax, figsize=(5.5, 4.5))
    names = tuple(feature_names) if feature_names is not None else ("x1", "x2")
    eps = 0.05 * float(max(np.ptp(X, axis=0).max(), 1e-12))
    if getattr(model, "classes_", None) is not None:
        _class_regions(model, X, y, ax, resolution, eps, names)
    else:
        # regressors and bare networks: the prediction surface on the grid the classifiers get
        g0 = np.linspace(X[:, 0].min() - eps, X[:, 0].max() + eps, int(resolution))
        g1 = np.linspace(X[:, 1].min() - eps, X[:, 1].max() + eps, int(resolution))
        G0, G1 = np.meshgrid(g0, g1)
        surface = np.asarray(_predict(model, np.column_stack([G0.ravel(), G1.ravel()])))
        surface = surface.reshape(G0.size, -1)[:, 0].reshape(G0.shape)
        filled = ax.contourf(G0, G1, surface, levels=20, cmap="viridis", alpha=0.8)
        ax.figure.colorbar(filled, ax=ax, label="prediction")
        if y is not None:
            ax.scatter(
                X[:, 0], X[:, 1], c=np.asarray(y, dtype=float), cmap="viridis", s=14, edgecolors="k", linewidths=0.3
            )
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title if title is not None else "decision regions")
    return ax


def _curve(value):
    """(times, objectives) from a (t, f) pair, a NonconvexResult, a SolveResult or a fitted estimator."""
    if isinstance(value, tuple) and len(value) == 2:
        t, f = (np.asarray(v, dtype=float).ravel() for v in value)
    else:
        if hasattr(value, "times_objectives"):
            return value.times_objectives()
        result = getattr(value, "result_", value)
        history = getattr(result, "history", None)
        if isinstance(history, dict):  # columns: {"time": [...], "objective": [...], ...}
            rows = (
                [dict(zip(history, vals)) for vals in zip(*history.values())]
                if "time" in history and "objective" in history
                else []
            )
        else:
            rows = [h for h in (history or []) if isinstance(h, dict) and "objective" in h and "time" in h]
        if rows:
            t = np.array([h["time"] for h in rows], dtype=float)
            f = np.array([h["objective"] for h in rows], dtype=float)
        elif hasattr(result, "objective") and hasattr(result, "time"):
            t, f = np.array([result.time], dtype=float), np.array([result.objective], dtype=float)
        else:
            raise TypeError(f"cannot read an objective-vs-time curve from {type(value).__name__}")
    if t.shape != f.shape or t.size == 0:
        raise ValueError(f"a curve needs equally long, non-empty time and objective arrays; got {t.shape}, {f.shape}")
    return t, f


def plot_objective_vs_time(
    curves, ax=None, lower_bound=None, lower_bound_label="certified lower bound", relative=False, title=None
):
    """Training objective against wall time.

    Parameters
    ----------
    curves : dict label -> curve
        A curve is a ``(times, objectives)`` pair, a :class:`~convexnn.nonconvex.NonconvexResult`, a
        :class:`~convexnn.SolveResult` (its ``history``, else its final point) or a fitted estimator.
    lower_bound : float, optional
        A certified lower bound (e.g. ``res.dual_objective``), drawn as a dashed line.
    relative : bool
        Plot ``(objective - lower_bound) / |lower_bound|`` on a log axis instead of the objective (needs
        ``lower_bound``).

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict label -> curve")
    if relative and lower_bound is None:
        raise ValueError("relative=True needs lower_bound")
    ax = _axes(ax)
    for i, (label, value) in enumerate(curves.items()):
        t, f = _curve(value)
        if relative:
            f = np.maximum((f - lower_bound) / abs(lower_bound), 1e-16)
        style = "o-" if t.size == 1 else "-"
        # A log time axis cannot show t = 0: such points sit at the curve's first positive timing.
        positive = t[t > 0]
        t = np.where(t > 0, t, positive.min() if positive.size else 1e-6)
        ax.plot(t, f, style, color=f"C{i}", label=label, lw=1.6, ms=5)
    if lower_bound is not None and not relative:
        ax.axhline(lower_bound, color="k", ls="--", lw=1, label=lower_bound_label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relative suboptimality bound" if relative else "training objective")
    ax.set_title(title if title is not None else "objective against time")
    ax.legend(loc="best", fontsize="small")
    return ax

"""Regularization paths: warm-started solves over a grid of beta, and their cross-validated version.

:func:`convexnn.solve_path` returns a :class:`RegularizationPath` (a list of :class:`~convexnn.SolveResult` with
arrays of what changes along the path and a :meth:`~RegularizationPath.plot`); :func:`solve_path_cv` scores the
same grid on K held-out folds (the folds run in parallel threads with ``n_jobs``) and returns a :class:`CVPath`.

The grid runs from ``beta_max`` (the zero network is optimal from there on, see :func:`convexnn.beta_max`) down
to ``beta_min_ratio * beta_max`` on a log scale, as for the group lasso (Friedman, Hastie & Tibshirani,
"Regularization Paths for Generalized Linear Models via Coordinate Descent", J. Stat. Software 2010): each solve
starts from the previous solution, which is close when the betas are.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ._progress import ProgressBar
from ._validation import _asarray, check_bool, check_scalar, check_X

__all__ = ["CVPath", "RegularizationPath", "solve_path_cv"]


def score_result(res, X, y) -> float:
    """Validation score of a solution: R^2 for loss="squared", accuracy for the classification losses."""
    from sklearn.metrics import r2_score

    pred = np.asarray(res.predict(X), dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if res.loss == "squared":
        return float(r2_score(y.reshape(len(y), -1), pred.reshape(len(pred), -1))) if len(y) > 1 else math.nan
    if res.loss == "cross_entropy":
        return float(np.mean(np.argmax(pred.reshape(len(pred), -1), axis=1) == np.argmax(y.reshape(len(y), -1), 1)))
    return float(np.mean(np.where(pred.ravel() > 0, 1.0, -1.0) == y.ravel()))


class RegularizationPath(list):
    """The solutions of a regularization path, largest beta first (a list of SolveResult).

    Attributes
    ----------
    betas : ndarray of shape (k,)
        The betas solved (k <= the grid's length when the path stopped early).
    grid : ndarray of shape (n_betas,)
        The whole grid asked for.
    objectives, dual_objectives, gaps : ndarray of shape (k,)
    n_neurons : ndarray of int, shape (k,)
        Neurons of each solution's network.
    statuses : list of str
    scores : ndarray of shape (k,)
        Validation scores (NaN without validation data).
    interrupted : bool
        True when a solve was interrupted (Ctrl-C or a callback) and the path stopped there.
    """

    def __init__(self, results, grid, scores=None, interrupted=False):
        super().__init__(results)
        self.grid = np.asarray(grid, dtype=np.float64)
        self.scores = np.full(len(results), np.nan) if scores is None else np.asarray(scores, dtype=np.float64)
        self.interrupted = bool(interrupted)

    def _column(self, name, dtype=np.float64):
        return np.array([getattr(r, name) for r in self], dtype=dtype)

    @property
    def betas(self) -> np.ndarray:
        return self._column("beta")

    @property
    def objectives(self) -> np.ndarray:
        return self._column("objective")

    @property
    def dual_objectives(self) -> np.ndarray:
        return self._column("dual_objective")

    @property
    def gaps(self) -> np.ndarray:
        return self._column("gap")

    @property
    def n_neurons(self) -> np.ndarray:
        return np.array([r.n_neurons for r in self], dtype=np.int64)

    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self]

    @property
    def best_index(self) -> int:
        """Index of the best validation score (ValueError without validation scores)."""
        if not np.isfinite(self.scores).any():
            raise ValueError("the path has no validation scores: pass X_val and y_val to solve_path")
        return int(np.nanargmax(self.scores))

    def to_dict(self) -> dict[str, Any]:
        """The path as a JSON-serializable dict (each solution's :meth:`SolveResult.to_dict`)."""
        return {
            "grid": self.grid.tolist(),
            "scores": [None if not np.isfinite(s) else float(s) for s in self.scores],
            "interrupted": self.interrupted,
            "results": [r.to_dict() for r in self],
        }

    def plot(self, ax=None, relative=True):
        """Objective (and validation score when recorded) and network width against beta.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        relative : bool
            Put beta / beta_max (the grid's first value) on the x axis.

        Returns
        -------
        matplotlib Axes
            The axes of the objective; the width is drawn on a twin axis.
        """
        from .plots import _axes

        if not len(self):
            raise ValueError("the path is empty: nothing to plot")
        ax = _axes(ax)
        x = self.betas / (self.grid[0] if relative and self.grid[0] > 0 else 1.0)
        ax.plot(x, self.objectives, "o-", color="C0", ms=3, label="objective")
        ax.set_xscale("log")
        ax.set_xlabel("beta / beta_max" if relative else "beta")
        ax.set_ylabel("objective", color="C0")
        twin = ax.twinx()
        twin.step(x, self.n_neurons, where="mid", color="C1", label="neurons")
        twin.set_ylabel("neurons", color="C1")
        if np.isfinite(self.scores).any():
            third = ax.twinx()
            third.spines["right"].set_position(("axes", 1.15))
            third.plot(x, self.scores, "s--", color="C2", ms=3, label="validation score")
            third.set_ylabel("validation score", color="C2")
        ax.set_title("regularization path")
        return ax

    def __repr__(self):
        return f"RegularizationPath(n_solved={len(self)}, n_betas={len(self.grid)}, interrupted={self.interrupted})"


def _beta_grid(betas, n_betas, beta_min_ratio, bmax_fn):
    if betas is None:
        n_betas = check_scalar(n_betas, "n_betas", low=1, integer=True)
        ratio = check_scalar(beta_min_ratio, "beta_min_ratio", low=0.0, low_inclusive=False, high=1.0)
        return bmax_fn() * np.logspace(0, np.log10(ratio), int(n_betas))
    arr = _asarray(betas, "betas")
    if arr.dtype == object or np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(f"betas must be an array of real numbers; got {betas!r:.80}")
    arr = arr.astype(np.float64).ravel()
    if arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("betas must be a non-empty array of finite values >= 0")
    return arr


def regularization_path(
    solve_fn,
    beta_max_fn,
    X,
    y,
    betas=None,
    patterns=None,
    n_betas=20,
    beta_min_ratio=1e-3,
    X_val=None,
    y_val=None,
    progress=False,
    warm_start=None,
    **kwargs,
) -> RegularizationPath:
    """The loop behind :func:`convexnn.solve_path` (see there); ``solve_fn`` / ``beta_max_fn`` are solve / beta_max."""
    from .patterns import as_patterns

    progress = check_bool(progress, "progress")
    X = check_X(X)
    bias = check_bool(kwargs.get("bias", False), "bias")
    seed = check_scalar(kwargs.get("seed", 0), "seed", low=0, high=2**64 - 1, integer=True)
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val (validation data), or neither")
    pats = as_patterns(patterns, X, bias, seed)
    grid = _beta_grid(
        betas,
        n_betas,
        beta_min_ratio,
        lambda: beta_max_fn(
            X, y, pats, loss=kwargs.get("loss", "squared"), groups=kwargs.get("groups", "output"), bias=bias
        ),
    )
    results, scores, prev, interrupted = [], [], warm_start, False
    with ProgressBar(total=len(grid), desc="convexnn path", enabled=progress, unit="beta") as bar:
        for b in grid:
            try:
                prev = solve_fn(X, y, float(b), patterns=pats, warm_start=prev, **kwargs)
            except KeyboardInterrupt:  # Ctrl-C outside the C++ solver: stop the path, keep what is solved
                interrupted = True
                break
            results.append(prev)
            scores.append(math.nan if X_val is None else score_result(prev, X_val, y_val))
            bar.step(gap=prev.gap, neurons=prev.n_neurons)
            if prev.status == "interrupted":
                interrupted = True
                break
    return RegularizationPath(results, grid, scores, interrupted)


class CVPath:
    """Cross-validated regularization path (:func:`solve_path_cv`).

    Attributes
    ----------
    betas : ndarray of shape (n_betas,)
        The grid (from beta_max of the whole data, largest first).
    fold_scores : ndarray of shape (n_folds, n_betas)
        Held-out score of each fold's solution (NaN where a fold stopped early).
    mean_scores, std_scores : ndarray of shape (n_betas,)
    best_index : int
        The beta with the best mean held-out score.
    best_beta : float
    index_1se : int
        The largest beta whose mean score is within one standard error of the best (a sparser network).
    path : RegularizationPath or None
        The path on the whole data (``refit=True``).
    """

    def __init__(self, betas, fold_scores, path=None):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.fold_scores = np.asarray(fold_scores, dtype=np.float64)
        with np.errstate(invalid="ignore"), _quiet_nan_warnings():
            self.mean_scores = np.nanmean(self.fold_scores, axis=0)
            self.std_scores = np.nanstd(self.fold_scores, axis=0)
        self.path = path

    @property
    def best_index(self) -> int:
        if not np.isfinite(self.mean_scores).any():
            raise ValueError("no fold produced a score (every fold stopped before its first beta)")
        return int(np.nanargmax(self.mean_scores))

    @property
    def best_beta(self) -> float:
        return float(self.betas[self.best_index])

    @property
    def index_1se(self) -> int:
        best = self.best_index
        n_ok = np.sum(np.isfinite(self.fold_scores[:, best]))
        se = self.std_scores[best] / math.sqrt(max(n_ok, 1))
        ok = np.nonzero(self.mean_scores >= self.mean_scores[best] - se)[0]
        return int(ok.min())

    @property
    def best_result(self):
        """The whole-data solution at ``best_beta`` (needs ``refit=True``)."""
        if self.path is None or self.best_index >= len(self.path):
            raise ValueError("no whole-data solution at best_beta: call solve_path_cv with refit=True")
        return self.path[self.best_index]

    def plot(self, ax=None):
        """Mean held-out score +- one standard deviation against beta / beta_max, best and 1-SE betas marked."""
        from .plots import _axes

        ax = _axes(ax)
        x = self.betas / self.betas[0] if self.betas[0] > 0 else self.betas
        ax.errorbar(
            x,
            self.mean_scores,
            yerr=self.std_scores,
            fmt="o-",
            ms=3,
            capsize=2,
            color="C0",
            label="mean held-out score",
        )
        ax.axvline(x[self.best_index], color="C3", ls="--", lw=1, label="best")
        ax.axvline(x[self.index_1se], color="C2", ls=":", lw=1, label="1-SE")
        ax.set_xscale("log")
        ax.set_xlabel("beta / beta_max")
        ax.set_ylabel("held-out score")
        ax.set_title(f"cross-validated path ({self.fold_scores.shape[0]} folds)")
        ax.legend(loc="best", fontsize="small")
        return ax

    def __repr__(self):
        return f"CVPath(n_betas={len(self.betas)}, n_folds={self.fold_scores.shape[0]}, best_beta={self.best_beta:.4g})"


class _quiet_nan_warnings:
    """Silence numpy's "Mean of empty slice" for betas that no fold reached."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def solve_path_cv(
    X,
    y,
    betas=None,
    patterns=None,
    n_folds: int = 5,
    n_betas: int = 20,
    beta_min_ratio: float = 1e-3,
    n_jobs: int | None = None,
    refit: bool = True,
    progress: bool = False,
    **kwargs,
) -> CVPath:
    """K-fold cross-validated regularization path (as adelie's ``cv_grpnet`` for the group lasso).

    The beta grid comes from ``beta_max`` on the whole data; every fold solves the path on its training rows with
    the same gates (the patterns' gate vectors, masks recomputed on the fold) and scores each solution on its
    held-out rows: R^2 for loss="squared", accuracy for the classification losses.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, c)
    betas : array of floats, optional
        The grid (default: ``n_betas`` values from beta_max down to ``beta_min_ratio * beta_max``).
    patterns : Patterns, gate array (d[+1], P), int or None
        The gates of every fold (an int or None: that many Gaussian gates drawn on the whole data).
    n_folds : int >= 2
    n_jobs : int or None
        Folds solved in parallel threads (None or 1: one after another). Each solve already uses the OpenMP
        threads (:func:`convexnn.set_num_threads`); parallel folds help when there are more cores than one solve
        uses well.
    refit : bool
        Also solve the path on the whole data (``CVPath.path``, ``CVPath.best_result``).
    progress : bool
        A tqdm progress bar over the folds.
    **kwargs
        Passed to :func:`convexnn.solve` (formulation, loss, bias, tol, ...; ``seed`` also shuffles the folds).

    Returns
    -------
    CVPath
    """
    from sklearn.model_selection import KFold

    from .patterns import Patterns, as_patterns
    from .solve import beta_max, solve_path

    X = check_X(X)
    n_folds = check_scalar(n_folds, "n_folds", low=2, high=X.shape[0], integer=True)
    n_jobs = 1 if n_jobs is None else check_scalar(n_jobs, "n_jobs", low=1, integer=True)
    refit, progress = check_bool(refit, "refit"), check_bool(progress, "progress")
    bias = check_bool(kwargs.get("bias", False), "bias")
    seed = check_scalar(kwargs.get("seed", 0), "seed", low=0, high=2**64 - 1, integer=True)
    if "warm_start" in kwargs:
        raise TypeError("solve_path_cv takes no warm_start (every fold starts from zero)")
    y_arr = _asarray(y, "y")
    if y_arr.ndim == 0 or y_arr.shape[0] != X.shape[0]:
        raise ValueError(f"y must have {X.shape[0]} rows (one per sample of X); got shape {y_arr.shape}")
    gates = patterns.gates if isinstance(patterns, Patterns) else as_patterns(patterns, X, bias, seed).gates
    full = Patterns.from_gates(X, gates, bias=bias)
    grid = _beta_grid(
        betas,
        n_betas,
        beta_min_ratio,
        lambda: beta_max(
            X, y_arr, full, loss=kwargs.get("loss", "squared"), groups=kwargs.get("groups", "output"), bias=bias
        ),
    )
    folds = list(KFold(n_folds, shuffle=True, random_state=int(seed) % 2**32).split(X))

    def run_fold(split):
        train, test = split
        path = solve_path(
            X[train],
            y_arr[train],
            betas=grid,
            patterns=Patterns.from_gates(X[train], gates, bias=bias),
            X_val=X[test],
            y_val=y_arr[test],
            **kwargs,
        )
        return np.concatenate([path.scores, np.full(len(grid) - len(path), np.nan)]), path.interrupted

    scores = np.full((n_folds, len(grid)), np.nan)
    with ProgressBar(total=n_folds, desc="convexnn cv", enabled=progress, unit="fold") as bar:
        if n_jobs == 1:
            for k, split in enumerate(folds):
                scores[k], stopped = run_fold(split)
                bar.step()
                if stopped:
                    return CVPath(grid, scores)
        else:
            with ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
                for k, (row, _) in enumerate(pool.map(run_fold, folds)):
                    scores[k] = row
                    bar.step()
    path = solve_path(X, y_arr, betas=grid, patterns=full, **kwargs) if refit else None
    return CVPath(grid, scores, path)

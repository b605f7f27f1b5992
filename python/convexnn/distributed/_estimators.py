"""``fit`` of :class:`convexnn.ConvexReLURegressor` / :class:`convexnn.ConvexReLUClassifier` on Dask arrays.

The estimators' pre-processing, pattern sampling, beta resolution and certificate attributes are reproduced
with the data left on the workers: feature means and standard deviations are dask reductions, the standardized
X is a lazy dask array whose row blocks the workers build, and only y (n x c) comes to the driver.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import _core
from .._estimator_base import check_random_state_seed
from .._validation import check_choice, check_dtype, check_y
from ..network import GatedNetwork, neurons_from_blocks
from . import _worker
from ._design import DistributedDesign, is_dask_array, resolve_client
from ._patterns import resolve_patterns
from ._solve import _solve_on


def _scale_of_dask(X):
    """Training mean and standard deviation per column as the estimators compute them ((near-)constant: 1)."""
    import dask

    mean, scale = dask.compute(X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64))
    tiny = (
        10
        * np.finfo(X.dtype if X.dtype in (np.float32, np.float64) else np.float64).eps
        * np.maximum(1.0, np.abs(mean))
    )
    scale = np.array(scale)
    scale[scale <= tiny] = 1.0
    return np.asarray(mean), scale


def _features(est, X, client):
    """Standardized X as a DistributedDesign (bias column per ``est.bias``); sets n_features_in_ and the scales."""
    if est.formulation != "gated":
        raise ValueError(
            f"fit on distributed data supports formulation='gated' only (got {est.formulation!r}): "
            "the exact program's per-row cone constraints are not distributed yet"
        )
    dt = check_dtype(est.dtype)
    if dt is not None and dt != np.float64:
        raise ValueError("dtype=float32 is not available for distributed data: the workers compute in float64")
    client = resolve_client(client)
    if is_dask_array(X):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D of shape (n_samples, n_features); got shape {X.shape}")
        X = X.astype(np.float64)
        if est.standardize:
            est.x_mean_, est.x_scale_ = _scale_of_dask(X)
            X = (X - est.x_mean_) / est.x_scale_
        else:
            est.x_mean_, est.x_scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        design = DistributedDesign.from_dask(X, bool(est.bias), client)
    else:
        from .._validation import check_X

        X = check_X(X).astype(np.float64, copy=False)
        est._fit_scaling(X)
        design = DistributedDesign.from_numpy((X - est.x_mean_) / est.x_scale_, bool(est.bias), client)
    est.n_features_in_ = design.n_features
    return design


def _recentered_network(res, op):
    """res.network() with the gates recentered in their training margins, as the estimators do (one pass)."""
    net = res.network()
    if not (isinstance(net, GatedNetwork) and net.bias and net.n_neurons):
        return net
    rows, _, _ = neurons_from_blocks(np.asarray(res.coef_), 1.0)
    G = np.array(net.gates, dtype=np.float64)
    b = op._map(_worker.block_margin_bounds, (G, rows))
    b = np.stack(b)  # (blocks, 4, m)
    lo, hi = b[:, 0].min(axis=0), b[:, 1].max(axis=0)
    mx, mn = b[:, 2].max(axis=0), b[:, 3].min(axis=0)
    spread, biggest = mx - mn, np.maximum(np.abs(mx), np.abs(mn))
    all_active = ~np.isfinite(hi)
    hi = np.where(all_active, lo - spread, hi)
    ok = (lo > hi) & np.isfinite(lo) & (lo - hi > 1e-12 * np.maximum(1.0, biggest))
    G[-1, ok] -= 0.5 * (lo[ok] + hi[ok])
    return GatedNetwork(G, net.W1, net.w2, bias=net.bias)


def _fit(est, design, Y, loss):
    """Sample patterns, resolve beta, solve and store the certificate attributes (estimators' ``_solve``)."""
    seed = check_random_state_seed(est.random_state)
    groups = "output" if getattr(est, "groups", None) is None else est.groups
    Y2, was_1d = check_y(Y, design.n_samples, loss)
    op, pats = resolve_patterns(int(est.n_patterns), design, seed)
    try:
        est._resolve_beta(_core.gated_beta_max(op, Y2, loss=loss, groups=groups))
        max_iter = 10_000 if est.max_iter is None else int(est.max_iter)
        time_limit = math.inf if est.time_limit is None else float(est.time_limit)
        verbose = bool(est.verbose) if isinstance(est.verbose, bool) else est.verbose > 0
        res = _solve_on(
            op,
            pats,
            Y2,
            was_1d,
            est.beta_,
            "gated",
            loss,
            groups,
            bool(est.bias),
            float(est.tol),
            max_iter,
            time_limit,
            None,
            verbose,
            time.perf_counter(),
        )
        est.network_ = _recentered_network(res, op)
    finally:
        op.release()
        design.release()
    est._store_certificate(res)
    est._warn_unconverged(res, "the gated solve", stacklevel=5)
    return est


def _labels(y):
    if is_dask_array(y):
        y = y.compute()
    return np.asarray(y)


def fit_estimator(est, X, y, client=None, sample_weight=None):
    """``est.fit(X, y)`` with X a row-chunked dask array (or numpy X scattered to ``client``). Returns est.

    Parameters
    ----------
    est : ConvexReLURegressor or ConvexReLUClassifier
        With ``formulation="gated"``.
    X : dask.array.Array of shape (n, d), or array with ``client``
    y : dask.array.Array or array of shape (n,) (classifier) or (n,) / (n, c) (regressor)
    client : distributed.Client, optional
    sample_weight : None
        Sample weights are not available for distributed data (ValueError otherwise).
    """
    from ..estimators import ConvexReLUClassifier

    est._check_params()
    if sample_weight is not None or getattr(est, "class_weight", None) is not None:
        raise ValueError("sample_weight and class_weight are not available for distributed data")
    if getattr(est, "max_neurons", None) is not None or getattr(est, "warm_start", False):
        raise ValueError("max_neurons and warm_start are not available for distributed data")
    y = _labels(y)
    if isinstance(est, ConvexReLUClassifier):
        check_choice(est.loss, "loss", est._LOSSES)
        Y, loss = est._targets(est._encode_labels(y)), est.loss_
    else:
        Y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(Y).all():
            raise ValueError("y contains NaN or Inf")
        loss = "squared"
    design = _features(est, X, client)
    if len(Y) != design.n_samples:
        design.release()
        raise ValueError(f"y has {len(Y)} rows but X has {design.n_samples} samples")
    if not isinstance(est, ConvexReLUClassifier):
        est.y_mean_ = Y.mean(axis=0) if est.standardize else np.zeros(Y.shape[1:])
        Y = Y - est.y_mean_
    return _fit(est, design, Y, loss)

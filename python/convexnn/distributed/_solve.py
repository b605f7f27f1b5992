"""solve(), beta_max(), solve_path() and sample_patterns() on row-partitioned (Dask) data."""

from __future__ import annotations

import math
import time as _time

import numpy as np

from .. import _core
from .._validation import (
    DEVICES,
    FORMULATIONS,
    GROUPS,
    LOSSES,
    check_choice,
    check_dtype,
    check_scalar,
    check_X,
    check_y,
)
from ..result import SolveResult
from ._design import DistributedDesign, is_dask_array, resolve_client
from ._patterns import DistributedPatterns, resolve_patterns, sampled_gates

_DEFAULT_MAX_ITER = {"gated": 10_000, "relu": 100_000}


def _design(X, bias, client):
    """A DistributedDesign of X (dask array, or numpy scattered to ``client``'s workers)."""
    client = resolve_client(client)
    if isinstance(X, DistributedDesign):
        if X.bias != bias:
            raise ValueError(f"the DistributedDesign was built with bias={X.bias} but bias={bias} was given")
        return X, False
    if is_dask_array(X):
        return DistributedDesign.from_dask(X, bias, client), True
    return DistributedDesign.from_numpy(check_X(X), bias, client), True


def _targets(y, n, loss):
    """y (dask or numpy) on the driver as validated (n, c) float64 and whether it was 1-D."""
    if is_dask_array(y):
        y = y.compute()
    return check_y(y, n, loss)


def _check_options(formulation, loss, groups, bias, tol, max_iter, time_limit, device, dtype, seed):
    formulation = check_choice(formulation, "formulation", FORMULATIONS)
    loss = check_choice(loss, "loss", LOSSES)
    groups = check_choice("output" if groups is None else groups, "groups", GROUPS)
    device = check_choice(device, "device", DEVICES)
    if device != "cpu":
        raise ValueError("device='cuda' is not available for distributed data: the workers compute on their CPUs")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}")
    dt = check_dtype(dtype)
    if dt is not None and dt != np.float64:
        raise ValueError("dtype=float32 is not available for distributed data: the workers compute in float64")
    tol = check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = (
        _DEFAULT_MAX_ITER[formulation] if max_iter is None else check_scalar(max_iter, "max_iter", low=1, integer=True)
    )
    time_limit = (
        math.inf
        if time_limit is None
        else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False, allow_inf=True)
    )
    seed = check_scalar(seed, "seed", low=0, integer=True)
    return formulation, loss, groups, bool(bias), tol, int(max_iter), time_limit, seed


def sample_patterns(X, n_patterns: int = 1000, seed: int = 0, bias: bool = False, client=None) -> DistributedPatterns:
    """:func:`convexnn.sample_patterns` on row-partitioned data: the same gates and patterns, masks on the workers.

    Parameters
    ----------
    X : dask.array.Array of shape (n, d), row-chunked, or numpy array with ``client``
    n_patterns, seed, bias : as :func:`convexnn.sample_patterns`
    client : distributed.Client, optional
        Default: the active client.

    Returns
    -------
    DistributedPatterns
        Gates equal (bit for bit) to ``convexnn.sample_patterns(X.compute(), ...)``'s, deduplicated the same way.
    """
    n_patterns = check_scalar(n_patterns, "n_patterns", low=1, integer=True)
    seed = check_scalar(seed, "seed", low=0, integer=True)
    design, own = _design(X, bool(bias), client)
    try:
        op, pats = resolve_patterns(int(n_patterns), design, seed)
        op.release()
        return pats
    finally:
        if own:
            design.release()


def beta_max(
    X, y, patterns=None, loss: str = "squared", groups: str = "output", bias: bool = False, seed: int = 0, client=None
) -> float:
    """:func:`convexnn.beta_max` on row-partitioned data (one distributed adjoint pass)."""
    loss = check_choice(loss, "loss", LOSSES)
    groups = check_choice(groups, "groups", GROUPS)
    seed = check_scalar(seed, "seed", low=0, integer=True)
    design, own = _design(X, bool(bias), client)
    try:
        Y, _ = _targets(y, design.n_samples, loss)
        op, _ = resolve_patterns(patterns, design, seed)
        try:
            return float(_core.gated_beta_max(op, Y, loss=loss, groups=groups))
        finally:
            op.release()
    finally:
        if own:
            design.release()


def _result(raw, start, pats, formulation, loss, beta, groups, bias, was_1d):
    common = dict(
        patterns=pats, formulation=formulation, loss=loss, beta=beta, groups=groups, bias=bias, output_1d=was_1d
    )
    history = [dict(zip(raw["history"], v)) for v in zip(*raw["history"].values())]
    coef = (
        np.asarray(raw["U"], dtype=np.float64)
        if formulation == "gated"
        else (np.asarray(raw["V"], dtype=np.float64), np.asarray(raw["W"], dtype=np.float64))
    )
    return SolveResult(
        objective=raw["objective"],
        dual_objective=raw["dual_objective"],
        gap=raw["gap"],
        status=raw["status"],
        n_iter=int(raw["n_iter"]),
        time=_time.perf_counter() - start,
        solver=raw["solver"],
        coef_=coef,
        kkt_residual=raw["gap"],
        max_violation=raw.get("max_violation", 0.0),
        history=history,
        **common,
    )


def _warm_blocks(warm_start, P, d, c):
    from ..solve import _warm_start_blocks

    return _warm_start_blocks(warm_start, P, d, c)


def _solve_on(
    op,
    pats,
    Y,
    was_1d,
    beta,
    formulation,
    loss,
    groups,
    bias,
    tol,
    max_iter,
    time_limit,
    warm_start,
    verbose,
    start,
    callback=None,
):
    """One solve on a built operator (shared by solve and solve_path)."""
    if formulation == "gated":
        U0 = _warm_blocks(warm_start, op.n_blocks, op.block_dim, Y.shape[1])
        raw = _core.solve_gated(
            op,
            Y,
            beta,
            loss=loss,
            groups=groups,
            tol=tol,
            max_iter=max_iter,
            time_limit=time_limit,
            warm_start=U0,
            verbose=bool(verbose),
            callback=callback,
        )
        return _result(raw, start, pats, formulation, loss, beta, groups, bias, was_1d)
    from ._exact import solve_exact  # the exact program: constraint generation over the cone rows

    raw = solve_exact(op, Y, beta, loss, tol, max_iter, time_limit, warm_start, verbose, callback)
    return _result(raw, start, pats, formulation, loss, beta, groups, bias, was_1d)


def solve(
    X,
    y,
    beta,
    patterns=None,
    formulation="gated",
    loss="squared",
    groups="output",
    bias=False,
    seed=0,
    tol=1e-6,
    max_iter=None,
    time_limit=None,
    cutting_planes=False,
    device="cpu",
    dtype=None,
    warm_start=None,
    verbose=False,
    callback=None,
    progress=False,
    sample_weight=None,
    pattern_generation=None,
    client=None,
    timeout=None,
) -> SolveResult:
    """:func:`convexnn.solve` on data split by rows over a Dask cluster.

    Parameters
    ----------
    X : dask.array.Array of shape (n, d), or numpy array with ``client``
        Row-chunked (column chunks are merged). Chunks may be uneven, of one row, or empty.
    y : dask.array.Array or array of shape (n,) or (n, c)
        Gathered on the driver (the C++ solver keeps n x c vectors there).
    client : distributed.Client, optional
        The cluster (default: the active client). With numpy X the rows are scattered to its workers.
    timeout : float or None
        Seconds to wait for one distributed product before raising :class:`WorkerLostError` (default: wait).
    callback : callable(info: dict) -> bool, optional
        Called at the solver's checks; returning False stops ("interrupted").
    progress : bool
        Accepted for the signature of :func:`convexnn.solve`; no progress bar is drawn (use ``verbose``).
    sample_weight, pattern_generation : None
        Not available for distributed data (ValueError otherwise; ``pattern_generation="sample"`` is accepted).
    other parameters : as :func:`convexnn.solve`.

    Returns
    -------
    SolveResult
        As :func:`convexnn.solve`; ``patterns`` is a :class:`DistributedPatterns` (gates only).

    Notes
    -----
    The library's C++ solvers run on the driver against a :class:`DistributedOperator`: every forward/adjoint
    product fans out to the workers' row blocks. The certificates (dual bound, gap) are those of the
    single-machine solvers, computed from the same products. A lost worker's blocks are recomputed by Dask
    from the source graph (or scattered again from the driver's numpy array) and the product is re-run, so
    the solve continues from its last iterate; otherwise :class:`WorkerLostError` names the lost workers.
    """
    start = _time.perf_counter()
    formulation, loss, groups, bias, tol, max_iter, time_limit, seed = _check_options(
        formulation, loss, groups, bias, tol, max_iter, time_limit, device, dtype, seed
    )
    beta = check_scalar(beta, "beta", low=0.0)
    if sample_weight is not None:
        raise ValueError("sample_weight is not available for distributed data")
    if pattern_generation not in (None, "sample"):
        raise ValueError(
            f"pattern_generation={pattern_generation!r} is not available for distributed data (it "
            "searches patterns with the exact program or Adam on all rows); use None or 'sample'"
        )
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    if cutting_planes:
        raise ValueError(
            "cutting_planes=True is not available for distributed data yet (formulation='relu' on "
            "fixed patterns is): its pattern oracle searches neurons over all rows on one machine"
        )
    design, own = _design(X, bias, client)
    try:
        Y, was_1d = _targets(y, design.n_samples, loss)
        if formulation == "relu" and groups == "neuron" and Y.shape[1] > 1:
            raise ValueError(
                "formulation='relu' with groups='neuron' and c > 1 outputs has no exact network "
                "reconstruction; use groups='output' (independent heads)"
            )
        op, pats = resolve_patterns(patterns, design, seed, timeout)
        try:
            return _solve_on(
                op,
                pats,
                Y,
                was_1d,
                beta,
                formulation,
                loss,
                groups,
                bias,
                tol,
                max_iter,
                time_limit,
                warm_start,
                verbose,
                start,
                callback,
            )
        finally:
            op.release()
    finally:
        if own:
            design.release()


def solve_path(X, y, betas=None, patterns=None, n_betas=20, beta_min_ratio=1e-3, client=None, timeout=None, **kwargs):
    """:func:`convexnn.solve_path` on row-partitioned data: the blocks and masks are built once for all betas.

    Returns
    -------
    list of SolveResult, in the order of ``betas`` (sorted decreasing when generated).
    """
    opts = dict(
        formulation="gated",
        loss="squared",
        groups="output",
        bias=False,
        seed=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        device="cpu",
        dtype=None,
        verbose=False,
    )
    unknown = set(kwargs) - set(opts) - {"warm_start", "cutting_planes"}
    if unknown:
        raise TypeError(f"solve_path got unexpected keyword arguments {sorted(unknown)}")
    if kwargs.get("cutting_planes"):
        raise ValueError("cutting_planes=True is not available for distributed data yet")
    opts.update({k: v for k, v in kwargs.items() if k in opts})
    formulation, loss, groups, bias, tol, max_iter, time_limit, seed = _check_options(
        opts["formulation"],
        opts["loss"],
        opts["groups"],
        opts["bias"],
        opts["tol"],
        opts["max_iter"],
        opts["time_limit"],
        opts["device"],
        opts["dtype"],
        opts["seed"],
    )
    design, own = _design(X, bias, client)
    try:
        Y, was_1d = _targets(y, design.n_samples, loss)
        op, pats = resolve_patterns(patterns, design, seed, timeout)
        try:
            if betas is None:
                n_betas = check_scalar(n_betas, "n_betas", low=1, integer=True)
                bmax = float(_core.gated_beta_max(op, Y, loss=loss, groups=groups))
                betas = bmax * np.logspace(0, np.log10(beta_min_ratio), n_betas)
            betas = np.asarray(betas, dtype=np.float64).ravel()
            if betas.size == 0 or not np.isfinite(betas).all() or (betas < 0).any():
                raise ValueError("betas must be a non-empty array of finite values >= 0")
            results, prev = [], kwargs.get("warm_start")
            for b in betas:
                prev = _solve_on(
                    op,
                    pats,
                    Y,
                    was_1d,
                    float(b),
                    formulation,
                    loss,
                    groups,
                    bias,
                    tol,
                    max_iter,
                    time_limit,
                    prev,
                    opts["verbose"],
                    _time.perf_counter(),
                )
                results.append(prev)
            return results
        finally:
            op.release()
    finally:
        if own:
            design.release()


__all__ = ["beta_max", "sample_patterns", "sampled_gates", "solve", "solve_path"]

"""solve() and solve_path(): the convex programs of two-layer ReLU networks, with certificates."""

from __future__ import annotations

import math
import os
import time as _time
import warnings



import numpy as np

from . import _core
from ._validation import (DEVICES, FORMULATIONS, GROUPS, LOSSES, add_bias_column, check_choice, check_dtype,
                          check_scalar, check_X, check_y)
from .decomposition import cone_decomposition
from .patterns import as_patterns
from .result import SolveResult

# FISTA on the exact program needs many cheap iterations on ill-conditioned small problems (the seed-003
# toy at beta = 1e-4 takes ~18k); the gated BCD solver counts epochs.
_DEFAULT_MAX_ITER = {"gated": 10_000, "relu": 100_000}
# Measured: float32 exact-program iterations stall at relative gaps of ~1e-4..1e-5 (tests/python/test_relu_core.py).
_RELU_FLOAT32_TOL_FLOOR = 1e-4


def _check_common(X, y, beta, formulation, loss, groups, bias, tol, max_iter, time_limit, device, dtype):
    formulation = check_choice(formulation, "formulation", FORMULATIONS)
    loss = check_choice(loss, "loss", LOSSES)
    groups = check_choice(groups, "groups", GROUPS)
    device = check_choice(device, "device", DEVICES)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}")
    X = check_X(X, dtype=check_dtype(dtype))
    Y, was_1d = check_y(y, X.shape[0], loss)
    beta = check_scalar(beta, "beta", low=0.0)
    tol = check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = (_DEFAULT_MAX_ITER[formulation] if max_iter is None
                else check_scalar(max_iter, "max_iter", low=1, integer=True))
    time_limit = math.inf if time_limit is None else check_scalar(time_limit, "time_limit", low=0.0,
                                                                   low_inclusive=False, allow_inf=True)
    if formulation == "relu" and groups == "neuron" and Y.shape[1] > 1:
        raise ValueError("formulation='relu' with groups='neuron' and c > 1 outputs has no exact network "
                         "reconstruction; use groups='output' (independent heads)")
    if device == "cuda":
        _require_cuda()
    return X, Y, was_1d, formulation, loss, groups, bool(bias), beta, tol, int(max_iter), time_limit


def _require_cuda():
    try:
        from . import _cuda
    except ImportError as exc:
        raise ValueError("device='cuda' needs the CUDA build of convexnn (built when the CUDA toolkit with cuBLAS "
                         f"is found at install time): {exc}") from exc
    if _cuda.device_count() == 0:
        raise ValueError("device='cuda' but no CUDA GPU is visible")
    raise ValueError("device='cuda': the GPU solvers are not part of this build yet; use device='cpu'")


def _product_method(dtype=np.float32):
    """How the masked products are computed: "auto" (default), "gemm", "tables" or "amx".

    All methods are exact up to rounding; the environment variable CONVEXNN_PRODUCT_METHOD overrides the
    automatic choice, for benchmarks (bench/README.md) and for bisecting a numerical difference. "amx" is a
    float32 method: float64 operators (e.g. the certificates of float32 iterations) keep "auto" under it.
    """
    method = os.environ.get("CONVEXNN_PRODUCT_METHOD", "auto")
    if method not in ("auto", "gemm", "tables", "amx"):
        raise ValueError(f"CONVEXNN_PRODUCT_METHOD must be 'auto', 'gemm', 'tables' or 'amx', got {method!r}")
    if method == "amx" and np.dtype(dtype) != np.float32:
        return "auto"
    return method


def _certify_operator(Xb, patterns):
    """float64 operator for the certificates of float32 iterations (API.md), else None."""
    if Xb.dtype == np.float64:
        return None
    return _core.MaskedOperatorF64(Xb.astype(np.float64), patterns._set, method=_product_method(np.float64))


def _operator(Xb, patterns):
    cls = _core.MaskedOperatorF32 if Xb.dtype == np.float32 else _core.MaskedOperatorF64
    return cls(Xb, patterns._set, method=_product_method(Xb.dtype))


def solve(X, y, beta, patterns=None, formulation="gated", loss="squared", groups="output", bias=False, seed=0,
          tol=1e-6, max_iter=None, time_limit=None, cutting_planes=False, device="cpu", dtype=None,
          warm_start=None, verbose=False, client=None):
    """Solve the convex program of a two-layer ReLU network and certify the result.

    Parameters
    ----------
    X : array of shape (n, d)
        Training data (float32 or float64; never modified).
    y : array of shape (n,) or (n, c)
        Targets: real values (squared), {-1, +1} (binary losses) or one-hot (cross_entropy).
    beta : float >= 0
        Weight of the group-norm regulariser (weight decay of the non-convex network).
    patterns : Patterns, array of shape (d[+1], P), int or None
        The sign patterns: a :class:`Patterns`, gate vectors, or a number of Gaussian gates drawn with
        ``seed`` (default 100).
    formulation : {"gated", "relu"}
        "gated": the unconstrained group lasso (gated ReLU network). "relu": the exact cone-constrained program
        (seed 003 eq. 8) whose optimum over all patterns equals the global optimum of the ReLU network.
    loss : {"squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}
    groups : {"output", "neuron"}
        Group norm per output column ("output") or per pattern ("neuron"); the same for c = 1.
    bias : bool
        Append a ones column to X (its weight is part of each neuron's group).
    seed : int
        Seed for sampled patterns.
    tol : float
        Target relative duality gap (gated) or KKT residual and relative violation (relu).
    max_iter, time_limit : int, float or None
        Iteration cap (default 10000 BCD epochs for "gated", 100000 FISTA iterations for "relu") and seconds.
    cutting_planes : bool
        relu only: repeatedly add the patterns whose dual constraint is most violated (C++ cone oracle) and
        re-solve warm. Over ALL patterns when the arrangement can be enumerated (then ``certified_global``);
        otherwise over heuristic candidates, reporting ``max_dual_violation``. See convexnn.cutting_planes.
    device : {"cpu", "cuda"}
    dtype : None, float32 or float64
        Precision of the iterations (certificates are always accumulated in float64). None keeps X's.
        float32 products run ~1.7x faster than float64 (~3x with AMX products, see
        bench/RESULTS.md) but certify relative gaps only down to their rounding floor: ~1e-6 for the gated
        program (problem-dependent: below it FISTA may run to max_iter), ~1e-4 for relu (a warning says so).
    warm_start : SolveResult, array (P, d[+1], c) or tuple (V, W), optional
        A starting point on the same patterns (gated: U; relu: (V, W), projected onto the cones first, or a gated
        SolveResult, split by its cone decomposition into ReLU neurons with the same predictions, see
        convexnn.decomposition; measured in bench/RESULTS.md, issue 5).
    verbose : bool
        Print objective and gap while solving.
    client : dask.distributed.Client, optional
        Solve on this Dask cluster (numpy X and y are scattered by rows to its workers). A row-chunked
        ``dask.array`` X uses the active client without it. See :func:`convexnn.distributed.solve`.

    Returns
    -------
    SolveResult
        ``objective``, ``dual_objective``, ``gap``, ``status``, ``coef_``, ``network()``, ``predict()`` ...

    Notes
    -----
    Both formulations run C++ solvers (``res.solver`` names the algorithm): "gated" a working-set
    block-coordinate / FISTA group-lasso solver with a dual-extrapolated certificate, "relu" FISTA with the exact
    prox of the cone-constrained group norm (iterates stay feasible) and a dual bound from the per-pattern cone
    oracle. For "relu", ``kkt_residual`` is the oracle-certified relative duality gap (zero exactly at KKT points).
    """
    if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a cluster
        from .distributed import solve as solve_distributed

        return solve_distributed(X, y, beta, patterns=patterns, formulation=formulation, loss=loss, groups=groups,
                                 bias=bias, seed=seed, tol=tol, max_iter=max_iter, time_limit=time_limit,
                                 cutting_planes=cutting_planes, device=device, dtype=dtype,
                                 warm_start=warm_start, verbose=verbose, client=client)
    start = _time.perf_counter()
    X, Y, was_1d, formulation, loss, groups, bias, beta, tol, max_iter, time_limit = _check_common(
        X, y, beta, formulation, loss, groups, bias, tol, max_iter, time_limit, device, dtype)
    seed = check_scalar(seed, "seed", low=0, integer=True)
    Xb = add_bias_column(X) if bias else X
    pats = as_patterns(patterns, X, bias, seed)
    if cutting_planes:
        if formulation != "relu":
            raise ValueError("cutting_planes=True applies to formulation='relu' (the exact program)")
        from .cutting_planes import solve_cutting_planes

        return solve_cutting_planes(solve, X, Xb, Y, y, beta, pats, loss=loss, bias=bias, seed=seed, tol=tol,
                                    time_limit=None if math.isinf(time_limit) else time_limit, verbose=verbose,
                                    groups=groups, max_iter=max_iter, dtype=dtype)
    common = dict(patterns=pats, formulation=formulation, loss=loss, beta=beta, groups=groups, bias=bias,
                  output_1d=was_1d)
    if formulation == "gated":
        U0 = _warm_start_blocks(warm_start, pats.n_patterns, Xb.shape[1], Y.shape[1])
        raw = _core.solve_gated(_operator(Xb, pats), Y, beta, loss=loss, groups=groups, tol=tol,
                                max_iter=max_iter, time_limit=time_limit, warm_start=U0, verbose=bool(verbose),
                                certify_op=_certify_operator(Xb, pats))
        return SolveResult(objective=raw["objective"], dual_objective=raw["dual_objective"], gap=raw["gap"],
                           status=raw["status"], n_iter=int(raw["n_iter"]), time=_time.perf_counter() - start,
                           solver=raw["solver"], coef_=np.asarray(raw["U"], dtype=np.float64),
                           kkt_residual=raw["gap"], history=_history_rows(raw["history"]), **common)
    if Xb.dtype == np.float32 and tol < _RELU_FLOAT32_TOL_FLOOR:
        warnings.warn(f"formulation='relu' with float32 iterations rarely certifies a gap below "
                      f"{_RELU_FLOAT32_TOL_FLOOR:g} (float32 predictions limit the dual point); tol={tol:g} may run to "
                      "max_iter. Use dtype=float64 or a looser tol.", RuntimeWarning, stacklevel=2)
    V0, W0 = _warm_start_relu(warm_start, pats, Xb, Y.shape[1])
    raw = _core.solve_relu(_operator(Xb, pats), Xb, pats._set, Y, beta, loss=loss, tol=tol, max_iter=max_iter,
                           time_limit=time_limit, warm_V=V0, warm_W=W0, verbose=bool(verbose),
                           certify_op=_certify_operator(Xb, pats))
    coef = (np.asarray(raw["V"], dtype=np.float64), np.asarray(raw["W"], dtype=np.float64))
    return SolveResult(objective=raw["objective"], dual_objective=raw["dual_objective"], gap=raw["gap"],
                       status=raw["status"], n_iter=int(raw["n_iter"]), time=_time.perf_counter() - start,
                       solver=raw["solver"], coef_=coef, max_violation=raw["max_violation"],
                       kkt_residual=raw["kkt_residual"], max_dual_violation=raw["max_dual_constraint"],
                       history=_history_rows(raw["history"]), **common)


def _warm_start_relu(warm_start, pats, Xb, c):
    if warm_start is None:
        return None, None
    P, d = pats.n_patterns, Xb.shape[1]
    if isinstance(warm_start, SolveResult) and warm_start.formulation == "gated":
        # A gated solution on the same patterns: its cone decomposition (same predictions, feasible).
        U0 = _warm_start_blocks(warm_start, P, d, c)
        V0, W0, _ = cone_decomposition(Xb, pats, U0)  # it converts to float64 itself
        return np.ascontiguousarray(V0), np.ascontiguousarray(W0)
    coef = warm_start.coef_ if isinstance(warm_start, SolveResult) else warm_start
    if not isinstance(coef, tuple) or len(coef) != 2:
        raise ValueError("warm_start for formulation='relu' must be a relu or gated SolveResult or a tuple (V, W)")
    out = []
    for name, B in zip(("V", "W"), coef):
        B = np.asarray(B, dtype=np.float64)
        if B.shape != (P, d, c) or not np.isfinite(B).all():
            raise ValueError(f"warm_start {name} must be finite with shape {(P, d, c)}; got {B.shape}")
        out.append(np.ascontiguousarray(B))
    return tuple(out)


def _history_rows(history):
    """Solver history (the bindings return a dict of equal-length arrays) as a list of per-check dicts."""
    return [dict(zip(history, values)) for values in zip(*history.values())]


def _warm_start_blocks(warm_start, P, d, c):
    if warm_start is None:
        return None
    U0 = warm_start.coef_ if isinstance(warm_start, SolveResult) else warm_start
    if isinstance(U0, tuple):
        raise ValueError("warm_start for formulation='gated' must be gated coefficients (P, d, c)")
    U0 = np.asarray(U0, dtype=np.float64)
    if U0.shape != (P, d, c):
        raise ValueError(f"warm_start must have shape {(P, d, c)} (patterns, features[+bias], outputs); "
                         f"got {U0.shape}")
    if not np.isfinite(U0).all():
        raise ValueError("warm_start contains NaN or Inf")
    return np.ascontiguousarray(U0)


def beta_max(X, y, patterns=None, loss="squared", groups="output", bias=False, seed=0, client=None):
    """The smallest beta for which the zero network is optimal for the gated program on ``patterns``."""
    if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a cluster
        from .distributed import beta_max as beta_max_distributed

        return beta_max_distributed(X, y, patterns, loss=loss, groups=groups, bias=bias, seed=seed, client=client)
    X = check_X(X)
    loss = check_choice(loss, "loss", LOSSES)
    groups = check_choice(groups, "groups", GROUPS)
    Y, _ = check_y(y, X.shape[0], loss)
    Xb = add_bias_column(X) if bias else X
    pats = as_patterns(patterns, X, bias, seed)
    return float(_core.gated_beta_max(_operator(Xb, pats), Y, loss=loss, groups=groups))


def solve_path(X, y, betas=None, patterns=None, n_betas=20, beta_min_ratio=1e-3, client=None, **kwargs):
    """Warm-started regularization path: one :func:`solve` per beta, largest first.

    Parameters
    ----------
    betas : array of floats, optional
        Default: a log grid of ``n_betas`` values from ``beta_max`` down to ``beta_min_ratio * beta_max``.
    other parameters : as :func:`solve`.

    Returns
    -------
    list of SolveResult, in the order of ``betas`` (sorted decreasing when generated).
    """
    if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a cluster
        from .distributed import solve_path as solve_path_distributed

        return solve_path_distributed(X, y, betas, patterns, n_betas, beta_min_ratio, client=client, **kwargs)
    X = check_X(X)
    bias = kwargs.get("bias", False)
    pats = as_patterns(patterns, X, bias, kwargs.get("seed", 0))
    if betas is None:
        n_betas = check_scalar(n_betas, "n_betas", low=1, integer=True)
        bmax = beta_max(X, y, pats, loss=kwargs.get("loss", "squared"), groups=kwargs.get("groups", "output"),
                        bias=bias)
        betas = bmax * np.logspace(0, np.log10(beta_min_ratio), n_betas)
    betas = np.asarray(betas, dtype=np.float64).ravel()
    if betas.size == 0 or not np.isfinite(betas).all() or (betas < 0).any():
        raise ValueError("betas must be a non-empty array of finite values >= 0")
    results, prev = [], None
    for b in betas:
        prev = solve(X, y, float(b), patterns=pats, warm_start=prev, **kwargs)
        results.append(prev)
    return results

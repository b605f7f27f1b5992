"""solve() and solve_path(): the convex programs of two-layer ReLU networks, with certificates."""

from __future__ import annotations

import math
import time as _time
import warnings

import numpy as np

from . import _core
from ._operators import make_operator
from ._progress import ProgressBar, check_callback, solver_hook
from ._validation import (
    DEVICES,
    FORMULATIONS,
    GROUPS,
    INT_LIMIT,
    LOSSES,
    add_bias_column,
    check_choice,
    check_dtype,
    check_memory,
    check_sample_weight,
    check_scalar,
    check_verbose,
    check_X,
    check_y,
)
from .decomposition import cone_decomposition
from .patterns import as_patterns
from .result import ConvergenceWarning, SolveResult

# FISTA on the exact program needs many cheap iterations on ill-conditioned small problems
# (the Pilanci & Ergen (ICML 2020) toy at beta = 1e-4 takes ~18k); the gated BCD solver counts epochs.
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
    max_iter = (
        _DEFAULT_MAX_ITER[formulation] if max_iter is None else check_scalar(max_iter, "max_iter", low=1, integer=True)
    )
    time_limit = (
        math.inf
        if time_limit is None
        else check_scalar(time_limit, "time_limit", low=0.0, low_inclusive=False, allow_inf=True)
    )
    if device == "cuda":
        _require_cuda()
    return X, Y, was_1d, formulation, loss, groups, bool(bias), beta, tol, min(int(max_iter), INT_LIMIT), time_limit


def _require_cuda():
    try:
        from . import _cuda
    except ImportError as exc:
        raise ValueError(
            "device='cuda' needs the CUDA build of convexnn (built when the CUDA toolkit with cuBLAS "
            f"is found at install time): {exc}"
        ) from exc
    if _cuda.device_count() == 0:
        raise ValueError("device='cuda' but no CUDA GPU is visible")
    raise ValueError("device='cuda': the GPU solvers are not part of this build yet; use device='cpu'")


def _certify_operator(Xb, patterns):
    """float64 operator for the certificates of float32 iterations (docs/api.md), else None."""
    if Xb.dtype == np.float64:
        return None
    return make_operator(Xb, patterns, np.float64)


def _operator(Xb, patterns):
    return make_operator(Xb, patterns, Xb.dtype)


def _on_cluster(name, arguments):
    """convexnn.distributed.<name>(**arguments): the row-partitioned version of solve() / beta_max() / solve_path()."""
    from . import distributed

    return getattr(distributed, name)(**arguments)


def solve(
    X,
    y,
    beta,
    patterns=None,
    formulation="gated",
    loss="squared",
    groups=None,
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
):
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
        (Pilanci & Ergen (ICML 2020) eq. 8) whose optimum over all patterns equals the global optimum of the
        ReLU network.
    loss : {"squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}
    groups : {None, "output", "neuron"}
        Group norm per output column ("output") or per pattern ("neuron"); the same for c = 1. For
        ``formulation="relu"`` with c > 1 outputs, "output" is the exact program with independent heads (a
        neuron per output) and "neuron" trains neurons shared by all outputs, as a gradient-trained network has
        (column generation over rank-one atoms, convexnn.shared; it pays beta ||u|| ||alpha||_2 per neuron, never
        more than the heads). None (default): "neuron" for relu with c > 1 and cutting planes, else "output".
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
        convexnn.decomposition; measured in bench/RESULTS.md).
    verbose : bool or int
        Print objective and gap while solving (the C++ solver's lines).
    callback : callable or None
        ``callback(info) -> bool`` at every certificate check, ``info`` a dict with ``iteration``, ``objective``,
        ``dual_objective``, ``gap`` and ``time``; return True to stop (status "interrupted", the best certified
        point is returned). For formulation="relu" the solve then runs in warm-started chunks of iterations
        between calls (the momentum of FISTA restarts at each chunk).
    progress : bool
        Show a tqdm progress bar over the iterations with the current gap.
    sample_weight : array of shape (n,) or None
        Weights >= 0 of the samples in the loss, sum_k w_k l(f(x_k), y_k). Exact for loss="squared" (the rows of
        X and y are scaled by sqrt(w_k), which keeps every sign pattern); the other losses take no weights
        (ValueError).
    pattern_generation : {None, "sample", "oracle", "adam-seeded"}
        relu only. "sample": the given ``patterns`` only. "oracle": column generation (implies
        ``cutting_planes=True``): the patterns of neurons violating the dual constraint, found over all regions
        when the arrangement can be enumerated, else by the local-ascent neuron oracle (convexnn.oracle).
        "adam-seeded": the patterns of a short Adam run of the non-convex network join ``patterns`` and its
        weights are the warm start (so the result is never worse than that network); with
        ``cutting_planes=True`` the column generation follows. None (default): "adam-seeded" when
        ``cutting_planes=True`` and no ``warm_start`` is given, else "sample".
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
        return _on_cluster("solve", locals())  # every argument, by name
    start = _time.perf_counter()
    groups_given = groups
    checked = _check_common(
        X,
        y,
        beta,
        formulation,
        loss,
        "output" if groups is None else groups,
        bias,
        tol,
        max_iter,
        time_limit,
        device,
        dtype,
    )
    X, Y, was_1d, formulation, loss, groups, bias, beta, tol, max_iter, time_limit = checked
    if _shared_neurons_default(groups_given, formulation, Y, cutting_planes, pattern_generation):
        groups = "neuron"
    seed = check_scalar(seed, "seed", low=0, high=2**64 - 1, integer=True)
    verbose, callback = check_verbose(verbose), check_callback(callback)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False; got {progress!r}")
    sample_weight = _check_solve_weights(sample_weight, X.shape[0], loss, cutting_planes)
    Xb = add_bias_column(X) if bias else X
    pats = as_patterns(patterns, X, bias, seed)
    generation = _check_pattern_generation(pattern_generation, formulation, cutting_planes, warm_start)
    cutting_planes = bool(cutting_planes) or generation == "oracle"
    seed_net = None
    if generation == "adam-seeded":  # a short Adam run's patterns join the set, its network is the warm start
        from .generation import seeded_patterns

        limit = None if math.isinf(time_limit) else time_limit
        pats, warm_start, seed_net = seeded_patterns(X, Y, beta, pats, loss, bias, seed, limit)
        if not cutting_planes:
            time_limit = max(1e-3, time_limit - (_time.perf_counter() - start))
    remaining = None if math.isinf(time_limit) else max(1e-3, time_limit - (_time.perf_counter() - start))
    if formulation == "relu" and groups == "neuron" and Y.shape[1] > 1:
        res = _solve_shared_neurons(
            X, Xb, Y, beta, pats, loss, bias, tol, remaining, max_iter, seed, was_1d, seed_net, verbose, cutting_planes
        )
    elif cutting_planes:
        res = _solve_by_column_generation(
            X, Xb, Y, y, beta, pats, loss, bias, seed, tol, remaining, verbose, groups, max_iter, dtype, warm_start
        )
    else:
        problem = dict(Xb=Xb, Y=Y, beta=beta, pats=pats, formulation=formulation, loss=loss, groups=groups)
        problem.update(tol=tol, max_iter=max_iter, time_limit=time_limit, sample_weight=sample_weight)
        res = _solve_fixed_patterns(problem, warm_start, verbose, callback, progress, bias, was_1d, start)
    _warn_unconverged(res, tol, max_iter, time_limit)
    return res


def _shared_neurons_default(groups_given, formulation, Y, cutting_planes, pattern_generation):
    """Whether ``groups=None`` means "neuron": the exact program with vector outputs and a pattern search generates
    neurons shared by the outputs, as a trained network has (otherwise ``None`` means "output")."""
    search = cutting_planes or pattern_generation == "oracle"
    return groups_given is None and formulation == "relu" and Y.shape[1] > 1 and bool(search)


def _check_solve_weights(sample_weight, n, loss, cutting_planes):
    """Validated per-row weights (or None) for the losses and modes that take them."""
    sample_weight = check_sample_weight(sample_weight, n)
    if sample_weight is not None and loss != "squared":
        raise ValueError(
            f"sample_weight needs loss='squared' (weighted rows are exact there); loss={loss!r} takes "
            "no weights in this version"
        )
    if sample_weight is not None and cutting_planes:
        raise ValueError("sample_weight cannot be combined with cutting_planes=True in this version")
    return sample_weight


def _solve_shared_neurons(
    X, Xb, Y, beta, pats, loss, bias, tol, remaining, max_iter, seed, was_1d, seed_net, verbose, search
):
    """The exact program for vector outputs with hidden neurons shared by the outputs (``groups="neuron"``)."""
    from .cutting_planes import enumerate_or_none
    from .shared import solve_shared

    return solve_shared(
        X,
        Xb,
        Y,
        beta,
        pats,
        loss=loss,
        bias=bias,
        tol=tol,
        time_limit=remaining,
        max_iter=max_iter,
        seed=seed,
        output_1d=was_1d,
        network=seed_net,
        pool=enumerate_or_none(X, bias),
        verbose=verbose,
        search=search,
    )


def _solve_by_column_generation(
    X, Xb, Y, y, beta, pats, loss, bias, seed, tol, remaining, verbose, groups, max_iter, dtype, warm_start
):
    """Cutting planes / pattern generation: restricted solves over a growing pattern set (one final warning)."""
    from .cutting_planes import solve_cutting_planes

    with warnings.catch_warnings():  # the rounds' restricted solves; the final status is warned by the caller
        warnings.simplefilter("ignore", ConvergenceWarning)
        return solve_cutting_planes(
            solve,
            X,
            Xb,
            Y,
            y,
            beta,
            pats,
            loss=loss,
            bias=bias,
            seed=seed,
            tol=tol,
            time_limit=remaining,
            verbose=verbose,
            groups=groups,
            max_iter=max_iter,
            dtype=dtype,
            warm_start=warm_start,
        )


def _solve_fixed_patterns(problem, warm_start, verbose, callback, progress, bias, was_1d, start):
    """One certified solve over the given patterns, as a :class:`SolveResult`."""
    Xb, formulation, tol = problem["Xb"], problem["formulation"], problem["tol"]
    if formulation == "relu" and Xb.dtype == np.float32 and tol < _RELU_FLOAT32_TOL_FLOOR:
        warnings.warn(
            f"formulation='relu' with float32 iterations rarely certifies a gap below "
            f"{_RELU_FLOAT32_TOL_FLOOR:g} (float32 predictions limit the dual point); tol={tol:g} may run to "
            "max_iter. Use dtype=float64 or a looser tol.",
            RuntimeWarning,
            stacklevel=3,
        )
    raw, coef = _solve_on_patterns(problem, warm_start, verbose, callback, progress)
    return SolveResult(
        objective=raw["objective"],
        dual_objective=raw["dual_objective"],
        gap=raw["gap"],
        status=raw["status"],
        n_iter=int(raw["n_iter"]),
        time=_time.perf_counter() - start,
        solver=raw["solver"],
        coef_=coef,
        max_violation=raw.get("max_violation", 0.0),
        kkt_residual=raw.get("kkt_residual", raw["gap"]),
        max_dual_violation=raw.get("max_dual_constraint", float("nan")),
        history=_history_rows(raw["history"]),
        patterns=problem["pats"],
        formulation=formulation,
        loss=problem["loss"],
        beta=problem["beta"],
        groups=problem["groups"],
        bias=bias,
        output_1d=was_1d,
        dtype=Xb.dtype.name,
        timings=raw.get("timings", {}),
    )


# Data whose largest entry exceeds this (per dtype) is scaled by a power of two before solving (exact: the
# problem on X / s with beta / s has the solution s * U and the same objective and certificate, and the same
# sign patterns), so that products such as ||X||^2 do not overflow.
_SCALE_ABOVE = {np.dtype(np.float64): 2.0**200, np.dtype(np.float32): 2.0**40}


def _data_scale(Xb):
    """1.0, or the power of two s >= max|Xb| when max|Xb| is large enough to overflow squared norms."""
    top = float(np.max(np.abs(Xb))) if Xb.size else 0.0
    if not top > _SCALE_ABOVE[Xb.dtype]:
        return 1.0
    return float(2.0 ** np.frexp(top)[1])


def _solve_on_patterns(problem, warm_start, verbose, callback, progress):
    """The C++ solve on fixed patterns: sample weights, scaling, memory check, callback and progress bar.

    Returns the binding's result dict and the coefficients in the units of the caller's problem.
    """
    Xb, Y, pats, formulation = problem["Xb"], problem["Y"], problem["pats"], problem["formulation"]
    P, d, c = pats.n_patterns, Xb.shape[1], Y.shape[1]
    # Iterates, momentum, gradients and certificate buffers: ~8 (gated) / ~16 (relu: V and W) copies of
    # P x d x c floats, plus the data and the bit-packed masks (row- and column-major).
    copies = 8 if formulation == "gated" else 16
    check_memory(
        copies * 8.0 * P * d * c + 3.0 * Xb.nbytes + Xb.shape[0] * P / 4.0,
        f"solve(formulation={formulation!r}) with {P} patterns of dimension {d} and {c} output(s)",
    )
    Xw, Yw = Xb, Y
    if problem["sample_weight"] is not None:
        root = np.sqrt(problem["sample_weight"])
        Xw = np.asarray(Xb * root[:, None].astype(Xb.dtype), order="F" if Xb.flags.f_contiguous else "C")
        Yw = np.ascontiguousarray(Y * root[:, None])
    scale = _data_scale(Xw)
    if scale != 1.0:
        Xw = Xw * Xw.dtype.type(1.0 / scale)
    beta = problem["beta"] / scale
    limit = problem["max_iter"]
    bar = ProgressBar(total=limit if limit < INT_LIMIT else None, desc=f"convexnn {formulation}", enabled=progress)
    hook = solver_hook(callback, bar)
    options = dict(
        loss=problem["loss"],
        tol=problem["tol"],
        max_iter=limit,
        time_limit=problem["time_limit"],
        verbose=verbose > 0,
        certify_op=_certify_operator(Xw, pats),
    )
    try:
        if formulation == "gated":
            U0 = _warm_start_blocks(warm_start, P, d, c)
            raw = _core.solve_gated(
                _operator(Xw, pats),
                Yw,
                beta,
                groups=problem["groups"],
                warm_start=None if U0 is None else U0 * scale,
                callback=None if hook is None else (lambda info: not hook(info)),
                **options,
            )
            raw = _float64_continuation(raw, problem, Xw, Yw, beta, hook, options)
            return raw, np.asarray(raw["U"], dtype=np.float64) / scale
        V0, W0 = _warm_start_relu(warm_start, pats, Xb, c)
        if V0 is not None:
            V0, W0 = V0 * scale, W0 * scale
        raw = _solve_relu_hooked(
            _operator(Xw, pats), Yw, beta, V0, W0, hook, dict(options, precision_floor=Xw.dtype == np.float32)
        )
        raw = _float64_continuation(raw, problem, Xw, Yw, beta, hook, options)
        return raw, (np.asarray(raw["V"], dtype=np.float64) / scale, np.asarray(raw["W"], dtype=np.float64) / scale)
    finally:
        bar.close()


def _float64_continuation(raw, problem, Xw, Yw, beta, hook, options):
    """Finish a float32 solve in float64 when its iterations stopped at their rounding floor.

    float32 iterates certify relative gaps only down to a problem-dependent floor (~1e-6 gated, ~1e-5 relu);
    the C++ solvers stop there with status "precision_floor". Such a solve (or one that ended at max_iter above
    tol) continues in float64 warm-started from its point, with the iterations and time left (at least a tenth
    of max_iter, so a max_iter stop can still finish). Returns the binding's result dict, merged: iterations and
    history of both stages, ``solver`` naming the continuation and the float32 gap it started from.
    """
    stuck = raw["status"] == "precision_floor" or (raw["status"] == "max_iter" and raw["gap"] > options["tol"])
    if Xw.dtype != np.float32 or not stuck:
        return raw
    t0, n32 = _time.perf_counter(), int(raw["n_iter"])
    spent = float(raw["time"])
    opts = dict(
        options,
        certify_op=None,
        max_iter=max(options["max_iter"] - n32, options["max_iter"] // 10, 1),
        time_limit=max(options["time_limit"] - spent, 1e-3),
    )
    X64 = np.asarray(Xw, dtype=np.float64, order="F" if Xw.flags.f_contiguous else "C")
    op = _operator(X64, problem["pats"])
    if problem["formulation"] == "gated":
        cont = _core.solve_gated(
            op,
            Yw,
            beta,
            groups=problem["groups"],
            warm_start=np.asarray(raw["U"], dtype=np.float64),
            callback=None if hook is None else (lambda info: not hook(info)),
            **opts,
        )
    else:
        cont = _solve_relu_hooked(
            op,
            Yw,
            beta,
            np.asarray(raw["V"], dtype=np.float64),
            np.asarray(raw["W"], dtype=np.float64),
            hook,
            opts,
        )
    if not cont["gap"] <= raw["gap"]:  # a continuation cut short by the time limit: keep the float32 point
        return raw
    rows = _history_rows(raw["history"]) + [
        dict(r, iteration=int(r["iteration"]) + n32, time=float(r["time"]) + spent)
        for r in _history_rows(cont["history"])
    ]
    history = {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}
    return dict(
        cont,
        n_iter=n32 + int(cont["n_iter"]),
        time=spent + _time.perf_counter() - t0,
        history=history,
        solver=f"{raw['solver']}, float32 -> float64 continuation at gap {raw['gap']:.2g}",
    )


def _solve_relu_hooked(op, Y, beta, V0, W0, hook, options):
    """solve_relu on the masked (cone) operator op, or with a hook in warm-started chunks of ~0.5 s."""
    if hook is None:
        return _core.solve_relu(op, Y, beta, warm_V=V0, warm_W=W0, **options)
    max_iter, time_limit = options.pop("max_iter"), options.pop("time_limit")
    t0, done, chunk, rows, timings = _time.perf_counter(), 0, 50, [], {}
    while True:
        t_chunk = _time.perf_counter()
        remaining = time_limit - (t_chunk - t0)
        raw = _core.solve_relu(
            op,
            Y,
            beta,
            warm_V=V0,
            warm_W=W0,
            max_iter=min(chunk, max_iter - done),
            time_limit=max(remaining, 1e-6),
            **options,
        )
        elapsed = _time.perf_counter() - t0
        for row in _history_rows(raw["history"]):
            rows.append(dict(row, iteration=int(row["iteration"]) + done, time=float(row["time"]) + t_chunk - t0))
        done += int(raw["n_iter"])
        for phase, seconds in raw.get("timings", {}).items():  # summed over the chunks
            timings[phase] = timings.get(phase, 0.0) + seconds
        V0, W0 = np.ascontiguousarray(raw["V"]), np.ascontiguousarray(raw["W"])
        status = raw["status"]
        info = {
            "iteration": done,
            "objective": raw["objective"],
            "dual_objective": raw["dual_objective"],
            "gap": raw["gap"],
            "time": elapsed,
        }
        if hook(info):
            status = "interrupted"
            break
        if status != "max_iter" or done >= max_iter:
            break
        chunk = int(min(max(10, chunk * 0.5 / max(_time.perf_counter() - t_chunk, 1e-3)), 10 * chunk))
    raw = dict(
        raw,
        n_iter=done,
        status=status,
        timings=timings,
        history={k: [r[k] for r in rows] for k in (rows[0] if rows else {})},
    )
    return raw


def _warn_unconverged(res, tol, max_iter, time_limit):
    """A ConvergenceWarning naming the gap reached and what to change, unless the solve converged or was stopped."""
    if res.status == "max_iter":
        what = f"stopped at max_iter={max_iter}"
    elif res.status == "time_limit":
        what = f"stopped at time_limit={time_limit:g} s"
    elif res.status == "diverged":
        warnings.warn(
            f"solve: the {res.formulation} program diverged (objective {res.objective}) after "
            f"{res.n_iter} iterations; no certificate holds. Check the scale of X and y, or raise beta.",
            ConvergenceWarning,
            stacklevel=3,
        )
        return
    else:
        return
    warnings.warn(
        f"solve: the {res.formulation} program {what} after {res.n_iter} iterations with relative gap "
        f"{res.gap:.3g} > tol={tol:g} (the certificate bounds the suboptimality by that gap). Raise "
        "max_iter or time_limit, loosen tol, or raise beta (small beta converges slowly).",
        ConvergenceWarning,
        stacklevel=3,
    )


def _check_pattern_generation(pattern_generation, formulation, cutting_planes, warm_start):
    """Resolve ``pattern_generation`` (None: "adam-seeded" with cutting planes, else "sample")."""
    from .generation import PATTERN_GENERATIONS

    if cutting_planes and formulation != "relu":
        raise ValueError("cutting_planes=True applies to formulation='relu' (the exact program)")
    if pattern_generation is None:
        # The strongest search by default where a search runs; a user's warm start is kept as given (seeding
        # would replace it).
        return "adam-seeded" if cutting_planes and warm_start is None else "sample"
    generation = check_choice(pattern_generation, "pattern_generation", PATTERN_GENERATIONS)
    if generation == "oracle" and formulation != "relu":
        raise ValueError("pattern_generation='oracle' (column generation) applies to formulation='relu'")
    if generation == "adam-seeded":
        if formulation != "relu":
            raise ValueError("pattern_generation='adam-seeded' applies to formulation='relu'")
        if warm_start is not None:
            raise ValueError("pattern_generation='adam-seeded' makes its own warm start; pass warm_start=None")
    return generation


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
        raise ValueError(f"warm_start must have shape {(P, d, c)} (patterns, features[+bias], outputs); got {U0.shape}")
    if not np.isfinite(U0).all():
        raise ValueError("warm_start contains NaN or Inf")
    return np.ascontiguousarray(U0)


def beta_max(X, y, patterns=None, loss="squared", groups="output", bias=False, seed=0, client=None):
    """The smallest beta for which the zero network is optimal for the gated program on ``patterns``.

    beta_max = max_i ||X^T D_i grad L(0, y)||_* (the dual norm of the group norm), the largest dual-constraint
    value at the zero network (Pilanci & Ergen, "Neural Networks are Convex Regularizers", ICML 2020, eq. (4)).
    For any beta >= beta_max the zero network is optimal; a beta of 1e-3 to 1e-1 times beta_max is the usual
    range. Losses are sums over samples (no 1/n), so beta_max grows with n.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, c)
    patterns : Patterns, array (d[+1], P), int or None
        As in :func:`solve` (default: 100 Gaussian gates drawn with ``seed``).
    loss, groups, bias, seed
        As in :func:`solve`.
    client : dask.distributed.Client, optional
        Row-partitioned data on a cluster (see :func:`convexnn.distributed.beta_max`).

    Returns
    -------
    float
    """
    if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a cluster
        from .distributed import beta_max as beta_max_distributed

        return beta_max_distributed(X, y, patterns, loss=loss, groups=groups, bias=bias, seed=seed, client=client)
    X = check_X(X)
    loss = check_choice(loss, "loss", LOSSES)
    groups = check_choice(groups, "groups", GROUPS)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}")
    seed = check_scalar(seed, "seed", low=0, high=2**64 - 1, integer=True)
    Y, _ = check_y(y, X.shape[0], loss)
    Xb = add_bias_column(X) if bias else X
    pats = as_patterns(patterns, X, bias, seed)
    check_memory(
        8.0 * pats.n_patterns * Xb.shape[1] * Y.shape[1] + 2.0 * Xb.nbytes + Xb.shape[0] * pats.n_patterns / 4.0,
        f"beta_max with {pats.n_patterns} patterns of dimension {Xb.shape[1]}",
    )
    # Linear in X: computed on X / s (s a power of two) when X is large enough to overflow, then times s.
    scale = _data_scale(Xb)
    if scale != 1.0:
        Xb = Xb * Xb.dtype.type(1.0 / scale)
    return float(_core.gated_beta_max(_operator(Xb, pats), Y, loss=loss, groups=groups)) * scale


def solve_path(X, y, betas=None, patterns=None, n_betas=20, beta_min_ratio=1e-3, client=None, **kwargs):
    """Warm-started regularization path: one :func:`solve` per beta, largest first.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, c)
    betas : array of floats >= 0, optional
        Default: a log grid of ``n_betas`` values from ``beta_max`` down to ``beta_min_ratio * beta_max``.
    patterns : Patterns, gate array, int or None
        One set of patterns for the whole path (as in :func:`solve`).
    n_betas : int >= 1
    beta_min_ratio : float in (0, 1]
    X_val, y_val : arrays, optional
        Validation data: the path records each solution's validation score (R^2 for loss="squared", accuracy
        otherwise) in ``path.scores``.
    progress : bool
        A tqdm progress bar over the betas.
    other parameters : as :func:`solve` (``warm_start`` starts the first solve; later ones start from the
        previous solution).

    Returns
    -------
    RegularizationPath
        A list of SolveResult in the order of ``betas`` with the arrays ``betas``, ``objectives``, ``gaps``,
        ``n_neurons``, ``statuses``, ``scores`` and :meth:`~convexnn.path.RegularizationPath.plot`. The path stops at
        the first interrupted solve (Ctrl-C or a callback returning True): later betas are not solved.
    """
    if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a cluster
        from .distributed import solve_path as solve_path_distributed

        return solve_path_distributed(X, y, betas, patterns, n_betas, beta_min_ratio, client=client, **kwargs)
    from .path import regularization_path

    return regularization_path(
        solve, beta_max, X, y, betas=betas, patterns=patterns, n_betas=n_betas, beta_min_ratio=beta_min_ratio, **kwargs
    )

"""Two-layer ReLU CNNs as convex programs (Pilanci & Ergen, ICML 2020, Section 4.1 and Appendix A.1).

Per-patch outputs (``pooling="none"``, Section 4.1): f_k(x) = sum_j (X_k u_j)_+ alpha_j, trained on per-patch
targets y_k, is exactly the two-layer ReLU network on the stacked patch matrix X' = [X_1; ...; X_K] (n K x h)
with stacked targets, so the programs of :func:`convexnn.solve` (eq. (8) and its gated relaxation) on X' are its
convex programs, with patterns of X'.

Sum-pooled output (``pooling="sum"``, Appendix A.1): f(x) = sum_j sum_k (X_k u_j)_+ alpha_j, one output per
image. Its exact convex program has one sign pattern of X' per block, i.e. a K-tuple (D_i1, ..., D_iK):

    min  L(sum_i sum_k D_ik X_k (v_i - w_i), y) + beta sum_i (||v_i||_2 + ||w_i||_2)
    s.t. (2 D_ik - I) X_k v_i >= 0,  (2 D_ik - I) X_k w_i >= 0   for all i, k,

and the gated relaxation drops the constraints (u_i = v_i - w_i). The norm bounds ||w|| <= 1 printed in A.1 are
not needed (the sum of norms is penalized). Over all patterns of X' its optimum is the global optimum of the
pooled CNN with weight decay beta/2 (||u_j||^2 + alpha_j^2) (the argument of Theorem 1 applies per block: on
the cone, sum_k (X_k v)_+ = sum_k D_ik X_k v), and the map back u = v / sqrt(||v||), alpha = +-sqrt(||v||)
gives a CNN with the same objective. Both programs run in the library's C++ solvers on a
:class:`~convexnn.cnn.operator.PatchOperator` (the masked operator of X' followed by sum pooling).
"""

from __future__ import annotations

import math
import time as _time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import _core
from .._operators import cone_operator
from .._validation import (
    FORMULATIONS,
    GROUPS,
    LOSSES,
    add_bias_column,
    check_choice,
    check_dtype,
    check_scalar,
    check_y,
)
from ..network import neurons_from_blocks
from ..patterns import as_patterns
from ..result import ConvergenceWarning
from .network import POOLINGS, GatedReLUCNN, ReLUCNN
from .operator import PatchOperator, operator_interface_available
from .patches import check_patches

__all__ = ["ReLUCNNResult", "network_warm_start", "solve_relu_cnn", "relu_cnn_beta_max"]

_DEFAULT_MAX_ITER = {"gated": 10_000, "relu": 100_000}


@dataclass
class ReLUCNNResult:
    """Solution and certificate of :func:`solve_relu_cnn`.

    Attributes
    ----------
    objective, dual_objective, gap : float
        Convex objective (a SUM over samples), a certified lower bound on the optimum over ``patterns``, and
        the relative gap.
    max_violation, kkt_residual : float
        relu: relative cone violation and optimality residual (as for :func:`convexnn.solve`); gated: 0 and gap.
    status, n_iter, time, solver
    coef_ : ndarray (P, h[+1], c) (gated) or tuple (V, W) of that shape (relu)
    patterns : Patterns
        On the n K rows of the stacked patches.
    pooling, formulation, loss, beta, bias
    """

    objective: float
    dual_objective: float
    gap: float
    status: str
    n_iter: int
    time: float
    solver: str
    coef_: object
    patterns: object
    pooling: str
    formulation: str
    loss: str
    beta: float
    bias: bool
    output_1d: bool
    n_patches: int
    max_violation: float = 0.0
    kkt_residual: float = float("nan")
    history: list = field(default_factory=list)

    @property
    def converged(self):
        return self.status == "converged"

    def network(self):
        """The CNN of this solution (zero blocks dropped).

        relu: a :class:`ReLUCNN` by the map of Theorem 1 (u = v / sqrt||v||, alpha = +sqrt||v||; w blocks with
        alpha = -sqrt||w||), whose non-convex objective equals :attr:`objective` when the violation is ~0.
        gated: a :class:`GatedReLUCNN` with every filter's gate.
        """
        one = (lambda w2: w2[:, 0]) if self.output_1d else (lambda w2: w2)
        if self.formulation == "relu":
            V, W = self.coef_
            _, W1v, w2v = neurons_from_blocks(V, +1.0)
            _, W1w, w2w = neurons_from_blocks(W, -1.0)
            return ReLUCNN(np.vstack([W1v, W1w]), one(np.vstack([w2v, w2w])), pooling=self.pooling, bias=self.bias)
        rows, W1, w2 = neurons_from_blocks(self.coef_, +1.0)
        return GatedReLUCNN(self.patterns.gates[:, rows], W1, one(w2), pooling=self.pooling, bias=self.bias)

    def predict(self, patches):
        """Outputs of :meth:`network` on patches (n, K, h)."""
        return self.network().predict(patches)

    def __repr__(self):
        return (
            f"ReLUCNNResult(pooling={self.pooling!r}, formulation={self.formulation!r}, "
            f"objective={self.objective:.6g}, gap={self.gap:.2e}, status={self.status!r})"
        )


def _per_patch_targets(y, n, K, loss):
    arr = np.asarray(y)
    if arr.ndim not in (2, 3) or arr.shape[:2] != (n, K):
        raise ValueError(
            f"with pooling='none' y must have shape ({n}, {K}) or ({n}, {K}, c) (one target per "
            f"patch); got shape {arr.shape}"
        )
    Y, _ = check_y(arr.reshape(n * K, -1), n * K, loss)
    return Y, arr.ndim == 2


def _validate(patches, y, beta, pooling, formulation, loss, groups, bias, tol, max_iter, time_limit, dtype):
    pooling = check_choice(pooling, "pooling", POOLINGS)
    formulation = check_choice(formulation, "formulation", FORMULATIONS)
    loss = check_choice(loss, "loss", LOSSES)
    groups = check_choice(groups, "groups", GROUPS)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}")
    P = check_patches(patches, dtype=check_dtype(dtype))
    n, K, _ = P.shape
    if pooling == "none":
        Y, was_1d = _per_patch_targets(y, n, K, loss)
    else:
        Y, was_1d = check_y(y, n, loss)
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
    if formulation == "relu" and groups == "neuron" and Y.shape[1] > 1:
        raise ValueError(
            "formulation='relu' with groups='neuron' and c > 1 outputs has no exact network "
            "reconstruction; use groups='output' (independent heads)"
        )
    return P, Y, was_1d, pooling, formulation, loss, groups, bool(bias), beta, tol, int(max_iter), time_limit


def _pooled_operator(P, pats, bias, dtype=None):
    n, K, h = P.shape
    Xs = P.reshape(n * K, h)
    Xb = add_bias_column(Xs) if bias else Xs
    dt = np.dtype(dtype or Xb.dtype)
    if not operator_interface_available(dt):
        raise RuntimeError(
            "pooling='sum' runs the C++ solvers on a Python patch operator, which this build of "
            "convexnn._core does not support (BlockOperatorF64 cannot be subclassed from Python); "
            "rebuild convexnn from a source tree that has the Python operator interface"
        )
    return PatchOperator(Xb.astype(dt, copy=False), pats._set, K, dtype=dt), Xb


def solve_relu_cnn(
    patches,
    y,
    beta,
    patterns=None,
    pooling="sum",
    formulation="gated",
    loss="squared",
    groups="output",
    bias=False,
    seed=0,
    tol=1e-6,
    max_iter=None,
    time_limit=None,
    dtype=None,
    warm_start=None,
    verbose=False,
):
    """Solve the convex program of a two-layer ReLU CNN and certify the result.

    Parameters
    ----------
    patches : array (n, K, h)
        Patch matrices (see :func:`convexnn.cnn.extract_patches`).
    y : array
        ``pooling="sum"``: (n,) or (n, c); ``pooling="none"``: (n, K) or (n, K, c), one target per patch. Real
        (squared), {-1, +1} (binary losses) or one-hot (cross_entropy).
    beta : float >= 0
        Weight decay of the CNN (beta/2 per squared weight), the group-norm weight of the program.
    patterns : Patterns, array (h[+1], P), int or None
        Sign patterns of the stacked patches X' (n K rows): a Patterns built on X' (e.g.
        :func:`convexnn.cnn.patterns.gaussian_patterns`), gate vectors, or a number of Gaussian gates (default 100).
    pooling : {"sum", "none"}
        One output per image (sum over patches, A.1) or one per patch (Section 4.1).
    formulation : {"gated", "relu"}
        The gated relaxation (group lasso) or the exact cone-constrained program.
    loss : {"squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}
    groups : {"output", "neuron"}
    bias : bool
        One bias per filter (a ones entry appended to every patch).
    seed : int
        Seed of sampled patterns.
    tol : float
        Target relative gap (gated) or KKT residual and violation (relu).
    max_iter, time_limit : int or None, float or None
    dtype : None, float32 or float64
        Iteration precision; certificates are accumulated in float64.
    warm_start : ReLUCNNResult, array (P, h[+1], c) or tuple (V, W), optional
        A starting point on the same patterns: gated coefficients U for "gated"; for "relu" a tuple (V, W), a relu
        result, or a gated result / U, split into cone coefficients with the same predictions by
        :func:`convexnn.decomposition.cone_decomposition` (on the stacked patches: the cones of the pooled
        program are those of X'). Measured on digits (bench/cnn_digits.py setting): decomposing a gated solution on
        sampled patterns gave a start with norms ~1e6 times too large (gates through training patches have zero
        margins), far worse than a cold start; :func:`network_warm_start` of a trained CNN works well there.
    verbose : bool

    Returns
    -------
    ReLUCNNResult
        ``objective``, ``dual_objective``, ``gap``, ``status``, ``max_violation``, ``network()``, ``predict()``.

    Warns
    -----
    ConvergenceWarning
        When the solve stops before ``tol`` (the certificate still bounds the suboptimality).
    """
    start = _time.perf_counter()
    P, Y, was_1d, pooling, formulation, loss, groups, bias, beta, tol, max_iter, time_limit = _validate(
        patches, y, beta, pooling, formulation, loss, groups, bias, tol, max_iter, time_limit, dtype
    )
    n, K, h = P.shape
    seed = check_scalar(seed, "seed", low=0, integer=True)
    Xs = P.reshape(n * K, h)
    pats = as_patterns(patterns, Xs, bias, seed)
    common = dict(
        patterns=pats,
        pooling=pooling,
        formulation=formulation,
        loss=loss,
        beta=beta,
        bias=bias,
        output_1d=was_1d,
        n_patches=K,
    )
    if pooling == "none":
        from ..solve import solve

        warm = warm_start.coef_ if isinstance(warm_start, ReLUCNNResult) else warm_start
        if formulation == "relu" and warm is not None and not isinstance(warm, tuple):
            warm = _warm_relu(warm, P, pats, bias, Y.shape[1])
        with warnings.catch_warnings():  # solve's warning is re-issued below
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = solve(
                Xs,
                Y,
                beta,
                patterns=pats,
                formulation=formulation,
                warm_start=warm,
                loss=loss,
                groups=groups,
                bias=bias,
                tol=tol,
                max_iter=max_iter,
                time_limit=None if math.isinf(time_limit) else time_limit,
                dtype=dtype,
                verbose=verbose,
            )
        out = ReLUCNNResult(
            objective=res.objective,
            dual_objective=res.dual_objective,
            gap=res.gap,
            status=res.status,
            n_iter=res.n_iter,
            time=_time.perf_counter() - start,
            solver=res.solver,
            coef_=res.coef_,
            max_violation=res.max_violation,
            kkt_residual=res.kkt_residual,
            history=res.history,
            **common,
        )
    else:
        out = _solve_pooled(
            P,
            Y,
            pats,
            beta,
            formulation,
            loss,
            groups,
            bias,
            tol,
            max_iter,
            time_limit,
            verbose,
            common,
            start,
            warm_start,
        )
    if out.status != "converged":
        warnings.warn(
            f"solve_relu_cnn ({formulation}, pooling={pooling!r}) stopped with status {out.status!r} "
            f"after {out.n_iter} iterations (relative gap {out.gap:.3g}, tol {tol:g}); the certificate "
            "bounds the suboptimality.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return out


def _warm_relu(warm, P, pats, bias, c):
    """(V, W) from gated coefficients U (P, h[+1], c): the cone decomposition on the stacked patches."""
    from ..decomposition import cone_decomposition

    n, K, h = P.shape
    Xs = P.reshape(n * K, h).astype(np.float64, copy=False)
    U = _warm_blocks(warm, pats.n_patterns, h + int(bias), c, "warm_start")
    V, W, _ = cone_decomposition(add_bias_column(Xs) if bias else Xs, pats, U)
    return np.ascontiguousarray(V), np.ascontiguousarray(W)


def _warm_blocks(B, npat, d, c, name):
    B = np.asarray(B, dtype=np.float64)
    if B.ndim == 2 and c == 1:
        B = B[:, :, None]
    if B.shape != (npat, d, c) or not np.isfinite(B).all():
        raise ValueError(
            f"{name} must be finite with shape {(npat, d, c)} (patterns, patch entries[+bias], outputs); got {B.shape}"
        )
    return np.ascontiguousarray(B)


def _pooled_warm(warm_start, formulation, P, pats, bias, c):
    if warm_start is None:
        return None, None
    warm = warm_start.coef_ if isinstance(warm_start, ReLUCNNResult) else warm_start
    d = P.shape[2] + int(bias)
    if formulation == "gated":
        if isinstance(warm, tuple):
            raise ValueError("warm_start for formulation='gated' must be gated coefficients (P, h[+1], c)")
        return _warm_blocks(warm, pats.n_patterns, d, c, "warm_start"), None
    if isinstance(warm, tuple):
        if len(warm) != 2:
            raise ValueError("warm_start for formulation='relu' must be a tuple (V, W)")
        return tuple(_warm_blocks(B, pats.n_patterns, d, c, f"warm_start {nm}") for nm, B in zip("VW", warm))
    return _warm_relu(warm, P, pats, bias, c)


def _solve_pooled(
    P,
    Y,
    pats,
    beta,
    formulation,
    loss,
    groups,
    bias,
    tol,
    max_iter,
    time_limit,
    verbose,
    common,
    start,
    warm_start=None,
):
    warm_a, warm_b = _pooled_warm(warm_start, formulation, P, pats, bias, Y.shape[1])
    op, Xb = _pooled_operator(P, pats, bias)
    certify = None
    if op.dtype != np.float64:
        certify, _ = _pooled_operator(P.astype(np.float64), pats, bias, np.float64)
    if formulation == "gated":
        raw = _core.solve_gated(
            op,
            Y,
            beta,
            loss=loss,
            groups=groups,
            tol=tol,
            max_iter=max_iter,
            time_limit=time_limit,
            warm_start=warm_a,
            verbose=bool(verbose),
            certify_op=certify,
        )
        coef = np.asarray(raw["U"], dtype=np.float64)
        extra = dict(kkt_residual=raw["gap"])
    else:
        raw = _core.solve_relu(
            cone_operator(op, np.ascontiguousarray(Xb, dtype=op.dtype), pats),
            Y,
            beta,
            loss=loss,
            tol=tol,
            max_iter=max_iter,
            time_limit=time_limit,
            warm_V=warm_a,
            warm_W=warm_b,
            verbose=bool(verbose),
            certify_op=certify,
        )
        coef = (np.asarray(raw["V"], dtype=np.float64), np.asarray(raw["W"], dtype=np.float64))
        extra = dict(kkt_residual=raw["kkt_residual"], max_violation=raw["max_violation"])
    history = [dict(zip(raw["history"], v)) for v in zip(*raw["history"].values())] if "history" in raw else []
    return ReLUCNNResult(
        objective=raw["objective"],
        dual_objective=raw["dual_objective"],
        gap=raw["gap"],
        status=raw["status"],
        n_iter=int(raw["n_iter"]),
        time=_time.perf_counter() - start,
        solver=raw["solver"],
        coef_=coef,
        history=history,
        **extra,
        **common,
    )


def relu_cnn_beta_max(patches, y, patterns=None, pooling="sum", loss="squared", groups="output", bias=False, seed=0):
    """The smallest beta for which the zero CNN is optimal for the gated program on ``patterns``.

    Parameters as :func:`solve_relu_cnn`. Returns a float.
    """
    P, Y, _, pooling, _, loss, groups, bias, _, _, _, _ = _validate(
        patches, y, 1.0, pooling, "gated", loss, groups, bias, 1.0, None, None, None
    )
    n, K, h = P.shape
    Xs = P.reshape(n * K, h)
    pats = as_patterns(patterns, Xs, bias, seed)
    if pooling == "none":
        from ..solve import beta_max

        return beta_max(Xs, Y, pats, loss=loss, groups=groups, bias=bias)
    op, _ = _pooled_operator(P, pats, bias)
    return float(_core.gated_beta_max(op, Y, loss=loss, groups=groups))


def network_warm_start(network, patches, patterns):
    """The reverse map: a ReLU CNN as a feasible point (V, W) of the exact program on ``patterns``.

    Every filter u_j lies in the cone of its own pattern D = diag(1[X' u_j >= 0]) of the stacked patches, so
    v_i += |alpha_j| u_j (alpha_j > 0) or w_i += |alpha_j| u_j (alpha_j < 0) for the pattern i of filter j is
    feasible, predicts exactly what the network predicts, and has a convex objective <= the network's non-convex
    objective (|alpha| ||u|| <= (||u||^2 + alpha^2) / 2) -- the argument behind Theorem 1 of Pilanci & Ergen (ICML
    2020), run backwards.

    Parameters
    ----------
    network : ReLUCNN
        Scalar output (``output_weights`` of shape (m,) or (m, 1)).
    patches : array (n, K, h)
        The training patches the patterns were built on.
    patterns : Patterns
        Patterns of the stacked patches that contain the pattern of every filter (e.g. built from gates that
        include :func:`convexnn.cnn.network_gates` of the network).

    Returns
    -------
    (V, W) : ndarrays (P, h[+1], 1)

    Raises
    ------
    ValueError
        When a filter's pattern is not among ``patterns``, or the network has vector outputs.
    """
    alpha = np.asarray(network.output_weights, dtype=np.float64).reshape(network.n_filters, -1)
    if alpha.shape[1] != 1:
        raise ValueError("network_warm_start needs a scalar-output network (output_weights of shape (m,))")
    P = check_patches(patches).astype(np.float64, copy=False)
    Xs = P.reshape(-1, P.shape[2])
    Xb = add_bias_column(Xs) if network.bias else Xs
    if Xb.shape[0] != patterns.n_samples:
        raise ValueError(f"patterns were built on {patterns.n_samples} rows but the patches stack to {Xb.shape[0]}")
    index = {np.packbits(col).tobytes(): i for i, col in enumerate(patterns.dense().T)}
    V = np.zeros((patterns.n_patterns, Xb.shape[1], 1))
    W = np.zeros_like(V)
    for u, a in zip(network.filters, alpha[:, 0]):
        if a == 0 or not u.any():
            continue
        mask = Xb @ u >= 0
        if not mask.any():  # never active: predicts 0, dropping it only lowers the objective
            continue
        key = np.packbits(mask).tobytes()
        if key not in index:
            raise ValueError(
                "a filter's sign pattern is not among `patterns`; build them with the network's "
                "gates (convexnn.cnn.network_gates)"
            )
        (V if a > 0 else W)[index[key], :, 0] += abs(a) * u
    return V, W

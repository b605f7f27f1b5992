"""Two-layer BN ReLU networks trained to their global optimum through the exact convex program on ``U'``.

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022, Theorem 2.2: the non-convex
problem (3) / (6) of a two-layer BN ReLU network with scalar output equals

    min_{s_i, s'_i}  L(sum_i D_i U' (s_i - s'_i), y) + beta * sum_i (||s_i||_2 + ||s'_i||_2)
    s.t.  (2 D_i - I) U' s_i >= 0,  (2 D_i - I) U' s'_i >= 0,                                          (8)

the exact ReLU program of Pilanci & Ergen (ICML 2020, eq. 8) with X replaced by the whitened ``U'``. The sign
patterns D_i are those of ``U' h`` (the *affine* arrangement of the data; the printed ``1[X w >= 0]`` misses the
bias). Any convex loss gives the same program with ``1/2 ||. - y||^2`` replaced (Appendix B.1).

:func:`solve_bn` builds ``U'`` (:func:`convexnn.bn.whiten`), the patterns, and calls :func:`convexnn.solve` with
``formulation="relu"``: the certificate (objective, dual bound, gap, violation, status) is the library's. An optimal
solution maps back to a BN network (Appendix C.3): for every nonzero ``s_i``

    w1 = V S^{-1} s_{i,1:r},  gamma = ||s_{i,1:r}|| / sqrt(||s_i||),  alpha = s_{i,r+1} / sqrt(||s_i||),
    w2 = +sqrt(||s_i||)                                                     (weight-decay form, eq. 3)

(``-sqrt`` for ``s'_i``); ``s_{i,1:r} = 0`` is the constant neuron (w1 = 0, gamma = 0). With several outputs the
program is solved per output column on shared patterns (independent heads, every neuron feeds one output); see
:mod:`convexnn.bn.vector` for what that means for Theorem 2.3.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._validation import LOSSES, check_choice, check_scalar, check_X, check_y
from .layer import BNReLUNetwork
from .whitening import Whitening, whiten

__all__ = [
    "solve_bn",
    "BNSolveResult",
    "bn_patterns",
    "network_from_convex",
    "network_from_directions",
    "convex_from_network",
]

DEFAULT_PATTERNS = "enumerate"


def bn_patterns(wh: Whitening, patterns="enumerate", seed: int = 0, max_patterns: int | None = None):
    """Sign patterns ``D_i = diag(1[U'_k h_i >= 0])`` of the whitened data.

    Parameters
    ----------
    wh : Whitening
    patterns : "enumerate", int, Patterns or array of shape (k + 1, P)
        "enumerate": every region of the arrangement of ``U'_k`` (the affine arrangement of the projected data;
        refused above ``max_patterns``). int P: P Gaussian directions ``h ~ N(0, I_{k+1})`` (deduplicated).
        A :class:`convexnn.Patterns` built on ``U'_k`` (``bias=False``), or one built on the raw training X with
        ``bias=True`` (affine gates ``[g; b]``, converted to ``h = [S_k V_k^T g; sqrt(n) (b + mean^T g)]``).
        An array: gates h in whitened coordinates, one per column.
    seed : int
        Seed of the Gaussian directions.
    max_patterns : int or None
        Cap for "enumerate" (default 100000).

    Returns
    -------
    (Patterns, bool)
        The patterns on ``U'_k`` and whether they are the complete arrangement.
    """
    from ..patterns import Patterns, enumerate_patterns

    Up = wh.Uprime
    if isinstance(patterns, str):
        if patterns != "enumerate":
            raise ValueError(f"patterns must be 'enumerate', an int, a Patterns or a gate array; got {patterns!r}")
        return enumerate_patterns(Up, max_patterns=max_patterns), True
    if isinstance(patterns, bool):
        raise TypeError(f"patterns must be 'enumerate', an int, a Patterns or a gate array; got {patterns!r}")
    if isinstance(patterns, (int, np.integer)):
        P = check_scalar(int(patterns), "patterns", low=1, integer=True)
        seed = check_scalar(seed, "seed", low=0, integer=True)
        H = np.random.default_rng(seed).standard_normal((wh.k + 1, P))
        return Patterns.from_gates(Up, H), False
    if isinstance(patterns, Patterns):
        if patterns.n_samples != wh.n_samples:
            raise ValueError(f"patterns were built on {patterns.n_samples} samples but X has {wh.n_samples}")
        if patterns.bias:
            G = patterns.gates
            if G.shape[0] != wh.n_features + 1:
                raise ValueError(
                    f"patterns with bias=True must have {wh.n_features + 1} gate rows (raw X plus the "
                    f"bias); got {G.shape[0]}"
                )
            g, b = G[:-1], G[-1]
            H = np.vstack([(wh.V[:, : wh.k] * wh.S[: wh.k]).T @ g, np.sqrt(wh.n_samples) * (b + wh.mean @ g)])
            return Patterns.from_gates(Up, H), False
        if patterns.gates.shape[0] != wh.k + 1:
            raise ValueError(
                f"patterns with bias=False must be built on U' ({wh.k + 1} gate rows); got {patterns.gates.shape[0]}"
            )
        return patterns, False
    if hasattr(patterns, "shape") or isinstance(patterns, (list, tuple)):
        return Patterns.from_gates(Up, np.asarray(patterns, dtype=np.float64)), False
    raise TypeError(f"patterns must be 'enumerate', an int, a Patterns or a gate array; got {type(patterns).__name__}")


def network_from_convex(
    V, W, wh: Whitening, form: str = "weight_decay", X_train=None, output_1d: bool = True
) -> BNReLUNetwork:
    """BN network of a solution of program (8) (Ergen et al., ICLR 2022, Appendix C.3).

    Parameters
    ----------
    V, W : arrays of shape (P, k + 1, c)
        The blocks ``s_i`` (positive output weight) and ``s'_i`` (negative), column k of a block for output k.
    wh : Whitening
        The whitening the program was solved on.
    form : {"weight_decay", "unit"}
        "weight_decay": balanced, ``gamma^2 + alpha^2 = w2^2 = ||s||`` (eq. 3). "unit": ``gamma^2 + alpha^2 = 1``,
        ``w2 = +-||s||`` (eq. 4). Both have the same output; their objectives in their own form equal the convex one.
    X_train : array of shape (n, d) or None
        When given, the network's inference statistics are set from it (else from ``wh``, exactly).
    output_1d : bool
        Return a network with 1-D ``w2`` when c = 1.

    Returns
    -------
    BNReLUNetwork
        One neuron per nonzero block column; the constant neuron (``s_{1:k} = 0``) has W1 row 0 and gamma 0.
    """
    check_choice(form, "form", ("weight_decay", "unit"))
    rows_h, rows_w2 = [], []
    for blocks, sign in ((np.asarray(V, dtype=np.float64), 1.0), (np.asarray(W, dtype=np.float64), -1.0)):
        P, k1, c = blocks.shape
        if k1 != wh.k + 1:
            raise ValueError(f"blocks must have {wh.k + 1} rows (k + 1); got {k1}")
        norms = np.linalg.norm(blocks, axis=1)  # (P, c)
        for i, kk in zip(*np.nonzero(norms > 0)):
            w2 = np.zeros(c)
            w2[kk] = sign * norms[i, kk]
            rows_h.append(blocks[i, :, kk] / norms[i, kk])
            rows_w2.append(w2)
    c = np.asarray(V).shape[2]
    w2 = np.array(rows_w2).reshape(-1, c)
    return network_from_directions(
        np.array(rows_h).reshape(-1, wh.k + 1),
        w2[:, 0] if (output_1d and c == 1) else w2,
        wh,
        form=form,
        X_train=X_train,
    )


def network_from_directions(H, w2, wh: Whitening, form: str = "weight_decay", X_train=None) -> BNReLUNetwork:
    """BN network whose neuron j has the whitened BN pre-activation ``U'_k h_j`` (unit ``h_j``) and output ``w2_j``.

    ``w1_j = V_k S_k^{-1} h_{j,1:k}``, ``gamma_j = ||h_{j,1:k}||``, ``alpha_j = h_{j,k+1}`` (Theta_s form), then
    balanced for ``form="weight_decay"``. Inference statistics from ``X_train`` or, exactly, from ``wh``.

    Parameters
    ----------
    H : array of shape (m, k + 1)
        Unit whitened directions.
    w2 : array of shape (m,) or (m, c)
    wh : Whitening
    form : {"weight_decay", "unit"}
    X_train : array of shape (n, d) or None

    Returns
    -------
    BNReLUNetwork
    """
    check_choice(form, "form", ("weight_decay", "unit"))
    H = np.asarray(H, dtype=np.float64).reshape(-1, wh.k + 1)
    gamma, alpha = np.linalg.norm(H[:, : wh.k], axis=1), H[:, wh.k]
    W1 = wh.first_layer(H)
    net = BNReLUNetwork(W1, gamma, alpha, w2)
    if form == "weight_decay":
        net = net.balanced()
    if X_train is not None:
        return net.with_statistics(X_train)
    # Exact training statistics: mean_j = mean^T w_j and ||X_c w_j|| = ||U_k h_{1:k}|| = ||h_{1:k}||.
    Q = wh.coordinates(W1) if W1.size else np.zeros((0, wh.k))
    return BNReLUNetwork(
        net.W1, net.gamma, net.alpha, net.w2, stats=(W1 @ wh.mean, np.linalg.norm(Q, axis=1), wh.n_samples)
    )


def convex_from_network(net: BNReLUNetwork, wh: Whitening):
    """Point of program (8) with the same training output as ``net`` (the lower-bound map).

    Each neuron j gives ``s~_j = [gamma_j q_j / ||q_j||; alpha_j]`` (``q_j = S V^T w_j``) with pattern
    ``D_j = 1[U' s~_j >= 0]``; ``|w2_j| s~_j`` goes into the s-slot (w2 > 0) or s'-slot (w2 < 0) of that pattern,
    neurons sharing a pattern and sign are summed. The point is feasible for (8) and its convex objective is <= the
    network's weight-decay objective (3), with equality when the network is balanced and no two same-sign neurons
    share a pattern (Ergen et al., ICLR 2022, Appendix C.3, read backwards). Scalar output (1-D ``w2``) only.

    Parameters
    ----------
    net : BNReLUNetwork
        A scalar-output network on the training data of ``wh``.
    wh : Whitening
        The untruncated whitening of the training data (``wh.k == wh.rank``).

    Returns
    -------
    (masks, V, W)
        Dense masks of shape (n, P) (bool, distinct, non-zero) and blocks of shape (P, r + 1, 1).
    """
    if net.w2.ndim != 1:
        raise ValueError("convex_from_network maps scalar-output networks (1-D w2)")
    if wh.truncated:
        raise ValueError("convex_from_network needs the untruncated whitening (k = r)")
    Q = wh.coordinates(net.W1)
    qn = np.linalg.norm(Q, axis=1)
    const = qn <= 1e-12 * max(1.0, float(qn.max(initial=0.0)))
    Qhat = np.where(const[:, None], 0.0, Q / np.where(const, 1.0, qn)[:, None])
    Stil = np.hstack([net.gamma[:, None] * Qhat, net.alpha[:, None]])  # (m, r + 1)
    masks = wh.Uprime @ Stil.T >= 0  # (n, m)
    live = (np.abs(net.w2) > 0) & (np.linalg.norm(Stil, axis=1) > 0) & masks.any(axis=0)
    if not live.any():
        raise ValueError("the network has no active neuron on the training data")
    keys, inverse = np.unique(masks[:, live].T, axis=0, return_inverse=True)
    V = np.zeros((len(keys), wh.k + 1, 1))
    W = np.zeros((len(keys), wh.k + 1, 1))
    for j, s, a in zip(inverse.ravel(), Stil[live], net.w2[live]):
        (V if a > 0 else W)[j, :, 0] += abs(a) * s
    return keys.T.copy(), V, W


@dataclass
class BNSolveResult:
    """Solution and certificate of :func:`solve_bn`.

    The certificate is that of :func:`convexnn.solve` (``formulation="relu"``) on the whitened data; the
    objective is the value of program (8), which equals the weight-decay objective (3) of :meth:`network`.

    Attributes
    ----------
    result : SolveResult
        The library's result on ``U'_k`` (objective, dual_objective, gap, max_violation, status, coef_, ...).
    whitening : Whitening
    enumerated : bool
        The patterns are the complete arrangement of ``U'_k``: then the program is Theorem 2.2's and its dual
        bound is a lower bound on the non-convex optimum over networks of any width.
    """

    result: object
    whitening: Whitening
    enumerated: bool

    def __getattr__(self, name):
        # objective, dual_objective, gap, max_violation, kkt_residual, status, n_iter, time, solver, coef_,
        # patterns, beta, loss, history, max_dual_violation: the library's certificate fields.
        if name in ("result", "whitening", "enumerated"):
            raise AttributeError(name)
        return getattr(self.result, name)

    @property
    def converged(self) -> bool:
        return self.result.status == "converged"

    @property
    def certified_global(self) -> bool:
        """True when the certificate covers ALL patterns (enumerated, or cutting planes over all) and converged."""
        return bool(self.result.certified_global or (self.enumerated and self.converged))

    def network(self, form: str = "weight_decay") -> BNReLUNetwork:
        """The BN ReLU network of the solution (see :func:`network_from_convex`), with training statistics."""
        V, W = self.result.coef_
        return network_from_convex(V, W, self.whitening, form=form, output_1d=self.result.output_1d)

    def predict(self, X) -> np.ndarray:
        """Output on new data through the rebuilt network (test points whitened with the training SVD)."""
        return self.network().predict(X)

    def training_output(self) -> np.ndarray:
        """``sum_i D_i U' (s_i - s'_i)`` on the training rows, (n,) or (n, c)."""
        V, W = self.result.coef_
        masks = self.result.patterns.dense()
        Up = self.whitening.Uprime
        out = np.einsum("np,nk,pkc->nc", masks.astype(np.float64), Up, V - W)
        return out[:, 0] if self.result.output_1d else out

    def dual_point(self, y) -> np.ndarray:
        """The dual variable ``v = -grad L(f)`` at the solution (``y - f`` for the squared loss), (n,) or (n, c)."""
        from .._core import loss_gradient

        F = np.asarray(self.training_output(), dtype=np.float64).reshape(self.whitening.n_samples, -1)
        Y, _ = check_y(y, F.shape[0], self.result.loss)
        v = -np.asarray(loss_gradient(np.ascontiguousarray(F), Y, self.result.loss))
        return v[:, 0] if self.result.output_1d else v

    def summary(self) -> str:
        wh = self.whitening
        head = (
            f"BN convex program (Ergen et al. 2022, eq. 8) on U' with n={wh.n_samples}, rank={wh.rank}, "
            f"k={wh.k} ({100 * wh.kept_variance:.1f}% variance), patterns={'all' if self.enumerated else 'sampled'}"
        )
        return head + "\n" + self.result.summary()

    def __repr__(self):
        r = self.result
        return (
            f"BNSolveResult(objective={r.objective:.6g}, gap={r.gap:.2e}, status={r.status!r}, "
            f"k={self.whitening.k}, enumerated={self.enumerated})"
        )


def solve_bn(
    X,
    y,
    beta: float,
    patterns: str | int | object = DEFAULT_PATTERNS,
    loss: str = "squared",
    truncate: None | int | float | str = None,
    seed: int = 0,
    tol: float = 1e-8,
    max_iter: int | None = None,
    time_limit: float | None = None,
    cutting_planes: bool = False,
    max_patterns: int | None = None,
    verbose: bool = False,
) -> BNSolveResult:
    """Train a two-layer BN ReLU network to the global optimum of its convex program (Theorem 2.2).

    Parameters
    ----------
    X : array of shape (n, d)
        Training data, n >= 2 (never modified).
    y : array of shape (n,) or (n, c)
        Targets for ``loss`` (real for "squared", {-1, +1} for the binary losses, one-hot for "cross_entropy").
        With c > 1 each output column gets its own neurons on shared patterns.
    beta : float >= 0
        Weight decay of (gamma, alpha, w2) in eq. (3) (the decay of W1 does not change the infimum).
    patterns : "enumerate", int, Patterns or array of shape (k + 1, P)
        See :func:`bn_patterns`. "enumerate" (default) is exact (Theorem 2.2) but its count grows like
        ``n^{k+1}``: use it for small n or k, else sample.
    loss : str
        Any loss of :func:`convexnn.solve`.
    truncate : None, int, float or "auto"
        Singular-value truncation of the whitened data (Section 5.2, "Convex-Trunc"), see :func:`whiten`.
    seed : int
        Seed of sampled patterns.
    tol : float > 0
        KKT residual and relative violation target of the exact solver.
    max_iter, time_limit : int or None, float or None
        Solver limits.
    cutting_planes : bool
        Add violated patterns with the library's cone oracle and re-solve (see :func:`convexnn.solve`).
    max_patterns : int or None
        Cap for "enumerate".
    verbose : bool

    Returns
    -------
    BNSolveResult
        ``objective``, ``dual_objective``, ``gap``, ``max_violation``, ``status``, ``network()``, ``predict()``.

    Warns
    -----
    ConvergenceWarning
        When the solver stops before ``tol`` (the certificate still bounds the suboptimality).
    """
    from ..solve import solve

    check_choice(loss, "loss", LOSSES)
    X = check_X(X).astype(np.float64, copy=False)
    check_y(y, X.shape[0], loss)
    beta = check_scalar(beta, "beta", low=0.0)
    wh = whiten(X, truncate=truncate)
    pats, enumerated = bn_patterns(wh, patterns, seed=seed, max_patterns=max_patterns)
    res = solve(
        wh.Uprime,
        y,
        beta,
        patterns=pats,
        formulation="relu",
        loss=loss,
        bias=False,
        seed=seed,
        tol=tol,
        max_iter=max_iter,
        time_limit=time_limit,
        cutting_planes=cutting_planes,
        dtype=np.float64,
        verbose=verbose,
    )
    out = BNSolveResult(result=res, whitening=wh, enumerated=enumerated)
    if res.status != "converged":
        warnings.warn(
            f"solve_bn: the exact solver stopped with status {res.status!r} after {res.n_iter} iterations "
            f"(relative gap {res.gap:.3g}, KKT residual {res.kkt_residual:.3g}, tol {tol:g}); raise "
            "max_iter or time_limit, or loosen tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    if not math.isfinite(res.objective):
        raise FloatingPointError("solve_bn: the solver returned a non-finite objective")
    return out

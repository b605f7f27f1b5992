"""Vector outputs with shared hidden neurons, by column generation over rank-one atoms.

A two-layer ReLU network with c outputs whose hidden neurons feed every output,
f(X) = sum_j (X u_j)_+ alpha_j^T, trained with weight decay, is at balance the problem

    min  L(sum_j (X u_j)_+ alpha_j^T, Y) + beta * sum_j ||u_j||_2 ||alpha_j||_2,

a convex program over the measure of unit neurons (Sahiner, Ergen, Pauly & Pilanci, "Vector-output ReLU neural
network problems are copositive programs", ICLR 2021; Ergen & Pilanci, "Convex Geometry and Duality of
Over-parameterized Neural Networks", JMLR 2021, Sec. 4.5). For a fixed dictionary of unit neurons u_j it is the
group lasso over the output rows alpha_j with features (X u_j)_+, solved by the library's C++ group-lasso
solver through a feature operator. Its dual constraint over ALL neurons is

    max_{||u|| <= 1} ||Theta^T (X u)_+||_2 <= beta,

maximised by the shared-neuron oracle (convexnn.oracle); violating neurons join the dictionary (column
generation, as "boosting" a neuron). Every dictionary solution is a real network, so its objective is attained;
the lower bound is the dictionary solve's dual, and over all neurons only where the arrangement can be
enumerated (per region, min(sigma_max(X^T D_i Theta), sqrt(sum_k M_ik^2)) bounds the constraint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import _core
from .network import Network
from .oracle import default_starts, neuron_oracle
from .result import SolveResult

# New neurons per round (at least), the largest dictionary kept after pruning zero rows, and rounds at most.
SHARED_ADD_MIN = 10
SHARED_MAX_ROUNDS = 100
# Inner solves run to this gap until the search finds no violating neuron.
SHARED_INNER_TOL = 1e-5
# The search stops when STALL_ROUNDS rounds in a row lowered the objective by less than tol (relative): the
# neurons it still finds violate the constraint by amounts the dictionary solves cannot resolve.
STALL_ROUNDS = 3


class FeatureOperator(_core.BlockOperatorF64):
    """Blocks A_j = F[:, j] (n x 1): the output layer over fixed hidden features F = (X U)_+ (n, m)."""

    def __init__(self, F):
        F = np.ascontiguousarray(F, dtype=np.float64)
        super().__init__(F.shape[0], 1, F.shape[1])
        self.F = F

    def _cols(self, subset):
        return self.F if subset is None else self.F[:, subset]

    def forward(self, U, subset):
        return self._cols(subset) @ U[:, 0, :]

    def adjoint(self, R, subset):
        return (self._cols(subset).T @ R)[:, None, :]

    def block_gram(self, i):
        col = self.F[:, i]
        return np.array([[col @ col]])


@dataclass
class _Dictionary:
    U: np.ndarray  # (d, m) unit neurons
    A: np.ndarray  # (m, c) output rows


class SharedNeuronsResult(SolveResult):
    """:class:`SolveResult` of the shared-neuron program; ``coef_`` is (U (d, m) unit neurons, A (m, c) output
    rows) and :meth:`network` the balanced network (u_j sqrt||a_j||, a_j / sqrt||a_j||)."""

    def network(self):
        W1, w2 = _balanced(*self.coef_)
        return Network(W1, w2[:, 0] if self.output_1d else w2, bias=self.bias)

    def predict(self, X):
        return self.network().predict(X)

    @property
    def global_statement(self):
        if self.certified_global:
            return super().global_statement
        return (
            f"optimal over its {self.coef_[0].shape[1]} neurons shared by the outputs (gap {self.gap:.1e}); the "
            f"search ({self.search}) found a largest dual-constraint value {self.max_dual_violation:.6g} "
            f"for beta = {self.beta:.6g}; no global claim"
        )

    def to_dict(self, coef=False):
        out = super().to_dict(coef=False)
        if coef:
            out["U"], out["A"] = (np.asarray(B).tolist() for B in self.coef_)
        return out


def _features(Xb, U):
    return np.maximum(Xb @ U, 0.0)


def _solve_dictionary(Xb, Y, beta, loss, D, tol, time_limit, max_iter):
    op = FeatureOperator(_features(Xb, D.U))
    warm = np.ascontiguousarray(D.A[:, None, :]) if D.A is not None else None
    raw = _core.solve_gated(
        op,
        Y,
        beta,
        loss=loss,
        groups="neuron",
        tol=tol,
        max_iter=max_iter,
        time_limit=time_limit,
        warm_start=warm,
        verbose=False,
        certify_op=None,
    )
    return raw, np.asarray(raw["U"])[:, 0, :], op


def _merge_neurons(U, new, cos_tol=1 - 1e-9):
    """Append unit neurons of ``new`` (d, k) that are not (numerically) already in U (d, m)."""
    if U.shape[1] == 0:
        return new
    keep = (U.T @ new).max(axis=0) < cos_tol
    return np.hstack([U, new[:, keep]])


def _balanced(U, A):
    """The balanced network of unit neurons U (d, m) and output rows A (m, c): (u_j sqrt||a_j||, a_j / sqrt||a_j||),
    zero rows dropped."""
    norms = np.linalg.norm(A, axis=1)
    live = norms > 0
    s = np.sqrt(norms[live])
    return (U[:, live] * s).T, A[live] / s[:, None]


def _unit_neurons(W1, W2):
    """The inverse map: a network (W1 (m, d), W2 (m, c)) as unit neurons (d, m') and output rows (m', c)."""
    norms = np.linalg.norm(W1, axis=1)
    live = norms > 0
    return (W1[live] / norms[live, None]).T, W2[live] * norms[live, None]


def _polish_round(Xb, Y, beta, loss, D, tol, start, time_limit, max_iter, raw, op):
    """Refine the dictionary's network by L-BFGS, put its neurons in the dictionary, re-solve (convex, warm)."""
    from .polish import polish_network

    W1, W2 = _balanced(D.U, D.A)
    if W1.shape[0] == 0:
        return D, raw, op, 0
    left = None if time_limit is None else max(1e-3, 0.5 * (time_limit - (time.perf_counter() - start)))
    W1p, W2p, _ = polish_network(W1, W2, Xb, Y, beta, loss, time_limit=left)
    Up, Ap = _unit_neurons(W1p, W2p)
    # The refined neurons replace the old ones (keeping both makes nearly parallel features, an ill-conditioned
    # group lasso); the refined network is the warm start, so the re-solve starts below the old objective.
    trial = _Dictionary(Up, Ap)
    left = np.inf if time_limit is None else max(1e-3, time_limit - (time.perf_counter() - start))
    raw2, A2, op2 = _solve_dictionary(Xb, Y, beta, loss, trial, max(tol, SHARED_INNER_TOL), left, max_iter)
    if float(raw2["objective"]) > float(raw["objective"]):
        return D, raw, op, int(raw2["n_iter"])
    trial.A = A2
    return trial, raw2, op2, int(raw2["n_iter"])


def initial_dictionary(Xb, pats, network=None):
    """Unit neurons from the gates of ``pats`` and, if given, a trained network's neurons (its output rows,
    rescaled to unit neurons, are the warm start)."""
    G = np.asarray(pats.gates, dtype=np.float64)
    G = G / np.maximum(np.linalg.norm(G, axis=0), 1e-300)
    if network is None:
        return _Dictionary(G, None)
    W1 = np.asarray(network.W1, dtype=np.float64)
    A = np.asarray(network.w2, dtype=np.float64).reshape(W1.shape[0], -1)
    U_net, A_net = _unit_neurons(W1, A)
    U = np.hstack([U_net, G])
    A0 = np.vstack([A_net, np.zeros((G.shape[1], A.shape[1]))])
    return _Dictionary(U, A0)


def solve_shared(
    X,
    Xb,
    Y,
    beta,
    pats,
    *,
    loss,
    bias,
    tol,
    time_limit,
    max_iter,
    seed,
    output_1d,
    network=None,
    pool=None,
    verbose=False,
    progress=None,
    polish=True,
    search=True,
):
    """Column generation of shared neurons (module docstring). Returns a :class:`SharedNeuronsResult`."""
    start = time.perf_counter()
    Xb64 = np.asarray(Xb, dtype=np.float64)
    D = initial_dictionary(Xb64, pats, network)
    history, total_iter, status_override, previous = [], 0, None, None
    threshold = beta * (1.0 + max(tol, SHARED_INNER_TOL))
    raw = found = None
    max_rounds = SHARED_MAX_ROUNDS if search else 0
    for round_index in range(max_rounds + 1):
        left = np.inf if time_limit is None else max(1e-3, time_limit - (time.perf_counter() - start))
        raw, A, op = _solve_dictionary(Xb64, Y, beta, loss, D, max(tol, SHARED_INNER_TOL), left, max_iter)
        total_iter += int(raw["n_iter"])
        D.A = A
        if polish:
            D, raw, op, n_it = _polish_round(Xb64, Y, beta, loss, D, tol, start, time_limit, max_iter, raw, op)
            total_iter += n_it
            A = D.A
        z = op.forward(np.ascontiguousarray(A[:, None, :]), None)
        theta = -_core.loss_gradient(np.ascontiguousarray(z), Y, loss)
        extra = D.U[:, np.linalg.norm(A, axis=1) > 0]
        if previous is not None:
            extra = np.hstack([extra, previous])
        oracle_time = None if time_limit is None else max(1e-3, 0.2 * (time_limit - (time.perf_counter() - start)))
        found = neuron_oracle(
            Xb64,
            theta,
            starts=default_starts(Xb64, theta, extra=extra, seed=seed + round_index),
            shared=True,
            time_limit=oracle_time,
        )
        previous = found.neurons
        violating = found.neurons[:, found.values > threshold]
        record = {
            "round": round_index,
            "neurons": int(D.U.shape[1]),
            "objective": float(raw["objective"]),
            "max_dual_constraint": found.best,
            "violated": int(violating.shape[1]),
            "time": time.perf_counter() - start,
        }
        history.append(record)
        if progress is not None:
            progress(record)
        if verbose:
            print(
                f"[convexnn shared neurons] round {round_index}: {D.U.shape[1]} neurons, objective "
                f"{raw['objective']:.10g}, max dual constraint {found.best:.6g} (beta {beta:.6g})",
                flush=True,
            )
        out_of_time = time_limit is not None and time.perf_counter() - start >= time_limit
        stalled = len(history) > STALL_ROUNDS and history[-1 - STALL_ROUNDS]["objective"] - record["objective"] <= max(
            tol, 1e-9
        ) * abs(record["objective"])
        if violating.shape[1] == 0 or raw["status"] in ("interrupted", "diverged") or out_of_time or stalled:
            if violating.shape[1] and out_of_time:
                status_override = "time_limit"
            break
        if round_index == max_rounds:
            status_override = "max_iter" if search else None
            break
        live = np.linalg.norm(A, axis=1) > 0
        U_new = _merge_neurons(D.U[:, live], violating[:, : max(SHARED_ADD_MIN, int(0.25 * live.sum()))])
        if U_new.shape[1] == live.sum() and round_index > 0:
            break  # every violating neuron found is already in the dictionary: the search has stalled
        A_new = np.vstack([A[live], np.zeros((U_new.shape[1] - live.sum(), A.shape[1]))])
        D = _Dictionary(U_new, A_new)
    if raw["status"] == "converged" and float(raw["gap"]) > tol and status_override is None:
        left = np.inf if time_limit is None else max(1e-3, time_limit - (time.perf_counter() - start))
        raw, A, op = _solve_dictionary(Xb64, Y, beta, loss, D, tol, left, max_iter)
        total_iter += int(raw["n_iter"])
        D.A = A
    return _shared_result(
        raw,
        D,
        Xb64,
        Y,
        beta,
        loss,
        tol,
        pats,
        bias,
        output_1d,
        pool,
        found,
        status_override,
        total_iter,
        history,
        start,
    )


def _shared_result(
    raw, D, Xb, Y, beta, loss, tol, pats, bias, output_1d, pool, found, status_override, total_iter, history, start
):
    status = raw["status"] if status_override is None or raw["status"] != "converged" else status_override
    res = SharedNeuronsResult(
        objective=float(raw["objective"]),
        dual_objective=float(raw["dual_objective"]),
        gap=float(raw["gap"]),
        status=status,
        n_iter=total_iter,
        time=time.perf_counter() - start,
        solver=str(raw["solver"]) + "+shared-neuron-generation",
        coef_=(D.U, D.A),
        patterns=pats,
        formulation="relu",
        loss=loss,
        beta=beta,
        groups="neuron",
        bias=bias,
        output_1d=output_1d,
        max_violation=0.0,
        kkt_residual=float(raw["gap"]),
        max_dual_violation=found.best if found else np.nan,
        history=history,
    )
    res.search = (
        f"shared-neuron oracle: local ascent of ||Theta^T (X u)_+|| from {found.n_starts} starts" if found else ""
    )
    if pool is not None:
        from .cutting_planes import dual_constraint_values, global_dual_bound, relative_gap

        z = FeatureOperator(_features(Xb, D.U)).forward(np.ascontiguousarray(D.A[:, None, :]), None)
        _, per_output, grad = dual_constraint_values(Xb, Y, loss, z, pool)
        res.dual_objective = global_dual_bound(Xb, Y, loss, pool, grad, per_output, beta)
        res.gap = relative_gap(res.objective, res.dual_objective)
        res.kkt_residual = max(res.gap, 0.0)
        res.certified_global = bool(res.gap <= tol)
        res.search = f"all {pool.n_patterns} regions of the arrangement (bounded per region)"
    return res

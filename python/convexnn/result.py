"""The certified result of a convex solve."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._validation import add_bias_column, check_X
from .network import GatedNetwork, Network, neurons_from_blocks


@dataclass
class SolveResult:
    """Solution and certificate of :func:`convexnn.solve` (API.md).

    Attributes
    ----------
    objective : float
        Convex objective L(z, y) + beta * group norms at the returned point (API.md scaling: sums, no 1/n).
    dual_objective : float
        A lower bound on the optimum of the program over ``patterns`` (from a dual-feasible point).
    gap : float
        (objective - dual_objective) / |objective|; inf if objective is 0 and the dual is not.
    max_violation : float
        relu: the relative cone-constraint violation max_i max_k ((2D_i - I) X v_i)_-[k] / (||X||_2 ||v_i||);
        gated: 0.0 (no constraints).
    kkt_residual : float
        relu: optimality residual (see ``solver`` docs); gated: equals ``gap``.
    status : str
        One of "converged", "max_iter", "time_limit", "interrupted", "diverged".
    n_iter, time, solver
        Iterations, wall time in seconds, and which solver ran.
    coef_ : ndarray (P, d[+1], c) or tuple (V, W) of that shape
    patterns : Patterns
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
    formulation: str
    loss: str
    beta: float
    groups: str
    bias: bool
    output_1d: bool
    max_violation: float = 0.0
    kkt_residual: float = float("nan")
    certified_global: bool = False
    max_dual_violation: float = float("nan")
    history: list = field(default_factory=list)

    @property
    def converged(self):
        return self.status == "converged"

    def network(self):
        """The network this solution maps to (zero groups dropped).

        relu: a :class:`Network` by seed 003 Theorem 1 (u = v / sqrt||v||, alpha = +-sqrt||v||), whose
        non-convex objective equals :attr:`objective`. gated: a :class:`GatedNetwork` with each neuron's gate.
        """
        if self.formulation == "relu":
            V, W = self.coef_
            _, W1v, w2v = neurons_from_blocks(V, +1.0)
            _, W1w, w2w = neurons_from_blocks(W, -1.0)
            W1, w2 = np.vstack([W1v, W1w]), np.vstack([w2v, w2w])
            return Network(W1, w2[:, 0] if self.output_1d else w2, bias=self.bias)
        # One neuron per nonzero block column. With groups="neuron" and c > 1 a block is one gated unit with a
        # d x c output; it is exposed as c neurons sharing the gate (same predictions).
        rows, W1, w2 = neurons_from_blocks(self.coef_, +1.0)
        gates = self.patterns.gates[:, rows]
        return GatedNetwork(gates, W1, w2[:, 0] if self.output_1d else w2, bias=self.bias)

    def predict(self, X):
        """Model output on new data, shape (n,) or (n, c) (API.md "Prediction on new data")."""
        if self.formulation == "relu":
            return self.network().predict(X)
        X = check_X(X)
        Xb = add_bias_column(X) if self.bias else X
        if Xb.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but the model was fit on "
                             f"{self.coef_.shape[1] - int(self.bias)}")
        Xb = Xb.astype(np.float64, copy=False)
        # The stored gates' masks on the new data, then the matrix-free masked product (no n x P floats).
        masks = self.patterns._set.recompute(Xb)
        out = _core.MaskedOperatorF64(Xb, masks).forward(np.ascontiguousarray(self.coef_, dtype=np.float64))
        return out[:, 0] if self.output_1d else out

    def summary(self):
        """A short human-readable certificate."""
        lines = [
            f"formulation={self.formulation} loss={self.loss} beta={self.beta:.6g} solver={self.solver}",
            f"objective={self.objective:.10g} dual_bound={self.dual_objective:.10g} rel_gap={self.gap:.3e}",
            f"status={self.status} iterations={self.n_iter} time={self.time:.3f}s patterns={self.patterns.n_patterns}",
        ]
        if self.formulation == "relu":
            lines.append(f"max_violation={self.max_violation:.3e} kkt_residual={self.kkt_residual:.3e} "
                         f"certified_global={self.certified_global}")
        lines.append(f"network neurons={self.network().n_neurons}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"SolveResult(formulation={self.formulation!r}, objective={self.objective:.6g}, gap={self.gap:.2e}, "
                f"status={self.status!r}, solver={self.solver!r})")

"""The certified result of a convex solve."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning

from ._operators import make_operator
from ._validation import add_bias_column, check_bool, check_X
from .network import GatedNetwork, Network, neurons_from_blocks

STATUSES = ("converged", "max_iter", "time_limit", "interrupted", "diverged")


class ConvergenceWarning(_SklearnConvergenceWarning):
    """A solve stopped before reaching its tolerance (a subclass of scikit-learn's ``ConvergenceWarning``).

    The result is still certified: its ``gap`` bounds the relative suboptimality. The message names the status,
    the gap reached, the tolerance and what to change. Filter it like scikit-learn's:
    ``warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)``.
    """


def _python_scalar(value):
    """numpy scalars as Python int / float / bool (JSON-serializable); other values unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_float(value):
    value = float(value)
    return value if math.isfinite(value) else repr(value)  # JSON has no inf / nan: "inf", "nan"


@dataclass
class SolveResult:
    """Solution and certificate of :func:`convexnn.solve` (docs/api.md).

    Attributes
    ----------
    objective : float
        Convex objective L(z, y) + beta * group norms at the returned point (docs/api.md scaling: sums, no 1/n).
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
    history : list of dict
        One entry per certificate check (``iteration``, ``objective``, ``dual_objective``, ``gap``, ``time``,
        ...), Python numbers (JSON-serializable).
    timings : dict of str -> float
        Wall seconds per solver phase as the C++ solver measured them (e.g. ``prox``, ``forward``,
        ``certificate_oracle``, ``total``); empty when the solver reports none.
    dtype : str
        Precision of the iterations ("float32" or "float64"). The masks of :meth:`predict` are computed in the
        precision of the data the patterns were built on, so predictions on the training data match the
        certified ones.

    Notes
    -----
    A non-finite objective is reported as status "diverged" (with ``max_violation`` NaN: no violation is claimed
    for a point whose loss overflowed), whatever status the solver returned.
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
    dtype: str = "float64"
    search: str = ""
    timings: dict = field(default_factory=dict)

    def __post_init__(self):
        self.history = [{k: _python_scalar(v) for k, v in row.items()} for row in (self.history or [])]
        self.timings = {str(k): float(v) for k, v in (self.timings or {}).items()}
        for name in (
            "objective",
            "dual_objective",
            "gap",
            "max_violation",
            "kkt_residual",
            "max_dual_violation",
            "time",
            "beta",
        ):
            setattr(self, name, float(getattr(self, name)))
        self.n_iter = int(self.n_iter)
        if not math.isfinite(self.objective):
            # The solver's status describes its stopping rule; a point whose objective is NaN or Inf diverged.
            self.status = "diverged"
            self.max_violation = float("nan")
            self.gap = float("nan") if math.isnan(self.objective) else float("inf")

    @property
    def converged(self) -> bool:
        """True when the status is "converged" (the gap reached the tolerance)."""
        return self.status == "converged"

    @property
    def n_neurons(self) -> int:
        """Neurons of :meth:`network` (nonzero groups)."""
        return int(self.network().n_neurons)

    def to_dict(self, coef: bool = False) -> dict[str, Any]:
        """The certificate as a JSON-serializable dict (inf / nan as the strings "inf" / "nan").

        Parameters
        ----------
        coef : bool, default False
            Also include the coefficients (nested lists: ``coef`` for gated, ``V`` and ``W`` for relu) and the
            gates (``gates``, shape (d[+1], P)).

        Returns
        -------
        dict
            objective, dual_objective, gap, status, n_iter, time, solver, formulation, loss, beta, groups, bias,
            max_violation, kkt_residual, certified_global, max_dual_violation, n_patterns, n_neurons, dtype,
            history (list of dicts), timings (dict of seconds per solver phase).
        """
        coef = check_bool(coef, "coef")
        out = {
            "objective": _json_float(self.objective),
            "dual_objective": _json_float(self.dual_objective),
            "gap": _json_float(self.gap),
            "status": str(self.status),
            "n_iter": int(self.n_iter),
            "time": _json_float(self.time),
            "solver": str(self.solver),
            "formulation": str(self.formulation),
            "loss": str(self.loss),
            "beta": _json_float(self.beta),
            "groups": str(self.groups),
            "bias": bool(self.bias),
            "max_violation": _json_float(self.max_violation),
            "kkt_residual": _json_float(self.kkt_residual),
            "certified_global": bool(self.certified_global),
            "max_dual_violation": _json_float(self.max_dual_violation),
            "n_patterns": int(self.patterns.n_patterns),
            "n_neurons": self.n_neurons,
            "dtype": str(self.dtype),
            "history": [
                {k: (_json_float(v) if isinstance(v, float) else v) for k, v in row.items()} for row in self.history
            ],
            "timings": {k: _json_float(v) for k, v in self.timings.items()},
        }
        if coef:
            if self.formulation == "relu":
                out["V"], out["W"] = (np.asarray(B).tolist() for B in self.coef_)
            else:
                out["coef"] = np.asarray(self.coef_).tolist()
            out["gates"] = np.asarray(self.patterns.gates).tolist()
        return out

    def network(self):
        """The network this solution maps to (zero groups dropped).

        relu: a :class:`Network` by Pilanci & Ergen (ICML 2020) Theorem 1 (u = v / sqrt||v||,
        alpha = +-sqrt||v||), whose non-convex objective equals :attr:`objective`. gated: a :class:`GatedNetwork`
        with each neuron's gate.
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
        """Model output on new data, shape (n,) or (n, c) (docs/api.md "Prediction on new data")."""
        if self.formulation == "relu":
            return self.network().predict(X)
        X = check_X(X)
        Xb = add_bias_column(X) if self.bias else X
        if Xb.shape[1] != self.coef_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but the model was fit on {self.coef_.shape[1] - int(self.bias)}"
            )
        # The stored gates' masks on the new data, computed in the precision the solver's masks were (a gate
        # through a training point otherwise flips that point's mask with rounding), then the matrix-free
        # masked product in float64 (no n x P floats).
        masks = self.patterns._set.recompute(Xb.astype(getattr(self.patterns, "dtype", "float64"), copy=False))
        Xb = Xb.astype(np.float64, copy=False)
        out = make_operator(Xb, masks, np.float64).forward(np.ascontiguousarray(self.coef_, dtype=np.float64))
        return out[:, 0] if self.output_1d else out

    def summary(self):
        """A short human-readable certificate."""
        lines = [
            f"formulation={self.formulation} loss={self.loss} beta={self.beta:.6g} solver={self.solver}",
            f"objective={self.objective:.10g} dual_bound={self.dual_objective:.10g} rel_gap={self.gap:.3e}",
            f"status={self.status} iterations={self.n_iter} time={self.time:.3f}s patterns={self.patterns.n_patterns}",
        ]
        if self.formulation == "relu":
            lines.append(
                f"max_violation={self.max_violation:.3e} kkt_residual={self.kkt_residual:.3e} "
                f"certified_global={self.certified_global}"
            )
        lines.append(f"network neurons={self.network().n_neurons}")
        if self.formulation == "relu":
            lines.append(self.global_statement)
        return "\n".join(lines)

    @property
    def global_statement(self):
        """What this result proves about ReLU networks of any width, in plain words."""
        if self.certified_global:
            return (
                f"globally optimal over two-layer ReLU networks of any width to a relative gap of {self.gap:.1e} "
                f"(dual bound over {self.search or 'all patterns'})"
            )
        n = self.patterns.n_patterns
        if not self.search:
            return (
                f"optimal over its {n} patterns (gap {self.gap:.1e}); no search for better neurons ran "
                "(cutting_planes=False), so no global claim"
            )
        excess = self.max_dual_violation / self.beta - 1 if self.beta > 0 else float("nan")
        found = (
            f"found no neuron violating the dual constraint by more than {max(excess, 0.0):.1e} (relative)"
            if excess <= 1e-3
            else f"still found neurons violating the dual constraint by {excess:.1e} (relative)"
        )
        return (
            f"optimal over {n} patterns (gap {self.gap:.1e}); the search ({self.search}) {found}; "
            "no global claim (the arrangement is too large to enumerate)"
        )

    def __repr__(self):
        return (
            f"SolveResult(formulation={self.formulation!r}, objective={self.objective:.6g}, gap={self.gap:.2e}, "
            f"status={self.status!r}, solver={self.solver!r})"
        )

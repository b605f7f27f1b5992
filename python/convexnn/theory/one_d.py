"""Exact two-layer ReLU networks on one-dimensional data: splines with kinks at the data points.

For x in R^n and a two-layer ReLU network with unregularized hidden biases, the optimal neurons are the 2n hinges
``(x - x_i)_+`` and ``(x_i - x)_+`` (Ergen & Pilanci, "Convex Geometry and Duality of Over-parameterized Neural
Networks", JMLR 2021, Lemma 6, Corollaries 3-4, Theorems 11 and 14; Ergen & Pilanci, ICML 2021, Cor. 4.1), and the
training problem in the unit-norm form is a convex program over this fixed dictionary D (n x 2n):

* beta = 0, squared loss: min-norm interpolation ``min ||w||_1 s.t. D w + c = y`` (an LP); inside
  [x_min, x_max] every optimal network is the linear interpolant ``np.interp`` (JMLR 2021 Prop. 1 data: value 8);
* beta > 0, squared loss: the lasso ``min 1/2 ||D w + c - y||^2 + beta ||w||_1``;
* hinge loss (y in {-1, +1}): the l1-SVM LP ``min sum_i max(0, 1 - y_i (D w + c)_i) + beta ||w||_1``
  (beta = 0: the hard-margin ``min ||w||_1 s.t. y_i (D w + c)_i >= 1``).

The free intercept c (``intercept=True``, the default) is what unregularized hidden biases give: a pair of neurons
``(x + B)_+, (-x + B)_+`` with output weights ``c / (2B)`` adds c on [-B, B] at cost ``beta |c| / B -> 0``; the
value with it is the infimum of the network problem (ICML 2021 Sec. 3).  ``intercept=False`` is the plain
dictionary of JMLR 2021 Thm 11 (its hinge values 8e-4 / 0.8 / 4.25 on the Prop. 1 data; with the intercept the
beta = 1 value is 4).

Scaling: library sums (``1/2 ||.||^2``, no 1/n).  JMLR 2021 eq. (51) uses ``1/(2n) ||.||^2 + beta ||w||_1``: its
value is this module's value at ``beta_here = n * beta_paper`` divided by n.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from sklearn.exceptions import ConvergenceWarning

from .._validation import check_choice, check_scalar
from ._common import as_beta, as_tol
from ._networks import balanced_two_layer

ONE_D_LOSSES = ("squared", "hinge")


def _as_1d(x, name="x"):
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (or (n, 1)); got shape {np.shape(x)}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def hinge_dictionary(x, knots) -> np.ndarray:
    """``[(x - k_j)_+ , (k_j - x)_+]_j`` of shape (n, 2m) for points x (n,) and knots (m,)."""
    x, knots = _as_1d(x), _as_1d(knots, "knots")
    diff = x[:, None] - knots[None, :]
    return np.hstack([np.maximum(diff, 0.0), np.maximum(-diff, 0.0)])


@dataclass
class OneDSpline:
    """An optimal 1-D two-layer ReLU network: ``f(x) = sum_j w_j (x - k_j)_+ + w_{m+j} (k_j - x)_+ + c``.

    Attributes
    ----------
    objective : float
        Unit-norm-form value (squared: ``1/2 ||f - y||^2 + beta ||w||_1``; hinge: summed hinge + beta ||w||_1;
        beta = 0: ``||w||_1``).
    knots : ndarray (m,)
        The distinct sorted data points.
    coef : ndarray (2m,)
        Output weights of the hinges ``(x - k_j)_+`` (first m) and ``(k_j - x)_+`` (last m).
    intercept : float
    fitted : ndarray (n,)
    dual : ndarray (n,)
        Dual point v (``1^T v = 0`` with the intercept); its global feasibility is checked exactly by
        :func:`one_d_dual_check` (JMLR 2021 Lemma 6: the breakpoints suffice).
    dual_objective : float
    loss, beta, status
    """

    objective: float
    knots: np.ndarray
    coef: np.ndarray
    intercept: float
    fitted: np.ndarray
    dual: np.ndarray
    dual_objective: float
    loss: str
    beta: float
    status: str = "optimal"
    info: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return (self.objective - self.dual_objective) / max(abs(self.objective), 1e-300)

    def predict(self, x) -> np.ndarray:
        """f at new points x (n_new,) (inside [x_min, x_max] the theory pins f down; outside it is affine)."""
        return hinge_dictionary(x, self.knots) @ self.coef + self.intercept

    def kinks(self, tol: float = 1e-9) -> np.ndarray:
        """Knots where the slope of f jumps by more than ``tol`` (the spline's breakpoints)."""
        m = self.knots.size
        jump = np.abs(self.coef[:m] + self.coef[m:])
        return self.knots[jump > tol * max(1.0, np.abs(self.coef).max())]

    def network(self, intercept_bias: float = 1e6):
        """A two-layer ReLU :class:`~convexnn.theory.MLP` with unregularized biases computing f on the data range.

        Hinge j is the neuron ``(s x - s k_j)_+``, s = +-1; a nonzero intercept c is realized by the two neurons
        ``(+-x + B)_+`` with weights ``c / (2B)``, ``B = intercept_bias`` (exact on [-B, B]; their weight decay
        ``beta |c| / B`` vanishes as B grows).  Weights are balanced (JMLR 2021 Lemma 1).
        """
        B = check_scalar(intercept_bias, "intercept_bias", low=0.0, low_inclusive=False)
        m = self.knots.size
        U = np.concatenate([np.ones(m), -np.ones(m)])
        b = np.concatenate([-self.knots, self.knots])
        w = self.coef.copy()
        if self.intercept != 0.0:
            U, b = np.concatenate([U, [1.0, -1.0]]), np.concatenate([b, [B, B]])
            w = np.concatenate([w, [self.intercept / (2 * B)] * 2])
        return balanced_two_layer(U[None, :], w, biases=b)


def _lp(D, y, beta, loss, intercept):
    """LPs of the min-norm (beta = 0) and hinge problems; variables [w+, w-, (c+, c-), xi]."""
    n, p = D.shape
    C = np.ones((n, 1))
    if loss == "squared":  # beta == 0 here
        A = np.hstack([D, -D] + ([C, -C] if intercept else []))
        cost = np.concatenate([np.ones(2 * p), np.zeros(2 if intercept else 0)])
        res = linprog(cost, A_eq=A, b_eq=y, bounds=(0, None), method="highs")
        if res.status != 0:
            raise ValueError(f"the min-norm interpolation LP failed: {res.message}")
        z = res.x
        return z[:p] - z[p : 2 * p], (z[2 * p] - z[2 * p + 1]) if intercept else 0.0, res.eqlin.marginals, res.fun
    Yd = y[:, None]
    A = np.hstack([-Yd * D, Yd * D] + ([-Yd, Yd] if intercept else []))
    k = A.shape[1]
    if beta == 0.0:
        cost = np.concatenate([np.ones(2 * p), np.zeros(k - 2 * p)])
        res = linprog(cost, A_ub=A, b_ub=-np.ones(n), bounds=(0, None), method="highs")
    else:
        cost = np.concatenate([beta * np.ones(2 * p), np.zeros(k - 2 * p), np.ones(n)])
        res = linprog(cost, A_ub=np.hstack([A, -np.eye(n)]), b_ub=-np.ones(n), bounds=(0, None), method="highs")
    if res.status != 0:
        raise ValueError(f"the hinge-loss LP failed: {res.message}")
    z = res.x
    return z[:p] - z[p : 2 * p], (z[2 * p] - z[2 * p + 1]) if intercept else 0.0, -res.ineqlin.marginals * y, res.fun


def _nonneg_qp(Q, q, max_iter, tol=1e-12):
    """Exact ``argmin_{u >= 0} 1/2 u^T Q u + q^T u`` (Q PSD, possibly singular, objective bounded below).

    Lawson-Hanson active-set method: free variables are solved on their subspace by least squares; when that
    subproblem is unbounded (singular Q with a descent direction in its null space, e.g. the pair of atoms
    (x - k)_+ and (k - x)_+ with an intercept) the iterate moves along that direction to the boundary.
    """
    k = q.size
    u = np.zeros(k)
    free = np.zeros(k, bool)
    scale = max(np.abs(q).max(), np.abs(Q).max(), 1e-300)
    for it in range(max_iter):
        grad = Q @ u + q
        cand = np.where(~free, grad, np.inf)
        j = int(np.argmin(cand))
        if cand[j] >= -tol * scale:
            return u, it, True
        free[j] = True
        for _ in range(4 * k + 10):
            P = np.flatnonzero(free)
            QP = Q[np.ix_(P, P)]
            z = np.linalg.lstsq(QP, -q[P], rcond=None)[0]
            step = z - u[P]
            if np.linalg.norm(QP @ z + q[P]) > 1e-9 * scale * max(1.0, np.linalg.norm(z)):
                # Unbounded on this face: descend along the null-space part of -q_P to the boundary.
                step = -(q[P] - QP @ np.linalg.lstsq(QP, q[P], rcond=None)[0])
                if not (step < 0).any():
                    raise RuntimeError("the QP is unbounded below")
            elif (z > 0).all():
                u[:] = 0.0
                u[P] = z
                break
            neg = step < 0
            alpha = np.min(u[P][neg] / -step[neg]) if neg.any() else 1.0
            alpha = min(alpha, 1.0)
            u[P] = np.maximum(u[P] + alpha * step, 0.0)
            free[P[u[P] <= 0]] = False
            if not free.any():
                break
    return u, max_iter, False


def _lasso(D, y, beta, intercept, tol, max_iter):
    """Exact lasso ``min 1/2 ||D w + c - y||^2 + beta ||w||_1`` (intercept eliminated by centring), w = w+ - w-."""
    mu_D = D.mean(axis=0) if intercept else np.zeros(D.shape[1])
    mu_y = y.mean() if intercept else 0.0
    Dc, yc = D - mu_D, y - mu_y
    Dt = np.hstack([Dc, -Dc])
    u, n_iter, ok = _nonneg_qp(Dt.T @ Dt, beta - Dt.T @ yc, max_iter)
    p = D.shape[1]
    w = u[:p] - u[p:]
    v = yc - Dc @ w
    nrm = np.abs(Dc.T @ v).max()
    v = v * min(1.0, beta / nrm) if nrm > 0 else v
    primal = 0.5 * float(np.sum((Dc @ w - yc) ** 2)) + beta * float(np.abs(w).sum())
    dual = float(v @ yc) - 0.5 * float(v @ v)
    gap = (primal - dual) / max(primal, 1e-300)
    status = "optimal" if ok and gap <= max(tol, 1e-7) else "max_iter"
    if status != "optimal":
        warnings.warn(
            f"1-D lasso: active set stopped after {n_iter} iterations with relative gap {gap:.2e}",
            ConvergenceWarning,
            stacklevel=3,
        )
    return w, mu_y - float(mu_D @ w), v, dual, status


def one_d_spline(
    x, y, beta: float, loss: str = "squared", intercept: bool = True, tol: float = 1e-12, max_iter: int = 200_000
) -> OneDSpline:
    """Exact optimum of a two-layer ReLU network with unregularized biases on 1-D data.

    Parameters
    ----------
    x : array of shape (n,) or (n, 1)
    y : array of shape (n,)
        Real targets (squared) or {-1, +1} (hinge).
    beta : float >= 0
        0: min-norm interpolation (squared) / hard-margin classification (hinge).
    loss : {"squared", "hinge"}
    intercept : bool
        Free intercept (the limit of unregularized biases; see the module docstring).
    tol : float
        Relative duality gap of the lasso (squared, beta > 0); the LPs are solved exactly by HiGHS.
    max_iter : int

    Returns
    -------
    OneDSpline
        With ``predict``; for beta = 0 and squared loss ``predict`` equals ``np.interp(x_new, x, y)`` on
        [x_min, x_max].

    Raises
    ------
    ValueError
        Mismatched shapes, hinge labels outside {-1, +1}, or duplicated x with different y for interpolation.
    """
    loss = check_choice(loss, "loss", ONE_D_LOSSES)
    x, y = _as_1d(x), _as_1d(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length; got {x.size} and {y.size}")
    beta, tol = as_beta(beta), as_tol(tol)
    max_iter = check_scalar(max_iter, "max_iter", low=1, integer=True)
    if not isinstance(intercept, (bool, np.bool_)):
        raise TypeError(f"intercept must be True or False; got {intercept!r}")
    if loss == "hinge" and not np.isin(y, (-1.0, 1.0)).all():
        raise ValueError("loss='hinge' needs y in {-1, +1}")
    knots = np.unique(x)
    D = hinge_dictionary(x, knots)
    if loss == "squared" and beta == 0.0:
        for k in knots:
            if np.ptp(y[x == k]) > 0:
                raise ValueError(f"beta = 0 interpolates y, but x = {k} has different targets")
    if loss == "hinge" or beta == 0.0:
        w, c, v, _ = _lp(D, y, beta, loss, bool(intercept))
        status = "optimal"
        dual_obj = float(v @ y)
    else:
        w, c, v, dual_obj, status = _lasso(D, y, beta, bool(intercept), tol, max_iter)
    f = D @ w + c
    if loss == "squared":
        obj = (0.5 * float(np.sum((f - y) ** 2)) if beta > 0 else 0.0) + (beta if beta > 0 else 1.0) * float(
            np.abs(w).sum()
        )
    else:
        obj = float(np.sum(np.maximum(0.0, 1.0 - y * f))) + (beta if beta > 0 else 1.0) * float(np.abs(w).sum())
    return OneDSpline(
        objective=obj,
        knots=knots,
        coef=w,
        intercept=float(c),
        fitted=f,
        dual=v,
        dual_objective=dual_obj,
        loss=loss,
        beta=beta,
        status=status,
        info={"dictionary": D, "theorem": "Ergen & Pilanci JMLR 2021 Lemma 6, Thm 11, 14"},
    )


def one_d_dual_check(x, v, beta: float = 1.0, intercept: bool = True) -> float:
    """Exact ``max_{s = +-1, b in R} |v^T (s x + b 1)_+| / beta`` (<= 1 means v is dual feasible).

    As a function of b, ``v^T (s x + b)_+`` is piecewise linear with breakpoints at ``b = -s x_i`` and constant
    beyond them when ``1^T v = 0``, so the maximum over b is attained at a breakpoint (JMLR 2021 Lemma 6, Appendix 9).
    With ``intercept=True`` the dual also needs ``1^T v = 0``; otherwise the supremum is infinite (b -> +inf).

    Parameters
    ----------
    x, v : arrays of shape (n,)
    beta : float > 0
    intercept : bool
        Without the intercept (plain dictionary of JMLR 2021 Thm 11) only the breakpoints are checked.

    Returns
    -------
    float
        The normalized dual-constraint value (inf if ``1^T v != 0`` with the intercept).
    """
    x, v = _as_1d(x), _as_1d(v, "v")
    if x.shape != v.shape:
        raise ValueError(f"x and v must have the same length; got {x.size} and {v.size}")
    beta = check_scalar(beta, "beta", low=0.0, low_inclusive=False)
    if intercept and abs(v.sum()) > 1e-9 * max(np.abs(v).sum(), 1e-300):
        return float("inf")
    best = 0.0
    for s in (1.0, -1.0):
        vals = np.maximum(s * x[:, None] - s * x[None, :], 0.0).T @ v
        best = max(best, float(np.abs(vals).max()))
    return best / beta


def detect_kinks(f, lo: float, hi: float, n_grid: int = 10_001, tol: float | None = None) -> np.ndarray:
    """Locations of slope jumps of a 1-D function f on [lo, hi] from second differences on a uniform grid.

    Parameters
    ----------
    f : callable
        Maps an array (m,) of points to (m,) values (e.g. ``spline.predict`` or a network's predict on (m, 1)).
    lo, hi : float
    n_grid : int
    tol : float, optional
        Threshold on |second difference| (default ``1e-7 * (1 + max |f|)``).

    Returns
    -------
    ndarray
        Grid points (midpoints of runs of flagged points) where f has a kink.
    """
    lo, hi = check_scalar(lo, "lo"), check_scalar(hi, "hi")
    if not hi > lo:
        raise ValueError(f"hi must be > lo; got lo = {lo}, hi = {hi}")
    n_grid = check_scalar(n_grid, "n_grid", low=5, integer=True)
    g = np.linspace(lo, hi, n_grid)
    vals = np.asarray(f(g), dtype=np.float64).ravel()
    second = np.abs(vals[2:] - 2 * vals[1:-1] + vals[:-2])
    thr = 1e-7 * (1.0 + np.abs(vals).max()) if tol is None else tol
    flagged = np.flatnonzero(second > thr) + 1
    if flagged.size == 0:
        return np.empty(0)
    runs = np.split(flagged, np.flatnonzero(np.diff(flagged) > 1) + 1)
    return np.array([g[r].mean() for r in runs])

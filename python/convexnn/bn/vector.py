"""Vector-output BN networks (Theorem 2.3 of Ergen et al., ICLR 2022): certified bounds, exact when they meet.

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022, Theorem 2.3: the two-layer BN
network with C outputs (9) equals

    min_{S_i in R^{(k+1) x C}}  1/2 || sum_i D_i U' S_i - Y ||_F^2 + beta * sum_i ||S_i||_{K_i,*},           (12)
    ||S||_{K_i,*} = min t >= 0  s.t.  S in t conv{ h g^T : (2 D_i - I) U' h >= 0, ||h||_2 = ||g||_2 = 1 },

a cone-constrained nuclear norm. Evaluating it is a copositive-type problem (maximizing ||G^T h|| over a polyhedral
cone), NP-hard in general, so no exact polynomial solver is claimed here. :func:`solve_bn_vector` instead brackets
the optimum p* of (12) over the given patterns by two certified numbers:

* **upper bound** (a network): the independent-heads program, one scalar program (8) per output column on shared
  patterns (every neuron feeds one output), solved by :func:`convexnn.bn.solve_bn`. Its network is a valid BN
  network whose objective (9) is the bound.
* **lower bound** (a relaxation, named here the *lifted doubly-nonnegative relaxation*): every atom ``h g^T`` lifts
  to ``[h; g][h; g]^T``, so ``S_i`` is the off-diagonal block of a PSD matrix ``Z_i = [[A_i, S_i], [S_i^T, B_i]]``
  with ``(tr A_i + tr B_i)/2 <= t_i`` and ``M_i A_i M_i^T >= 0`` elementwise (``M_i = (2 D_i - I) U'``; holds for
  every conic combination of feasible h). Minimizing the loss plus ``beta sum_i t_i`` (CVXPY + Clarabel, SDP) gives a
  value <= p*.
* **exact** when the relaxation is tight: if every eigen-atom ``z = [h; g]`` of every ``Z_i`` has (up to sign) a
  feasible h, the atoms form a BN network with objective (9) <= the lower bound, hence optimal; ``exact`` is then
  True and ``network`` is that network.

The SDP has one (k + 1 + C)-square PSD block and n^2 inequalities per pattern: meant for small problems.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_scalar, check_X, check_y
from .layer import BNReLUNetwork
from .program import BNSolveResult, network_from_directions, solve_bn

__all__ = ["VectorBNResult", "solve_bn_vector", "lifted_relaxation"]


@dataclass
class VectorBNResult:
    """Certified bracket of the vector-output optimum over the patterns (see the module docstring).

    Attributes
    ----------
    lower_bound : float
        Value of the lifted doubly-nonnegative relaxation (<= p*, up to the SDP solver's accuracy ~1e-8).
    upper_bound : float
        Objective (9) of ``network`` (>= p*).
    exact : bool
        The relaxation was tight and ``network`` comes from its atoms.
    network : BNReLUNetwork
        The best network found: the relaxation's atoms when ``exact``, else the independent-heads network.
    heads : BNSolveResult
        The independent-heads solve (its own certificate is for the heads program only).
    relaxation : dict
        ``objective``, ``status``, ``Z`` (list of (k+1+C)-square matrices), ``infeasible_atoms``.
    enumerated : bool
        All patterns were used: then the bounds are bounds on the optimum over BN networks of any width.
    """

    lower_bound: float
    upper_bound: float
    exact: bool
    network: BNReLUNetwork
    heads: BNSolveResult
    relaxation: dict
    enumerated: bool

    @property
    def gap(self) -> float:
        """Relative gap ``(upper - lower) / upper`` (0 when exact, up to solver accuracy)."""
        return (self.upper_bound - self.lower_bound) / max(abs(self.upper_bound), 1e-300)


def lifted_relaxation(Uprime, masks, Y, beta: float):
    """The lifted doubly-nonnegative relaxation of (12) (a lower bound), solved with CVXPY + Clarabel.

    Parameters
    ----------
    Uprime : array of shape (n, k + 1)
    masks : bool array of shape (n, P)
    Y : array of shape (n, C)
    beta : float >= 0

    Returns
    -------
    dict
        ``objective`` (float), ``Z`` (list of P arrays (k+1+C, k+1+C)), ``S`` (P, k+1, C), ``status``.
    """
    from ..reference.cvx import _cvxpy, _solve

    cp = _cvxpy()
    Up = np.asarray(Uprime, dtype=np.float64)
    M = np.asarray(masks, dtype=bool)
    Y = np.asarray(Y, dtype=np.float64)
    n, k1 = Up.shape
    C, P = Y.shape[1], M.shape[1]
    Z = [cp.Variable((k1 + C, k1 + C), PSD=True) for _ in range(P)]
    fit = sum(M[:, [i]] * Up @ Z[i][:k1, k1:] for i in range(P))
    cons = []
    for i in range(P):
        Mi = np.where(M[:, [i]], 1.0, -1.0) * Up
        cons.append(Mi @ Z[i][:k1, :k1] @ Mi.T >= 0)
    penalty = sum(0.5 * cp.trace(Zi) for Zi in Z)
    status = _solve(cp, 0.5 * cp.sum_squares(fit - Y) + beta * penalty, cons)
    Zv = [np.asarray(Zi.value, dtype=np.float64) for Zi in Z]
    S = np.array([Zi[:k1, k1:] for Zi in Zv])
    F = np.einsum("np,nk,pkc->nc", M.astype(np.float64), Up, S)
    value = 0.5 * float(np.sum((F - Y) ** 2)) + beta * 0.5 * float(sum(np.trace(Zi) for Zi in Zv))
    return {"objective": value, "Z": Zv, "S": S, "status": status}


def _atoms(Zs, Up, masks, k1, rtol=1e-6):
    """Eigen-atoms of the lifted matrices as (unit h, output row) pairs; the number with no feasible sign."""
    H, W2, bad = [], [], 0
    scale = max((float(np.linalg.eigvalsh(Z)[-1]) for Z in Zs), default=0.0)
    for i, Z in enumerate(Zs):
        lam, vecs = np.linalg.eigh(0.5 * (Z + Z.T))
        Mi = np.where(masks[:, [i]], 1.0, -1.0) * Up
        for lk, z in zip(lam, vecs.T):
            if lk <= rtol * scale:
                continue
            h, g = z[:k1], z[k1:]
            hn = np.linalg.norm(h)
            if hn <= 1e-9:
                bad += 1
                continue
            margin = Mi @ h / hn
            if margin.min() < -1e-6:
                h, g, margin = -h, -g, -margin
            if margin.min() < -1e-6:
                bad += 1
                continue
            H.append(h / hn)
            W2.append(lk * hn * g)
    return np.array(H).reshape(-1, k1), np.array(W2).reshape(len(W2), -1), bad


def solve_bn_vector(
    X,
    Y,
    beta: float,
    patterns="enumerate",
    truncate=None,
    seed: int = 0,
    tol: float = 1e-9,
    max_iter: int | None = None,
) -> VectorBNResult:
    """Bracket (and, when the relaxation is tight, solve) the vector-output BN program (12).

    Parameters
    ----------
    X : array of shape (n, d)
    Y : array of shape (n, C)
        Real targets (squared loss, as in Theorem 2.3).
    beta : float >= 0
    patterns, truncate, seed
        As :func:`convexnn.bn.solve_bn`.
    tol : float
        Tolerance of the heads solve.
    max_iter : int or None

    Returns
    -------
    VectorBNResult
    """
    X = check_X(X).astype(np.float64, copy=False)
    Yv, _ = check_y(Y, X.shape[0], "squared")
    beta = check_scalar(beta, "beta", low=0.0)
    heads = solve_bn(X, Yv, beta, patterns=patterns, truncate=truncate, seed=seed, tol=tol, max_iter=max_iter)
    wh, pats = heads.whitening, heads.result.patterns
    masks = pats.dense()
    heads_net = heads.network()
    upper = heads_net.objective(X, Yv, beta)
    rel = lifted_relaxation(wh.Uprime, masks, Yv, beta)
    H, W2, bad = _atoms(rel["Z"], wh.Uprime, masks, wh.k + 1)
    rel["infeasible_atoms"] = bad
    network, exact = heads_net, False
    if bad == 0 and H.shape[0] > 0:
        atom_net = network_from_directions(H, W2, wh)
        value = atom_net.objective(X, Yv, beta)
        # The atoms' network is feasible, so value >= p* >= lower bound; tight means it meets the bound.
        if value <= rel["objective"] + 1e-6 * max(1.0, abs(rel["objective"])) and value <= upper:
            network, upper, exact = atom_net, value, True
    if rel["objective"] > upper * (1 + 1e-6) + 1e-9:
        warnings.warn(
            f"solve_bn_vector: the relaxation value {rel['objective']:.8g} exceeds the network value "
            f"{upper:.8g}; the SDP solve is inaccurate (status {rel['status']})",
            RuntimeWarning,
            stacklevel=2,
        )
    return VectorBNResult(
        lower_bound=float(rel["objective"]),
        upper_bound=float(upper),
        exact=exact,
        network=network,
        heads=heads,
        relaxation=rel,
        enumerated=heads.enumerated,
    )

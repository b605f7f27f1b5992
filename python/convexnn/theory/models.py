"""Deep linear and ReLU networks of the duality papers, their objectives and the minimal-norm rescaling.

Two architectures (Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via Convex Duality",
ICML 2021, Sec. 1.1):

* :class:`MLP`, the standard L-layer network ``f(X) = A_{L-1} W_L`` with ``A_l = g(A_{l-1} W_l + 1 b_l^T)``,
  ``A_0 = X`` and g the identity (linear) or the ReLU, optionally with unregularized biases on every hidden layer
  or on the last hidden layer only (ICML 2021, Prop. 4.1);
* :class:`ParallelMLP`, the sum of m sub-networks ``d -> m_1 -> ... -> m_{L-2} -> 1`` with output weights
  ``w_{L,j}`` (a scalar or a K-vector): ``f(X) = sum_j A_{L-1,j} w_{L,j}^T`` (ICML 2021, eq. (2)), the model of
  its strong-duality results for L > 2.  :meth:`ParallelMLP.to_mlp` gives the same function as a standard MLP with
  block-diagonal hidden layers.

Objectives (library scaling: a SUM over samples, squared loss ``1/2 ||f - y||^2``):

* :func:`weight_decay_objective`: ``L(f(X), y) + beta/2 * sum_l ||W_l||_F^2`` (ICML 2021 eq. (2); its ICLR 2021
  submission writes ``||f - y||^2 + beta * sum_l ||W_l||_F^2``, twice this value: ``form="unhalved"``);
* :func:`rescaled_objective`: the equivalent form of ICML 2021 Lemma 1.1,
  ``L + beta * sum_j ||w_{L-1,j}||_2 ||w_{L,j}||_2 + beta/2 * (L-2) * t^2`` (per sub-network t_j for the
  parallel model), which equals the weight-decay value at a rebalanced network;
* :func:`rebalance`: the minimal-norm rescaling of any network with the same output (positive homogeneity of the
  ReLU: scaling a hidden neuron's incoming weights and bias by a > 0 and its outgoing weights by 1/a changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _core
from .._validation import LOSSES, check_choice, check_scalar, check_X, check_y

ACTIVATIONS = ("linear", "relu")


def _act(Z, activation):
    return np.maximum(Z, 0.0) if activation == "relu" else Z


def _check_weights(weights, name="weights"):
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)) or len(weights) == 0:
        raise TypeError(f"{name} must be a non-empty list of 2-D arrays W_l of shape (m_(l-1), m_l)")
    out = []
    for l, W in enumerate(weights):
        W = np.array(W, dtype=np.float64)
        if l == len(weights) - 1 and W.ndim == 1:
            W = W[:, None]
        if W.ndim != 2:
            raise ValueError(f"{name}[{l}] must be 2-D; got shape {W.shape}")
        if l > 0 and W.shape[0] != out[-1].shape[1]:
            raise ValueError(f"{name}[{l}] has {W.shape[0]} rows but {name}[{l - 1}] has {out[-1].shape[1]} columns")
        if not np.isfinite(W).all():
            raise ValueError(f"{name}[{l}] contains NaN or Inf")
        out.append(W)
    return out


class MLP:
    """A standard L-layer linear or ReLU network ``f(X) = A_{L-1} W_L``, ``A_l = g(A_{l-1} W_l + 1 b_l^T)``.

    Parameters
    ----------
    weights : list of L arrays
        ``W_l`` of shape (m_(l-1), m_l), m_0 = d; the last may be 1-D (m_(L-1),) for a scalar output.
    biases : None or list of L-1 entries
        Per hidden layer None or an array (m_l,) of unregularized biases.
    activation : {"relu", "linear"}

    Attributes
    ----------
    depth : int
        L.
    output_1d : bool
        Whether :meth:`predict` returns shape (n,) (the last weight was given 1-D).
    """

    def __init__(self, weights: Sequence, biases: Sequence | None = None, activation: str = "relu"):
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.output_1d = np.ndim(weights[-1]) == 1 if isinstance(weights, (list, tuple)) and weights else False
        self.weights = _check_weights(weights)
        L = len(self.weights)
        if biases is None:
            biases = [None] * (L - 1)
        if len(biases) != L - 1:
            raise ValueError(f"biases must have one entry per hidden layer (L - 1 = {L - 1}); got {len(biases)}")
        self.biases = []
        for l, b in enumerate(biases):
            if b is not None:
                b = np.array(b, dtype=np.float64).ravel()
                if b.shape != (self.weights[l].shape[1],) or not np.isfinite(b).all():
                    raise ValueError(f"biases[{l}] must be finite with shape ({self.weights[l].shape[1]},)")
            self.biases.append(b)

    @property
    def depth(self) -> int:
        return len(self.weights)

    @property
    def widths(self) -> list:
        """[d, m_1, ..., m_{L-1}, K]."""
        return [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]

    def hidden(self, X) -> list:
        """Activations [A_1, ..., A_{L-1}] on X (n, d)."""
        A = check_X(X).astype(np.float64, copy=False)
        if A.shape[1] != self.weights[0].shape[0]:
            raise ValueError(f"X has {A.shape[1]} features but the network expects {self.weights[0].shape[0]}")
        out = []
        for W, b in zip(self.weights[:-1], self.biases):
            Z = A @ W
            if b is not None:
                Z = Z + b
            A = _act(Z, self.activation)
            out.append(A)
        return out

    def predict(self, X) -> np.ndarray:
        """Network output, shape (n,) for a 1-D last weight, else (n, K)."""
        H = self.hidden(X)
        A = H[-1] if H else check_X(X).astype(np.float64, copy=False)
        if not H and A.shape[1] != self.weights[0].shape[0]:
            raise ValueError(f"X has {A.shape[1]} features but the network expects {self.weights[0].shape[0]}")
        F = A @ self.weights[-1]
        return F[:, 0] if self.output_1d else F

    def squared_weight_norm(self) -> float:
        """sum_l ||W_l||_F^2 (biases excluded)."""
        return float(sum(np.sum(W * W) for W in self.weights))

    def copy(self) -> MLP:
        last = self.weights[-1][:, 0] if self.output_1d else self.weights[-1]
        return MLP(
            [W.copy() for W in self.weights[:-1]] + [last.copy()],
            [None if b is None else b.copy() for b in self.biases],
            self.activation,
        )

    @classmethod
    def random(
        cls,
        d: int,
        widths: Sequence[int],
        n_outputs: int = 1,
        activation: str = "relu",
        bias: str = "none",
        scale: float = 1.0,
        seed: int = 0,
        output_1d: bool | None = None,
        bias_init: float = 0.0,
    ) -> MLP:
        """A network with N(0, scale^2 / fan_in) weights (He-style) and zero biases.

        Parameters
        ----------
        d : int
        widths : sequence of int
            Hidden widths m_1, ..., m_{L-1}.
        n_outputs : int
        activation : {"relu", "linear"}
        bias : {"none", "all", "last"}
            Unregularized biases on no hidden layer, every hidden layer, or the last hidden layer only.
        scale : float
        seed : int
        output_1d : bool, optional
            Scalar output as shape (n,); default when ``n_outputs == 1``.
        bias_init : float
            Biases drawn uniformly from [-bias_init, bias_init] (spreads the ReLU kinks over the data).
        """
        d = check_scalar(d, "d", low=1, integer=True)
        n_outputs = check_scalar(n_outputs, "n_outputs", low=1, integer=True)
        bias = check_choice(bias, "bias", ("none", "all", "last"))
        scale = check_scalar(scale, "scale", low=0.0)
        widths = [
            check_scalar(int(m) if isinstance(m, np.integer) else m, "widths", low=1, integer=True) for m in widths
        ]
        rng = np.random.default_rng(seed)
        dims = [d] + widths + [n_outputs]
        weights = [
            rng.standard_normal((a, b)) * scale * np.sqrt((2.0 if activation == "relu" else 1.0) / a)
            for a, b in zip(dims[:-1], dims[1:])
        ]
        if (n_outputs == 1) if output_1d is None else output_1d:
            weights[-1] = weights[-1][:, 0]
        nh = len(widths)
        bias_init = check_scalar(bias_init, "bias_init", low=0.0)
        biases = [
            rng.uniform(-bias_init, bias_init, widths[l]) if bias == "all" or (bias == "last" and l == nh - 1) else None
            for l in range(nh)
        ]
        return cls(weights, biases, activation)

    def __repr__(self) -> str:
        kinds = "".join("b" if b is not None else "-" for b in self.biases)
        return f"MLP(widths={self.widths}, activation={self.activation!r}, biases={kinds!r})"


class ParallelMLP:
    """The parallel architecture of Ergen & Pilanci (ICML 2021, eq. (2)): m summed sub-networks.

    Sub-network j maps ``X -> A_{L-1,j} = g(... g(X W_{1,j}) ... w_{L-1,j})`` (n,) with
    ``W_{l,j}`` (m_(l-1), m_l) and a single last hidden unit; ``f(X) = sum_j A_{L-1,j} w_{L,j}^T``.

    Parameters
    ----------
    towers : list of m lists
        Tower j: ``[W_{1,j}, ..., W_{L-2,j}, w_{L-1,j}]``, the last of shape (m_(L-2),) or (m_(L-2), 1).
    output : array of shape (m,) or (m, K)
        Output weights, row j = w_{L,j}.
    activation : {"relu", "linear"}
    """

    def __init__(self, towers: Sequence, output, activation: str = "relu"):
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        if not isinstance(towers, (list, tuple)) or len(towers) == 0:
            raise TypeError("towers must be a non-empty list of sub-networks (lists of weights)")
        self.towers = [_check_weights(t, f"towers[{j}]") for j, t in enumerate(towers)]
        depths = {len(t) for t in self.towers}
        if len(depths) != 1:
            raise ValueError(f"every tower must have L - 1 layers; got depths {sorted(depths)}")
        for j, t in enumerate(self.towers):
            if t[-1].shape[1] != 1:
                raise ValueError(f"towers[{j}] must end in a single unit (last weight (m_(L-2), 1)); got {t[-1].shape}")
            if t[0].shape[0] != self.towers[0][0].shape[0]:
                raise ValueError(f"towers[{j}] has input dimension {t[0].shape[0]} != {self.towers[0][0].shape[0]}")
        self.output_1d = np.ndim(output) == 1
        out = np.array(output, dtype=np.float64).reshape(len(self.towers), -1)
        if not np.isfinite(out).all():
            raise ValueError("output contains NaN or Inf")
        self.output = out

    @property
    def depth(self) -> int:
        return len(self.towers[0]) + 1

    @property
    def n_towers(self) -> int:
        return len(self.towers)

    def tower_outputs(self, X) -> np.ndarray:
        """A_{L-1} (n, m): the last hidden unit of every sub-network."""
        X = check_X(X).astype(np.float64, copy=False)
        if X.shape[1] != self.towers[0][0].shape[0]:
            raise ValueError(f"X has {X.shape[1]} features but the network expects {self.towers[0][0].shape[0]}")
        cols = []
        for t in self.towers:
            A = X
            for W in t:
                A = _act(A @ W, self.activation)
            cols.append(A[:, 0])
        return np.stack(cols, axis=1)

    def predict(self, X) -> np.ndarray:
        F = self.tower_outputs(X) @ self.output
        return F[:, 0] if self.output_1d else F

    def squared_weight_norm(self) -> float:
        return float(sum(np.sum(W * W) for t in self.towers for W in t) + np.sum(self.output**2))

    def to_mlp(self) -> MLP:
        """The same function as a standard :class:`MLP` with block-diagonal layers 2..L-1."""
        L = self.depth
        weights = [np.hstack([t[0] for t in self.towers])]
        for l in range(1, L - 1):
            blocks = [t[l] for t in self.towers]
            W = np.zeros((sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)))
            r = c = 0
            for b in blocks:
                W[r : r + b.shape[0], c : c + b.shape[1]] = b
                r, c = r + b.shape[0], c + b.shape[1]
            weights.append(W)
        weights.append(self.output[:, 0] if self.output_1d else self.output)
        return MLP(weights, None, self.activation)

    def copy(self) -> ParallelMLP:
        out = self.output[:, 0] if self.output_1d else self.output
        return ParallelMLP([[W.copy() for W in t] for t in self.towers], out.copy(), self.activation)

    def __repr__(self) -> str:
        return f"ParallelMLP(n_towers={self.n_towers}, depth={self.depth}, activation={self.activation!r})"


def _loss(F, X, y, loss):
    loss = check_choice(loss, "loss", LOSSES)
    F = np.asarray(F, dtype=np.float64).reshape(np.shape(F)[0], -1)
    Y, _ = check_y(y, F.shape[0], loss)
    if Y.shape[1] != F.shape[1]:
        raise ValueError(f"y has {Y.shape[1]} outputs but the network has {F.shape[1]}")
    return float(_core.loss_value(np.ascontiguousarray(F), Y, loss))


def weight_decay_objective(net, X, y, beta: float, loss: str = "squared", form: str = "halved") -> float:
    """Training objective ``L(f(X), y) + beta/2 * sum_l ||W_l||_F^2`` (biases not regularized).

    Parameters
    ----------
    net : MLP or ParallelMLP
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float >= 0
    loss : str
        A library loss (sums over samples; "squared" is ``1/2 ||f - y||^2``).
    form : {"halved", "unhalved"}
        "unhalved" is the ICLR 2021 submission's eq. (2), ``||f - y||^2 + beta * sum_l ||W_l||_F^2`` (squared loss
        only), exactly twice the "halved" value.

    Returns
    -------
    float
    """
    form = check_choice(form, "form", ("halved", "unhalved"))
    beta = check_scalar(beta, "beta", low=0.0)
    if form == "unhalved" and loss != "squared":
        raise ValueError("form='unhalved' is defined for loss='squared' only")
    value = _loss(net.predict(X), X, y, loss) + 0.5 * beta * net.squared_weight_norm()
    return 2.0 * value if form == "unhalved" else value


def rescaled_objective(net, X, y, beta: float, loss: str = "squared") -> float:
    """The rescaled (l1 / group) form of ICML 2021 Lemma 1.1 at the network's normalized weights.

    Standard network: ``L + beta * sum_j ||w_{L-1,j}||_2 ||w_{L,j}||_2 + beta/2 * (L-2) * t^2`` with
    ``t = max_{l <= L-2} ||W_l||_F`` (column j of W_{L-1}, row j of W_L); the parallel network sums the last two
    terms over sub-networks with their own t_j.  It is ``<=`` :func:`weight_decay_objective` once the hidden layers
    1..L-2 have equal Frobenius norms (e.g. after :func:`rebalance`), and both have the same minimum over networks.

    Returns
    -------
    float
    """
    beta = check_scalar(beta, "beta", low=0.0)
    data = _loss(net.predict(X), X, y, loss)
    if isinstance(net, ParallelMLP):
        reg = 0.0
        for t, w in zip(net.towers, net.output):
            tj = max((np.linalg.norm(W) for W in t[:-1]), default=0.0)
            reg += np.linalg.norm(t[-1]) * np.linalg.norm(w) + 0.5 * (net.depth - 2) * tj**2
        return data + beta * reg
    W = net.weights
    t = max((np.linalg.norm(Wl) for Wl in W[:-2]), default=0.0)
    pair = float(np.sum(np.linalg.norm(W[-2], axis=0) * np.linalg.norm(W[-1], axis=1)))
    return data + beta * (pair + 0.5 * (net.depth - 2) * t**2)


def _rebalance_chain(weights, biases, max_sweeps, tol):
    """Minimize sum_l ||W_l||^2 over positive per-neuron rescalings (convex in the log-scales)."""
    W = [w.copy() for w in weights]
    b = [None if v is None else v.copy() for v in biases]
    L = len(W)
    # Exact zero-neuron clean-up (f unchanged): dead outgoing -> drop incoming; dead incoming (no bias) -> drop out.
    for l in range(L - 1):
        inc, out = np.sum(W[l] ** 2, axis=0), np.sum(W[l + 1] ** 2, axis=1)
        has_bias = np.zeros(W[l].shape[1], bool) if b[l] is None else b[l] != 0
        W[l][:, out == 0] = 0.0
        if b[l] is not None:
            b[l][out == 0] = 0.0
        W[l + 1][(inc == 0) & ~has_bias & (out > 0)] = 0.0
    # Layer-wise global scaling (prod c_l = 1) first: makes the per-neuron sweeps converge fast.
    norms = np.array([np.linalg.norm(w) for w in W])
    if (norms > 0).all():
        geo = np.exp(np.mean(np.log(norms)))
        cum = 1.0
        for l in range(L):
            c = geo / norms[l]
            W[l] *= c
            cum *= c
            if l < L - 1 and b[l] is not None:
                b[l] *= cum
    for _ in range(max_sweeps):
        worst = 0.0
        for l in range(L - 1):
            a = np.sum(W[l] ** 2, axis=0)
            o = np.sum(W[l + 1] ** 2, axis=1)
            ok = (a > 0) & (o > 0)
            alpha = np.ones_like(a)
            alpha[ok] = (o[ok] / a[ok]) ** 0.25
            worst = max(worst, float(np.abs(alpha - 1.0).max(initial=0.0)))
            W[l] *= alpha
            if b[l] is not None:
                b[l] *= alpha
            W[l + 1] /= alpha[:, None]
        if worst <= tol:
            break
    return W, b


def rebalance(net, max_sweeps: int = 100_000, tol: float = 1e-13):
    """The minimal-norm rescaling of ``net`` with the same output.

    Positive homogeneity (ICML 2021 Lemma 1.1): scaling the incoming weights and the bias of a hidden neuron by
    a > 0 and its outgoing weights by 1/a leaves f unchanged.  This minimizes ``sum_l ||W_l||_F^2`` over all such
    per-neuron scalings (a convex problem in the log-scales, solved exactly layer by layer: each neuron's optimal
    factor is ``(||out||^2 / ||in||^2)^(1/4)``).  At the result every hidden neuron has equal incoming and outgoing
    norms; in particular ``|w_{L,j}| = ||w_{L-1,j}||`` in the last two layers, and a rank-one / orthogonal chain has
    equal layer norms.  Neurons with zero outgoing weights get zero incoming weights; neurons with zero incoming
    weights and no bias get zero outgoing weights (both leave f unchanged).  A neuron with zero incoming weights
    and a nonzero bias has no minimum (its cost tends to 0 as its bias grows) and is left as it is.

    Parameters
    ----------
    net : MLP or ParallelMLP
    max_sweeps : int
        Passes over the layers.
    tol : float
        Stop when no neuron's rescaling factor in a pass differs from 1 by more than ``tol``.

    Returns
    -------
    MLP or ParallelMLP
        A new network of the same type.
    """
    max_sweeps = check_scalar(max_sweeps, "max_sweeps", low=1, integer=True)
    tol = check_scalar(tol, "tol", low=0.0)
    if isinstance(net, ParallelMLP):
        towers, out = [], []
        for t, w in zip(net.towers, net.output):
            W, _ = _rebalance_chain(list(t) + [w[None, :]], [None] * len(t), max_sweeps, tol)
            towers.append(W[:-1])
            out.append(W[-1][0])
        out = np.array(out)
        return ParallelMLP(towers, out[:, 0] if net.output_1d else out, net.activation)
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an MLP or a ParallelMLP; got {type(net).__name__}")
    W, b = _rebalance_chain(net.weights, net.biases, max_sweeps, tol)
    if net.output_1d:
        W[-1] = W[-1][:, 0]
    return MLP(W, b, net.activation)

"""Batch-normalized two-layer ReLU networks as convex programs.

Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci, "Demystifying Batch Normalization in ReLU Networks:
Equivalent Convex Optimization Models and Implicit Regularization", ICLR 2022.

>>> import convexnn.bn as bn
>>> res = bn.solve_bn(X, y, beta=0.1, patterns="enumerate")   # doctest: +SKIP  (Theorem 2.2, exact)
>>> net = res.network(); net.objective(X, y, 0.1)             # doctest: +SKIP  (= res.objective)
>>> bn.closed_form(X, y, 0.1).objective                        # doctest: +SKIP  (Theorem 2.1, n <= d)
"""

from . import export, implicit, vector, whitening
from .closed_forms import (
    ClosedFormResult,
    closed_form,
    closed_form_bn_after_relu,
    closed_form_deep,
    closed_form_vector,
    closed_form_vector_deep,
    huber,
)
from .estimators import ConvexBNReLUClassifier, ConvexBNReLURegressor
from .implicit import (
    BNTrainResult,
    PreconditioningCheck,
    bn_gradients,
    cosine_per_direction,
    preconditioning_check,
    train_bn,
    whitened_gradients,
)
from .layer import BNAfterReLUNetwork, BNReLUNetwork, bn_forward, from_torch_units, to_torch_units
from .program import BNSolveResult, bn_patterns, convex_from_network, network_from_convex, solve_bn
from .vector import VectorBNResult, lifted_relaxation, solve_bn_vector
from .whitening import DEFAULT_EXPLAINED_VARIANCE, Whitening, explained_variance_rank, whiten

__all__ = [
    "export",
    "implicit",
    "vector",
    "whitening",
    "BNAfterReLUNetwork",
    "BNReLUNetwork",
    "BNSolveResult",
    "BNTrainResult",
    "PreconditioningCheck",
    "ClosedFormResult",
    "ConvexBNReLUClassifier",
    "ConvexBNReLURegressor",
    "DEFAULT_EXPLAINED_VARIANCE",
    "Whitening",
    "bn_forward",
    "bn_gradients",
    "cosine_per_direction",
    "preconditioning_check",
    "train_bn",
    "whitened_gradients",
    "bn_patterns",
    "closed_form",
    "closed_form_bn_after_relu",
    "closed_form_deep",
    "closed_form_vector",
    "closed_form_vector_deep",
    "convex_from_network",
    "explained_variance_rank",
    "from_torch_units",
    "huber",
    "network_from_convex",
    "solve_bn",
    "solve_bn_vector",
    "lifted_relaxation",
    "to_torch_units",
    "VectorBNResult",
    "whiten",
]

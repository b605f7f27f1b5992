"""Pure-Python reference implementation of convexnn (numpy, scipy, and cvxpy for exact optima).

Written for clarity, not speed: it is the oracle that the C++/CUDA paths are tested against.
Masks are dense bool arrays (n, P), gates (d, P), coefficients (P, d, c).  ``X`` is always the
design matrix actually used (call :func:`add_bias` first for a bias column).  Conventions and
scalings are those of the public contract (docs/api.md).  Does not import anything else from convexnn.

Modules: :mod:`.patterns`, :mod:`.losses`, :mod:`.operators`, :mod:`.objectives`, :mod:`.duality`,
:mod:`.cvx` (needs cvxpy, imported lazily), :mod:`.network`.
"""

from .cvx import solve_gated_cvxpy, solve_relu_cvxpy
from .duality import gated_dual, relative_gap
from .losses import BINARY_LOSSES, LOSSES, loss_conjugate, loss_grad, loss_value, validate_targets
from .network import gated_network_predict, network_objective, network_predict, relu_network_from_convex
from .objectives import beta_max_gated, gated_objective, relative_violation, relu_objective
from .operators import adjoint, block_norms, cone_products, forward
from .patterns import (
    add_bias,
    cover_count,
    dedup_masks,
    distinct_hyperplanes,
    enumerate_bruteforce,
    flip_patterns,
    masks_from_gates,
    network_gates,
    sample_gates,
)

__all__ = [
    "add_bias",
    "cover_count",
    "dedup_masks",
    "distinct_hyperplanes",
    "enumerate_bruteforce",
    "flip_patterns",
    "masks_from_gates",
    "network_gates",
    "sample_gates",
    "BINARY_LOSSES",
    "LOSSES",
    "loss_conjugate",
    "loss_grad",
    "loss_value",
    "validate_targets",
    "adjoint",
    "block_norms",
    "cone_products",
    "forward",
    "beta_max_gated",
    "gated_objective",
    "relative_violation",
    "relu_objective",
    "gated_dual",
    "relative_gap",
    "solve_gated_cvxpy",
    "solve_relu_cvxpy",
    "gated_network_predict",
    "network_objective",
    "network_predict",
    "relu_network_from_convex",
]

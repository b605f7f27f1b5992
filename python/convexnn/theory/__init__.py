"""Closed forms, dual certificates and diagnostics of the convex-duality theory of ReLU and linear networks.

Two papers:

* Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via Convex Duality" (ICML 2021): deep linear
  networks (:func:`deep_linear`, :func:`two_layer_linear`), deep ReLU networks on rank-one data
  (:func:`rank_one_relu`, :func:`rank_one_relu_bias`) and whitened data (:func:`whitened_deep_relu`), batch
  normalization (:func:`bn_last_layers`) and Neural Collapse (:func:`neural_collapse_etf`,
  :func:`neural_collapse`);
* Ergen & Pilanci, "Convex Geometry and Duality of Over-parameterized Neural Networks" (JMLR 2021): two-layer
  ReLU networks on whitened data (:func:`whitened_two_layer`), 1-D splines (:func:`one_d_spline`), l0 forms
  (:func:`l0_interpolation`), hull-distance neurons (:func:`hull_distance_neurons`), dual checks
  (:func:`one_d_dual_check`, :func:`spike_free_ratio`) and Convex-RF (:class:`ConvexRF`).

Scaling everywhere: the library's (a SUM over samples; squared loss ``1/2 ||f - y||^2``; weight decay
``beta/2 sum_l ||W_l||_F^2``; biases unregularized).  Each function states the paper's theorem, its assumptions
(checked at run time: ValueError naming the assumption) and any conversion of the paper's scaling.
"""

from ._common import TheoryResult
from .collapse import ETF, CollapseReport, neural_collapse, neural_collapse_etf, simplex_etf
from .convex_rf import ConvexRF, normalize_patches
from .duals import (
    GapReport,
    duality_gap,
    extreme_points,
    hull_distance_neurons,
    project_dual_ball,
    relu_dual_constraint,
    spike_free_ratio,
)
from .linear import balanced_factors, deep_linear, two_layer_linear
from .models import MLP, ParallelMLP, rebalance, rescaled_objective, weight_decay_objective
from .one_d import OneDSpline, detect_kinks, hinge_dictionary, one_d_dual_check, one_d_spline
from .relu import (
    BNReLUHead,
    bn_forward,
    bn_from_standard,
    bn_last_layers,
    bn_to_standard,
    rank_one_relu,
    rank_one_relu_bias,
)
from .trainers import TrainResult, alignment, layer_norms, layer_ranks, neuron_projections, train
from .whitened import Whitening, l0_interpolation, whiten, whitened_deep_relu, whitened_two_layer

__all__ = [
    "alignment",
    "balanced_factors",
    "bn_forward",
    "bn_from_standard",
    "bn_last_layers",
    "bn_to_standard",
    "BNReLUHead",
    "CollapseReport",
    "ConvexRF",
    "deep_linear",
    "detect_kinks",
    "duality_gap",
    "ETF",
    "extreme_points",
    "GapReport",
    "hinge_dictionary",
    "hull_distance_neurons",
    "l0_interpolation",
    "layer_norms",
    "layer_ranks",
    "MLP",
    "neural_collapse",
    "neural_collapse_etf",
    "neuron_projections",
    "normalize_patches",
    "one_d_dual_check",
    "one_d_spline",
    "OneDSpline",
    "ParallelMLP",
    "project_dual_ball",
    "rank_one_relu",
    "rank_one_relu_bias",
    "rebalance",
    "relu_dual_constraint",
    "rescaled_objective",
    "simplex_etf",
    "spike_free_ratio",
    "TheoryResult",
    "train",
    "TrainResult",
    "two_layer_linear",
    "weight_decay_objective",
    "whiten",
    "whitened_deep_relu",
    "whitened_two_layer",
    "Whitening",
]

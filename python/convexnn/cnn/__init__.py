"""Convolutional two-layer networks as convex programs (Pilanci & Ergen, ICML 2020, Section 4, A.1, A.5-A.7)."""

from .circular import CircularCNNResult, circular_patches, fourier_features, solve_circular_cnn
from .estimators import ConvexCNNClassifier, ConvexCNNRegressor
from .generation import solve_relu_cnn_generating
from .linear import LinearCNNResult, linear_cnn_beta_max, solve_linear_cnn
from .network import GatedReLUCNN, LinearCNN, ReLUCNN
from .operator import PatchOperator, operator_interface_available
from .patches import extract_patches, patch_grid
from .patterns import cluster_gates, gaussian_patterns, network_gates, patterns_from_gates, stacked_patches
from .relu import ReLUCNNResult, network_warm_start, relu_cnn_beta_max, solve_relu_cnn
from .trainer import CNNTrainingResult, train_cnn

__all__ = [
    "circular_patches",
    "CircularCNNResult",
    "cluster_gates",
    "CNNTrainingResult",
    "ConvexCNNClassifier",
    "ConvexCNNRegressor",
    "extract_patches",
    "fourier_features",
    "GatedReLUCNN",
    "gaussian_patterns",
    "linear_cnn_beta_max",
    "LinearCNN",
    "LinearCNNResult",
    "network_gates",
    "network_warm_start",
    "operator_interface_available",
    "patch_grid",
    "PatchOperator",
    "patterns_from_gates",
    "relu_cnn_beta_max",
    "ReLUCNN",
    "ReLUCNNResult",
    "solve_circular_cnn",
    "solve_linear_cnn",
    "solve_relu_cnn",
    "solve_relu_cnn_generating",
    "stacked_patches",
    "train_cnn",
]

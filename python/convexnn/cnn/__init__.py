"""Convolutional two-layer networks as convex programs (Pilanci & Ergen, ICML 2020, Section 4, A.1, A.5-A.7)."""

from .circular import CircularCNNResult, circular_patches, fourier_features, solve_circular_cnn
from .linear import LinearCNNResult, linear_cnn_beta_max, solve_linear_cnn
from .network import GatedReLUCNN, LinearCNN, ReLUCNN
from .patches import extract_patches, patch_grid
from .trainer import CNNTrainingResult, train_cnn

__all__ = ["CNNTrainingResult", "CircularCNNResult", "circular_patches", "fourier_features", "solve_circular_cnn", "GatedReLUCNN", "LinearCNN", "LinearCNNResult", "ReLUCNN", "extract_patches",
           "linear_cnn_beta_max", "patch_grid", "solve_linear_cnn", "train_cnn"]

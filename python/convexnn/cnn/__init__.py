"""Convolutional two-layer networks as convex programs (Pilanci & Ergen, ICML 2020, Section 4, A.1, A.5-A.7)."""

from .patches import extract_patches, patch_grid

__all__ = ["extract_patches", "patch_grid"]

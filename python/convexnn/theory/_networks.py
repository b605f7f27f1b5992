"""Helpers that turn unit-norm (l1-form) neurons into balanced weight-decay networks."""

from __future__ import annotations

import numpy as np

from .models import MLP


def balanced_two_layer(U, W, biases=None, output_1d=True) -> MLP:
    """Two-layer ReLU MLP from unit-norm neurons U (d, m), output weights W (m,) or (m, K), optional biases (m,).

    Neuron j is rescaled by ``a_j = sqrt(||w_j||)`` (u_j, b_j times a_j, w_j over a_j), so that
    ``beta/2 (||W_1||_F^2 + ||W_2||_F^2) = beta * sum_j ||u_j|| ||w_j||`` (Ergen & Pilanci, JMLR 2021, Lemma 1):
    the weight-decay value equals the l1-form value.  Zero neurons are dropped (one zero neuron is kept when
    all are zero).
    """
    U = np.asarray(U, dtype=np.float64).reshape(U.shape[0], -1)
    W2 = np.asarray(W, dtype=np.float64).reshape(U.shape[1], -1)
    norms = np.linalg.norm(W2, axis=1) * np.linalg.norm(U, axis=0)
    keep = norms > 0
    if not keep.any():
        keep = np.zeros(U.shape[1], bool)
        U, W2 = np.zeros((U.shape[0], 1)), np.zeros((1, W2.shape[1]))
        b = None if biases is None else np.zeros(1)
        return MLP([U, W2[:, 0] if output_1d else W2], [b], "relu")
    U, W2 = U[:, keep], W2[keep]
    a = np.sqrt(np.linalg.norm(W2, axis=1) / np.linalg.norm(U, axis=0))
    b = None if biases is None else np.asarray(biases, dtype=np.float64)[keep] * a
    W2 = W2 / a[:, None]
    return MLP([U * a, W2[:, 0] if output_1d else W2], [b], "relu")

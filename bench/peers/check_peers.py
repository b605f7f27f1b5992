"""Smoke check of a peer environment: versions and one tiny solve (used by setup_peers.sh)."""

import sys

import numpy as np


def check_scnn():
    import torch
    from scnn.activations import sample_gate_vectors
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import RFISTA

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 5)), rng.standard_normal((200, 1))
    G = sample_gate_vectors(0, 5, 20)
    model = ConvexGatedReLU(G)
    model, metrics = optimize_model(
        model, RFISTA(model), Metrics(), X, y, regularizer=NeuronGL1(0.01), unitize_data=False
    )
    print(f"scnn OK (torch {torch.__version__}); objective trace length {len(metrics.objective)}")


def check_adelie():
    import adelie as ad

    print(f"adelie OK ({ad.__version__})")


if __name__ == "__main__":
    {"scnn": check_scnn, "adelie": check_adelie}[sys.argv[1]]()

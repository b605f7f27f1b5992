"""bench/cnn_vs_torch.py scores PyTorch runs with the library's objective: its im2col PyTorch model is the
sum-pooled ReLU CNN of convexnn.cnn (Pilanci & Ergen, ICML 2020, Appendix A.1) with the same predictions, the
PyTorch training loss is that objective divided by n, and the harness helpers pick the right times."""

import sys
from pathlib import Path

import numpy as np
import pytest

from convexnn.cnn import extract_patches
from convexnn.cnn.network import add_patch_bias

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import cnn_vs_torch as bench  # noqa: E402


def test_first_time_is_the_first_point_at_or_below_the_target():
    curve = [(0.0, 9.0), (1.0, 5.0), (2.0, 4.0), (3.0, 3.0)]
    assert bench.first_time(curve, 4.0) == 2.0
    assert bench.first_time(curve, 9.0) == 0.0
    assert bench.first_time(curve, 2.9) is None


def test_mapped_network_has_the_objective_of_its_filters():
    rng = np.random.default_rng(0)
    P = extract_patches(rng.standard_normal((7, 5, 5)), 3)  # K = 9, h = 9
    y = np.where(rng.standard_normal(7) > 0, 1.0, -1.0)
    U, a = rng.standard_normal((10, 4)), rng.standard_normal(4)
    net = bench.torch_to_relucnn(U, a)
    Pb = add_patch_bias(P)
    f = np.maximum(Pb @ U, 0).sum(axis=1) @ a
    np.testing.assert_allclose(net.predict(P), f, rtol=1e-12)
    beta = 0.3
    expected = np.logaddexp(0, -y * f).sum() + 0.5 * beta * (np.sum(U**2) + np.sum(a**2))
    assert net.objective(P, y, beta, loss="logistic") == pytest.approx(expected, rel=1e-12)


def test_torch_model_and_loss_are_the_librarys():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; run in a venv with torch (bench only)")
    rng = np.random.default_rng(1)
    images = rng.standard_normal((6, 6, 6))
    P = extract_patches(images, 3)
    y = np.where(rng.standard_normal(6) > 0, 1.0, -1.0)
    U, a = rng.standard_normal((10, 5)), rng.standard_normal(5)
    Pt = torch.as_tensor(add_patch_bias(P))
    out = bench.torch_forward(torch, Pt, torch.as_tensor(U), torch.as_tensor(a)).numpy()
    net = bench.torch_to_relucnn(U, a)
    np.testing.assert_allclose(out, net.predict(P), rtol=1e-12)
    # the im2col filters are Conv2d's: same outputs before pooling
    conv = torch.nn.Conv2d(1, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(U[:9].T.reshape(5, 1, 3, 3)))
        conv.bias.copy_(torch.as_tensor(U[9]))
        z = torch.relu(conv(torch.as_tensor(images[:, None]))).sum(dim=(2, 3)) @ torch.as_tensor(a)
    np.testing.assert_allclose(z.numpy(), net.predict(P), rtol=1e-10)
    # the training loss times n is the library objective
    beta, n = 0.7, len(y)
    loss = torch.nn.functional.softplus(-torch.as_tensor(y) * torch.as_tensor(out)).mean() + (0.5 * beta / n) * (
        float(np.sum(U**2)) + float(np.sum(a**2))
    )
    assert float(loss) * n == pytest.approx(net.objective(P, y, beta, loss="logistic"), rel=1e-12)


def test_a_short_torch_run_decreases_the_library_objective():
    pytest.importorskip("torch", reason="PyTorch is not installed; run in a venv with torch (bench only)")
    rng = np.random.default_rng(2)
    P = extract_patches(rng.standard_normal((40, 6, 6)), 3)
    task = dict(Ptr=P, ytr=np.where(rng.standard_normal(40) > 0, 1.0, -1.0), beta=0.5)
    snaps = bench.train_torch(task, 4, "adam", 1e-2, 16, 0, 0.3, 2)
    curve, (best, net) = bench.score_snapshots(task, snaps)
    assert len(curve) >= 2 and curve[-1][1] < curve[0][1]
    assert best == pytest.approx(net.objective(P, task["ytr"], 0.5, loss="logistic"))

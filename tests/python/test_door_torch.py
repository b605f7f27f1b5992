"""to_torch(): the module's dtype follows what it exports (float32 fits export float32), both float widths of input
work, and CPU torch tensors given to predict / decision_function / predict_proba come back as numpy arrays.

PyTorch is optional (several GB): without it these tests skip with that message. The torch-free parts (GPU-tensor
refusal, the dtype rule) are tested with stand-ins below so they run everywhere.
"""

import numpy as np
import pytest

import convexnn as cnn
from convexnn import export
from convexnn._validation import torch_to_numpy
from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

NO_TORCH = "PyTorch is optional and not installed here (pip install torch to run the export tests)"


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.maximum(X[:, 0], 0) - 0.5 * X[:, 1]


def test_estimator_dtype_follows_the_solve_then_the_parameter():
    X, y = _data()
    reg64 = ConvexReLURegressor(formulation="gated", n_patterns=10).fit(X, y)
    reg32 = ConvexReLURegressor(formulation="gated", n_patterns=10, tol=1e-4).fit(X.astype(np.float32), y)
    assert export.estimator_dtype(reg64) == np.float64
    assert export.estimator_dtype(reg32) == np.float32
    reg32.result_ = None  # as io.load leaves it: the dtype parameter, else float64
    assert export.estimator_dtype(reg32) == np.float64
    reg32.set_params(dtype="float32")
    assert export.estimator_dtype(reg32) == np.float32


def test_non_torch_values_pass_through_unchanged():
    X = np.ones((2, 2))
    assert torch_to_numpy(X) is X
    assert torch_to_numpy([1, 2]) == [1, 2]


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason=NO_TORCH)


def test_float32_fit_exports_float32_and_takes_either_width(torch):
    X, y = _data(seed=1)
    X32 = X.astype(np.float32)
    reg = ConvexReLURegressor(formulation="gated", n_patterns=20, tol=1e-4).fit(X32, y)
    module = reg.to_torch()
    assert module.mean.dtype == torch.float32
    out32 = module(torch.as_tensor(X32))
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.detach().numpy(), reg.predict(X32), rtol=1e-4, atol=1e-4)
    out64 = module(torch.as_tensor(X))  # float64 input is cast to the module's float32
    assert out64.dtype == torch.float32
    assert reg.to_torch(dtype=np.float64)(torch.as_tensor(X32)).dtype == torch.float64


@pytest.mark.parametrize("gated", [False, True])
def test_network_modules_are_float64_and_accept_float32_input(torch, gated):
    rng = np.random.default_rng(2)
    W1, w2 = rng.standard_normal((5, 4)), rng.standard_normal(5)
    net = cnn.GatedNetwork(rng.standard_normal((4, 5)), W1, w2, bias=True) if gated else cnn.Network(W1, w2, bias=True)
    module = net.to_torch()
    X = rng.standard_normal((9, 3))
    out = module(torch.as_tensor(X, dtype=torch.float32))
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.detach().numpy(), net.predict(X.astype(np.float32)), rtol=1e-12)


def test_predict_helpers_turn_cpu_tensors_into_numpy(torch):
    X, y = _data(seed=3)
    reg = ConvexReLURegressor(formulation="gated", n_patterns=20).fit(X, y)
    t = torch.as_tensor(X).requires_grad_(True)  # detached on the way in
    got = reg.predict(t)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, reg.predict(X))
    assert isinstance(reg.network_.predict(t[:, :]), np.ndarray)
    labels = np.where(y > 0, "pos", "neg")
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=20).fit(X, labels)
    for method in ("predict", "decision_function", "predict_proba"):
        out = getattr(clf, method)(torch.as_tensor(X))
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, getattr(clf, method)(X))

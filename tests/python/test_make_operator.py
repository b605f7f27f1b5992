"""convexnn._operators.make_operator: the one constructor of the masked operators (dtype, product method, the
CONVEXNN_PRODUCT_METHOD override, device), checked against the numpy reference of A(U) = sum_i D_i X U_i."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn import _core
from convexnn._operators import PRODUCT_METHOD_ENV, make_operator, product_method
from convexnn.reference import operators as ref


def _problem(n=120, d=5, P=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    pats = cnn.sample_patterns(X, n_patterns=P, seed=seed)
    return X, pats, rng


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(PRODUCT_METHOD_ENV, raising=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["auto", "gemm", "tables"])
def test_products_match_the_reference_for_every_dtype_and_method(dtype, method):
    X, pats, rng = _problem()
    op = make_operator(X, pats, dtype, method=method)
    assert isinstance(op, _core.MaskedOperatorF32 if dtype == np.float32 else _core.MaskedOperatorF64)
    assert op.method == method
    masks = pats.dense()
    U = rng.standard_normal((pats.n_patterns, X.shape[1], 2))
    R = rng.standard_normal((X.shape[0], 2))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(op.forward(U.astype(dtype)), ref.forward(X, masks, U), rtol=tol, atol=tol)
    np.testing.assert_allclose(op.adjoint(R.astype(dtype)), ref.adjoint(X, masks, R), rtol=tol, atol=tol)


def test_dtype_none_keeps_the_inputs_and_patterns_may_be_sets_or_masks():
    X, pats, rng = _problem(seed=1)
    assert isinstance(make_operator(X, pats), _core.MaskedOperatorF64)
    assert isinstance(make_operator(X.astype(np.float32), pats), _core.MaskedOperatorF32)
    U = rng.standard_normal((pats.n_patterns, X.shape[1]))
    expected = make_operator(X, pats).forward(U)
    np.testing.assert_array_equal(make_operator(X, pats._set).forward(U), expected)
    np.testing.assert_array_equal(make_operator(X, pats.dense()).forward(U), expected)
    # float32 X built as float64: converted (the certificates of float32 iterations)
    op = make_operator(X.astype(np.float32), pats, np.float64)
    assert isinstance(op, _core.MaskedOperatorF64)


@pytest.mark.parametrize("env", ["gemm", "tables"])
def test_environment_variable_overrides_auto_only(monkeypatch, env):
    X, pats, _ = _problem(seed=2)
    monkeypatch.setenv(PRODUCT_METHOD_ENV, env)
    assert make_operator(X, pats).method == env
    assert product_method(np.float64) == env
    other = "tables" if env == "gemm" else "gemm"
    assert make_operator(X, pats, method=other).method == other  # an explicit method wins


def test_amx_from_the_environment_leaves_float64_on_auto(monkeypatch):
    monkeypatch.setenv(PRODUCT_METHOD_ENV, "amx")
    assert product_method(np.float64) == "auto"
    assert product_method(np.float32) == "amx"
    X, pats, _ = _problem(seed=3)
    assert make_operator(X, pats, np.float64).method == "auto"
    with pytest.raises(ValueError, match="float32 product method"):
        make_operator(X, pats, np.float64, method="amx")


def test_errors_name_the_argument(monkeypatch):
    X, pats, _ = _problem(seed=4)
    with pytest.raises(ValueError, match="GPU path .* not available in this build"):
        make_operator(X, pats, device="cuda")
    with pytest.raises(ValueError, match="device"):
        make_operator(X, pats, device="gpu")
    with pytest.raises(ValueError, match="method must be one of"):
        make_operator(X, pats, method="fastest")
    with pytest.raises(ValueError, match="dtype"):
        make_operator(X, pats, np.float16)
    with pytest.raises(TypeError, match="dtype"):
        make_operator(X, pats, "not a dtype")
    with pytest.raises(ValueError, match="2-D"):
        make_operator(X[:, 0], pats)
    monkeypatch.setenv(PRODUCT_METHOD_ENV, "fastest")
    with pytest.raises(ValueError, match=PRODUCT_METHOD_ENV):
        make_operator(X, pats)


def test_solve_builds_its_operators_here(monkeypatch):
    """solve() reads the override through make_operator: a bad value fails there, a good one changes nothing."""
    X, pats, _ = _problem(n=60, d=3, P=12, seed=5)
    y = np.sin(X[:, 0])
    beta = 0.1 * cnn.beta_max(X, y, pats)
    base = cnn.solve(X, y, beta, patterns=pats, tol=1e-8)
    monkeypatch.setenv(PRODUCT_METHOD_ENV, "gemm")
    assert cnn.solve(X, y, beta, patterns=pats, tol=1e-8).objective == pytest.approx(base.objective, rel=1e-7)
    monkeypatch.setenv(PRODUCT_METHOD_ENV, "wrong")
    with pytest.raises(ValueError, match=PRODUCT_METHOD_ENV):
        cnn.solve(X, y, beta, patterns=pats)


def test_bf16_is_a_float32_method_from_the_argument_and_the_environment(monkeypatch):
    from convexnn._operators import product_method

    with pytest.raises(ValueError, match="bf16"):
        product_method(np.float64, "bf16")
    monkeypatch.setenv("CONVEXNN_PRODUCT_METHOD", "bf16")
    assert product_method(np.float64) == "auto"
    assert product_method(np.float32) == "bf16"

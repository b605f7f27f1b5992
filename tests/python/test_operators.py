"""convexnn._core.MaskedOperatorF64/F32 against the numpy reference (convexnn.reference.operators).

Random shapes hit every tiling path of the C++ kernels (n < 64, n = 64 / 128, n not a multiple of 64,
several row tiles, several pattern blocks, P = 1, c = 1 and 3, C- and F-ordered X, subsets).
"""

import numpy as np
import pytest

from convexnn import _core
from convexnn.reference import operators as ref

OPERATORS = {np.float64: _core.MaskedOperatorF64, np.float32: _core.MaskedOperatorF32}
RTOL = {np.float64: 1e-12, np.float32: 1e-4}

# (n, d, P): n < 64, n = 64 and 128, n % 64 != 0, one tile with many patterns, many tiles, P = 1, d = 1.
SHAPES = [
    (37, 4, 5),
    (64, 3, 6),
    (128, 5, 4),
    (200, 6, 9),
    (300, 5, 600),
    (1500, 4, 3),
    (333, 7, 1),
    (700, 1, 7),
    (1, 3, 2),
    (260, 50, 70),
]
METHODS = ["gemm", "tables"]  # GEMM tiles with mask epilogues; subset-sum tables (masked_tables.cpp)
# float32 also has the AMX tile products (masked_amx.cpp) and the AVX-512 BF16 products (masked_bf16.cpp;
# more of their tests in test_bf16_products.py) where the CPU and OS allow them.
METHOD_DTYPES = [(m, dt) for m in METHODS for dt in (np.float64, np.float32)] + [
    ("amx", np.float32),
    ("bf16", np.float32),
]
NO_AMX = "this machine cannot run AMX tiles (convexnn._core.amx_available() is False)"
NO_BF16 = "this CPU cannot run the bf16 products (convexnn._core.bf16_available() is False)"


def _need(method):
    if method == "amx" and not _core.amx_available():
        pytest.skip(NO_AMX)
    if method == "bf16" and not _core.bf16_available():
        pytest.skip(NO_BF16)


def _problem(n, d, P, seed, dtype=np.float64, order="C"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    masks = (X @ rng.standard_normal((d, P))) >= 0
    if P >= 4:  # an all-ones, an all-zero and a random-bits pattern
        masks[:, 1] = True
        masks[:, 2] = False
        masks[:, 3] = rng.random(n) < 0.5
    return np.asarray(X, dtype=dtype, order=order), masks, rng


def _close(got, want, dtype):
    """|got - want| <= rtol * max(1, max |want|), the scale of the whole result."""
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=0, atol=RTOL[dtype] * scale)


@pytest.mark.parametrize("method,dtype", METHOD_DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n,d,P", SHAPES)
def test_products_match_reference(n, d, P, order, dtype, method):
    _need(method)
    X, masks, rng = _problem(n, d, P, seed=n * 31 + P, dtype=dtype, order=order)
    op = OPERATORS[dtype](X, masks, method=method)
    assert op.method == method
    assert (op.n_samples, op.block_dim, op.n_blocks) == (n, d, P)
    assert op.dtype == np.dtype(dtype)
    Xd = X.astype(np.float64)
    subsets = [None, np.array([P - 1, 0, P - 1])] + ([np.array([2, 1])] if P > 3 else [])
    for subset in subsets:
        S = P if subset is None else len(subset)
        for c in (1, 3):
            U = rng.standard_normal((S, d, c)).astype(dtype)
            R = rng.standard_normal((n, c)).astype(dtype)
            _close(op.forward(U, subset), ref.forward(Xd, masks, U.astype(np.float64), subset), dtype)
            _close(op.adjoint(R, subset), ref.adjoint(Xd, masks, R.astype(np.float64), subset), dtype)
            cone = ref.cone_products(Xd, masks, U.astype(np.float64), subset)  # (S, n, c)
            want = np.maximum(np.max(-cone, axis=1, initial=0.0), 0.0)
            _close(op.cone_violation(U, subset), want, dtype)


def test_vector_shapes_squeeze():
    X, masks, rng = _problem(90, 4, 6, seed=1)
    op = _core.MaskedOperatorF64(X, masks)
    U = rng.standard_normal((6, 4))
    r = rng.standard_normal(90)
    z = op.forward(U)
    assert z.shape == (90,)
    _close(z, ref.forward(X, masks, U[:, :, None])[:, 0], np.float64)
    G = op.adjoint(r)
    assert G.shape == (6, 4)
    _close(G, ref.adjoint(X, masks, r)[:, :, 0], np.float64)
    assert op.cone_violation(U).shape == (6,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adjointness(dtype):
    X, masks, rng = _problem(517, 6, 40, seed=2, dtype=dtype, order="F")
    op = OPERATORS[dtype](X, masks)
    for c in (1, 2):
        U = rng.standard_normal((40, 6, c)).astype(dtype)
        R = rng.standard_normal((517, c)).astype(dtype)
        lhs = float(np.sum(op.forward(U).astype(np.float64) * R))
        rhs = float(np.sum(U.astype(np.float64) * op.adjoint(R)))
        assert lhs == pytest.approx(rhs, rel=RTOL[dtype] * 10, abs=RTOL[dtype])


def test_subset_forms_are_equivalent():
    X, masks, rng = _problem(150, 3, 8, seed=3)
    op = _core.MaskedOperatorF64(X, masks)
    sel = np.zeros(8, dtype=bool)
    sel[[1, 5, 6]] = True
    U = rng.standard_normal((3, 3, 2))
    want = op.forward(U, np.array([1, 5, 6]))
    np.testing.assert_array_equal(op.forward(U, sel), want)
    np.testing.assert_array_equal(op.forward(U, [1, 5, 6]), want)
    np.testing.assert_array_equal(op.forward(U, np.array([-7, -3, -2], dtype=np.int32)), want)
    # An empty subset: zero prediction, no blocks.
    assert np.all(op.forward(np.zeros((0, 3, 2)), np.array([], dtype=np.int64)) == 0)
    assert op.adjoint(rng.standard_normal((150, 2)), []).shape == (0, 3, 2)


def test_block_gram_and_lipschitz():
    X, masks, _ = _problem(300, 5, 9, seed=4)
    op = _core.MaskedOperatorF64(X, masks)
    want = []
    for i in range(9):
        Xi = X[masks[:, i]]
        np.testing.assert_allclose(op.block_gram(i), Xi.T @ Xi, rtol=0, atol=1e-12 * max(1.0, np.abs(Xi.T @ Xi).max()))
        want.append(np.linalg.norm(Xi, 2) ** 2 if len(Xi) else 0.0)
    want = np.array(want)
    np.testing.assert_allclose(op.block_lipschitz(), want, rtol=1e-10)
    np.testing.assert_allclose(op.block_lipschitz(method="gram"), want, rtol=1e-10)
    power = op.block_lipschitz(method="power")
    np.testing.assert_allclose(power, want, rtol=1e-6)
    assert np.all(power <= want * (1 + 1e-12))  # power iteration approaches from below
    np.testing.assert_allclose(op.block_lipschitz(np.array([8, 0])), want[[8, 0]], rtol=1e-10)
    f32 = _core.MaskedOperatorF32(X.astype(np.float32), masks)
    np.testing.assert_allclose(f32.block_lipschitz(), want, rtol=1e-4)


def test_threads_give_identical_results():
    X, masks, rng = _problem(1500, 5, 300, seed=5)
    op = _core.MaskedOperatorF64(X, masks)
    U = rng.standard_normal((300, 5, 2))
    R = rng.standard_normal((1500, 2))
    saved = _core.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            _core.set_num_threads(threads)
            out.append((op.forward(U), op.adjoint(R), op.cone_violation(U)))
    finally:
        _core.set_num_threads(saved)
    for a, b in zip(out[0], out[1]):
        np.testing.assert_array_equal(a, b)


def test_block_norms():
    rng = np.random.default_rng(6)
    U = rng.standard_normal((5, 4, 3))
    np.testing.assert_allclose(_core.block_norms(U), ref.block_norms(U, "output"), rtol=1e-14)
    np.testing.assert_allclose(_core.block_norms(U, "neuron"), ref.block_norms(U, "neuron"), rtol=1e-14)
    U2 = np.ascontiguousarray(U[:, :, 0])
    np.testing.assert_allclose(_core.block_norms(U2), np.linalg.norm(U2, axis=1), rtol=1e-14)
    np.testing.assert_allclose(_core.block_norms(U.astype(np.float32)), ref.block_norms(U, "output"), rtol=1e-5)
    with pytest.raises(ValueError, match="groups"):
        _core.block_norms(U, "rows")


def test_operator_keeps_its_arrays_alive():
    X, masks, rng = _problem(200, 4, 7, seed=7)
    want = ref.forward(X, masks, np.ones((7, 4, 1)))
    op = _core.MaskedOperatorF64(np.array(X), np.array(masks))  # temporaries: only the operator holds them
    import gc

    gc.collect()
    _close(op.forward(np.ones((7, 4, 1))), want, np.float64)


def test_kernel_isa_is_reported():
    assert _core.masked_kernel_isa() in {"avx512", "avx2", "generic"}


def test_bad_input_raises_value_error_naming_the_argument():
    X, masks, _ = _problem(50, 3, 4, seed=8)
    op = _core.MaskedOperatorF64(X, masks)
    U = np.zeros((4, 3, 1))
    with pytest.raises(ValueError, match="X must have dtype float64"):
        _core.MaskedOperatorF64(X.astype(np.float32), masks)
    with pytest.raises(ValueError, match="X must be a numpy.ndarray"):
        _core.MaskedOperatorF64(X.tolist(), masks)
    with pytest.raises(ValueError, match="X must be C- or F-contiguous"):
        _core.MaskedOperatorF64(np.zeros((100, 6))[::2, ::2], masks)
    with pytest.raises(ValueError, match="patterns"):
        _core.MaskedOperatorF64(X, masks[:-1])
    with pytest.raises(ValueError, match="patterns"):
        _core.MaskedOperatorF64(X, masks.astype(np.int8))
    with pytest.raises(ValueError, match="U must have dtype float64"):
        op.forward(U.astype(np.float32))
    with pytest.raises(ValueError, match="U must have shape"):
        op.forward(np.zeros((3, 3, 1)))
    with pytest.raises(ValueError, match="U must have shape"):
        op.forward(np.zeros((4, 2, 1)))
    with pytest.raises(ValueError, match="U must be C-contiguous"):
        op.forward(np.zeros((4, 3, 2))[:, :, :1])
    with pytest.raises(ValueError, match="R must have shape"):
        op.adjoint(np.zeros(49))
    with pytest.raises(ValueError, match="V must have shape"):
        op.cone_violation(np.zeros((4, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"subset\[1\] = 4 is out of range"):
        op.forward(np.zeros((2, 3, 1)), np.array([0, 4]))
    with pytest.raises(ValueError, match="subset must hold integer"):
        op.forward(np.zeros((2, 3, 1)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="boolean subset must have length"):
        op.forward(np.zeros((1, 3, 1)), np.array([True, False]))
    with pytest.raises(ValueError, match="subset must be 1-D"):
        op.forward(np.zeros((1, 3, 1)), np.array([[0]]))
    with pytest.raises(ValueError, match="i = 4 is out of range"):
        op.block_gram(4)
    with pytest.raises(ValueError, match="method"):
        op.block_lipschitz(method="lanczos")


def test_pattern_set_operator_matches_dense_masks():
    if not hasattr(_core, "PatternSet"):
        pytest.skip("convexnn._core.PatternSet is not bound in this build yet")
    import gc

    rng = np.random.default_rng(9)
    X = rng.standard_normal((230, 4))
    pats = _core.PatternSet.from_gates(X, np.ascontiguousarray(rng.standard_normal((12, 4))))
    masks = np.asarray(pats.dense(), dtype=bool)
    op = _core.MaskedOperatorF64(X, pats)
    del pats
    gc.collect()  # the operator keeps the PatternSet alive
    U = rng.standard_normal((masks.shape[1], 4, 2))
    _close(op.forward(U), ref.forward(X, masks, U), np.float64)
    np.testing.assert_array_equal(op.forward(U), _core.MaskedOperatorF64(X, masks).forward(U))


def test_product_method_choice_and_validation():
    X, masks, rng = _problem(500, 8, 200, seed=4)
    op = _core.MaskedOperatorF64(X, masks)
    assert op.method == "auto"
    assert op.uses_tables()  # many patterns: the tables pay off
    assert not op.uses_tables(1, 2)  # two patterns: GEMM tiles
    op.method = "gemm"
    assert not op.uses_tables()
    with pytest.raises(ValueError, match="method"):
        _core.MaskedOperatorF64(X, masks, method="fast")
    with pytest.raises(ValueError, match="method"):
        op.method = "fast"
    # The two methods agree to rounding on the same products (the Auto choice is not observable otherwise).
    U = rng.standard_normal((200, 8))
    R = rng.standard_normal(500)
    gemm = _core.MaskedOperatorF64(X, masks, method="gemm")
    tables = _core.MaskedOperatorF64(X, masks, method="tables")
    _close(tables.forward(U), gemm.forward(U), np.float64)
    _close(tables.adjoint(R), gemm.adjoint(R), np.float64)


def test_amx_method_choice_and_validation():
    X, masks, rng = _problem(500, 8, 200, seed=5, dtype=np.float32)
    with pytest.raises(ValueError, match="float32 only"):
        _core.MaskedOperatorF64(X.astype(np.float64), masks, method="amx")
    op = _core.MaskedOperatorF32(X, masks)
    if not _core.amx_available():
        assert op.resolved_method() == "tables"
        with pytest.raises(ValueError, match="needs Intel AMX"):
            _core.MaskedOperatorF32(X, masks, method="amx")
        return
    assert op.resolved_method() == "amx"  # where the tables would run, float32 takes AMX
    assert op.resolved_method(1, 2) == "gemm"
    assert _core.MaskedOperatorF64(X.astype(np.float64), masks).resolved_method() == "tables"
    amx = _core.MaskedOperatorF32(X, masks, method="amx")
    assert amx.method == "amx" and not amx.uses_tables()
    # Float32 rounding: AMX, the tables and the float64 reference agree to float32 accuracy.
    U = rng.standard_normal((200, 8, 1)).astype(np.float32)
    R = rng.standard_normal((500, 1)).astype(np.float32)
    tables = _core.MaskedOperatorF32(X, masks, method="tables")
    for got in (amx.forward(U), tables.forward(U)):
        _close(got, ref.forward(X.astype(np.float64), masks, U.astype(np.float64)), np.float32)
    for got in (amx.adjoint(R), tables.adjoint(R)):
        _close(got, ref.adjoint(X.astype(np.float64), masks, R.astype(np.float64)), np.float32)
    # Bitwise identical for every thread count.
    saved = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        z1, g1 = amx.forward(U), amx.adjoint(R)
        _core.set_num_threads(2)
        np.testing.assert_array_equal(amx.forward(U), z1)
        np.testing.assert_array_equal(amx.adjoint(R), g1)
    finally:
        _core.set_num_threads(saved)


def _problem_for_solves(seed, n, n_patterns, pattern_seed):
    import convexnn as cnn

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    y = np.maximum(X @ rng.standard_normal(6), 0) + 0.1 * rng.standard_normal(n)
    pats = cnn.sample_patterns(X, n_patterns=n_patterns, seed=pattern_seed)
    return X, y, 0.1 * cnn.beta_max(X, y, pats), pats


def _objective_per_method(monkeypatch, methods, problem, **solve_kwargs):
    """The objective of one certified solve per product method (CONVEXNN_PRODUCT_METHOD); each must converge."""
    import convexnn as cnn

    X, y, beta, pats = problem
    objectives = {}
    for method in methods:
        monkeypatch.setenv("CONVEXNN_PRODUCT_METHOD", method)
        res = cnn.solve(X, y, beta, patterns=pats, **solve_kwargs)
        assert res.status == "converged", (method, res.status)
        objectives[method] = res.objective
    return objectives


def test_float32_solves_agree_between_tables_and_amx(monkeypatch):
    """float32 iterations (float64 certificates) reach the same certified optimum with AMX or the tables."""
    if not _core.amx_available():
        pytest.skip(NO_AMX)
    # tol 1e-5: a gap float32 iterations certify with any product method (1e-6 is at their rounding floor: the
    # GEMM tiles and AMX both need 10^4 iterations there on this problem, the tables 181).
    objectives = _objective_per_method(
        monkeypatch, ("tables", "amx"), _problem_for_solves(9, 400, 120, 2), tol=1e-5, dtype=np.float32
    )
    assert objectives["amx"] == pytest.approx(objectives["tables"], rel=1e-6)


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_solves_agree_across_product_methods(monkeypatch, formulation):
    """A whole certified solve lands on the same optimum whichever product method the operator uses."""
    import convexnn as cnn

    problem = _problem_for_solves(8, 300, 80, 1)
    objectives = _objective_per_method(monkeypatch, ("gemm", "tables"), problem, formulation=formulation, tol=1e-8)
    assert objectives["tables"] == pytest.approx(objectives["gemm"], rel=1e-7)
    X, y, beta, pats = problem
    monkeypatch.setenv("CONVEXNN_PRODUCT_METHOD", "fastest")
    with pytest.raises(ValueError, match="CONVEXNN_PRODUCT_METHOD"):
        cnn.solve(X, y, beta, patterns=pats, formulation=formulation)

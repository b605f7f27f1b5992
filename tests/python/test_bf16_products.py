"""The float32 product method "bf16" (VDPBF16PS, cpp/src/convexnn/operator/masked_bf16.cpp) against the numpy
reference on the shapes the AMX tests cover: n < 64, n % 64 != 0, P = 1, subsets with repeats, c = 3, F order,
d = 50 and 130, more rows / patterns than one summation block (2048); its float32 rounding at the tables' level;
bitwise identical results on 1 and 2 threads; the method's validation.
"""

import numpy as np
import pytest

from convexnn import _core
from convexnn.reference import operators as ref

NO_BF16 = "this CPU cannot run the bf16 products (no AVX512_BF16, or CONVEXNN_BF16=0): convexnn._core.bf16_available() is False"
needs_bf16 = pytest.mark.skipif(not _core.bf16_available(), reason=NO_BF16)

# (n, d, P): n < 64, n = 64, n % 64 != 0, many patterns, P = 1, d = 1, d = 50 / 130, > 2048 rows, > 2048 patterns.
SHAPES = [
    (37, 4, 5),
    (64, 3, 6),
    (200, 6, 9),
    (300, 5, 600),
    (333, 7, 1),
    (700, 1, 7),
    (1, 3, 2),
    (260, 50, 70),
    (130, 130, 11),
    (4500, 3, 5),
    (301, 2, 4099),
]


def _problem(n, d, P, seed, order="C"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    masks = (X @ rng.standard_normal((d, P))) >= 0
    if P >= 4:  # an all-ones, an all-zero and a random-bits pattern
        masks[:, 1] = True
        masks[:, 2] = False
        masks[:, 3] = rng.random(n) < 0.5
    return np.asarray(X, dtype=np.float32, order=order), masks, rng


def _close(got, want, rtol=1e-4):
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=0, atol=rtol * scale)


@needs_bf16
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n,d,P", SHAPES)
def test_bf16_products_match_reference(n, d, P, order):
    X, masks, rng = _problem(n, d, P, seed=n * 17 + P, order=order)
    op = _core.MaskedOperatorF32(X, masks, method="bf16")
    assert op.method == "bf16" and op.resolved_method() == "bf16" and not op.uses_tables()
    Xd = X.astype(np.float64)
    for subset in [None, np.array([P - 1, 0, P - 1])] + ([np.array([2, 1])] if P > 3 else []):
        S = P if subset is None else len(subset)
        for c in (1, 3):
            U = rng.standard_normal((S, d, c)).astype(np.float32)
            R = rng.standard_normal((n, c)).astype(np.float32)
            _close(op.forward(U, subset), ref.forward(Xd, masks, U.astype(np.float64), subset))
            _close(op.adjoint(R, subset), ref.adjoint(Xd, masks, R.astype(np.float64), subset))


@needs_bf16
def test_bf16_rounding_at_the_tables_level():
    """Max error against a float64 reference (relative to the largest entry) no worse than 1.5x the tables'."""
    X, masks, rng = _problem(10_000, 50, 500, seed=3)
    U = rng.standard_normal((500, 50)).astype(np.float32)
    r = rng.standard_normal(10_000).astype(np.float32)
    Xd, Ud, rd = X.astype(np.float64), U.astype(np.float64), r.astype(np.float64)
    D = masks.astype(np.float64)
    z_ref = np.einsum("ki,ki->k", D, Xd @ Ud.T)
    G_ref = (D * rd[:, None]).T @ Xd
    err = {}
    for method in ("tables", "bf16"):
        op = _core.MaskedOperatorF32(X, masks, method=method)
        err[method] = (
            np.max(np.abs(op.forward(U) - z_ref)) / np.max(np.abs(z_ref)),
            np.max(np.abs(op.adjoint(r) - G_ref)) / np.max(np.abs(G_ref)),
        )
    assert err["bf16"][0] <= 1.5 * err["tables"][0] and err["bf16"][1] <= 1.5 * err["tables"][1], err
    assert max(err["bf16"]) < 1e-6, err


@needs_bf16
def test_bf16_bitwise_identical_across_threads():
    X, masks, rng = _problem(3000, 20, 300, seed=4)
    op = _core.MaskedOperatorF32(X, masks, method="bf16")
    sub = np.array([5, 299, 5, 0])
    U, Us = rng.standard_normal((300, 20, 2)).astype(np.float32), rng.standard_normal((4, 20, 2)).astype(np.float32)
    R = rng.standard_normal((3000, 2)).astype(np.float32)
    saved = _core.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            _core.set_num_threads(threads)
            out.append((op.forward(U), op.adjoint(R), op.forward(Us, sub), op.adjoint(R, sub)))
    finally:
        _core.set_num_threads(saved)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_bf16_validation():
    X, masks, _ = _problem(100, 4, 8, seed=5)
    with pytest.raises(ValueError, match="float32 only"):
        _core.MaskedOperatorF64(X.astype(np.float64), masks, method="bf16")
    op = _core.MaskedOperatorF32(X, masks)
    assert op.resolved_method() != "bf16"  # measured slower than the tables everywhere: never the automatic choice
    if not _core.bf16_available():
        with pytest.raises(ValueError, match="needs AVX-512 BF16"):
            _core.MaskedOperatorF32(X, masks, method="bf16")
        return
    op.method = "bf16"
    assert op.method == "bf16"


def test_bf16_switch_off_by_environment():
    """CONVEXNN_BF16=0 (read at the first product) reports the method unavailable, naming the variable."""
    import subprocess
    import sys

    code = (
        "import numpy as np\nfrom convexnn import _core\nassert not _core.bf16_available()\n"
        "try:\n    _core.MaskedOperatorF32(np.ones((3, 2), np.float32), np.ones((3, 2), bool), method='bf16')\n"
        "except ValueError as e:\n    assert 'CONVEXNN_BF16=0' in str(e), e\nelse:\n    raise SystemExit(1)\n"
    )
    import os

    env = dict(os.environ, CONVEXNN_BF16="0")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)

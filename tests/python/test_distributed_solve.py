"""convexnn.distributed: gated solves, beta_max, paths and certificates on a 2-worker LocalCluster.

The distributed solves run the same C++ solver as one machine, on products that differ only by rounding, so
objectives must agree to 1e-10 (relative) and the certificates must be valid: the gap recomputed from the
returned coefficients with the single-machine operator, and the CVXPY optimum inside [dual, objective].
Chunks are uneven, with a one-row and an empty chunk.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="convexnn.distributed needs the dask extra (pip install '.[dask]')")
distributed = pytest.importorskip("distributed")

import convexnn as cnn  # noqa: E402
from convexnn import _core  # noqa: E402
from convexnn.distributed import DistributedPatterns  # noqa: E402
from convexnn.distributed._operator import _Base  # noqa: E402

# The C++ solvers take a Python operator through the BlockOperatorF64 trampoline (convexnn._core built from
# python/src/py_operator.hpp); an older compiled core cannot run these solves.
pytestmark = pytest.mark.skipif(
    _Base is object,
    reason="this convexnn._core predates the Python operator "
    "interface (BlockOperatorF64 cannot be subclassed): rebuild the extension",
)


def _check_certificate(res, X, y, loss, groups="output"):
    """The returned point's certificate recomputed on one machine, and the solver's own bounds."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    pats = cnn.Patterns.from_gates(X, res.patterns.gates, bias=True)
    assert pats.n_patterns == res.patterns.n_patterns
    op = _core.MaskedOperatorF64(Xb, pats._set)
    Y = y.reshape(len(y), -1).astype(np.float64)
    cert = _core.gated_certificate(op, np.ascontiguousarray(res.coef_), Y, res.beta, loss=loss, groups=groups)
    np.testing.assert_allclose(cert["primal"], res.objective, rtol=1e-10)
    assert res.dual_objective <= res.objective * (1 + 1e-12)
    assert res.gap <= 1e-8 and res.status == "converged"
    return op


# (loss, data seed, beta / beta_max): a few dozen to ~200 FISTA iterations each (hinge converges slowest).
CASES = [
    ("squared", 0, 0.3),
    ("logistic", 0, 0.5),
    ("hinge", 2, 0.7),
    ("squared_hinge", 0, 0.5),
    ("cross_entropy", 0, 0.5),
]


@pytest.mark.parametrize("loss, seed, ratio", CASES)
def test_gated_solve_matches_single_machine(client, loss, seed, ratio, distributed_problem):
    X, y, Xd, yd = distributed_problem(loss, seed)
    beta = ratio * cnn.beta_max(X, y, 20, loss=loss, bias=True)
    ref = cnn.solve(X, y, beta, patterns=20, loss=loss, bias=True, tol=1e-8)
    res = cnn.solve(Xd, yd, beta, patterns=20, loss=loss, bias=True, tol=1e-8)
    assert isinstance(res.patterns, DistributedPatterns)
    np.testing.assert_array_equal(res.patterns.gates, ref.patterns.gates)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-10)
    np.testing.assert_allclose(res.dual_objective, ref.dual_objective, rtol=1e-8)
    _check_certificate(res, X, y, loss)
    np.testing.assert_allclose(res.predict(X), ref.predict(X), rtol=1e-6, atol=1e-6)
    assert res.predict(X).shape == y.shape


@pytest.mark.parametrize("loss, groups", [("squared", "output"), ("cross_entropy", "neuron")])
def test_beta_max_matches_single_machine(client, loss, groups, distributed_problem):
    X, y, Xd, yd = distributed_problem(loss)
    pats = cnn.sample_patterns(X, 30, seed=1, bias=True)
    np.testing.assert_allclose(
        cnn.beta_max(Xd, yd, pats, loss=loss, groups=groups, bias=True),
        cnn.beta_max(X, y, pats, loss=loss, groups=groups, bias=True),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        cnn.beta_max(Xd, yd, 30, loss=loss, groups=groups, bias=True, seed=1),
        cnn.beta_max(X, y, 30, loss=loss, groups=groups, bias=True, seed=1),
        rtol=1e-12,
    )


def test_squared_solve_inside_cvxpy_bounds(client, distributed_problem):
    from convexnn.reference.cvx import solve_gated_cvxpy

    X, y, Xd, yd = distributed_problem("squared", seed=1)
    res = cnn.solve(Xd, yd, 1.0, patterns=10, bias=True, tol=1e-8)
    Xb = np.hstack([X, np.ones((len(X), 1))])
    masks = cnn.Patterns.from_gates(X, res.patterns.gates, bias=True).dense()
    opt = solve_gated_cvxpy(Xb, masks, y, 1.0)["objective"]
    assert res.dual_objective <= opt * (1 + 1e-7) and opt <= res.objective * (1 + 1e-7)
    np.testing.assert_allclose(res.objective, opt, rtol=1e-6)


def test_numpy_with_client_neuron_groups_two_outputs(client, distributed_problem):
    X, y, _, _ = distributed_problem("squared", seed=2)
    Y = np.column_stack([y, -0.5 * y + 1.0])
    ref = cnn.solve(X, Y, 2.0, patterns=15, groups="neuron", bias=True, tol=1e-8)
    res = cnn.solve(X, Y, 2.0, patterns=15, groups="neuron", bias=True, tol=1e-8, client=client)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-10)
    _check_certificate(res, X, Y, "squared", groups="neuron")


def test_solve_path_and_explicit_patterns(client, distributed_problem):
    X, y, Xd, yd = distributed_problem("squared", seed=3)
    pats = cnn.sample_patterns(X, 15, seed=4, bias=True)
    ref = cnn.solve_path(X, y, patterns=pats, n_betas=3, beta_min_ratio=0.1, bias=True, tol=1e-8)
    res = cnn.solve_path(Xd, yd, patterns=pats, n_betas=3, beta_min_ratio=0.1, bias=True, tol=1e-8)
    assert len(res) == 3
    for r, q in zip(res, ref):
        np.testing.assert_allclose(r.beta, q.beta, rtol=1e-12)
        np.testing.assert_allclose(r.objective, q.objective, rtol=1e-10)
    # gate arrays are deduplicated as Patterns.from_gates does
    G = np.hstack([pats.gates, pats.gates[:, :3]])
    one = cnn.solve(Xd, yd, 2.0, patterns=G, bias=True, tol=1e-8)
    assert one.patterns.n_patterns == pats.n_patterns
    np.testing.assert_allclose(
        one.objective, cnn.solve(X, y, 2.0, patterns=pats, bias=True, tol=1e-8).objective, rtol=1e-10
    )


def test_bad_arguments(client, distributed_problem):
    X, y, Xd, yd = distributed_problem("squared")
    with pytest.raises(ValueError, match="float32"):
        cnn.solve(Xd, yd, 1.0, patterns=5, dtype=np.float32)
    with pytest.raises(ValueError, match="cutting_planes"):
        cnn.solve(Xd, yd, 1.0, patterns=5, cutting_planes=True)
    with pytest.raises(ValueError, match="y has 39 rows"):
        cnn.solve(Xd, yd[:39], 1.0, patterns=5)
    with pytest.raises(ValueError, match="loss='logistic' needs y"):
        cnn.solve(Xd, yd, 1.0, patterns=5, loss="logistic")
    with pytest.raises(ValueError, match="beta must be >= 0"):
        cnn.solve(Xd, yd, -1.0, patterns=5)
    with pytest.raises(ValueError, match="sample_weight"):
        cnn.solve(Xd, yd, 1.0, patterns=5, sample_weight=np.ones(40))
    with pytest.raises(ValueError, match="pattern_generation='oracle'"):
        cnn.solve(Xd, yd, 1.0, patterns=5, pattern_generation="oracle")
    calls = []
    res = cnn.solve(Xd, yd, 1e-3, patterns=5, tol=1e-12, callback=lambda info: calls.append(info) or False)
    assert res.status == "interrupted" and len(calls) == 1
    with pytest.raises(ValueError, match="device='cuda'"):
        cnn.solve(Xd, yd, 1.0, patterns=5, device="cuda")

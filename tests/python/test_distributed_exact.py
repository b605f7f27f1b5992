"""convexnn.distributed: the exact (cone-constrained) program by constraint generation over the cone rows.

Checked against the single-machine exact solver on the same patterns: converged objectives agree to 1e-8, the
returned point's objective and violation recomputed on one machine over ALL rows (numpy reference), the dual
bound below the single-machine optimum at every round (also for an early-stopped solve), and the cone
constraints restricted to a strict subset of the rows. The worker-side checks are tested against numpy on a
row-chunked block. Chunks are uneven, with a one-row and an empty chunk.
"""

import types

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="convexnn.distributed needs the dask extra (pip install '.[dask]')")
distributed = pytest.importorskip("distributed")

import convexnn as cnn  # noqa: E402
from convexnn.distributed import _exact, _worker  # noqa: E402
from convexnn.distributed._operator import _Base  # noqa: E402
from convexnn.reference.objectives import relative_violation, relu_objective  # noqa: E402

pytestmark = pytest.mark.skipif(
    _Base is object,
    reason="this convexnn._core predates the Python operator "
    "interface (BlockOperatorF64 cannot be subclassed): rebuild the extension",
)


def _check_point(res, X, y, loss, bias):
    """The returned point's objective and violation recomputed over all rows on one machine."""
    Xb = np.hstack([X, np.ones((len(X), 1))]) if bias else X
    masks = cnn.Patterns.from_gates(X, res.patterns.gates, bias=bias).dense()
    V, W = res.coef_
    np.testing.assert_allclose(relu_objective(Xb, masks, V, W, y, res.beta, loss), res.objective, rtol=1e-12)
    assert relative_violation(Xb, masks, V, W) <= 1e-10 and res.max_violation <= 1e-10


# (loss, bias, data seed, beta / beta_max, patterns): the first two have one neuron, the others several
# neurons with active cone rows (2-4 rounds of constraint generation).
CASES = [
    ("squared", True, 0, 0.3, 8),
    ("logistic", False, 0, 0.3, 8),
    ("squared", True, 1, 0.2, 8),
    ("squared", True, 0, 0.05, 20),
]


@pytest.mark.parametrize("loss, bias, seed, ratio, P", CASES)
def test_exact_matches_single_machine(client, distributed_problem, loss, bias, seed, ratio, P):
    X, y, Xd, _ = distributed_problem(loss, seed)
    beta = ratio * cnn.beta_max(X, y, P, loss=loss, bias=bias)
    ref = cnn.solve(X, y, beta, patterns=P, formulation="relu", loss=loss, bias=bias, tol=1e-10)
    assert ref.status == "converged"
    res = cnn.solve(Xd, y, beta, patterns=P, formulation="relu", loss=loss, bias=bias, tol=1e-10)
    assert "distributed constraint generation" in res.solver and res.formulation == "relu"
    np.testing.assert_array_equal(res.patterns.gates, ref.patterns.gates)
    assert res.status == "converged" and res.gap <= 1e-10 and res.gap == res.kkt_residual
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-8)
    assert res.dual_objective <= ref.objective * (1 + 1e-10) and ref.dual_objective <= res.objective * (1 + 1e-10)
    _check_point(res, X, y, loss, bias)
    # the cone constraints of the last round are on a strict subset of the rows (the n x d data stay distributed)
    used = int(res.solver.split(" of 40 rows")[0].rsplit(" ", 1)[1])
    assert 0 < used < 40
    net = res.network()
    np.testing.assert_allclose(net.predict(X), res.predict(X), rtol=1e-10, atol=1e-10)


def test_warm_start_and_early_stop(client, distributed_problem):
    X, y, Xd, _ = distributed_problem("squared", seed=1)
    beta = 0.2 * cnn.beta_max(X, y, 8, bias=True)
    ref = cnn.solve(X, y, beta, patterns=8, formulation="relu", bias=True, tol=1e-10)
    for it in (3, 12):
        res = cnn.solve(Xd, y, beta, patterns=8, formulation="relu", bias=True, tol=1e-10, max_iter=it)
        assert res.status == "max_iter" and res.n_iter == it
        # weak duality at every round: the bound never exceeds the optimum, also before convergence
        assert np.isfinite(res.dual_objective) and res.dual_objective <= ref.objective * (1 + 1e-10)
        for row in res.history:
            assert row["dual_objective"] <= ref.objective * (1 + 1e-10)
    # a warm start off the cones (the rows it violates seed the working set) ends feasible over all rows
    V, W = ref.coef_
    shaken = (V + 0.1 * np.abs(V).max(), W)
    warm = cnn.solve(Xd, y, beta, patterns=8, formulation="relu", bias=True, tol=1e-10, warm_start=shaken)
    assert warm.status == "converged"
    np.testing.assert_allclose(warm.objective, ref.objective, rtol=1e-8)
    _check_point(warm, X, y, "squared", True)


def test_callback_sees_the_working_set(client, distributed_problem):
    X, y, Xd, _ = distributed_problem("squared", seed=1)
    beta = 0.2 * cnn.beta_max(X, y, 8, bias=True)
    calls = []
    res = cnn.solve(
        Xd, y, beta, patterns=8, formulation="relu", bias=True, tol=1e-10, callback=lambda i: calls.append(i) or False
    )
    assert res.status == "interrupted" and len(calls) == 1 and 0 < calls[0]["rows"] < 40


class _LocalOperator:
    """The parts of a DistributedOperator that the constraint generation uses, on in-process blocks."""

    def __init__(self, Xb, gates, sizes):
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        self.block_rows = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        ps = cnn._core.PatternSet.from_gates
        self.mblocks = [
            _worker.MaskedBlock(Xb[a:b], ps(Xb[a:b], gates, deduplicate=False, drop_zero=False))
            for a, b in self.block_rows
        ]
        self.design = types.SimpleNamespace(block_rows=self.block_rows)
        self.n_samples, self.block_dim, self.n_blocks, self.gates = len(Xb), Xb.shape[1], len(gates), gates

    def _map(self, fn, shared=(), per_block=None):
        return [fn(b, *(per_block(k) if per_block else ()), *shared) for k, b in enumerate(self.mblocks)]


def test_worker_checks_match_numpy(monkeypatch):
    monkeypatch.setattr(_worker, "_CHECK_ROWS", 64)  # several chunks per block
    rng = np.random.default_rng(3)
    n, d, P, c = 300, 4, 6, 2
    Xb = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    gates = rng.standard_normal((P, d))
    op = _LocalOperator(Xb, gates, [1, 150, 149])
    masks = cnn._core.PatternSet.from_gates(Xb, gates, deduplicate=False, drop_zero=False).dense()
    V, W = rng.standard_normal((2, P, d, c))
    V[1] = 0.0  # a zero group is feasible and has no relative violation
    x_norm = np.linalg.norm(Xb, 2)
    violation, rows = _exact.check_rows(op, V, W, x_norm, per_group=3)
    np.testing.assert_allclose(violation, relative_violation(Xb, masks, V, W), rtol=1e-12)
    # per nonzero group, its 3 most violated rows (numpy); their union, worst first
    S = 2.0 * masks - 1.0
    expected, worst = set(), {}
    for U in (V, W):
        for i in range(P):
            for k in range(c):
                if not np.any(U[i, :, k]):
                    continue
                rel = np.maximum(-S[:, i] * (Xb @ U[i, :, k]), 0) / (x_norm * np.linalg.norm(U[i, :, k]))
                for r in np.argsort(-rel)[:3]:
                    if rel[r] > _exact._ADD_TOL:
                        expected.add(int(r))
                        worst[int(r)] = max(worst.get(int(r), 0.0), rel[r])
    assert set(rows.tolist()) == expected and len(rows) == len(expected)
    assert all(worst[a] >= worst[b] for a, b in zip(rows[:-1], rows[1:]))
    # the working set gathers those rows and their masks; its PatternSet is the masks on those rows
    ws = _exact._WorkingSet(op)
    assert ws.add(rows) == len(rows) and ws.add(rows[:2]) == 0
    np.testing.assert_array_equal(ws.index, np.sort(rows))
    np.testing.assert_array_equal(ws.rows, Xb[ws.index])
    np.testing.assert_array_equal(ws.patterns().dense(), masks[ws.index])
    np.testing.assert_array_equal(ws.patterns().gates(), gates)


def test_hinge_and_refusals(client, distributed_problem):
    X, y, Xd, _ = distributed_problem("hinge")
    beta = 0.3 * cnn.beta_max(X, y, 5, loss="hinge")
    ref = cnn.solve(X, y, beta, patterns=5, formulation="relu", loss="hinge", tol=1e-5)
    res = cnn.solve(Xd, y, beta, patterns=5, formulation="relu", loss="hinge", tol=1e-5)
    assert res.status == "converged" and res.dual_objective <= ref.objective * (1 + 1e-10)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=2e-5)
    with pytest.raises(ValueError, match="cutting_planes=True is not available for distributed data"):
        cnn.solve(Xd, y, 1.0, patterns=5, formulation="relu", cutting_planes=True)
    gated = cnn.solve(Xd, y, 1.0, patterns=5)
    with pytest.raises(ValueError, match="gated result's cone decomposition"):
        cnn.solve(Xd, y, 1.0, patterns=5, formulation="relu", warm_start=gated)

"""convexnn.distributed: the row-partitioned operator and patterns against the single-machine core.

One 2-worker LocalCluster (processes) for the module. Chunks are uneven and include a one-row and an empty chunk.
"""

import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="convexnn.distributed needs the dask extra (pip install '.[dask]')")
distributed = pytest.importorskip("distributed")

import convexnn as cnn  # noqa: E402
from convexnn import _core  # noqa: E402
from convexnn.distributed import (
    DistributedDesign,
    DistributedOperator,
    DistributedPatterns,  # noqa: E402
    sample_patterns,
    unique_patterns,
)
from convexnn.distributed._patterns import resolve_patterns  # noqa: E402

CHUNKS = (7, 1, 0, 13, 19)  # n = 40


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + np.array([0.5, -1.0, 2.0])[:d]
    return X, da.from_array(X, chunks=(CHUNKS if n == 40 else n // 3 + 1, d))


def test_operator_matches_masked_operator(client):
    X, Xd = _data()
    assert Xd.chunks[0] == CHUNKS
    Xb = np.hstack([X, np.ones((40, 1))])
    rng = np.random.default_rng(1)
    G = rng.standard_normal((25, 4))
    design = DistributedDesign.from_dask(Xd, True, client)
    op = DistributedOperator(design, G)
    ref = _core.MaskedOperatorF64(Xb, _core.PatternSet.from_gates(Xb, G, deduplicate=False, drop_zero=False))
    assert (op.n_samples, op.block_dim, op.n_blocks) == (40, 4, 25)
    assert len(op.mblocks) == 4  # the empty chunk has no block
    U, R = rng.standard_normal((25, 4, 2)), rng.standard_normal((40, 2))
    np.testing.assert_allclose(op.forward(U), ref.forward(U), rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(R), ref.adjoint(R), rtol=0, atol=1e-12)
    sub = np.array([3, 0, 3, 24], dtype=np.int64)
    np.testing.assert_allclose(op.forward(U[sub], sub), ref.forward(U[sub], sub), rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(R, sub), ref.adjoint(R, sub), rtol=0, atol=1e-12)
    u1, r1 = np.ascontiguousarray(U[:, :, 0]), np.ascontiguousarray(R[:, 0])
    np.testing.assert_allclose(op.forward(u1), ref.forward(u1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(r1), ref.adjoint(r1), rtol=0, atol=1e-12)
    for i in (0, 7, 24):
        np.testing.assert_allclose(op.block_gram(i), ref.block_gram(i), rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.cone_violation(U), ref.cone_violation(U), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(op.dense(), _core.PatternSet.from_gates(Xb, G, False, False).dense())
    assert op.stats["forward"] >= 3 and op.stats["bytes_received"] > 0
    with pytest.raises(IndexError, match="block index 25"):
        op.block_gram(25)
    # memoized products: a repeated input is answered without a round trip, a new one (or a subset) is not
    op.memoize(1 << 20)
    z, g = op.forward(U), op.adjoint(R)
    moved = op.stats["bytes_received"]
    np.testing.assert_array_equal(op.forward(U), z)
    np.testing.assert_array_equal(op.adjoint(R), g)
    assert op.stats["memo_hits"] == 2 and op.stats["bytes_received"] == moved
    np.testing.assert_allclose(op.forward(U[sub], sub), ref.forward(U[sub], sub), rtol=0, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(2.0 * R), 2.0 * g, rtol=0, atol=1e-12)
    assert op.stats["memo_hits"] == 2 and op.stats["bytes_received"] > moved
    op.memoize(0)
    op.forward(U)
    assert op.stats["memo_hits"] == 2
    op.release()
    design.release()


def test_deduplication_matches_from_gates(client):
    X, Xd = _data()
    Xb = np.hstack([X, np.ones((40, 1))])
    rng = np.random.default_rng(2)
    G = rng.standard_normal((30, 4))
    G[5] = 2.0 * G[1]  # same hyperplane: duplicate mask
    G[7] = [0.0, 0.0, 0.0, -1.0]  # all-zero mask
    G[9] = -G[2]  # complement: a different mask
    design = DistributedDesign.from_dask(Xd, True, client)
    op = DistributedOperator(design, G)
    kept = unique_patterns(op)
    ref = _core.PatternSet.from_gates(Xb, G)
    np.testing.assert_array_equal(G[kept], ref.gates())
    assert 5 not in kept and 7 not in kept
    dense = (Xb @ G.T) >= 0  # numpy reference: distinct non-zero columns, first occurrence kept
    _, first = np.unique(dense.T, axis=0, return_index=True)
    np.testing.assert_array_equal(kept, np.sort([i for i in first if dense[:, i].any()]))
    sub = op.with_patterns(kept)
    np.testing.assert_array_equal(sub.dense(), ref.dense())
    design.release()


@pytest.mark.parametrize("bias", [False, True])
def test_sample_patterns_same_as_single_machine(client, bias):
    X, Xd = _data()
    pats = sample_patterns(Xd, 60, seed=3, bias=bias)
    ref = cnn.sample_patterns(X, 60, seed=3, bias=bias)
    assert isinstance(pats, DistributedPatterns)
    assert (pats.n_patterns, pats.n_samples, pats.bias) == (ref.n_patterns, 40, bias)
    np.testing.assert_array_equal(pats.gates, ref.gates)  # bit for bit: the core's stream replayed
    Xnew = np.random.default_rng(4).standard_normal((9, 3))
    np.testing.assert_array_equal(pats.masks_on(Xnew), ref.masks_on(Xnew))
    back = pickle.loads(pickle.dumps(pats))
    np.testing.assert_array_equal(back.gates, ref.gates)
    assert back.n_samples == 40 and back.subset([2, 0]).n_patterns == 2
    with pytest.raises(ValueError, match="live on the workers"):
        pats.dense()


def test_numpy_with_client_scatters(client):
    X, _ = _data()
    pats = sample_patterns(X, 30, seed=5, bias=True, client=client)
    np.testing.assert_array_equal(pats.gates, cnn.sample_patterns(X, 30, seed=5, bias=True).gates)
    design = DistributedDesign.from_numpy(X, False, client)
    assert design.n_blocks == 2 and design.n_samples == 40
    np.testing.assert_array_equal(design.rows([0, 19, 20, 39]), X[[0, 19, 20, 39]])
    np.testing.assert_allclose(design.spectral_norm(), np.linalg.norm(X, 2), rtol=1e-12)
    design.release()


def test_bad_inputs(client):
    X, _ = _data()
    Xbad = X.copy()
    Xbad[30, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf \(row 30\)"):
        DistributedDesign.from_dask(da.from_array(Xbad, chunks=(CHUNKS, 3)), False, client)
    with pytest.raises(ValueError, match="2-D"):
        DistributedDesign.from_dask(da.zeros(5), False, client)
    design = DistributedDesign.from_dask(_data()[1], True, client)
    with pytest.raises(ValueError, match=r"G must have shape \(4, P\)"):
        resolve_patterns(np.ones((2, 3)), design, 0)
    with pytest.raises(TypeError, match="patterns must be"):
        resolve_patterns("many", design, 0)
    design.release()
    with pytest.raises(ValueError, match="single-machine"):
        cnn.distributed.enumerate_patterns(X)
    with pytest.raises(TypeError, match="client must be"):
        sample_patterns(X, 5, client="tcp://nowhere")

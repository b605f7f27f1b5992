"""convexnn._core pattern sets, samplers and exact enumeration against convexnn.reference.patterns."""

import pickle
import time

import numpy as np
import pytest

from convexnn import _core
from convexnn.reference import patterns as ref

PatternSet = _core.PatternSet


def _mask_set(masks):
    """Set of the columns of an (n, P) bool array."""
    return {col.tobytes() for col in np.asarray(masks, dtype=bool).T}


def _words_to_dense(words, n):
    """(P, W) uint64 words -> (n, P) bool, bit k % 64 of word k // 64 is sample k."""
    bits = np.unpackbits(words.view(np.uint8).reshape(words.shape[0], -1), axis=1, bitorder="little")
    return bits[:, :n].T.astype(bool)


# ---------------------------------------------------------------------------------------------------------
# from_gates and the PatternSet methods


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n,P", [(1, 3), (37, 1), (64, 25), (130, 300)])
def test_from_gates_matches_reference(dtype, order, n, P):
    rng = np.random.default_rng(1000 * n + P)
    d = 5
    X = np.asarray(rng.standard_normal((n, d)), dtype=dtype, order=order)
    G = rng.standard_normal((P, d))
    G = np.vstack([G, 3.0 * G[:2], -np.abs(G[:1])])  # positive multiples: duplicate masks
    pats = PatternSet.from_gates(X, G)
    masks, gates = ref.masks_from_gates(X.astype(np.float64), G.T)
    assert pats.n_samples == n and pats.dim == d
    assert pats.n_patterns == masks.shape[1]
    np.testing.assert_array_equal(pats.dense(), masks)
    np.testing.assert_array_equal(pats.gates(), gates.T)
    raw = PatternSet.from_gates(X, G, deduplicate=False, drop_zero=False)
    assert raw.n_patterns == G.shape[0]
    np.testing.assert_array_equal(raw.dense(), X.astype(np.float64) @ G.T >= 0)


def test_non_contiguous_X_is_accepted():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 8))[:, ::2]
    G = rng.standard_normal((10, 4))
    np.testing.assert_array_equal(PatternSet.from_gates(X, G).dense(), ref.masks_from_gates(X, G.T)[0])


def test_words_popcounts_and_pickle():
    rng = np.random.default_rng(2)
    n, d = 150, 4
    X = rng.standard_normal((n, d))
    pats = PatternSet.from_gates(X, rng.standard_normal((30, d)))
    words = pats.words()
    assert words.dtype == np.uint64 and words.shape == (pats.n_patterns, pats.words_per_pattern)
    assert pats.words_per_pattern == 3
    np.testing.assert_array_equal(_words_to_dense(words, n), pats.dense())
    np.testing.assert_array_equal(pats.popcounts(), pats.dense().sum(axis=0))
    back = pickle.loads(pickle.dumps(pats))
    np.testing.assert_array_equal(back.words(), words)
    np.testing.assert_array_equal(back.gates(), pats.gates())
    assert (back.n_samples, back.dim) == (n, d)
    again = PatternSet.from_words(n, d, words, pats.gates())
    np.testing.assert_array_equal(again.dense(), pats.dense())
    assert "n_patterns=" in repr(pats)


def test_subset_merge_recompute():
    rng = np.random.default_rng(3)
    n, d = 70, 3
    X = rng.standard_normal((n, d))
    Ga = rng.standard_normal((20, d))
    Gb = np.vstack([rng.standard_normal((8, d)), Ga[3:9]])
    a = PatternSet.from_gates(X, Ga)
    b = PatternSet.from_gates(X, Gb)
    sub = a.subset([4, 0, 2])
    np.testing.assert_array_equal(sub.dense(), a.dense()[:, [4, 0, 2]])
    np.testing.assert_array_equal(sub.gates(), a.gates()[[4, 0, 2]])
    merged, index = a.merge(b)
    assert index.dtype == np.int64 and index.shape == (b.n_patterns,)
    np.testing.assert_array_equal(merged.dense()[:, : a.n_patterns], a.dense())
    np.testing.assert_array_equal(merged.dense()[:, index], b.dense())
    assert merged.n_patterns == len(_mask_set(np.hstack([a.dense(), b.dense()])))
    assert np.all(index[-6:] < a.n_patterns)
    Y = np.asfortranarray(rng.standard_normal((33, d)), dtype=np.float32)
    r = a.recompute(Y)
    assert r.n_patterns == a.n_patterns and r.n_samples == 33
    np.testing.assert_array_equal(r.dense(), Y.astype(np.float64) @ a.gates().T >= 0)


# ---------------------------------------------------------------------------------------------------------
# Gaussian sampling: portable stream, bias through a training point


class _MT19937_64:
    """Plain-Python std::mt19937_64 (for checking the documented random stream)."""

    def __init__(self, seed):
        self.mt = [0] * 312
        self.mt[0] = seed & (2**64 - 1)
        for i in range(1, 312):
            prev = self.mt[i - 1]
            self.mt[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & (2**64 - 1)
        self.index = 312

    def __call__(self):
        if self.index >= 312:
            for i in range(312):
                x = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % 312] & 0x7FFFFFFF)
                self.mt[i] = self.mt[(i + 156) % 312] ^ (x >> 1) ^ (0xB5026F5AA96619E9 if x & 1 else 0)
            self.index = 0
        x = self.mt[self.index]
        self.index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & (2**64 - 1)


def _documented_gates(X, n_gates, seed, bias):
    """The stream documented in PatternSet::gaussian_gates, written out in Python."""
    eng = _MT19937_64(seed)
    spare = []

    def uniform():
        return ((eng() >> 11) + 0.5) * 2.0**-53

    def normal():
        if spare:
            return spare.pop()
        u1, u2 = uniform(), uniform()
        radius = np.sqrt(-2.0 * np.log(u1))
        spare.append(radius * np.sin(2 * np.pi * u2))
        return radius * np.cos(2 * np.pi * u2)

    n, d = X.shape
    d_feat = d - 1 if bias else d
    limit = (2**64 - 1) - (2**64 % n)
    G = np.zeros((n_gates, d))
    for i in range(n_gates):
        G[i, :d_feat] = [normal() for _ in range(d_feat)]
        if bias:
            while True:
                x = eng()
                if x <= limit:
                    break
            j = x % n
            G[i, -1] = -X[j, :d_feat] @ G[i, :d_feat]
    return G


@pytest.mark.parametrize("bias", [False, True])
def test_gaussian_gates_follow_the_documented_stream(bias):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((13, 4))
    if bias:
        X[:, -1] = 1.0
    G = PatternSet.gaussian_gates(X, 6, seed=12345, bias_column=bias)
    np.testing.assert_allclose(G, _documented_gates(X, 6, 12345, bias), rtol=1e-13, atol=1e-13)


def test_sample_is_deterministic_and_matches_from_gates():
    rng = np.random.default_rng(5)
    X = ref.add_bias(rng.standard_normal((80, 3)) + 4.0)  # uncentred, bias column last
    a = PatternSet.sample(X, 200, seed=7, bias_column=True)
    b = PatternSet.sample(X, 200, seed=7, bias_column=True)
    np.testing.assert_array_equal(a.words(), b.words())
    np.testing.assert_array_equal(a.gates(), b.gates())
    c = PatternSet.sample(X, 200, seed=8, bias_column=True)
    assert not np.array_equal(a.gates(), c.gates())
    G = PatternSet.gaussian_gates(X, 200, seed=7, bias_column=True)
    masks, gates = ref.masks_from_gates(X, G.T)
    np.testing.assert_array_equal(a.dense(), masks)
    np.testing.assert_array_equal(a.gates(), gates.T)
    # each hyperplane passes through a training point
    Z = X @ G.T
    assert np.all(np.min(np.abs(Z), axis=0) <= 1e-12 * np.abs(Z).max())
    # uncentred data: without the bias trick most Gaussian gates would give all-ones / all-zero masks
    assert np.mean(a.popcounts() == X.shape[0]) < 0.2
    # float32 data give the same gates (the stream does not depend on dtype)
    G32 = PatternSet.gaussian_gates(X.astype(np.float32), 5, seed=7, bias_column=False)
    np.testing.assert_array_equal(G32, PatternSet.gaussian_gates(X, 5, seed=7, bias_column=False))


def test_network_patterns_are_from_gates_of_W1():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((50, 4))
    W1 = rng.standard_normal((9, 4))
    net = PatternSet.network_patterns(X, W1)
    masks, _ = ref.masks_from_gates(X, ref.network_gates(W1))
    np.testing.assert_array_equal(net.dense(), masks)


# ---------------------------------------------------------------------------------------------------------
# Exact enumeration against the LP brute force


def _check_enumeration_against_bruteforce(X):
    pats = _core.enumerate_patterns(X)
    masks, _ = ref.enumerate_bruteforce(X)
    assert pats.n_patterns == masks.shape[1]
    assert _mask_set(pats.dense()) == _mask_set(masks)
    again = PatternSet.from_gates(X, pats.gates(), deduplicate=False, drop_zero=False)
    np.testing.assert_array_equal(again.dense(), pats.dense())
    np.testing.assert_allclose(np.linalg.norm(pats.gates(), axis=1), 1.0, rtol=1e-12)
    return pats


@pytest.mark.parametrize("r", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", [False, True])
def test_enumeration_random_matches_bruteforce(r, bias):
    rng = np.random.default_rng(10 * r + bias)
    n = {1: 6, 2: 12, 3: 10, 4: 8}[r]
    if not bias:
        X = rng.standard_normal((n, r))
        distinct = 1 if r == 1 else n  # in R^1 every row defines the same hyperplane {0}
    elif r == 1:
        X = np.ones((n, 1))  # only the ones column
        distinct = 1
    else:
        X = ref.add_bias(rng.standard_normal((n, r - 1)))
        distinct = n
    pats = _check_enumeration_against_bruteforce(X)
    regions = ref.cover_count(distinct, r)
    if bias:  # general position, and the all-negative region exists (its pattern is dropped)
        assert pats.n_patterns == regions - 1
    assert _core.estimate_region_count(X) == regions


@pytest.mark.parametrize(
    "case", ["repeated_opposite_zero", "rank_deficient", "grid_bias", "cube_bias", "wide_float32", "badly_scaled_bias"]
)
def test_enumeration_degenerate_matches_bruteforce(case):
    rng = np.random.default_rng(20)
    if case == "repeated_opposite_zero":
        Z = rng.standard_normal((6, 3))
        X = np.vstack([Z, Z[1], -Z[2], 2.5 * Z[3], np.zeros(3), -0.5 * Z[0]])
    elif case == "rank_deficient":  # d = 5 > r = 3, with a repeated row
        Z = rng.standard_normal((8, 3))
        X = np.vstack([Z, Z[4]]) @ rng.standard_normal((3, 5))
    elif case == "grid_bias":  # 3x3 grid + bias: collinear triples (degenerate vertices in rank 3)
        X = ref.add_bias(np.array([[a, b] for a in range(3) for b in range(3)], dtype=float))
    elif case == "cube_bias":  # cube corners + bias: coplanar quadruples (rank 4)
        X = ref.add_bias(np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=float))
    elif case == "badly_scaled_bias":  # feature scales 1e6 and 1e-4 next to the ones column
        X = ref.add_bias(rng.standard_normal((9, 2)) * np.array([1e6, 1e-4]))
    else:  # n < d, float32, with a repeated row
        Z = rng.standard_normal((7, 9)).astype(np.float32)
        X = np.vstack([Z, Z[:1]])
    pats = _core.enumerate_patterns(X)
    # Scaling columns changes no pattern; the LP brute force needs comparable column scales.
    X64 = X.astype(np.float64)
    masks, _ = ref.enumerate_bruteforce(X64 / np.linalg.norm(X64, axis=0))
    assert pats.n_patterns == masks.shape[1]
    assert _mask_set(pats.dense()) == _mask_set(masks)
    again = PatternSet.from_gates(X, pats.gates(), deduplicate=False, drop_zero=False)
    np.testing.assert_array_equal(again.dense(), pats.dense())


def test_enumeration_two_hundred_points_rank_three():
    rng = np.random.default_rng(30)
    X = rng.standard_normal((200, 3))
    X[-1] = -X[:-1].sum(axis=0)  # 0 inside the hull: no all-negative region, count is exactly Cover's
    t0 = time.perf_counter()
    pats = _core.enumerate_patterns(X)
    elapsed = time.perf_counter() - t0
    print(f"enumerate_patterns n=200 r=3: {pats.n_patterns} patterns in {elapsed:.3f} s")
    assert pats.n_patterns == ref.cover_count(200, 3) == 39802
    assert _core.estimate_region_count(X) == 39802
    summary = _core.arrangement_summary(X)
    assert summary == {"rank": 3, "n_hyperplanes": 200, "n_zero_rows": 0, "region_bound": 39802}
    # random spot check: Gaussian gates only ever produce enumerated patterns
    found = _mask_set(pats.dense())
    sampled = PatternSet.sample(X, 2000, seed=1)
    assert _mask_set(sampled.dense()) <= found


def test_enumeration_refuses_above_max_patterns():
    X = np.random.default_rng(31).standard_normal((60, 3))
    bound = ref.cover_count(60, 3)
    with pytest.raises(ValueError, match=str(bound)):
        _core.enumerate_patterns(X, max_patterns=bound - 1)
    assert _core.enumerate_patterns(X, max_patterns=bound).n_patterns <= bound
    assert _core.cover_count(60, 3) == bound


# ---------------------------------------------------------------------------------------------------------
# Alg3 flips


def test_flip_patterns_against_reference():
    rng = np.random.default_rng(40)
    X = rng.standard_normal((60, 4))
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # unit rows and unit gates: relative = absolute threshold
    G = rng.standard_normal((5, 4))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    threshold = 0.15
    flips = _core.flip_patterns(X, G, threshold)
    reference = _mask_set(ref.flip_patterns(X, G.T, threshold))
    ours = _mask_set(flips.dense())
    assert ours <= reference
    assert _mask_set(ref.masks_from_gates(X, G.T)[0]) <= ours
    assert flips.n_patterns > len(_mask_set(ref.masks_from_gates(X, G.T)[0]))
    again = PatternSet.from_gates(X, flips.gates(), deduplicate=False, drop_zero=False)
    np.testing.assert_array_equal(again.dense(), flips.dense())


def test_flip_patterns_orthogonal_rows_equal_reference():
    # Orthonormal rows: every single flip is realizable, so the sets agree exactly.
    X = np.eye(8)[:6]
    g = np.random.default_rng(41).standard_normal((1, 8))
    g /= np.linalg.norm(g)
    flips = _core.flip_patterns(X, g, 1.0)
    assert _mask_set(flips.dense()) == _mask_set(ref.flip_patterns(X, g.T, 1.0))


# ---------------------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs_raise():
    rng = np.random.default_rng(50)
    X = rng.standard_normal((10, 3))
    G = rng.standard_normal((4, 3))
    with pytest.raises(TypeError, match="X"):
        PatternSet.from_gates(X.astype(np.int64), G)
    with pytest.raises(TypeError, match="X"):
        PatternSet.from_gates(X.tolist(), G)
    with pytest.raises(ValueError, match="X"):
        PatternSet.from_gates(X[:, 0], G)
    with pytest.raises(ValueError, match="X"):
        PatternSet.from_gates(np.zeros((0, 3)), G)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        PatternSet.from_gates(Xn, G)
    with pytest.raises(ValueError, match="X"):
        _core.enumerate_patterns(Xn)
    Gn = G.copy()
    Gn[0, 0] = np.inf
    with pytest.raises(ValueError, match="gates"):
        PatternSet.from_gates(X, Gn)
    with pytest.raises(ValueError, match="gates"):
        _core.flip_patterns(X, Gn, 0.1)
    with pytest.raises(ValueError, match="gates"):
        PatternSet.from_gates(X, G[:, :2])
    with pytest.raises(TypeError, match="gates"):
        PatternSet.from_gates(X, G.astype(np.int32))
    with pytest.raises(ValueError, match="n_gates"):
        PatternSet.sample(X, 0)
    with pytest.raises(ValueError, match="bias_column"):
        PatternSet.sample(X, 5, seed=0, bias_column=True)
    with pytest.raises(ValueError, match="threshold"):
        _core.flip_patterns(X, G, -1.0)
    with pytest.raises(ValueError, match="max_patterns"):
        _core.enumerate_patterns(X, max_patterns=0)
    pats = PatternSet.from_gates(X, G)
    with pytest.raises(ValueError, match="indices"):
        pats.subset([pats.n_patterns])
    with pytest.raises(ValueError, match="indices"):
        pats.subset([0, 0])
    with pytest.raises(TypeError, match="indices"):
        pats.subset([0.5])
    with pytest.raises(ValueError, match="X_new"):
        pats.recompute(rng.standard_normal((5, 4)))
    other = PatternSet.from_gates(rng.standard_normal((11, 3)), G)
    with pytest.raises(ValueError, match="other"):
        pats.merge(other)
    words = pats.words()
    with pytest.raises(ValueError, match="bits set past"):
        PatternSet.from_words(10, 3, words | np.uint64(1 << 20), pats.gates())
    with pytest.raises(ValueError, match="words"):
        PatternSet.from_words(10, 3, words[:, :0], pats.gates())
    with pytest.raises(TypeError, match="words"):
        PatternSet.from_words(10, 3, words.astype(np.int64), pats.gates())

"""Reference pattern code: dedup, sampling, flips, and the brute-force arrangement enumeration."""

import numpy as np
import pytest

from convexnn.reference import (
    add_bias,
    cover_count,
    distinct_hyperplanes,
    enumerate_bruteforce,
    flip_patterns,
    masks_from_gates,
    network_gates,
    sample_gates,
)


def as_set(masks):
    return {tuple(col) for col in np.asarray(masks, dtype=bool).T}


def sampled_masks(X, n_samples=20000, seed=1):
    """Independent lower bound: distinct nonzero 1[X u >= 0] over many Gaussian u."""
    U = np.random.default_rng(seed).standard_normal((X.shape[1], n_samples))
    M = X @ U >= 0
    return {m for m in as_set(M) if any(m)}


def check_enumeration(X):
    """Common checks of enumerate_bruteforce on X; returns the masks."""
    M, G = enumerate_bruteforce(X)
    n, P = M.shape
    assert M.dtype == bool and G.shape == (X.shape[1], P)
    assert len(as_set(M)) == P  # distinct
    assert not np.any(~M.any(axis=0))  # no all-zero pattern
    # Gates lie strictly inside their regions: same masks back, positive margin on nonzero rows.
    M2, G2 = masks_from_gates(X, G)
    assert np.array_equal(M2, M) and np.array_equal(G2, G)
    nonzero = np.linalg.norm(X, axis=1) > 0
    margins = np.abs(X[nonzero] @ G) / np.linalg.norm(X[nonzero], axis=1)[:, None]
    assert P == 0 or margins.min() > 1e-9
    assert np.allclose(np.linalg.norm(G, axis=0), 1.0)
    # Sampling only finds true regions.
    assert sampled_masks(X) <= as_set(M)
    return M


def test_add_bias():
    X = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(add_bias(X), [[0, 1, 1], [2, 3, 1], [4, 5, 1]])
    assert np.array_equal(X, np.arange(6.0).reshape(3, 2))  # not modified


def test_masks_from_gates_dedup_and_drop_zero():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    G = np.array([[1.0, -1.0, 2.0, 0.0, -1.0], [1.0, -1.0, 2.0, 1.0, 0.5]])
    # patterns: g0 -> 110, g1 -> 001, g2 -> 110 (dup), g3 -> 110 (x1: 0>=0), g4 -> 011
    M, Gk = masks_from_gates(X, G)
    assert np.array_equal(M.T.astype(int), [[1, 1, 0], [0, 0, 1], [0, 1, 1]])
    assert np.array_equal(Gk, G[:, [0, 1, 4]])
    # all-zero pattern is dropped
    M, Gk = masks_from_gates(np.array([[1.0], [2.0]]), np.array([[-1.0, 1.0]]))
    assert M.shape == (2, 1) and M.all() and Gk[0, 0] == 1.0
    # ties count as active (>=)
    M, _ = masks_from_gates(np.array([[1.0, -1.0], [0.0, 0.0]]), np.array([[1.0], [1.0]]))
    assert M[:, 0].tolist() == [True, True]


def test_sample_gates_deterministic_and_bias_through_point():
    X = np.random.default_rng(0).standard_normal((20, 3)) + 5.0  # uncentered data
    G = sample_gates(X, 50, seed=3)
    assert G.shape == (3, 50)
    assert np.array_equal(G, sample_gates(X, 50, seed=3))
    assert not np.array_equal(G, sample_gates(X, 50, seed=4))
    Gb = sample_gates(X, 50, seed=3, bias=True)
    assert Gb.shape == (4, 50)
    Xb = add_bias(X)
    # each hyperplane passes through one training point
    assert np.all(np.min(np.abs(Xb @ Gb), axis=0) < 1e-12)
    # the chosen point is active, so no pattern is all-zero, and most split the data
    M = Xb @ Gb >= 0
    assert np.all(M.sum(axis=0) >= 1)
    assert np.mean(M.sum(axis=0) < 20) > 0.5
    Mu, _ = masks_from_gates(Xb, Gb)
    assert Mu.shape[1] > 1
    # feature entries are N(0,1): mean ~0, std ~1 over many draws
    big = sample_gates(X, 4000, seed=0)
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05


def test_cover_count_values():
    assert cover_count(5, 1) == 2
    assert cover_count(5, 2) == 10
    assert cover_count(50, 2) == 100
    assert cover_count(50, 3) == 2452
    assert cover_count(4, 4) == 16 and cover_count(4, 6) == 16  # 2^n when r >= n
    with pytest.raises(ValueError, match="n"):
        cover_count(0, 2)


def test_toy_enumeration_is_threshold_patterns():
    X = add_bias(np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]]))
    M = check_enumeration(X)
    expected = {"00001", "00011", "00111", "01111", "10000", "11000", "11100", "11110", "11111"}
    assert {"".join(str(int(b)) for b in m) for m in as_set(M)} == expected
    assert M.shape[1] == cover_count(5, 2) - 1
    # without bias: two patterns
    M = check_enumeration(np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]]))
    assert as_set(M) == {(False, False, True, True, True), (True, True, True, False, False)}


@pytest.mark.parametrize("r", [2, 3, 4])
def test_general_position_with_bias_equals_cover_minus_one(r):
    # With a bias column the all-negative region always exists, so one pattern is dropped.
    X = add_bias(np.random.default_rng(r).standard_normal((8, r - 1)))
    M = check_enumeration(X)
    assert M.shape[1] == cover_count(8, r) - 1


def test_rank_one_without_bias():
    x = np.array([[-1.5], [0.3], [2.0], [-0.7]])
    assert check_enumeration(x).shape[1] == cover_count(4, 1) == 2
    # all rows positive: the all-negative region gives the all-zero pattern, which is dropped
    assert check_enumeration(np.abs(x)).shape[1] == cover_count(4, 1) - 1


@pytest.mark.parametrize("r", [2, 3, 4])
def test_general_position_central(r):
    rng = np.random.default_rng(10 + r)
    # (a) every row has a positive first entry: the all-positive / all-negative regions exist
    X = rng.standard_normal((7, r))
    X[:, 0] = np.abs(X[:, 0]) + 0.1
    assert check_enumeration(X).shape[1] == cover_count(7, r) - 1
    # (b) rows e_1..e_r and -(e_1+..+e_r) positively span R^r: no all-positive region
    X = np.vstack([np.eye(r), -np.ones((1, r)), rng.standard_normal((7 - r - 1, r))])
    assert check_enumeration(X).shape[1] == cover_count(7, r)


def test_rank_deficient_general_position():
    rng = np.random.default_rng(5)
    X = add_bias(rng.standard_normal((7, 2))) @ rng.standard_normal((3, 5))  # rank 3 in R^5
    M = check_enumeration(X)
    # the patterns are those of any basis of the column space (rank reduction, seed A.2)
    Uc = np.linalg.svd(X, full_matrices=False)[0][:, :3]
    assert as_set(M) == as_set(enumerate_bruteforce(Uc)[0])
    assert M.shape[1] in (cover_count(7, 3), cover_count(7, 3) - 1)


def test_degenerate_repeated_collinear_opposite_zero_rows():
    pts = np.array([[-2.0], [-1.0], [-1.0], [0.5], [2.0], [2.0]])  # repeated 1-D points
    M = check_enumeration(add_bias(pts))
    assert M.shape[1] == 2 * 4 - 1  # 2 * n_distinct - 1
    # collinear points in 2-D with a bias column: same as 1-D (rank 2 arrangement)
    t = np.array([-1.0, 0.2, 0.5, 3.0, 0.5])
    P2 = np.c_[1 + 2 * t, -1 + t]
    M = check_enumeration(add_bias(P2))
    assert M.shape[1] == 2 * 4 - 1
    # opposite points without bias: x and -x define one hyperplane (rank 2: 2 * h regions)
    base = np.array([[1.0, 0.2], [0.3, 1.0], [-1.0, 0.7]])
    Xo = np.vstack([base, -base, 2 * base[:1]])
    M = check_enumeration(Xo)
    assert M.shape[1] == 2 * 3  # 3 distinct lines, none all-zero
    # a mask of x and -x are complementary except on ties (none: gates are interior)
    assert np.all(M[0] != M[3]) and np.all(M[0] == M[6])
    # zero row: always active, and the pattern count is that of the nonzero rows without dropping
    Xz = np.vstack([base, np.zeros((1, 2))])
    M = check_enumeration(Xz)
    assert M[3].all()
    assert M.shape[1] == 6  # 3 lines in R^2 -> 6 regions, none dropped


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_degenerate_matches_deduplicated_hyperplanes(seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((5, 3))
    # repeats, positive/negative multiples, a zero row, and a row in the span of two others
    X = np.vstack([base, base[[0]], -3 * base[[1]], 0.5 * base[[2]], np.zeros((1, 3)), base[[3]] + base[[4]]])
    M = check_enumeration(X)
    H, which, orient = distinct_hyperplanes(X)
    assert len(H) == 6 and which[8] == -1
    assert list(which[5:8]) == [0, 1, 2] and orient[6] == -orient[1]
    # The regions of X are the cells of its distinct hyperplanes.  With a zero row (always active)
    # no pattern is dropped on either side, so both counts are the number of cells.
    Hz = np.vstack([H, np.zeros((1, 3))])
    MH, GH = enumerate_bruteforce(Hz)
    assert M.shape[1] == MH.shape[1]
    assert as_set(masks_from_gates(X, GH)[0]) == as_set(M)
    # independent dense-sampling lower bound in R^3 (few, fat regions): it finds all of them
    assert sampled_masks(X, 200000, seed) == as_set(M)


def test_bruteforce_refuses_large_n():
    with pytest.raises(ValueError, match="X must have at most 16 rows"):
        enumerate_bruteforce(np.ones((17, 2)))


def test_flip_patterns():
    X = np.array([[1.0], [0.05], [-0.02], [-1.0]])
    M = flip_patterns(X, np.array([1.0]), 0.1)
    # base 1100; flips of entries 1 and 2 (|x g| <= 0.1)
    assert [tuple(c.astype(int)) for c in M.T] == [(1, 1, 0, 0), (1, 0, 0, 0), (1, 1, 1, 0)]
    assert flip_patterns(X, np.array([1.0]), 0.0).shape[1] == 1
    # several gates, dedup across gates, all-zero dropped
    M = flip_patterns(X, np.array([[1.0, 1.0, -1.0]]), 0.0)
    assert M.shape[1] == 2
    M = flip_patterns(np.array([[1.0], [0.01]]), np.array([-1.0]), 0.05)  # base 00 -> flips 01
    assert [tuple(c.astype(int)) for c in M.T] == [(0, 1)]


def test_network_gates():
    W1 = np.arange(6.0).reshape(3, 2)
    G = network_gates(W1)
    assert G.shape == (2, 3) and np.array_equal(G, W1.T)

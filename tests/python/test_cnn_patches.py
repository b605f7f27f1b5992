"""convexnn.cnn.extract_patches against a naive loop, and its bad-input errors."""

import numpy as np
import pytest

from convexnn.cnn import extract_patches, patch_grid


def _naive(images, size, stride, padding):
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    (sr, sc), (tr, tc), (pr, pc) = size, stride, padding
    imgs = np.pad(imgs, ((0, 0), (pr, pr), (pc, pc), (0, 0)))
    n, H, W, C = imgs.shape
    out = []
    for i in range(n):
        rows = []
        for r in range(0, H - sr + 1, tr):
            for c in range(0, W - sc + 1, tc):
                rows.append(imgs[i, r : r + sr, c : c + sc, :].ravel())
        out.append(rows)
    return np.array(out)


@pytest.mark.parametrize(
    "shape,size,stride,padding",
    [
        ((3, 8, 8), (3, 3), (1, 1), (0, 0)),
        ((2, 7, 9, 3), (4, 2), (2, 3), (1, 2)),
        ((1, 5, 5, 2), (5, 5), (1, 1), (0, 0)),
        ((2, 6, 6), (2, 2), (4, 4), (1, 1)),
    ],
)
def test_matches_naive_loop(shape, size, stride, padding):
    images = np.random.default_rng(0).standard_normal(shape)
    got = extract_patches(images, size, stride, padding)
    ref = _naive(images, size, stride, padding)
    np.testing.assert_array_equal(got, ref)
    Kr, Kc = patch_grid(shape[1:3], size, stride, padding)
    assert got.shape == (shape[0], Kr * Kc, size[0] * size[1] * (shape[3] if len(shape) == 4 else 1))
    assert got.flags.c_contiguous
    assert np.shares_memory(got, got.reshape(-1, got.shape[2]))  # stacking is a view


def test_dtypes_and_int_arguments():
    imgs = np.arange(32, dtype=np.int64).reshape(2, 4, 4)
    out = extract_patches(imgs, 2, stride=2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0, 0], [0, 1, 4, 5])
    assert extract_patches(imgs.astype(np.float32), 3).dtype == np.float32


@pytest.mark.parametrize(
    "images,kwargs,exc,match",
    [
        (np.zeros((2, 4, 4)), dict(size=5), ValueError, "size"),
        (np.zeros((2, 4, 4)), dict(size=2, stride=0), ValueError, "stride"),
        (np.zeros((2, 4, 4)), dict(size=2, padding=-1), ValueError, "padding"),
        (np.zeros((4, 4)), dict(size=2), ValueError, "images.*rank 2"),
        (np.zeros((1, 2, 4, 4, 1)), dict(size=2), ValueError, "images.*rank 5"),
        (np.full((1, 4, 4), np.nan), dict(size=2), ValueError, "images contains NaN"),
        (np.zeros((0, 4, 4)), dict(size=2), ValueError, "images has an empty axis"),
        (np.array([["a"]] * 2, dtype=object)[None], dict(size=1), TypeError, "images must hold numbers"),
        (np.zeros((1, 4, 4)), dict(size=2.5), TypeError, "size"),
        (np.zeros((1, 4, 4)), dict(size=(2, 2, 2)), TypeError, "size"),
        (np.zeros((1, 4, 4)), dict(size=2, stride=True), TypeError, "stride"),
    ],
)
def test_bad_input(images, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        extract_patches(images, **kwargs)


def test_padding_allows_larger_window():
    out = extract_patches(np.ones((1, 2, 2)), size=4, padding=1)
    assert out.shape == (1, 1, 16) and out.sum() == 4


def test_lazy_top_level_names():
    import convexnn
    from convexnn.cnn import ConvexCNNClassifier, ConvexCNNRegressor

    assert convexnn.ConvexCNNClassifier is ConvexCNNClassifier
    assert convexnn.ConvexCNNRegressor is ConvexCNNRegressor
    assert convexnn.cnn.extract_patches is extract_patches

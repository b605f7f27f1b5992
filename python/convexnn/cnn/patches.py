"""Patch extraction: images (n, H, W[, C]) to patch matrices (n, K, h) of a convolutional layer.

A two-layer CNN with filters u_j in R^h sees an image through its K patches x_k in R^h (Pilanci & Ergen,
"Neural Networks are Convex Regularizers", ICML 2020, Section 4): the k-th patch of sample i is the i-th row of
the patch matrix X_k in R^{n x h}. :func:`extract_patches` returns all K patch matrices at once as an array
``P`` of shape (n, K, h) with ``P[:, k, :] = X_k``; ``P.reshape(n * K, h)`` is then the stacked patch matrix X'
(sample-major row order) without a copy.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["extract_patches", "patch_grid", "check_patches"]


def _pair(value, name, low):
    """An int or a pair of ints >= low, as a tuple (rows, cols)."""
    if isinstance(value, (numbers.Integral,)) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{name} must be an int or a pair of ints; got {value!r}")
    if min(value) < low:
        raise ValueError(f"{name} must be >= {low}; got {tuple(value)}")
    return int(value[0]), int(value[1])


def check_images(images, name="images"):
    """Images as a float (n, H, W, C) array (a view when possible); (n, H, W) gets C = 1.

    Raises
    ------
    TypeError
        Non-numeric or complex input.
    ValueError
        Rank other than 3 or 4, an empty axis, NaN or Inf.
    """
    if images is None:
        raise ValueError(f"{name} must be an array of shape (n, H, W) or (n, H, W, C); got None")
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    if arr.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (n, H, W) or (n, H, W, C); got shape {arr.shape} (rank {arr.ndim})")
    if arr.ndim == 3:
        arr = arr[..., None]
    if 0 in arr.shape:
        raise ValueError(f"{name} has an empty axis (shape {arr.shape})")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def patch_grid(image_shape, size, stride=1, padding=0):
    """Number of patch positions (rows, cols) of a convolution over images of ``image_shape`` (H, W).

    Parameters
    ----------
    image_shape : tuple (H, W)
    size, stride, padding : int or (int, int)
        As in :func:`extract_patches`.

    Returns
    -------
    (int, int)
        (floor((H + 2 p_r - s_r) / t_r) + 1, floor((W + 2 p_c - s_c) / t_c) + 1).
    """
    H, W = image_shape
    (sr, sc), (tr, tc), (pr, pc) = _pair(size, "size", 1), _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    if sr > H + 2 * pr or sc > W + 2 * pc:
        raise ValueError(
            f"size {(sr, sc)} is larger than the padded image ({H + 2 * pr}, {W + 2 * pc}) "
            f"(image {(H, W)}, padding {(pr, pc)})"
        )
    return (H + 2 * pr - sr) // tr + 1, (W + 2 * pc - sc) // tc + 1


def extract_patches(images, size, stride=1, padding=0):
    """All patches of a convolution as patch matrices: (n, H, W[, C]) -> (n, K, h).

    Parameters
    ----------
    images : array of shape (n, H, W) or (n, H, W, C)
        Images (channels last). Integer input is converted to float64; float32 stays float32.
    size : int or (int, int)
        Patch (filter) height and width, >= 1 and at most the padded image.
    stride : int or (int, int), default 1
        Step between patch positions, >= 1.
    padding : int or (int, int), default 0
        Zeros added on each side of the image before extracting, >= 0.

    Returns
    -------
    ndarray of shape (n, K, h)
        ``K = K_r * K_c`` patch positions in row-major order (see :func:`patch_grid`), ``h = s_r * s_c * C``
        entries per patch in (row, col, channel) order. ``out[i, k]`` is row i of the patch matrix X_k of
        Pilanci & Ergen (ICML 2020, Section 4). C-contiguous, so ``out.reshape(n * K, h)`` is a view.

    Raises
    ------
    ValueError
        Wrong image rank, an empty axis, NaN/Inf in ``images``, ``stride`` < 1, ``padding`` < 0, or ``size``
        larger than the padded image (the message names the argument).
    TypeError
        Non-numeric ``images``, or a ``size`` / ``stride`` / ``padding`` that is not an int or a pair of ints.

    Notes
    -----
    The windows are a strided view of the (padded) images (``numpy.lib.stride_tricks.sliding_window_view``);
    the only copy is the final (n, K, h) array. Padding copies the images once.

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn.cnn import extract_patches
    >>> extract_patches(np.arange(16.0).reshape(1, 4, 4), size=2, stride=2)[0]
    array([[ 0.,  1.,  4.,  5.],
           [ 2.,  3.,  6.,  7.],
           [ 8.,  9., 12., 13.],
           [10., 11., 14., 15.]])
    """
    arr = check_images(images)
    n, H, W, C = arr.shape
    (sr, sc) = _pair(size, "size", 1)
    (tr, tc) = _pair(stride, "stride", 1)
    (pr, pc) = _pair(padding, "padding", 0)
    Kr, Kc = patch_grid((H, W), (sr, sc), (tr, tc), (pr, pc))
    if pr or pc:
        arr = np.pad(arr, ((0, 0), (pr, pr), (pc, pc), (0, 0)))
    # (n, H', W', C, sr, sc) view of every window, then every stride-th position.
    windows = sliding_window_view(arr, (sr, sc), axis=(1, 2))[:, ::tr, ::tc]
    windows = windows[:, :Kr, :Kc]
    # (n, Kr, Kc, sr, sc, C) -> (n, K, h); this reshape is the one copy.
    return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(n, Kr * Kc, sr * sc * C)


def check_patches(patches, name="patches", dtype=None):
    """Patch matrices as a C-contiguous float (n, K, h) array; ValueError / TypeError naming ``name``."""
    if patches is None:
        raise ValueError(f"{name} must be an array of shape (n, K, h); got None")
    arr = np.asarray(patches)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n, K, h) (samples, patches, patch size); got shape {arr.shape}"
            " -- use extract_patches(images, size) to build it from images"
        )
    if 0 in arr.shape:
        raise ValueError(f"{name} has an empty axis (shape {arr.shape})")
    target = (
        np.dtype(dtype)
        if dtype is not None
        else (arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64))
    )
    arr = np.ascontiguousarray(arr, dtype=target)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr

"""The one place where the masked operators A_i = D_i X of the solvers are built.

Every solve, certificate, cutting-plane round, worker block and prediction of the package constructs its
``MaskedOperatorF32`` / ``MaskedOperatorF64`` through :func:`make_operator`, so that the choice of precision, the
product method (and its environment override) and the device are decided here alone.
"""

from __future__ import annotations

import os

import numpy as np

from . import _core

__all__ = ["PRODUCT_METHODS", "PRODUCT_METHOD_ENV", "cone_operator", "make_operator", "product_method"]

PRODUCT_METHODS = ("auto", "gemm", "tables", "amx", "bf16")
_FLOAT32_ONLY = ("amx", "bf16")  # bf16-split products of float32 operands
# Overrides method="auto" for benchmarks (bench/README.md) and for bisecting a numerical difference.
PRODUCT_METHOD_ENV = "CONVEXNN_PRODUCT_METHOD"

_CLASSES = {np.dtype(np.float32): _core.MaskedOperatorF32, np.dtype(np.float64): _core.MaskedOperatorF64}
_CONE_CLASSES = {np.dtype(np.float32): _core.ConeOperatorF32, np.dtype(np.float64): _core.ConeOperatorF64}


def _resolve_dtype(dtype, Xb):
    if dtype is None:
        dtype = Xb.dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be None, float32 or float64; got {dtype!r}") from None
    if dt not in _CLASSES:
        raise ValueError(f"dtype must be None, float32 or float64; got {dt}")
    return dt


def product_method(dtype=np.float32, method="auto"):
    """The product method an operator of ``dtype`` is built with.

    Parameters
    ----------
    dtype : float32 or float64
    method : {"auto", "gemm", "tables", "amx", "bf16"}
        An explicit method is used as given. "auto" reads the environment variable ``CONVEXNN_PRODUCT_METHOD``
        (default "auto": the C++ operator chooses per product). All methods are exact up to rounding. "amx" and
        "bf16" are float32 methods: from the environment it leaves float64 operators (e.g. the certificates of float32
        iterations) on "auto"; given explicitly for float64 it is a ValueError.

    Returns
    -------
    str
    """
    if not isinstance(method, str) or method not in PRODUCT_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, PRODUCT_METHODS))}; got {method!r}")
    dt = np.dtype(dtype)
    if method != "auto":
        if method in _FLOAT32_ONLY and dt != np.float32:
            raise ValueError(f"method={method!r} is a float32 product method; the operator's dtype is {dt}")
        return method
    chosen = os.environ.get(PRODUCT_METHOD_ENV, "auto")
    if chosen not in PRODUCT_METHODS:
        raise ValueError(f"{PRODUCT_METHOD_ENV} must be one of {', '.join(map(repr, PRODUCT_METHODS))}; got {chosen!r}")
    if chosen in _FLOAT32_ONLY and dt != np.float32:
        return "auto"
    return chosen


def make_operator(Xb, patterns, dtype=None, device="cpu", method="auto"):
    """The masked operator A(U) = sum_i D_i Xb U_i over ``patterns``.

    Parameters
    ----------
    Xb : ndarray of shape (n, d)
        The design (with its ones column when the neurons have a bias), C- or F-ordered. It is viewed, not
        copied, when it already has ``dtype``; the operator keeps it alive.
    patterns : Patterns, convexnn._core.PatternSet or bool ndarray of shape (n, P)
        The sign patterns D_i of the same n rows.
    dtype : None, float32 or float64
        Precision of the products (None: Xb's).
    device : {"cpu"}
        Where the products run. Only the CPU operators are part of this build.
    method : {"auto", "gemm", "tables", "amx", "bf16"}
        Product method; see :func:`product_method` (``CONVEXNN_PRODUCT_METHOD`` overrides "auto").

    Returns
    -------
    convexnn._core.MaskedOperatorF32 or convexnn._core.MaskedOperatorF64

    Raises
    ------
    ValueError
        ``device`` other than "cpu", a dtype other than float32/float64, an unknown method (argument or
        environment variable), or arrays the C++ operator rejects.
    """
    if device != "cpu":
        raise ValueError(
            f"device={device!r}: the GPU path of the masked operators is not available in this build "
            "of convexnn; use device='cpu'"
        )
    Xb = np.asarray(Xb)
    if Xb.ndim != 2:
        raise ValueError(f"Xb must be a 2-D array of shape (n, d); got shape {Xb.shape}")
    dt = _resolve_dtype(dtype, Xb)
    masks = getattr(patterns, "_set", patterns)  # a Patterns wraps its C++ PatternSet
    return _CLASSES[dt](Xb.astype(dt, copy=False), masks, method=product_method(dt, method))


def cone_operator(op, X, patterns):
    """The operator of the exact solver (``_core.solve_relu``): ``op`` with the rows of its cone constraints.

    A ``MaskedOperatorF32`` / ``MaskedOperatorF64`` built from a PatternSet already is one; this wraps any other
    block operator (e.g. a Python subclass such as the pooled convolutional operator of ``convexnn.cnn``).

    Parameters
    ----------
    op : convexnn._core.BlockOperatorF32 or BlockOperatorF64
        n outputs, P blocks of dimension d.
    X : ndarray of shape (m, d), op's dtype
        The rows of the constraints (2 D_i - I) X v >= 0, C- or F-ordered (viewed; kept alive).
    patterns : Patterns or convexnn._core.PatternSet
        P patterns on the m rows of X (pattern i constrains block i).

    Returns
    -------
    convexnn._core.ConeOperatorF32 or convexnn._core.ConeOperatorF64

    Raises
    ------
    TypeError
        ``op`` is not a block operator.
    ValueError
        X of another dtype, or X / patterns that do not match op's blocks.
    """
    if isinstance(op, _core.BlockOperatorF32):
        dt = np.dtype(np.float32)
    elif isinstance(op, _core.BlockOperatorF64):
        dt = np.dtype(np.float64)
    else:
        raise TypeError(f"op must be a convexnn._core.BlockOperatorF32 or BlockOperatorF64; got {type(op).__name__}")
    return _CONE_CLASSES[dt](op, X, getattr(patterns, "_set", patterns))

"""Input validation shared by the public API (scikit-learn style: errors name the argument)."""

from __future__ import annotations

import numbers
import os

import numpy as np

LOSSES = ("squared", "logistic", "hinge", "squared_hinge", "cross_entropy")
BINARY_LOSSES = ("logistic", "hinge", "squared_hinge")
FORMULATIONS = ("gated", "relu")
GROUPS = ("output", "neuron")
DEVICES = ("cpu", "cuda")
FLOAT_DTYPES = (np.float32, np.float64)


# Integer arguments are passed to C++ as 64-bit integers; larger values (meaning "no limit") are clipped here.
INT_LIMIT = 2**62


def check_bool(value, name):
    """True/False (numpy bools too); anything else (1, "False", None) is a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_verbose(value, name="verbose"):
    """scikit-learn's verbosity: False/True or an int >= 0 (0 silent, 1 a progress bar, >= 2 solver lines)."""
    if isinstance(value, (bool, np.bool_)):
        return int(bool(value))
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a bool or an int >= 0; got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
    return int(value)


def torch_to_numpy(value, name="X"):
    """A CPU torch tensor as a numpy array (detached, no copy where possible); anything else unchanged.

    GPU tensors are a TypeError: the solvers and predictions run on the CPU.
    """
    if not type(value).__module__.startswith("torch") or not hasattr(value, "detach"):
        return value
    if getattr(value, "device", None) is not None and value.device.type != "cpu":
        raise TypeError(f"{name} is a torch tensor on {value.device}; move it to the CPU first ({name}.cpu())")
    return value.detach().numpy()


def _asarray(value, name):
    """np.asarray with errors naming the argument (ragged lists, sparse matrices, GPU arrays, non-numbers)."""
    if hasattr(value, "__cuda_array_interface__"):
        raise TypeError(f"{name} is a GPU array; the GPU solvers are not available: pass a numpy array")
    value = torch_to_numpy(value, name)
    if hasattr(value, "tocsr") or type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a scipy.sparse matrix; sparse input is not supported (the masked products need "
            f"the dense rows): pass {name}.toarray()"
        )
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers; {' '.join(str(exc).split()[:12])}") from None


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_dtype(dtype, name="dtype"):
    """None (keep the input's float type) or float32 / float64."""
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be None, float32 or float64; got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be None, float32 or float64; got {dt}")
    return dt


def check_X(X, name="X", dtype=None):
    """Return X as a 2-D float32/float64 array (C or F order kept, no copy when possible).

    Integer or boolean input is converted to float64. Raises ValueError for wrong shape, n = 0, d = 0,
    NaN or Inf, TypeError for non-numeric input.
    """
    if X is None:
        raise ValueError(f"{name} must be an array of shape (n_samples, n_features); got None")
    arr = _asarray(X, name)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (n_samples, n_features); got shape {arr.shape}")
    n, d = arr.shape
    if n == 0:
        raise ValueError(f"{name} has 0 samples (shape {arr.shape}); at least one is required")
    if d == 0:
        raise ValueError(f"{name} has 0 features (shape {arr.shape}); at least one is required")
    target = check_dtype(dtype) or (arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64))
    if arr.dtype != target:
        arr = arr.astype(target)
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def check_y(y, n_samples, loss, name="y"):
    """Return y as a float64 (n, c) array valid for `loss`, and whether it was 1-D.

    Binary losses need y in {-1, +1} with one column; cross_entropy needs a one-hot (n, c) array.
    """
    if y is None:
        raise ValueError(f"{name} must be an array of shape (n_samples,) or (n_samples, n_outputs); got None")
    arr = _asarray(y, name)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n_samples,) or (n_samples, n_outputs); got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} rows but X has {n_samples} samples")
    was_1d = arr.ndim == 1
    arr = np.array(arr.reshape(n_samples, -1), dtype=np.float64, order="C")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 outputs (shape {np.shape(y)})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    if loss in BINARY_LOSSES:
        if arr.shape[1] != 1:
            raise ValueError(f"loss={loss!r} is binary and needs one output column; {name} has {arr.shape[1]}")
        if not np.isin(arr, (-1.0, 1.0)).all():
            raise ValueError(f"loss={loss!r} needs {name} in {{-1, +1}}; got values {np.unique(arr)[:5]}")
    if loss == "cross_entropy":
        if arr.shape[1] < 2 or not (np.isin(arr, (0.0, 1.0)).all() and (arr.sum(axis=1) == 1).all()):
            raise ValueError(f"loss='cross_entropy' needs {name} one-hot of shape (n_samples, n_classes >= 2)")
    return arr, was_1d


def check_scalar(value, name, *, low=None, high=None, low_inclusive=True, allow_inf=False, integer=False):
    """A real (or integer) scalar within bounds; bool is rejected."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a real number'}; got {value!r}")
    if not integer:
        value = float(value)
        if np.isnan(value) or (np.isinf(value) and not allow_inf):
            raise ValueError(f"{name} must be finite; got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}; got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}; got {value}")
    return value


def add_bias_column(X):
    """X with a ones column appended (same dtype and memory order)."""
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    return (
        np.asfortranarray(np.hstack([X, ones]))
        if X.flags.f_contiguous and not X.flags.c_contiguous
        else np.hstack([X, ones])
    )


def check_sample_weight(sample_weight, n_samples, name="sample_weight"):
    """None, or a float64 (n,) array of finite weights >= 0 with a positive sum (a scalar is broadcast)."""
    if sample_weight is None:
        return None
    w = _asarray(sample_weight, name)
    if np.iscomplexobj(w) or w.dtype == object or not (np.issubdtype(w.dtype, np.number) or w.dtype == bool):
        raise TypeError(f"{name} must hold real numbers; got dtype {w.dtype}")
    w = np.broadcast_to(w.astype(np.float64), (n_samples,)).copy() if w.ndim == 0 else w.astype(np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},); got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{name} must be finite and >= 0")
    if not w.sum() > 0:
        raise ValueError(f"{name}: every weight is zero; at least one sample needs a positive weight")
    return w


def available_memory():
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup limit (None when unknown)."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        if limit != "max":
            free = int(limit) - used
            avail = free if avail is None else min(avail, free)
    except (OSError, ValueError):
        pass
    if avail is None and hasattr(os, "sysconf"):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            avail = None
    return avail


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_memory(nbytes, what):
    """MemoryError naming the bytes when ``what`` needs more than the memory available (checked up front)."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(
            f"{what} needs about {_bytes(nbytes)} ({int(nbytes)} bytes) but only {_bytes(avail)} are available"
        )

"""convexnn: globally optimal two-layer ReLU networks through their exact convex reformulations.

>>> import convexnn as cnn
>>> res = cnn.solve(X, y, beta=1e-2, patterns=200, bias=True)       # doctest: +SKIP
>>> res.objective, res.gap, res.status                              # doctest: +SKIP
>>> net = res.network(); net.predict(X)                             # doctest: +SKIP
"""

from __future__ import annotations


def _load_blas() -> None:
    # The C++ core links against the OpenBLAS of the scipy-openblas32 wheel; load it first (globally) so
    # the extension resolves it wherever pip put that wheel.
    import ctypes
    import os

    import scipy_openblas32

    lib = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True))
    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)


_load_blas()
# OpenMP threads spin briefly between parallel regions, then sleep (GNU OpenMP: GOMP_SPINCOUNT, ~0.3 ms on a
# 2026 x86 core). libgomp's default spins ~6 ms: on a busy machine spinning threads of small solves steal
# the cores from each other (measured 30-1000x slowdowns at load 3-9 on 2 cores). Sleeping at once
# (OMP_WAIT_POLICY=passive) costs a wake-up per product, and the kernel may wake the worker on the calling
# thread's core, running the product on one core for a while: measured 1.1-2x slower masked products and
# gated solves (bench/RESULTS.md). Set OMP_WAIT_POLICY or GOMP_SPINCOUNT before importing convexnn to choose.
import os as _os  # noqa: E402

if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"
from . import _core  # noqa: E402
from .estimators import ConvexReLUClassifier, ConvexReLURegressor  # noqa: E402
from .gauge import min_norm_interpolation  # noqa: E402
from .io import load, save  # noqa: E402
from .network import GatedNetwork, Network  # noqa: E402
from .path import RegularizationPath, solve_path_cv  # noqa: E402
from .patterns import Patterns, enumerate_patterns, sample_patterns  # noqa: E402
from .result import ConvergenceWarning, SolveResult  # noqa: E402
from .solve import beta_max, solve, solve_path  # noqa: E402

__version__ = _core.__version__
get_num_threads = _core.get_num_threads
set_num_threads = _core.set_num_threads

# GNU OpenMP cannot reuse its threads in a process forked after they started: a parallel region there waits
# for them forever (multiprocessing's default "fork" start method on Linux). A forked child therefore runs
# convexnn on one thread; set_num_threads(k) in the child re-enables threads at that risk. Use the "spawn" or
# "forkserver" start method for parallel workers.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=lambda: _core.set_num_threads(1))

# Subpackages of the other convex programs, imported on first use (they pull in more of SciPy / scikit-learn):
# convexnn.bn (batch-normalized networks), convexnn.cnn (convolutional networks), convexnn.theory (closed forms),
# convexnn.distributed (Dask).
_SUBPACKAGES = ("bn", "cnn", "theory", "distributed")
_LAZY_NAMES = {
    "ConvexBNReLURegressor": "bn",
    "ConvexBNReLUClassifier": "bn",
    "ConvexCNNRegressor": "cnn",
    "ConvexCNNClassifier": "cnn",
}


def __getattr__(name):
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'convexnn' has no attribute {name!r}")


__all__ = [
    "ConvexReLUClassifier",
    "ConvexReLURegressor",
    "GatedNetwork",
    "Network",
    "Patterns",
    "SolveResult",
    "beta_max",
    "enumerate_patterns",
    "get_num_threads",
    "load",
    "min_norm_interpolation",
    "sample_patterns",
    "save",
    "set_num_threads",
    "solve",
    "solve_path",
    "__version__",
    "ConvergenceWarning",
    "RegularizationPath",
    "solve_path_cv",
]

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
from . import _core  # noqa: E402
from .network import GatedNetwork, Network  # noqa: E402
from .patterns import Patterns, enumerate_patterns, sample_patterns  # noqa: E402
from .result import SolveResult  # noqa: E402
from .solve import beta_max, solve, solve_path  # noqa: E402

__version__ = _core.__version__
get_num_threads = _core.get_num_threads
set_num_threads = _core.set_num_threads

__all__ = [
    "GatedNetwork", "Network", "Patterns", "SolveResult", "beta_max", "enumerate_patterns", "get_num_threads",
    "sample_patterns", "set_num_threads", "solve", "solve_path", "__version__",
]

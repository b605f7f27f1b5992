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
# OpenMP threads sleep instead of spinning between parallel regions: on a busy machine, spinning threads of
# small solves steal the cores from each other (measured 30-1000x slowdowns at load 3-9 on 2 cores).
# Set OMP_WAIT_POLICY=active before importing convexnn to prefer latency on a dedicated machine.
import os as _os  # noqa: E402

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from . import _core  # noqa: E402
from .estimators import ConvexReLUClassifier, ConvexReLURegressor  # noqa: E402
from .io import load, save  # noqa: E402
from .network import GatedNetwork, Network  # noqa: E402
from .patterns import Patterns, enumerate_patterns, sample_patterns  # noqa: E402
from .result import SolveResult  # noqa: E402
from .solve import beta_max, solve, solve_path  # noqa: E402

__version__ = _core.__version__
get_num_threads = _core.get_num_threads
set_num_threads = _core.set_num_threads

__all__ = [
    "ConvexReLUClassifier", "ConvexReLURegressor", "GatedNetwork", "Network", "Patterns", "SolveResult", "beta_max",
    "enumerate_patterns", "get_num_threads", "load", "sample_patterns", "save", "set_num_threads", "solve",
    "solve_path", "__version__",
]

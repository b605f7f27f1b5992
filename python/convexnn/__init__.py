"""convexnn: globally optimal two-layer ReLU networks through their exact convex reformulations."""

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

__version__ = _core.__version__

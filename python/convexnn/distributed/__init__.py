"""Row-partitioned solves on a Dask cluster: the same convex programs and certificates as one machine.

>>> from dask.distributed import Client                                   # doctest: +SKIP
>>> import dask.array as da, convexnn as cnn                              # doctest: +SKIP
>>> client = Client()                                                     # doctest: +SKIP
>>> Xd = da.from_zarr("X.zarr"); yd = da.from_zarr("y.zarr")              # row-chunked, doctest: +SKIP
>>> res = cnn.solve(Xd, yd, beta=1e-2, patterns=500, bias=True)           # doctest: +SKIP

Each worker holds row blocks X_(b) of the data and the bit-packed masks of the broadcast gates on its rows;
the library's C++ solvers run on the driver against a :class:`DistributedOperator`, whose products fan out to
the blocks (forward: the row parts are concatenated; adjoint: the d x P x c parts are summed). The gated
program of Pilanci & Ergen, "Neural Networks are Convex Regularizers" (ICML 2020), is solved for every loss with
its dual certificate, and the exact (cone-constrained) program by constraint generation over the rows (the cone
constraints of a working set of rows on the driver, the violation over all rows checked on the workers).
Enumerating the full hyperplane arrangement stays single-machine. See docs/distributed.md for the communication
model and the behaviour when a worker is lost.
"""

from __future__ import annotations

from ._design import DistributedDesign, WorkerLostError, is_dask_array
from ._estimators import fit_estimator
from ._operator import DistributedOperator, unique_patterns
from ._patterns import DistributedPatterns
from ._solve import beta_max, sample_patterns, solve, solve_path


def enumerate_patterns(X, bias=False, max_patterns=None):
    """Not distributed: enumerating the hyperplane arrangement needs all rows in one process.

    Raises
    ------
    ValueError
        Always, with the single-machine alternative.
    """
    raise ValueError(
        "enumerating the hyperplane arrangement stays single-machine (it needs all rows in one "
        "process): call convexnn.enumerate_patterns(X.compute(), ...) on a machine that holds X and "
        "pass the Patterns (or their gates) to solve; or sample patterns on the cluster"
    )


def wants_cluster(X, client=None) -> bool:
    """Whether :func:`convexnn.solve` and friends run on the cluster: X is a dask array or a client is given."""
    return client is not None or is_dask_array(X) or isinstance(X, DistributedDesign)


__all__ = [
    "DistributedDesign",
    "DistributedOperator",
    "DistributedPatterns",
    "WorkerLostError",
    "beta_max",
    "enumerate_patterns",
    "fit_estimator",
    "is_dask_array",
    "sample_patterns",
    "solve",
    "solve_path",
    "unique_patterns",
    "wants_cluster",
]

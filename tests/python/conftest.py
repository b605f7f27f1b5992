"""Fixtures shared by the test modules: the two-worker Dask cluster of the distributed tests."""

import contextlib

import pytest


@contextlib.contextmanager
def _local_client():
    """A client on a 2-process LocalCluster, one thread per worker (the CI configuration)."""
    import distributed

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    cl = distributed.Client(cluster)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()


@pytest.fixture(scope="module")
def client():
    """One cluster per test module (the distributed test modules importorskip dask first)."""
    with _local_client() as cl:
        yield cl


@pytest.fixture
def fresh_client():
    """A fresh cluster per test: a killed worker's restart is not waited for."""
    with _local_client() as cl:
        yield cl


DISTRIBUTED_CHUNKS = (7, 1, 0, 13, 19)  # n = 40: uneven, a one-row chunk and an empty chunk


def _distributed_problem(loss="squared", seed=0, n=40, d=3, chunks=None):
    """(X, y, Xd, yd): numpy data of a small ReLU regression (labels for the classification losses) and the
    same data as dask arrays, X in row chunks DISTRIBUTED_CHUNKS when n = 40 (else about n / 3 rows each)."""
    import dask.array as da
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + np.array([0.5, -1.0, 2.0])[:d]
    y = np.maximum(X @ rng.standard_normal(d), 0) + 0.1 * rng.standard_normal(n)
    if loss in ("logistic", "hinge", "squared_hinge"):
        y = np.where(y > np.median(y), 1.0, -1.0)
    elif loss == "cross_entropy":
        y = np.eye(3)[rng.integers(0, 3, n)]
    if chunks is None:
        chunks = DISTRIBUTED_CHUNKS if n == 40 else n // 3 + 1
    Xd = da.from_array(X, chunks=(chunks, d))
    yd = da.from_array(y, chunks=((n // 4, n - n // 4),) + y.shape[1:])
    return X, y, Xd, yd


@pytest.fixture(scope="session")
def distributed_problem():
    """The builder of the distributed tests' problems (see _distributed_problem)."""
    return _distributed_problem

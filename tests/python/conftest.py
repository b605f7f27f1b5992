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

"""convexnn.distributed: a worker killed (SIGKILL) during a solve, gated or exact.

Dask-array data: Dask recomputes the lost row blocks from the graph, the actors are restarted and the product is
re-run, so the solve ends exactly as on one machine. Scattered numpy data: the driver scatters the lost blocks
again. When the blocks cannot be restored the solve raises WorkerLostError naming the lost worker. The exact
program's state (the working set of cone rows and the iterate) is on the driver, so it survives the same way.
"""

import os
import signal

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="convexnn.distributed needs the dask extra (pip install '.[dask]')")
distributed = pytest.importorskip("distributed")

import convexnn as cnn  # noqa: E402
from convexnn.distributed import DistributedDesign, WorkerLostError  # noqa: E402
from convexnn.distributed._operator import DistributedOperator, _Base  # noqa: E402

pytestmark = pytest.mark.skipif(
    _Base is object,
    reason="this convexnn._core predates the Python operator "
    "interface (BlockOperatorF64 cannot be subclassed): rebuild the extension",
)


@pytest.fixture
def client(fresh_client):
    """A fresh 2-worker cluster per test: a killed worker's restart is not waited for."""
    return fresh_client


@pytest.fixture
def kill_on_forward(client, monkeypatch):
    """Kill (SIGKILL) the worker serving the first row blocks right before the operator's 5th forward product."""
    record = {"ops": [], "killed": None}
    original = DistributedOperator.forward

    def forward(self, U, subset=None):
        if self not in record["ops"]:
            record["ops"].append(self)
        if self.stats["forward"] == 4 and record["killed"] is None and self._servers:
            worker = self._holders[self._servers[0][2][0]][0]
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)
            record["killed"] = worker
        return original(self, U, subset)

    monkeypatch.setattr(DistributedOperator, "forward", forward)
    return record


@pytest.mark.parametrize("source", ["dask", "numpy"])
def test_solve_continues_after_worker_killed(client, kill_on_forward, distributed_problem, source):
    X, y, _, _ = distributed_problem()
    ref = cnn.solve(X, y, 1.0, patterns=20, bias=True, tol=1e-8)
    if source == "dask":
        res = cnn.solve(
            da.from_array(X, chunks=((7, 1, 0, 13, 19), 3)),
            da.from_array(y, chunks=20),
            1.0,
            patterns=20,
            bias=True,
            tol=1e-8,
        )
    else:
        res = cnn.solve(X, y, 1.0, patterns=20, bias=True, tol=1e-8, client=client)
    assert kill_on_forward["killed"] is not None
    (op,) = [o for o in kill_on_forward["ops"] if o.stats["forward"] > 4]
    assert op.stats["recovered"] >= 1 and kill_on_forward["killed"] in op.recovered_from
    assert res.status == "converged" and res.gap <= 1e-8
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-10)
    np.testing.assert_allclose(res.dual_objective, ref.dual_objective, rtol=1e-8)


def test_unrecoverable_loss_names_the_worker(client, kill_on_forward, distributed_problem, monkeypatch):
    X, y, _, _ = distributed_problem()
    # Scattered blocks whose source cannot be scattered again: the solve must stop, naming the worker.
    monkeypatch.setattr(DistributedDesign, "restore", lambda self: [])
    with pytest.raises(WorkerLostError) as info:
        cnn.solve(X, y, 1.0, patterns=20, bias=True, tol=1e-8, client=client)
    assert kill_on_forward["killed"] is not None
    assert kill_on_forward["killed"] in str(info.value)
    assert "no certificate was computed" in str(info.value)


@pytest.mark.parametrize("source", ["dask", "numpy"])
def test_exact_solve_continues_after_worker_killed(client, kill_on_forward, distributed_problem, source):
    X, y, Xd, _ = distributed_problem("squared", seed=1)
    beta = 0.2 * cnn.beta_max(X, y, 8, bias=True)
    ref = cnn.solve(X, y, beta, patterns=8, formulation="relu", bias=True, tol=1e-10)
    data = dict(X=Xd) if source == "dask" else dict(X=X, client=client)
    res = cnn.solve(y=y, beta=beta, patterns=8, formulation="relu", bias=True, tol=1e-10, **data)
    assert kill_on_forward["killed"] is not None
    (op,) = [o for o in kill_on_forward["ops"] if o.stats["forward"] > 4]
    assert op.stats["recovered"] >= 1 and kill_on_forward["killed"] in op.recovered_from
    assert res.status == "converged" and res.gap <= 1e-10 and res.max_violation <= 1e-10
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-8)
    assert res.dual_objective <= ref.objective * (1 + 1e-10)


def test_exact_unrecoverable_loss_names_the_worker(client, kill_on_forward, distributed_problem, monkeypatch):
    X, y, _, _ = distributed_problem("squared", seed=1)
    monkeypatch.setattr(DistributedDesign, "restore", lambda self: [])
    with pytest.raises(WorkerLostError) as info:
        cnn.solve(X, y, 1.0, patterns=8, formulation="relu", bias=True, tol=1e-10, client=client)
    assert kill_on_forward["killed"] is not None
    assert kill_on_forward["killed"] in str(info.value)
    assert "no certificate was computed" in str(info.value)

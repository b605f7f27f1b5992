"""The row-partitioned design matrix on a Dask cluster: one persisted :class:`RowBlock` future per chunk."""

from __future__ import annotations

import numpy as np

from . import _worker


class WorkerLostError(RuntimeError):
    """A worker holding row blocks was lost and the blocks could not be recovered in time.

    The message names the worker(s). The solve stopped before using any product of the missing rows, so no
    certificate was computed from incomplete data.
    """


def _require_dask():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError("convexnn.distributed needs dask and distributed: pip install 'convexnn[dask]'") from exc


def is_dask_array(obj) -> bool:
    """Whether ``obj`` is a ``dask.array.Array`` (without importing dask when it is not loaded)."""
    import sys

    if "dask.array" not in sys.modules:
        return False
    import dask.array as da

    return isinstance(obj, da.Array)


def resolve_client(client):
    """The given ``distributed.Client``, or the active one; ValueError when there is none."""
    _require_dask()
    from distributed import Client, default_client

    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a dask.distributed.Client; got {type(client).__name__}")
        return client
    try:
        return default_client()
    except ValueError as exc:
        raise ValueError(
            "X is a dask array but no dask.distributed Client is active: create one "
            "(dask.distributed.Client(...)) or pass client="
        ) from exc


def _workers(client):
    """The cluster's worker addresses, sorted (ValueError when it has none)."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        raise ValueError("the Dask cluster has no workers")
    return workers


class DistributedDesign:
    """X (n, d) split by rows over the workers of a Dask cluster, with the bias column appended on the workers.

    Build with :meth:`from_dask` (the blocks are computed from the dask graph, so Dask recomputes a lost block
    from its source) or :meth:`from_numpy` (the blocks are scattered; a lost block is scattered again from
    the driver's array).

    Attributes
    ----------
    client : distributed.Client
    n_samples, n_features : int
        n and d (without the bias column).
    bias : bool
    starts, sizes : ndarray of int64, shape (n_chunks,)
        First row and row count of every chunk (empty chunks included).
    blocks : list of distributed.Future
        One :class:`~convexnn.distributed._worker.RowBlock` future per NON-EMPTY chunk, in row order.
    """

    def __init__(self, client, blocks, starts, sizes, n_features, bias, source):
        self.client = client
        self.starts = np.asarray(starts, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.blocks = list(blocks)
        self.n_samples = int(self.sizes.sum())
        self.n_features = int(n_features)
        self.bias = bool(bias)
        self._source = source  # ("dask", None) or ("numpy", X)
        self.nonempty = np.flatnonzero(self.sizes > 0)
        self._check_built()

    @property
    def block_dim(self) -> int:
        return self.n_features + int(self.bias)

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def block_rows(self):
        """(start, stop) row range of every non-empty block."""
        return [(int(self.starts[i]), int(self.starts[i] + self.sizes[i])) for i in self.nonempty]

    # ---- construction --------------------------------------------------------------------------------
    @classmethod
    def from_dask(cls, X, bias: bool, client) -> DistributedDesign:
        """Row blocks of a 2-D dask array (column chunks are merged; unknown chunk sizes are computed)."""
        import dask

        if X.ndim != 2:
            raise ValueError(f"X must be 2-D of shape (n_samples, n_features); got shape {X.shape}")
        if any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
        n, d = X.shape
        if n == 0:
            raise ValueError(f"X has 0 samples (shape {X.shape}); at least one is required")
        if d == 0:
            raise ValueError(f"X has 0 features (shape {X.shape}); at least one is required")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.issubdtype(X.dtype, np.complexfloating):
            raise TypeError(f"X must hold real numbers; got dtype {X.dtype}")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        sizes = np.array(X.chunks[0], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        chunks = X.to_delayed().ravel()
        make = dask.delayed(_worker.make_block, pure=True)
        nonempty = np.flatnonzero(sizes > 0)
        # Contiguous runs of blocks per worker, so that every worker holds about n / k rows (loose placement:
        # Dask may still move or recompute a block elsewhere, e.g. after losing its worker).
        workers = _workers(client)
        blocks = [
            client.compute(
                make(chunks[i], int(starts[i]), bool(bias)),
                workers=[workers[b * len(workers) // len(nonempty)]],
                allow_other_workers=True,
            )
            for b, i in enumerate(nonempty)
        ]
        return cls(client, blocks, starts, sizes, d, bias, ("dask", None))

    @classmethod
    def from_numpy(cls, X: np.ndarray, bias: bool, client, n_chunks=None) -> DistributedDesign:
        """Scatter a validated numpy X in ``n_chunks`` row blocks (default: one per worker)."""
        if n_chunks is None:
            n_chunks = len(_workers(client))
        n_chunks = int(min(n_chunks, X.shape[0]))
        bounds = np.linspace(0, X.shape[0], n_chunks + 1).astype(np.int64)
        starts, sizes = bounds[:-1], np.diff(bounds)
        design = cls.__new__(cls)
        design.client, design._source = client, ("numpy", X)
        workers = _workers(client)
        blocks = [
            design._scatter_block(int(s), int(m), bias, workers[b * len(workers) // n_chunks])
            for b, (s, m) in enumerate(zip(starts, sizes))
        ]
        cls.__init__(design, client, blocks, starts, sizes, X.shape[1], bias, ("numpy", X))
        return design

    def _scatter_block(self, start, size, bias, worker=None):
        X = self._source[1]
        rows = np.ascontiguousarray(X[start : start + size], dtype=np.float64)
        if bias:
            rows = np.ascontiguousarray(np.hstack([rows, np.ones((size, 1))]))
        return self.client.scatter(
            _worker.RowBlock(rows, start), hash=False, workers=None if worker is None else [worker]
        )

    def _check_built(self):
        """Wait for the blocks; re-raise a worker's validation error (e.g. NaN in X) with its message."""
        from distributed import wait

        wait(self.blocks)
        for f in self.blocks:
            if f.status == "error":
                f.result()

    # ---- failure recovery --------------------------------------------------------------------------
    @property
    def recomputable(self) -> bool:
        """True when Dask itself recomputes a lost block (dask source); False for scattered blocks."""
        return self._source[0] == "dask"

    def restore(self):
        """Scatter again every scattered block whose data was lost; the indices of the restored blocks."""
        if self.recomputable:
            return []
        restored = []
        for b, i in enumerate(self.nonempty):
            if self.blocks[b].status in ("cancelled", "lost", "error"):
                self.blocks[b] = self._scatter_block(int(self.starts[i]), int(self.sizes[i]), self.bias)
                restored.append(b)
        return restored

    # ---- data access -------------------------------------------------------------------------------
    def rows(self, index) -> np.ndarray:
        """Rows of the design (bias column included when present) at global indices, shape (len(index), d[+1])."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.block_dim))
        stops = np.array([r[1] for r in self.block_rows])
        owner = np.searchsorted(stops, index, side="right")
        futs = {}
        for b in np.unique(owner):
            sel = np.flatnonzero(owner == b)
            local = index[sel] - self.block_rows[b][0]
            futs[int(b)] = (sel, self.client.submit(_worker.block_rows, self.blocks[b], local, pure=False))
        for sel, fut in futs.values():
            out[sel] = fut.result()
        return out

    def spectral_norm(self) -> float:
        """||X_b||_2 (bias column included) from the sum of the blocks' Gram matrices."""
        grams = self.client.gather([self.client.submit(_worker.block_gram_full, f, pure=False) for f in self.blocks])
        return float(np.sqrt(max(0.0, np.linalg.eigvalsh(np.sum(grams, axis=0))[-1])))

    def workers_holding(self, futures):
        """{block position: worker addresses} for the given block futures (empty tuple where none)."""
        who = self.client.who_has(futures)
        return {b: tuple(who.get(f.key, ())) for b, f in enumerate(futures)}

    def release(self):
        """Drop the driver's references to the blocks (the cluster frees them)."""
        for f in self.blocks:
            f.release()
        self.blocks = []

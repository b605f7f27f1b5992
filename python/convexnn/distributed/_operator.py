"""The distributed block operator A(U) = sum_i D_i X U_i over row blocks held by Dask workers.

Row k of A(U) only involves row k of X and of the masks, so with X split by rows into blocks X_(1..K)

    A(U) = [A_(1)(U); ...; A_(K)(U)],      A^T(R) = sum_b A_(b)^T R_(b),      A_i^T A_i = sum_b X_(b)^T D_i^(b) X_(b).

Each worker computes its block's products with the library's masked operator (bit-packed masks of the
broadcast gates on its own rows); the driver concatenates the forward parts and sums the adjoint parts in
block order. Per product the driver sends U (S x d x c numbers) to every block and receives n x c numbers
(forward), or sends n x c and receives S x d x c per block (adjoint).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .. import _core
from . import _worker
from ._design import WorkerLostError

_log = logging.getLogger("convexnn.distributed")
# Gram matrices fetched per round trip when the solver asks for one (the BCD solver asks in batches of 64).
_GRAM_BATCH_BYTES = 64 << 20


def _nbytes(obj) -> int:
    return sum(_nbytes(o) for o in obj) if isinstance(obj, (tuple, list)) else int(getattr(obj, "nbytes", 0))


def _operator_base():
    """_core.BlockOperatorF64 when it can be subclassed from Python (the C++ solvers then accept the operator)."""
    base = _core.BlockOperatorF64

    class _Probe(base):
        pass

    try:
        _Probe(1, 1, 1)
    except TypeError:
        return object
    return base


_Base = _operator_base()


class DistributedOperator(_Base):
    """Masked block operator whose rows live on Dask workers (a ``_core.BlockOperatorF64``).

    Parameters
    ----------
    design : DistributedDesign
        The row blocks of X (bias column included when ``design.bias``).
    gates : ndarray of shape (P, d[+1])
        One gate per row; the masks 1[X g_i >= 0] are computed on the workers, aligned with the gates.
    kept : ndarray of int64 or None
        Keep only these patterns (global deduplication); None keeps all P.
    timeout : float or None
        Seconds to wait for one product before raising :class:`WorkerLostError` (None: wait).

    Attributes
    ----------
    stats : dict
        Counters: "forward", "adjoint", "gram" (calls), "bytes_sent", "bytes_received" (numpy payloads
        between driver and workers), "recovered" (products re-run after scattered blocks were restored).
    """

    def __init__(self, design, gates: np.ndarray, kept=None, timeout=None):
        gates = np.ascontiguousarray(gates, dtype=np.float64)
        P = gates.shape[0] if kept is None else len(kept)
        args = (design.n_samples, design.block_dim, P)
        if _Base is not object:
            super().__init__(*args)
        self._shape = args
        self.design, self.client = design, design.client
        self.gates_all, self.kept = gates, (None if kept is None else np.asarray(kept, dtype=np.int64))
        self.timeout = timeout
        self.stats = dict(forward=0, adjoint=0, gram=0, bytes_sent=0, bytes_received=0, recovered=0, time=0.0)
        self._grams = {}
        self.mblocks = [self._build(b) for b in range(design.n_blocks)]
        self._holders = design.workers_holding(self.mblocks)

    if _Base is object:  # the plain-class fallback mirrors the base's read-only shape properties
        n_samples = property(lambda self: self._shape[0])
        block_dim = property(lambda self: self._shape[1])
        n_blocks = property(lambda self: self._shape[2])

    @property
    def gates(self) -> np.ndarray:
        """(P, d[+1]) gates of the operator's patterns, one per row."""
        return self.gates_all if self.kept is None else self.gates_all[self.kept]

    def _build(self, b):
        c = self.client
        mb = c.submit(_worker.block_masks, self.design.blocks[b], self.gates_all, pure=False)
        if self.kept is not None:
            mb = c.submit(_worker.block_select, mb, self.kept, pure=False)
        return mb

    def with_patterns(self, kept) -> "DistributedOperator":
        """A new operator on the patterns ``kept`` (indices into this one's), sharing the row blocks."""
        kept = np.asarray(kept, dtype=np.int64)
        full = kept if self.kept is None else self.kept[kept]
        return DistributedOperator(self.design, self.gates_all, full, self.timeout)

    # ---- fan-out with failure handling --------------------------------------------------------------
    def _map(self, fn, per_block, sent_bytes):
        """Run fn(mblock_b, *per_block(b)) on every block; the list of results in block order."""
        from distributed import wait
        from distributed.client import FutureCancelledError

        start = time.perf_counter()
        for attempt in range(3):
            futs = [self.client.submit(fn, mb, *per_block(b), pure=False) for b, mb in enumerate(self.mblocks)]
            try:
                done = wait(futs, timeout=self.timeout)
                if done.not_done:
                    raise TimeoutError
                out = self.client.gather(futs)
                break
            except TimeoutError:
                raise WorkerLostError(self._lost_message(f"no product from the workers within {self.timeout} s"))
            except FutureCancelledError as exc:
                restored = self.design.restore()
                if not restored:
                    raise WorkerLostError(self._lost_message(str(exc))) from exc
                _log.warning("restored row blocks %s from the driver's data after losing %s", restored,
                             self._lost_workers() or "a worker")
                for b in restored:
                    self.mblocks[b] = self._build(b)
                self._holders = self.design.workers_holding(self.mblocks)
                self.stats["recovered"] += 1
            except Exception as exc:
                if type(exc).__name__ == "KilledWorker":
                    raise WorkerLostError(self._lost_message(str(exc))) from exc
                raise
        else:
            raise WorkerLostError(self._lost_message("row blocks lost again after being restored twice"))
        self.stats["bytes_sent"] += sent_bytes
        self.stats["bytes_received"] += sum(_nbytes(o) for o in out)
        self.stats["time"] += time.perf_counter() - start
        return out

    def _lost_workers(self):
        alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        held = {w for ws in self._holders.values() for w in ws}
        return sorted(held - alive)

    def _lost_message(self, reason):
        lost = self._lost_workers()
        who = ", ".join(lost) if lost else "none of the block holders is missing now"
        return (f"distributed solve stopped: {reason}. Workers lost: {who}. The row blocks could not be recomputed; "
                "no certificate was computed from incomplete data.")

    # ---- the operator interface ----------------------------------------------------------------------
    def forward(self, U, subset=None):
        """z = sum_k D_{s_k} X U_k, U (S, d, c) -> z (n, c) (or (S, d) -> (n,))."""
        U = np.ascontiguousarray(U, dtype=np.float64)
        squeeze = U.ndim == 2
        U3 = U[:, :, None] if squeeze else U
        self.stats["forward"] += 1
        n, c = self.n_samples, U3.shape[2]
        z = np.zeros((n, c))
        if U3.shape[0] and self.mblocks:
            parts = self._map(_worker.block_forward, lambda b: (U3, subset), U3.nbytes * len(self.mblocks))
            for (r0, r1), part in zip(self.design.block_rows, parts):
                z[r0:r1] = part
        return z[:, 0] if squeeze else z

    def adjoint(self, R, subset=None):
        """G_k = X^T D_{s_k} R, R (n, c) -> G (S, d, c) (or (n,) -> (S, d)); block sums in row order."""
        R = np.asarray(R, dtype=np.float64)
        squeeze = R.ndim == 1
        R2 = R[:, None] if squeeze else R
        S = self.n_blocks if subset is None else len(subset)
        self.stats["adjoint"] += 1
        G = np.zeros((S, self.block_dim, R2.shape[1]))
        if S and self.mblocks:
            rows = self.design.block_rows
            parts = self._map(_worker.block_adjoint, lambda b: (np.ascontiguousarray(R2[slice(*rows[b])]), subset),
                              R2.nbytes)
            for part in parts:
                G += part
        return G[:, :, 0] if squeeze else G

    def block_gram(self, i):
        """A_i^T A_i = X^T D_i X (d, d), the sum of the blocks' Gram matrices (fetched in batches, cached)."""
        i = int(i)
        if i < 0 or i >= self.n_blocks:
            raise IndexError(f"block index {i} out of range [0, {self.n_blocks})")
        if i not in self._grams:
            d = self.block_dim
            batch = max(1, _GRAM_BATCH_BYTES // (8 * d * d))
            index = np.array([j for j in range(i, min(self.n_blocks, i + batch)) if j not in self._grams])
            self.stats["gram"] += 1
            parts = self._map(_worker.block_grams, lambda b: (index,), index.nbytes * len(self.mblocks))
            total = np.sum(parts, axis=0) if parts else np.zeros((len(index), d, d))
            self._grams.update(zip(index.tolist(), total))
        return self._grams[i].copy()

    def cone_violation(self, V, subset=None):
        """max(0, max_rows -((2 D_s - I) X V_s)[:, j]) over all rows, shape (S, c) (or (S,) for V (S, d))."""
        V = np.ascontiguousarray(V, dtype=np.float64)
        parts = self._map(_worker.block_cone_violation, lambda b: (V, subset), V.nbytes * len(self.mblocks))
        return np.max(parts, axis=0)

    def digests(self):
        """Per-block mask digests (P, 16) and the global popcounts (P,) of this operator's patterns."""
        parts = self._map(_worker.block_digests, lambda b: (), 0)
        if not parts:
            return [], np.zeros(self.n_blocks, dtype=np.int64)
        return [p[0] for p in parts], np.sum([p[1] for p in parts], axis=0)

    def dense(self) -> np.ndarray:
        """The masks as a dense (n, P) bool array, gathered from the workers (inspection and tests only)."""
        out = np.zeros((self.n_samples, self.n_blocks), dtype=bool)
        for (r0, r1), part in zip(self.design.block_rows, self._map(_worker.block_dense, lambda b: (), 0)):
            out[r0:r1] = part
        return out

    def release(self):
        """Drop the driver's references to the masked blocks (the cluster frees them)."""
        for f in self.mblocks:
            f.release()
        self.mblocks = []


def unique_patterns(op: DistributedOperator) -> np.ndarray:
    """Indices of the patterns kept by the single-machine rule: first of equal masks, all-zero dropped.

    Two masks are equal iff they are equal on every row block; blocks are compared by 128-bit BLAKE2b digests
    of their packed words (a false match has probability ~P^2 / 2^129).
    """
    digests, popcounts = op.digests()
    seen, kept = set(), []
    for i in range(op.n_blocks):
        if popcounts[i] == 0:
            continue
        key = b"".join(dg[i].tobytes() for dg in digests)
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return np.array(kept, dtype=np.int64)

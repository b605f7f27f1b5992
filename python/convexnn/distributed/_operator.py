"""The distributed block operator A(U) = sum_i D_i X U_i over row blocks held by Dask workers.

Row k of A(U) only involves row k of X and of the masks, so with X split by rows into blocks X_(1..K)

    A(U) = [A_(1)(U); ...; A_(K)(U)],      A^T(R) = sum_b A_(b)^T R_(b),      A_i^T A_i = sum_b X_(b)^T D_i^(b) X_(b).

Each worker computes its block's products with the library's masked operator (bit-packed masks of the
broadcast gates on its own rows); the driver concatenates the forward parts and sums the adjoint parts in
block order. Per product the driver sends U (S x d x c numbers) to every block and receives n x c numbers
(forward), or sends n x c and receives S x d x c per block (adjoint).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

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
        between driver and workers), "recovered" (products re-run after scattered blocks were restored),
        "memo_hits" (products answered from :meth:`memoize`'s store).
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
        self.stats = dict(
            forward=0, adjoint=0, gram=0, bytes_sent=0, bytes_received=0, recovered=0, memo_hits=0, time=0.0
        )
        self._grams = {}
        self._memo, self._memo_bytes, self._memo_max = OrderedDict(), 0, 0
        self.recovered_from = []
        self.mblocks = [self._build(b) for b in range(design.n_blocks)]
        self._servers = []
        if self.mblocks:
            self._start_servers()

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

    def with_patterns(self, kept) -> DistributedOperator:
        """A new operator on the patterns ``kept`` (indices into this one's), sharing the row blocks."""
        kept = np.asarray(kept, dtype=np.int64)
        full = kept if self.kept is None else self.kept[kept]
        return DistributedOperator(self.design, self.gates_all, full, self.timeout)

    # ---- fan-out with failure handling --------------------------------------------------------------
    def _start_servers(self):
        """One BlockServer actor per worker holding masked blocks (the blocks are recomputed first if lost)."""
        from distributed import wait

        wait(self.mblocks, timeout=self.timeout)
        for f in self.mblocks:
            if f.status == "error":
                f.result()
        self._holders = self.design.workers_holding(self.mblocks)
        by_worker = {}
        for b in range(len(self.mblocks)):
            by_worker.setdefault(self._holders[b][0] if self._holders[b] else None, []).append(b)
        servers = []
        for w, blocks in by_worker.items():
            fut = self.client.submit(
                _worker.BlockServer,
                *[self.mblocks[b] for b in blocks],
                actor=True,
                workers=None if w is None else [w],
                allow_other_workers=True,
                pure=False,
            )
            servers.append((fut.result(timeout=self.timeout), fut, blocks))
        self._servers = servers

    def _recover(self, exc):
        """After a lost worker: restore scattered blocks, rebuild their masks, restart the actors."""
        if not isinstance(exc, OSError):  # comm errors (CommClosedError, "unable to contact") are OSErrors
            raise exc  # a genuine error of the computation
        lost = self._wait_for_loss()
        if not lost:
            raise WorkerLostError(self._lost_message(f"a worker could not be reached ({exc})")) from exc
        if self.recoveries >= 3:
            raise WorkerLostError(self._lost_message("workers lost again after three recoveries")) from exc
        restored = self.design.restore()
        for b in restored:
            self.mblocks[b] = self._build(b)
        if not self.design.recomputable and not restored and any(f.status != "finished" for f in self.mblocks):
            raise WorkerLostError(self._lost_message(str(exc))) from exc
        _log.warning(
            "convexnn.distributed: worker(s) %s lost; recomputing their row blocks and re-running the "
            "product (the solve continues from its last iterate)",
            ", ".join(lost),
        )
        self.recovered_from.extend(lost)
        for _, fut, _ in self._servers:
            fut.release()
        try:
            self._start_servers()
        except Exception as exc2:  # noqa: BLE001 - any failure to rebuild is reported with the workers
            raise WorkerLostError(self._lost_message(f"the lost blocks could not be rebuilt ({exc2})")) from exc2
        self.stats["recovered"] += 1

    @property
    def recoveries(self) -> int:
        return self.stats["recovered"]

    def _map(self, fn, shared=(), per_block=None, reduce_sum=False, sent_bytes=0):
        """fn(mblock_b, *per_block(b), *shared) on every block: their sum, or the list in block order."""
        start = time.perf_counter()
        while True:
            try:
                calls = [
                    (srv.run(fn, shared, [per_block(b) if per_block else () for b in blocks], reduce_sum), blocks)
                    for srv, _, blocks in self._servers
                ]
                outs = [(call.result(timeout=self.timeout), blocks) for call, blocks in calls]
                break
            except TimeoutError as exc:
                raise WorkerLostError(self._lost_message(f"no product within {self.timeout} s")) from exc
            except Exception as exc:  # noqa: BLE001 - a lost worker surfaces as a comm error of any type
                self._recover(exc)
        self.stats["bytes_sent"] += sent_bytes
        self.stats["bytes_received"] += sum(_nbytes(o) for o, _ in outs)
        self.stats["time"] += time.perf_counter() - start
        if reduce_sum:
            total = outs[0][0]
            for part, _ in outs[1:]:
                total = total + part
            return total
        result = [None] * len(self.mblocks)
        for parts, blocks in outs:
            for b, part in zip(blocks, parts):
                result[b] = part
        return result

    def _wait_for_loss(self, seconds=30.0):
        """The lost block holders, once the scheduler has noticed them (polled for up to ``seconds``)."""
        deadline = time.perf_counter() + (seconds if self.timeout is None else min(seconds, self.timeout))
        while True:
            lost = self._lost_workers()
            if lost or time.perf_counter() > deadline:
                return lost
            time.sleep(0.1)

    def _lost_workers(self):
        alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        held = {w for ws in self._holders.values() for w in ws}
        return sorted(held - alive)

    def _lost_message(self, reason):
        lost = self._lost_workers()
        who = ", ".join(lost) if lost else "none of the block holders is missing now"
        return (
            f"distributed solve stopped: {reason}. Workers lost: {who}. The row blocks could not be recomputed; "
            "no certificate was computed from incomplete data."
        )

    # ---- memoized products ----------------------------------------------------------------------------
    def memoize(self, max_bytes: int):
        """Answer a product whose input was seen before from a store of up to ``max_bytes`` of outputs (0: off).

        The exact program's constraint generation restarts the C++ solver on the same operator every round, and
        each start repeats the same power iteration (15 forward + adjoint products from a fixed vector): with the
        store those cost no round trip after the first round. Inputs are keyed by their BLAKE2b digest.
        """
        self._memo, self._memo_bytes, self._memo_max = OrderedDict(), 0, int(max_bytes)

    def _memo_key(self, kind, A, subset):
        if not self._memo_max:
            return None
        digest = hashlib.blake2b(memoryview(np.ascontiguousarray(A)).cast("B"), digest_size=16).digest()
        return kind, A.shape, None if subset is None else tuple(int(i) for i in subset), digest

    def _memo_get(self, key):
        if key is None or key not in self._memo:
            return None
        self._memo.move_to_end(key)
        self.stats["memo_hits"] += 1
        return self._memo[key].copy()

    def _memo_put(self, key, out):
        if key is None or out.nbytes > self._memo_max:
            return
        self._memo[key] = out.copy()
        self._memo_bytes += out.nbytes
        while self._memo_bytes > self._memo_max:
            self._memo_bytes -= self._memo.popitem(last=False)[1].nbytes

    # ---- the operator interface ----------------------------------------------------------------------
    def forward(self, U, subset=None):
        """z = sum_k D_{s_k} X U_k, U (S, d, c) -> z (n, c) (or (S, d) -> (n,))."""
        U = np.ascontiguousarray(U, dtype=np.float64)
        squeeze = U.ndim == 2
        U3 = U[:, :, None] if squeeze else U
        self.stats["forward"] += 1
        key = self._memo_key("forward", U3, subset)
        z = self._memo_get(key)
        if z is None:
            n, c = self.n_samples, U3.shape[2]
            z = np.zeros((n, c))
            if U3.shape[0] and self.mblocks:
                parts = self._map(_worker.block_forward, (U3, subset), sent_bytes=U3.nbytes * len(self._servers))
                for (r0, r1), part in zip(self.design.block_rows, parts):
                    z[r0:r1] = part
            self._memo_put(key, z)
        return z[:, 0] if squeeze else z

    def adjoint(self, R, subset=None):
        """G_k = X^T D_{s_k} R, R (n, c) -> G (S, d, c) (or (n,) -> (S, d)); block sums in row order."""
        R = np.asarray(R, dtype=np.float64)
        squeeze = R.ndim == 1
        R2 = R[:, None] if squeeze else R
        S = self.n_blocks if subset is None else len(subset)
        self.stats["adjoint"] += 1
        key = self._memo_key("adjoint", R2, subset)
        G = self._memo_get(key)
        if G is None:
            G = np.zeros((S, self.block_dim, R2.shape[1]))
            if S and self.mblocks:
                rows = self.design.block_rows
                G = self._map(
                    _worker.block_adjoint,
                    (subset,),
                    lambda b: (np.ascontiguousarray(R2[slice(*rows[b])]),),
                    reduce_sum=True,
                    sent_bytes=R2.nbytes,
                )
            self._memo_put(key, G)
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
            total = (
                self._map(_worker.block_grams, (index,), reduce_sum=True)
                if self.mblocks
                else np.zeros((len(index), d, d))
            )
            self._grams.update(zip(index.tolist(), total))
        return self._grams[i].copy()

    def cone_violation(self, V, subset=None):
        """max(0, max_rows -((2 D_s - I) X V_s)[:, j]) over all rows, shape (S, c) (or (S,) for V (S, d))."""
        V = np.ascontiguousarray(V, dtype=np.float64)
        parts = self._map(_worker.block_cone_violation, (V, subset), sent_bytes=V.nbytes * len(self._servers))
        return np.max(parts, axis=0)

    def digests(self):
        """Per-block mask digests (P, 16) and the global popcounts (P,) of this operator's patterns."""
        parts = self._map(_worker.block_digests)
        if not parts:
            return [], np.zeros(self.n_blocks, dtype=np.int64)
        return [p[0] for p in parts], np.sum([p[1] for p in parts], axis=0)

    def dense(self) -> np.ndarray:
        """The masks as a dense (n, P) bool array, gathered from the workers (inspection and tests only)."""
        out = np.zeros((self.n_samples, self.n_blocks), dtype=bool)
        for (r0, r1), part in zip(self.design.block_rows, self._map(_worker.block_dense)):
            out[r0:r1] = part
        return out

    def release(self):
        """Drop the driver's references to the actors and masked blocks (the cluster frees them)."""
        for _, fut, _ in self._servers:
            fut.release()
        for f in self.mblocks:
            f.release()
        self._servers, self.mblocks = [], []


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

"""The Gaussian gates of :func:`convexnn.sample_patterns`, drawn on the driver without the data in memory.

The C++ core draws gate entries from a portable stream (``std::mt19937_64`` and Box-Muller); with a bias
column each gate's last entry puts its hyperplane through a uniformly drawn training row x_k. The stream is
replayed here bit for bit, so that only the drawn rows x_k have to be fetched from the cluster.
"""

from __future__ import annotations

import math

import numpy as np

_MASK64 = (1 << 64) - 1
_N, _M = 312, 156
_UPPER, _LOWER = (~((1 << 31) - 1)) & _MASK64, (1 << 31) - 1


class _MT19937_64:
    """``std::mt19937_64`` (Matsumoto & Nishimura's 64-bit Mersenne Twister, C++11 [rand.eng.mers])."""

    def __init__(self, seed: int):
        mt = [seed & _MASK64]
        for i in range(1, _N):
            prev = mt[-1]
            mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & _MASK64)
        self._mt, self._i = mt, _N

    def _twist(self):
        mt = self._mt
        for i in range(_N):
            x = (mt[i] & _UPPER) | (mt[(i + 1) % _N] & _LOWER)
            xa = x >> 1
            if x & 1:
                xa ^= 0xB5026F5AA96619E9
            mt[i] = mt[(i + _M) % _N] ^ xa
        self._i = 0

    def __call__(self) -> int:
        if self._i >= _N:
            self._twist()
        y = self._mt[self._i]
        self._i += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & _MASK64


class _NormalStream:
    """The core's portable stream: uniforms on 53 bits, Box-Muller pairs, rejection-sampled indices."""

    def __init__(self, seed: int):
        self._engine = _MT19937_64(seed)
        self._spare = None

    def _uniform_open(self) -> float:
        return ((self._engine() >> 11) + 0.5) * 2.0**-53

    def normal(self) -> float:
        if self._spare is not None:
            out, self._spare = self._spare, None
            return out
        u1, u2 = self._uniform_open(), self._uniform_open()
        radius = math.sqrt(-2.0 * math.log(u1))
        angle = 6.283185307179586 * u2
        self._spare = radius * math.sin(angle)
        return radius * math.cos(angle)

    def index(self, n: int) -> int:
        limit = _MASK64 - (_MASK64 % n + 1) % n
        while True:
            x = self._engine()
            if x <= limit:
                return x % n


def draw_gates(n_samples: int, d: int, n_gates: int, seed: int, bias: bool):
    """Feature entries of the gates and, with ``bias``, the indices of the rows their hyperplanes pass through.

    Parameters
    ----------
    n_samples : int
        n, the number of rows of the (distributed) data.
    d : int
        Number of features (without the bias column).
    n_gates, seed : int
    bias : bool

    Returns
    -------
    G : ndarray of shape (n_gates, d[+1]), float64
        One gate per row; with ``bias`` the last column is still 0 (see :func:`complete_bias`).
    rows : ndarray of shape (n_gates,), int64, or None
        The training row each gate's hyperplane goes through (``bias`` only).
    """
    stream = _NormalStream(int(seed))
    G = np.zeros((n_gates, d + int(bias)), dtype=np.float64)
    rows = np.zeros(n_gates, dtype=np.int64) if bias else None
    for i in range(n_gates):
        G[i, :d] = [stream.normal() for _ in range(d)]
        if bias:
            rows[i] = stream.index(n_samples)
    return G, rows


def complete_bias(G, X_rows):
    """Set each gate's bias entry to -x_k^T g (accumulated in row order, as the core does).

    Parameters
    ----------
    G : ndarray of shape (n_gates, d + 1)
        Gates from :func:`draw_gates` (modified in place and returned).
    X_rows : ndarray of shape (n_gates, d)
        Row x_k of the data for each gate (in the data's dtype).
    """
    d = G.shape[1] - 1
    for i in range(G.shape[0]):
        s = 0.0
        xi, gi = X_rows[i].tolist(), G[i, :d].tolist()
        for j in range(d):
            s += float(xi[j]) * gi[j]
        G[i, d] = -s
    return G

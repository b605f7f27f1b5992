"""PyTorch autograd version of :func:`convexnn.theory.train` (gd / sgd with momentum), used only when installed."""

from __future__ import annotations

import time as _time

import numpy as np


def train_torch(W, b, act, X, Y, beta, loss, masks, optimizer, lr, n_iter, momentum, batch_size, seed, record_every):
    try:
        import torch
    except ImportError as exc:
        raise ImportError("backend='torch' needs PyTorch (pip install torch); use backend='numpy'") from exc
    if optimizer == "lbfgs":
        raise ValueError("backend='torch' supports optimizer 'gd' and 'sgd'")
    if loss != "squared":
        raise ValueError("backend='torch' supports loss='squared' (use backend='numpy' for the other losses)")
    dt = torch.float64
    Wt = [torch.tensor(w, dtype=dt, requires_grad=True) for w in W]
    bt = [None if v is None else torch.tensor(v, dtype=dt, requires_grad=True) for v in b]
    Mt = None if masks is None else [torch.tensor(m, dtype=dt) for m in masks]
    Xt, Yt = torch.tensor(X, dtype=dt), torch.tensor(Y, dtype=dt)
    params = Wt + [v for v in bt if v is not None]
    n = X.shape[0]
    bs = n if optimizer == "gd" or batch_size is None else min(int(batch_size), n)
    opt = torch.optim.SGD(params, lr=lr / bs, momentum=momentum)
    gen = torch.Generator().manual_seed(int(seed))

    def objective(idx, scale):
        A = Xt[idx]
        for Wl, bl in zip(Wt[:-1], bt):
            Z = A @ Wl + (bl if bl is not None else 0.0)
            A = torch.relu(Z) if act == "relu" else Z
        F = A @ Wt[-1]
        return scale * 0.5 * torch.sum((F - Yt[idx]) ** 2) + 0.5 * beta * sum(torch.sum(w * w) for w in Wt)

    hist, t0, status = [], _time.perf_counter(), "max_iter"
    for it in range(1, n_iter + 1):
        order = torch.randperm(n, generator=gen) if bs < n else torch.arange(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            opt.zero_grad()
            objective(idx, n / len(idx)).mul(len(idx) / n).backward()
            if Mt is not None:
                for w, m in zip(Wt, Mt):
                    w.grad.mul_(m)
            opt.step()
        if it % record_every == 0 or it == n_iter:
            with torch.no_grad():
                F = float(objective(torch.arange(n), 1.0))
            if not np.isfinite(F):
                status = "diverged"
                break
            hist.append({"iter": it, "time": _time.perf_counter() - t0, "objective": F})
    return (
        [w.detach().numpy().copy() for w in Wt],
        [None if v is None else v.detach().numpy().copy() for v in bt],
        hist,
        status,
    )

"""PyTorch backend of :func:`convexnn.cnn.train_cnn` (optional: needs ``torch``); same model, loss and steps."""

from __future__ import annotations

import time as _time

import numpy as np


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "train_cnn(backend='torch') needs PyTorch (pip install torch); "
            "backend='numpy' runs the same training without it"
        ) from exc
    return torch


def _loss(torch, Z, Y, loss):
    """The API's losses as SUMS over samples (torch tensors)."""
    if loss == "squared":
        return 0.5 * ((Z - Y) ** 2).sum()
    if loss == "logistic":
        return torch.nn.functional.softplus(-Y * Z).sum()
    if loss == "hinge":
        return torch.clamp(1 - Y * Z, min=0).sum()
    if loss == "squared_hinge":
        return (torch.clamp(1 - Y * Z, min=0) ** 2).sum()
    return (torch.logsumexp(Z, dim=1) - (Y * Z).sum(dim=1)).sum()


def _predict(torch, model, pooling, P, U, A):
    H = P @ U.T  # (b, K, m)
    if model == "linear":
        return torch.einsum("bkm,mkc->bc", H, A)
    act = torch.relu(H)
    if pooling == "sum":
        return act.sum(dim=1) @ A
    return (act @ A).reshape(-1, A.shape[1])


def train_torch(
    model, pooling, P, Y, U, A, beta, loss, optimizer, lr, n_epochs, batch_size, rng, time_limit, record_every
):
    """Adam / SGD with autograd; returns (U, A, history, steps, status, train_time) like the NumPy loop."""
    torch = _torch()
    n, K, _ = P.shape
    Pt = torch.from_numpy(P)
    Yt = torch.from_numpy(Y)
    Ut = torch.tensor(U, requires_grad=True)
    At = torch.tensor(A, requires_grad=True)
    opt = torch.optim.Adam([Ut, At], lr=lr) if optimizer == "adam" else torch.optim.SGD([Ut, At], lr=lr / n)
    per_patch = model == "relu" and pooling == "none"

    def objective(Pb, Yb, scale):
        data = _loss(torch, _predict(torch, model, pooling, Pb, Ut, At), Yb, loss)
        return scale * data + 0.5 * beta * ((Ut**2).sum() + (At**2).sum())

    with torch.no_grad():
        history = [{"iter": 0, "epoch": 0, "time": 0.0, "objective": float(objective(Pt, Yt, 1.0))}]
    step, status, train_time = 0, "max_iter", 0.0
    steps_per_epoch = int(np.ceil(n / batch_size))
    for epoch in range(1, n_epochs + 1):
        t0 = _time.perf_counter()
        order = rng.permutation(n)
        for b in range(steps_per_epoch):
            idx = order[b * batch_size : (b + 1) * batch_size] if batch_size < n else np.arange(n)
            it = torch.from_numpy(idx)
            Yb = Yt.reshape(n, K, -1)[it].reshape(-1, Y.shape[1]) if per_patch else Yt[it]
            opt.zero_grad()
            objective(Pt[it], Yb, n / len(idx)).backward()
            opt.step()
            step += 1
        train_time += _time.perf_counter() - t0
        out_of_time = train_time >= time_limit
        if epoch % record_every == 0 or epoch == n_epochs or out_of_time:
            with torch.no_grad():
                F = float(objective(Pt, Yt, 1.0))
            if not np.isfinite(F):
                status = "diverged"
                break
            history.append({"iter": step, "epoch": epoch, "time": train_time, "objective": F})
        if out_of_time:
            status = "time_limit"
            break
    return Ut.detach().numpy().copy(), At.detach().numpy().copy(), history, step, status, train_time

"""The sum-pooled ReLU CNN on digits: convexnn's convex program against PyTorch training the same CNN.

    PYTHONPATH=python /work/peers/bin/python bench/cnn_vs_torch.py [--torch-time 15] [--repeats 3] [--quick]

Task (as bench/cnn_digits.py): scikit-learn's digits (1797 8x8 images), binary "digit >= 5" ({-1, +1}), 75/25
stratified split, pixels / 16 standardized; 3x3 patches stride 1 (K = 36), one bias per filter; the network
f(x) = sum_j alpha_j sum_k (x_k^T u_j + b_j)_+ (Pilanci & Ergen, ICML 2020, Appendix A.1: conv, ReLU, sum pooling,
linear output) with the library's objective: logistic loss SUMMED over images + beta/2 (||u_j||^2 + b_j^2 +
alpha_j^2); beta = 0.01 beta_max of the gated program on 60 Gaussian patterns.

PyTorch: the same network (3x3 convolution with bias as im2col + matmul on the patch tensor, the fastest form
measured here; ReLU; sum over positions; linear output without bias), float32, ``torch.set_num_threads(--threads)``, trained on (library objective) / n (mean loss + beta/(2n) ||theta||^2, the
same minimizer; minibatches use the batch mean), Adam and SGD with momentum 0.9 at several learning rates,
minibatch 128 and full batch, each for --torch-time seconds of training. Its weights are mapped to a
:class:`convexnn.cnn.ReLUCNN` (filter j = column j of the im2col weights: conv weight in (row, col) order, then the
conv bias) and scored by
``ReLUCNN.objective`` (float64) at snapshots; snapshot scoring is not timed.

convexnn ("pattern generation", ``convexnn.cnn.solve_relu_cnn_generating``): a short NumPy Adam run of the CNN
(--seed-epochs; its filters give patterns and its weights the warm start), 60 Gaussian and 20 k-means gates, the
exact program (``formulation="relu"``), then --rounds rounds of: map the solution to its CNN, --descent-epochs of
full-batch NumPy Adam on the non-convex objective from it, add the descended filters' patterns, re-solve
warm-started. Every round's optimum is <= the network it starts from. Earlier rounds use --round-tol, the last
--tol. The curve has one point per round, at the end of its solve, on the process CPU clock of the whole call
(seed, pattern building, solves and descents all counted; conservative). Every time is the median of --repeats
runs after one untimed warm-up call of each library.

Reported: final objectives and test accuracies; PyTorch's time to reach convexnn's final objective (per run);
convexnn's time to reach each PyTorch run's best objective; machine (lscpu) and load average.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def digits_task(seed_patterns=60, beta_ratio=0.01):
    """Train / test patches, labels, images and beta of the task (see module doc)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from convexnn.cnn import extract_patches, relu_cnn_beta_max
    from convexnn.patterns import sample_patterns

    d = load_digits()
    y_all = np.where(d.target >= 5, 1.0, -1.0)
    Xtr, Xte, ytr, yte = train_test_split(d.images / 16.0, y_all, test_size=0.25, random_state=0, stratify=y_all)
    mu, sd = Xtr.mean(), Xtr.std()
    Itr, Ite = (Xtr - mu) / sd, (Xte - mu) / sd
    Ptr, Pte = extract_patches(Itr, 3), extract_patches(Ite, 3)
    n, K, h = Ptr.shape
    g0 = sample_patterns(Ptr.reshape(n * K, h), seed_patterns, seed=0, bias=True)
    beta = beta_ratio * relu_cnn_beta_max(Ptr, ytr, g0, loss="logistic", bias=True)
    return dict(Itr=Itr, Ite=Ite, Ptr=Ptr, Pte=Pte, ytr=ytr, yte=yte, beta=beta, g0=g0)


CLOCK = "cpu"


def _now():
    """The benchmark's clock: process CPU seconds (robust to other jobs on a shared machine) or wall seconds."""
    return time.process_time() if CLOCK == "cpu" else time.perf_counter()


def torch_to_relucnn(filters, out_weight):
    """The library's ReLUCNN (sum pooling, bias) of the PyTorch model's weights.

    filters (h + 1, m): the im2col form of a Conv2d(1, m, 3) (column j = [conv weight j in (row, col) order,
    conv bias j], the patch order of :func:`convexnn.cnn.extract_patches`); out_weight (m,).
    """
    from convexnn.cnn import ReLUCNN

    U = np.asarray(filters, dtype=np.float64).T
    return ReLUCNN(U, np.asarray(out_weight, dtype=np.float64).reshape(-1), pooling="sum", bias=True)


def torch_forward(torch, patches, filters, out_weight):
    """f = sum_k relu([x_k, 1] @ filters) @ out_weight for patches (b, K, h + 1) with the ones entry appended."""
    return torch.relu(patches @ filters).sum(dim=1) @ out_weight


def train_torch(task, m, optimizer, lr, batch, seed, time_budget, record_every, dtype_name="float32"):
    """One PyTorch run; returns snapshots [(train_time, filters (h + 1, m), out_weight (m,))] (training time only).

    train_time is process CPU seconds (``time.process_time``, all threads) when ``CLOCK`` is "cpu", else wall seconds.

    The convolution runs as im2col + matmul on the patch tensor (on this machine 3-10x faster per step than
    ``nn.Conv2d`` for these 8x8 images), initialized as ``nn.Conv2d`` / ``nn.Linear`` do (uniform
    +-1/sqrt(fan_in)).
    """
    import torch

    from convexnn.cnn.network import add_patch_bias

    dtype = getattr(torch, dtype_name)
    n = len(task["ytr"])
    beta = task["beta"]
    X = torch.as_tensor(add_patch_bias(task["Ptr"]), dtype=dtype)
    Y = torch.as_tensor(task["ytr"], dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    h = X.shape[2] - 1
    U = ((torch.rand(h + 1, m, generator=gen, dtype=dtype) * 2 - 1) / h**0.5).requires_grad_()
    a = ((torch.rand(m, generator=gen, dtype=dtype) * 2 - 1) / m**0.5).requires_grad_()
    params = [U, a]
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else torch.optim.SGD(params, lr=lr, momentum=0.9)
    snaps, clock = [], 0.0

    def snap():
        snaps.append((clock, U.detach().double().numpy().copy(), a.detach().double().numpy().copy()))

    snap()
    while clock < time_budget:
        t0 = _now()
        for _ in range(record_every):
            order = torch.randperm(n, generator=gen) if batch < n else None
            for s in range(0, n, batch):
                xb, yb = (X[order[s : s + batch]], Y[order[s : s + batch]]) if order is not None else (X, Y)
                opt.zero_grad()
                loss = torch.nn.functional.softplus(-yb * torch_forward(torch, xb, U, a)).mean()
                loss = loss + (0.5 * beta / n) * ((U * U).sum() + (a * a).sum())
                loss.backward()
                opt.step()
        clock += _now() - t0
        if not (torch.isfinite(U).all() and torch.isfinite(a).all()):
            break
        snap()
    return snaps


def score_snapshots(task, snaps):
    """[(time, library objective)] and the best (objective, network) of a run's snapshots."""
    out, best = [], (np.inf, None)
    for t, U, a in snaps:
        net = torch_to_relucnn(U, a)
        F = net.objective(task["Ptr"], task["ytr"], task["beta"], loss="logistic")
        F = F if np.isfinite(F) else np.inf
        out.append((t, F))
        if F < best[0]:
            best = (F, net)
    return out, best


def first_time(curve, target):
    """First time of a [(time, objective)] curve at objective <= target, or None."""
    for t, F in curve:
        if F <= target:
            return t
    return None


def _phase(curve, wall0, cpu0, wall1, cpu1, start):
    """Map a phase's wall-clock curve [(t since wall0, F)] onto the benchmark clock (CPU time scaled by the
    phase's CPU / wall ratio), offset by ``start`` (the clock at the phase's start)."""
    scale = 1.0 if CLOCK == "wall" else (cpu1 - cpu0) / max(wall1 - wall0, 1e-9)
    return [(start + t * scale, F) for t, F in curve], start + (wall1 - wall0) * scale


def convexnn_pipeline(
    task, filters, seed_epochs, clusters, tol, time_limit, rounds=3, descent_epochs=100, round_tol=1e-3
):
    """``convexnn.cnn.solve_relu_cnn_generating``: seed Adam + Gaussian / k-means / seed patterns, the exact
    program, then `rounds` rounds of descent-generated patterns and warm-started re-solves.

    Returns (result, curve [(clock, objective)], total clock, n_patterns, total wall seconds). The curve has one
    point per round, at the END of that round's solve (conservative: the objective was reached earlier).
    """
    from convexnn.cnn import solve_relu_cnn_generating

    w0, c0 = time.perf_counter(), time.process_time()
    res = solve_relu_cnn_generating(
        task["Ptr"],
        task["ytr"],
        task["beta"],
        n_filters=filters,
        rounds=rounds,
        n_gaussian=60,  # the 60 sampled gates of digits_task (same seed)
        n_clusters=clusters,
        loss="logistic",
        bias=True,
        seed_epochs=seed_epochs,
        descent_epochs=descent_epochs,
        tol=tol,
        round_tol=round_tol,
        time_limit=time_limit,
    )
    w1, c1 = time.perf_counter(), time.process_time()
    key = "cpu_time" if CLOCK == "cpu" else "wall_time"
    curve = [(e[key], e["objective"]) for e in res.rounds]
    best = np.minimum.accumulate([F for _, F in curve])
    curve = [(t, F) for (t, _), F in zip(curve, best)]
    total = (c1 - c0) if CLOCK == "cpu" else (w1 - w0)
    return res, curve, total, res.rounds[-1]["n_patterns"], w1 - w0


def accuracy(net, P, y):
    return float(np.mean(np.where(net.predict(P) > 0, 1.0, -1.0) == y))


def _load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _configs(quick):
    full = None
    if quick:
        return [("adam", 1e-2, 128), ("sgd", 3e-3, 128)]
    # the better halves of a first grid (Adam 3e-3..3e-2, SGD 1e-3..1e-2, batch 128 / full) at 15 s each
    return [("adam", 1e-2, 128), ("adam", 3e-2, 128), ("adam", 1e-2, full), ("sgd", 3e-3, 128), ("sgd", 1e-2, full)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-time", type=float, default=30.0, help="training seconds (--clock) per PyTorch run")
    ap.add_argument("--torch-seeds", type=int, default=1)
    ap.add_argument("--seed-epochs", type=int, default=150)
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-4, help="the last round's tolerance")
    ap.add_argument("--round-tol", type=float, default=1e-3, help="the earlier rounds' tolerance")
    ap.add_argument("--rounds", type=int, default=3, help="pattern-generation rounds after the first solve")
    ap.add_argument("--descent-epochs", type=int, default=100, help="full-batch Adam epochs per round")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--repeats", type=int, default=3, help="convexnn pipeline runs (median time)")
    ap.add_argument("--quick", action="store_true", help="two PyTorch configurations, short budgets")
    ap.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time = process CPU seconds (all threads; default, robust to load) or wall seconds",
    )
    args = ap.parse_args()
    global CLOCK
    CLOCK = args.clock

    import torch
    from cnn_operator_bench import _machine

    from convexnn import _core

    torch.set_num_threads(args.threads)
    _core.set_num_threads(args.threads)
    task = digits_task()
    n = len(task["ytr"])
    load0 = _load()

    # warm-up, untimed: one short call of each library
    train_torch(task, args.filters, "adam", 1e-2, 128, 99, 0.2, 1)
    convexnn_pipeline(task, args.filters, 5, 4, 1e-2, 2.0, rounds=1, descent_epochs=5)

    def run_convexnn():
        cvx.append(
            convexnn_pipeline(
                task,
                args.filters,
                args.seed_epochs,
                args.clusters,
                args.tol,
                args.time_limit,
                args.rounds,
                args.descent_epochs,
                args.round_tol,
            )
        )
        print(f"convexnn run {len(cvx) - 1}: {cvx[-1][0].objective:.4f} in {cvx[-1][2]:.1f} s", file=sys.stderr)

    # interleaved (convexnn run, PyTorch run, convexnn run, ...) so that load changes hit both libraries alike
    cvx, runs = [], []
    jobs = [(opt, lr, batch, s) for opt, lr, batch in _configs(args.quick) for s in range(args.torch_seeds)]
    for i in range(max(len(jobs), args.repeats)):
        if i < args.repeats:
            run_convexnn()
        if i >= len(jobs):
            continue
        opt, lr, batch, s = jobs[i]
        b = n if batch is None else batch
        snaps = train_torch(task, args.filters, opt, lr, b, s, args.torch_time, 5 if b < n else 50)
        tcurve, (best_F, best_net) = score_snapshots(task, snaps)
        runs.append(
            dict(
                name=f"{opt} lr={lr:g} {'full batch' if b == n else f'batch {b}'} seed {s}",
                curve=tcurve,
                best=best_F,
                net=best_net,
                t_best=first_time(tcurve, best_F),
            )
        )
        print(f"{runs[-1]['name']}: {best_F:.4f}", file=sys.stderr, flush=True)
    order = np.argsort([c[2] for c in cvx])
    res, curve, total, n_pats, _ = cvx[order[len(order) // 2]]  # the median-time run
    c_obj = res.objective
    c_net = res.network()
    for r in runs:
        r["t_to_cvx"] = first_time(r["curve"], c_obj)
    load1 = _load()

    print(
        f"Machine: {_machine()}; load average {load0:.1f} at start, {load1:.1f} at end; clock: {args.clock} "
        f"seconds; torch "
        f"{torch.__version__} ({args.threads} threads, float32), convexnn {args.threads} OpenMP threads"
    )
    print(
        f"digits >= 5: n_train = {n}, n_test = {len(task['yte'])}, 3x3 patches (K = 36, h = 9 + bias), "
        f"{args.filters} filters, logistic loss (sum), beta = {task['beta']:.4g}\n"
    )
    times = sorted(c[2] for c in cvx)
    walls = sorted(c[4] for c in cvx)
    print(
        f"convexnn pipeline (seed Adam {args.seed_epochs} epochs, exact program + {args.rounds} rounds of "
        f"{args.descent_epochs}-epoch descent patterns, {n_pats} patterns at the end, tol {args.round_tol:g} / "
        f"{args.tol:g}): objective {c_obj:.4f} (runs: {', '.join(f'{c[0].objective:.4f}' for c in cvx)}), "
        f"{res.status}, gap {res.gap:.1e}, violation {res.max_violation:.1e}, {c_net.n_filters} filters, "
        f"test accuracy {100 * accuracy(c_net, task['Pte'], task['yte']):.1f}%, time median "
        f"{times[len(times) // 2]:.1f} {args.clock} s (all: {', '.join(f'{t:.1f}' for t in times)}; wall "
        f"{', '.join(f'{t:.1f}' for t in walls)} s)\n"
    )
    print(
        "| PyTorch run | best objective | at (s) | test acc. | time to convexnn's objective | "
        "convexnn's time to this run's best |"
    )
    print("|---|---|---|---|---|---|")
    for r in runs:
        t_c = first_time(curve, r["best"])
        acc = accuracy(r["net"], task["Pte"], task["yte"]) if r["net"] is not None else float("nan")
        print(
            f"| {r['name']} | {r['best']:.4f} | {r['t_best']:.1f} | {100 * acc:.1f}% | "
            f"{'never in %.0f s' % args.torch_time if r['t_to_cvx'] is None else '%.1f s' % r['t_to_cvx']} | "
            f"{'never' if t_c is None else '%.1f s' % t_c} |"
        )
    best = min(runs, key=lambda r: r["best"])
    reached = [r["t_to_cvx"] for r in runs if r["t_to_cvx"] is not None]
    t_c = first_time(curve, best["best"])
    print(
        f"\nbest PyTorch objective {best['best']:.4f} ({best['name']}, at {best['t_best']:.1f} s); convexnn "
        f"{c_obj:.4f} ({'<=' if c_obj <= best['best'] else '>'}) in {total:.1f} s; fastest PyTorch run to "
        f"convexnn's objective: {'none' if not reached else '%.1f s' % min(reached)}; convexnn to the best "
        f"PyTorch objective: {'never' if t_c is None else '%.1f s' % t_c}"
    )
    print(
        "convexnn rounds: "
        + "; ".join(
            f"{e['round']}: {e['objective']:.4f} at {e['cpu_time']:.1f} CPU s ({e['n_patterns']} patterns)"
            for e in res.rounds
        )
    )
    print(
        "convexnn curve (s, objective): "
        + ", ".join(f"({t:.1f}, {F:.2f})" for t, F in curve[:: max(1, len(curve) // 12)])
    )


if __name__ == "__main__":
    main()

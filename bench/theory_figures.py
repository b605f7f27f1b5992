"""Qualitative figures of the duality papers reproduced with convexnn.theory (each writes a PNG; not run in CI).

1. theory_rank_staircase.png -- rank of W_1 of GD-trained two-layer linear nets vs beta, steps at sigma_i(Y^T X)
   (Ergen & Pilanci, ICML 2021, Fig. 2a, Remark 2.1);
2. theory_equal_norms.png -- operator / Frobenius norms of the layers of a 4-layer linear net during GD
   (ICML 2021 Fig. 3a, Prop. 3.1);
3. theory_rank_one.png -- rank and a0-alignment of a 5-layer ReLU net trained on rank-one data (Fig. 3b, Thm 4.1);
4. theory_whitened_digits.png -- training objective of SGD-with-momentum runs vs the closed form on whitened,
   subsampled digits (JMLR 2021 Figs. 11-12 with Thm 15; ICML 2021 Fig. 4 with Thm 4.3): the closed form is <=
   every run.  Digits: 60 images (6 per class) of scikit-learn's 8x8 digits, features = the 64 pixels plus 26
   fixed random ReLU features (d = 90), whitened with convexnn.theory.whiten.

Usage: ``python bench/theory_figures.py [--out DIR]`` (about a minute on an idle core).
"""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from convexnn import theory as T  # noqa: E402


def staircase(out):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 20)) / 10
    Y = X @ rng.standard_normal((20, 5)) * 3
    sig = np.linalg.svd(Y.T @ X, compute_uv=False)
    betas = np.linspace(0.02, 1.05 * sig[0], 30)
    ranks = []
    for beta in betas:
        tr = T.train(
            T.MLP.random(20, [50], n_outputs=5, activation="linear", seed=1), X, Y, beta, optimizer="lbfgs", n_iter=3000
        )
        ranks.append(T.layer_ranks(tr.network, rtol=1e-3, atol=1e-4)[0])
    plt.figure(figsize=(5, 3.5))
    plt.step(betas, ranks, where="mid", label="rank W1 (trained)")
    for s in sig:
        plt.axvline(s, color="r", lw=0.8)
    plt.xlabel("beta")
    plt.ylabel("rank")
    plt.title("rank vs beta; red: sigma_i(Y^T X)")
    plt.tight_layout()
    plt.savefig(os.path.join(out, "theory_rank_staircase.png"), dpi=120)
    plt.close()


def equal_norms(out):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    Y = X @ rng.standard_normal((5, 5))
    net = T.MLP([rng.standard_normal(s) * 0.3 for s in [(5, 50), (50, 30), (30, 40), (40, 5)]], None, "linear")
    hist = []
    for _ in range(60):
        tr = T.train(net, X, Y, 2.0, optimizer="gd", lr=0.01, n_iter=50, momentum=0.9)
        net = tr.network
        hist.append((T.layer_norms(net)["operator"], T.layer_norms(net)["frobenius"]))
    op = np.array([h[0] for h in hist])
    fr = np.array([h[1] for h in hist])
    plt.figure(figsize=(5, 3.5))
    for l in range(4):
        plt.plot(np.arange(1, 61) * 50, op[:, l], label=f"||W{l + 1}||_2")
        plt.plot(np.arange(1, 61) * 50, fr[:, l], "--", label=f"||W{l + 1}||_F")
    plt.xlabel("iteration")
    plt.legend(fontsize=6, ncol=2)
    plt.title("4-layer linear net: norms equalize (ICML 2021 Prop. 3.1)")
    plt.tight_layout()
    plt.savefig(os.path.join(out, "theory_equal_norms.png"), dpi=120)
    plt.close()


def rank_one(out):
    rng = np.random.default_rng(2)
    c, a0 = np.abs(rng.standard_normal(20)), rng.standard_normal(10)
    X, y = np.outer(c, a0), 1.5 * c
    net = T.MLP.random(10, [50, 40, 30, 20], seed=3)
    ranks, cos = [], []
    for _ in range(40):
        net = T.train(net, X, y, 1e-3, optimizer="lbfgs", n_iter=25).network
        ranks.append(T.layer_ranks(net, rtol=1e-3))
        cos.append(abs(np.linalg.svd(net.weights[0])[0][:, 0] @ a0) / np.linalg.norm(a0))
    ranks = np.array(ranks)
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.3))
    for l in range(ranks.shape[1]):
        ax[0].plot(ranks[:, l], label=f"W{l + 1}")
    ax[0].set_xlabel("L-BFGS round (25 it.)")
    ax[0].set_ylabel("rank (rtol 1e-3)")
    ax[0].legend(fontsize=7)
    ax[1].plot(cos)
    ax[1].set_ylabel("|cos(u_1(W1), a0)|")
    ax[1].set_xlabel("L-BFGS round")
    fig.suptitle(
        f"5-layer ReLU, rank-one data; closed form {T.rank_one_relu(X, y, 5, 1e-3).objective:.6g}, "
        f"trained {T.weight_decay_objective(net, X, y, 1e-3):.6g}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(os.path.join(out, "theory_rank_one.png"), dpi=120)
    plt.close(fig)


def whitened_digits(out):
    d = load_digits()
    rng = np.random.default_rng(4)
    idx = np.concatenate([rng.choice(np.flatnonzero(d.target == k), 6, replace=False) for k in range(10)])
    R = rng.standard_normal((64, 26)) / 8
    F = np.hstack([d.data[idx] / 16, np.maximum(d.data[idx] / 16 @ R, 0)])
    X = T.whiten(F).transform(F)
    Y = np.eye(10)[d.target[idx]]
    beta = 1e-3 * 10
    cf = T.whitened_two_layer(X, Y, beta, loss="multiclass")
    deep = T.whitened_deep_relu(X, Y, 3, beta)
    plt.figure(figsize=(5, 3.5))
    finals = []
    for seed in range(5):
        tr = T.train(
            T.MLP.random(90, [100], n_outputs=10, seed=seed),
            X,
            Y,
            beta,
            optimizer="sgd",
            lr=0.5,
            n_iter=300,
            momentum=0.9,
            batch_size=20,
            record_every=5,
        )
        it = [h["iter"] for h in tr.history]
        plt.semilogy(it, [h["objective"] for h in tr.history], lw=0.8, label=f"SGD run {seed}")
        finals.append(tr.objective)
    plt.axhline(cf.objective, color="k", ls="--", label="Theory (JMLR Thm 15)")
    plt.xlabel("epoch")
    plt.ylabel("training objective")
    plt.legend(fontsize=7)
    plt.title(f"whitened digits (n, d) = (60, 90): min SGD {min(finals):.4g} >= theory {cf.objective:.4g}", fontsize=8)
    plt.tight_layout()
    plt.savefig(os.path.join(out, "theory_whitened_digits.png"), dpi=120)
    plt.close()
    assert min(finals) >= cf.objective * (1 - 1e-9)
    return cf.objective, finals, deep.objective


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    staircase(args.out)
    equal_norms(args.out)
    rank_one(args.out)
    cf, finals, deep = whitened_digits(args.out)
    print(
        f"whitened digits: Thm 15 closed form {cf:.6g}; SGD finals {np.round(finals, 6).tolist()}; "
        f"deep (L = 3, Thm 4.3 balanced) {deep:.6g}"
    )


if __name__ == "__main__":
    main()

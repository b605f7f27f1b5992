"""convexnn.bn: Theorems 4.1/4.2/G.2, Section 5 (Theorem 5.1 by finite differences, the cosine diagnostic (18)),
vector outputs (Theorem 2.3 bracket), the PyTorch export and bad input (Ergen et al., ICLR 2022)."""

import numpy as np
import pytest

import convexnn as cnn
from convexnn import bn
from convexnn.bn import vector

X1D = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])[:, None]
Y1D = np.array([1.0, 0.0, -1.0, 0.5, 2.0, -0.5])
Y2 = np.column_stack([Y1D, [0.2, 1.0, 0.3, -0.7, 0.1, 0.9]])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = cnn.get_num_threads()
    cnn.set_num_threads(1)
    yield
    cnn.set_num_threads(before)


# ---- closed forms ------------------------------------------------------------------------------------------------


def test_theorem_g2_bn_after_relu_and_its_lower_bound_by_gradient_descent():
    rng = np.random.default_rng(0)
    X, y, beta = rng.standard_normal((5, 8)), rng.standard_normal(5), 0.3
    res = bn.closed_form_bn_after_relu(X, y, beta)
    assert res.objective == pytest.approx(float(bn.huber(np.linalg.norm(y), beta)), rel=1e-14)
    np.testing.assert_allclose(res.network.forward(X), y * (1 - beta / np.linalg.norm(y)), atol=1e-12)
    assert res.network.objective(X, y, beta) == pytest.approx(res.objective, rel=1e-12)
    assert res.unit_network.objective(X, y, beta, form="l1") == pytest.approx(res.objective, rel=1e-12)
    np.testing.assert_allclose(res.dual, y - res.output, atol=1e-14)
    # Random BN-after-ReLU networks never beat it.
    for seed in range(200):
        r = np.random.default_rng(seed)
        m = int(r.integers(1, 4))
        net = bn.BNAfterReLUNetwork(
            r.standard_normal((m, 8)), r.standard_normal(m), r.standard_normal(m), r.standard_normal(m)
        )
        assert net.objective(X, y, beta) >= res.objective - 1e-12


def test_theorems_4_1_and_4_2_on_full_row_rank_activations():
    rng = np.random.default_rng(1)
    A = np.maximum(rng.standard_normal((6, 30)) @ rng.standard_normal((30, 40)), 0)  # earlier layers' output
    y = rng.standard_normal(6)
    deep = bn.closed_form_deep(A, y, 0.2)
    assert deep.objective == pytest.approx(bn.closed_form(A, y, 0.2).objective, rel=0)
    assert deep.network.objective(A, y, 0.2) == pytest.approx(deep.objective, rel=1e-12)
    labels = np.array([0, 1, 1, 2, 2, 2])
    v = bn.closed_form_vector_deep(A, labels, 0.5)
    assert v.objective == pytest.approx(float(np.sum(bn.huber(np.sqrt([1.0, 2.0, 3.0]), 0.5))), rel=1e-14)
    assert v.network.objective(A, np.eye(3)[labels], 0.5) == pytest.approx(v.objective, rel=1e-12)


# ---- Section 5 -----------------------------------------------------------------------------------------------------


def _bn_point(seed=0, n=9, d=4, m=3, c=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ np.diag([3.0, 1.0, 0.5, 0.1]) + 1.0
    return (
        X,
        rng.standard_normal((n, c)),
        rng.standard_normal((m, d)),
        rng.standard_normal(m),
        rng.standard_normal(m),
        rng.standard_normal((m, c)),
    )


def _objective(X, Y, W1, g, a, W2, beta):
    return bn.BNReLUNetwork(W1, g, a, W2).objective(X, Y, beta)


def test_bn_gradients_match_finite_differences():
    X, Y, W1, g, a, W2 = _bn_point()
    beta, h = 0.3, 1e-6
    grads = bn.bn_gradients(X, Y, W1, g, a, W2, beta)
    assert grads["objective"] == pytest.approx(_objective(X, Y, W1, g, a, W2, beta), rel=1e-12)
    params = {"W1": W1, "gamma": g, "alpha": a, "W2": W2}
    for name, P in params.items():
        fd = np.zeros_like(P)
        for idx in np.ndindex(P.shape):
            up, dn = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
            up[name][idx] += h
            dn[name][idx] -= h
            fd[idx] = (_objective(X, Y, *up.values(), beta) - _objective(X, Y, *dn.values(), beta)) / (2 * h)
        np.testing.assert_allclose(grads[name], fd, atol=1e-6 * max(1.0, np.abs(fd).max()))


def test_theorem_5_1_preconditioning_identity_by_finite_differences():
    X, Y, W1, g, a, W2 = _bn_point(2)
    wh = bn.whiten(X)
    Q = wh.coordinates(W1)
    chk = bn.preconditioning_check(X, Y, W1, g, a, W2, beta=0.1)
    assert chk.relative_error < 1e-10 and chk.other_max_abs_error < 1e-10

    # The whitened model's q-gradient by finite differences, then S^2 times it against S V^T grad_w.
    def whitened(Qm):
        return bn.whitened_gradients(wh.U, Y, Qm, g, a, W2, 0.1)["objective"]

    h, fd = 1e-6, np.zeros_like(Q)
    for idx in np.ndindex(Q.shape):
        up, dn = Q.copy(), Q.copy()
        up[idx] += h
        dn[idx] -= h
        fd[idx] = (whitened(up) - whitened(dn)) / (2 * h)
    np.testing.assert_allclose(chk.whitened_step, fd * wh.S**2, atol=1e-5 * np.abs(fd * wh.S**2).max())
    np.testing.assert_allclose(chk.bn_step, fd * wh.S**2, atol=1e-5 * np.abs(fd * wh.S**2).max())
    # the same outputs: the whitened model at Q is the BN model at W1
    assert bn.whitened_gradients(wh.U, Y, Q, g, a, W2, 0.1)["objective"] == pytest.approx(
        bn.bn_gradients(X, Y, W1, g, a, W2, 0.1)["objective"], rel=1e-12
    )


def test_cosine_diagnostic_and_gd_fits_high_variance_directions_first():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 5)) @ np.diag([10.0, 3.0, 1.0, 0.3, 0.1])
    y = np.tanh(X @ rng.standard_normal(5))
    wh = bn.whiten(X)
    W0 = rng.standard_normal((20, 5))
    cos = bn.cosine_per_direction(wh.V, W0, W0)
    np.testing.assert_allclose(cos, 1.0, rtol=1e-12)
    assert bn.cosine_per_direction(wh.V, -W0, W0) == pytest.approx(-np.ones(5))
    init = (W0, np.ones(20), np.zeros(20), rng.standard_normal(20) * 0.1)
    tr = bn.train_bn(
        X,
        y,
        1e-3,
        n_neurons=20,
        model="bn",
        optimizer="gd",
        lr=1e-3,
        n_iter=300,
        init=init,
        keep_snapshots=True,
        record_every=300,
    )
    d_bn = bn.cosine_per_direction(wh.V, tr.snapshots[-1], W0)
    Q0 = wh.coordinates(W0)
    trw = bn.train_bn(
        X,
        y,
        1e-3,
        n_neurons=20,
        model="whitened",
        optimizer="gd",
        lr=1e-3,
        n_iter=300,
        init=(Q0,) + init[1:],
        keep_snapshots=True,
        record_every=300,
    )
    d_wh = bn.cosine_per_direction(np.eye(5), trw.snapshots[-1], Q0)
    # GD on (9) moves the top singular direction most and barely touches the bottom one (Fig. 1a); on (16)
    # the spread between directions is much smaller (Fig. 1b).
    assert d_bn[0] < d_bn[-1] and d_bn[-1] > 0.999
    assert (d_bn[-1] - d_bn[0]) > 5 * abs(d_wh[-1] - d_wh[0])
    assert tr.objective < tr.history[0]["objective"] or tr.objective < _objective(X, y, *init, 1e-3)


# ---- vector outputs (Theorem 2.3) ----------------------------------------------------------------------------------


def test_vector_output_bracket_and_exact_case():
    for beta in (0.1, 0.5):
        res = vector.solve_bn_vector(X1D, Y2, beta)
        assert res.enumerated
        assert res.lower_bound <= res.upper_bound * (1 + 1e-7)
        assert res.upper_bound <= res.heads.objective * (1 + 1e-9)
        assert res.network.objective(X1D, Y2, beta) == pytest.approx(res.upper_bound, rel=1e-9)
        if res.exact:
            assert res.upper_bound == pytest.approx(res.lower_bound, rel=1e-6)
        # Adam on the vector BN network (any width) never goes below the lower bound over all patterns.
        tr = bn.train_bn(X1D, Y2, beta, n_neurons=30, optimizer="adam", lr=0.02, n_iter=1500, seed=1)
        assert tr.network.objective(X1D, Y2, beta) >= res.lower_bound - 1e-7
    exact = vector.solve_bn_vector(X1D, Y2, 0.5)
    assert exact.exact and exact.upper_bound < exact.heads.objective - 1e-3  # shared neurons beat independent heads


def test_vector_relaxation_is_a_lower_bound_of_the_scalar_program():
    for beta in (0.1, 0.5):
        res = vector.solve_bn_vector(X1D, Y1D[:, None], beta)
        exact = bn.solve_bn(X1D, Y1D, beta, tol=1e-10)
        assert res.lower_bound <= exact.objective + 1e-7
        assert res.upper_bound == pytest.approx(exact.objective, rel=1e-8)


# ---- PyTorch export --------------------------------------------------------------------------------------------------


def test_pytorch_export_reproduces_training_and_inference_outputs():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the nn.Sequential export is not checked")
    X = np.random.default_rng(4).standard_normal((10, 3))
    y = np.sin(X[:, 0])
    res = bn.solve_bn(X, y, 0.05, patterns=25, tol=1e-9)
    net = res.network()
    module = net.to_torch()
    module.train()
    out = module(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, res.training_output(), atol=1e-8)
    # a train-mode forward must not move the running statistics that eval() uses (BatchNorm1d momentum 0)
    params = bn.export.torch_parameters(net)
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(module[1], name).numpy(), params[f"bn.{name}"])
    module.eval()
    Xnew = np.random.default_rng(5).standard_normal((6, 3))
    np.testing.assert_allclose(module(torch.as_tensor(Xnew)).detach().numpy(), res.predict(Xnew), atol=1e-8)


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_exported_parameters_reproduce_the_network_under_pytorch_batchnorm_formulas(eps):
    # PyTorch's BatchNorm1d, written out: training mode normalizes with the batch mean and biased variance,
    # eval mode with running_mean / running_var; both add eps under the square root.
    X = np.random.default_rng(4).standard_normal((10, 3))
    res = bn.solve_bn(X, np.sin(X[:, 0]), 0.05, patterns=25, tol=1e-9)
    net = res.network()
    V = np.zeros((1, 4, 1))
    V[0, 3, 0] = 0.7  # add a constant neuron (w = 0)
    const = bn.network_from_convex(V, np.zeros_like(V), res.whitening)
    net = bn.BNReLUNetwork(
        np.vstack([net.W1, const.W1]),
        np.r_[net.gamma, const.gamma],
        np.r_[net.alpha, const.alpha],
        np.r_[net.w2, const.w2],
        stats=tuple(np.r_[a, b] for a, b in zip(net.stats[:2], const.stats[:2])) + (10,),
    )
    p = bn.export.torch_parameters(net, eps)
    Z = X @ p["linear1.weight"].T
    train = (Z - Z.mean(0)) / np.sqrt(Z.var(0) + eps) * p["bn.weight"] + p["bn.bias"]
    np.testing.assert_allclose(np.maximum(train, 0) @ p["linear2.weight"].T[:, 0], net.forward(X), atol=1e-9)
    Xnew = np.random.default_rng(5).standard_normal((6, 3))
    Zn = Xnew @ p["linear1.weight"].T
    ev = (Zn - p["bn.running_mean"]) / np.sqrt(p["bn.running_var"] + eps) * p["bn.weight"] + p["bn.bias"]
    np.testing.assert_allclose(np.maximum(ev, 0) @ p["linear2.weight"].T[:, 0], net.predict(Xnew), atol=1e-9)
    with pytest.raises(ValueError, match="eps = 0"):
        bn.export.torch_parameters(net, 0.0)


def test_pytorch_export_without_torch_says_how_to_install():
    try:
        import torch  # noqa: F401
    except ImportError:
        net = bn.closed_form(np.eye(3), [2.0, -1.0, 0.5], 0.5).network
        with pytest.raises(ImportError, match="pip install torch"):
            net.to_torch()
    else:
        pytest.skip("PyTorch is installed: the missing-dependency message is not reachable")


# ---- bad input -----------------------------------------------------------------------------------------------------


def test_bad_input_names_the_argument_and_the_condition():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match=r"X must have full row rank .*rank is 3"):
        bn.closed_form(np.vstack([X[:3], X[0] + X[1]]), rng.standard_normal(4), 0.1)
    with pytest.raises(ValueError, match=r"n = 5 > d = 3"):
        bn.closed_form(rng.standard_normal((5, 3)), rng.standard_normal(5), 0.1)
    with pytest.raises(ValueError, match="n >= 2"):
        bn.closed_form(np.ones((1, 3)), [1.0], 0.1)
    with pytest.raises(ValueError, match="n >= 2"):
        bn.solve_bn(np.ones((1, 3)), [1.0], 0.1)
    with pytest.raises(ValueError, match="truncate = 9 is out of range"):
        bn.solve_bn(X, rng.standard_normal(4), 0.1, truncate=9)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        bn.solve_bn(X, rng.standard_normal(4), -1.0)
    with pytest.raises(ValueError, match="y has 3 rows"):
        bn.solve_bn(X, rng.standard_normal(3), 0.1)
    with pytest.raises(ValueError, match="X contains NaN"):
        bn.solve_bn(np.full((4, 2), np.nan), rng.standard_normal(4), 0.1)
    with pytest.raises(ValueError, match="patterns must be"):
        bn.solve_bn(X, rng.standard_normal(4), 0.1, patterns="all")
    with pytest.raises(ValueError, match="gate rows"):
        bn.solve_bn(X, rng.standard_normal(4), 0.1, patterns=cnn.sample_patterns(X, 5))
    with pytest.raises(ValueError, match="one-hot"):
        bn.closed_form_vector(X, np.full((4, 2), 0.5), 0.1)
    with pytest.raises(ValueError, match="gamma must have shape"):
        bn.BNReLUNetwork(np.ones((2, 3)), np.ones(3), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="form must be one of"):
        bn.closed_form(X, rng.standard_normal(4), 0.1).network.objective(X, rng.standard_normal(4), 0.1, form="x")
    with pytest.raises(ValueError, match="X has 2 features"):
        bn.closed_form(X, rng.standard_normal(4), 0.1).network.predict(np.ones((3, 2)))

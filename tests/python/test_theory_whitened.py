"""convexnn.theory.whitened: JMLR 2021 Theorems 9, 12, 15 and Lemma 9 / 12, ICML 2021 Theorem 4.3, against the
papers' test vectors, the dual and CVXPY programs."""

import numpy as np
import pytest

from convexnn import theory as T

A3 = np.eye(4)[:3]


@pytest.mark.parametrize(
    "y, beta, P, f",
    [
        ([3, 4, -2], 1.0, 6.0, [2.4, 3.2, -1]),
        ([3, 4, -2], 3.0, 12.5, [1.2, 1.6, 0]),
        ([3, 4, -2], 6.0, 14.5, [0, 0, 0]),
        ([1, -3, -4], 2.0, 8.5, [0, -1.8, -2.4]),
    ],
)
def test_theorem9_vectors(y, beta, P, f):
    res = T.whitened_two_layer(A3, np.array(y, float), beta)
    assert res.objective == pytest.approx(P, abs=1e-12)
    assert res.dual_objective == pytest.approx(P, abs=1e-12)
    np.testing.assert_allclose(res.fitted, f, atol=1e-12)
    # the balanced network's weight-decay value equals the l1-form value
    net = res.network
    wd = 0.5 * np.sum((net.predict(A3) - y) ** 2) + 0.5 * beta * net.squared_weight_norm()
    assert wd == pytest.approx(P, abs=1e-12)
    if y == [3, 4, -2] and beta == 1.0:
        np.testing.assert_allclose(res.info["neurons"], [[0.6, 0], [0.8, 0], [0, 1], [0, 0]], atol=1e-12)
        np.testing.assert_allclose(res.info["output_weights"], [4, -1], atol=1e-12)
    if y == [1, -3, -4]:
        np.testing.assert_allclose(res.dual, [1, -1.2, -1.6], atol=1e-12)


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_theorem9_random_whitened_matches_convex_program():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(0)
    A = np.linalg.qr(rng.standard_normal((6, 4)))[0].T
    y = np.array([1.5, -0.7, 2.0, -1.2])
    for beta in (0.1, 1.0, 1.5, 2.2, 3.0):
        res = T.whitened_two_layer(A, y, beta)
        # JMLR 2021 eq. (22), the spike-free convex program
        w1, w2 = cp.Variable(6), cp.Variable(6)
        p = cp.Problem(
            cp.Minimize(0.5 * cp.sum_squares(A @ (w1 - w2) - y) + beta * (cp.norm(w1) + cp.norm(w2))),
            [A @ w1 >= 0, A @ w2 >= 0],
        )
        p.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        assert res.objective == pytest.approx(p.value, rel=1e-6)
        assert res.dual_objective == pytest.approx(res.objective, rel=1e-12)
        # dual feasibility on whitened data: max_u v^T (A u)_+ = ||(v)_+||
        assert max(np.linalg.norm(np.maximum(res.dual, 0)), np.linalg.norm(np.maximum(-res.dual, 0))) <= beta * (
            1 + 1e-12
        )
    assert T.whitened_two_layer(A, y, 1.0).objective == pytest.approx(2.8892443989, abs=1e-9)
    assert T.whitened_two_layer(A, y, 3.0).objective == pytest.approx(4.09, abs=1e-12)


@pytest.mark.parametrize("beta, P", [(0.5, 0.5 * (np.sqrt(3) + 1)), (1.5, 1 + 1.5 * np.sqrt(3)), (2.0, 4.0)])
def test_theorem12_hinge(beta, P):
    res = T.whitened_two_layer(np.eye(4), np.array([1, 1, 1, -1.0]), beta, loss="hinge")
    assert res.objective == pytest.approx(P, abs=1e-12)
    assert res.dual_objective == pytest.approx(P, abs=1e-12)


@pytest.mark.parametrize(
    "beta, P, pred", [(0.5, 1.3321068, [0.6464466, 0.5, 0.5]), (1.2, 1.9770563, [0.1514719, 0, 0])]
)
def test_theorem15_multiclass(beta, P, pred):
    Y = np.eye(3)[[0, 0, 1, 2]]
    res = T.whitened_two_layer(np.eye(4), Y, beta, loss="multiclass")
    assert res.objective == pytest.approx(P, abs=1e-7)
    assert res.dual_objective == pytest.approx(res.objective, abs=1e-12)
    np.testing.assert_allclose(res.fitted[[0, 2, 3], [0, 1, 2]], pred, atol=1e-7)


def test_whitened_assumptions_are_checked():
    with pytest.raises(ValueError, match="whitened"):
        T.whitened_two_layer(2 * np.eye(3), np.ones(3), 0.1)
    with pytest.raises(ValueError, match="n <= d"):
        T.whitened_two_layer(np.ones((4, 2)), np.ones(4), 0.1)
    with pytest.raises(ValueError, match="one-hot"):
        T.whitened_two_layer(np.eye(3), np.array([[1, 0], [1, 1], [0, 1.0]]), 0.1, loss="multiclass")
    with pytest.raises(ValueError, match="-1, \\+1"):
        T.whitened_two_layer(np.eye(3), np.array([1, 0, -1.0]), 0.1, loss="hinge")
    with pytest.raises(ValueError, match="loss must be one of"):
        T.whitened_two_layer(np.eye(3), np.ones(3), 0.1, loss="l1")


@pytest.mark.parametrize("L, opt, literal", [(2, 1.116025, 1.191987), (3, 1.486302, 1.691987), (4, 1.733484, 2.191987)])
def test_whitened_deep_relu_one_hot(L, opt, literal):
    X, Y = np.eye(4), np.eye(2)[[0, 0, 0, 1]]
    bal = T.whitened_deep_relu(X, Y, L, 0.5)
    lit = T.whitened_deep_relu(X, Y, L, 0.5, variant="literal")
    assert bal.objective == pytest.approx(opt, abs=1e-6)
    assert lit.objective == pytest.approx(literal, abs=1e-6)
    assert bal.dual_objective == pytest.approx(bal.objective, rel=1e-12)
    if L == 2:  # the literal weights compute the optimal function
        np.testing.assert_allclose(lit.fitted, bal.fitted, atol=1e-12)
        np.testing.assert_allclose(bal.info["s"], [1.232051, 0.5], atol=1e-6)
    else:  # class 2 is switched off (hard threshold)
        assert bal.info["s"][1] == 0.0
    # rebalancing the literal network gives the balanced value only for L = 2
    reb = T.rebalance(lit.network)
    wd = 0.5 * np.sum((reb.predict(X) - Y) ** 2) + 0.25 * reb.squared_weight_norm()
    if L == 2:
        assert wd == pytest.approx(opt, abs=1e-6)
    else:
        assert wd > opt + 1e-3


def test_whitened_deep_relu_larger_case_table():
    rng = np.random.default_rng(4)
    X = np.linalg.qr(rng.standard_normal((20, 12)))[0].T
    Y = np.eye(3)[np.repeat([0, 1, 2], [3, 4, 5])]
    expected = {
        (0.1, 2): (0.706819, 0.581812),
        (0.1, 3): (0.856819, 0.701268),
        (0.1, 4): (1.006819, 0.837358),
        (0.1, 5): (1.156819, 0.979431),
        (0.5, 2): (2.820470, 2.609059),
        (0.5, 3): (3.570470, 3.296406),
    }
    for (beta, L), (lit, bal) in expected.items():
        assert T.whitened_deep_relu(X, Y, L, beta, "literal").objective == pytest.approx(lit, abs=1e-6)
        assert T.whitened_deep_relu(X, Y, L, beta).objective == pytest.approx(bal, abs=1e-6)


def test_lemma9_and_lemma12():
    A = np.array([[1.0, 2, 0], [0, 1, 1]])
    res = T.l0_interpolation(A, np.array([1.0, -2]))
    U, w = res.info["neurons"], res.info["output_weights"]
    np.testing.assert_allclose(U[:, 0], np.array([1, 1, -1]) / np.sqrt(3), atol=1e-12)
    np.testing.assert_allclose(U[:, 1], np.array([-2, 1, 5]) / np.sqrt(30), atol=1e-12)
    np.testing.assert_allclose(w, [1 / np.sqrt(3), -np.sqrt(30) / 3], atol=1e-12)
    np.testing.assert_allclose(res.fitted, [1, -2], atol=1e-12)
    Y = np.eye(3)[[0, 1, 2, 1]]
    A2 = np.random.default_rng(0).standard_normal((4, 7))
    r2 = T.l0_interpolation(A2, Y)
    assert r2.info["n_neurons"] == 3
    np.testing.assert_allclose(r2.fitted, Y, atol=1e-10)
    with pytest.raises(ValueError, match="full row rank"):
        T.l0_interpolation(np.ones((2, 3)), np.array([1.0, -1]))


def test_whiten_transform_applies_to_test_rows():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 10))
    wh = T.whiten(X)
    Xw = wh.transform(X)
    np.testing.assert_allclose(Xw @ Xw.T, np.eye(6), atol=1e-10)
    x_new = rng.standard_normal((2, 10))
    np.testing.assert_allclose(wh.transform(np.vstack([X, x_new]))[:6], Xw, atol=1e-12)


def test_theorem9_matches_library_exact_program_over_all_patterns():
    import convexnn as cnn

    rng = np.random.default_rng(0)
    A = np.linalg.qr(rng.standard_normal((6, 4)))[0].T
    y = np.array([1.5, -0.7, 2.0, -1.2])
    pats = cnn.enumerate_patterns(A)
    for beta in (0.3, 1.0, 2.2):
        lib = cnn.solve(A, y, beta, patterns=pats, formulation="relu", tol=1e-10)
        assert lib.objective == pytest.approx(T.whitened_two_layer(A, y, beta).objective, rel=1e-6)


def test_gd_from_random_starts_never_below_theorem15():
    rng = np.random.default_rng(7)
    X = np.linalg.qr(rng.standard_normal((9, 6)))[0].T
    Y = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    res = T.whitened_two_layer(X, Y, 0.5, loss="multiclass")
    for seed in range(3):
        tr = T.train(
            T.MLP.random(9, [20], n_outputs=3, seed=seed), X, Y, 0.5, optimizer="gd", lr=0.5, n_iter=3000, momentum=0.9
        )
        assert res.objective * (1 - 1e-9) <= tr.objective <= res.objective * 1.05
    deep = T.whitened_deep_relu(X, Y, 3, 0.5)
    for seed in range(2):
        tr = T.train(T.MLP.random(9, [8, 8], n_outputs=3, seed=seed), X, Y, 0.5, optimizer="lbfgs", n_iter=3000)
        assert tr.objective >= deep.objective * (1 - 1e-9)


def test_theorems12_and_15_match_library_exact_program():
    import convexnn as cnn

    rng = np.random.default_rng(8)
    A = np.linalg.qr(rng.standard_normal((7, 5)))[0].T
    pats = cnn.enumerate_patterns(A)
    yb = np.array([1.0, 1, -1, 1, -1])
    for beta in (0.5, 1.5):
        lib = cnn.solve(A, yb, beta, patterns=pats, formulation="relu", loss="hinge", tol=1e-7)
        assert lib.objective == pytest.approx(T.whitened_two_layer(A, yb, beta, loss="hinge").objective, rel=1e-6)
    Y = np.eye(3)[[0, 1, 1, 2, 2]]
    lib = cnn.solve(A, Y, 0.5, patterns=pats, formulation="relu", groups="output", tol=1e-9)
    assert lib.objective == pytest.approx(T.whitened_two_layer(A, Y, 0.5, loss="multiclass").objective, rel=1e-6)

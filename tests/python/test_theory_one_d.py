"""convexnn.theory.one_d: exact 1-D two-layer networks (JMLR 2021 Lemma 6, Prop. 1, Thm 11) against the paper's
vectors, np.interp, CVXPY and gradient descent."""

import warnings

import numpy as np
import pytest

from convexnn import theory as T

A5 = np.array([-2.0, -1, 0, 1, 2])
Y5 = np.array([1.0, -1, 1, 1, -1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_norm_is_linear_interpolation(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, 12)
    y = rng.standard_normal(12)
    sp = T.one_d_spline(x, y, 0.0)
    grid = np.linspace(x.min(), x.max(), 2001)
    order = np.argsort(x)
    np.testing.assert_allclose(sp.predict(grid), np.interp(grid, x[order], y[order]), atol=1e-10)
    assert sp.dual_objective == pytest.approx(sp.objective, rel=1e-9)
    assert T.one_d_dual_check(x, sp.dual) <= 1 + 1e-9  # global dual feasibility
    kinks = T.detect_kinks(sp.predict, x.min(), x.max(), n_grid=20001)
    knots = np.sort(x)
    assert all(np.min(np.abs(knots - k)) < 1e-3 for k in kinks)  # kinks only at data points
    np.testing.assert_allclose(np.sort(sp.kinks()), sp.kinks(), atol=0)
    assert set(np.round(sp.kinks(), 12)) <= set(np.round(knots, 12))


def test_proposition1_equality_case():
    sp = T.one_d_spline(A5, Y5, 0.0)
    assert sp.objective == pytest.approx(8.0, abs=1e-9)
    v_star = np.array([1.0, -3, 2, 1, -1])  # the paper's dual certificate
    assert v_star @ Y5 == 8.0 and v_star.sum() == 0.0
    assert T.one_d_dual_check(A5, v_star) == pytest.approx(1.0)
    # the paper's primal solution w* over its 8-atom dictionary: feasible with ||w*||_1 = 8
    u = np.array([1, 1, 1, 1, -1, -1, -1, -1.0])
    b = np.array([2, 1, 0, -1, -1, 0, 1, 2.0])
    Ae = np.maximum(np.outer(A5, u) + b, 0)
    w = np.array([0, 6419 / 5000, -3919 / 2500, -8581 / 5000, 13581 / 5000, -1081 / 2500, -1419 / 5000, 0])
    np.testing.assert_allclose(Ae @ w, Y5, atol=1e-12)
    assert np.abs(w).sum() == pytest.approx(8.0)
    # an alternative optimum with kinks at 0.5 (non-uniqueness): also value 8, but v-hat is not globally feasible
    bh = np.array([2, 1, 0, -0.5, -1, 0, 0.5, 2.0])
    wh = np.array([0, 4 / 3, 0, -10 / 3, 8 / 3, 0, -2 / 3, 0])
    np.testing.assert_allclose(np.maximum(np.outer(A5, u) + bh, 0) @ wh, Y5, atol=1e-12)
    assert np.abs(wh).sum() == pytest.approx(8.0)
    assert T.one_d_dual_check(A5, np.array([1, -11 / 4, 5 / 4, 7 / 4, -5 / 4])) == pytest.approx(1.25)


def test_proposition1_regularized_one_over_2n_scaling():
    n, beta_paper = 5, 1e-4
    sp = T.one_d_spline(A5, Y5, n * beta_paper)  # library sum scaling
    assert sp.objective / n == pytest.approx(1999 / 2500000, abs=1e-15)  # = 7.996e-4 in the paper's scaling
    np.testing.assert_allclose(sp.fitted, [0.9995, -0.9985, 0.999, 0.9995, -0.9995], atol=1e-12)
    assert np.abs(sp.coef).sum() == pytest.approx(999 / 125, abs=1e-9)
    assert sp.gap < 1e-9 and sp.status == "optimal"

    def paper_value(w, c):
        u = np.array([1, 1, 1, 1, 1, -1, -1, -1, -1, -1.0])
        b = np.array([2, 1, 0, -c, -1, -1, 0, c, 1, 2.0])
        r = np.maximum(np.outer(A5, u) + b, 0) @ w - Y5
        return beta_paper * np.abs(w).sum() + r @ r / (2 * n)

    w1 = np.array([0, 3197 / 2400, -2497 / 1500, 0, -19997 / 12000, 31961 / 12000, -997 / 3000, 0, -3997 / 12000, 0])
    w3 = np.array(
        [
            0,
            323691 / 248000,
            -7349999 / 5208000,
            -1039627 / 1041600,
            -4660169 / 5208000,
            667193 / 248000,
            -1810997 / 5208000,
            -199753 / 1041600,
            -795707 / 5208000,
            0,
        ]
    )
    w4 = np.array(
        [
            0,
            167847 / 116000,
            -1248409 / 1218000,
            -1058987 / 974400,
            -6500131 / 4872000,
            295631 / 116000,
            -25387 / 1218000,
            -99563 / 974400,
            -2082883 / 4872000,
            0,
        ]
    )
    assert paper_value(w1, 0.5) == pytest.approx(sp.objective / n, abs=1e-15)
    # erratum: w3 is optimal for c = 0.8 and w4 for c = 0.2 (the paper swaps them)
    assert paper_value(w3, 0.8) == pytest.approx(sp.objective / n, abs=1e-15)
    assert paper_value(w4, 0.2) == pytest.approx(sp.objective / n, abs=1e-15)
    assert paper_value(w3, 0.2) > 10 * paper_value(w3, 0.8)


@pytest.mark.parametrize("beta, plain, with_intercept", [(1e-4, 8e-4, 8e-4), (0.1, 0.8, 0.8), (1.0, 4.25, 4.0)])
def test_hinge_values(beta, plain, with_intercept):
    assert T.one_d_spline(A5, Y5, beta, loss="hinge", intercept=False).objective == pytest.approx(plain, abs=1e-9)
    sp = T.one_d_spline(A5, Y5, beta, loss="hinge")
    assert sp.objective == pytest.approx(with_intercept, abs=1e-9)
    assert sp.dual_objective == pytest.approx(sp.objective, abs=1e-9)
    assert np.all((sp.dual * Y5 >= -1e-12) & (sp.dual * Y5 <= 1 + 1e-12))
    assert T.one_d_dual_check(A5, sp.dual, beta) <= 1 + 1e-9


@pytest.mark.parametrize("beta", [1e-3, 0.05, 0.5])
def test_lasso_matches_cvxpy(beta):
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-2, 2, 15))
    y = np.sin(2 * x) + 0.1 * rng.standard_normal(15)
    sp = T.one_d_spline(x, y, beta)
    D = T.hinge_dictionary(x, x)
    w, c = cp.Variable(30), cp.Variable()
    p = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(D @ w + c - y) + beta * cp.norm1(w)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    assert sp.objective == pytest.approx(p.value, rel=1e-6)
    assert sp.objective <= p.value * (1 + 1e-9)
    assert T.one_d_dual_check(x, sp.dual, beta) <= 1 + 1e-9
    assert sp.gap < 1e-8


def test_network_realizes_the_spline_and_training_never_goes_below():
    rng = np.random.default_rng(4)
    x = np.sort(rng.uniform(-1, 1, 8))
    y = rng.standard_normal(8)
    X = x[:, None]
    for beta in (0.05, 0.3):
        sp = T.one_d_spline(x, y, beta)
        net = sp.network(intercept_bias=1e8)
        np.testing.assert_allclose(net.predict(X), sp.fitted, atol=1e-7)
        assert T.weight_decay_objective(net, X, y, beta) == pytest.approx(sp.objective, rel=1e-7)
        for seed in range(2):
            start = T.MLP.random(1, [40], bias="all", seed=seed, bias_init=1.0)
            tr = T.train(start, X, y, beta, optimizer="lbfgs", n_iter=3000)
            assert sp.objective * (1 - 1e-9) <= tr.objective <= 1.02 * sp.objective
        if beta == 0.3:
            # without the intercept column the lasso value is not a lower bound (trained networks go below it)
            assert tr.objective < T.one_d_spline(x, y, beta, intercept=False).objective
    gd = T.train(
        T.MLP.random(1, [40], bias="all", seed=5, bias_init=1.0),
        X,
        y,
        0.3,
        optimizer="gd",
        lr=0.05,
        n_iter=2000,
        momentum=0.9,
    )
    assert gd.objective >= T.one_d_spline(x, y, 0.3).objective * (1 - 1e-9)


def test_validation():
    with pytest.raises(ValueError, match="same length"):
        T.one_d_spline(A5, Y5[:3], 0.1)
    with pytest.raises(ValueError, match="different targets"):
        T.one_d_spline(np.array([0.0, 0, 1]), np.array([1.0, 2, 3]), 0.0)
    with pytest.raises(ValueError, match="-1, \\+1"):
        T.one_d_spline(A5, A5, 0.1, loss="hinge")
    with pytest.raises(ValueError, match="beta must be >= 0"):
        T.one_d_spline(A5, Y5, -0.1)
    with pytest.raises(TypeError, match="intercept"):
        T.one_d_spline(A5, Y5, 0.1, intercept=1)
    assert T.one_d_dual_check(A5, np.ones(5)) == np.inf


def test_library_exact_program_over_enumerated_1d_patterns_converges_to_the_spline():
    # The library's exact program on the lifted data [x, M] (bias weight b / M, weight-decayed) over ALL its
    # enumerated patterns: its optimum is >= the unregularized-bias optimum and approaches it like O(1/M).
    import convexnn as cnn

    beta = 0.5
    ours = T.one_d_spline(A5, Y5, beta).objective
    assert ours == pytest.approx(25 / 12, abs=1e-9)
    gaps = []
    for M in (10.0, 20.0, 40.0):
        Xl = np.c_[A5, M * np.ones(5)]
        lib = cnn.solve(
            Xl, Y5, beta, patterns=cnn.enumerate_patterns(Xl), formulation="relu", tol=1e-10, max_iter=500_000
        )
        assert lib.objective >= ours * (1 - 1e-9)
        gaps.append(lib.objective - ours)
    assert gaps[0] > gaps[1] > gaps[2] > 0
    np.testing.assert_allclose(np.array(gaps) * [10, 20, 40], gaps[0] * 10, rtol=0.1)  # ~ c / M

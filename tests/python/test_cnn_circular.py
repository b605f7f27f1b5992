"""Linear circular CNN = l1 over DFT features (Pilanci & Ergen, ICML 2020, eq. (14), A.6): the unitary-DFT
normalisation (weight beta / sqrt(d)) pinned against the independent nuclear-norm program and the network's own
objective, CVXPY on the complex lasso, conjugate symmetry, and the lower bound for filters shorter than d."""

import math

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from convexnn.cnn import circular_patches, solve_circular_cnn, solve_linear_cnn, train_cnn
from convexnn.cnn.reference import cvx_fourier_lasso

pytest.importorskip("cvxpy")


def _data(n=20, d=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)
    return X, y


def test_circulant_diagonalisation_with_unitary_dft():
    rng = np.random.default_rng(0)
    d = 6
    u = rng.standard_normal(d)
    U = np.array([[u[(a - k) % d] for k in range(d)] for a in range(d)])  # first column u
    F = np.fft.fft(np.eye(d)) / math.sqrt(d)  # unitary DFT
    np.testing.assert_allclose(F.conj().T @ np.diag(math.sqrt(d) * (F @ u)) @ F, U, atol=1e-12)
    x = rng.standard_normal(d)
    np.testing.assert_allclose(circular_patches(x[None], d)[0] @ u, x @ U, atol=1e-12)  # patches = X U


@pytest.mark.parametrize("d", [6, 7])
def test_fourier_lasso_matches_cvxpy(d):
    X, y = _data(d=d)
    beta = 2.0
    res = solve_circular_cnn(X, y, beta, tol=1e-10)
    Xt = np.conj(np.fft.fft(X, axis=1)) / math.sqrt(d)
    ref, _ = cvx_fourier_lasso(Xt, y, beta / math.sqrt(d))
    assert res.status == "converged"
    assert res.objective == pytest.approx(ref, rel=1e-6)
    assert res.dual_objective <= ref * (1 + 1e-8) and res.objective >= ref * (1 - 1e-8)
    np.testing.assert_allclose(res.z[1:][::-1], np.conj(res.z[1:]), atol=1e-14)  # z_{d-w} = conj(z_w)
    np.testing.assert_allclose(res.predict(X), np.real(Xt @ res.z), atol=1e-12)


@pytest.mark.parametrize("d", [6, 7])
def test_normalisation_is_beta_over_sqrt_d_full_length_filters_exact(d):
    X, y = _data(d=d, seed=1)
    beta = 1.5
    res = solve_circular_cnn(X, y, beta, tol=1e-11)
    assert res.exact
    patches = circular_patches(X, d)
    nuclear = solve_linear_cnn(patches, y, beta, tol=1e-11)
    assert res.objective == pytest.approx(nuclear.objective, rel=1e-6)  # the nuclear-norm optimum of (12)
    net = res.network()
    assert net.objective(patches, y, beta) == pytest.approx(res.objective, rel=1e-9)
    # one real filter per nonzero conjugate pair / singleton
    assert net.n_filters == int(np.count_nonzero(res.z[: d // 2 + 1]))
    # the printed weight beta (instead of beta / sqrt(d)) would give a different value
    wrong = solve_circular_cnn(X, y, beta * math.sqrt(d), tol=1e-11)
    assert abs(wrong.objective - nuclear.objective) > 1e-3 * nuclear.objective


def test_short_filters_give_a_lower_bound():
    X, y = _data(d=8, seed=2)
    beta = 1.0
    res = solve_circular_cnn(X, y, beta, filter_size=3, tol=1e-10)
    assert not res.exact and res.filter_size == 3
    exact = solve_linear_cnn(circular_patches(X, 3), y, beta, tol=1e-10)
    assert res.objective <= exact.objective * (1 + 1e-8)
    assert res.objective < 0.99 * exact.objective  # a strict relaxation here
    with pytest.raises(ValueError, match="lower bound"):
        res.network()


def test_adam_on_the_circular_cnn_reaches_the_fourier_optimum():
    X, y = _data(n=30, d=5, seed=3)
    beta = 1.0
    res = solve_circular_cnn(X, y, beta, tol=1e-11)
    tr = train_cnn(
        circular_patches(X, 5), y, beta, n_filters=5, model="linear", lr=1e-2, n_epochs=3000, record_every=100
    )
    assert tr.objective >= res.dual_objective * (1 - 1e-12)
    assert tr.objective == pytest.approx(res.objective, rel=1e-5)


def test_not_converged_warns_and_bad_input():
    X, y = _data()
    with pytest.warns(ConvergenceWarning):
        solve_circular_cnn(X, y, 0.01, tol=1e-15, max_iter=2, check_every=1)
    with pytest.raises(ValueError, match="y must be"):
        solve_circular_cnn(X, y[:-1], 1.0)
    with pytest.raises(ValueError, match="filter_size"):
        solve_circular_cnn(X, y, 1.0, filter_size=8)
    with pytest.raises(ValueError, match="beta"):
        solve_circular_cnn(X, y, -1.0)
    with pytest.raises(ValueError, match="X must be 2-D"):
        solve_circular_cnn(X[None], y, 1.0)

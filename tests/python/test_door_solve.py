"""The public door of solve(), beta_max(), the patterns and networks: warnings, callbacks, progress, paths, sample
weights, scaling of huge data, JSON results, and the bad inputs that used to leak pybind11 / numpy messages."""

import json
import math
import warnings

import numpy as np
import pytest
import sklearn.exceptions

import convexnn as cnn
from convexnn.path import CVPath, RegularizationPath, solve_path_cv
from convexnn.result import ConvergenceWarning


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X[:, 0], 0) - 0.5 * np.maximum(-X[:, 1], 0) + 0.05 * rng.standard_normal(n)
    return X, y


# ---- warnings and status ----------------------------------------------------------------------------------------


def test_max_iter_gives_a_convergence_warning_naming_the_gap():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match=r"max_iter=3 .*relative gap .*Raise max_iter"):
        res = cnn.solve(X, y, 1e-4, patterns=20, max_iter=3, tol=1e-12)
    assert res.status == "max_iter"
    assert issubclass(ConvergenceWarning, sklearn.exceptions.ConvergenceWarning)


def test_converged_solve_does_not_warn():
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = cnn.solve(X, y, 1.0, patterns=20)
    assert res.status == "converged"


def test_nan_objective_is_reported_as_diverged():
    X, y = _data()
    res = cnn.solve(X, y, 1.0, patterns=10)
    res2 = cnn.SolveResult(**{**res.__dict__, "objective": float("nan"), "status": "max_iter"})
    assert res2.status == "diverged" and math.isnan(res2.max_violation)


# ---- huge data: exact power-of-two scaling ------------------------------------------------------------------------


def test_beta_max_at_1e154_is_finite_and_scales_linearly():
    X, y = _data()
    pats = cnn.sample_patterns(X, 20, seed=1)
    ref = cnn.beta_max(X, y, pats)
    big = cnn.beta_max(X * 2.0**512, y, cnn.Patterns.from_gates(X * 2.0**512, pats.gates))
    assert math.isfinite(big)
    np.testing.assert_allclose(big, ref * 2.0**512, rtol=1e-12)


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_solve_on_huge_data_equals_the_rescaled_problem(formulation):
    # The problem on s X with beta s has the solution U / s and the same objective (Pilanci & Ergen 2020, eq. (8)
    # is homogeneous in (X, U)); solve() scales by a power of two internally, so both agree to rounding.
    X, y = _data(n=30)
    s = 2.0**520
    pats = cnn.sample_patterns(X, 10, seed=0)
    ref = cnn.solve(X, y, 0.1, patterns=pats, formulation=formulation, tol=1e-8)
    big = cnn.solve(
        X * s, y, 0.1 * s, patterns=cnn.Patterns.from_gates(X * s, pats.gates), formulation=formulation, tol=1e-8
    )
    assert big.status == ref.status == "converged"
    np.testing.assert_allclose(big.objective, ref.objective, rtol=1e-6)
    np.testing.assert_allclose(big.predict(X * s), ref.predict(X), rtol=1e-5, atol=1e-6)
    assert math.isfinite(big.max_violation) and big.max_violation <= 1e-6


def test_tiny_row_with_1e154_entries_is_certified_not_nan():
    X = np.array(
        [
            [
                -3.992129890959756e153,
                -1.4075458450955643e154,
                1.2140987222010653e154,
                3.105686450960769e153,
                1.1350755868758814e154,
            ]
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = cnn.solve(X, [1.0], 1.0, patterns=9, formulation="relu", loss="squared_hinge", bias=True, max_iter=100)
    assert math.isfinite(res.objective) and res.status != "diverged"
    assert res.dual_objective <= res.objective * (1 + 1e-12)


# ---- callback, progress ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_callback_sees_the_certificate_and_stops_the_solve(formulation):
    X, y = _data()
    seen = []

    def stop_at_second(info):
        seen.append(info)
        return len(seen) >= 2

    res = cnn.solve(X, y, 1e-3, patterns=20, formulation=formulation, tol=1e-12, callback=stop_at_second)
    assert res.status == "interrupted" and len(seen) == 2
    assert {"iteration", "objective", "dual_objective", "gap", "time"} <= set(seen[0])
    assert seen[1]["iteration"] > seen[0]["iteration"]
    assert res.n_iter == seen[1]["iteration"]


def test_relu_with_a_callback_reaches_the_same_optimum():
    X, y = _data()
    pats = cnn.sample_patterns(X, 15, seed=0)
    ref = cnn.solve(X, y, 0.05, patterns=pats, formulation="relu", tol=1e-8)
    calls = []
    res = cnn.solve(X, y, 0.05, patterns=pats, formulation="relu", tol=1e-8, callback=lambda i: calls.append(i))
    assert res.status == "converged" and calls
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)


def test_progress_bar_writes_to_stderr(capsys):
    X, y = _data()
    cnn.solve(X, y, 0.1, patterns=10, progress=True)
    assert "convexnn gated" in capsys.readouterr().err


def test_bad_callback_and_progress_are_type_errors():
    X, y = _data()
    with pytest.raises(TypeError, match="callback"):
        cnn.solve(X, y, 0.1, callback=3)
    with pytest.raises(TypeError, match="progress"):
        cnn.solve(X, y, 0.1, progress="yes")


# ---- sample weights ----------------------------------------------------------------------------------------------


def test_sample_weight_equals_the_weighted_objective_by_cvxpy():
    cp = pytest.importorskip("cvxpy")
    X, y = _data(n=25, d=2)
    w = np.random.default_rng(3).uniform(0.1, 3.0, len(y))
    pats = cnn.sample_patterns(X, 8, seed=0, bias=True)
    res = cnn.solve(X, y, 0.2, patterns=pats, bias=True, tol=1e-9, sample_weight=w)
    Xb = np.column_stack([X, np.ones(len(X))])
    D = pats.dense().astype(float)
    U = cp.Variable((Xb.shape[1], D.shape[1]))
    pred = cp.sum(cp.multiply(D, Xb @ U), axis=1)
    obj = 0.5 * cp.sum(cp.multiply(w, cp.square(pred - y))) + 0.2 * cp.sum(cp.norm(U, 2, axis=0))
    prob = cp.Problem(cp.Minimize(obj))
    prob.solve(solver="CLARABEL")
    np.testing.assert_allclose(res.objective, prob.value, rtol=1e-6)
    assert res.dual_objective <= prob.value * (1 + 1e-9)


def test_sample_weight_takes_every_loss_and_refuses_bad_shapes():
    X, y = _data()
    yb = np.where(y > 0, 1.0, -1.0)
    # Every loss takes weights now: unit weights are the unweighted problem.
    ones = cnn.solve(X, yb, 0.1, loss="logistic", sample_weight=np.ones(len(y)), tol=1e-10)
    assert ones.objective == pytest.approx(cnn.solve(X, yb, 0.1, loss="logistic", tol=1e-10).objective, rel=1e-9)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(40,\)"):
        cnn.solve(X, y, 0.1, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        cnn.solve(X, y, 0.1, sample_weight=-np.ones(len(y)))


# ---- SolveResult.to_dict ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_to_dict_is_json_serializable(formulation):
    X, y = _data()
    res = cnn.solve(X, y, 0.1, patterns=10, formulation=formulation)
    d = json.loads(json.dumps(res.to_dict(coef=True)))
    assert d["objective"] == res.objective and d["status"] == res.status
    assert d["n_neurons"] == res.network().n_neurons and len(d["history"]) == len(res.history)
    assert all(type(v) in (int, float, str, bool) for row in res.history for v in row.values())


# ---- paths -------------------------------------------------------------------------------------------------------


def test_solve_path_returns_a_path_object_with_validation_scores():
    X, y = _data(n=60)
    path = cnn.solve_path(X[:40], y[:40], patterns=15, n_betas=5, X_val=X[40:], y_val=y[40:], warm_start=None)
    assert isinstance(path, RegularizationPath) and isinstance(path, list) and len(path) == 5
    np.testing.assert_allclose(path.betas, path.grid)
    assert np.all(np.diff(path.betas) < 0) and path.n_neurons[0] == 0  # beta_max: the zero network
    assert np.isfinite(path.scores).all() and path.scores[path.best_index] == path.scores.max()
    from sklearn.metrics import r2_score

    np.testing.assert_allclose(path.scores[-1], r2_score(y[40:], path[-1].predict(X[40:])), rtol=1e-12)
    assert path.statuses == [r.status for r in path]
    json.dumps(path.to_dict())


def test_solve_path_stops_at_the_first_interrupt():
    X, y = _data()
    calls = []
    path = cnn.solve_path(X, y, patterns=10, n_betas=6, tol=1e-12, callback=lambda info: calls.append(1) or True)
    # beta_max converges at once (the zero network) without a callback; the next solve is stopped, and the path too.
    assert path.interrupted and len(path) < 6 and calls
    assert path[-1].status == "interrupted" and "interrupted" not in path.statuses[:-1]


def test_solve_path_argument_errors_name_the_argument():
    X, y = _data()
    with pytest.raises(TypeError, match="betas must be an array of real numbers"):
        cnn.solve_path(X, y, betas="abc")
    with pytest.raises(ValueError, match="beta_min_ratio must be > 0"):
        cnn.solve_path(X, y, beta_min_ratio=0.0)


def test_cross_validated_path_matches_manual_folds():
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    X, y = _data(n=45)
    pats = cnn.sample_patterns(X, 10, seed=0)
    cv = solve_path_cv(X, y, patterns=pats, n_folds=3, n_betas=4, refit=True, n_jobs=2)
    assert isinstance(cv, CVPath) and cv.fold_scores.shape == (3, 4)
    train, test = next(KFold(3, shuffle=True, random_state=0).split(X))
    res = cnn.solve(X[train], y[train], float(cv.betas[2]), patterns=cnn.Patterns.from_gates(X[train], pats.gates))
    np.testing.assert_allclose(cv.fold_scores[0, 2], r2_score(y[test], res.predict(X[test])), rtol=1e-4, atol=1e-6)
    assert cv.best_result.beta == cv.best_beta and cv.index_1se <= cv.best_index
    serial = solve_path_cv(X, y, patterns=pats, n_folds=3, n_betas=4, refit=False)
    np.testing.assert_array_equal(serial.fold_scores, cv.fold_scores)


def test_path_plots(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = _data(n=45)
    path = cnn.solve_path(X, y, patterns=10, n_betas=3, X_val=X, y_val=y)
    assert path.plot().get_xscale() == "log"
    cv = solve_path_cv(X, y, patterns=10, n_folds=3, n_betas=3, refit=False)
    assert cv.plot().get_xlabel() == "beta / beta_max"


# ---- bad input: every message names the argument ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda X, y: cnn.sample_patterns(X, 5, bias="False"), TypeError, "bias must be True or False"),
        (lambda X, y: cnn.sample_patterns(X, 5, bias=None), TypeError, "bias must be True or False"),
        (lambda X, y: cnn.enumerate_patterns(X[:5, :1], bias=None), TypeError, "bias must be True or False"),
        (lambda X, y: cnn.Patterns.from_gates(X, np.ones((3, 2)), bias="no"), TypeError, "bias must be True or False"),
        (lambda X, y: cnn.beta_max(X, y, 5, bias="False"), TypeError, "bias must be True or False"),
        (lambda X, y: cnn.sample_patterns(X + 1j, 5), TypeError, "X must be real"),
        (lambda X, y: cnn.solve(X, y + 1j, 1.0), TypeError, "y must be real"),
        (lambda X, y: cnn.Patterns.from_gates(X, np.ones((3, 2)) + 1j), TypeError, "G must hold real numbers"),
        (lambda X, y: cnn.Patterns.from_gates(X, [[1, 2], [3]]), ValueError, "G must be a rectangular array"),
        (lambda X, y: cnn.sample_patterns(X, 5, seed=2**64), ValueError, "seed must be <="),
        (lambda X, y: cnn.sample_patterns(X, 2**64), MemoryError, r"sample_patterns\(n_patterns="),
        (lambda X, y: cnn.Network(np.ones((2, 3)) + 1j, np.ones(2)), TypeError, "W1 must hold real numbers"),
        (lambda X, y: cnn.Network(np.ones((2, 3)), np.ones(2), bias="yes"), TypeError, "bias must be True or False"),
    ],
)
def test_bad_input_messages_name_the_argument(call, exc, match):
    X, y = _data(n=20)
    with pytest.raises(exc, match=match):
        call(X, y)


def test_sparse_input_is_refused_with_a_clear_message():
    sp = pytest.importorskip("scipy.sparse")
    X, y = _data()
    with pytest.raises(TypeError, match="sparse input is not supported"):
        cnn.solve(sp.csr_matrix(X), y, 1.0)


def test_huge_integer_limits_mean_no_limit():
    X, y = _data(n=20)
    assert cnn.solve(X, y, 1.0, patterns=5, max_iter=2**63 - 1).status == "converged"
    assert cnn.enumerate_patterns(X[:8, :2], max_patterns=2**64).n_patterns > 0


def test_enumerate_overflow_message_states_the_exact_bound():
    X = np.random.default_rng(0).standard_normal((200, 50))
    from math import comb

    bound = 2 * sum(comb(199, k) for k in range(50))
    with pytest.raises(ValueError, match=f"up to {float(bound):.3g} regions".replace("+", r"\+")):
        cnn.enumerate_patterns(X, max_patterns=10)


def test_network_bias_defaults_to_false():
    net = cnn.Network(np.array([[1.0, 0.0]]), np.array([2.0]))
    assert net.bias is False
    np.testing.assert_array_equal(net.predict(np.array([[3.0, 5.0], [-1.0, 0.0]])), [6.0, 0.0])


def test_float32_predictions_on_the_training_data_match_the_certificate():
    # Sampled bias gates pass through a training point: its mask must be recomputed in the precision the patterns
    # were built in, or res.predict(X_train) disagrees with the certified predictions.
    worst = 0.0
    for seed in range(6):
        X, y = _data(n=50, seed=seed)
        res = cnn.solve(X, y, 0.05, patterns=40, bias=True, dtype=np.float32, seed=seed, tol=1e-5)
        masks = res.patterns.dense()
        Xb = np.column_stack([X.astype(np.float32).astype(np.float64), np.ones(len(X))])
        certified = np.einsum("np,nd,pd->n", masks, Xb, res.coef_[:, :, 0])
        worst = max(worst, np.abs(res.predict(X.astype(np.float32)) - certified).max())
    assert worst < 1e-9

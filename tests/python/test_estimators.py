"""scikit-learn estimators: conformance (check_estimator), pre-processing, beta, certificates, pickle, Pipeline,
GridSearchCV, classifier labels and losses, bad input, and the PyTorch export.

check_estimator runs on formulation="gated" instances: formulation="relu" (the default) is much slower (cone
projections every iteration) for the ~100 conformance fits; relu is tested below on tiny data (n <= 60, P <= 10).
"""

import pickle
import sys

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import convexnn as cnn
from convexnn import export
from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

# Smaller pattern counts and a looser tol than the defaults keep the ~100 conformance fits fast (the multiclass
# cross-entropy solve is the slow one); the checks are about the API, accuracy is tested below.
# Integer sample weights act as repeated rows, but scikit-learn's equivalence check also reorders the rows, and the
# sampled gates depend on the row order (a gate's bias passes through a randomly drawn training row): other gates,
# another (certified) solution. The check is expected to fail for that reason.
_ORDER_DEPENDENT = {
    "check_sample_weight_equivalence_on_dense_data": "sampled gates depend on the order of the rows, which the check changes",
}


@parametrize_with_checks(
    [
        ConvexReLURegressor(formulation="gated", n_patterns=50),
        ConvexReLUClassifier(formulation="gated", n_patterns=30, tol=1e-4),
    ],
    expected_failed_checks=lambda est: _ORDER_DEPENDENT,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


def _regression(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.array([1.0, 50.0, 0.01])[:d] + np.array([3.0, -100.0, 7.0])[:d]
    Xs = (X - X.mean(0)) / X.std(0)
    y = (
        20.0
        + 5 * np.maximum(Xs[:, 0] + 0.5 * Xs[:, 1], 0)
        - 3 * np.maximum(-Xs[:, 0], 0)
        + 0.1 * rng.standard_normal(n)
    )
    return X, y


def _blobs(n=60, seed=0, labels=("neg", "pos")):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    inside = (X**2).sum(1) < 1.2  # a disc: not linearly separable
    y = np.where(inside, labels[1], labels[0])
    return X, y


# ---- pre-processing, beta, certificate ---------------------------------------------------------------------------


def test_regressor_standardizes_X_and_centers_y_like_a_manual_solve():
    X, y = _regression()
    est = ConvexReLURegressor(formulation="gated", n_patterns=40, beta_ratio=0.02, tol=1e-8).fit(X, y)
    Xs = (X - X.mean(0)) / X.std(0)
    yc = y - y.mean()
    np.testing.assert_allclose(est.x_mean_, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(est.x_scale_, X.std(0), rtol=1e-12)
    np.testing.assert_allclose(est.y_mean_, y.mean(), rtol=1e-12)
    pats = cnn.sample_patterns(Xs, n_patterns=40, seed=0, bias=True)
    bmax = cnn.beta_max(Xs, yc, pats, bias=True)
    np.testing.assert_allclose(est.beta_max_, bmax, rtol=1e-10)
    np.testing.assert_allclose(est.beta_, 0.02 * bmax, rtol=1e-12)
    res = cnn.solve(Xs, yc, 0.02 * bmax, patterns=pats, bias=True, formulation="gated", tol=1e-8)
    np.testing.assert_allclose(est.objective_, res.objective, rtol=1e-9)
    X_new = X[:7] + 0.3
    np.testing.assert_allclose(
        est.predict(X_new), res.predict((X_new - X.mean(0)) / X.std(0)) + y.mean(), rtol=1e-9, atol=1e-9
    )
    # The documented identity between predict and network_.
    np.testing.assert_allclose(
        est.predict(X_new), est.network_.predict((X_new - est.x_mean_) / est.x_scale_) + est.y_mean_, rtol=1e-12
    )
    assert est.status_ == "converged" and est.gap_ <= 1e-8
    assert est.dual_objective_ <= est.objective_
    assert est.certificate_["n_neurons"] == est.network_.n_neurons > 0


def test_gates_are_recentered_off_the_training_points_keeping_the_fit():
    # Sampled gates pass through a training point; the estimator moves each gate's boundary to the middle of its
    # margin so predictions do not hinge on rounding, without changing any training pattern.
    X, y = _regression(n=80)
    est = ConvexReLURegressor(formulation="gated", n_patterns=60, tol=1e-8).fit(X, y)
    Xs = (X - est.x_mean_) / est.x_scale_
    Xb = np.column_stack([Xs, np.ones(len(X))])
    margins = Xb @ est.network_.gates
    raw_margins = Xb @ est.result_.network().gates
    scale = np.abs(margins).max(axis=0)
    assert np.abs(margins).min(axis=0).min() > 1e-6 * scale.min()
    assert np.abs(raw_margins).min() < 1e-9 * scale.max()  # the sampled gates do sit on a training point
    np.testing.assert_array_equal(margins >= 0, raw_margins >= 0)
    np.testing.assert_allclose(est.predict(X), est.result_.predict(Xs) + est.y_mean_, rtol=1e-10, atol=1e-10)
    rows = np.arange(0, 80, 7)
    np.testing.assert_array_equal(est.predict(X[rows]), est.predict(X)[rows])


def test_shifting_y_shifts_predictions_and_keeps_the_solve():
    X, y = _regression()
    a = ConvexReLURegressor(formulation="gated", n_patterns=30, tol=1e-8).fit(X, y)
    b = ConvexReLURegressor(formulation="gated", n_patterns=30, tol=1e-8).fit(X, y + 1000.0)
    np.testing.assert_allclose(b.predict(X), a.predict(X) + 1000.0, rtol=1e-9)
    np.testing.assert_allclose(b.objective_, a.objective_, rtol=1e-7)


def test_without_standardization_the_raw_data_is_solved():
    X, y = _regression()
    est = ConvexReLURegressor(formulation="gated", n_patterns=30, standardize=False, beta=5.0, tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(est.x_mean_, 0.0)
    np.testing.assert_array_equal(est.x_scale_, 1.0)
    np.testing.assert_array_equal(est.y_mean_, 0.0)
    res = cnn.solve(X, y, 5.0, patterns=cnn.sample_patterns(X, 30, seed=0, bias=True), bias=True, tol=1e-8)
    np.testing.assert_allclose(est.objective_, res.objective, rtol=1e-9)
    assert est.beta_ == 5.0


def test_beta_and_beta_ratio():
    X, y = _regression()
    est = ConvexReLURegressor(formulation="gated", n_patterns=30, beta=3.0).fit(X, y)
    assert est.beta_ == 3.0
    default = ConvexReLURegressor(formulation="gated", n_patterns=30).fit(X, y)
    np.testing.assert_allclose(default.beta_, 0.01 * default.beta_max_)
    with pytest.raises(ValueError, match="either beta .* or beta_ratio"):
        ConvexReLURegressor(beta=1.0, beta_ratio=0.1).fit(X, y)
    # At and above beta_max the zero network is optimal: predictions are the mean of y.
    zero = ConvexReLURegressor(formulation="gated", n_patterns=30, beta_ratio=1.5).fit(X, y)
    assert zero.network_.n_neurons == 0
    np.testing.assert_allclose(zero.predict(X), y.mean())


def test_convergence_warning_when_the_solver_stops_early():
    X, y = _regression()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        est = ConvexReLURegressor(formulation="gated", n_patterns=30, max_iter=1, tol=1e-12).fit(X, y)
    assert est.status_ == "max_iter"
    assert est.gap_ > 1e-12


def test_multi_output_regression():
    X, y = _regression()
    Y = np.column_stack([y, -2 * y + 1])
    est = ConvexReLURegressor(formulation="gated", n_patterns=30, tol=1e-7).fit(X, Y)
    pred = est.predict(X)
    assert pred.shape == (len(X), 2)
    assert est.score(X, Y) > 0.8
    np.testing.assert_allclose(est.y_mean_, Y.mean(0))


def test_float32_input_is_fit_and_predicted():
    # float32 data is solved in float32 (patterns may differ from float64's at ties, so the fits are compared by
    # quality, not point by point).
    X, y = _regression()
    est = ConvexReLURegressor(formulation="gated", n_patterns=30, tol=1e-5).fit(X.astype(np.float32), y)
    ref = ConvexReLURegressor(formulation="gated", n_patterns=30, tol=1e-5).fit(X, y)
    assert est.predict(X).dtype == np.float64
    assert abs(est.score(X, y) - ref.score(X, y)) < 0.02
    np.testing.assert_allclose(est.objective_, ref.objective_, rtol=0.02)


def test_relu_regressor_reconstructs_a_relu_network_with_the_convex_objective():
    X, y = _regression(n=40, d=2)
    est = ConvexReLURegressor(n_patterns=10, beta_ratio=0.01).fit(X, y)
    assert est.formulation == "relu" and isinstance(est.network_, cnn.Network)
    Xs, yc = (X - est.x_mean_) / est.x_scale_, y - est.y_mean_
    np.testing.assert_allclose(est.predict(X), est.network_.predict(Xs) + est.y_mean_, rtol=1e-12)
    assert est.max_violation_ <= 1e-6
    np.testing.assert_allclose(est.network_.objective(Xs, yc, est.beta_), est.objective_, rtol=1e-5)
    assert est.status_ == "converged" and est.score(X, y) > 0.6


def test_cutting_planes_certify_the_global_optimum_in_1d():
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, (30, 1))
    y = np.abs(x[:, 0]) + 0.1 * rng.standard_normal(30)
    plain = ConvexReLURegressor(n_patterns=3, beta_ratio=0.02, cutting_planes=False).fit(x, y)
    cut = ConvexReLURegressor(n_patterns=3, beta_ratio=0.02, cutting_planes=True).fit(x, y)
    default = ConvexReLURegressor(n_patterns=3, beta_ratio=0.02).fit(x, y)  # cutting_planes="auto": searches
    assert cut.certified_global_ and default.certified_global_ and not plain.certified_global_
    assert cut.n_patterns_ >= plain.n_patterns_
    assert cut.objective_ <= plain.objective_ * (1 + 1e-6)
    assert cut.certificate_["certified_global"] is True
    with pytest.raises(ValueError, match="cutting_planes"):
        ConvexReLURegressor(formulation="gated", cutting_planes=True).fit(x, y)


def test_relu_classifier_on_tiny_data():
    X, y = _blobs(n=50)
    est = ConvexReLUClassifier(n_patterns=8, beta_ratio=0.02).fit(X, y)
    assert isinstance(est.network_, cnn.Network) and est.loss_ == "logistic"
    assert est.score(X, y) > 0.85
    np.testing.assert_allclose(est.predict_proba(X).sum(1), 1.0)


# ---- pickle, Pipeline, GridSearchCV ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: (ConvexReLURegressor(formulation="gated", n_patterns=30), _regression()),
        lambda: (ConvexReLUClassifier(formulation="gated", n_patterns=30), _blobs()),
    ],
)
def test_pickle_roundtrip(make):
    est, (X, y) = make()
    est.fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    out = back.predict(X)
    np.testing.assert_array_equal(out, est.predict(X))
    assert back.objective_ == est.objective_ and back.status_ == est.status_
    assert back.result_.objective == est.result_.objective


def test_pipeline_and_grid_search_over_beta_and_patterns():
    X, y = _regression(n=48)
    pipe = make_pipeline(StandardScaler(), ConvexReLURegressor(formulation="gated"))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8
    grid = GridSearchCV(
        ConvexReLURegressor(formulation="gated"), {"beta_ratio": [0.005, 0.5], "n_patterns": [5, 40]}, cv=2
    )
    grid.fit(X, y)
    assert grid.best_params_["beta_ratio"] == 0.005
    assert set(grid.cv_results_["param_n_patterns"]) == {5, 40}
    grid = GridSearchCV(ConvexReLURegressor(formulation="gated", n_patterns=20), {"beta": [0.5, 1e4]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["beta"] == 0.5


def test_grid_search_over_the_formulation():
    X, y = _regression(n=40, d=2)
    grid = GridSearchCV(ConvexReLURegressor(n_patterns=6, beta_ratio=0.05), {"formulation": ["relu", "gated"]}, cv=2)
    grid.fit(X, y)
    assert {p["formulation"] for p in grid.cv_results_["params"]} == {"relu", "gated"}
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


# ---- classifier ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [("neg", "pos"), (3, 7), (-1.0, 2.0)])
def test_binary_classifier_any_labels(labels):
    X, y = _blobs(labels=labels)
    est = ConvexReLUClassifier(formulation="gated", n_patterns=60, beta_ratio=0.01).fit(X, y)
    assert list(est.classes_) == sorted(labels)
    assert est.loss_ == "logistic"
    assert est.score(X, y) > 0.9
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(est.classes_[proba.argmax(1)], est.predict(X))
    scores = est.decision_function(X)
    assert scores.shape == (len(X),)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(scores > 0).astype(int)])
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), atol=1e-10)


def test_multiclass_uses_cross_entropy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 2))
    angle = np.arctan2(X[:, 1], X[:, 0])
    y = np.array(["a", "b", "c"])[((angle + np.pi) / (2 * np.pi / 3)).astype(int) % 3]
    est = ConvexReLUClassifier(formulation="gated", n_patterns=60, beta_ratio=0.005).fit(X, y)
    assert est.loss_ == "cross_entropy"
    assert est.decision_function(X).shape == (90, 3)
    assert est.predict_proba(X).shape == (90, 3)
    assert est.score(X, y) > 0.85
    squared = ConvexReLUClassifier(formulation="gated", n_patterns=60, loss="squared").fit(X, y)
    assert squared.decision_function(X).shape == (90, 3)
    assert not hasattr(squared, "predict_proba")


def test_binary_cross_entropy_has_one_score_per_sample():
    X, y = _blobs()
    est = ConvexReLUClassifier(formulation="gated", n_patterns=40, loss="cross_entropy").fit(X, y)
    assert est.network_.w2.shape[1] == 2
    scores = est.decision_function(X)
    assert scores.shape == (len(X),)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-10)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(scores > 0).astype(int)])


def test_hinge_has_no_predict_proba_but_decides():
    X, y = _blobs()
    est = ConvexReLUClassifier(formulation="gated", n_patterns=40, loss="hinge").fit(X, y)
    assert not hasattr(est, "predict_proba")
    assert est.score(X, y) > 0.85


def test_classifier_label_errors():
    X, y = _blobs()
    with pytest.raises(ValueError, match="only one class"):
        ConvexReLUClassifier(formulation="gated").fit(X, np.full(len(X), "a"))
    y3 = np.arange(len(X)) % 3
    with pytest.raises(ValueError, match="binary but y has 3 classes"):
        ConvexReLUClassifier(formulation="gated", loss="logistic").fit(X, y3)
    with pytest.raises(ValueError, match="[Uu]nknown label type"):
        ConvexReLUClassifier(formulation="gated").fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="loss must be one of"):
        ConvexReLUClassifier(formulation="gated", loss="poisson").fit(X, y)
    est = ConvexReLUClassifier(formulation="gated", n_patterns=20).fit(X, y)
    with pytest.raises(ValueError, match=r"labels not seen in fit: \['maybe'\]"):
        est.score(X, np.where(y == "pos", "maybe", y))


# ---- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("Est", [ConvexReLURegressor, ConvexReLUClassifier])
def test_bad_input_errors(Est):
    X, y = _blobs() if Est is ConvexReLUClassifier else _regression(d=2)
    est = Est(formulation="gated", n_patterns=20)
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(Xnan, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples|samples"):
        est.fit(X, y[:-1])
    with pytest.raises(ValueError, match="2D array"):
        est.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(X[:0], y[:0])
    for params, pattern in [
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"beta_ratio": np.nan}, "beta_ratio must be"),
        ({"formulation": "convex"}, "formulation must be one of"),
        ({"n_patterns": 0}, "n_patterns must be >= 1"),
        ({"device": "gpu"}, "device must be one"),
        ({"groups": "all"}, "groups must be one of"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            Est(**{"formulation": "gated", "n_patterns": 20, **params}).fit(X, y)
    with pytest.raises(TypeError, match="bias must be True or False"):
        Est(formulation="gated", bias="yes").fit(X, y)
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 2 features"):
        est.predict(np.column_stack([X, X[:, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        est.predict(Xnan)


def test_regression_nan_target_is_rejected():
    X, y = _regression()
    y = y.copy()
    y[5] = np.inf
    with pytest.raises(ValueError, match="infinity|NaN|Inf"):
        ConvexReLURegressor(formulation="gated").fit(X, y)


def test_unfitted_estimator_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ConvexReLURegressor().predict(np.zeros((2, 2)))


# ---- PyTorch export ------------------------------------------------------------------------------------------------


def test_to_torch_without_torch_raises_a_clear_import_error(monkeypatch):
    net = cnn.Network(np.ones((2, 3)), np.ones(2), bias=True)
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail even where torch is installed
    for name in export._TORCH_CLASSES:
        monkeypatch.delitem(export.__dict__, name, raising=False)
    with pytest.raises(ImportError, match="pip install torch"):
        export.to_torch(net)


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_to_torch_matches_predict(gated, bias):
    torch = pytest.importorskip("torch", reason="PyTorch is optional (several GB); run in the peers venv")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((37, 4))
    d = 4 + int(bias)
    for w2 in (rng.standard_normal(6), rng.standard_normal((6, 3))):
        W1 = rng.standard_normal((6, d))
        net = (
            cnn.GatedNetwork(rng.standard_normal((d, 6)), W1, w2, bias=bias)
            if gated
            else cnn.Network(W1, w2, bias=bias)
        )
        module = export.to_torch(net)
        out = module(torch.as_tensor(X)).detach().numpy()
        assert out.shape == net.predict(X).shape
        np.testing.assert_allclose(out, net.predict(X), rtol=1e-6, atol=1e-9)
        out32 = export.to_torch(net, dtype=np.float32)(torch.as_tensor(X, dtype=torch.float32)).detach().numpy()
        np.testing.assert_allclose(out32, net.predict(X), rtol=1e-4, atol=1e-4)
        again = pickle.loads(pickle.dumps(module))
        np.testing.assert_array_equal(again(torch.as_tensor(X)).detach().numpy(), out)


def test_estimator_to_torch_matches_predict_and_decision_function():
    torch = pytest.importorskip("torch", reason="PyTorch is optional (several GB); run in the peers venv")
    X, y = _regression()
    reg = ConvexReLURegressor(formulation="gated", n_patterns=30).fit(X, y)
    np.testing.assert_allclose(reg.to_torch()(torch.as_tensor(X)).detach().numpy(), reg.predict(X), rtol=1e-6)
    Xc, yc = _blobs()
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=30).fit(Xc, yc)
    np.testing.assert_allclose(
        clf.to_torch()(torch.as_tensor(Xc)).detach().numpy(), clf.decision_function(Xc), rtol=1e-6, atol=1e-9
    )

"""convexnn.bn estimators: scikit-learn conformance, agreement with solve_bn, truncation, labels and losses."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import convexnn as cnn
from convexnn import bn


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny solves: on a shared 2-core machine OpenMP threads only add waiting.
    before = cnn.get_num_threads()
    cnn.set_num_threads(1)
    yield
    cnn.set_num_threads(before)


# Few patterns and a loose tol keep the ~100 conformance fits fast; accuracy is tested below.
# The classifier's sample_weight (integer weights as repeated rows) and class_weight meet two checks it cannot pass:
# the equivalence check reorders the rows (the whitening SVD and so the sampled patterns change with the order),
# and the class-weight check uses non-integer weights, which the BN program (no weights) cannot apply exactly.
_WEIGHT_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": "row order changes the whitening and patterns",
    "check_class_weight_classifiers": "non-integer class weights are refused (no weighted BN program)",
}


@parametrize_with_checks(
    [
        bn.ConvexBNReLURegressor(n_patterns=8, tol=1e-3, max_iter=3000),
        bn.ConvexBNReLUClassifier(n_patterns=8, tol=1e-3, max_iter=3000),
    ],
    expected_failed_checks=lambda est: (
        _WEIGHT_CHECKS if hasattr(est, "classes_") or "class_weight" in est.get_params() else {}
    ),
)
def test_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _regression(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [2.0, 1.0, 0.05] + 10.0
    y = 4.0 + np.maximum(X[:, 0] - 10, 0) - 0.5 * X[:, 1] + 0.05 * rng.standard_normal(n)
    return X, y


def test_regressor_is_solve_bn_on_centered_targets():
    X, y = _regression()
    est = bn.ConvexBNReLURegressor(beta=0.05, n_patterns=30, random_state=2, tol=1e-9).fit(X, y)
    res = bn.solve_bn(X, y - y.mean(), 0.05, patterns=30, seed=2, tol=1e-9)
    assert est.objective_ == pytest.approx(res.objective, rel=1e-9)
    Xnew = _regression(n=7, seed=5)[0]
    np.testing.assert_allclose(est.predict(Xnew), res.predict(Xnew) + y.mean(), atol=1e-9)
    assert est.network_.objective(X, y - y.mean(), 0.05) == pytest.approx(est.objective_, rel=1e-6)
    assert est.score(X, y) > 0.8
    assert est.certificate_["n_neurons"] == est.network_.n_neurons
    assert isinstance(cnn.ConvexBNReLURegressor(), bn.ConvexBNReLURegressor)  # lazy top-level name
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(Xnew), est.predict(Xnew))


def test_enumerated_fit_is_certified_global_and_truncation_follows_the_variance_rule():
    X, y = _regression(n=9)
    est = bn.ConvexBNReLURegressor(beta=0.2, n_patterns="enumerate", tol=1e-9).fit(X, y)
    assert est.certified_global_ and est.n_components_ == 3
    trunc = bn.ConvexBNReLURegressor(beta=0.2, n_patterns=20, truncate="auto", tol=1e-9).fit(X, y)
    wh = bn.whiten(X)
    assert trunc.n_components_ == bn.explained_variance_rank(wh.S, 0.95) < 3
    res = bn.solve_bn(X, y - y.mean(), 0.2, patterns=20, truncate="auto", seed=0, tol=1e-9)
    np.testing.assert_allclose(trunc.predict(X), res.predict(X) + y.mean(), atol=1e-9)
    with pytest.raises(ValueError, match="truncate"):
        bn.ConvexBNReLURegressor(truncate=10).fit(X, y)
    with pytest.raises(ValueError, match="truncate"):
        bn.ConvexBNReLURegressor(truncate="most").fit(X, y)


def test_classifier_labels_losses_and_probabilities():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 2))
    y = np.where((X**2).sum(1) < 1.0, "in", "out")  # not linearly separable
    for loss, tol in (("auto", 1e-6), ("squared", 1e-6), ("hinge", 1e-2)):  # hinge: nonsmooth, slow to 1e-6
        clf = bn.ConvexBNReLUClassifier(beta=0.01, n_patterns=40, loss=loss, tol=tol, max_iter=20000).fit(X, y)
        assert set(clf.predict(X)) <= {"in", "out"}
        assert clf.score(X, y) >= 0.9
    proba = bn.ConvexBNReLUClassifier(beta=0.01, n_patterns=40).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    assert not hasattr(bn.ConvexBNReLUClassifier(loss="hinge"), "predict_proba")
    labels = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
    multi = bn.ConvexBNReLUClassifier(beta=0.01, n_patterns=20, loss="squared", tol=1e-6).fit(X, labels)
    assert multi.decision_function(X).shape == (40, 3)
    assert multi.score(X, labels) >= 0.9
    with pytest.raises(ValueError, match="binary"):
        bn.ConvexBNReLUClassifier(loss="logistic").fit(X, labels)


def test_convergence_warning_when_the_solver_stops_early():
    X, y = _regression()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        est = bn.ConvexBNReLURegressor(beta=0.01, n_patterns=30, max_iter=2, tol=1e-12).fit(X, y)
    assert est.status_ == "max_iter"
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        bn.solve_bn(X, y, 0.01, patterns=30, max_iter=2, tol=1e-12)

"""ConvexCNNClassifier / ConvexCNNRegressor: images in, the certificate of the pooled convex program, agreement with a
manual solve_relu_cnn, sklearn API (clone, pipeline, pickle, score), bad input."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score

from convexnn.cnn import (
    ConvexCNNClassifier,
    ConvexCNNRegressor,
    extract_patches,
    operator_interface_available,
    relu_cnn_beta_max,
    solve_relu_cnn,
)
from convexnn.patterns import sample_patterns

pytestmark = pytest.mark.skipif(
    not operator_interface_available(),
    reason="this build of convexnn._core cannot run its solvers on Python operators (BlockOperatorF64 is not "
    "subclassable from Python), which the pooled CNN estimators need",
)


def _digits(classes=(0, 1), n=80):
    d = load_digits()
    keep = np.isin(d.target, classes)
    return d.images[keep][:n], d.target[keep][:n]


def test_classifier_equals_a_manual_solve_and_separates_digits():
    X, y = _digits()
    est = ConvexCNNClassifier(patch_size=3, stride=2, n_patterns=30, beta_ratio=0.05, tol=1e-8).fit(X, y)
    # the same program by hand: channel standardization, patches, the same patterns and beta
    Xs = (X[..., None] - X.mean()) / X.std()
    P = extract_patches(Xs, 3, stride=2)
    pats = sample_patterns(P.reshape(-1, P.shape[2]), 30, seed=0, bias=True)
    Y = np.where(y == est.classes_[1], 1.0, -1.0)
    bmax = relu_cnn_beta_max(P, Y, pats, loss="logistic", bias=True)
    assert est.beta_max_ == pytest.approx(bmax, rel=1e-10)
    res = solve_relu_cnn(P, Y, 0.05 * bmax, patterns=pats, loss="logistic", bias=True, tol=1e-8)
    assert est.objective_ == pytest.approx(res.objective, rel=1e-6)
    assert est.gap_ <= 1e-8 and est.status_ == "converged"
    assert est.dual_objective_ <= est.objective_
    assert est.score(X, y) >= 0.95
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(proba[:, 1] > 0.5).astype(int)])
    assert est.certificate_["n_filters"] == est.network_.n_filters


def test_multiclass_cross_entropy_and_kmeans_patterns():
    X, y = _digits(classes=(0, 1, 2), n=90)
    est = ConvexCNNClassifier(patch_size=4, stride=4, n_patterns=10, n_clusters=5, beta_ratio=0.1, tol=1e-5)
    est.fit(X, y)
    assert est.loss_ == "cross_entropy" and est.decision_function(X).shape == (90, 3)
    assert est.n_patterns_ <= 15 and est.score(X, y) > 0.8


def test_exact_regressor_network_objective_equals_convex():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 5, 5))
    y = np.maximum(X[:, 1:4, 1:4].sum((1, 2)), 0) + 0.1 * rng.standard_normal(30)
    est = ConvexCNNRegressor(patch_size=3, stride=2, n_patterns=8, formulation="relu", beta_ratio=0.1, tol=1e-7).fit(
        X, y
    )
    assert est.max_violation_ <= 1e-8
    Xs = (X[..., None] - X.mean()) / X.std()
    P = extract_patches(Xs, 3, stride=2)
    assert est.network_.objective(P, y - y.mean(), est.beta_) == pytest.approx(est.objective_, rel=1e-6)
    np.testing.assert_allclose(est.predict(X), est.network_.predict(P) + y.mean())
    assert est.score(X, y) > 0


def test_flat_input_pipeline_clone_pickle():
    X, y = _digits()
    flat = X.reshape(len(X), -1)
    est = ConvexCNNClassifier(patch_size=3, stride=2, n_patterns=20, image_shape=(8, 8), tol=1e-5)
    scores = cross_val_score(est, flat, y, cv=2)
    assert scores.min() > 0.9
    fitted = clone(est).fit(flat, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(flat), fitted.predict(flat))
    np.testing.assert_array_equal(fitted.predict(X), fitted.predict(flat))  # images or flat rows


def test_1d_signals():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 12))
    y = (np.abs(np.diff(X, axis=1)).max(1) > 2.5).astype(int)
    est = ConvexCNNClassifier(patch_size=2, n_patterns=20, tol=1e-5).fit(X, y)
    assert est.image_shape_ == (1, 12, 1) and est.network_.patch_size == 2


@pytest.mark.parametrize(
    "params,X,y,match",
    [
        (dict(patch_size=9), np.zeros((4, 8, 8)), [0, 1, 0, 1], "size"),
        (dict(stride=0), np.zeros((4, 8, 8)), [0, 1, 0, 1], "stride"),
        (dict(beta=1.0, beta_ratio=0.1), np.zeros((4, 8, 8)), [0, 1, 0, 1], "either beta"),
        (dict(), np.zeros((4, 8, 8, 1, 1)), [0, 1, 0, 1], "rank 5"),
        (dict(), np.full((4, 8, 8), np.nan), [0, 1, 0, 1], "NaN"),
        (dict(), np.zeros((4, 8, 8)), [0, 0, 0, 0], "only one class"),
        (dict(image_shape=(3, 3)), np.zeros((4, 10)), [0, 1, 0, 1], "image_shape"),
        (dict(n_patterns=0), np.zeros((4, 8, 8)), [0, 1, 0, 1], "n_patterns \\+ n_clusters"),
    ],
)
def test_bad_input(params, X, y, match):
    with pytest.raises(ValueError, match=match):
        ConvexCNNClassifier(**params).fit(X, y)


def test_predict_checks_image_shape():
    X, y = _digits()
    est = ConvexCNNClassifier(stride=2, n_patterns=10, tol=1e-4).fit(X, y)
    with pytest.raises(ValueError, match="fit on"):
        est.predict(np.zeros((2, 7, 7)))

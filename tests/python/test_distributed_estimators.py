"""convexnn.distributed: ConvexReLURegressor / ConvexReLUClassifier fit on dask arrays (gated formulation).

Without standardization the fit on a row-chunked dask array must be the single-machine fit: same patterns, beta,
objective (1e-10), recentered gates and predictions. With it, Dask's column means and deviations round
differently from NumPy's (~1e-16), which can flip the mask bit of the training point a sampled gate passes
through; that fit is checked against the single-machine solve on the same standardized data instead.
"""

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="convexnn.distributed needs the dask extra (pip install '.[dask]')")
distributed = pytest.importorskip("distributed")

import convexnn as cnn  # noqa: E402
from convexnn.distributed._operator import _Base  # noqa: E402
from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor  # noqa: E402

pytestmark = pytest.mark.skipif(
    _Base is object,
    reason="this convexnn._core predates the Python operator "
    "interface (BlockOperatorF64 cannot be subclassed): rebuild the extension",
)


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * np.array([1.0, 30.0, 0.1]) + np.array([2.0, -50.0, 1.0])
    Xs = (X - X.mean(0)) / X.std(0)
    y = 3.0 + 2 * np.maximum(Xs[:, 0] + Xs[:, 1], 0) - np.maximum(-Xs[:, 2], 0) + 0.1 * rng.standard_normal(n)
    return X, y, da.from_array(X, chunks=((9, 1, 0, 40), 3))


def _same_fit(a, b, X):
    assert a.n_features_in_ == b.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(a.x_mean_, b.x_mean_, rtol=1e-12)
    np.testing.assert_allclose(a.x_scale_, b.x_scale_, rtol=1e-12)
    np.testing.assert_allclose(a.beta_max_, b.beta_max_, rtol=1e-10)
    np.testing.assert_allclose(a.objective_, b.objective_, rtol=1e-10)
    assert a.status_ == "converged" and a.gap_ <= a.tol and a.n_patterns_ == b.n_patterns_
    np.testing.assert_allclose(a.network_.gates, b.network_.gates, rtol=1e-8, atol=1e-10)


def test_regressor_fit_on_dask_array(client):
    X, y, Xd = _data()
    kw = dict(formulation="gated", n_patterns=20, beta_ratio=0.2, tol=1e-8, random_state=3, standardize=False)
    ref = ConvexReLURegressor(**kw).fit(X, y)
    est = ConvexReLURegressor(**kw).fit(Xd, da.from_array(y, chunks=25))
    _same_fit(est, ref, X)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-6, atol=1e-6)


def test_standardized_regressor_fit_on_dask_array(client):
    X, y, Xd = _data()
    est = ConvexReLURegressor(formulation="gated", n_patterns=20, beta_ratio=0.2, tol=1e-8, random_state=3)
    est.fit(Xd, da.from_array(y, chunks=25))
    np.testing.assert_allclose(est.x_mean_, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(est.x_scale_, X.std(0), rtol=1e-12)
    np.testing.assert_allclose(est.y_mean_, y.mean(), rtol=1e-12)
    Xs = (X - est.x_mean_) / est.x_scale_  # the same elementwise operations as on the workers
    pats = cnn.sample_patterns(Xs, 20, seed=3, bias=True)
    np.testing.assert_allclose(est.beta_max_, cnn.beta_max(Xs, y - est.y_mean_, pats, bias=True), rtol=1e-10)
    ref = cnn.solve(Xs, y - est.y_mean_, est.beta_, patterns=pats, bias=True, tol=1e-8)
    np.testing.assert_allclose(est.objective_, ref.objective, rtol=1e-10)
    assert est.status_ == "converged" and est.gap_ <= 1e-8
    np.testing.assert_allclose(est.predict(X), ref.predict(Xs) + est.y_mean_, rtol=1e-6, atol=1e-6)
    assert est.score(X, y) > 0.8  # beta = 0.2 beta_max shrinks the fit; R^2 measured 0.89


def test_classifier_fit_numpy_with_client(client):
    X, y, _ = _data(seed=1)
    labels = np.where(y > np.median(y), "high", "low")
    kw = dict(formulation="gated", n_patterns=20, beta_ratio=0.3, tol=1e-8, random_state=0, standardize=False)
    ref = ConvexReLUClassifier(**kw).fit(X, labels)
    est = ConvexReLUClassifier(**kw).fit(X, labels, client=client)
    _same_fit(est, ref, X)
    assert est.loss_ == "logistic" and list(est.classes_) == ["high", "low"]
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_estimator_refusals(client):
    X, y, Xd = _data()
    with pytest.raises(ValueError, match="formulation='gated' only"):
        ConvexReLURegressor(n_patterns=5).fit(Xd, y)  # default formulation: relu
    with pytest.raises(ValueError, match="sample_weight"):
        ConvexReLURegressor(formulation="gated", n_patterns=5).fit(Xd, y, sample_weight=np.ones(50))
    with pytest.raises(ValueError, match="y has 49 rows"):
        ConvexReLURegressor(formulation="gated", n_patterns=5).fit(Xd, y[:49])

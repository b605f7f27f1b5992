"""convexnn.theory.ConvexRF (JMLR 2021 Algorithm 2) on scikit-learn's digits."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier

from convexnn import theory as T


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    idx = np.random.default_rng(0).permutation(len(d.target))
    return d.images, d.target, idx[:500], idx[500:900]


def test_convex_rf_beats_linear_on_digits(digits):
    X, y, tr, te = digits
    model = T.ConvexRF(n_filters=80, patch_size=4, beta=1.0, seed=0).fit(X[tr], y[tr])
    acc = (model.predict(X[te]) == y[te]).mean()
    lin = RidgeClassifier().fit(X[tr].reshape(len(tr), -1), y[tr]).score(X[te].reshape(len(te), -1), y[te])
    assert acc > 0.95 and acc > lin
    # the filters are Lemma 7 extreme points of the normalized sampled patches: unit norm, positive distance
    np.testing.assert_allclose(np.linalg.norm(model.filters_, axis=0), 1.0, atol=1e-10)
    assert (model.hull_distances_ > 0).all()
    assert model.decision_function(X[te[:3]]).shape == (3, 10)


def test_filters_are_hull_distance_neurons():
    rng = np.random.default_rng(1)
    imgs = rng.standard_normal((6, 5, 5))
    model = T.ConvexRF(n_filters=12, patch_size=3, pool=1, beta=0.5, seed=2).fit(imgs, np.arange(6) % 2)
    allp = T.normalize_patches(
        __import__("convexnn.cnn", fromlist=["extract_patches"]).extract_patches(imgs, 3).reshape(-1, 9), 10.0
    )
    pick = np.random.default_rng(2).choice(allp.shape[0], size=12, replace=False)
    U, b, d = T.hull_distance_neurons(allp[pick])
    np.testing.assert_allclose(model.filters_, U[:, d > 0], atol=1e-12)


def test_zca_and_validation(digits):
    X, y, tr, _ = digits
    m = T.ConvexRF(n_filters=30, zca=True).fit(X[tr[:100]], y[tr[:100]])
    assert m.filters_.shape[0] == 16
    with pytest.raises(ValueError, match="beta must be > 0"):
        T.ConvexRF(beta=0.0).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="y must have shape"):
        T.ConvexRF().fit(X[:10], y[:9])
    with pytest.raises(ValueError, match="at least 2 classes"):
        T.ConvexRF(n_filters=5).fit(X[:10], np.zeros(10))

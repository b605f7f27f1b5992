"""class_weight on every classifier: scikit-learn's semantics (compute_sample_weight, multiplied with sample_weight).

Each case fits once with ``class_weight`` and once with the equivalent explicit ``sample_weight``: the models must
be the same, and the weights must change the model (so the test cannot pass with the parameter ignored).
"""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_sample_weight

from convexnn import bn
from convexnn.cnn import ConvexCNNClassifier
from convexnn.estimators import ConvexReLUClassifier


def _unbalanced(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(n) > 0.6, "rare", "common")
    return X, y


def _same_model(a, b, X):
    np.testing.assert_array_equal(a.network_.W1, b.network_.W1)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))
    assert a.objective_ == b.objective_


def test_balanced_weights_equal_the_explicit_sample_weight_fit():
    X, y = _unbalanced()
    kw = dict(formulation="gated", n_patterns=30, loss="squared", tol=1e-8)
    weighted = ConvexReLUClassifier(class_weight="balanced", **kw).fit(X, y)
    explicit = ConvexReLUClassifier(**kw).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    _same_model(weighted, explicit, X)
    plain = ConvexReLUClassifier(**kw).fit(X, y)
    assert not np.array_equal(plain.decision_function(X), weighted.decision_function(X))


def test_dict_weights_multiply_sample_weight_under_every_loss():
    X, y = _unbalanced(seed=1)
    sw = np.arange(len(y)) % 2 + 1.0  # integers: repeated rows, exact for the logistic loss too
    kw = dict(formulation="gated", n_patterns=30, tol=1e-8)
    weighted = ConvexReLUClassifier(class_weight={"rare": 3, "common": 1}, **kw).fit(X, y, sample_weight=sw)
    explicit = ConvexReLUClassifier(**kw).fit(X, y, sample_weight=sw * np.where(y == "rare", 3.0, 1.0))
    _same_model(weighted, explicit, X)


def test_class_weight_errors_name_the_argument():
    X, y = _unbalanced(seed=2)
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced' or a dict"):
        ConvexReLUClassifier(formulation="gated", n_patterns=10, class_weight="even").fit(X, y)
    with pytest.raises(ValueError, match=r"class_weight\['rare'\] must be a finite number >= 0"):
        ConvexReLUClassifier(formulation="gated", n_patterns=10, class_weight={"rare": -1.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight names labels not in y"):
        ConvexReLUClassifier(formulation="gated", n_patterns=10, class_weight={"other": 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        ConvexReLUClassifier(formulation="gated", n_patterns=10).fit(X, y, sample_weight=np.full(len(y), -0.5))


def test_bn_classifier_class_weight_is_its_integer_sample_weight():
    X, y = _unbalanced(n=30, seed=3)
    kw = dict(beta=0.05, n_patterns=10, tol=1e-8)
    weighted = bn.ConvexBNReLUClassifier(class_weight={"rare": 2, "common": 1}, **kw).fit(X, y)
    explicit = bn.ConvexBNReLUClassifier(**kw).fit(X, y, sample_weight=np.where(y == "rare", 2, 1))
    np.testing.assert_array_equal(weighted.decision_function(X), explicit.decision_function(X))
    assert weighted.objective_ == explicit.objective_
    assert weighted.objective_ != bn.ConvexBNReLUClassifier(**kw).fit(X, y).objective_
    with pytest.raises(ValueError, match="must hold integers"):
        bn.ConvexBNReLUClassifier(class_weight="balanced", **kw).fit(X, y)


def test_cnn_classifier_class_weight_is_its_integer_sample_weight():
    rng = np.random.default_rng(4)
    images = rng.standard_normal((24, 5, 5))
    y = np.where(images[:, 2, 2] > 0.5, 1, 0)
    kw = dict(patch_size=3, n_patterns=12, tol=1e-8)
    weighted = ConvexCNNClassifier(class_weight={1: 3, 0: 1}, **kw).fit(images, y)
    explicit = ConvexCNNClassifier(**kw).fit(images, y, sample_weight=np.where(y == 1, 3, 1))
    np.testing.assert_array_equal(weighted.decision_function(images), explicit.decision_function(images))
    assert weighted.objective_ != ConvexCNNClassifier(**kw).fit(images, y).objective_
    with pytest.raises(ValueError, match="must hold integers"):
        ConvexCNNClassifier(class_weight={1: 0.5}, **kw).fit(images, y)

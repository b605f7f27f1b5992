"""convexnn.theory.collapse: ICML 2021 Cor. 4.3 (simplex ETF) and the Neural-Collapse diagnostic."""

import numpy as np
import pytest

from convexnn import theory as T


def test_etf_vector_of_the_paper():
    etf = T.neural_collapse_etf(6, 3)
    assert etf.scale == pytest.approx(0.577350, abs=1e-6)
    np.testing.assert_allclose(etf.activations[0], [0.471405, -0.235702, -0.235702], atol=1e-6)
    np.testing.assert_allclose(etf.activations[1], etf.activations[0], atol=1e-15)
    np.testing.assert_allclose(etf.activations[2], np.roll(etf.activations[0], 1), atol=1e-12)
    np.testing.assert_allclose(etf.class_means, etf.scale * etf.etf, atol=1e-12)
    G = etf.class_means.T @ etf.class_means
    cos = G / np.sqrt(np.outer(np.diag(G), np.diag(G)))
    np.testing.assert_allclose(cos[~np.eye(3, dtype=bool)], -0.5, atol=1e-12)
    assert etf.gram_cosine == -0.5


@pytest.mark.parametrize("n, K", [(8, 4), (10, 2), (15, 5)])
def test_etf_matrix_identity(n, K):
    etf = T.neural_collapse_etf(n, K)
    expected = np.sqrt(K / n) * (np.kron(np.eye(K), np.ones((n // K, 1))) - np.ones((n, K)) / K)
    np.testing.assert_allclose(etf.activations, expected, atol=1e-12)
    rep = T.neural_collapse(etf.activations, np.repeat(np.arange(K), n // K))
    assert rep.within_class_variability == pytest.approx(0.0, abs=1e-20)
    assert rep.cosine_deviation < 1e-12 and rep.etf_distance < 1e-12 and rep.norm_cv < 1e-12
    assert rep.scale == pytest.approx(np.sqrt((K - 1) / n), rel=1e-12)


def test_diagnostic_on_non_collapsed_features():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((60, 5))
    labels = np.repeat([0, 1, 2], 20)
    rep = T.neural_collapse(H, labels)
    assert rep.within_class_variability > 1.0
    assert rep.cosine_deviation > 0.05
    # one-hot labels give the same report
    rep2 = T.neural_collapse(H, np.eye(3)[labels])
    assert rep2.within_class_variability == pytest.approx(rep.within_class_variability)


def test_bn_features_collapse():
    # the optimal BN layers (ICML 2021 Thm 4.4) produce collapsed features for any full-row-rank A
    rng = np.random.default_rng(1)
    A = rng.standard_normal((9, 20))
    Y = np.eye(3)[np.repeat([0, 1, 2], 3)]
    for variant, factor in (("literal", 1.0), ("balanced", np.sqrt(np.sqrt(3) - 0.1))):
        res = T.bn_last_layers(A, Y, 0.1, variant=variant)
        H = res.network.hidden_features(A)
        rep = T.neural_collapse(H, Y)
        assert rep.within_class_variability < 1e-18 and rep.cosine_deviation < 1e-10
        # alpha = sqrt((K-1)/n); the balanced rescaling multiplies it by sqrt(s_j) (equal s_j: still an ETF)
        assert rep.scale == pytest.approx(factor * np.sqrt(2 / 9), rel=1e-10)


def test_validation():
    with pytest.raises(ValueError, match="multiple of K"):
        T.neural_collapse_etf(7, 3)
    with pytest.raises(ValueError, match="K must be >= 2"):
        T.neural_collapse_etf(6, 1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        T.neural_collapse(np.ones((4, 2)), np.zeros(4))

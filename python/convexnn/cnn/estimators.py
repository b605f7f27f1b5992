"""scikit-learn estimators for two-layer ReLU CNNs: :class:`ConvexCNNClassifier` and :class:`ConvexCNNRegressor`.

Both fit the sum-pooled CNN f(x) = sum_j sum_k (X_k u_j)_+ alpha_j (Pilanci & Ergen, "Neural Networks are Convex
Regularizers", ICML 2020, Appendix A.1) by solving its convex program (:func:`convexnn.cnn.solve_relu_cnn`) and
keep the certificate. Images go in as (n, H, W, C) or (n, H, W) arrays; a 2-D X (n, d) is reshaped to
``image_shape`` (or read as 1-D signals, images of height 1, when ``image_shape`` is None), so the estimators also
work in pipelines that pass flat feature matrices.

Pre-processing (undone in predict): with ``standardize=True`` every channel is centered and scaled by its training
mean and standard deviation over all pixels (``x_mean_``, ``x_scale_``, shape (C,)); the regressor also centers y
(``y_mean_``). Patterns: ``n_patterns`` Gaussian gates plus ``n_clusters`` gates from k-means centres of the
training patches (the pattern sources of the paper's CNN experiments).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._estimator_base import ConvexEstimatorBase, LabelsMixin, check_random_state_seed, repeated_rows
from .._validation import FORMULATIONS, GROUPS, check_bool, check_choice, check_scalar, torch_to_numpy
from ..result import ConvergenceWarning
from .patches import check_images, extract_patches
from .patterns import cluster_gates, stacked_patches

__all__ = ["ConvexCNNClassifier", "ConvexCNNRegressor"]


class _ConvexCNNBase(ConvexEstimatorBase):
    """Shared machinery: image checks, pre-processing, patterns, beta, solve, certificate attributes."""

    _CERTIFICATE_EXTRA = ("beta", "beta_max", "n_patterns")

    def _check_params(self):
        check_choice(self.formulation, "formulation", FORMULATIONS)
        check_choice(self.groups, "groups", GROUPS)
        self._check_beta_params()
        check_scalar(self.n_patterns, "n_patterns", low=0, integer=True)
        check_scalar(self.n_clusters, "n_clusters", low=0, integer=True)
        if self.n_patterns + self.n_clusters == 0:
            raise ValueError("n_patterns + n_clusters must be >= 1 (the number of candidate filters)")
        for name in ("bias", "standardize", "verbose"):
            check_bool(getattr(self, name), name)
        if self.image_shape is not None:
            shape = tuple(self.image_shape)
            if len(shape) not in (2, 3) or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
                raise ValueError(f"image_shape must be (H, W) or (H, W, C) of positive ints; got {self.image_shape!r}")

    def _images(self, X, reset):
        """(n, H, W, C) float images from X (images, or flat rows reshaped to image_shape)."""
        X = torch_to_numpy(X)
        arr = np.asarray(X) if not hasattr(X, "to_numpy") else X.to_numpy()
        if arr.ndim == 2:
            if self.image_shape is not None:
                shape = tuple(int(s) for s in self.image_shape)
                if int(np.prod(shape)) != arr.shape[1]:
                    raise ValueError(
                        f"X has {arr.shape[1]} features but image_shape={shape} needs {int(np.prod(shape))}"
                    )
                arr = arr.reshape((arr.shape[0],) + shape)
            else:
                arr = arr.reshape(arr.shape[0], 1, arr.shape[1])  # 1-D signals
        images = check_images(arr, "X")
        if reset:
            self.n_features_in_ = int(np.prod(images.shape[1:]))
            self.image_shape_ = images.shape[1:]
        elif images.shape[1:] != self.image_shape_:
            raise ValueError(f"X has images of shape {images.shape[1:]} but the model was fit on {self.image_shape_}")
        return images

    def _patch_size(self):
        size = self.patch_size
        if self.image_shape_[0] == 1 and isinstance(size, numbers.Integral):
            return (1, int(size))  # 1-D signals
        return size

    def _patches(self, images):
        if self.standardize:
            images = (images - self.x_mean_) / self.x_scale_
        return extract_patches(images, self._patch_size(), self.stride, self.padding)

    def _fit_patches(self, X):
        images = self._images(X, reset=True)
        if images.shape[0] < 2:
            raise ValueError(f"X has {images.shape[0]} sample(s); at least 2 are required")
        if self.standardize:
            self.x_mean_ = images.mean(axis=(0, 1, 2))
            scale = images.std(axis=(0, 1, 2))
            self.x_scale_ = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(self.x_mean_)), scale, 1.0)
        else:
            C = images.shape[3]
            self.x_mean_, self.x_scale_ = np.zeros(C), np.ones(C)
        return self._patches(images)

    def _patterns(self, P, seed):
        from ..patterns import Patterns, sample_patterns

        Xs = stacked_patches(P)
        gates = []
        if self.n_patterns:
            gates.append(sample_patterns(Xs, int(self.n_patterns), seed=seed, bias=bool(self.bias)).gates)
        if self.n_clusters:
            gates.append(cluster_gates(P, int(self.n_clusters), seed=seed, bias=bool(self.bias)))
        return Patterns.from_gates(Xs, np.hstack(gates), bias=bool(self.bias))

    def _solve(self, P, Y, loss):
        from .relu import relu_cnn_beta_max, solve_relu_cnn

        seed = check_random_state_seed(self.random_state)
        pats = self._patterns(P, seed)
        self._resolve_beta(relu_cnn_beta_max(P, Y, pats, loss=loss, groups=self.groups, bias=bool(self.bias)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # re-raised below with our name
            res = solve_relu_cnn(
                P,
                Y,
                self.beta_,
                patterns=pats,
                pooling="sum",
                formulation=self.formulation,
                loss=loss,
                groups=self.groups,
                bias=bool(self.bias),
                tol=self.tol,
                max_iter=self.max_iter,
                time_limit=self.time_limit,
                verbose=bool(self.verbose),
            )
        self._store_certificate(res, n_patterns=pats.n_patterns)
        self.network_ = res.network()
        self._warn_unconverged(res, f"the {self.formulation} solve")

    def _raw_output(self, X):
        check_is_fitted(self, "network_")
        return self.network_.predict(self._patches(self._images(X, reset=False)))

    def _certificate_network(self):
        return {"n_filters": int(self.network_.n_filters)}


_PARAMS = """
    patch_size : int or (int, int), default 3
        Filter height and width (width only, for 1-D signals).
    stride, padding : int or (int, int)
        Convolution stride (>= 1) and zero padding (>= 0).
    beta : float >= 0 or None
        Absolute weight decay. Give at most one of ``beta`` and ``beta_ratio``.
    beta_ratio : float >= 0 or None
        beta as a fraction of ``beta_max_`` (default 0.01 when ``beta`` is None too).
    n_patterns : int >= 0
        Gaussian gates drawn on the stacked training patches (candidate filters' sign patterns).
    n_clusters : int >= 0
        Additional gates from k-means cluster centres of the training patches.
    formulation : {"gated", "relu"}
        "gated": the gated relaxation (fast; a CNN with fixed gates). "relu": the exact cone-constrained program (a
        ReLU CNN; slower).
    groups : {"output", "neuron"}
    bias : bool
        One bias per filter.
    standardize : bool
        Center and scale every channel by its training mean / std (undone in predict).
    image_shape : (H, W) or (H, W, C) or None
        Shape to reshape 2-D X (n, d) to; None reads 2-D X as 1-D signals.
    random_state : int, RandomState, Generator or None
    tol : float
    max_iter, time_limit : int or None, float or None
        Solver limits; hitting one gives a ConvergenceWarning.
    verbose : bool

    Attributes
    ----------
    objective_, dual_objective_, gap_ : float
        Convex objective, a certified lower bound on the optimum over the patterns, and the relative gap.
    status_, n_iter_, max_violation_, beta_, beta_max_, n_patterns_
    network_ : ReLUCNN or GatedReLUCNN
        The trained CNN, on pre-processed patches.
    result_ : ReLUCNNResult
    x_mean_, x_scale_ : ndarray (C,)
    image_shape_ : tuple (H, W, C)
    n_features_in_ : int
"""


class ConvexCNNRegressor(RegressorMixin, _ConvexCNNBase):
    __doc__ = (
        """Two-layer sum-pooled ReLU CNN regression, trained to a certified optimum of its convex program.

    Minimizes ``1/2 ||f(images) - (y - y_mean_)||^2 + beta * (group norms)`` (sums over samples), i.e. the squared
    loss with weight decay ``beta/2 (||u_j||^2 + ||alpha_j||^2)`` of the CNN.

    Parameters
    ----------"""
        + _PARAMS
        + """    y_mean_ : ndarray (c,) or float
    """
    )

    def __init__(
        self,
        patch_size=3,
        stride=1,
        padding=0,
        beta=None,
        beta_ratio=None,
        n_patterns=100,
        n_clusters=0,
        formulation="gated",
        groups="output",
        bias=True,
        standardize=True,
        image_shape=None,
        random_state=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        verbose=False,
    ):
        self.patch_size = patch_size
        self.stride = stride
        self.padding = padding
        self.beta = beta
        self.beta_ratio = beta_ratio
        self.n_patterns = n_patterns
        self.n_clusters = n_clusters
        self.formulation = formulation
        self.groups = groups
        self.bias = bias
        self.standardize = standardize
        self.image_shape = image_shape
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.verbose = verbose

    def fit(self, X, y):
        """Fit the CNN: solve its convex program on the training patches.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, n_features)
            Images, or flat rows reshaped to ``image_shape`` (1-D signals when it is None).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        self._check_params()
        P = self._fit_patches(X)
        Y = np.asarray(y, dtype=np.float64)
        if Y.ndim not in (1, 2) or Y.shape[0] != P.shape[0]:
            raise ValueError(f"y must have shape ({P.shape[0]},) or ({P.shape[0]}, c); got {np.shape(y)}")
        if not np.isfinite(Y).all():
            raise ValueError("y contains NaN or Inf")
        self.y_mean_ = Y.mean(axis=0) if self.standardize else np.zeros(Y.shape[1:])
        self._solve(P, Y - self.y_mean_, "squared")
        return self

    def predict(self, X):
        """Predictions in the units of y.

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._raw_output(X) + self.y_mean_


class ConvexCNNClassifier(ClassifierMixin, LabelsMixin, _ConvexCNNBase):
    __doc__ = (
        """Two-layer sum-pooled ReLU CNN classifier, trained to a certified optimum of its convex program.

    Two classes use a binary loss on targets {-1, +1} (``classes_[1]`` is +1); more classes a one-hot target with
    ``loss="cross_entropy"`` (one output per class).

    Parameters
    ----------
    loss : {"auto", "logistic", "hinge", "squared_hinge", "cross_entropy", "squared"}
        "auto": "logistic" for two classes, "cross_entropy" for more.
    class_weight : None, "balanced" or dict label -> weight, default None
        Weights of the classes (scikit-learn's ``compute_sample_weight``), multiplied into ``sample_weight``;
        the products must be integers (repeated images)."""
        + _PARAMS
        + """    classes_ : ndarray
    loss_ : str
    """
    )

    def __init__(
        self,
        patch_size=3,
        stride=1,
        padding=0,
        loss="auto",
        beta=None,
        beta_ratio=None,
        n_patterns=100,
        n_clusters=0,
        formulation="gated",
        groups="output",
        bias=True,
        standardize=True,
        image_shape=None,
        random_state=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        verbose=False,
        class_weight=None,
    ):
        self.patch_size = patch_size
        self.stride = stride
        self.padding = padding
        self.loss = loss
        self.beta = beta
        self.beta_ratio = beta_ratio
        self.n_patterns = n_patterns
        self.n_clusters = n_clusters
        self.formulation = formulation
        self.groups = groups
        self.bias = bias
        self.standardize = standardize
        self.image_shape = image_shape
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.verbose = verbose
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None):
        """Fit on images X (n, H, W[, C]) (or flat (n, d)) and labels y (n,).

        Integer ``sample_weight`` (times the weights of ``class_weight``) repeats images. Returns self.
        """
        self._check_params()
        check_choice(self.loss, "loss", self._LOSSES)
        y = column_or_1d(np.asarray(y), warn=True)
        y_index = self._encode_labels(y)
        w = self._class_sample_weight(y, sample_weight)
        P = self._fit_patches(X)
        if P.shape[0] != y.shape[0]:
            raise ValueError(f"y has {y.shape[0]} labels but X has {P.shape[0]} samples")
        Y = self._targets(y_index)
        P, Y = repeated_rows((P, Y), w, "images")
        self._solve(P, Y, self.loss_)
        return self

    def predict_proba(self, X):
        """Class probabilities (the logistic and cross-entropy losses; AttributeError otherwise).

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self, "loss_")
        if self.loss_ not in ("logistic", "cross_entropy"):
            raise AttributeError(
                f"predict_proba needs loss 'logistic' or 'cross_entropy'; this model used {self.loss_!r}"
            )
        return self._proba_of(self._raw_output(X))

    def score(self, X, y, sample_weight=None):
        """Accuracy on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, H, W[, C]) or (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        return accuracy_score(column_or_1d(np.asarray(y)), self.predict(X), sample_weight=sample_weight)

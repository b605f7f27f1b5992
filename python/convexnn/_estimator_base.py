"""What the scikit-learn estimator families share (the dense, BN, CNN and distributed fits).

* :class:`ConvexEstimatorBase`: beta resolution (absolute ``beta`` or ``beta_ratio`` of ``beta_max_``), feature
  standardization, the certificate attributes of a solve, its ``certificate_`` dict and the ConvergenceWarning
  of an unconverged solve;
* :class:`LabelsMixin`: label encoding (``classes_``, ``loss_``, {-1, +1} or one-hot targets), scores to labels
  and probabilities, and ``class_weight`` combined with ``sample_weight`` (scikit-learn semantics);
* helpers: random-state seeds, weighted feature scales, sample weights as repeated rows.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.special import expit, log_softmax
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from ._validation import BINARY_LOSSES, check_sample_weight, check_scalar
from .result import ConvergenceWarning

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def sk_validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


DEFAULT_BETA_RATIO = 0.01
FLOAT_DTYPES = (np.float64, np.float32)
PROBA_LOSSES = ("auto", "logistic", "cross_entropy")
# Integer weights are applied as repeated rows up to this many rows (or 10 n): beyond, the copy costs more than
# the weights are worth and the weights go the non-integer way.
_REPEAT_LIMIT = 100_000


def check_random_state_seed(random_state):
    """An int seed for the pattern sampler from an int >= 0, a RandomState / Generator or None (a fresh seed)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0; got {random_state}")
        return int(random_state)
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise TypeError(f"random_state must be None, an int >= 0, a RandomState or a Generator; got {random_state!r}")


def scale_of(X, sample_weight=None):
    """Training mean and standard deviation per column (weighted by ``sample_weight``); constant columns get scale 1.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    sample_weight : ndarray of shape (n,), optional

    Returns
    -------
    mean, scale : ndarrays of shape (d,)
    """
    mean = np.average(X.astype(np.float64, copy=False), axis=0, weights=sample_weight)
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=sample_weight))
    tiny = 10 * np.finfo(X.dtype).eps * np.maximum(1.0, np.abs(mean))
    scale[scale <= tiny] = 1.0
    return mean, scale


def repeat_integer_weights(arrays, sample_weight, n_samples):
    """``arrays`` with row k repeated w_k times when the weights are integers (and few enough), else None.

    Repetition is exact for every loss (the objectives are sums over samples).
    """
    w = sample_weight
    if np.all(w == np.round(w)) and w.sum() <= max(10 * n_samples, _REPEAT_LIMIT):
        counts = w.astype(np.int64)
        return tuple(np.repeat(a, counts, axis=0) for a in arrays)
    return None


def repeated_rows(arrays, sample_weight, what="rows"):
    """``arrays`` with integer ``sample_weight`` applied as repeated rows; ValueError for non-integer weights.

    For the programs that take no weights (BN, CNN): repetition is their only exact weighting.
    """
    w = check_sample_weight(sample_weight, len(arrays[0]))
    if w is None:
        return tuple(arrays)
    repeated = repeat_integer_weights(arrays, w, len(arrays[0]))
    if repeated is None:
        raise ValueError(
            f"sample_weight (times the weights of class_weight) must hold integers here: they are "
            f"applied as repeated {what} (this program takes no weights)"
        )
    return repeated


class ConvexEstimatorBase(BaseEstimator):
    """Beta, standardization and certificate plumbing of the convexnn estimators."""

    # keys of certificate_ beyond the solve's own (attribute names without the trailing underscore)
    _CERTIFICATE_EXTRA: tuple = ()

    def _check_beta_params(self):
        """At most one of ``beta`` (absolute) and ``beta_ratio`` (fraction of beta_max), each >= 0."""
        if self.beta is not None and self.beta_ratio is not None:
            raise ValueError(
                f"give either beta (absolute) or beta_ratio (fraction of beta_max), not both; "
                f"got beta={self.beta!r} and beta_ratio={self.beta_ratio!r}"
            )
        if self.beta is not None:
            check_scalar(self.beta, "beta", low=0.0)
        if self.beta_ratio is not None:
            check_scalar(self.beta_ratio, "beta_ratio", low=0.0)

    def _resolve_beta(self, beta_max):
        """Set ``beta_max_`` and ``beta_`` (``beta``, else ``beta_ratio`` (default 0.01) times beta_max)."""
        self.beta_max_ = float(beta_max)
        if self.beta is not None:
            self.beta_ = float(self.beta)
        else:
            ratio = DEFAULT_BETA_RATIO if self.beta_ratio is None else float(self.beta_ratio)
            self.beta_ = ratio * self.beta_max_
        return self.beta_

    def _fit_scaling(self, X, sample_weight=None):
        """Set ``x_mean_`` / ``x_scale_``: the (weighted) training statistics, or zeros / ones without standardize."""
        if self.standardize:
            self.x_mean_, self.x_scale_ = scale_of(X, sample_weight)
        else:
            self.x_mean_, self.x_scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])

    def _store_certificate(self, res, n_patterns=None):
        """The certificate attributes of a solve result (``objective_``, ``gap_``, ``status_``, ...)."""
        self.result_ = res
        self.objective_ = float(res.objective)
        self.dual_objective_ = float(res.dual_objective)
        self.gap_ = float(res.gap)
        self.status_ = res.status
        self.n_iter_ = int(res.n_iter)
        self.max_violation_ = float(res.max_violation)
        self.n_patterns_ = int(res.patterns.n_patterns if n_patterns is None else n_patterns)
        if hasattr(res, "certified_global"):
            self.certified_global_ = bool(res.certified_global)

    def _warn_unconverged(self, res, solver, advice="Raise max_iter or time_limit, or loosen tol.", stacklevel=4):
        """A ConvergenceWarning named after the estimator when ``res`` did not converge."""
        if res.status == "converged":
            return
        warnings.warn(
            f"{type(self).__name__}: {solver} stopped with status {res.status!r} after {res.n_iter} "
            f"iterations (relative gap {res.gap:.3g}, tol {self.tol:g}); the certificate bounds the "
            f"suboptimality. {advice}",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )

    @property
    def certificate_(self) -> dict:
        """The certificate of the solve as a dict (objective, dual bound, gap, status, ...)."""
        check_is_fitted(self, "network_")
        keys = ("objective", "dual_objective", "gap", "status", "n_iter", "max_violation") + self._CERTIFICATE_EXTRA
        return {key: getattr(self, key + "_") for key in keys} | self._certificate_network()

    def _certificate_network(self) -> dict:
        return {"n_neurons": int(self.network_.n_neurons)}


def _class_weight_valid(class_weight):
    if class_weight is None or (isinstance(class_weight, str) and class_weight == "balanced"):
        return
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight must be None, 'balanced' or a dict label -> weight; got {class_weight!r}")
    for label, weight in class_weight.items():
        if (
            not isinstance(weight, numbers.Real)
            or isinstance(weight, bool)
            or not weight >= 0
            or not np.isfinite(weight)
        ):
            raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0; got {weight!r}")


class RegressorOutputMixin:
    """The regressors' predictions (the fitted network's output plus the training mean ``y_mean_``, in the
    fit's float dtype) and their multi-output tags; the class defines ``_raw_output``."""

    def predict(self, X):
        """Predictions in the units of y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (pre-processing is applied here); a CPU torch tensor is read as a numpy array.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs) (when fit on 2-D y)
        """
        Z = self._raw_output(X)
        return (Z + self.y_mean_).astype(Z.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}


class LabelsMixin:
    """Label handling of the classifiers: encoding, targets, class weights, scores to labels and probabilities."""

    _LOSSES = ("auto", "logistic", "hinge", "squared_hinge", "cross_entropy", "squared")
    _BINARY_HINT = "use loss='cross_entropy' or 'auto'"

    def _encode_labels(self, y):
        """Set ``classes_`` and ``loss_`` ("auto" resolved); returns the class index of every sample."""
        if type_of_target(y) == "continuous":
            raise ValueError(
                "Unknown label type: continuous (y holds non-integer floats). Classifier labels are "
                "strings, integers, booleans or integral floats; for float labels such as 2.5 pass "
                "y.astype(str), or use a regressor for a numeric target"
            )
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"y must hold one label per sample (binary or multiclass); got target type {kind!r}")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
        loss = self.loss
        if loss == "auto":
            loss = "logistic" if n_classes == 2 else "cross_entropy"
        if loss in BINARY_LOSSES and n_classes > 2:
            raise ValueError(f"loss={loss!r} is binary but y has {n_classes} classes; {self._BINARY_HINT}")
        self.loss_ = loss
        return y_index

    def _targets(self, y_index):
        """One-hot targets for cross entropy (and squared with > 2 classes), else {-1, +1} (``classes_[1]`` +1)."""
        n_classes = len(self.classes_)
        if self.loss_ == "cross_entropy" or (self.loss_ == "squared" and n_classes > 2):
            return np.eye(n_classes)[y_index]
        return np.where(y_index == 1, 1.0, -1.0)

    def _class_sample_weight(self, y, sample_weight):
        """``sample_weight`` times the weights of ``class_weight`` (scikit-learn's compute_sample_weight), or None.

        Parameters
        ----------
        y : ndarray of shape (n,)
            The training labels.
        sample_weight : array-like of shape (n,) or None

        Returns
        -------
        ndarray of shape (n,) or None (no weights at all)
        """
        from sklearn.utils.class_weight import compute_sample_weight

        class_weight = getattr(self, "class_weight", None)
        _class_weight_valid(class_weight)
        w = check_sample_weight(sample_weight, len(y))
        if class_weight is None:
            return w
        unknown = [] if isinstance(class_weight, str) else [c for c in class_weight if c not in set(np.unique(y))]
        if unknown:
            raise ValueError(
                f"class_weight names labels not in y: {unknown[:5]}; the classes are {np.unique(y).tolist()}"
            )
        cw = compute_sample_weight(class_weight, y)
        return cw if w is None else cw * w

    def _labels_of(self, Z):
        """Labels (values of ``classes_``) of scores (n,) (positive: ``classes_[1]``) or (n, n_classes)."""
        if Z.ndim == 1:
            return self.classes_[(Z > 0).astype(np.intp)]
        return self.classes_[np.argmax(Z, axis=1)]

    @staticmethod
    def _proba_of(Z):
        """Class probabilities of logistic scores (n,) or cross-entropy logits (n, n_classes)."""
        if Z.ndim == 1:
            p1 = expit(Z)
            return np.column_stack([1.0 - p1, p1])
        return np.exp(log_softmax(Z, axis=1))

    @staticmethod
    def _log_proba_of(Z):
        if Z.ndim == 1:
            Z = np.column_stack([np.zeros_like(Z), Z])  # logistic: p1 = sigmoid(z) = softmax([0, z])[1]
        return log_softmax(Z, axis=1)

    def _has_proba(self):
        if self.loss not in PROBA_LOSSES:
            raise AttributeError(
                f"predict_proba is not available with loss={self.loss!r} (use 'auto', 'logistic' or 'cross_entropy')"
            )
        return True

    def decision_function(self, X):
        """Scores of the network on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (pre-processing is applied here); a CPU torch tensor is read as a numpy array.

        Returns
        -------
        ndarray of shape (n_samples,) for two classes (positive means ``classes_[1]``), else (n_samples, n_classes)
        """
        Z = self._raw_output(X)
        if Z.ndim == 2 and len(self.classes_) == 2:
            return Z[:, 1] - Z[:, 0]
        return Z

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (pre-processing is applied here); a CPU torch tensor is read as a numpy array.

        Returns
        -------
        ndarray of shape (n_samples,)
            Values of ``classes_``.
        """
        return self._labels_of(self.decision_function(X))

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities (losses "auto", "logistic" and "cross_entropy").

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (pre-processing is applied here); a CPU torch tensor is read as a numpy array.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        return self._proba_of(self._raw_output(X))

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Logarithms of :meth:`predict_proba`, computed without underflow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (pre-processing is applied here); a CPU torch tensor is read as a numpy array.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self._log_proba_of(self._raw_output(X))

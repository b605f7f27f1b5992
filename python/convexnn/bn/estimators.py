"""scikit-learn estimators for two-layer BN ReLU networks trained through their convex program.

:class:`ConvexBNReLURegressor` and :class:`ConvexBNReLUClassifier` fit the network
``f(x) = sum_j (BN_{gamma_j, alpha_j}(x^T w_j))_+ w2_j`` (Ergen, Sahiner, Ozturkler, Pauly, Mardani & Pilanci,
"Demystifying Batch Normalization in ReLU Networks: Equivalent Convex Optimization Models and Implicit
Regularization", ICLR 2022) by solving the exact program (8) on the whitened data with :func:`convexnn.bn.solve_bn`
and keep its certificate. ``truncate`` gives the paper's "Convex-Trunc" model (Section 5.2): the program on the top
k singular directions of the centered training data, k by default explaining 95% of its variance.

Pre-processing (documented, undone in ``predict``):

* X is used as given (``standardize=False``, the default): BN makes the untruncated model invariant to rescaling a
  feature (the whitened matrix U' spans the same space), and the paper truncates the raw features' spectrum.
  ``standardize=True`` scales every feature to unit variance first (it changes which directions truncation keeps);
* the regressor centers y (``y_mean_``): the network's own offset (the shift alpha) is weight-decayed.

Predictions use the network's BN statistics of the full training set (BN momentum 1), which on new data is the
whitening ``u'(x) = [S^-1 V^T (x - mean); 1/sqrt(n)]`` of the training SVD (Appendix A.1).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.special import expit, log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from .._validation import BINARY_LOSSES, check_choice, check_scalar
from ..estimators import _FLOAT_DTYPES, _check_random_state_seed, _scale_of, _sk_validate_data

__all__ = ["ConvexBNReLURegressor", "ConvexBNReLUClassifier"]


class _ConvexBNBase(BaseEstimator):
    """Shared fit machinery: parameter checks, pre-processing, the solve and its certificate."""

    def _check_params(self):
        check_scalar(self.beta, "beta", low=0.0)
        if isinstance(self.n_patterns, str):
            check_choice(self.n_patterns, "n_patterns", ("enumerate",))
        else:
            check_scalar(self.n_patterns, "n_patterns", low=1, integer=True)
        t = self.truncate
        if not (t is None or t == "auto" or (isinstance(t, numbers.Real) and not isinstance(t, bool))):
            raise ValueError(f"truncate must be None, 'auto', an int k >= 1 or a float in (0, 1]; got {t!r}")
        check_scalar(self.tol, "tol", low=0.0, low_inclusive=False)
        for name in ("standardize", "verbose"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False; got {getattr(self, name)!r}")

    def _preprocess_fit(self, X):
        if self.standardize:
            self.x_mean_, self.x_scale_ = _scale_of(X)
        else:
            self.x_mean_, self.x_scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        return self._transform_X(X)

    def _transform_X(self, X):
        X = np.asarray(X, dtype=np.float64)
        return (X - self.x_mean_) / self.x_scale_ if self.standardize else X

    def _solve(self, Xs, Y, loss):
        from .program import solve_bn

        if Xs.shape[0] < 2:
            raise ValueError(f"Found array with n_samples = {Xs.shape[0]}, i.e. 1 sample, while batch normalization "
                             "needs at least 2")
        seed = _check_random_state_seed(self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)   # re-issued below with the estimator's name
            res = solve_bn(Xs, Y, float(self.beta), patterns=self.n_patterns, loss=loss, truncate=self.truncate,
                           seed=seed, tol=float(self.tol), max_iter=self.max_iter, time_limit=self.time_limit,
                           verbose=bool(self.verbose))
        self.result_ = res
        self.network_ = res.network()
        self.whitening_ = res.whitening
        self.n_components_ = int(res.whitening.k)
        self.objective_ = float(res.objective)
        self.dual_objective_ = float(res.dual_objective)
        self.gap_ = float(res.gap)
        self.status_ = res.status
        self.n_iter_ = int(res.n_iter)
        self.max_violation_ = float(res.max_violation)
        self.n_patterns_ = int(res.patterns.n_patterns)
        self.certified_global_ = bool(res.certified_global)
        if res.status != "converged":
            warnings.warn(f"{type(self).__name__}: the exact solver stopped with status {res.status!r} after "
                          f"{res.n_iter} iterations (relative gap {res.gap:.3g}, tol {self.tol:g}); the certificate "
                          "bounds the suboptimality. Raise max_iter or time_limit, or loosen tol.",
                          ConvergenceWarning, stacklevel=3)

    def _raw_output(self, X):
        check_is_fitted(self, "network_")
        X = _sk_validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES)
        return self.network_.predict(self._transform_X(X))

    @property
    def certificate_(self) -> dict:
        """The certificate of the solve (objective, dual bound, gap, status, ...)."""
        check_is_fitted(self, "network_")
        return {"objective": self.objective_, "dual_objective": self.dual_objective_, "gap": self.gap_,
                "status": self.status_, "n_iter": self.n_iter_, "max_violation": self.max_violation_,
                "n_patterns": self.n_patterns_, "certified_global": self.certified_global_,
                "n_components": self.n_components_, "n_neurons": int(self.network_.n_neurons)}


_PARAMS = """
    beta : float >= 0
        Weight decay of (gamma, alpha, w2), eq. (3) in the paper's BN units (sum over samples, no 1/n).
    n_patterns : int or "enumerate"
        Sign patterns of the whitened data: an int P samples P Gaussian directions ``h ~ N(0, I)`` (deduplicated);
        "enumerate" takes all of them (exact, Theorem 2.2; only for small n or k).
    truncate : None, int, float or "auto"
        None: the full program. int k: the top k singular directions. float in (0, 1]: the smallest k explaining
        that variance fraction. "auto": 0.95 ("Convex-Trunc", Section 5.2).
    standardize : bool
        Scale features to unit variance before whitening (changes only what truncation keeps).
    random_state : int, RandomState, Generator or None
        Seed of the pattern sampler.
    tol : float
        KKT residual / violation target of the exact solver.
    max_iter, time_limit : int or None, float or None
        Solver limits; hitting one gives a ConvergenceWarning.
    verbose : bool
"""

_ATTRS = """
    Attributes
    ----------
    network_ : BNReLUNetwork
        The trained network on the pre-processed inputs, with full-batch training statistics.
    result_ : BNSolveResult
        The solve and its certificate.
    whitening_ : Whitening
        The training SVD (``U'``, truncation).
    n_components_ : int
        k, the singular directions used.
    objective_, dual_objective_, gap_ : float
        Convex objective (= the network's objective (3)), certified lower bound over the patterns, relative gap.
    status_ : str
    n_iter_ : int
    max_violation_ : float
    n_patterns_ : int
    certified_global_ : bool
        All patterns were used (``n_patterns="enumerate"``) and the solve converged: globally optimal over BN
        networks of any width.
    x_mean_, x_scale_ : ndarray of shape (n_features,)
    n_features_in_ : int
"""


class ConvexBNReLURegressor(RegressorMixin, _ConvexBNBase):
    __doc__ = ("""Two-layer BN ReLU network regression trained to a certified optimum of its convex program.

    Minimizes ``1/2 ||f(X) - (y - y_mean_)||^2 + beta/2 * sum_j (gamma_j^2 + alpha_j^2 + ||w2_j||^2)`` over BN
    networks whose sign patterns are among the sampled (or all) ones. Multi-output y (n, c): one set of neurons per
    output on shared patterns.

    Parameters
    ----------""" + _PARAMS + _ATTRS + """    y_mean_ : ndarray of shape (n_outputs,) or float
    """)

    def __init__(self, beta=0.1, n_patterns=100, truncate=None, standardize=False, random_state=0, tol=1e-6,
                 max_iter=None, time_limit=None, verbose=False):
        self.beta = beta
        self.n_patterns = n_patterns
        self.truncate = truncate
        self.standardize = standardize
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.verbose = verbose

    def fit(self, X, y):
        """Fit on X (n, d) and y (n,) or (n, c). Returns self."""
        self._check_params()
        X, y = _sk_validate_data(self, X, y, dtype=_FLOAT_DTYPES, multi_output=True, y_numeric=True)
        Xs = self._preprocess_fit(X)
        Y = np.asarray(y, dtype=np.float64)
        self.y_mean_ = Y.mean(axis=0)
        self._solve(Xs, Y - self.y_mean_, "squared")
        return self

    def predict(self, X):
        """Predictions of shape (n,) (or (n, c) when fit on 2-D y)."""
        return self._raw_output(X) + self.y_mean_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class ConvexBNReLUClassifier(ClassifierMixin, _ConvexBNBase):
    __doc__ = ("""Two-layer BN ReLU network classifier trained to a certified optimum of its convex program.

    Two classes use one output on targets {-1, +1} (``classes_[1]`` is +1); more classes one output per class on
    one-hot targets (independent heads on shared patterns).

    Parameters
    ----------
    loss : {"auto", "squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}
        "auto": "logistic" for two classes, "cross_entropy" for more. "squared" regresses on {-1, +1} or one-hot
        targets (the paper's loss). ``predict_proba`` exists for "auto", "logistic" and "cross_entropy".""" + _PARAMS
               + _ATTRS + """    classes_ : ndarray of shape (n_classes,)
    loss_ : str
    """)

    _LOSSES = ("auto", "squared", "logistic", "hinge", "squared_hinge", "cross_entropy")

    def __init__(self, beta=0.1, n_patterns=100, loss="auto", truncate=None, standardize=False, random_state=0,
                 tol=1e-6, max_iter=None, time_limit=None, verbose=False):
        self.beta = beta
        self.n_patterns = n_patterns
        self.loss = loss
        self.truncate = truncate
        self.standardize = standardize
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.verbose = verbose

    def fit(self, X, y):
        """Fit on X (n, d) and labels y (n,). Returns self."""
        self._check_params()
        check_choice(self.loss, "loss", self._LOSSES)
        X, y = _sk_validate_data(self, X, y, dtype=_FLOAT_DTYPES)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"y must hold one label per sample (binary or multiclass); got target type {kind!r}")
        self.classes_, index = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
        loss = self.loss if self.loss != "auto" else ("logistic" if n_classes == 2 else "cross_entropy")
        if loss in BINARY_LOSSES and n_classes > 2:
            raise ValueError(f"loss={loss!r} is binary but y has {n_classes} classes; use 'cross_entropy', "
                             "'squared' or 'auto'")
        if loss == "cross_entropy" and n_classes == 2:
            loss = "logistic"
        self.loss_ = loss
        Y = np.eye(n_classes)[index] if n_classes > 2 else np.where(index == 1, 1.0, -1.0)
        self._solve(self._preprocess_fit(X), Y, loss)
        return self

    def decision_function(self, X):
        """Scores: (n,) for two classes (positive means ``classes_[1]``), (n, n_classes) otherwise."""
        return self._raw_output(X)

    def predict(self, X):
        """Predicted labels, shape (n,)."""
        Z = self.decision_function(X)
        if Z.ndim == 1:
            return self.classes_[(Z > 0).astype(np.intp)]
        return self.classes_[np.argmax(Z, axis=1)]

    def _has_proba(self):
        if self.loss not in ("auto", "logistic", "cross_entropy"):
            raise AttributeError(f"predict_proba is not available with loss={self.loss!r}")
        return True

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes_``."""
        Z = self._raw_output(X)
        if Z.ndim == 1:
            p1 = expit(Z)
            return np.column_stack([1.0 - p1, p1])
        return np.exp(log_softmax(Z, axis=1))

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Log class probabilities, shape (n, n_classes)."""
        Z = self._raw_output(X)
        if Z.ndim == 1:
            Z = np.column_stack([np.zeros_like(Z), Z])
        return log_softmax(Z, axis=1)

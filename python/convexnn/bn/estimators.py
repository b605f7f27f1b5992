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
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._estimator_base import (
    FLOAT_DTYPES,
    ConvexEstimatorBase,
    LabelsMixin,
    RegressorOutputMixin,
    check_random_state_seed,
    repeated_rows,
    sk_validate_data,
)
from .._validation import check_bool, check_choice, check_scalar, torch_to_numpy

__all__ = ["ConvexBNReLURegressor", "ConvexBNReLUClassifier"]


class _ConvexBNBase(ConvexEstimatorBase):
    """Shared fit machinery: parameter checks, pre-processing, the solve and its certificate."""

    _CERTIFICATE_EXTRA = ("n_patterns", "certified_global", "n_components")

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
            check_bool(getattr(self, name), name)

    def _preprocess_fit(self, X):
        self._fit_scaling(X)
        return self._transform_X(X)

    def _transform_X(self, X):
        X = np.asarray(X, dtype=np.float64)
        return (X - self.x_mean_) / self.x_scale_ if self.standardize else X

    def _solve(self, Xs, Y, loss):
        from .program import solve_bn

        if Xs.shape[0] < 2:
            raise ValueError(
                f"Found array with n_samples = {Xs.shape[0]}, i.e. 1 sample, while batch normalization needs at least 2"
            )
        seed = check_random_state_seed(self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # re-issued below with the estimator's name
            res = solve_bn(
                Xs,
                Y,
                float(self.beta),
                patterns=self.n_patterns,
                loss=loss,
                truncate=self.truncate,
                seed=seed,
                tol=float(self.tol),
                max_iter=self.max_iter,
                time_limit=self.time_limit,
                verbose=bool(self.verbose),
            )
        self._store_certificate(res)
        self.network_ = res.network()
        self.whitening_ = res.whitening
        self.n_components_ = int(res.whitening.k)
        self._warn_unconverged(res, "the exact solver")

    def _raw_output(self, X):
        check_is_fitted(self, "network_")
        X = sk_validate_data(self, torch_to_numpy(X), reset=False, dtype=FLOAT_DTYPES)
        return self.network_.predict(self._transform_X(X))


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


class ConvexBNReLURegressor(RegressorOutputMixin, RegressorMixin, _ConvexBNBase):
    __doc__ = (
        """Two-layer BN ReLU network regression trained to a certified optimum of its convex program.

    Minimizes ``1/2 ||f(X) - (y - y_mean_)||^2 + beta/2 * sum_j (gamma_j^2 + alpha_j^2 + ||w2_j||^2)`` over BN
    networks whose sign patterns are among the sampled (or all) ones. Multi-output y (n, c): one set of neurons per
    output on shared patterns.

    Parameters
    ----------"""
        + _PARAMS
        + _ATTRS
        + """    y_mean_ : ndarray of shape (n_outputs,) or float
    """
    )

    def __init__(
        self,
        beta=0.1,
        n_patterns=100,
        truncate=None,
        standardize=False,
        random_state=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        verbose=False,
    ):
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
        """Fit the BN network: solve its convex program on the whitened X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 samples (batch normalization needs them).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        self._check_params()
        X, y = sk_validate_data(self, X, y, dtype=FLOAT_DTYPES, multi_output=True, y_numeric=True)
        Xs = self._preprocess_fit(X)
        Y = np.asarray(y, dtype=np.float64)
        self.y_mean_ = Y.mean(axis=0)
        self._solve(Xs, Y - self.y_mean_, "squared")
        return self


class ConvexBNReLUClassifier(ClassifierMixin, LabelsMixin, _ConvexBNBase):
    __doc__ = (
        """Two-layer BN ReLU network classifier trained to a certified optimum of its convex program.

    Two classes use one output on targets {-1, +1} (``classes_[1]`` is +1); more classes one output per class on
    one-hot targets (independent heads on shared patterns).

    Parameters
    ----------
    loss : {"auto", "squared", "logistic", "hinge", "squared_hinge", "cross_entropy"}
        "auto": "logistic" for two classes, "cross_entropy" for more. "squared" regresses on {-1, +1} or one-hot
        targets (the paper's loss). ``predict_proba`` exists for "auto", "logistic" and "cross_entropy".
    class_weight : None, "balanced" or dict label -> weight, default None
        Weights of the classes (scikit-learn's ``compute_sample_weight``), multiplied into ``sample_weight``;
        the products must be integers (repeated rows)."""
        + _PARAMS
        + _ATTRS
        + """    classes_ : ndarray of shape (n_classes,)
    loss_ : str
    """
    )

    _LOSSES = ("auto", "squared", "logistic", "hinge", "squared_hinge", "cross_entropy")
    _BINARY_HINT = "use 'cross_entropy', 'squared' or 'auto'"

    def __init__(
        self,
        beta=0.1,
        n_patterns=100,
        loss="auto",
        truncate=None,
        standardize=False,
        random_state=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        verbose=False,
        class_weight=None,
    ):
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
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None):
        """Fit on X (n, d) and labels y (n,); integer ``sample_weight`` (times ``class_weight``) repeats rows.

        Returns
        -------
        self
        """
        self._check_params()
        check_choice(self.loss, "loss", self._LOSSES)
        X, y = sk_validate_data(self, X, y, dtype=FLOAT_DTYPES)
        index = self._encode_labels(y)
        if self.loss_ == "cross_entropy" and len(self.classes_) == 2:
            self.loss_ = "logistic"
        X, Y = repeated_rows((X, self._targets(index)), self._class_sample_weight(y, sample_weight))
        self._solve(self._preprocess_fit(X), Y, self.loss_)
        return self

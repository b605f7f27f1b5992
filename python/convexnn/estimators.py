"""scikit-learn estimators: :class:`ConvexReLURegressor` and :class:`ConvexReLUClassifier`.

Both fit a two-layer ReLU network by solving its convex program with :func:`convexnn.solve` and keep the
certificate of that solve. Pre-processing (documented, undone in ``predict``):

* ``standardize=True`` (default): every feature is centered and scaled to unit variance with the training
  mean and standard deviation (``x_mean_``, ``x_scale_``; constant features keep scale 1);
* the regressor also centers y (``y_mean_``). y is not rescaled, so an absolute ``beta`` keeps the units
  of the objective ``1/2 ||f(X) - y||^2 + beta * (group norms)`` (sum over samples, no 1/n).

``beta`` is absolute, or ``beta_ratio`` is a fraction of ``beta_max_`` (the smallest beta for which the
zero network is optimal for the gated program on the sampled patterns and the *pre-processed* data;
see :func:`convexnn.beta_max`). Give at most one of them; with neither, ``beta_ratio=0.01``.

The fitted network ``network_`` works on pre-processed inputs:
``predict(X) == network_.predict((X - x_mean_) / x_scale_) + y_mean_`` (regressor; the classifier's
``decision_function`` likewise without ``y_mean_``).

Speed note: ``formulation="relu"`` (the exact program, the default) projects onto a cone per pattern in every
iteration and is markedly slower than ``formulation="gated"`` (an unconstrained group lasso); prefer "gated" for
large data or many patterns. The scikit-learn conformance suite (``check_estimator``) is run on
``formulation="gated"`` instances in the tests for that reason; the relu formulation is tested separately.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._estimator_base import (
    DEFAULT_BETA_RATIO,  # noqa: F401  (re-exported: the documented default)
    FLOAT_DTYPES,
    ConvexEstimatorBase,
    LabelsMixin,
    RegressorOutputMixin,
    check_random_state_seed,
    repeat_integer_weights,
    sk_validate_data,
)
from ._validation import (
    DEVICES,
    FORMULATIONS,
    GROUPS,
    check_bool,
    check_choice,
    check_sample_weight,
    check_scalar,
    check_verbose,
    torch_to_numpy,
)
from .result import ConvergenceWarning as _SolveConvergenceWarning

__all__ = ["ConvexReLUClassifier", "ConvexReLURegressor"]

# Seconds of the pattern search when the estimator searches and no time_limit is given (scikit-learn's MLP takes
# ~20 s on make_classification(10000, 20) on a 2-core machine; the search reaches its accuracy in ~30 s there).
DEFAULT_SEARCH_TIME = 60.0
# Rows per block in predict, so that the (rows x neurons) hidden layer stays below ~32 MB.
_PREDICT_BLOCK_ENTRIES = 1 << 22


def _weighted_beta_max(Xs, Y, patterns, groups, bias, sample_weight):
    """beta_max of the weighted squared loss: that of the rows of [X, 1] and y scaled by sqrt(w) (same patterns)."""
    from . import _core
    from ._operators import make_operator
    from ._validation import add_bias_column

    root = np.sqrt(sample_weight)
    Xb = add_bias_column(Xs) if bias else Xs
    Xw = np.ascontiguousarray(Xb * root[:, None].astype(Xb.dtype))
    Yw = np.ascontiguousarray(np.asarray(Y, dtype=np.float64).reshape(len(Y), -1) * root[:, None])
    return float(_core.gated_beta_max(make_operator(Xw, patterns), Yw, loss="squared", groups=groups))


def predict_in_blocks(network, Xs):
    """``network.predict(Xs)`` computed on row blocks, so the hidden layer never takes more than ~32 MB."""
    rows = max(1, _PREDICT_BLOCK_ENTRIES // max(1, network.n_neurons))
    if Xs.shape[0] <= rows:
        return network.predict(Xs)
    return np.concatenate([network.predict(Xs[i : i + rows]) for i in range(0, Xs.shape[0], rows)], axis=0)


def recentered_gates(gates, masks_of, Xb, chunk=256):
    """Gates moved (bias entry only) to the middle of the margin between their active and inactive training points.

    Sampled gates pass exactly through a training point (docs/api.md), so that point sits on the gate's boundary and
    whether it counts as active depends on floating-point rounding, which differs between BLAS calls (e.g. when
    predicting on a subset of rows). Shifting the boundary to halfway between the closest active and inactive
    training points keeps every training pattern (hence the solution and its certificate) and makes predictions
    stable. A gate whose training points are all active has its boundary moved out of the data by half the spread
    of its margins. Gates whose pattern the margins do not reproduce exactly are left as they are.

    Parameters
    ----------
    gates : array (d + 1, m)
        Gate vectors, last row the bias entry.
    masks_of : callable(index array) -> bool array (n, len(index))
        The training masks of those gates as the solver used them.
    Xb : array (n, d + 1)
        Pre-processed training data with the ones column.

    Returns
    -------
    ndarray (d + 1, m)
    """
    G = np.array(gates, dtype=np.float64)
    for start in range(0, G.shape[1], chunk):
        cols = np.arange(start, min(start + chunk, G.shape[1]))
        margins = Xb @ G[:, cols]  # (n, k)
        active = masks_of(cols)
        lo = np.where(active, margins, np.inf).min(axis=0)  # closest active point
        hi = np.where(active, -np.inf, margins).max(axis=0)  # closest inactive point
        spread = margins.max(axis=0) - margins.min(axis=0)
        all_active = ~np.isfinite(hi)
        hi = np.where(all_active, lo - spread, hi)
        ok = (lo > hi) & np.isfinite(lo) & (lo - hi > 1e-12 * np.maximum(1.0, np.abs(margins).max(axis=0)))
        G[-1, cols[ok]] -= 0.5 * (lo[ok] + hi[ok])
    return G


class _ConvexReLUBase(ConvexEstimatorBase):
    """Shared fit machinery: validation, pre-processing, beta, patterns, solve, certificate attributes."""

    _CERTIFICATE_EXTRA = ("beta", "beta_max", "n_patterns", "certified_global")

    def _check_params(self):
        check_choice(self.formulation, "formulation", FORMULATIONS)
        check_choice(self.groups, "groups", GROUPS)
        check_choice(self.device, "device", DEVICES)
        self._check_beta_params()
        check_scalar(self.n_patterns, "n_patterns", low=1, integer=True)
        for name in ("bias", "standardize", "warm_start"):
            check_bool(getattr(self, name), name)
        if not (isinstance(self.cutting_planes, str) and self.cutting_planes == "auto"):
            check_bool(self.cutting_planes, "cutting_planes")
        check_verbose(self.verbose)
        if self.max_neurons is not None:
            per_pattern = 2 if self.formulation == "relu" else 1
            check_scalar(self.max_neurons, "max_neurons", low=per_pattern, integer=True)

    def _preprocess_fit(self, X, sample_weight=None):
        self._fit_scaling(X, sample_weight)
        return self._transform_X(X)

    def _transform_X(self, X):
        if not self.standardize:
            return X
        return ((X - self.x_mean_) / self.x_scale_).astype(X.dtype, copy=False)

    def _solve(self, Xs, Y, loss, sample_weight=None):
        """Sample patterns on the pre-processed data, resolve beta, solve, store the certificate."""
        from .patterns import sample_patterns
        from .solve import beta_max

        seed = check_random_state_seed(self.random_state)
        patterns, warm = self._warm_patterns(Xs)
        if patterns is None:
            patterns = sample_patterns(Xs, n_patterns=int(self.n_patterns), seed=seed, bias=bool(self.bias))
        if sample_weight is None:
            self._resolve_beta(beta_max(Xs, Y, patterns, loss=loss, groups=self.groups, bias=bool(self.bias)))
        else:
            self._resolve_beta(_weighted_beta_max(Xs, Y, patterns, self.groups, bool(self.bias), sample_weight))
        res = self._run_solve(Xs, Y, loss, patterns, seed, warm, sample_weight)
        if self.max_neurons is not None and res.network().n_neurons > self.max_neurons:
            res = self._capped(res, Xs, Y, loss, seed, sample_weight)
        self._store_certificate(res)
        self.network_ = self._robust_network(res, Xs)
        if res.status == "interrupted":
            # Ctrl-C: the estimator keeps the best certified point (its attributes are set), and the interrupt goes
            # on to the caller, so that a grid search or a pipeline stops instead of scoring a partial fit.
            raise KeyboardInterrupt(
                f"{type(self).__name__}.fit interrupted after {res.n_iter} iterations; the "
                f"estimator holds the best certified point so far (relative gap {res.gap:.3g})"
            )
        self._warn_unconverged(
            res,
            f"the {self.formulation} solve",
            "Raise max_iter or time_limit, loosen tol, or raise beta / beta_ratio.",
        )

    def _run_solve(self, Xs, Y, loss, patterns, seed, warm, sample_weight):
        """solve() with the estimator's options; its own ConvergenceWarning is replaced by the estimator's."""
        from .solve import solve

        verbose = check_verbose(self.verbose)
        search = self._searches(sample_weight, warm)
        time_limit = self.time_limit
        if search and time_limit is None:
            time_limit = DEFAULT_SEARCH_TIME
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _SolveConvergenceWarning)
            return solve(
                Xs,
                Y,
                self.beta_,
                patterns=patterns,
                formulation=self.formulation,
                loss=loss,
                groups=self.groups,
                bias=bool(self.bias),
                seed=seed,
                tol=self.tol,
                max_iter=self.max_iter,
                time_limit=time_limit,
                cutting_planes=search,
                device=self.device,
                dtype=self.dtype,
                verbose=verbose >= 2,
                progress=verbose >= 1,
                warm_start=warm,
                sample_weight=sample_weight,
            )

    def _searches(self, sample_weight, warm):
        """Whether this fit runs the pattern search (cutting_planes="auto": the exact program without weights)."""
        if isinstance(self.cutting_planes, str):
            return self.formulation == "relu" and sample_weight is None and warm is None
        return bool(self.cutting_planes)

    def _warm_patterns(self, Xs):
        """(patterns, warm start) of the previous fit when ``warm_start`` and its gates fit the new data."""
        from .patterns import Patterns

        previous = getattr(self, "result_", None)
        if not (
            self.warm_start
            and previous is not None
            and previous.formulation == self.formulation
            and previous.bias == bool(self.bias)
            and previous.patterns.gates.shape[0] == Xs.shape[1] + self.bias
        ):
            return None, None
        patterns = Patterns.from_gates(Xs, previous.patterns.gates, bias=bool(self.bias))
        if patterns.n_patterns != previous.patterns.n_patterns:  # a merged or empty pattern: no warm start
            return patterns, None
        return patterns, previous

    def _capped(self, res, Xs, Y, loss, seed, sample_weight):
        """Re-solve on the patterns of the largest groups so that the network has at most ``max_neurons`` neurons.

        A relu pattern gives up to two neurons per output (its V and W columns), a gated one one per output; the
        kept patterns are the ``max_neurons // (that count)`` with the largest group norms, and the certificate
        is that of the program over them.
        """
        blocks = [np.asarray(B) for B in (res.coef_ if isinstance(res.coef_, tuple) else (res.coef_,))]
        norms = sum(np.linalg.norm(B, axis=1).sum(axis=1) for B in blocks)  # (P,)
        per_pattern = len(blocks) * blocks[0].shape[2]
        keep = np.sort(np.argsort(-norms, kind="stable")[: max(1, int(self.max_neurons) // per_pattern)])
        warm = tuple(B[keep] for B in blocks) if len(blocks) == 2 else blocks[0][keep]
        return self._run_solve(Xs, Y, loss, res.patterns.subset(keep), seed, warm, sample_weight)

    def _robust_network(self, res, Xs):
        """res.network(), with gated networks' gates recentered (see :func:`recentered_gates`)."""
        from ._validation import add_bias_column
        from .network import GatedNetwork, neurons_from_blocks

        net = res.network()
        if not (isinstance(net, GatedNetwork) and self.bias and net.n_neurons):
            return net
        rows, _, _ = neurons_from_blocks(np.asarray(res.coef_), 1.0)  # pattern index of every neuron
        patterns = res.patterns

        def masks_of(cols):  # several neurons share a pattern when c > 1; subset() takes distinct indices
            distinct, where = np.unique(rows[cols], return_inverse=True)
            return patterns.subset(distinct).dense()[:, where]

        gates = recentered_gates(net.gates, masks_of, add_bias_column(Xs).astype(np.float64, copy=False))
        return GatedNetwork(gates, net.W1, net.w2, bias=net.bias)

    def _raw_output(self, X):
        """Network output on pre-processed X, (n,) or (n, c), float32 for float32 X (as scikit-learn's models)."""
        check_is_fitted(self, "network_")
        X = sk_validate_data(self, torch_to_numpy(X), reset=False, dtype=FLOAT_DTYPES)
        out = predict_in_blocks(self.network_, self._transform_X(X))
        return out.astype(X.dtype, copy=False)

    def _fit_weights(self, X, Y, sample_weight, loss):
        """(X, Y, weights for the solver) with integer weights applied as repeated rows (exact for every loss:
        the objective is a sum over samples); other weights are passed on (loss="squared" only)."""
        w = check_sample_weight(sample_weight, X.shape[0])
        if w is None:
            return X, Y, None
        repeated = repeat_integer_weights((X, Y), w, X.shape[0])
        if repeated is not None:
            return repeated + (None,)
        if loss != "squared":
            raise ValueError(
                f"sample_weight (times the weights of class_weight) with loss={loss!r} needs integer "
                "weights (applied as repeated rows; the solvers' losses other than 'squared' take no "
                "weights); use loss='squared' for non-integer weights"
            )
        return X, Y, w

    def to_torch(self, dtype=None):
        """A ``torch.nn.Module`` computing :meth:`decision_function` / :meth:`predict` (pre-processing folded in)."""
        from .export import estimator_to_torch

        return estimator_to_torch(self, dtype=dtype)

    def save(self, path):
        """Write the fitted model to ``path`` (see :func:`convexnn.io.save`)."""
        from .io import save

        return save(self, path)


_PARAM_DOC = """
    Parameters
    ----------
    beta : float >= 0 or None
        Absolute regularization weight (weight decay of the network). Give at most one of ``beta`` and
        ``beta_ratio``.
    beta_ratio : float >= 0 or None
        beta as a fraction of ``beta_max_`` (computed on the pre-processed data). Default: 0.01 when
        ``beta`` is None as well. Values >= 1 give the zero network.
    n_patterns : int
        Gaussian gates drawn (sign patterns, i.e. candidate neurons); duplicates are dropped.
    formulation : {"relu", "gated"}
        "relu": the exact cone-constrained program (a ReLU network; slower). "gated": the gated-ReLU group lasso
        (a network with fixed gates; fast).
    groups : {"output", "neuron"}
        Group norm per output column or per pattern (same for one output).
    bias : bool
        Give every neuron a bias (a ones column is appended to the pre-processed X).
    standardize : bool
        Standardize X (and center y for the regressor) before solving; undone in predict.
    random_state : int, RandomState, Generator or None
        Seed of the pattern sampler (None: a fresh seed each fit).
    tol : float
        Target relative duality gap (gated) or KKT residual and violation (relu).
    max_iter, time_limit : int or None, float or None
        Solver limits; hitting one gives a ConvergenceWarning.
    cutting_planes : bool or "auto"
        relu only: pattern generation (patterns of a short Adam + L-BFGS run, then column generation by the neuron
        oracle until no neuron violates the dual constraint; see :func:`convexnn.solve`). When the data's
        arrangement can be enumerated (small n or d) the result is then certified globally optimal over networks of
        any width (``certified_global_``). "auto" (default): on for ``formulation="relu"`` without
        ``sample_weight`` or a warm start, with ``time_limit`` defaulting to 60 s; sampled patterns alone leave
        the exact program far from what gradient training reaches.
    device : {"cpu", "cuda"}
    dtype : None, "float32" or "float64"
        Iteration precision (None: that of X). Certificates are always in float64.
    verbose : int or bool, default 0
        0: silent; 1 (or True): a tqdm progress bar of the solve with its gap; >= 2: also the solver's lines.
    max_neurons : int or None
        Cap on the width of the network: when the solution has more neurons, the program is solved again on the
        patterns of its largest groups (``max_neurons // 2`` patterns for relu, which gives up to two neurons per
        pattern and output; ``max_neurons`` for gated), and the certificate is over those patterns.
    warm_start : bool, default False
        Start from the previous fit's solution and gates (when they fit the new data), e.g. when refitting with
        another ``beta`` on the same data.
"""

_ATTR_DOC = """
    Attributes
    ----------
    objective_, dual_objective_, gap_ : float
        Convex objective at the solution, a certified lower bound on the optimum over the sampled patterns,
        and the relative gap between them (pre-processed data, docs/api.md scaling).
    status_ : str
        Solver status ("converged", "max_iter", "time_limit", ...).
    n_iter_ : int
    max_violation_ : float
        relu: relative cone-constraint violation of the solution (0 for gated).
    beta_, beta_max_ : float
        The beta used, and beta_max on the pre-processed data and sampled patterns.
    n_patterns_ : int
        Distinct patterns of the final solve (after deduplication; cutting planes add patterns).
    certified_global_ : bool
        True when cutting planes certified the global optimum over all patterns (any network width).
    network_ : Network or GatedNetwork
        The trained network, on pre-processed inputs (see the module docstring).
    result_ : SolveResult
        The full result of :func:`convexnn.solve` (None for a model read back by :func:`convexnn.load`).
    x_mean_, x_scale_ : ndarray of shape (n_features,)
        Pre-processing of X (zeros and ones when ``standardize=False``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str (only when X had string column names)
"""


class ConvexReLURegressor(RegressorOutputMixin, RegressorMixin, _ConvexReLUBase):
    __doc__ = (
        """Two-layer ReLU network regression, trained to a certified optimum of its convex program.

    Minimizes ``1/2 * ||f(Xs) - (y - y_mean_)||^2 + beta * sum_i ||group_i||`` over the sampled sign
    patterns (``Xs`` the standardized X), i.e. the squared loss with weight decay
    ``beta/2 * (||W1||^2 + ||w2||^2)`` of the network. Multi-output y of shape (n, c) is supported.
    """
        + _PARAM_DOC
        + _ATTR_DOC
        + """    y_mean_ : ndarray of shape (n_outputs,)
        Training mean of y (zeros when ``standardize=False``).

    Examples
    --------
    >>> from convexnn.estimators import ConvexReLURegressor                        # doctest: +SKIP
    >>> est = ConvexReLURegressor(formulation="gated", n_patterns=200).fit(X, y)  # doctest: +SKIP
    >>> est.gap_, est.status_, est.predict(X_new)                                 # doctest: +SKIP
    """
    )

    def __init__(
        self,
        beta=None,
        beta_ratio=None,
        n_patterns=100,
        formulation="relu",
        groups="output",
        bias=True,
        standardize=True,
        random_state=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        cutting_planes="auto",
        device="cpu",
        dtype=None,
        verbose=0,
        max_neurons=None,
        warm_start=False,
    ):
        self.beta = beta
        self.beta_ratio = beta_ratio
        self.n_patterns = n_patterns
        self.formulation = formulation
        self.groups = groups
        self.bias = bias
        self.standardize = standardize
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.cutting_planes = cutting_planes
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.max_neurons = max_neurons
        self.warm_start = warm_start

    def fit(self, X, y, sample_weight=None, client=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (float32 data is solved in float32; scipy.sparse input is refused).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Weights >= 0 of the samples in the loss (and in the standardization). Integer weights act as repeated
            rows; other weights scale the rows of X and y by sqrt(w) (exact for the squared loss).

        client : dask.distributed.Client, optional
            Fit on this Dask cluster (numpy X is scattered by rows); a row-chunked ``dask.array`` X uses the active
            client without it (gated formulation; see :func:`convexnn.distributed.fit_estimator`).

        Returns
        -------
        self
        """
        if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a Dask cluster
            from .distributed import fit_estimator

            return fit_estimator(self, X, y, client=client, sample_weight=sample_weight)
        self._check_params()
        X, y = sk_validate_data(self, X, y, dtype=FLOAT_DTYPES, multi_output=True, y_numeric=True)
        X, Y, w = self._fit_weights(X, np.asarray(y, dtype=np.float64), sample_weight, "squared")
        Xs = self._preprocess_fit(X, w)
        self.y_mean_ = np.average(Y, axis=0, weights=w) if self.standardize else np.zeros(Y.shape[1:])
        self._solve(Xs, Y - self.y_mean_, "squared", w)
        return self


class ConvexReLUClassifier(ClassifierMixin, LabelsMixin, _ConvexReLUBase):
    __doc__ = (
        """Two-layer ReLU network classifier, trained to a certified optimum of its convex program.

    Any labels: two classes use a binary loss on targets {-1, +1} (``classes_[1]`` is +1), more classes a
    one-hot target with ``loss="cross_entropy"`` (one network output per class).

    Parameters
    ----------
    loss : {"auto", "logistic", "hinge", "squared_hinge", "cross_entropy", "squared"}
        "auto": "logistic" for two classes, "cross_entropy" for more. The binary losses need exactly two
        classes. "squared" regresses on {-1, +1} (two classes) or one-hot targets. ``predict_proba`` exists
        for "auto", "logistic" and "cross_entropy".
    class_weight : None, "balanced" or dict label -> weight, default None
        Weights of the classes, multiplied into ``sample_weight`` (scikit-learn's semantics:
        ``compute_sample_weight``; "balanced" weighs class k by n / (n_classes * n_k)). Integer weights are
        exact for every loss (repeated rows); non-integer ones need ``loss="squared"`` (ValueError otherwise).
    """
        + _PARAM_DOC.split("----------", 1)[1]
        + _ATTR_DOC
        + """    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted.
    loss_ : str
        The loss used ("auto" resolved).

    Notes
    -----
    :meth:`score` raises ValueError when y holds labels never seen in fit (a label encoding mismatch would
    otherwise just read as zero accuracy).
    """
    )

    def __init__(
        self,
        beta=None,
        beta_ratio=None,
        n_patterns=100,
        formulation="relu",
        loss="auto",
        groups="output",
        bias=True,
        standardize=True,
        random_state=0,
        tol=1e-6,
        max_iter=None,
        time_limit=None,
        cutting_planes="auto",
        device="cpu",
        dtype=None,
        verbose=0,
        max_neurons=None,
        warm_start=False,
        class_weight=None,
    ):
        self.beta = beta
        self.beta_ratio = beta_ratio
        self.n_patterns = n_patterns
        self.formulation = formulation
        self.loss = loss
        self.groups = groups
        self.bias = bias
        self.standardize = standardize
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.cutting_planes = cutting_planes
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.max_neurons = max_neurons
        self.warm_start = warm_start
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None, client=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (float32 data is solved in float32; scipy.sparse input is refused).
        y : array-like of shape (n_samples,)
            Labels: strings, integers, booleans or integral floats (as scikit-learn; float labels such as 2.5 are
            "continuous" targets: pass ``y.astype(str)``).
        sample_weight : array-like of shape (n_samples,), optional
            Weights >= 0 of the samples, multiplied by those of ``class_weight``. Integer weights act as repeated
            rows (exact for every loss); other weights need ``loss="squared"``.

        client : dask.distributed.Client, optional
            Fit on this Dask cluster (numpy X is scattered by rows); a row-chunked ``dask.array`` X uses the active
            client without it (gated formulation; see :func:`convexnn.distributed.fit_estimator`).

        Returns
        -------
        self
        """
        if client is not None or type(X).__module__.startswith("dask"):  # row-partitioned data on a Dask cluster
            from .distributed import fit_estimator

            return fit_estimator(self, X, y, client=client, sample_weight=sample_weight)
        self._check_params()
        check_choice(self.loss, "loss", self._LOSSES)
        X, y = sk_validate_data(self, X, y, dtype=FLOAT_DTYPES)
        y_index = self._encode_labels(y)
        w = self._class_sample_weight(y, sample_weight)
        X, Y, w = self._fit_weights(X, self._targets(y_index), w, self.loss_)
        Xs = self._preprocess_fit(X, w)
        self._solve(Xs, Y, self.loss_, w)
        return self

    def score(self, X, y, sample_weight=None):
        """Accuracy on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (pre-processing is applied here); a CPU torch tensor is read as a numpy array.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
            The (weighted) fraction of correct labels.

        Raises
        ------
        ValueError
            y holds labels never seen in fit.
        """
        check_is_fitted(self, "classes_")
        y = column_or_1d(np.asarray(y), warn=True)
        seen = set(self.classes_.tolist())
        unseen = [label for label in np.unique(y).tolist() if label not in seen]
        if unseen:
            raise ValueError(
                f"y contains labels not seen in fit: {unseen[:5]}{' ...' if len(unseen) > 5 else ''}; "
                f"the classes are {self.classes_.tolist()}"
            )
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

"""Property-based fuzzing (hypothesis) of the public entries: patterns, beta_max, solve, networks, estimators and
the command line. Properties: only ValueError / TypeError / MemoryError (naming an argument) for bad input, inputs
never modified, dual bounds never above the objective nor above the zero network's objective.

Examples per test: CONVEXNN_FUZZ_EXAMPLES (default 40; the whole file then runs in well under 3 minutes).
"""

import os
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (the 'test' extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import convexnn as cnn  # noqa: E402
from convexnn import _core  # noqa: E402
from convexnn.cli import main  # noqa: E402
from convexnn.result import ConvergenceWarning  # noqa: E402

EXAMPLES = int(os.environ.get("CONVEXNN_FUZZ_EXAMPLES", "40"))
# CI runs a fixed (derandomized) set of examples; CONVEXNN_FUZZ_EXAMPLES=N draws N fresh ones per test. Fresh
# runs of a few hundred examples can reach the exact solver's known hang (a worker spinning in the cone prox
# while time_limit is ignored; a C++ fix), which would stall CI, hence the fixed set there.
DERANDOMIZE = "CONVEXNN_FUZZ_EXAMPLES" not in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
EXPECTED = (ValueError, TypeError, MemoryError)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
anything_float = st.floats(allow_nan=True, allow_infinity=True)
bias_values = st.one_of(st.booleans(), st.none(), st.sampled_from(["False", 1, 0, 1.0]))
int_values = st.one_of(st.integers(-5, 40), st.integers(2**62, 2**66), st.floats(0, 10), st.text(max_size=3))


def _matrix(max_n=10, max_d=3, elements=finite):
    return hnp.arrays(np.float64, st.tuples(st.integers(1, max_n), st.integers(1, max_d)), elements=elements)


def _expected_message(exc):
    text = str(exc)
    assert text and "Invoked with" not in text and "incompatible function arguments" not in text, text
    assert len(text) < 600, text


@FUZZ
@given(
    X=st.one_of(_matrix(), _matrix(elements=anything_float)), n_patterns=int_values, seed=int_values, bias=bias_values
)
def test_sample_and_enumerate_patterns(X, n_patterns, seed, bias):
    before = X.copy()
    for call in (
        lambda: cnn.sample_patterns(X, n_patterns, seed=seed, bias=bias),
        lambda: cnn.enumerate_patterns(X, bias=bias, max_patterns=n_patterns),
    ):
        try:
            pats = call()
        except EXPECTED as exc:
            _expected_message(exc)
        else:
            assert pats.n_samples == X.shape[0] and pats.dense().shape == (X.shape[0], pats.n_patterns)
    np.testing.assert_array_equal(X, before)


@FUZZ
@given(
    X=_matrix(),
    G=st.one_of(
        hnp.arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(0, 4)), elements=anything_float),
        st.lists(st.lists(finite, max_size=3), max_size=3),
    ),
    bias=bias_values,
)
def test_patterns_from_gates(X, G, bias):
    try:
        pats = cnn.Patterns.from_gates(X, G, bias=bias)
    except EXPECTED as exc:
        _expected_message(exc)
    else:
        assert pats.n_patterns >= 0


@FUZZ
@given(
    X=_matrix(max_n=12),
    seed=st.integers(0, 2**64 - 1),
    loss=st.sampled_from(["squared", "logistic", "hinge", "squared_hinge"]),
    formulation=st.sampled_from(["gated", "relu"]),
    bias=st.booleans(),
    ratio=st.floats(1e-3, 1.5),
    data=st.data(),
)
def test_solve_certificates_are_honest(X, seed, loss, formulation, bias, ratio, data):
    n = X.shape[0]
    if loss == "squared":
        y = data.draw(hnp.arrays(np.float64, n, elements=finite))
    else:
        y = data.draw(hnp.arrays(np.float64, n, elements=st.sampled_from([-1.0, 1.0])))
    X0, y0 = X.copy(), y.copy()
    try:
        pats = cnn.sample_patterns(X, 6, seed=seed, bias=bias)
        bmax = cnn.beta_max(X, y, pats, loss=loss, bias=bias)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = cnn.solve(
                X,
                y,
                ratio * bmax,
                patterns=pats,
                formulation=formulation,
                loss=loss,
                bias=bias,
                max_iter=300,
                time_limit=5.0,
            )
    except EXPECTED as exc:
        _expected_message(exc)
        return
    finally:
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)
    zero = _core.loss_value(np.zeros((n, 1)), y.reshape(n, 1), loss)
    if res.status != "diverged":
        scale = 1e-7 * max(1.0, abs(res.objective), zero)
        assert res.dual_objective <= res.objective + scale
        assert res.dual_objective <= zero + scale  # the zero network is feasible: a valid bound is below it
        assert res.objective <= zero + scale or res.status != "converged"
    if formulation == "relu" and res.status == "converged":
        assert res.max_violation <= 1e-5


@FUZZ
@given(
    W1=st.one_of(
        hnp.arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(1, 4)), elements=anything_float),
        st.lists(st.lists(finite, max_size=3), max_size=3),
    ),
    w2=hnp.arrays(np.float64, st.integers(0, 4), elements=finite),
    bias=bias_values,
    X=_matrix(max_d=4),
)
def test_networks(W1, w2, bias, X):
    for build in (
        lambda: cnn.Network(W1, w2, bias=bias),
        lambda: cnn.GatedNetwork(np.ones(np.shape(W1)[::-1]) if np.ndim(W1) == 2 else W1, W1, w2, bias=bias),
    ):
        try:
            net = build()
            out = net.predict(X)
        except EXPECTED as exc:
            _expected_message(exc)
        else:
            assert out.shape[0] == X.shape[0] and np.isfinite(out).all()


@FUZZ
@given(
    X=_matrix(max_n=12),
    labels=st.sampled_from([None, ("a", "b"), (0, 1), (0.0, 2.5), (1, 2, 3)]),
    n_patterns=st.one_of(st.integers(-1, 8), st.just(2.5)),
    bias=bias_values,
    verbose=st.one_of(st.integers(-1, 1), st.booleans(), st.just("x")),
    data=st.data(),
)
def test_estimators(X, labels, n_patterns, bias, verbose, data):
    n = X.shape[0]
    if labels is None:
        est, y = cnn.ConvexReLURegressor, data.draw(hnp.arrays(np.float64, n, elements=finite))
    else:
        est = cnn.ConvexReLUClassifier
        y = np.array(data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
    X0 = X.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = est(formulation="gated", n_patterns=n_patterns, bias=bias, verbose=verbose, max_iter=200).fit(X, y)
            pred = model.predict(X)
    except EXPECTED as exc:
        _expected_message(exc)
    else:
        assert pred.shape[0] == n
    np.testing.assert_array_equal(X, X0)


tokens = st.sampled_from(
    [
        "fit",
        "predict",
        "report",
        "--target",
        "t",
        "--output",
        "--beta",
        "-1",
        "1e400",
        "nan",
        "--n-patterns",
        "0",
        "99999999999999999999",
        "--task",
        "regression",
        "--dtype",
        "float16",
        "--seed",
        "-3",
        "--max-iter",
        "--tol",
        "0",
        "--loss",
        "hinge",
        "--formulation",
        "gated",
        "DATA",
        "MODEL",
        "--json",
        "--device",
        "cuda",
        "-v",
    ]
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(argv=st.lists(tokens, min_size=1, max_size=10))
def test_cli_never_crashes(tmp_path_factory, argv):
    tmp = tmp_path_factory.mktemp("cli")
    data = tmp / "d.csv"
    data.write_text("a,b,t\n0.1,0.2,1\n0.3,-0.4,0\n-0.5,0.6,1\n0.7,0.8,0\n")
    argv = [str(data) if a == "DATA" else str(tmp / "m.npz") if a == "MODEL" else a for a in argv]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(argv)
    except SystemExit as exc:  # argparse: bad usage
        code = exc.code
    assert code in (0, 2)

"""Estimators (sample_weight, max_neurons, warm_start, verbose levels, float32 out, labels) and the command line
(task detection, broken pipe, one-row files, damaged metadata, the CSV fast path)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import convexnn as cnn
from convexnn import io
from convexnn.cli import main
from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, np.maximum(X[:, 0], 0) + 0.1 * rng.standard_normal(n)


def test_integer_sample_weights_equal_repeated_rows():
    X, y = _data()
    w = np.random.default_rng(1).integers(0, 3, len(y))
    a = ConvexReLURegressor(formulation="gated", n_patterns=30).fit(X, y, sample_weight=w)
    b = ConvexReLURegressor(formulation="gated", n_patterns=30).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_real_sample_weights_minimize_the_weighted_objective():
    X, y = _data()
    w = np.random.default_rng(2).uniform(0.2, 2.0, len(y))
    est = ConvexReLURegressor(formulation="gated", n_patterns=30, tol=1e-9, standardize=False).fit(
        X, y, sample_weight=w
    )
    res = cnn.solve(X, y, est.beta_, patterns=est.result_.patterns, bias=True, tol=1e-9, sample_weight=w)
    np.testing.assert_allclose(est.objective_, res.objective, rtol=1e-8)
    with pytest.raises(ValueError, match="needs integer weights"):
        ConvexReLUClassifier(formulation="gated").fit(X, y > 0.5, sample_weight=w)


def test_float32_in_float32_out():
    X, y = _data()
    X32 = X.astype(np.float32)
    reg = ConvexReLURegressor(formulation="gated", n_patterns=20).fit(X32, y)
    assert reg.predict(X32).dtype == np.float32 and reg.predict(X).dtype == np.float64
    clf = ConvexReLUClassifier(formulation="gated", n_patterns=20).fit(X32, y > 0.5)
    assert clf.predict_proba(X32).dtype == np.float32 and clf.decision_function(X32).dtype == np.float32


@pytest.mark.parametrize("formulation, cap", [("gated", 3), ("relu", 4)])
def test_max_neurons_caps_the_width(formulation, cap):
    X, y = _data()
    free = ConvexReLURegressor(formulation=formulation, n_patterns=30, beta_ratio=1e-3).fit(X, y)
    assert free.network_.n_neurons > cap
    est = ConvexReLURegressor(formulation=formulation, n_patterns=30, beta_ratio=1e-3, max_neurons=cap).fit(X, y)
    assert 0 < est.network_.n_neurons <= cap and est.n_patterns_ <= cap
    assert est.dual_objective_ <= est.objective_ * (1 + 1e-9)


def test_warm_start_reuses_the_previous_solution():
    X, y = _data()
    est = ConvexReLURegressor(formulation="gated", n_patterns=30, warm_start=True, tol=1e-9).fit(X, y)
    first = est.n_iter_
    est.fit(X, y)  # same problem: starts at the optimum
    assert est.n_iter_ < first and est.status_ == "converged"


def test_verbose_levels(capsys):
    X, y = _data()
    ConvexReLURegressor(formulation="gated", n_patterns=10, verbose=1).fit(X, y)
    assert "convexnn gated" in capsys.readouterr().err
    with pytest.raises(ValueError, match="verbose must be >= 0"):
        ConvexReLURegressor(verbose=-1).fit(X, y)
    with pytest.raises(TypeError, match="verbose must be a bool or an int"):
        ConvexReLURegressor(verbose="loud").fit(X, y)


def test_float_labels_message_says_what_to_do():
    X, y = _data()
    with pytest.raises(ValueError, match=r"y.astype\(str\)"):
        ConvexReLUClassifier(formulation="gated").fit(X, np.where(y > 0.5, 0.0, 2.5))
    est = ConvexReLUClassifier(formulation="gated", n_patterns=20).fit(X, np.where(y > 0.5, 0.0, 2.5).astype(str))
    assert list(est.classes_) == ["0.0", "2.5"]


def test_sparse_input_is_refused():
    sp = pytest.importorskip("scipy.sparse")
    X, y = _data()
    with pytest.raises(TypeError, match="[Ss]parse"):
        ConvexReLURegressor(formulation="gated").fit(sp.csr_matrix(X), y)


# ---- command line ----------------------------------------------------------------------------------------------


def _csv(path, header, rows):
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(str(v) for v in r) + "\n")
    return str(path)


def test_csv_fast_path_equals_the_careful_reader(tmp_path, monkeypatch):
    X, y = _data()
    path = _csv(tmp_path / "d.csv", ["a", "b", "c", "t"], np.column_stack([X, y]).tolist())
    fast = io.read_data(path, target="t")
    monkeypatch.setattr(io, "_read_csv_fast", lambda *a: None)
    slow = io.read_data(path, target="t")
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert fast[2] == slow[2]


def test_ragged_or_bad_csv_keeps_line_and_column_messages(tmp_path):
    ragged = tmp_path / "r.csv"
    ragged.write_text("a,b,t\n1,2,3\n4,5,6,7\n")
    with pytest.raises(ValueError, match="line 3: 4 fields"):
        io.read_data(str(ragged), target="t")
    bad = tmp_path / "b.csv"
    bad.write_text("a,b,t\n1,2,3\n4,x,6\n")
    with pytest.raises(ValueError, match="line 3, column 'b'"):
        io.read_data(str(bad), target="t")


def test_one_row_fit_saves_an_undefined_score(tmp_path, capsys):
    path = _csv(tmp_path / "one.csv", ["x", "t"], [[0.5, 1.7]])
    model = str(tmp_path / "m.npz")
    assert main(["fit", path, "--target", "t", "--output", model, "--formulation", "gated"]) == 0
    assert "undefined" in capsys.readouterr().out
    assert io.read_metadata(model)["data"]["train_score"] is None
    assert main(["report", model]) == 0


def test_metadata_with_lists_is_not_a_model(tmp_path, capsys):
    X, y = _data()
    est = ConvexReLURegressor(formulation="gated", n_patterns=10).fit(X, y)
    model = str(tmp_path / "m.npz")
    io.save(est, model)
    with np.load(model) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["metadata"].tobytes())
    meta["network"] = [1, 2]
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(model, **arrays)
    assert main(["report", model]) == 2
    err = capsys.readouterr().err
    assert "not a convexnn model file" in err and "Traceback" not in err


def test_report_json_into_a_closed_pipe_exits_0(tmp_path):
    X, y = _data()
    model = str(tmp_path / "m.npz")
    io.save(ConvexReLURegressor(formulation="gated", n_patterns=10).fit(X, y), model)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = f"{sys.executable} -m convexnn report {model} --json | head -n 1"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{" and "Broken pipe" not in out.stderr


def test_help_shows_examples_and_option_help(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--dtype" in text and "--verbose" in text
    assert "iteration cap" in text and "relative duality gap" in text and "not available" in text


@pytest.mark.parametrize("class_weight", [{0: 1.0, 1: 3.0}, "balanced", None])
def test_model_file_keeps_class_weight(tmp_path, class_weight):
    """A dict class_weight (label -> weight, int labels) survives save/load with its key types."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    est = ConvexReLUClassifier(formulation="gated", n_patterns=10, loss="squared", class_weight=class_weight)
    est.fit(X, y)
    path = tmp_path / "m.npz"
    io.save(est, path)
    back = io.load(path)
    assert back.get_params()["class_weight"] == class_weight
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_model_file_with_a_foreign_dict_parameter_is_refused(tmp_path):
    est = ConvexReLURegressor(formulation="gated", n_patterns=10).fit(np.eye(5), np.arange(5.0))
    path = tmp_path / "m.npz"
    io.save(est, path)
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    meta = json.loads(arrays["metadata"].tobytes().decode("utf-8"))
    meta["params"]["tol"] = {"x": 1}
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="parameter in the model file"):
        io.load(path)

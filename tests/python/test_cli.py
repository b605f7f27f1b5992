"""Model files (save / load / read_metadata) and the command line: fit, predict, report, and clean errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

import convexnn as cnn
from convexnn import io
from convexnn.__main__ import main
from convexnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

# ---- model files ------------------------------------------------------------------------------------------------


def _reg_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1, 10, 0.1] + [0, 5, 1]
    y = 3 + np.maximum(X[:, 0], 0) - 0.1 * X[:, 1] + 0.05 * rng.standard_normal(n)
    return X, y


def _cls_data(n=50, seed=0, labels=("no", "yes")):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, np.where((X**2).sum(1) < 1.2, labels[1], labels[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda: (ConvexReLURegressor(formulation="gated", n_patterns=30), _reg_data()),
        lambda: (ConvexReLURegressor(formulation="gated", n_patterns=30, bias=False, standardize=False), _reg_data()),
        lambda: (ConvexReLUClassifier(formulation="gated", n_patterns=30), _cls_data()),
        lambda: (ConvexReLUClassifier(formulation="gated", n_patterns=30), _cls_data(labels=(4, 9))),
        lambda: (ConvexReLUClassifier(formulation="gated", n_patterns=30), (_cls_data(90)[0], np.arange(90) % 3)),
    ],
)
def test_save_load_roundtrip(tmp_path, make):
    est, (X, y) = make()
    est.fit(X, y)
    path = tmp_path / "model.npz"
    io.save(est, path, data={"source": "unit test"})
    back = io.load(path)
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    for attr in ("objective_", "dual_objective_", "gap_", "status_", "n_iter_", "beta_", "beta_max_", "n_patterns_"):
        assert getattr(back, attr) == getattr(est, attr), attr
    assert back.result_ is None
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(back.classes_, est.classes_)
        np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X), rtol=1e-14)
    meta = io.read_metadata(path)
    assert meta["convexnn_version"] == cnn.__version__
    assert meta["format"] == "convexnn-model" and meta["format_version"] == io.FORMAT_VERSION
    assert meta["data"] == {"source": "unit test"}
    assert meta["certificate"]["solver"] == est.result_.solver
    # No pickled objects inside: the archive loads with allow_pickle=False.
    with np.load(path, allow_pickle=False) as archive:
        assert "metadata" in archive.files and "W1" in archive.files


def test_save_load_bare_networks(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 2))
    for net in (
        cnn.Network(rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), bias=True),
        cnn.GatedNetwork(rng.standard_normal((2, 4)), rng.standard_normal((4, 2)), rng.standard_normal(4)),
    ):
        io.save(net, tmp_path / "net.npz")
        back = io.load(tmp_path / "net.npz")
        assert type(back) is type(net)
        np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.load(tmp_path / "missing.npz")
    text = tmp_path / "text.npz"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a convexnn model file"):
        io.load(text)
    np.savez(tmp_path / "plain.npz", X=np.ones((2, 2)))
    with pytest.raises(ValueError, match="no metadata"):
        io.load(tmp_path / "plain.npz")
    np.savez(tmp_path / "badjson.npz", metadata=np.frombuffer(b"{not json", dtype=np.uint8))
    with pytest.raises(ValueError, match="not valid JSON"):
        io.load(tmp_path / "badjson.npz")
    est = ConvexReLURegressor(formulation="gated", n_patterns=10).fit(*_reg_data())
    io.save(est, tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        arrays = dict(archive)
    meta = json.loads(arrays["metadata"].tobytes())
    meta["format_version"] = io.FORMAT_VERSION + 1
    newer = dict(arrays, metadata=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    np.savez(tmp_path / "newer.npz", **newer)
    with pytest.raises(ValueError, match="upgrade convexnn"):
        io.load(tmp_path / "newer.npz")
    del arrays["W1"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ValueError, match=r"missing the arrays \['W1'\]"):
        io.load(tmp_path / "partial.npz")
    with pytest.raises(ValueError, match="not fitted"):
        io.save(ConvexReLURegressor(), tmp_path / "unfitted.npz")
    with pytest.raises(TypeError, match="save expects"):
        io.save(object(), tmp_path / "object.npz")


# ---- command line -------------------------------------------------------------------------------------------------


def _write_csv(path, header, rows):
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for row in rows:
            fh.write(",".join(str(v) for v in row) + "\n")
    return str(path)


@pytest.fixture
def reg_csv(tmp_path):
    X, y = _reg_data()
    return _write_csv(
        tmp_path / "reg.csv", ["age", "dose", "weight", "response"], [list(x) + [t] for x, t in zip(X, y)]
    )


@pytest.fixture
def cls_csv(tmp_path):
    X, y = _cls_data()
    return _write_csv(tmp_path / "cls.csv", ["x1", "label", "x2"], [[x[0], t, x[1]] for x, t in zip(X, y)])


def test_fit_predict_report_regression(tmp_path, reg_csv, capsys):
    model = str(tmp_path / "reg.model")
    assert (
        main(
            [
                "fit",
                reg_csv,
                "--target",
                "response",
                "--output",
                model,
                "--formulation",
                "gated",
                "--n-patterns",
                "30",
                "--beta-ratio",
                "0.02",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "rel_gap=" in out and "model saved to" in out
    est = io.load(model)
    assert isinstance(est, ConvexReLURegressor) and est.beta_ == pytest.approx(0.02 * est.beta_max_)
    X, y = _reg_data()
    np.testing.assert_array_equal(
        est.predict(X), ConvexReLURegressor(formulation="gated", n_patterns=30, beta_ratio=0.02).fit(X, y).predict(X)
    )
    pred_path = str(tmp_path / "pred.csv")
    assert main(["predict", model, reg_csv, "--output", pred_path]) == 0
    captured = capsys.readouterr()
    assert "R^2 against the 'response' column" in captured.err
    lines = open(pred_path).read().splitlines()
    assert lines[0] == "predicted_response" and len(lines) == 51
    np.testing.assert_allclose([float(v) for v in lines[1:]], est.predict(X), rtol=1e-15)
    assert main(["report", model]) == 0
    report = capsys.readouterr().out
    for word in (
        "ConvexReLURegressor",
        "objective=",
        "dual_bound=",
        "rel_gap=",
        "neurons",
        "reg.csv",
        "'response'",
        cnn.__version__,
    ):
        assert word in report
    assert main(["report", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["feature_names"] == ["age", "dose", "weight"]


def test_fit_predict_classification_with_labels_and_column_order(tmp_path, cls_csv, capsys):
    model = str(tmp_path / "cls.npz")
    assert (
        main(["fit", cls_csv, "--target", "label", "--output", model, "--formulation", "gated", "--n-patterns", "40"])
        == 0
    )
    assert "loss=logistic" in capsys.readouterr().out
    est = io.load(model)
    assert list(est.classes_) == ["no", "yes"]
    # Prediction data with the columns in another order and without the target: matched by name.
    X, _ = _cls_data()
    shuffled = _write_csv(tmp_path / "new.csv", ["x2", "extra", "x1"], [[x[1], "z", x[0]] for x in X])
    assert main(["predict", model, shuffled]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "predicted_label,proba_no,proba_yes"
    assert [row.split(",")[0] for row in out[1:]] == list(est.predict(X))
    np.testing.assert_allclose([float(row.split(",")[2]) for row in out[1:]], est.predict_proba(X)[:, 1])


def test_fit_on_npz_and_numeric_classes(tmp_path, capsys):
    X, y = _cls_data(labels=(0, 1))
    data = str(tmp_path / "data.npz")
    np.savez(data, X=X, y=y)
    model = str(tmp_path / "m.npz")
    assert main(["fit", data, "--output", model, "--formulation", "gated", "--task", "classification"]) == 0
    assert list(io.load(model).classes_) == [0.0, 1.0]
    assert main(["fit", data, "--output", model, "--formulation", "gated", "--loss", "hinge"]) == 0
    assert io.load(model).loss_ == "hinge"
    capsys.readouterr()
    assert main(["fit", data, "--output", model, "--formulation", "gated"]) == 0  # a 0/1 target: classification
    assert isinstance(io.load(model), ConvexReLUClassifier) and "task: classification" in capsys.readouterr().out
    assert main(["fit", data, "--output", model, "--formulation", "gated", "--task", "regression"]) == 0
    assert isinstance(io.load(model), ConvexReLURegressor)
    capsys.readouterr()
    assert main(["predict", model, data]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "predicted_y"


def test_fit_relu_formulation_on_a_tiny_file(tmp_path, capsys):
    X, y = _reg_data(n=30)
    data = _write_csv(tmp_path / "tiny.csv", ["a", "b", "c", "t"], [list(x) + [v] for x, v in zip(X, y)])
    model = str(tmp_path / "tiny.npz")
    assert main(["fit", data, "--target", "t", "--output", model, "--n-patterns", "6"]) == 0
    est = io.load(model)
    assert est.formulation == "relu" and isinstance(est.network_, cnn.Network)
    assert io.read_metadata(model)["certificate"]["formulation"] == "relu"
    one = _write_csv(tmp_path / "one.csv", ["x", "t"], [[x[0], abs(x[0])] for x in X])
    assert main(["fit", one, "--target", "t", "--output", model, "--n-patterns", "3", "--cutting-planes"]) == 0
    assert "certified_global=True" in capsys.readouterr().out
    assert main(["report", model]) == 0
    assert "certified_global=True" in capsys.readouterr().out
    assert io.load(model).certified_global_ is True


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_bad_input_exits_2_with_one_line(tmp_path, reg_csv, cls_csv, capsys):
    out = str(tmp_path / "m.npz")
    cases = [
        (["fit", str(tmp_path / "nope.csv"), "--target", "y", "--output", out], ["does not exist"]),
        (["fit", reg_csv, "--output", out], ["--target"]),
        (["fit", reg_csv, "--target", "nope", "--output", out], ["no column 'nope'", "response"]),
        (
            ["fit", reg_csv, "--target", "response", "--output", out, "--beta", "1", "--beta-ratio", "0.1"],
            ["not allowed with"],
        ),
        (
            ["fit", reg_csv, "--target", "response", "--output", out, "--beta", "-1", "--formulation", "gated"],
            ["beta must be >= 0"],
        ),
        (["fit", reg_csv, "--target", "response", "--output", out, "--loss", "logistic"], ["Unknown label type"]),
        (["fit", cls_csv, "--target", "label", "--output", out, "--task", "regression"], ["holds labels"]),
        (["fit", cls_csv, "--target", "label", "--output", out, "--loss", "squared"], ["holds labels"]),
        (["fit", reg_csv, "--target", "response", "--output", out, "--n-patterns", "many"], ["invalid int"]),
        (["frobnicate"], ["invalid choice"]),
        (["predict", reg_csv, reg_csv], ["not a convexnn model file"]),
        (["report", str(tmp_path)], ["is a directory"]),
        (["report", str(tmp_path / "missing.npz")], ["does not exist"]),
    ]
    try:
        from convexnn import _cuda  # noqa: F401
    except ImportError:  # a CPU-only build must refuse the GPU with a reason
        cases.append(
            (
                ["fit", reg_csv, "--target", "response", "--output", out, "--formulation", "gated", "--device", "cuda"],
                ["device='cuda'"],
            )
        )
    for argv, fragments in cases:
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse usage errors
            status = exc.code
        assert status == 2, argv
        _one_line_error(capsys, *fragments)


@pytest.mark.parametrize(
    "content,fragments",
    [
        ("a,b,y\n1,2,3\n4,5\n", ["line 3", "2 fields"]),
        ("a,b,y\n1,2,3\n4,x,6\n", ["line 3", "column 'b'", "'x', not a number"]),
        ("a,b,y\n1,2,3\n4,,6\n", ["line 3", "column 'b'", "missing value"]),
        ("a,b,y\n1,nan,3\n4,5,6\n", ["line 2", "column 'b'", "NaN/Inf"]),
        ("a,b,y\n1,2,3\n4,5,\n", ["line 3", "missing target"]),
        ("a,a,y\n1,2,3\n", ["duplicate column names ['a']"]),
        ("a,b,y\n", ["no data rows"]),
        ("", ["is empty"]),
    ],
)
def test_malformed_csv_files(tmp_path, capsys, content, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["fit", str(path), "--target", "y", "--output", str(tmp_path / "m.npz"), "--formulation", "gated"]) == 2
    _one_line_error(capsys, *fragments)


def test_predict_needs_the_model_features(tmp_path, reg_csv, capsys):
    model = str(tmp_path / "m.npz")
    assert (
        main(
            ["fit", reg_csv, "--target", "response", "--output", model, "--formulation", "gated", "--n-patterns", "10"]
        )
        == 0
    )
    missing = _write_csv(tmp_path / "missing.csv", ["age", "weight"], [[1, 2]])
    assert main(["predict", model, missing]) == 2
    _one_line_error(capsys, "lacks the feature columns ['dose']")
    wrong = str(tmp_path / "wrong.npz")
    np.savez(wrong, X=np.ones((3, 2)))
    assert main(["predict", model, wrong]) == 2
    _one_line_error(capsys, "X has 2 columns but the model expects 3")


def test_predict_with_unseen_labels_warns_but_predicts(tmp_path, cls_csv, capsys):
    model = str(tmp_path / "m.npz")
    assert (
        main(["fit", cls_csv, "--target", "label", "--output", model, "--formulation", "gated", "--n-patterns", "10"])
        == 0
    )
    capsys.readouterr()
    other = _write_csv(tmp_path / "other.csv", ["x1", "label", "x2"], [[0.1, "maybe", 0.2], [2.0, "no", 2.0]])
    assert main(["predict", model, other]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    assert "labels not seen in fit: ['maybe']" in captured.err


def test_subprocess_exit_status_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,2\nzz,3\n")
    out = subprocess.run(
        [sys.executable, "-m", "convexnn", "fit", str(bad), "--target", "y", "--output", str(tmp_path / "m.npz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith("convexnn fit: error:") and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    ok = subprocess.run(
        [sys.executable, "-m", "convexnn", "fit", "--help"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0 and "--beta-ratio" in ok.stdout

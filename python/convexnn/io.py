"""Model files: save a fitted estimator (or a bare network) and read it back.

A model file is one ``.npz`` archive (read with ``allow_pickle=False``: loading a file never runs code) holding

* ``metadata``: UTF-8 JSON (as a uint8 array) with ``format`` ("convexnn-model"), ``format_version``, the
  ``convexnn_version`` that wrote it, the model ``kind``, the estimator parameters, the certificate of the solve
  (objective, dual bound, gap, status, ...), the network size and an optional ``data`` summary;
* the arrays: ``W1`` (m, d[+1]), ``w2`` (m,) or (m, c), ``gates`` (d[+1], m; gated networks only), and for
  estimators ``x_mean``, ``x_scale`` (n_features,), ``y_mean`` (regressor), ``classes`` (classifier),
  ``feature_names`` (when the training data had column names).

Use :func:`save` / :func:`load` (``convexnn.load``) and :func:`read_metadata` for the JSON part alone.
A loaded estimator predicts exactly like the saved one; its ``result_`` is None (the patterns and the training
data are not stored), its certificate attributes (``objective_``, ``gap_``, ...) are restored.
"""

from __future__ import annotations

import datetime
import json
import os
import zipfile

import numpy as np

FORMAT = "convexnn-model"
FORMAT_VERSION = 1

_CERT_ATTRS = (
    "objective_",
    "dual_objective_",
    "gap_",
    "status_",
    "n_iter_",
    "max_violation_",
    "beta_",
    "beta_max_",
    "n_patterns_",
    "certified_global_",
)


def _library_version():
    from . import _core

    return str(_core.__version__)


def _jsonable(value):
    """Parameters as JSON values; objects JSON cannot hold (a RandomState, a numpy dtype) become strings or None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (np.dtype, type)):
        try:
            return np.dtype(value).name
        except TypeError:
            return None
    if isinstance(value, dict):  # e.g. class_weight {label: weight}: JSON keys are strings, so keep (key, value) pairs
        pairs = [[_jsonable(k), _jsonable(v)] for k, v in value.items()]
        if all(k is not None and v is not None for k, v in pairs):
            return {_DICT_TAG: pairs}
    return None


# The JSON form of a dict-valued parameter: {"__dict_items__": [[key, value], ...]} (keys keep their type).
_DICT_TAG = "__dict_items__"


def _param_value(value):
    """A parameter read back from the model file (the inverse of :func:`_jsonable` for dicts)."""
    if isinstance(value, dict) and set(value) == {_DICT_TAG} and isinstance(value[_DICT_TAG], list):
        pairs = value[_DICT_TAG]
        if all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int, float, bool)) for p in pairs):
            return {k: v for k, v in pairs}
    if isinstance(value, (dict, list)):
        raise ValueError(f"a parameter in the model file is not a value convexnn writes: {value!r:.80}")
    return value


def _float_json(x):
    x = float(x)
    return x if np.isfinite(x) else repr(x)  # JSON has no inf/nan: "inf", "nan"


def _network_arrays(net):
    from .network import GatedNetwork

    arrays = {"W1": np.asarray(net.W1, dtype=np.float64), "w2": np.asarray(net.w2, dtype=np.float64)}
    if isinstance(net, GatedNetwork):
        arrays["gates"] = np.asarray(net.gates, dtype=np.float64)
    info = {
        "type": type(net).__name__,
        "bias": bool(net.bias),
        "n_neurons": int(net.n_neurons),
        "n_features": int(net.n_features),
        "n_outputs": 1 if net.w2.ndim == 1 else int(net.w2.shape[1]),
    }
    return arrays, info


def _labels_array(classes):
    classes = np.asarray(classes)
    if classes.dtype.kind in "biufU":
        return classes
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        return classes.astype(str)
    raise ValueError(
        f"cannot save class labels of dtype {classes.dtype} (only numbers, booleans or strings): {classes.tolist()[:5]}"
    )


def save(model, path, data=None):
    """Write a fitted estimator, Network or GatedNetwork to ``path`` (an .npz archive, see the module docstring).

    Parameters
    ----------
    model : ConvexReLURegressor, ConvexReLUClassifier, Network or GatedNetwork
    path : str or os.PathLike
        Written as given (no extension is added; ``.npz`` is customary).
    data : dict, optional
        JSON-serializable summary of the training data (e.g. source file, target column) stored in the metadata.

    Returns
    -------
    path
    """
    from .estimators import ConvexReLUClassifier, ConvexReLURegressor
    from .network import GatedNetwork, Network

    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "convexnn_version": _library_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if isinstance(model, (Network, GatedNetwork)):
        arrays, meta["network"] = _network_arrays(model)
        meta["kind"] = type(model).__name__
    elif isinstance(model, (ConvexReLURegressor, ConvexReLUClassifier)):
        if not hasattr(model, "network_"):
            raise ValueError(f"{type(model).__name__} is not fitted yet; call fit before save")
        arrays, meta["network"] = _network_arrays(model.network_)
        meta["kind"] = type(model).__name__
        meta["params"] = {k: _jsonable(v) for k, v in model.get_params(deep=False).items()}
        cert = {a.rstrip("_"): getattr(model, a) for a in _CERT_ATTRS}
        meta["certificate"] = {
            k: (v if isinstance(v, (str, bool)) else _float_json(v) if isinstance(v, float) else int(v))
            for k, v in cert.items()
        }
        if model.result_ is not None:
            meta["certificate"].update(
                solver=str(model.result_.solver),
                time=_float_json(model.result_.time),
                formulation=str(model.result_.formulation),
            )
        meta["n_features_in"] = int(model.n_features_in_)
        arrays["x_mean"] = np.asarray(model.x_mean_, dtype=np.float64)
        arrays["x_scale"] = np.asarray(model.x_scale_, dtype=np.float64)
        if hasattr(model, "feature_names_in_"):
            arrays["feature_names"] = np.asarray(model.feature_names_in_).astype(str)
        if isinstance(model, ConvexReLURegressor):
            arrays["y_mean"] = np.asarray(model.y_mean_, dtype=np.float64)
        else:
            arrays["classes"] = _labels_array(model.classes_)
            meta["loss"] = model.loss_
    else:
        raise TypeError(
            f"save expects a fitted ConvexReLURegressor / ConvexReLUClassifier or a Network / "
            f"GatedNetwork; got {type(model).__name__}"
        )
    if data is not None:
        meta["data"] = data
    try:
        blob = json.dumps(meta, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data must be JSON-serializable: {exc}") from exc
    arrays["metadata"] = np.frombuffer(blob, dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def _open(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {os.fspath(path)!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"model file {os.fspath(path)!r} is a directory")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a convexnn model file (not a readable .npz archive)") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{os.fspath(path)!r} is not a convexnn model file (a bare .npy array, not an .npz archive)")
    try:
        arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{os.fspath(path)!r} is a damaged .npz archive: {exc}") from exc
    finally:
        archive.close()
    if "metadata" not in arrays:
        raise ValueError(f"{os.fspath(path)!r} is an .npz archive but not a convexnn model file (no metadata entry)")
    try:
        meta = json.loads(arrays.pop("metadata").astype(np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{os.fspath(path)!r}: the model metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(
            f"{os.fspath(path)!r} is not a convexnn model file (metadata format is "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r})"
        )
    for key in ("network", "params", "certificate", "data"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], dict):
            raise ValueError(
                f"{os.fspath(path)!r} is not a convexnn model file (its metadata field {key!r} is a "
                f"{type(meta[key]).__name__}, not an object)"
            )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} has model format version {version!r}, written by convexnn "
            f"{meta.get('convexnn_version')}; this convexnn ({_library_version()}) reads up to version "
            f"{FORMAT_VERSION}: upgrade convexnn"
        )
    return meta, arrays


def read_metadata(path):
    """The JSON metadata of a model file as a dict (format, versions, kind, params, certificate, network, data)."""
    return _open(path)[0]


def _need(arrays, path, *names):
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"{os.fspath(path)!r}: model file is missing the arrays {missing}")


def _build_network(meta, arrays, path):
    from .network import GatedNetwork, Network

    info = meta.get("network")
    if not isinstance(info, dict) or info.get("type") not in ("Network", "GatedNetwork"):
        raise ValueError(f"{os.fspath(path)!r}: metadata has no valid 'network' entry")
    _need(arrays, path, "W1", "w2")
    if info["type"] == "GatedNetwork":
        _need(arrays, path, "gates")
        return GatedNetwork(arrays["gates"], arrays["W1"], arrays["w2"], bias=bool(info.get("bias", False)))
    return Network(arrays["W1"], arrays["w2"], bias=bool(info.get("bias", False)))


def _certificate_value(v):
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    return v


def load(path):
    """Read a model file written by :func:`save`.

    Returns
    -------
    ConvexReLURegressor, ConvexReLUClassifier, Network or GatedNetwork
        Estimators come back fitted (``predict`` as before saving; ``result_`` is None; the metadata is in
        ``model_metadata_``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a convexnn model file, damaged, or written in a newer format version.
    """
    from .estimators import ConvexReLUClassifier, ConvexReLURegressor

    meta, arrays = _open(path)
    net = _build_network(meta, arrays, path)
    kind = meta.get("kind")
    if kind in ("Network", "GatedNetwork"):
        return net
    classes = {"ConvexReLURegressor": ConvexReLURegressor, "ConvexReLUClassifier": ConvexReLUClassifier}
    if kind not in classes:
        raise ValueError(f"{os.fspath(path)!r}: unknown model kind {kind!r}")
    est = classes[kind]()
    params = meta.get("params") or {}
    valid = est.get_params(deep=False)
    est.set_params(**{k: _param_value(v) for k, v in params.items() if k in valid})
    _need(arrays, path, "x_mean", "x_scale")
    est.network_ = net
    est.result_ = None
    est.x_mean_, est.x_scale_ = arrays["x_mean"], arrays["x_scale"]
    est.n_features_in_ = int(meta.get("n_features_in", len(est.x_mean_)))
    if "feature_names" in arrays:
        est.feature_names_in_ = arrays["feature_names"].astype(object)
    cert = meta.get("certificate") or {}
    for attr in _CERT_ATTRS:
        key = attr.rstrip("_")
        if key in cert:
            setattr(est, attr, _certificate_value(cert[key]))
    if kind == "ConvexReLURegressor":
        _need(arrays, path, "y_mean")
        est.y_mean_ = arrays["y_mean"]
    else:
        _need(arrays, path, "classes")
        est.classes_ = arrays["classes"]
        est.loss_ = meta.get("loss", "logistic")
    est.model_metadata_ = meta
    return est


# ---- data files for the command line ---------------------------------------------------------------------------


def _parse_float(text):
    try:
        return float(text)
    except ValueError:
        return None


def read_csv_table(path):
    """A CSV file with a header row as (column names, rows of strings); ValueError for a malformed file."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            rows = list(csv.reader(fh))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{os.fspath(path)!r} is not a readable CSV file: {exc}") from exc
    rows = [r for r in rows if any(field.strip() for field in r)]  # blank lines carry no data
    if not rows:
        raise ValueError(f"{os.fspath(path)!r} is empty (a header row and data rows are expected)")
    header = [name.strip() for name in rows[0]]
    if any(not name for name in header):
        raise ValueError(f"{os.fspath(path)!r}: the header row has an empty column name")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ValueError(f"{os.fspath(path)!r}: duplicate column names {duplicates}")
    body = rows[1:]
    if not body:
        raise ValueError(f"{os.fspath(path)!r} has a header but no data rows")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"{os.fspath(path)!r} line {i + 2}: {len(row)} fields, but the header has {len(header)}")
    return header, body


def _numeric_column(path, name, values, first_line=2):
    out = np.empty(len(values))
    for i, text in enumerate(values):
        v = _parse_float(text.strip())
        if v is None:
            what = "a missing value" if not text.strip() else f"{text.strip()!r}, not a number"
            raise ValueError(f"{os.fspath(path)!r} line {i + first_line}, column {name!r}: {what}")
        if not np.isfinite(v):
            raise ValueError(
                f"{os.fspath(path)!r} line {i + first_line}, column {name!r}: {text.strip()} "
                "(NaN/Inf values are not allowed)"
            )
        out[i] = v
    return out


def read_data(path, target=None, features=None, require_target=True):
    """Read a data file for fitting or prediction.

    CSV: a header row, numeric feature columns and a ``target`` column (numbers or labels). NPZ: arrays ``X``
    (n, d) and ``y`` (n,) (optionally ``feature_names``).

    Parameters
    ----------
    path : str
    target : str or None
        Name of the target column (CSV). With ``features`` given, the target may be absent.
    features : list of str or None
        Feature columns to use, in this order (prediction: the model's); None: every column but the target.
    require_target : bool

    Returns
    -------
    X : ndarray (n, d) float64
    y : ndarray (n,) (float64 when every value is a number, otherwise str) or None
    feature_names : list of str
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file {path!r} does not exist")
    if path.lower().endswith(".npz"):
        return _read_npz(path, features, require_target)
    fast = _read_csv_fast(path, target, features, require_target)
    if fast is not None:
        return fast
    header, body = read_csv_table(path)
    if target is not None and target not in header:
        if require_target:
            raise ValueError(f"{path!r} has no column {target!r}; its columns are {header}")
        target = None
    if target is None and require_target:
        raise ValueError(f"reading {path!r} needs the name of the target column (--target)")
    if features is None:
        features = [name for name in header if name != target]
        if not features:
            raise ValueError(f"{path!r} has no feature columns besides the target {target!r}")
    missing = [name for name in features if name not in header]
    if missing:
        raise ValueError(f"{path!r} lacks the feature columns {missing} (the model was fit on {list(features)})")
    columns = {name: [row[j] for row in body] for j, name in enumerate(header)}
    X = np.column_stack([_numeric_column(path, name, columns[name]) for name in features])
    y = None
    if target is not None:
        raw = [v.strip() for v in columns[target]]
        if any(not v for v in raw):
            line = next(i for i, v in enumerate(raw) if not v) + 2
            raise ValueError(f"{path!r} line {line}, column {target!r}: a missing target value")
        numbers = [_parse_float(v) for v in raw]
        if all(v is not None for v in numbers):
            y = np.array(numbers, dtype=np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"{path!r}: the target column {target!r} contains NaN or Inf")
        else:
            y = np.array(raw, dtype=str)
    return X, y, list(features)


def _read_csv_fast(path, target, features, require_target):
    """numpy.loadtxt on a well-formed CSV file (~5x faster, far less memory than the reader below), or None.

    None on anything unusual (a missing or non-numeric value, a ragged line, NaN / Inf, quoting, duplicate or
    missing columns), so that :func:`read_csv_table` reads it again and names the line and column at fault.
    """
    import csv
    import warnings

    try:
        with open(path, "rb") as fh:
            blob = fh.read()
        if b'"' in blob or b"\r" in blob:
            return None  # quoted fields or CR line ends: the careful reader
        lines = blob.splitlines()
        del blob
        header = [name.strip() for name in next(csv.reader([lines[0].decode("utf-8-sig")]))]
    except (IndexError, StopIteration, csv.Error, UnicodeDecodeError, OSError):
        return None
    if not header or any(not h for h in header) or len(set(header)) != len(header):
        return None
    commas = len(header) - 1
    if any(line.count(b",") != commas for line in lines[1:] if line.strip()):
        return None  # a ragged line: the careful reader names it
    del lines
    if target is not None and target not in header:
        if require_target:
            return None
        target = None
    if target is None and require_target:
        return None
    names = [h for h in header if h != target] if features is None else list(features)
    if not names or any(n not in header for n in names):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the careful reader says it better
            X = np.loadtxt(
                path,
                delimiter=",",
                skiprows=1,
                usecols=[header.index(n) for n in names],
                dtype=np.float64,
                ndmin=2,
                encoding="utf-8-sig",
            )
            raw = (
                None
                if target is None
                else np.loadtxt(
                    path,
                    delimiter=",",
                    skiprows=1,
                    usecols=[header.index(target)],
                    dtype=str,
                    ndmin=1,
                    encoding="utf-8-sig",
                )
            )
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    if X.shape[0] == 0 or not np.isfinite(X).all():
        return None
    y = None
    if raw is not None:
        raw = np.char.strip(raw)
        if raw.shape[0] != X.shape[0] or (raw == "").any():
            return None
        try:
            y = raw.astype(np.float64)
        except ValueError:
            y = raw.astype(str)
        else:
            if not np.isfinite(y).all():
                return None
    return X, y, names


def _read_npz(path, features, require_target):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path!r} is not a readable .npz file ({exc})") from exc
    if "X" not in arrays:
        raise ValueError(
            f"{path!r} has no array 'X' (an .npz data file holds X (n, d) and y (n,)); it has {sorted(arrays)}"
        )
    X = arrays["X"]
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"{path!r}: X must be a 2-D numeric array; got shape {X.shape}, dtype {X.dtype}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{path!r}: X contains NaN or Inf")
    names = (
        [str(v) for v in arrays["feature_names"]] if "feature_names" in arrays else [f"x{j}" for j in range(X.shape[1])]
    )
    if len(names) != X.shape[1]:
        raise ValueError(f"{path!r}: feature_names has {len(names)} entries but X has {X.shape[1]} columns")
    if features is not None:
        if len(features) != X.shape[1]:
            raise ValueError(f"{path!r}: X has {X.shape[1]} columns but the model expects {len(features)}")
        names = list(features)
    y = arrays.get("y")
    if y is None and require_target:
        raise ValueError(f"{path!r} has no array 'y' (the targets)")
    if y is not None:
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"{path!r}: y must have shape ({X.shape[0]},); got {y.shape}")
        if y.dtype.kind in "biuf":
            y = y.astype(np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"{path!r}: y contains NaN or Inf")
        elif y.dtype.kind != "U":
            raise ValueError(f"{path!r}: y must hold numbers or strings; got dtype {y.dtype}")
    return X, y, names

"""Make ``convexnn.reference`` importable for these tests even without the compiled core.

The reference is pure Python and imports nothing else from convexnn.  If ``import convexnn`` fails
(e.g. the C++ extension is not built yet), register a bare package object for ``convexnn`` whose
path is the source tree, so that ``convexnn.reference`` imports without running convexnn/__init__.
"""

import importlib
import os
import sys
import types

_PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "python"))

try:
    importlib.import_module("convexnn.reference")
except ImportError as _exc:
    _reason = f"{type(_exc).__name__}: {_exc}"
    for name in [m for m in sys.modules if m == "convexnn" or m.startswith("convexnn.")]:
        del sys.modules[name]
    _pkg = types.ModuleType("convexnn")
    _pkg.__path__ = [os.path.join(_PYTHON_DIR, "convexnn")]

    def _missing(name):
        # Other tests in the same session still see why the real package did not import.
        raise ImportError(f"convexnn.{name} is unavailable: import convexnn failed ({_reason}); "
                          "only convexnn.reference was loaded, for its own tests")

    _pkg.__getattr__ = _missing
    sys.modules["convexnn"] = _pkg
    importlib.import_module("convexnn.reference")

"""The package passes ``ruff check`` with the configuration in pyproject.toml ([tool.ruff]).

ruff is in the ``test`` extra; without it the test skips with that message.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ruff():
    found = shutil.which("ruff") or shutil.which("ruff", path=os.path.dirname(sys.executable))
    if found is None:
        pytest.skip("ruff is not installed (it is in the test extra: pip install '.[test]')")
    return found


def test_ruff_check_finds_nothing_in_the_package():
    out = subprocess.run(
        [_ruff(), "check", "--no-cache", "--output-format", "concise", "python/convexnn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"ruff check python/convexnn:\n{out.stdout}{out.stderr}"


def test_ruff_config_is_the_one_in_pyproject(tmp_path):
    """A finding is reported (the check can fail): an unused import in a scratch file under the same config."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    out = subprocess.run(
        [_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "F401" in out.stdout


def test_ruff_format_leaves_the_sources_unchanged():
    """The package, the tests and the benchmarks are in ``ruff format`` style (line length from pyproject.toml)."""
    paths = ["python/convexnn", "tests/python", "bench"]
    out = subprocess.run(
        [_ruff(), "format", "--no-cache", "--check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"ruff format --check {' '.join(paths)}:\n{out.stdout}{out.stderr}"

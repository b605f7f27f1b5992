"""The user documentation: README links stay inside the repository, the contract page names every public
function, the README's test command works with pip < 23.1, and the docs site builds where mkdocs is installed."""

import os
import re
import shutil
import subprocess

import pytest

import convexnn as cnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


def test_readme_links_resolve_inside_the_repository():
    readme = _read("README.md")
    assert "shared/spec" not in readme and "../" not in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert os.path.exists(os.path.join(ROOT, target)), target


def test_readme_test_command_avoids_pips_short_C_option():
    readme = _read("README.md")
    block = readme.split("<!-- test-command", 1)[1].split("```bash", 1)[1].split("\n")[1]
    assert " -C " not in block and "--config-settings=" in block
    assert "git clone" in readme and "OpenMP" in readme and "CMake >= 3.24" in readme


def test_contract_page_names_every_public_function():
    page = _read("docs", "api.md")
    for name in cnn.__all__:
        if name in ("__version__", "SolveResult", "Patterns", "GatedNetwork"):
            continue
        assert name in page, name
    assert "sum over samples" in page.lower() or "sums over samples" in page.lower()


def test_docs_site_builds(tmp_path):
    if shutil.which("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install '.[docs]')")
    out = subprocess.run(
        ["mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()


def test_objective_vs_time_starts_at_the_first_timing():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from convexnn import plots

    ax = plots.plot_objective_vs_time({"run": ([0.0, 2e-6, 1e-5], [3.0, 2.0, 1.0])})
    xs = ax.get_lines()[0].get_xdata()
    assert xs[0] == 2e-6 and xs[1] == 2e-6 and xs[2] == 1e-5

"""mkdocs hook: the benchmark scripts' figures (bench/*.png) join the site under gallery/, so the gallery page shows
the pictures the scripts last wrote without a second copy of them in docs/."""

from pathlib import Path

from mkdocs.structure.files import File

BENCH = Path(__file__).resolve().parents[2] / "bench"


def on_files(files, config):
    for png in sorted(BENCH.glob("*.png")):
        files.append(File.generated(config, f"gallery/{png.name}", abs_src_path=str(png)))
    return files

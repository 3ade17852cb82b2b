#!/usr/bin/env bash
# The benchmark's peer (backtrader) in its own venv, never a project dependency.
# bench_replay runs the same bar strategy in it when it exists: python -m bench replay
set -euo pipefail
PEER_DIR="${HF_BENCH_PEER_DIR:-/tmp/hf-bench-peer}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$PEER_DIR/.venv"
"$PEER_DIR/.venv/bin/python" -m pip install --quiet --upgrade pip
"$PEER_DIR/.venv/bin/python" -m pip install --quiet "backtrader==1.9.78.123" "pandas>=2" "numpy>=1.26"
"$PEER_DIR/.venv/bin/python" -c "import backtrader; print('backtrader', backtrader.__version__, 'in', '$PEER_DIR/.venv')"

#!/usr/bin/env bash
# The lowest supported torch (pyproject.toml) is tested, not assumed: install it (its CPU wheel) and its torchvision
# first, then this package the way a user with them would (no constraints), check that pip kept that torch, and run
# the tests of the parts that need only torch: models, masking, checkpoint interop, the objective. Used by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOWEST_TORCH=2.13.0
LOWEST_TORCHVISION=0.28.0
VENV=.venv-lowest

[ -x $VENV/bin/python ] || "$PYTHON" -m venv $VENV
pip() { $VENV/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install "torch==$LOWEST_TORCH" "torchvision==$LOWEST_TORCHVISION"
pip install -e ".[test,hf]"
$VENV/bin/python - "$LOWEST_TORCH" <<'PY'
import sys

import torch

wanted = sys.argv[1]
if torch.__version__.split("+")[0] != wanted:
    sys.exit(f"pip replaced torch {wanted} with {torch.__version__}: a dependency range is too tight")
print(f"torch {torch.__version__} kept")
PY
# PyPI's torchvision is built against the CUDA torch and cannot load beside the CPU wheel; these parts need none.
pip uninstall -y torchvision
$VENV/bin/python -m pytest -p no:cacheprovider -m "not data_stack" \
    tests/models tests/masking tests/checkpoint tests/training/test_objective.py

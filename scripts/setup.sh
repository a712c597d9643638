#!/usr/bin/env bash
# Set up videomae in ./.venv on a fresh machine (idempotent).
#   bash scripts/setup.sh          # the package and its required dependencies
#   bash scripts/setup.sh --dev    # + test tools and the optional extras the test suite exercises
#                                  (transformers, tensorboard, decord2; torchcodec also needs system FFmpeg)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch and torchvision first, pinned to the tested builds, so nothing later can pull another torch.
pip install "torch==2.14.1" "torchvision==0.29.1"
if [ "${1:-}" = "--dev" ]; then
  pip install -e ".[test,hf,tensorboard,decord]" "torch==2.14.1" "torchvision==0.29.1"
else
  pip install -e . "torch==2.14.1" "torchvision==0.29.1"
fi
.venv/bin/python -c "import torch, videomae; print(f'videomae {videomae.__version__} ready (torch {torch.__version__})')"

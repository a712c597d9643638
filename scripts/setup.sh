#!/usr/bin/env bash
# Set up videomae in ./.venv on a fresh machine (idempotent).
#   bash scripts/setup.sh          # the package and its required dependencies
#   bash scripts/setup.sh --dev    # + test tools and the optional extras the test suite exercises
#                                  (transformers, tensorboard, decord2, s3fs and aiohttp for remote data;
#                                  torchcodec also needs system FFmpeg)
#                                  and the sample videos (scripts/fetch_sample_videos.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# constraints.txt pins the tested builds (torch 2.14.1 among them), so nothing can pull another torch.
if [ "${1:-}" = "--dev" ]; then
  pip install -c constraints.txt -e ".[test,hf,tensorboard,decord,s3,http]"
  # Real sample videos for the decoder tests (.cache/sample_videos); the tests say how to retry if this fails.
  PYTHON=.venv/bin/python bash scripts/fetch_sample_videos.sh || echo "warning: sample videos not fetched; run bash scripts/fetch_sample_videos.sh"
else
  pip install -c constraints.txt -e .
fi
.venv/bin/python -c "import torch, videomae; print(f'videomae {videomae.__version__} ready (torch {torch.__version__})')"

"""videomae: VideoMAE V2 (dual-masking video masked autoencoders) in PyTorch."""

import os
import sys

# Transparent huge pages for CPU tensors of 2 MB or more: PyTorch reads THP_MEM_ALLOC_ENABLE once, at its
# first allocation, so it is set here, before torch is imported (THP_MEM_ALLOC_ENABLE=0 opts out; no effect
# if torch was imported first). It makes the page faults of freshly mapped memory cheap, which lets training
# give freed activations back to the OS at no cost in speed (videomae.training.memory).
if "torch" not in sys.modules:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from videomae.checkpoint.zoo import list_pretrained  # noqa: E402
from videomae.models import ModelConfig, build_model, create_model, get_config, list_models  # noqa: E402

__version__ = "0.1.0"

__all__ = ["ModelConfig", "Predictor", "__version__", "build_model", "create_model", "get_config", "list_models",
           "list_pretrained"]


def __getattr__(name: str):
    """`videomae.Predictor`, imported on first use: it brings in the video decoding stack."""
    if name == "Predictor":
        from videomae.product.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'videomae' has no attribute {name!r}")

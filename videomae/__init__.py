"""videomae: VideoMAE V2 (dual-masking video masked autoencoders) in PyTorch."""

from videomae.checkpoint.zoo import list_pretrained
from videomae.factory import create_model
from videomae.models import ModelConfig, build_model, get_config, list_models

__version__ = "0.1.0"

__all__ = [
    "ModelConfig",
    "Predictor",
    "__version__",
    "build_model",
    "create_model",
    "get_config",
    "list_models",
    "list_pretrained",
]


def __getattr__(name: str):
    """`videomae.Predictor`, imported on first use: it brings in the video decoding stack."""
    if name == "Predictor":
        from videomae.apps.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'videomae' has no attribute {name!r}")

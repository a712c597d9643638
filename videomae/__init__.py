"""videomae: VideoMAE V2 (dual-masking video masked autoencoders) in PyTorch."""

from videomae.models import ModelConfig, build_model, create_model, get_config, list_models

__version__ = "0.1.0"

__all__ = ["ModelConfig", "__version__", "build_model", "create_model", "get_config", "list_models"]

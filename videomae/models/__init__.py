"""VideoMAE V2 models: typed configs, the named architectures and the networks (random init; weights are loaded
by `videomae.factory.create_model`)."""

from __future__ import annotations

import torch.nn as nn

from videomae.errors import ConfigError
from videomae.models.config import MODEL_CONFIGS, ModelConfig, get_config
from videomae.models.vit import PretrainVisionTransformer, VisionTransformer, sinusoid_table, tubelet_view


def build_model(config: ModelConfig) -> nn.Module:
    """The network a config describes (random init)."""
    if config.kind == "pretrain":
        return PretrainVisionTransformer(config)
    if config.kind == "classifier":
        return VisionTransformer(config)
    raise ConfigError(f"model kind must be 'pretrain' or 'classifier', got {config.kind!r}")


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


__all__ = [
    "MODEL_CONFIGS",
    "ModelConfig",
    "PretrainVisionTransformer",
    "VisionTransformer",
    "build_model",
    "get_config",
    "list_models",
    "sinusoid_table",
    "tubelet_view",
]

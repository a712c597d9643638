"""VideoMAE V2 models: `create_model(name, pretrained=..., **overrides)` and the model classes."""

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


def create_model(name: str | None = None, *, pretrained: str | None = None, **overrides) -> nn.Module:
    """Build a named model, or load one from `pretrained` (official .pth, Hugging Face dir, our format).

    Overrides use the official keyword names (img_size, num_frames, num_classes, drop_path_rate, ...).
    A Hugging Face directory or our own format carries its architecture, so `name` may be omitted.
    """
    if pretrained is not None:
        from videomae.checkpoint import load_pretrained  # checkpoint interop builds on the models

        return load_pretrained(pretrained, name=name, **overrides)
    if name is None:
        raise ConfigError("create_model needs a model name or pretrained=PATH; names: " + ", ".join(list_models()))
    return build_model(get_config(name, **overrides))


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


__all__ = [
    "MODEL_CONFIGS", "ModelConfig", "PretrainVisionTransformer", "VisionTransformer", "build_model",
    "create_model", "get_config", "list_models", "sinusoid_table", "tubelet_view",
]

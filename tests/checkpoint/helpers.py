"""Tiny configs and checkpoint writers shared by the checkpoint tests."""

from __future__ import annotations

import torch

from tests.apps.fixtures import TINY_ARCH
from videomae.factory import create_model

# The fixture's architecture settings a state dict cannot tell (heads, clip size).
TINY = {"num_heads": 4, "decoder_num_heads": 2, "num_frames": 4, "img_size": 32}
# The same for the product tests' tiny architecture (TINY_ARCH).
TINY_SETTINGS = {key: TINY_ARCH[key] for key in ("num_heads", "num_frames", "img_size")}


def tiny_classifier(seed: int, num_classes: int = 3):
    """A TINY_ARCH ViT-S classifier in eval mode with every tensor random, so that any mix-up shows in outputs."""
    torch.manual_seed(seed)
    model = create_model("vit_small_patch16_224", num_classes=num_classes, **TINY_ARCH)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.1 + (1.0 if parameter.dim() == 1 else 0.0))
    return model.eval()


def clip() -> torch.Tensor:
    """A fixed normalized clip (2, 3, T, H, W) for TINY_ARCH models."""
    torch.manual_seed(123)
    return torch.randn(2, 3, TINY_ARCH["num_frames"], TINY_ARCH["img_size"], TINY_ARCH["img_size"])


def outputs(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(clip())


def fp16(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.half() for key, value in state.items()}


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in state.items()}

"""Tiny configs and checkpoint writers shared by the checkpoint tests."""

from __future__ import annotations

import torch

# The fixture's architecture settings a state dict cannot tell (heads, clip size).
TINY = {"num_heads": 4, "decoder_num_heads": 2, "num_frames": 4, "img_size": 32}


def fp16(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.half() for key, value in state.items()}


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in state.items()}

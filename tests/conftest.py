"""Shared test helpers: the official-code reference outputs (vendored under tests/fixtures, they are data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

OFFICIAL_TINY = Path(__file__).resolve().parent / "fixtures" / "official-tiny"
ARCH_KEYS = ("img_size", "patch_size", "num_frames", "tubelet_size", "embed_dim", "depth", "num_heads",
             "mlp_ratio", "decoder_embed_dim", "decoder_depth", "decoder_num_heads")


@pytest.fixture(scope="session")
def official_tiny():
    """The official-code outputs for the tiny configuration (tests/fixtures/official-tiny/README.md)."""
    config = json.loads((OFFICIAL_TINY / "config.json").read_text())
    return {
        "config": config,
        "arch": {key: config[key] for key in ARCH_KEYS},
        "expected": torch.load(OFFICIAL_TINY / "expected.pth", weights_only=True),
        "pretrain_state": torch.load(OFFICIAL_TINY / "pretrain_checkpoint.pth", weights_only=True)["model"],
        "finetune_state": torch.load(OFFICIAL_TINY / "finetune_checkpoint.pth", weights_only=True)["module"],
    }

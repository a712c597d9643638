"""Shared test helpers: the official-code reference outputs (vendored under tests/fixtures, they are data)."""

from __future__ import annotations

import json
import os
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


# Skips a CI run accepts: optional pieces CI does not install. Under CI=true any other skip fails the run, so a
# test that silently stops running (a missing extra, a moved fixture) is noticed.
EXPECTED_SKIPS = ("torchcodec",)  # needs FFmpeg's shared libraries (apt-get install ffmpeg)
_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not any(name in str(report.longrepr) for name in EXPECTED_SKIPS):
        _unexpected_skips.append(f"{report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() in ("1", "true") and _unexpected_skips and exitstatus == 0:
        print("\nunexpected skips under CI (install what they need, or list them in EXPECTED_SKIPS):\n  "
              + "\n  ".join(_unexpected_skips))
        session.exitstatus = 1

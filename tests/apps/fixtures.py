"""Tiny assets shared by the product and CLI tests: checkpoints in our format, short videos, bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from videomae.checkpoint import save_pretrained
from videomae.data.synthetic import encode_video
from videomae.factory import create_model

TINY_ARCH = dict(
    img_size=32,
    patch_size=8,
    num_frames=4,
    tubelet_size=2,
    embed_dim=32,
    depth=1,
    num_heads=2,
    decoder_embed_dim=16,
    decoder_depth=1,
    decoder_num_heads=2,
)
NUM_CLASSES = 3


@dataclass(frozen=True)
class TinyAssets:
    pretrain: Path  # pretraining checkpoint (our format)
    classifier: Path  # 3-class classifier (our format) with labels.txt
    videos: Path  # folder of two .mp4 files (20 and 9 frames)
    frames: Path  # frame folder of 12 numbered PNGs
    corrupt: Path  # an .mp4 holding garbage
    root: Path


def moving_frames(length: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 (T, H, W, 3): a bright square moving right over noise."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, size=(length, height, width, 3), dtype=np.uint8)
    for t in range(length):
        frames[t, 8:18, (2 * t) % (width - 10) : (2 * t) % (width - 10) + 10] = 220
    return frames


def build_assets(root: Path) -> TinyAssets:
    torch.manual_seed(0)
    pretrain, classifier = root / "pretrain", root / "classifier"
    save_pretrained(create_model("pretrain_videomae_small_patch16_224", **TINY_ARCH), pretrain)
    save_pretrained(create_model("vit_small_patch16_224", num_classes=NUM_CLASSES, **TINY_ARCH), classifier)
    (classifier / "labels.txt").write_text("left\nright\nstill\n")
    videos = root / "videos"
    videos.mkdir()
    encode_video(str(videos / "long.mp4"), moving_frames(20, 36, 48, 0))
    encode_video(str(videos / "short.mp4"), moving_frames(9, 40, 32, 1))
    frames = root / "frames" / "clip_a"
    frames.mkdir(parents=True)
    for i, frame in enumerate(moving_frames(12, 32, 40, 2), start=1):
        Image.fromarray(frame).save(frames / f"img_{i:05d}.png")
    corrupt = root / "bad" / "corrupt.mp4"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    return TinyAssets(pretrain, classifier, videos, frames, corrupt, root)


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> TinyAssets:
    return build_assets(tmp_path_factory.mktemp("product_assets"))


def run_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python -m videomae ARGS` in a subprocess (one thread: several test runs may share the cores)."""
    return subprocess.run(
        [sys.executable, "-m", "videomae", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A clean failure: non-zero exit, the message on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr

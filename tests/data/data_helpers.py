"""Helpers shared by the data tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

import argparse
import os

import av
import numpy as np

from videomae.cli import data as data_cli
from videomae.data import DataConfig
from videomae.data.config import SyntheticConfig
from videomae.data.synthetic import synthetic_frames
from videomae.errors import VideoMAEError

# name: (container extension, codec, frames, height, width, fps)
VIDEO_SPECS = {
    "h264_96x64": (".mp4", "libx264", 40, 64, 96, 25),
    "mpeg4_64x48": (".avi", "mpeg4", 30, 48, 64, 12),
    "vp9_48x64": (".webm", "libvpx-vp9", 20, 64, 48, 30),
    "h264_short": (".mp4", "libx264", 7, 48, 64, 8),
}


def make_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Distinct frames (a moving square over texture) with a frame counter in the top-left block."""
    cfg = SyntheticConfig(num_videos=1, num_classes=4, num_frames=num_frames, height=height, width=width)
    frames = synthetic_frames(cfg, seed, seed)
    frames[:, :8, :8] = (np.arange(num_frames) * 255 // max(num_frames - 1, 1)).astype(np.uint8)[:, None, None, None]
    return frames


def sequential_frames(path: str) -> np.ndarray:
    """Reference: decode the whole file in order with plain PyAV."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def tiny_config(**overrides):
    """Small clips for fast dataset tests."""
    settings = dict(
        num_frames=4,
        sampling_rate=2,
        input_size=32,
        short_side_size=32,
        patch_size=16,
        tubelet_size=2,
        num_workers=0,
        max_bad_fraction=0.5,
    )
    settings.update(overrides)
    return DataConfig(**settings)


def write_lines(path: os.PathLike, lines: list[str]) -> str:
    """Write a text file, one line each."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return str(path)


def run_data_command(argv: list[str]) -> int:
    """`videomae data ...` with only the data commands (other command modules belong to other engineers); a user
    error returns 2 as the command line does."""
    parser = argparse.ArgumentParser(prog="videomae")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except VideoMAEError:
        return 2

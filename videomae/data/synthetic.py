"""Procedural videos with no files: a bright square gliding over a textured background.

The class is the direction of motion (K evenly spaced angles), so a single frame cannot tell classes apart
and a model has to use motion. Everything is a function of (seed, index): position, colours, speed.
The square wraps around the frame edges, so any clip length works.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

import numpy as np

from videomae.data.config import SyntheticConfig
from videomae.seeding import numpy_generator


def synthetic_label(index: int, num_classes: int) -> int:
    """Classes are balanced: sample i moves in direction i mod K."""
    return index % num_classes


def synthetic_frames(cfg: SyntheticConfig, index: int, seed: int) -> np.ndarray:
    """All frames of synthetic video `index`: uint8 (T, H, W, 3)."""
    rng = numpy_generator(seed, index)
    height, width, length = cfg.height, cfg.width, cfg.num_frames
    angle = 2 * math.pi * synthetic_label(index, cfg.num_classes) / cfg.num_classes
    speed = rng.uniform(0.04, 0.07) * min(height, width)  # pixels per frame
    side = max(2, min(height, width) // 5)
    start_y, start_x = rng.uniform(0, height), rng.uniform(0, width)
    background = rng.integers(0, 80, size=(height, width, 3), dtype=np.uint8)  # static texture
    colour = rng.integers(170, 256, size=3, dtype=np.uint8)
    frames = np.repeat(background[None], length, axis=0)  # (T, H, W, 3)
    rows, cols = np.arange(side), np.arange(side)
    for t in range(length):
        top = int(round(start_y - speed * t * math.sin(angle)))
        left = int(round(start_x + speed * t * math.cos(angle)))
        frames[t][np.ix_((top + rows) % height, (left + cols) % width)] = colour
    return frames


class SyntheticReader:
    """A `VideoReader` over one synthetic video."""

    fps = 8.0

    def __init__(self, cfg: SyntheticConfig, index: int, seed: int):
        self._frames = synthetic_frames(cfg, index, seed)
        self.num_frames = cfg.num_frames

    def read(self, indices: Sequence[int]) -> np.ndarray:
        return self._frames[np.asarray(indices, dtype=np.int64)]

    def close(self) -> None:
        """Nothing to release."""


def class_folder(label: int) -> str:
    """Folder name of a synthetic class: zero-padded index and angle, so sorted order = label order."""
    return f"{label:03d}_dir"


def encode_video(
    path: str,
    frames: np.ndarray,
    fps: int = 8,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> None:
    """Write uint8 (T, H, W, 3) frames as a video file with PyAV (even sides for 4:2:0 codecs).

    `options` go to the encoder (e.g. {"g": "8"}), `container_options` to the muxer (e.g. movflags).
    """
    import av

    with av.open(path, mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.options = options or {}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def write_synthetic_videos(
    out_dir: str,
    num_videos: int,
    num_classes: int,
    *,
    num_frames: int = 32,
    height: int = 64,
    width: int = 64,
    fps: int = 8,
    seed: int = 0,
) -> str:
    """Write a synthetic set as H.264 .mp4 files in a folder-per-class tree plus a CSV manifest.

    Layout: `out_dir/<label:03d>_dir/video_<index:05d>.mp4` and `out_dir/manifest.csv` (`path,label`, paths
    relative to `out_dir`). The folder itself is also a valid folder-per-class manifest.

    Args:
        out_dir: destination folder (created).
        num_videos: videos to write.
        num_classes: motion directions.
        num_frames: frames per video.
        height: frame height (even).
        width: frame width (even).
        fps: frame rate written in the container.
        seed: content seed; video i equals synthetic sample i of a `SyntheticConfig` with the same settings.

    Returns:
        Path of the CSV manifest.
    """
    cfg = SyntheticConfig(
        num_videos=num_videos, num_classes=num_classes, num_frames=num_frames, height=height, width=width
    )
    rows = []
    for index in range(num_videos):
        label = synthetic_label(index, num_classes)
        relative = os.path.join(class_folder(label), f"video_{index:05d}.mp4")
        os.makedirs(os.path.join(out_dir, class_folder(label)), exist_ok=True)
        encode_video(os.path.join(out_dir, relative), synthetic_frames(cfg, index, seed), fps=fps)
        rows.append((relative, label))
    manifest = os.path.join(out_dir, "manifest.csv")
    with open(manifest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return manifest

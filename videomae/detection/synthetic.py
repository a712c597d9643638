"""A synthetic AVA-style detection set from the demo's moving digits, in AVA's file formats.

Every keyframe (one per second) shows several digits, each in its own cell of a grid, each doing one of the
demo's motions (move left, turn clockwise, grow, ...) during the second centred on the keyframe. Each digit is a
"person": its box is the digit's ink at the keyframe and its action is its motion, so one frame shows where the
digits are but not what they do. Written as frame folders (or videos) with the annotation CSVs, the action list,
excluded timestamps and detector-like proposals (the true boxes, jittered, plus low-scoring false ones).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from videomae.data.synthetic import encode_video
from videomae.demo.digits import CLASS_NAMES, DigitsConfig, Motion, glyph_bank, render_clips, sample_motion
from videomae.seeding import numpy_generator, torch_generator

INK_THRESHOLD = 0.3


@dataclass(frozen=True)
class DetectionSetConfig:
    """Settings of a synthetic detection set.

    Attributes:
        digits: clip settings of one digit (its cell is `digits.size` pixels, its second `digits.num_frames` frames;
            twice the demo's speed, so that 4 frames show the motion).
        classes: the motions used as actions (action id = position + 1).
        grid: cells per side of a frame (frames are `grid * digits.size` pixels square).
        digits_per_keyframe: digits shown at each keyframe (at most grid^2).
        keyframes_per_video: annotated seconds per video (seconds 1..K).
        train_videos: videos in `train.csv`.
        val_videos: videos in `val.csv`.
    """

    digits: DigitsConfig = DigitsConfig(num_frames=8, size=32, speed=0.08)
    classes: tuple[str, ...] = CLASS_NAMES[:4]
    grid: int = 2
    digits_per_keyframe: int = 2
    keyframes_per_video: int = 6
    train_videos: int = 24
    val_videos: int = 4


def ink_box(glyph: np.ndarray) -> np.ndarray:
    """The corners of the glyph's inked pixels in the glyph's own [-1, 1] coordinates: (4, 2) as x, y."""
    rows, cols = np.nonzero(glyph > INK_THRESHOLD)
    size = glyph.shape[0]
    x0, x1 = (2 * cols.min()) / size - 1, (2 * cols.max() + 2) / size - 1
    y0, y1 = (2 * rows.min()) / size - 1, (2 * rows.max() + 2) / size - 1
    return np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])


def keyframe_box(glyph: np.ndarray, motion: Motion, clip: int, frame: int) -> np.ndarray:
    """The digit's ink box in its cell at `frame`: x1, y1, x2, y2 in [0, 1] of the cell.

    The renderer places glyph point g at centre + scale·R(angle)·g (frame units in [-1, 1]).
    """
    angle, scale = float(motion.angle[clip, frame]), float(motion.scale[clip, frame])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = np.array([float(motion.x[clip, frame]), float(motion.y[clip, frame])])
    corners = centre + scale * ink_box(glyph) @ rotation.T  # (4, 2) in [-1, 1]
    low, high = (corners.min(axis=0) + 1) / 2, (corners.max(axis=0) + 1) / 2
    return np.clip(np.concatenate([low, high]), 0.0, 1.0)


def render_keyframe(cfg: DetectionSetConfig, bank, seed: int, video: int, second: int):
    """One second of video around a keyframe: frames uint8 (T, S, S, 3) and its digits' (boxes (D, 4), actions (D,))."""
    glyphs, _ = bank
    generator = torch_generator(seed, video, second)
    rng = numpy_generator(seed, video, second)
    digit_cfg, cell = cfg.digits, cfg.digits.size
    labels = torch.from_numpy(rng.choice(len(cfg.classes), cfg.digits_per_keyframe)).long()
    motion = sample_motion(labels, digit_cfg, generator)
    picks = torch.from_numpy(rng.integers(0, glyphs.shape[0], cfg.digits_per_keyframe))
    clips = render_clips(glyphs[picks], motion, digit_cfg, generator)  # (D, T, cell, cell, 3)
    side = cfg.grid * cell
    noise = digit_cfg.noise * torch.randn(digit_cfg.num_frames, side, side, 3, generator=generator)
    frames = (20 + noise).round().clamp(0, 255).to(torch.uint8)  # empty cells: dark and noisy
    cells = rng.choice(cfg.grid**2, cfg.digits_per_keyframe, replace=False)
    boxes = []
    for digit, place in enumerate(cells):
        top, left = divmod(int(place), cfg.grid)
        frames[:, top * cell : (top + 1) * cell, left * cell : (left + 1) * cell] = clips[digit]
        in_cell = keyframe_box(glyphs[picks[digit], 0].numpy(), motion, digit, digit_cfg.num_frames // 2)
        boxes.append((in_cell + np.array([left, top, left, top])) / cfg.grid)
    return frames.numpy(), np.array(boxes), labels.numpy() + 1


def write_video(path: str, frames: np.ndarray, as_video: bool, fps: int) -> None:
    if as_video:
        encode_video(path + ".mp4", frames, fps=fps)
        return
    os.makedirs(path, exist_ok=True)
    for index, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(os.path.join(path, f"{index:05d}.png"))


def write_detection_set(folder: str, cfg: DetectionSetConfig = DetectionSetConfig(), seed: int = 0, as_video=False):
    """Write the set into `folder`: `frames/<video>/{:05}.png` (or `frames/<video>.mp4`), `train.csv`, `val.csv`,
    `actions.pbtxt`, `val_excluded.csv` (the last second of each validation video) and `val_proposals.csv`.

    Frame rate = frames per digit clip (`digits.num_frames`); keyframe `s` is frame s·fps (0-based), so a recipe
    reads it with `detection.fps` = that rate, `detection.timestamp_start = 0`, `data.sampling_rate = 1`,
    `data.num_frames` <= the rate and `data.frame_template = "{:05}.png"`.
    """
    fps, bank = cfg.digits.num_frames, glyph_bank(cfg.digits, seed)
    rng = numpy_generator(seed, 0x5E7)
    os.makedirs(os.path.join(folder, "frames"), exist_ok=True)
    with open(os.path.join(folder, "actions.pbtxt"), "w", encoding="utf-8") as handle:
        for action, name in enumerate(cfg.classes, start=1):
            handle.write(f'item {{\n  name: "{name}"\n  id: {action}\n}}\n')
    rows = {"train": [], "val": []}
    proposals, excluded = [], []
    for video in range(cfg.train_videos + cfg.val_videos):
        split = "train" if video < cfg.train_videos else "val"
        video_id = f"{split}{video:03d}"
        seconds = [render_keyframe(cfg, bank, seed, video, s) for s in range(1, cfg.keyframes_per_video + 1)]
        blank = np.full((fps // 2, *seconds[0][0].shape[1:]), 20, dtype=np.uint8)  # before second 1, after the last
        write_video(
            os.path.join(folder, "frames", video_id),
            np.concatenate([blank, *[s[0] for s in seconds], blank]),
            as_video,
            fps,
        )
        for second, (_, boxes, actions) in enumerate(seconds, start=1):
            for person, (box, action) in enumerate(zip(boxes, actions)):
                rows[split].append(f"{video_id},{second:04d},{_corners(box)},{action},{person}")
            if split == "val":
                proposals += _proposals(video_id, second, boxes, rng)
        if split == "val":
            excluded.append(f"{video_id},{cfg.keyframes_per_video:04d}")
    for name, lines in (
        ("train.csv", rows["train"]),
        ("val.csv", rows["val"]),
        ("val_proposals.csv", proposals),
        ("val_excluded.csv", excluded),
    ):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))


def _corners(box: np.ndarray) -> str:
    return ",".join(f"{v:.3f}" for v in box)


def _proposals(video_id: str, second: int, boxes: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A detector's output: each true box slightly jittered with a high score, and one false box scoring low."""
    rows = []
    for box in boxes:
        size = np.tile(box[2:] - box[:2], 2)
        moved = np.clip(box + size * rng.uniform(-0.05, 0.05, 4), 0, 1)
        rows.append(f"{video_id},{second:04d},{_corners(moved)},{rng.uniform(0.85, 1.0):.3f}")
    false = np.sort(rng.uniform(0, 1, (2, 2)), axis=0).T.reshape(-1)[[0, 2, 1, 3]]
    rows.append(f"{video_id},{second:04d},{_corners(false)},{rng.uniform(0.1, 0.5):.3f}")
    return rows

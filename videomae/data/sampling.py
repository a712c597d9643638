"""Frame indices exactly as the official VideoMAE V2 code computes them (reference §5).

Every function takes the video length `n` (frames) and, where the official code draws at random, a numpy
Generator; it returns 0-based frame indices as an int64 array. Draws use `rng.integers(low, high)` with the
same bounds as the official `np.random.randint(low, high)`.
"""

from __future__ import annotations

import numpy as np


def pretrain_indices(n: int, num_frames: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Pretraining clip (`HybridVideoMAE`, one segment): `num_frames` frames `rate` apart from a random start.

    The offset stops advancing once the next step would reach the end, so short videos repeat their
    last sampled frame.
    """
    room = n - num_frames * rate + 1
    offset = int(rng.integers(0, room)) + 1 if room > 0 else 1  # 1-based, as the official code
    indices = []
    for _ in range(num_frames):
        indices.append(offset - 1)
        if offset + rate < n:
            offset += rate
    return np.asarray(indices, dtype=np.int64)


def _dense_window(n: int, clip_len: int, rate: int, end: int | None, linspace: bool) -> np.ndarray:
    """`clip_len` indices spanning `clip_len·rate` frames that end at `end` (exclusive); short videos padded."""
    span = clip_len * rate
    if n <= span:
        index = np.linspace(0, n, num=n // rate)
        index = np.concatenate((index, np.full(clip_len - n // rate, float(n))))
        return np.clip(index, 0, n - 1).astype(np.int64)
    start = end - span
    if linspace:  # official training formula: stride span/(clip_len-1), about 4.27 for 16x4
        index = np.linspace(start, end, num=clip_len)
    else:
        index = start + np.arange(clip_len) * rate
    return np.clip(index, start, end - 1).astype(np.int64)


def dense_train_indices(
    n: int, clip_len: int, rate: int, rng: np.random.Generator, linspace: bool = True
) -> np.ndarray:
    """Fine-tuning training clip: a window ending at a random frame in [clip_len·rate, n)."""
    span = clip_len * rate
    end = int(rng.integers(span, n)) if n > span else None
    return _dense_window(n, clip_len, rate, end, linspace)


def dense_val_indices(n: int, clip_len: int, rate: int, linspace: bool = True) -> np.ndarray:
    """Fine-tuning validation clip: the centred window (end = (span + n) // 2)."""
    return _dense_window(n, clip_len, rate, (clip_len * rate + n) // 2, linspace)


def dense_test_indices(n: int, clip_len: int, rate: int, view: int, num_views: int) -> np.ndarray:
    """Temporal test view `view` of `num_views`: every `rate`-th frame, then a run of `clip_len` of them.

    The official code divides by `num_views - 1` and so fails for one view; one view here is the centred run.
    """
    every = list(range(0, n, rate))
    every += [every[-1]] * (clip_len - len(every))
    free = len(every) - clip_len
    if num_views > 1:
        first = int(view * max(free / (num_views - 1), 0))
    else:
        first = free // 2
    return np.asarray(every[first : first + clip_len], dtype=np.int64)


def segment_indices(n: int, num_segments: int, rng: np.random.Generator | None) -> np.ndarray:
    """TSN segment sampling of frame folders (`RawFrameClsDataset`): one frame per equal segment.

    A random frame of each segment in training (`rng` given), the segment centre in validation (`rng=None`).
    Videos shorter than `num_segments` frames are padded with frame 0 in front.
    """
    length = n // num_segments
    if length > 0:
        within = rng.integers(0, length, size=num_segments) if rng is not None else length // 2
        return (np.arange(num_segments) * length + within).astype(np.int64)
    return np.asarray([0] * (num_segments - n) + list(range(n)), dtype=np.int64)


def video_segment_indices(n: int, num_segments: int, rng: np.random.Generator | None) -> np.ndarray:
    """Sparse sampling of decoded videos (`VideoClsDataset --sparse_sample`): the dense code with span 1.

    One frame per segment of `n // num_segments` frames, at a random offset in [0, length-2] in training or
    `(1 + length)//2 - 1` in validation.
    """
    length = n // num_segments
    if length <= 1:
        within = 0
    elif rng is not None:
        within = rng.integers(1, length, size=num_segments) - 1
    else:
        within = (1 + length) // 2 - 1
    return (np.arange(num_segments) * length + within).astype(np.int64)


def segment_test_indices(n: int, num_segments: int, view: int, num_views: int) -> np.ndarray:
    """Sparse test view: all views' ticks `int(c·tick/S + tick·x)` sorted together, then every S-th from `view`."""
    tick = n / num_segments
    every = sorted(int(c * tick / num_views + tick * x) for c in range(num_views) for x in range(num_segments))
    return np.asarray(every[view::num_views], dtype=np.int64)


def test_indices(n: int, clip_len: int, rate: int, sparse: bool, view: int, num_views: int) -> np.ndarray:
    """Frames of temporal test view `view` of `num_views` (the official test split): a dense run of every
    `rate`-th frame, or one frame per segment when `sparse`. The dataset and `videomae predict` share it."""
    if sparse:
        return segment_test_indices(n, clip_len, view, num_views)
    return dense_test_indices(n, clip_len, rate, view, num_views)

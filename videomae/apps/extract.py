"""Clip features for temporal action localization: sliding windows over whole videos, one `.npy` per video.

For each video, windows of `clip_len` frames (`frame_interval` apart) start every `stride` frames; each
window becomes one pooled feature vector (`model.forward_features`). Output, per video `ID`:

    OUT/ID.npy    float32 (num_windows, D)
    OUT/ID.json   model, checkpoint SHA-256, fps, stride, window starts, preprocessing (written last)

Finished videos (both files present) are skipped, so an interrupted run resumes where it stopped. Several
processes (or one per GPU) can share one input list: each claims a video with an exclusive lock file
(`OUT/ID.lock`, created with O_CREAT|O_EXCL) before working on it, or takes a fixed share with `--shard i/n`.
Both files are written to a temporary name and renamed, so a reader never sees half a file.

Videos are decoded in `num_workers` DataLoader worker processes while the main process runs the model
(`videomae.apps.decoding`); a worker claims a video before decoding it, in the main process's name, and the
main process releases the lock when the video's files are written. The features are the same for any
worker count. On GPUs the model runs in bf16 autocast by default and its fp32 matrix products on TF32 cores.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from videomae.apps.decoding import Skip, decode_workers, run_videos
from videomae.apps.inputs import InputVideo
from videomae.data.decoders import VideoReader
from videomae.data.transforms import val_clip
from videomae.devices import PRECISIONS, autocast, resolved_precision, tf32_matmuls
from videomae.errors import ConfigError

logger = logging.getLogger("videomae.extract")


@dataclass(frozen=True)
class ExtractConfig:
    """How windows are cut and preprocessed.

    Attributes:
        clip_len: frames per window (official TAD: 16).
        stride: frames between window starts (official: 4 for THUMOS14, 16 for FineAction).
        frame_interval: frames between the sampled frames of one window (official: 1, consecutive).
        batch_size: windows per forward pass.
        precision: "auto" (bf16 on GPUs, fp32 on the CPU; `extract_all` records which), "fp32" or "bf16"
            (autocast); features are stored as float32 either way.
        official_tad: the official script's preprocessing: resize to input_size x input_size without
            keeping the aspect ratio, pixels in [0, 1], no mean/std normalization.
        input_size: side of the square the model sees.
        short_side: short side after resizing, before the centre crop (when not official_tad).
    """

    clip_len: int = 16
    stride: int = 4
    frame_interval: int = 1
    batch_size: int = 8
    precision: str = "auto"
    official_tad: bool = False
    input_size: int = 224
    short_side: int = 224

    def validate(self) -> ExtractConfig:
        for name in ("clip_len", "stride", "frame_interval", "batch_size", "input_size", "short_side"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.short_side < self.input_size:
            raise ConfigError(f"short-side {self.short_side} is smaller than input-size {self.input_size}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        return self

    @property
    def span(self) -> int:
        """Frames one window covers."""
        return (self.clip_len - 1) * self.frame_interval + 1

    @property
    def preprocessing(self) -> str:
        if self.official_tad:
            return f"official-tad: resize to {self.input_size}x{self.input_size} (aspect not kept), [0, 1], no mean/std"
        return f"short side {self.short_side}, centre crop {self.input_size}, ImageNet mean/std"


def window_starts(num_frames: int, cfg: ExtractConfig) -> list[int]:
    """First frame of every window: `range(0, n - span + 1, stride)` as the official script.

    A video shorter than one window still gets one window at 0 (its last frame is repeated), where the
    official script fails.
    """
    return list(range(0, max(num_frames - cfg.span, 0) + 1, cfg.stride))


def official_tad_clip(frames: np.ndarray, size: int) -> torch.Tensor:
    """The official script's transform: uint8 (T, H, W, 3) -> /255 -> bilinear resize to size x size
    (align_corners False, no antialias, aspect ratio not kept) -> (3, T, size, size), not normalized."""
    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255  # (3, T, H, W)
    return F.interpolate(video, size=(size, size), mode="bilinear", align_corners=False)


def preprocess(frames: np.ndarray, cfg: ExtractConfig) -> torch.Tensor:
    """One window's frames uint8 (T, H, W, 3) -> model input (3, T, S, S)."""
    if cfg.official_tad:
        return official_tad_clip(frames, cfg.input_size)
    return val_clip(frames, cfg.short_side, cfg.input_size)


def window_batches(reader: VideoReader, cfg: ExtractConfig) -> Iterator[torch.Tensor]:
    """Every window of one video as model inputs, `cfg.batch_size` windows (b, 3, T, S, S) at a time; closes the
    reader at the end.

    Frames are decoded one batch of windows at a time (the union of the batch's frames), so memory stays
    bounded for long videos.
    """
    try:
        num_frames = reader.num_frames
        starts = window_starts(num_frames, cfg)
        offsets = np.arange(cfg.clip_len) * cfg.frame_interval  # (T,)
        for first in range(0, len(starts), cfg.batch_size):
            batch_starts = np.asarray(starts[first : first + cfg.batch_size])
            indices = np.minimum(batch_starts[:, None] + offsets[None], num_frames - 1)  # (b, T), pads short videos
            needed = np.unique(indices)
            frames = reader.read(needed.tolist())  # (F, H, W, 3)
            position = np.searchsorted(needed, indices)  # (b, T) rows of `frames`
            yield torch.stack([preprocess(frames[row], cfg) for row in position])
    finally:
        reader.close()


@torch.no_grad()
def window_features(model: nn.Module, cfg: ExtractConfig, device: torch.device, clips: torch.Tensor) -> torch.Tensor:
    """Pooled features of a batch of windows: (b, D) float32 on the CPU."""
    with tf32_matmuls(device), autocast(cfg.precision, device):
        return model.forward_features(clips).float().cpu()


def open_windows(
    out_dir: str, cfg: ExtractConfig, backend: str, owner_pid: int, video: InputVideo
) -> tuple[dict, Iterator[torch.Tensor]]:
    """Claim a video for process `owner_pid` and open its windows (run where it is decoded: a worker process,
    or here). Raises `Skip` for a video another process finished or holds, `DataError` when it cannot be read
    (the caller then releases the lock)."""
    if is_done(out_dir, video.video_id):
        raise Skip("finished")
    if not claim(out_dir, video.video_id, owner_pid):
        raise Skip("locked")
    if is_done(out_dir, video.video_id):  # finished by another process between the check and the claim
        release(out_dir, video.video_id)
        raise Skip("finished")
    reader = video.open(backend)
    facts = {
        "num_frames": reader.num_frames,
        "fps": float(reader.fps),
        "window_starts": window_starts(reader.num_frames, cfg),
    }
    return facts, window_batches(reader, cfg)


# ---- outputs, resume and sharing ------------------------------------------------------------------------------


def output_paths(out_dir: str, video_id: str) -> tuple[str, str, str]:
    """(features .npy, sidecar .json, lock file) of a video."""
    base = os.path.join(out_dir, video_id)
    return base + ".npy", base + ".json", base + ".lock"


def is_done(out_dir: str, video_id: str) -> bool:
    """Both outputs exist (the sidecar is renamed into place last, so it marks completion)."""
    npy, sidecar, _ = output_paths(out_dir, video_id)
    return os.path.isfile(npy) and os.path.isfile(sidecar)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_is_stale(lock: str) -> bool:
    """A lock left by a dead process on this machine (locks from other hosts are always respected)."""
    try:
        with open(lock, encoding="utf-8") as handle:
            owner = json.load(handle)
    except (OSError, ValueError):
        return False  # being written right now, or not ours to judge
    return owner.get("host") == socket.gethostname() and not _pid_alive(int(owner.get("pid", -1)))


def lock_owner() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def claim(out_dir: str, video_id: str, owner_pid: int | None = None) -> bool:
    """Take the exclusive lock of a video for process `owner_pid` (default: this one); False when another live
    process holds it."""
    _, _, lock = output_paths(out_dir, video_id)
    for _ in range(2):  # second try after removing a stale lock
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _lock_is_stale(lock):
                return False
            logger.warning("removing stale lock %s", lock)
            with_suppressed_missing(os.remove, lock)
            continue
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump({"host": socket.gethostname(), "pid": owner_pid or os.getpid(), "time": time.time()}, file)
        return True
    return False


def release(out_dir: str, video_id: str) -> None:
    with_suppressed_missing(os.remove, output_paths(out_dir, video_id)[2])


def release_own_locks(out_dir: str, videos: list[InputVideo]) -> None:
    """Remove the locks held in this process's name (its workers claim ahead of the model): a run that stops
    early leaves no video claimed by nobody."""
    host, pid = lock_owner()
    for video in videos:
        lock = output_paths(out_dir, video.video_id)[2]
        try:
            with open(lock, encoding="utf-8") as handle:
                owner = json.load(handle)
        except (OSError, ValueError):
            continue
        if owner.get("host") == host and owner.get("pid") == pid:
            release(out_dir, video.video_id)


def with_suppressed_missing(function, path: str) -> None:
    """`function(path)`, ignoring a file that another process removed first."""
    try:
        function(path)
    except FileNotFoundError:
        pass


def write_atomically(path: str, write) -> None:
    """`write(tmp_path)`, then rename over `path`."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with_suppressed_missing(os.remove, tmp)


def save_outputs(out_dir: str, video_id: str, features: np.ndarray, sidecar: dict) -> None:
    npy, sidecar_path, _ = output_paths(out_dir, video_id)

    def write_npy(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a file object: np.save would add ".npy" to a bare name
            np.save(handle, features)

    def write_json(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(sidecar, handle, indent=1)

    write_atomically(npy, write_npy)
    write_atomically(sidecar_path, write_json)


def parse_shard(text: str | None) -> tuple[int, int]:
    """ "i/n" -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text}: need 0 <= i < n")
    return index, count


@dataclass
class ExtractSummary:
    """Counts of one `extract` call."""

    done: int = 0
    skipped_finished: int = 0
    skipped_locked: int = 0
    failed: int = 0


def extract_all(
    model: nn.Module,
    videos: list[InputVideo],
    out_dir: str,
    cfg: ExtractConfig,
    device: torch.device,
    *,
    run_info: dict,
    shard: tuple[int, int] = (0, 1),
    backend: str = "pyav",
    num_workers: int | None = None,
    log=print,
) -> ExtractSummary:
    """Extract the features of every video of this shard that no other process has finished or claimed.

    Args:
        model: a classifier (or headless feature model) in eval mode, on `device`.
        videos: the inputs, in the same order in every process sharing the list.
        out_dir: output folder (created).
        cfg: window and preprocessing settings ("auto" precision is resolved for `device` and recorded).
        device: where the model runs.
        run_info: model and checkpoint facts copied into every sidecar.
        shard: (i, n): this process takes videos i, i+n, i+2n, ...
        backend: video decoder.
        num_workers: decoding processes (None: 0 on the CPU, 4 on GPUs); the features do not depend on it.
        log: one line per video.

    Returns:
        What happened; a video that cannot be decoded is logged and counted in `failed`, the rest go on.
    """
    os.makedirs(out_dir, exist_ok=True)
    cfg = dataclasses.replace(cfg, precision=resolved_precision(cfg.precision, device))
    summary = ExtractSummary()
    index, count = shard
    mine = videos[index::count]
    results = run_videos(
        mine,
        functools.partial(open_windows, out_dir, cfg, backend, os.getpid()),
        functools.partial(window_features, model, cfg, device),
        num_workers=min(decode_workers(num_workers, device), len(mine)),
        device=device,
    )
    try:
        for result in results:
            video = mine[result.index]
            if result.skipped is not None:
                summary.skipped_finished += result.skipped == "finished"
                summary.skipped_locked += result.skipped == "locked"
                continue
            try:
                if result.error is not None:
                    summary.failed += 1
                    log(f"{video.video_id}: failed: {result.error}")
                    continue
                features = torch.cat(result.outputs).numpy().astype(np.float32)  # (num_windows, D)
                sidecar = {
                    "video": os.path.abspath(video.path),
                    "video_id": video.video_id,
                    **run_info,
                    **result.facts,
                    **asdict(cfg),
                    "preprocessing": cfg.preprocessing,
                    "shape": list(features.shape),
                }
                save_outputs(out_dir, video.video_id, features, sidecar)
                summary.done += 1
                log(f"{video.video_id}: {features.shape[0]} windows x {features.shape[1]} ({result.seconds:.1f} s)")
            finally:
                release(out_dir, video.video_id)
    finally:
        release_own_locks(out_dir, mine)
    return summary

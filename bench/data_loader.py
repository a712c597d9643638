"""Loader throughput: clips per second per backend, 16x4 pretraining sampling from 10 s 320p clips.

Each clip goes through the full pretraining path (official frame indices, multi-scale crop to 224,
normalisation, tube + running-cell masks). Prints one JSON line per (backend, workers).

    .venv/bin/python bench/data_loader.py [--clips 8] [--batches 6] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from videomae.data import DataConfig, build_dataset, build_loader, installed_backends
from videomae.data.synthetic import encode_video


def write_clips(folder: str, count: int, seconds: int = 10, fps: int = 30, size: tuple[int, int] = (320, 568)) -> str:
    """`count` H.264 clips of textured moving content, and a pretraining list."""
    rng = np.random.default_rng(0)
    height, width = size
    rows = []
    for i in range(count):
        base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        frames = np.stack([np.roll(base, shift=3 * t, axis=1) for t in range(seconds * fps)])
        path = os.path.join(folder, f"clip{i}.mp4")
        encode_video(path, frames, fps=fps, options={"crf": "23", "preset": "veryfast"})
        rows.append(f"{path} 0 -1")
    listing = os.path.join(folder, "train.txt")
    with open(listing, "w") as handle:
        handle.write("\n".join(rows) + "\n")
    return listing


def measure(listing: str, backend: str, workers: int, batch_size: int, batches: int) -> dict[str, object]:
    cfg = DataConfig(manifest=listing, backend=backend, num_frames=16, sampling_rate=4, input_size=224)
    dataset = build_dataset(cfg, "pretrain", "train")
    loader = build_loader(dataset, batch_size, shuffle=True, seed=0, num_workers=workers, drop_last=False)
    loader.sampler.set_epoch(0)
    warm = iter(loader)
    next(warm)  # start workers, open the first files
    clips, start = 0, time.perf_counter()
    for epoch in range(1, 1000):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            clips += batch["video"].shape[0]
            if clips >= batches * batch_size:
                elapsed = time.perf_counter() - start
                return {"backend": backend, "workers": workers, "batch_size": batch_size, "clips": clips,
                        "seconds": round(elapsed, 2), "clips_per_s": round(clips / elapsed, 2),
                        "ms_per_clip": round(1000 * elapsed / clips, 1)}
    raise RuntimeError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="distinct video files")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per setting")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--backends", nargs="+", default=installed_backends())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        listing = write_clips(folder, args.clips)
        for backend in args.backends:
            for workers in args.workers:
                print(json.dumps(measure(listing, backend, workers, args.batch_size, args.batches)), flush=True)


if __name__ == "__main__":
    main()

"""Loader throughput: clips per second per backend, 16x4 pretraining sampling from 10 s 320p clips, from local
files and from a web server.

Each clip goes through the full pretraining path (official frame indices, multi-scale crop to 224,
normalisation, tube + running-cell masks). Prints one JSON line per (backend, workers) for local files, then one
per (reader, workers) for the same clips packed in tar shards behind a local HTTP server that adds
`--latency-ms` to every answer (a stand-in for object storage): map-style reads (one ranged request per clip)
against streamed shards (`data.stream`: ranged blocks read ahead), with the bytes and requests per clip.

    .venv/bin/python bench/data_loader.py [--clips 8] [--batches 6] [--workers 0 2] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from videomae.data import DataConfig, build_dataset, build_loader, installed_backends
from videomae.data.loader import run_batches
from videomae.data.shards import write_shards
from videomae.data.synthetic import encode_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.data.servers import FileServer, serve_folder  # noqa: E402  (the range-serving test server)


def write_clips(folder: str, count: int, seconds: int = 10, fps: int = 30, size: tuple[int, int] = (320, 568)) -> str:
    """`count` H.264 clips of textured moving content, a pretraining list, and the clips in tar shards of 4
    (`shards/index.csv`)."""
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
    clips = [(f"clip{i}", open(row.split()[0], "rb").read(), -1) for i, row in enumerate(rows)]
    write_shards(clips, os.path.join(folder, "shards"), max_per_shard=4)
    return listing


def measure(
    manifest: str,
    backend: str,
    workers: int,
    batch_size: int,
    batches: int,
    stream: bool = False,
    server: FileServer | None = None,
    shuffle_buffer: int = 64,
) -> dict[str, object]:
    """Clips per second over `batches` batches after a first (warm-up) one, epoch after epoch as in training."""
    cfg = DataConfig(
        manifest=manifest,
        backend=backend,
        num_frames=16,
        sampling_rate=4,
        input_size=224,
        stream=stream,
        shuffle_buffer=shuffle_buffer,
    )
    dataset = build_dataset(cfg, "pretrain", "train")
    loader = build_loader(dataset, batch_size, shuffle=True, seed=0, num_workers=workers, drop_last=True)
    with run_batches(loader, 0, torch.device("cpu")) as loaded:
        next(loaded)  # start workers, open the first files
        sent, requests = (server.sent, server.requests) if server else (0, 0)
        start = time.perf_counter()
        clips = sum(next(loaded)["video"].shape[0] for _ in range(batches))
        elapsed = time.perf_counter() - start
    result = {
        "backend": backend,
        "workers": workers,
        "batch_size": batch_size,
        "clips": clips,
        "seconds": round(elapsed, 2),
        "clips_per_s": round(clips / elapsed, 2),
        "ms_per_clip": round(1000 * elapsed / clips, 1),
    }
    if server:
        result |= {
            "reader": "streamed" if stream else "map-style",
            "latency_ms": round(server.latency_s * 1000),
            "bytes_per_clip": round((server.sent - sent) / clips),
            "requests_per_clip": round((server.requests - requests) / clips, 2),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="distinct video files")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per setting")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--backends", nargs="+", default=installed_backends())
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every answer of the web server")
    parser.add_argument("--shuffle-buffer", type=int, default=4, help="streamed: samples per shuffled block")
    parser.add_argument("--remote-only", action="store_true", help="skip the local files")
    args = parser.parse_args()
    # Settings with workers first: a worker forked after the main process decoded with decord and PyAV can crash
    # (a segmentation fault in FFmpeg's state inherited by the fork), so the main process decodes only after the
    # last fork.
    workers_first = sorted(args.workers, reverse=True)
    with tempfile.TemporaryDirectory() as folder:
        listing = write_clips(folder, args.clips)
        with serve_folder(folder, args.latency_ms / 1000) as server:
            index = f"{server.url}/shards/index.csv"
            for workers in workers_first:
                for backend in [] if args.remote_only else args.backends:
                    print(json.dumps(measure(listing, backend, workers, args.batch_size, args.batches)), flush=True)
                for stream in (False, True):
                    settings = (args.backends[0], workers, args.batch_size, args.batches, stream, server)
                    print(json.dumps(measure(index, *settings, args.shuffle_buffer)), flush=True)


if __name__ == "__main__":
    main()

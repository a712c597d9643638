"""Whole-dataset tools behind `videomae data scan` and `videomae data prepare`."""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

from videomae.data.datasets import open_sample
from videomae.data.decoders import DecodeError
from videomae.data.manifests import VIDEO_EXTENSIONS, Sample
from videomae.data.shards import ShardWriter

SCAN_CHUNK = 64  # frames decoded per read while scanning, to bound memory on long videos


def check_sample(sample: Sample, backend: str = "pyav") -> str | None:
    """Decode every frame of a sample; None when good, else the reason it is bad."""
    try:
        reader = open_sample(sample, backend)
        try:
            for start in range(0, reader.num_frames, SCAN_CHUNK):
                reader.read(range(start, min(start + SCAN_CHUNK, reader.num_frames)))
        finally:
            reader.close()
    except DecodeError as error:
        return error.reason  # the report gives the path beside it
    except Exception as error:  # a scan must report, never crash, whatever a broken file does
        return f"{type(error).__name__}: {error}"
    return None


def _check_job(job: tuple[Sample, str]) -> str | None:
    return check_sample(*job)


def scan_samples(samples: list[Sample], report: str | None, backend: str = "pyav",
                 workers: int = 1) -> list[dict[str, object]]:
    """Decode all samples in parallel; write one JSON line per bad one to `report`; return the bad entries."""
    jobs = [(sample, backend) for sample in samples]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            reasons = list(pool.map(_check_job, jobs, chunksize=4))
    else:
        reasons = [_check_job(job) for job in jobs]
    bad = [{"path": s.path, "reason": r, "index": i} for i, (s, r) in enumerate(zip(samples, reasons)) if r]
    if report:
        os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
        with open(report, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(entry) + "\n" for entry in bad)
    return bad


@dataclass(frozen=True)
class PrepareJob:
    """Re-encode `source` to `target` with the short side at `short_side` pixels."""

    source: str
    target: str
    short_side: int
    crf: int = 23


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at `short_side` (never enlarged), both even for 4:2:0."""
    scale = min(short_side / min(height, width), 1.0)
    return max(2, int(round(height * scale / 2)) * 2), max(2, int(round(width * scale / 2)) * 2)


def reencode(job: PrepareJob) -> str | None:
    """Re-encode one video as H.264 with a 1 s keyframe interval (cheap seeks); None or the failure reason."""
    import av

    try:
        os.makedirs(os.path.dirname(job.target), exist_ok=True)
        with av.open(job.source) as source, av.open(job.target, "w") as target:
            stream_in = source.streams.video[0]
            rate = stream_in.average_rate or stream_in.guessed_rate or 25
            height, width = scaled_size(stream_in.height, stream_in.width, job.short_side)
            stream_out = target.add_stream("libx264", rate=rate)
            stream_out.height, stream_out.width, stream_out.pix_fmt = height, width, "yuv420p"
            stream_out.options = {"crf": str(job.crf), "preset": "veryfast", "g": str(max(1, round(float(rate))))}
            for number, frame in enumerate(source.decode(stream_in)):
                frame = frame.reformat(width=width, height=height, format="yuv420p")
                frame.pts, frame.time_base = number, 1 / Fraction(rate)  # constant frame rate from here on
                target.mux(stream_out.encode(frame))
            target.mux(stream_out.encode())
    except Exception as error:  # report and go on: one broken source must not stop the others
        return f"{type(error).__name__}: {error}"
    return None


def find_videos(folder: str) -> list[str]:
    """Video files under `folder`, as sorted relative paths."""
    found = []
    for directory, _, names in os.walk(folder):
        found += [os.path.relpath(os.path.join(directory, n), folder) for n in names
                  if n.lower().endswith(VIDEO_EXTENSIONS)]
    return sorted(found)


def prepare_videos(src: str, dst: str, short_side: int = 320, workers: int = 1, crf: int = 23,
                   shard_size: int = 0) -> tuple[str, list[dict[str, str]]]:
    """Re-encode every video under `src` into `dst` (same relative names, `.mp4`) and write a manifest.

    The manifest is `dst/manifest.csv` (`path,label` with the class folder name as label when the videos sit
    in class folders, else `path` only). With `shard_size > 0` the videos are also packed into tar shards
    under `dst/shards/` with their own `index.csv`.

    Returns:
        (manifest path, failures as {"path", "reason"}).
    """
    relative = find_videos(src)
    jobs = [PrepareJob(os.path.join(src, r), os.path.join(dst, os.path.splitext(r)[0] + ".mp4"), short_side, crf)
            for r in relative]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            reasons = list(pool.map(reencode, jobs))
    else:
        reasons = [reencode(job) for job in jobs]
    failures = [{"path": job.source, "reason": r} for job, r in zip(jobs, reasons) if r]
    done = [os.path.relpath(job.target, dst) for job, r in zip(jobs, reasons) if not r]
    manifest = _write_prepared_manifest(dst, done)
    if shard_size > 0:
        _write_prepared_shards(dst, done, shard_size)
    return manifest, failures


def _class_names(paths: list[str]) -> list[str] | None:
    """The first folder of every path when all videos sit in class folders, else None."""
    parts = [p.split(os.sep) for p in paths]
    if not paths or any(len(p) < 2 for p in parts):
        return None
    return [p[0] for p in parts]


def _write_prepared_manifest(dst: str, paths: list[str]) -> str:
    names = _class_names(paths)
    manifest = os.path.join(dst, "manifest.csv")
    os.makedirs(dst, exist_ok=True)
    with open(manifest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if names is None:
            writer.writerow(["path"])
            writer.writerows([p] for p in paths)
        else:
            writer.writerow(["path", "label"])
            writer.writerows(zip(paths, names))
    return manifest


def _write_prepared_shards(dst: str, paths: list[str], shard_size: int) -> str:
    names = _class_names(paths)
    lookup = {name: i for i, name in enumerate(sorted(set(names or [])))}
    writer = ShardWriter(os.path.join(dst, "shards"), shard_size)
    for i, path in enumerate(paths):
        with open(os.path.join(dst, path), "rb") as handle:
            key = os.path.splitext(path)[0].replace(os.sep, "__")
            writer.add(key, handle.read(), lookup[names[i]] if names else -1)
    return writer.close()

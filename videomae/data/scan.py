"""`videomae data scan`: decode every file of a set up front and report the bad ones."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor

from videomae.data.datasets import open_sample
from videomae.data.decoders import DecodeError
from videomae.data.manifests import Sample

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


def scan_samples(
    samples: list[Sample], report: str | None, backend: str = "pyav", workers: int = 1
) -> list[dict[str, object]]:
    """Decode all samples in parallel; write one JSON line per bad one to `report`; return the bad entries."""
    reasons = parallel_map(_check_job, [(sample, backend) for sample in samples], workers, chunksize=4)
    bad = [{"path": s.path, "reason": r, "index": i} for i, (s, r) in enumerate(zip(samples, reasons)) if r]
    if report:
        os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
        with open(report, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(entry) + "\n" for entry in bad)
    return bad


def parallel_map(function, items: list, workers: int, chunksize: int = 1) -> list:
    """`[function(item) for item in items]`, in `workers` processes when more than one."""
    if workers <= 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, items, chunksize=chunksize))

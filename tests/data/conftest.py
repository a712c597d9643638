"""Real encoded test videos written with PyAV: tiny, several codecs, sizes, rates and lengths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # lets the test modules import data_helpers
from data_helpers import VIDEO_SPECS, make_frames  # noqa: E402

from videomae.data.synthetic import encode_video  # noqa: E402


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, str]:
    """name -> path of a real encoded clip (keyframe every 8 frames so seeking is exercised)."""
    folder = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, (ext, codec, frames, height, width, fps) in VIDEO_SPECS.items():
        path = str(folder / f"{name}{ext}")
        options = {"g": "8"} if codec != "libvpx-vp9" else {"g": "8", "deadline": "realtime", "cpu-used": "8"}
        encode_video(path, make_frames(frames, height, width), fps=fps, codec=codec, options=options)
        paths[name] = path
    return paths


@pytest.fixture(scope="session")
def broken_videos(videos, tmp_path_factory) -> dict[str, str]:
    """Missing, empty, truncated (index at the end, or at the front) and corrupt H.264 files."""
    folder = tmp_path_factory.mktemp("broken")
    data = open(videos["h264_96x64"], "rb").read()
    faststart = str(folder / "faststart.mp4")
    encode_video(
        faststart, make_frames(40, 64, 96), fps=25, options={"g": "8"}, container_options={"movflags": "faststart"}
    )
    front_index = open(faststart, "rb").read()
    paths = {"missing": str(folder / "missing.mp4")}
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "cut_index.mp4").write_bytes(data[: len(data) // 2])
    (folder / "truncated.mp4").write_bytes(front_index[: len(front_index) // 2])
    (folder / "garbage.mp4").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    for name in ("empty", "cut_index", "truncated", "garbage"):
        paths[name] = str(folder / f"{name}.mp4")
    return paths


@pytest.fixture()
def frame_folder(tmp_path) -> tuple[str, np.ndarray]:
    """A folder of 12 PNG frames named img_00001.png ... (lossless, so pixels can be compared)."""
    from PIL import Image

    frames = make_frames(12, 48, 64)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"img_{i + 1:05}.png")
    return str(folder), frames


@pytest.fixture(scope="session")
def dataset_folder(tmp_path_factory) -> str:
    """A small data set as a store would hold it, made by `videomae data prepare --shards 3`: class folders of
    videos with `manifest.csv` (relative paths) and `labels.txt`, tar shards with `shards/index.csv`; plus a frame
    folder listed in `frames.csv`."""
    from PIL import Image

    from videomae.data import write_synthetic_videos
    from videomae.data.prepare import prepare_videos

    source = tmp_path_factory.mktemp("source")
    write_synthetic_videos(str(source), num_videos=8, num_classes=2, num_frames=12, height=40, width=40)
    folder = tmp_path_factory.mktemp("store")
    prepare_videos(str(source), str(folder), short_side=40, shard_size=3)
    frames = folder / "frames" / "clip_a"
    frames.mkdir(parents=True)
    for i, frame in enumerate(make_frames(12, 48, 64)):
        Image.fromarray(frame).save(frames / f"img_{i + 1:05}.png")
    (folder / "frames.csv").write_text("path,label\nframes/clip_a,1\n")
    return str(folder)


@pytest.fixture(scope="session")
def s3_store(dataset_folder) -> str:
    """`dataset_folder` in a bucket of a local S3-compatible server (moto); yields its URL."""
    from servers import moto_s3, upload

    with moto_s3("bucket") as _:
        yield upload(dataset_folder, "s3://bucket/data")


@pytest.fixture(scope="session")
def http_store(dataset_folder):
    """`dataset_folder` served over HTTP (byte ranges, injectable latency and failures); yields the server."""
    from servers import serve_folder

    with serve_folder(dataset_folder) as server:
        yield server


@pytest.fixture(scope="session")
def clip_bytes(dataset_folder) -> list[bytes]:
    """The encoded videos of `dataset_folder`."""
    return [path.read_bytes() for path in sorted(Path(dataset_folder).glob("*/*.mp4"))]


@pytest.fixture(scope="session")
def shards(clip_bytes, tmp_path_factory) -> str:
    """24 samples in tar shards of 5 (the last one shorter), so runs of samples cross shard ends; the index."""
    from videomae.data.shards import write_shards

    items = [(f"clip{i:02d}", clip_bytes[i % len(clip_bytes)], i % 2) for i in range(24)]
    return write_shards(items, str(tmp_path_factory.mktemp("shards")), max_per_shard=5)

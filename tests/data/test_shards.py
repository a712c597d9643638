"""Tar shards: written with the stdlib, read back by byte range and by streaming."""

from __future__ import annotations

import os

import numpy as np
import torch
from data_helpers import tiny_config

from videomae.data import build_dataset, open_video, write_synthetic_videos
from videomae.data.shards import iterate_shard, write_shards


def test_shards_round_trip_through_dataset(tmp_path):
    src = tmp_path / "src"
    write_synthetic_videos(str(src), num_videos=5, num_classes=2, num_frames=12, height=48, width=48)
    files = sorted(str(p) for p in src.rglob("*.mp4"))
    items = [(f"clip{i}", open(f, "rb").read(), i % 2) for i, f in enumerate(files)]
    index = write_shards(items, str(tmp_path / "shards"), max_per_shard=2)
    assert sorted(os.listdir(tmp_path / "shards")) == [
        "index.csv",
        "shard-000000.tar",
        "shard-000001.tar",
        "shard-000002.tar",
    ]
    streamed = list(iterate_shard(str(tmp_path / "shards" / "shard-000001.tar")))
    assert [m.name for m, _ in streamed] == ["clip2.mp4", "clip2.cls", "clip3.mp4", "clip3.cls"]
    assert streamed[0][1] == items[2][1]
    dataset = build_dataset(tiny_config(manifest=index), "finetune", "val")
    assert dataset.num_classes == 2 and dataset.video_ids[3] == "clip3"
    np.testing.assert_array_equal(open_video(items[3][1]).read([4]), open_video(files[3]).read([4]))
    direct = build_dataset(tiny_config(manifest=str(src)), "finetune", "val")
    assert torch.equal(dataset[3]["video"], direct[3]["video"])

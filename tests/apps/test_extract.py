"""Windows, preprocessing, locks and inputs of `videomae extract`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.apps.fixtures import assets  # noqa: F401  (fixture)
from videomae.apps.extract import ExtractConfig, claim, official_tad_clip, output_paths, parse_shard, window_starts
from videomae.apps.inputs import discover_inputs, frame_template
from videomae.errors import ConfigError, DataError


def test_windows_follow_the_official_range():
    assert window_starts(100, ExtractConfig()) == list(range(0, 85, 4))  # range(0, n - 15, 4)
    assert window_starts(10, ExtractConfig()) == [0]  # shorter than one window: one padded window
    assert window_starts(40, ExtractConfig(clip_len=8, frame_interval=2, stride=10)) == [0, 10, 20]


def test_official_transform_is_plain_bilinear_without_normalization():
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 30, 50, 3), dtype=np.uint8)
    clip = official_tad_clip(frames, 16)
    expected = F.interpolate(
        torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255, size=(16, 16), mode="bilinear", align_corners=False
    )
    assert clip.shape == (3, 4, 16, 16) and torch.equal(clip, expected)
    assert 0 <= float(clip.min()) and float(clip.max()) <= 1


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    assert claim(str(tmp_path), "video")
    assert not claim(str(tmp_path), "video")  # held by this live process
    lock = output_paths(str(tmp_path), "video")[2]
    owner = json.loads(open(lock).read())
    owner["pid"] = 2**22 + 12345  # no such process
    with open(lock, "w") as handle:
        json.dump(owner, handle)
    assert claim(str(tmp_path), "video")


def test_shard_parsing():
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "x", "1-4"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_frame_templates_and_input_discovery(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3, 6):
        (folder / f"frame_{i:04d}.jpg").write_bytes(b"")
    assert frame_template(str(folder)) == ("frame_{:04d}.jpg", 3, 3)
    (folder / "frame_0009.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="not consecutive"):
        frame_template(str(folder))
    tree = tmp_path / "tree" / "class_a"
    tree.mkdir(parents=True)
    (tree / "x.mp4").write_bytes(b"")
    (tmp_path / "tree" / "x.avi").write_bytes(b"")
    found = discover_inputs([str(tmp_path / "tree")])
    assert sorted(os.path.basename(v.path) for v in found) == ["x.avi", "x.mp4"]
    with pytest.raises(DataError, match="same name"):
        discover_inputs([str(tmp_path / "tree")], unique_ids=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no video"):
        discover_inputs([str(tmp_path / "empty")])


class FailingModel(torch.nn.Module):
    def forward_features(self, clips):
        raise RuntimeError("the model failed")


def test_a_run_stopped_by_an_error_leaves_no_claim_of_its_own(assets, tmp_path):
    """Workers claim videos ahead of the model, in the main process's name; when the run stops early the main
    process releases every claim it made, so no video stays locked by a process that will not finish it."""
    from videomae.apps.extract import extract_all
    from videomae.apps.inputs import discover_inputs

    videos = discover_inputs([str(assets.videos), str(assets.frames)])
    cfg = ExtractConfig(clip_len=4, stride=2, batch_size=2, input_size=32, short_side=32)
    with pytest.raises(RuntimeError, match="the model failed"):
        extract_all(FailingModel(), videos, str(tmp_path), cfg, torch.device("cpu"), run_info={}, num_workers=2)
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.npy"))

"""`videomae data scan` and `videomae data prepare`."""

from __future__ import annotations

import json
import os

import pytest
from data_helpers import run_data_command as run
from data_helpers import write_lines

from videomae.data import open_video, read_manifest, write_synthetic_videos


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("src"))
    write_synthetic_videos(out, num_videos=3, num_classes=2, num_frames=10, height=48, width=96)
    return out


def test_scan_all_good_exits_zero(source, tmp_path, capsys):
    report = tmp_path / "bad.jsonl"
    assert run(["data", "scan", source, "--report", str(report), "--workers", "2"]) == 0
    assert report.read_text() == ""
    assert json.loads(capsys.readouterr().out.splitlines()[0])["good"] == 3


def test_scan_reports_bad_files(source, broken_videos, tmp_path, capsys):
    rows = [f"{os.path.join(source, '000_dir/video_00000.mp4')} 0 -1"] + [
        f"{broken_videos[k]} 0 -1" for k in ("missing", "empty", "truncated", "garbage")
    ]
    report = tmp_path / "bad.jsonl"
    assert run(["data", "scan", write_lines(tmp_path / "pt.txt", rows), "--report", str(report), "--workers", "1"]) == 1
    entries = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(entries) == 4 and all(e["path"] and e["reason"] for e in entries)
    printed = capsys.readouterr().out.splitlines()[1:]
    assert printed == [f"bad: {e['path']}: {e['reason']}" for e in entries]


def test_scan_usage_error_exits_two(tmp_path):
    assert run(["data", "scan", str(tmp_path / "nope.csv")]) == 2


def test_prepare_resizes_keeps_names_and_writes_manifest_and_shards(source, tmp_path):
    dst = tmp_path / "prepared"
    assert run(["data", "prepare", source, str(dst), "--short-side", "32", "--workers", "1", "--shards", "2"]) == 0
    manifest = read_manifest(str(dst / "manifest.csv"), root=str(dst))
    assert manifest.class_names == ["000_dir", "001_dir"]
    reader = open_video(manifest.samples[0].path)
    assert (reader.read([0]).shape[1:3], reader.num_frames) == ((32, 64), 10)
    shards = read_manifest(str(dst / "shards" / "index.csv"))
    assert len(shards.samples) == 3 and sorted(os.listdir(dst / "shards"))[:2] == ["index.csv", "shard-000000.tar"]

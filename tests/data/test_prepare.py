"""`videomae data prepare` never loses data; prepared sets and manifests are usable from any directory."""

from __future__ import annotations

import csv
import json
import os

import pytest
from data_helpers import make_frames, run_data_command, write_lines

from videomae.cli import main
from videomae.data import DataConfig, open_video, read_manifest, write_synthetic_videos
from videomae.data.build import manifest_of_split
from videomae.data.prepare import validation_part
from videomae.data.synthetic import encode_video


@pytest.fixture()
def source(tmp_path):
    """7 tiny videos in two class folders (4 + 3)."""
    write_synthetic_videos(str(tmp_path / "src"), num_videos=7, num_classes=2, num_frames=6, height=32, width=48)
    return tmp_path / "src"


def prepare(src, dst, *flags: str) -> int:
    return run_data_command(["data", "prepare", str(src), str(dst), "--short-side", "16", "--workers", "1", *flags])


def listed(csv_path) -> list[list[str]]:
    with open(csv_path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


def tree(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_prepared_manifest_scans_from_any_directory(source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert prepare("src", "data/mine") == 0
    assert run_data_command(["data", "scan", "data/mine/manifest.csv", "--workers", "1"]) == 0
    monkeypatch.chdir(source)
    assert run_data_command(["data", "scan", str(tmp_path / "data/mine/manifest.csv"), "--workers", "1"]) == 0
    summaries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [s["good"] for s in summaries[1:]] == [7, 7]


@pytest.mark.parametrize("where", ["same", "inside", "contains", "link"])
def test_prepare_refuses_a_destination_overlapping_the_source(source, tmp_path, where):
    dst = {"same": source, "inside": source / "out", "contains": tmp_path, "link": tmp_path / "link"}[where]
    if where == "link":
        os.symlink(source, dst)
    before = tree(tmp_path)
    assert prepare(source, dst) == 2
    assert tree(tmp_path) == before


def test_names_differing_by_extension_get_distinct_outputs(tmp_path):
    src = tmp_path / "src" / "jump"
    src.mkdir(parents=True)
    encode_video(str(src / "a.avi"), make_frames(5, 32, 32), codec="mpeg4")
    encode_video(str(src / "a.mp4"), make_frames(9, 32, 32))
    assert prepare(tmp_path / "src", tmp_path / "dst") == 0
    assert listed(tmp_path / "dst" / "manifest.csv") == [["jump/a.avi.mp4", "0"], ["jump/a.mp4", "0"]]
    assert (tmp_path / "dst" / "labels.txt").read_text() == "jump\n"
    frames = {name: open_video(str(tmp_path / "dst" / "jump" / name)).num_frames for name in ("a.avi.mp4", "a.mp4")}
    assert frames == {"a.avi.mp4": 5, "a.mp4": 9}


def test_class_folders_named_by_numbers_keep_their_names(tmp_path):
    for folder in ("0", "1", "10", "2"):
        (tmp_path / "src" / folder).mkdir(parents=True)
        encode_video(str(tmp_path / "src" / folder / "clip.mp4"), make_frames(4, 32, 32))
    assert prepare(tmp_path / "src", tmp_path / "dst") == 0
    found = read_manifest(str(tmp_path / "dst" / "manifest.csv"))
    assert found.class_names == ["0", "1", "10", "2"]
    assert all(found.class_names[s.label] == s.key.split("/")[0] for s in found.samples)


def test_inputs_that_would_share_an_output_are_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("b.avi", "b.avi.mp4"):
        encode_video(str(src / name), make_frames(4, 32, 32), codec="mpeg4")
    assert prepare(src, tmp_path / "dst") == 2
    assert not (tmp_path / "dst").exists()


def test_rerun_after_a_kill_finishes_without_redoing_complete_outputs(source, tmp_path, capsys):
    dst = tmp_path / "dst"
    assert prepare(source, dst) == 0
    killed = dst / "001_dir" / "video_00003.mp4"
    os.remove(killed)
    (dst / "001_dir" / "video_00003.mp4.part").write_bytes(b"half a video")  # what a killed encoder leaves
    kept = dst / "000_dir" / "video_00000.mp4"
    kept_stat = kept.stat()
    capsys.readouterr()
    assert prepare(source, dst) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["encoded"], summary["skipped"], summary["videos"]) == (1, 6, 7)
    assert kept.stat().st_mtime_ns == kept_stat.st_mtime_ns
    assert open_video(str(killed)).num_frames == 6
    assert not list(dst.rglob("*.part"))
    assert prepare(source, dst, "--crf", "30") == 2  # other settings would mix two encodings in one set


def test_failed_inputs_are_reported_and_the_others_prepared(source, tmp_path, capsys):
    (source / "000_dir" / "broken.mp4").write_bytes(b"not a video")
    dst = tmp_path / "dst"
    assert prepare(source, dst) == 1
    captured = capsys.readouterr()
    broken = str(source / "000_dir" / "broken.mp4")
    assert captured.err.startswith(f"failed: {broken}: ")
    failures = [json.loads(line) for line in (dst / "prepare_failures.jsonl").read_text().splitlines()]
    assert [f["path"] for f in failures] == [broken] and failures[0]["reason"]
    assert json.loads(captured.out)["failed"] == 1
    assert len(listed(dst / "manifest.csv")) == 7 and not (dst / "000_dir" / "broken.mp4").exists()


def test_val_fraction_splits_each_class_the_same_way_for_any_worker_count(source, tmp_path, capsys):
    assert prepare(source, tmp_path / "one", "--val-fraction", "0.3") == 0
    assert (
        run_data_command(
            [
                "data",
                "prepare",
                str(source),
                str(tmp_path / "two"),
                "--short-side",
                "16",
                "--workers",
                "2",
                "--val-fraction",
                "0.3",
            ]
        )
        == 0
    )
    counts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["train"], c["val"]) for c in counts] == [(5, 2), (5, 2)]  # round(0.3 * 4) = 1, round(0.3 * 3) = 1
    one, two = tmp_path / "one", tmp_path / "two"
    assert all((one / n).read_text() == (two / n).read_text() for n in ("train.csv", "val.csv", "manifest.csv"))
    train, val = listed(one / "train.csv"), listed(one / "val.csv")
    assert sorted(train + val) == sorted(listed(one / "manifest.csv"))
    assert not {path for path, _ in train} & {path for path, _ in val}
    assert sorted(label for _, label in val) == ["0", "1"]  # indices into labels.txt
    lists = {split: manifest_of_split(DataConfig(manifest=str(one)), split) for split in ("train", "val", "test")}
    assert [reused for _, reused in lists.values()] == [False, False, False]  # test falls back to val.csv
    datasets = {split: read_manifest(path) for split, (path, _) in lists.items()}
    assert [len(d.samples) for d in datasets.values()] == [5, 2, 2]
    assert all(d.class_names == ["000_dir", "001_dir"] for d in datasets.values())
    assert all(d.class_names[s.label] == s.key.split("/")[0] for d in datasets.values() for s in d.samples)


def test_validation_part_is_stratified_deterministic_and_keeps_every_class_in_training():
    classes = ["solo"] + ["pair"] * 2 + ["many"] * 10
    paths = [f"{name}/{i}.mp4" for i, name in enumerate(classes)]
    val = validation_part(paths, classes, 0.25, seed=0)
    per_class = {name: sum(p.startswith(name) for p in val) for name in ("solo", "pair", "many")}
    assert per_class == {"solo": 0, "pair": 1, "many": 3}  # 0.25 * 10 = 2.5 rounds half up
    assert validation_part(paths[::-1], classes[::-1], 0.25, seed=0) == val
    assert any(validation_part(paths, classes, 0.25, seed=s) != val for s in (1, 2, 3))
    assert {p[:4] for p in set(paths) - validation_part(paths, classes, 0.9, seed=0)} == {"solo", "pair", "many"}
    assert len(validation_part(paths, None, 0.3, seed=0)) == 4  # no classes: a plain fraction of 13


@pytest.mark.parametrize("fraction", ["0", "1", "1.5"])
def test_val_fraction_outside_zero_one_is_a_usage_error(source, tmp_path, fraction):
    assert prepare(source, tmp_path / "dst", "--val-fraction", fraction) == 2
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize(
    "content,where",
    [
        (b"path,label\na.mp4,0\nb\xe9.mp4,1\n", "m.csv:3: byte 20"),
        (b"path,label\na.mp4,1.5\n", "m.csv:2: expected a whole-number"),
        (b"path,label\na.mp4,0\nb.mp4,cat\n", "m.csv:3: label 'cat'"),
        (b"", "m.csv:1: the file is empty"),
    ],
)
def test_scan_of_a_malformed_manifest_prints_one_line_and_exits_two(tmp_path, capsys, content, where):
    (tmp_path / "m.csv").write_bytes(content)
    assert main(["data", "scan", str(tmp_path / "m.csv"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("videomae data: error: ") and where in err
    assert "Traceback" not in err


def test_scan_of_a_folder_without_videos_exits_two(tmp_path, capsys):
    write_lines(tmp_path / "notes.txt", ["no videos here"])
    assert main(["data", "scan", str(tmp_path), "--workers", "1"]) == 2
    assert "no videos found" in capsys.readouterr().err

"""Manifest formats and their error messages."""

from __future__ import annotations

import pytest
from data_helpers import write_lines

from videomae.data import read_manifest
from videomae.data.manifests import guess_stage
from videomae.errors import DataError


def test_official_pretrain_list(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["a/x.mp4 0 -1", "ssv2/12 1 48 extra"])
    samples = read_manifest(path, root="/data", stage="pretrain").samples
    assert samples[0].path == "/data/a/x.mp4" and samples[0].num_frames is None
    assert (samples[1].start_index, samples[1].num_frames) == (1, 48)
    assert guess_stage(path) == "pretrain"


def test_official_finetune_list(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["v/a.mp4 3", "frames/b 40 7"])
    samples = read_manifest(path, stage="finetune").samples
    assert [(s.label, s.num_frames) for s in samples] == [(3, None), (7, 40)]
    assert guess_stage(path) == "finetune"


@pytest.mark.parametrize("stage,row", [("finetune", "only_a_path"), ("finetune", "a.mp4 cat"),
                                       ("pretrain", "a.mp4 0"), ("pretrain", "a.mp4 x -1")])
def test_malformed_rows_name_file_line_and_expectation(tmp_path, stage, row):
    path = write_lines(tmp_path / "list.txt", ["good.mp4 0 -1" if stage == "pretrain" else "good.mp4 1", row])
    with pytest.raises(DataError, match=r"list\.txt:2: expected"):
        read_manifest(path, stage=stage)


def test_csv_with_names_and_segments(tmp_path):
    path = write_lines(tmp_path / "m.csv", ["path,label,start,end", "a.mp4,dog,0,10", "b.mp4,cat,5,"])
    found = read_manifest(path, root=str(tmp_path))
    assert found.class_names == ["cat", "dog"]
    assert [(s.label, s.segment) for s in found.samples] == [(1, (0, 10)), (0, (5, -1))]


def test_csv_label_file_fixes_order_and_rejects_unknown(tmp_path):
    labels = write_lines(tmp_path / "labels.txt", ["dog", "cat"])
    path = write_lines(tmp_path / "m.csv", ["path,label", "a.mp4,cat"])
    assert read_manifest(path, labels=labels).samples[0].label == 1
    bad = write_lines(tmp_path / "bad.csv", ["path,label", "a.mp4,cow"])
    with pytest.raises(DataError, match=r"bad\.csv:2: expected a class name"):
        read_manifest(bad, labels=labels)


def test_csv_wrong_column_count_and_header(tmp_path):
    with pytest.raises(DataError, match=r"m\.csv:3: expected 2 comma-separated"):
        read_manifest(write_lines(tmp_path / "m.csv", ["path,label", "a.mp4,1", "b.mp4"]))
    with pytest.raises(DataError, match=r"h\.csv:1: expected a header"):
        read_manifest(write_lines(tmp_path / "h.csv", ["path,klass", "a.mp4,1"]))


def test_folder_per_class_tree(tmp_path):
    for cls in ("walk", "run"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "v1.mp4").write_bytes(b"x")
        (tmp_path / cls / "notes.txt").write_text("ignored")
    (tmp_path / "run" / "frames_dir").mkdir()
    found = read_manifest(str(tmp_path))
    assert found.class_names == ["run", "walk"]
    assert [(s.key, s.label) for s in found.samples] == [("run/frames_dir", 0), ("run/v1.mp4", 0), ("walk/v1.mp4", 1)]


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(str(tmp_path / "nope.csv"))

"""Manifest formats and their error messages."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize(
    "stage,row",
    [("finetune", "only_a_path"), ("finetune", "a.mp4 cat"), ("pretrain", "a.mp4 0"), ("pretrain", "a.mp4 x -1")],
)
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


# Relative paths resolve against the manifest's folder, whatever the current directory


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """A data folder, with the current directory moved to an unrelated one."""
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return data


@pytest.mark.parametrize(
    "lines,stage",
    [
        (["path,label", "clips/a.mp4,0"], "finetune"),
        (["clips/a.mp4 0"], "finetune"),
        (["clips/a.mp4 0 -1"], "pretrain"),
        (["key,shard,offset,size,label", "a,clips/a.mp4,0,10,0"], "finetune"),
    ],
)
def test_relative_paths_resolve_against_the_manifest_folder(elsewhere, lines, stage):
    sample = read_manifest(write_lines(elsewhere / "list.csv", lines), stage=stage).samples[0]
    assert sample.path == str(elsewhere / "clips" / "a.mp4")
    assert sample.key in ("clips/a.mp4", "a")


def test_root_overrides_and_absolute_paths_are_kept(elsewhere, tmp_path):
    path = write_lines(elsewhere / "list.csv", ["path,label", "clips/a.mp4,0", "/abs/b.mp4,1"])
    samples = read_manifest(path, root=str(tmp_path / "videos")).samples
    assert [(s.path, s.key) for s in samples] == [
        (str(tmp_path / "videos" / "clips" / "a.mp4"), "clips/a.mp4"),
        ("/abs/b.mp4", "/abs/b.mp4"),
    ]
    assert read_manifest(path, root="rel").samples[0].path == str(tmp_path / "cwd" / "rel" / "clips" / "a.mp4")


# Encodings and labels


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfpath,label\nclips/\xc3\xa9t\xc3\xa9.mp4,dog\n")
    found = read_manifest(str(path))
    assert (found.samples[0].key, found.class_names) == ("clips/été.mp4", ["dog"])


@pytest.mark.parametrize(
    "lines,line,message",
    [
        (["path,label", "a.mp4,1", "b.mp4,1.5"], 3, "whole-number class index"),
        (["path,label", "a.mp4,-3"], 2, "negative"),
        (["path,label", "a.mp4,0", "b.mp4,1000000000"], 3, "at most 100000 classes"),
        (["path,label", "a.mp4,1", "b.mp4,dog"], 3, "'dog' is a class name but line 2 has a number"),
        (["path,label", "a.mp4,dog", "b.mp4,2"], 3, "'2' is a number but line 2 has a class name"),
        (["path,label", "a.mp4,dog", "b.mp4,1.5"], 3, "'1.5' is a number"),
        (["a.mp4 0", "b.mp4 -3"], 2, "negative"),
        (["a.mp4 0", "frames/b 40 1000000000"], 2, "at most 100000 classes"),
        (["path,label,label", "a.mp4,0,0"], 1, "each column once"),
        (["path,label", ",3"], 2, "a video path"),
        ([""], 1, "the file is empty"),
        (["path,label"], 2, "no rows below the header"),
        (["file,label", "a.mp4,0"], 1, "or a CSV with the header 'path,label"),
    ],
)
def test_bad_labels_and_rows_name_file_and_line(tmp_path, lines, line, message):
    path = write_lines(tmp_path / "m.csv", lines)
    with pytest.raises(DataError, match=rf"m\.csv:{line}: .*{re.escape(message)}"):
        read_manifest(path)


def test_non_utf8_file_names_line_and_byte(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"path,label\na.mp4,0\nb\xe9.mp4,1\n")
    with pytest.raises(DataError, match=r"m\.csv:3: byte 20 \(0xe9\) is not UTF-8; re-save the file as UTF-8"):
        read_manifest(str(path))


def test_integer_labels_are_bounded_by_the_label_file(tmp_path):
    labels = write_lines(tmp_path / "labels.txt", ["dog", "cat"])
    assert read_manifest(write_lines(tmp_path / "ok.csv", ["path,label", "a.mp4,1"]), labels=labels).class_names == [
        "dog",
        "cat",
    ]
    for name, rows in (("m.csv", ["path,label", "a.mp4,0", "b.mp4,2"]), ("m.txt", ["a.mp4 0", "x.mp4 1", "b.mp4 2"])):
        with pytest.raises(
            DataError,
            match=rf"{re.escape(name)}:3: label 2 is out of range: the label file "
            rf".*labels\.txt names 2 classes",
        ):
            read_manifest(write_lines(tmp_path / name, rows), labels=labels)


def test_label_file_beside_a_csv_numbers_its_class_names(tmp_path):
    """Split lists of one folder agree on class indices even when one of them lacks a class."""
    write_lines(tmp_path / "labels.txt", ["walk", "jump", "run"])
    val = read_manifest(write_lines(tmp_path / "val.csv", ["path,label", "a.mp4,run", "b.mp4,walk"]))
    assert ([s.label for s in val.samples], val.class_names) == ([2, 0], ["walk", "jump", "run"])
    with pytest.raises(DataError, match=r"x\.csv:2: expected a class name from the label file .*labels\.txt"):
        read_manifest(write_lines(tmp_path / "x.csv", ["path,label", "a.mp4,swim"]))


def test_label_file_errors_name_the_line(tmp_path):
    with pytest.raises(DataError, match=r"labels\.txt:3: class 'dog' is listed twice \(first on line 1\)"):
        read_manifest(
            write_lines(tmp_path / "m.csv", ["path,label", "a.mp4,0"]),
            labels=write_lines(tmp_path / "labels.txt", ["dog", "cat", "dog"]),
        )


def test_folder_without_class_folders_says_how_to_lay_it_out(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no videos found; expected .*/<class>/<video>"):
        read_manifest(str(tmp_path / "empty"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.mp4").write_bytes(b"x")
    with pytest.raises(DataError, match=r"flat: the videos sit directly in the folder; put them in one sub-folder"):
        read_manifest(str(tmp_path / "flat"))


def test_shard_index_names_shards_beside_it_whatever_the_root(elsewhere, tmp_path):
    index = write_lines(elsewhere / "index.csv", ["key,shard,offset,size,label", "a,shard-000000.tar,0,10,0"])
    assert read_manifest(index, root=str(tmp_path)).samples[0].path == str(elsewhere / "shard-000000.tar")

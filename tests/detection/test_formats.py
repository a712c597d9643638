"""AVA's file formats: what is read, what is written, and the one-line errors for what is malformed."""

from __future__ import annotations

import json
import pickle

import pytest

from videomae.detection.formats import (
    BoxRow,
    read_annotations,
    read_excluded,
    read_label_map,
    read_proposals,
    read_results,
    read_video_starts,
    write_results,
)
from videomae.errors import DataError


def test_results_round_trip(tmp_path):
    rows = [
        BoxRow("-5KQ66BBWC4", "0902", (0.077, 0.151, 0.283, 0.811), 80, 0.123456),
        BoxRow("-5KQ66BBWC4", "0902", (0.077, 0.151, 0.283, 0.811), 12, 1.0),
        BoxRow("zlVkeKC6Ha8", "1798", (0.0, 0.5, 1.0, 1.0), 1, 0.0),
    ]
    path = tmp_path / "detections.csv"
    assert write_results(str(path), rows) == 3
    assert path.read_text().splitlines()[0] == "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,0.123456"
    assert read_results(str(path)) == rows
    assert [row.keyframe for row in rows][0] == ("-5KQ66BBWC4", 902.0)


def test_annotations_with_and_without_actions(tmp_path):
    path = tmp_path / "ava_val.csv"
    path.write_text("vid,0902,0.1,0.2,0.3,0.4,12,7\n\nvid,902.0,0.1,0.2,0.3,0.4,80,7\nvid,0903\n")
    rows = read_annotations(str(path))
    assert [(r.action_id, r.keyframe) for r in rows] == [
        (12, ("vid", 902.0)),
        (80, ("vid", 902.0)),
        (None, ("vid", 903.0)),
    ]
    assert rows[0].score == 7.0  # the person id, read where the evaluator reads a score


@pytest.mark.parametrize(
    ("text", "reader", "fragments"),
    [
        (
            "v,0902,0.1,0.2,0.3,0.4,12,0\nv,0902,0.1,0.2,0.3\n",
            read_annotations,
            [":2:", "x1,y1,x2,y2,action_id", "5 columns"],
        ),
        ("v,0902,0.1,0.2,30,0.4,12,0\n", read_annotations, [":1:", "normalized to [0, 1]"]),
        ("video_id,timestamp,x1,y1,x2,y2,action_id,person_id\n", read_annotations, [":1:", "video_id,timestamp"]),
        ("v,0902,0.1,0.2,0.3,0.4,walk,0\n", read_annotations, [":1:", "invalid literal"]),
        ("v,0902,0.1,0.2,0.3,0.4,12,nan\n", read_results, [":1:", "score", "not a finite number"]),
        ("v\n", read_excluded, [":1:", "'video_id,timestamp'"]),
        ("clip_a,12\nclip_b,twelve\n", read_video_starts, [":2:", "'video_id,first_second'"]),
    ],
)
def test_malformed_rows_name_the_file_the_line_and_the_format(tmp_path, text, reader, fragments):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        reader(str(path))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    for fragment in fragments:
        assert fragment in message


def test_video_starts(tmp_path):
    path = tmp_path / "starts.csv"
    path.write_text("abc_000012_000022,12\nxyz_000100_000110,100.5\n")
    assert read_video_starts(str(path)) == {"abc_000012_000022": 12.0, "xyz_000100_000110": 100.5}
    assert read_video_starts(None) == {}


def test_label_map(tmp_path):
    path = tmp_path / "actions.pbtxt"
    path.write_text(
        'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n}\nitem {\n  name: "walk"\n  label_id: 14\n}\n'
    )
    assert read_label_map(str(path)) == {1: "bend/bow (at the waist)", 14: "walk"}
    path.write_text('item {\n  name: "walk"\n  id: fourteen\n}\n')
    with pytest.raises(DataError, match=r"actions.pbtxt:3: expected 'id: N'"):
        read_label_map(str(path))


def test_excluded_timestamps(tmp_path):
    path = tmp_path / "excluded.csv"
    path.write_text("vid,0902\nvid,1798\n")
    assert read_excluded(str(path)) == {("vid", 902.0), ("vid", 1798.0)}
    assert read_excluded(None) == set()


def test_proposals_from_csv_and_json_agree(tmp_path):
    csv_path, json_path = tmp_path / "boxes.csv", tmp_path / "boxes.json"
    csv_path.write_text("v,0902,0.1,0.2,0.5,0.9,0.95\nv,0902,0.1,0.2,0.5,0.9,0.95\nv,0902,0.6,0.1,0.9,0.8,,0.4\n")
    json_path.write_text(json.dumps({"v,0902": [[0.1, 0.2, 0.5, 0.9, 0.95], [0.6, 0.1, 0.9, 0.8, 0.4]]}))
    from_csv, from_json = read_proposals(str(csv_path)), read_proposals(str(json_path))
    assert from_csv == from_json and len(from_csv[("v", 902.0)]) == 2  # the duplicate row is kept once
    (tmp_path / "plain.csv").write_text("v,0902,0.1,0.2,0.5,0.9\n")  # no score: 1
    assert read_proposals(str(tmp_path / "plain.csv"))[("v", 902.0)][0].score == 1.0


def test_pickled_proposals_are_refused_with_the_way_to_convert_them(tmp_path):
    path = tmp_path / "ava_dense_proposals_val.FAIR.recall_93.9.pkl"
    path.write_bytes(pickle.dumps({"v,0902": [[0.1, 0.2, 0.5, 0.9, 0.95]]}))
    with pytest.raises(DataError, match="is a pickle.*convert it once.*json.dump"):
        read_proposals(str(path))


def test_malformed_json_proposals(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"v,0902": [[0.1, 0.2, 0.5, 0.9]]}))
    with pytest.raises(DataError, match=r"entry 'v,0902'.*\[x1, y1, x2, y2, score\]"):
        read_proposals(str(path))

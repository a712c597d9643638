"""AVA's file formats: annotation and result CSVs, excluded timestamps, the action label map, person proposals.

All boxes are normalized to the frame: x1, y1, x2, y2 in [0, 1] (x to the right, y down). A keyframe is
`(video_id, timestamp)`, the timestamp in seconds; `"0902"` and `"902.0"` name the same keyframe, as in the
official evaluator. Files have no header line. A malformed row raises a one-line `DataError` naming the file, the
line and the expected format. Proposals are read from CSV or JSON only: pickles can run code when loaded.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from videomae.errors import DataError

Keyframe = tuple[str, float]  # (video_id, timestamp in seconds)
Box = tuple[float, float, float, float]  # x1, y1, x2, y2, normalized

ANNOTATION_FORMAT = "'video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]' or 'video_id,timestamp'"
RESULT_FORMAT = "'video_id,timestamp,x1,y1,x2,y2,action_id,score'"
PROPOSAL_FORMAT = "'video_id,timestamp,x1,y1,x2,y2[,score]' or 'video_id,timestamp,x1,y1,x2,y2,action_id,score'"
EXCLUDED_FORMAT = "'video_id,timestamp'"
VIDEO_STARTS_FORMAT = "'video_id,first_second'"
PICKLE_EXTENSIONS = (".pkl", ".pickle")
CONVERT_PICKLE = (
    "python -c \"import json, pickle, sys; d = pickle.load(open(sys.argv[1], 'rb')); "
    "json.dump({k: [list(map(float, b)) for b in v] for k, v in d.items()}, open(sys.argv[2], 'w'))\" IN.pkl OUT.json"
)


@dataclass(frozen=True)
class BoxRow:
    """One row of an AVA CSV: a box at a keyframe with one action (ground truth) or one scored action (results).

    `timestamp` keeps the text as written, so results repeat the ground truth's spelling ("0902").
    `action_id` is None and `score` 1.0 for a row that only lists a keyframe (`video_id,timestamp`). The eighth
    column is read as the score, as the evaluator reads it: in ground truth it is the person id, which only
    orders a keyframe's boxes.
    """

    video_id: str
    timestamp: str
    box: Box | None
    action_id: int | None
    score: float = 1.0

    @property
    def keyframe(self) -> Keyframe:
        return keyframe_key(self.video_id, self.timestamp)


def keyframe_key(video_id: str, timestamp: str | float) -> Keyframe:
    return video_id, float(timestamp)


def _fail(path: str, line: int, expected: str, row: list[str], why: str = "") -> DataError:
    return DataError(f"{path}:{line}: expected {expected}, got {','.join(row)!r}" + (f" ({why})" if why else ""))


def read_csv_rows(path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-empty row of a header-less CSV file."""
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells):
                yield reader.line_num, cells


def _number(text: str | float) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is not a finite number")
    return value


def _parse_box(cells: list, check_range: bool) -> Box:
    box = tuple(_number(cell) for cell in cells)
    if check_range and not all(0.0 <= v <= 1.0 for v in box):
        raise ValueError("box coordinates are normalized to [0, 1] of the frame")
    return box  # type: ignore[return-value]


def _parse_row(path: str, line: int, cells: list[str], scored: bool, check_range: bool) -> BoxRow:
    """A ground-truth row (the 8th column is a person id) or a result row (the 8th column is the score)."""
    expected = RESULT_FORMAT if scored else ANNOTATION_FORMAT
    if len(cells) not in ((2, 7, 8) if not scored else (7, 8)) or not cells[0]:
        raise _fail(path, line, expected, cells, f"{len(cells)} columns")
    try:
        _number(cells[1])
        if len(cells) == 2:
            return BoxRow(cells[0], cells[1], None, None)
        box = _parse_box(cells[2:6], check_range)
        action = int(cells[6])
        score = _number(cells[7]) if len(cells) == 8 else 1.0
    except ValueError as error:
        raise _fail(path, line, expected, cells, str(error)) from None
    return BoxRow(cells[0], cells[1], box, action, score)


def read_annotations(path: str) -> list[BoxRow]:
    """Ground truth: `video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]`, or `video_id,timestamp` for a
    keyframe that was annotated and holds no action (the current official files)."""
    return [_parse_row(path, line, cells, scored=False, check_range=True) for line, cells in read_csv_rows(path)]


def iter_results(path: str) -> Iterator[BoxRow]:
    """Detections in the official result format `video_id,timestamp,x1,y1,x2,y2,action_id,score` (a row without
    a score counts as 1.0, as the evaluator reads it), one at a time: result files run to millions of rows."""
    for line, cells in read_csv_rows(path):
        yield _parse_row(path, line, cells, scored=True, check_range=False)


def read_results(path: str) -> list[BoxRow]:
    """All rows of a result file (`iter_results`)."""
    return list(iter_results(path))


def write_results(path: str, rows: Iterable[BoxRow]) -> int:
    """Write detections in the official result format; returns the number of rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        for row in rows:
            x1, y1, x2, y2 = row.box
            handle.write(
                f"{row.video_id},{row.timestamp},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{row.action_id},{row.score:.6f}\n"
            )
            count += 1
    return count


def read_excluded(path: str | None) -> set[Keyframe]:
    """Excluded keyframes, `video_id,timestamp` per row; an empty set without a file."""
    if not path:
        return set()
    excluded = set()
    for line, cells in read_csv_rows(path):
        if len(cells) != 2 or not cells[0]:
            raise _fail(path, line, EXCLUDED_FORMAT, cells, f"{len(cells)} columns")
        try:
            excluded.add(keyframe_key(cells[0], _number(cells[1])))
        except ValueError as error:
            raise _fail(path, line, EXCLUDED_FORMAT, cells, str(error)) from None
    return excluded


def read_video_starts(path: str | None) -> dict[str, float]:
    """{video_id: the second its first frame shows} from a `video_id,first_second` CSV (none without a file)."""
    if not path:
        return {}
    starts = {}
    for line, cells in read_csv_rows(path):
        if len(cells) != 2 or not cells[0]:
            raise _fail(path, line, VIDEO_STARTS_FORMAT, cells, f"{len(cells)} columns")
        try:
            starts[cells[0]] = _number(cells[1])
        except ValueError as error:
            raise _fail(path, line, VIDEO_STARTS_FORMAT, cells, str(error)) from None
    return starts


def read_label_map(path: str) -> dict[int, str]:
    """The action list `.pbtxt` (`item { name: "walk" id: 14 }`, also `label_id:`): {action_id: name}, in file
    order. AVA v2.2's evaluation list holds the 60 evaluated of the 80 actions."""
    if not os.path.isfile(path):
        raise DataError(f"label map {path} does not exist")
    labels: dict[int, str] = {}
    name = None
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            key, _, value = line.strip().partition(":")
            if key == "name":
                name = value.strip().strip('"')
            elif key in ("id", "label_id"):
                if name is None or not value.strip().isdigit() or int(value) < 1:
                    raise DataError(
                        f"{path}:{line_number}: expected 'id: N' (N >= 1) after a 'name: \"...\"' line, "
                        f"got {line.strip()!r}"
                    )
                labels[int(value)] = name
                name = None
    if not labels:
        raise DataError(f"{path} lists no actions; expected items like 'item {{ name: \"walk\" id: 14 }}'")
    return labels


@dataclass(frozen=True)
class Proposal:
    """A person box from a detector at a keyframe."""

    box: Box
    score: float


def read_proposals(path: str) -> dict[Keyframe, list[Proposal]]:
    """Person proposals by keyframe, from a CSV or a JSON file; duplicate boxes of a keyframe are kept once.

    CSV rows: `video_id,timestamp,x1,y1,x2,y2[,score]` (no score: 1), or SlowFast's `...,action_id,score` (the
    action column is ignored). JSON: `{"video_id,timestamp": [[x1, y1, x2, y2, score], ...]}`, the layout of the
    common `.pkl` proposal files.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension in PICKLE_EXTENSIONS:
        raise DataError(
            f"{path} is a pickle, which can run code when it is loaded; convert it once, on a machine you trust, "
            f"to JSON with: {CONVERT_PICKLE}"
        )
    proposals = _read_json_proposals(path) if extension == ".json" else _read_csv_proposals(path)
    return {key: list(dict.fromkeys(boxes)) for key, boxes in proposals.items()}


def _read_csv_proposals(path: str) -> dict[Keyframe, list[Proposal]]:
    proposals: dict[Keyframe, list[Proposal]] = {}
    for line, cells in read_csv_rows(path):
        if len(cells) not in (6, 7, 8) or not cells[0]:
            raise _fail(path, line, PROPOSAL_FORMAT, cells, f"{len(cells)} columns")
        try:
            key = keyframe_key(cells[0], _number(cells[1]))
            proposal = Proposal(_parse_box(cells[2:6], check_range=True), _number(cells[-1]) if len(cells) > 6 else 1.0)
        except ValueError as error:
            raise _fail(path, line, PROPOSAL_FORMAT, cells, str(error)) from None
        proposals.setdefault(key, []).append(proposal)
    return proposals


def _read_json_proposals(path: str) -> dict[Keyframe, list[Proposal]]:
    expected = '{"video_id,timestamp": [[x1, y1, x2, y2, score], ...]}'
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except ValueError as error:
        raise DataError(f"{path} is not valid JSON ({error}); expected {expected}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected {expected}, got a {type(data).__name__}")
    proposals = {}
    for name, boxes in data.items():
        video_id, _, timestamp = name.rpartition(",")
        try:
            if not video_id or not isinstance(boxes, list):
                raise ValueError("a 'video_id,timestamp' key with a list of boxes")
            proposals[keyframe_key(video_id, _number(timestamp))] = [_json_proposal(box) for box in boxes]
        except (ValueError, TypeError) as error:
            raise DataError(f"{path}: entry {name!r}: expected {expected} ({error})") from None
    return proposals


def _json_proposal(values) -> Proposal:
    if not isinstance(values, list) or len(values) != 5:
        raise ValueError(f"a box is [x1, y1, x2, y2, score], got {values!r}")
    return Proposal(_parse_box(values[:4], check_range=True), _number(values[4]))

"""Manifests: which videos (or frame folders) a dataset holds, with labels and per-source settings.

Accepted formats (see docs/data.md):
- official pretraining list, space separated: `path 0 -1` (video) or `frame_dir start_index total_frames`;
- official fine-tuning list, space separated: `path label` (video) or `frame_dir total_frames label`;
- CSV with a header `path,label[,start,end]` (`start`/`end`: frame range of the clip, end exclusive);
- a folder-per-class tree: `ROOT/<class>/<video file or frame folder>`;
- a shard index written by `videomae data prepare --shards` (see `videomae.data.shards`).

Relative paths are joined to `root` when one is given, else to the manifest's own folder (shard indexes: always
their own folder). Manifests, roots and the paths they list may be URLs (`s3://`, `gs://`, `http(s)://`, see
`videomae.data.remote`); relative paths in a remote manifest resolve against its own location.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from videomae.data import remote
from videomae.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")
SHARD_INDEX_HEADER = ["key", "shard", "offset", "size", "label"]
CSV_COLUMNS = ("path", "label", "start", "end")
MAX_CLASSES = 100_000  # a larger label is a typo; 10^9 classes would make a classifier head of hundreds of GB
LABEL_FILE_NAME = "labels.txt"  # beside a CSV of class names, fixes their order (`videomae data prepare` writes it)
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Sample:
    """One entry of a manifest.

    Attributes:
        path: absolute path of the video file, frame folder, or tar shard.
        label: class index, -1 when unlabelled.
        num_frames: frame count given by the manifest (frame folders), None to ask the decoder.
        start_index: number of the first frame file (frame folders); None = the source's setting.
        segment: (start, end) frame range of the clip inside the video, end exclusive; None = whole video.
        byte_range: (offset, size) of the video inside a tar shard; None for plain files.
        sampling_rate: frame interval for this sample's source.
        frame_template: file name template of frame folders.
        key: identifier for evaluation (the manifest path as written).
    """

    path: str
    label: int = -1
    num_frames: int | None = None
    start_index: int | None = None
    segment: tuple[int, int] | None = None
    byte_range: tuple[int, int] | None = None
    sampling_rate: int = 4
    frame_template: str = "img_{:05}.jpg"
    key: str = ""


@dataclass
class Manifest:
    """Samples plus the class names when the data names its classes."""

    samples: list[Sample]
    class_names: list[str] | None = None


class _LabelFile(NamedTuple):
    path: str
    names: list[str]


def _fail(file: str, line: int, expected: str, row: str) -> DataError:
    return DataError(f"{file}:{line}: expected {expected}, got {row.strip()!r}")


def _int(value: str, file: str, line: int, expected: str, row: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _fail(file, line, expected, row) from None


def _read_text(file: str) -> str:
    """The file decoded as UTF-8; a byte-order mark is dropped, any other invalid byte names its line."""
    data = remote.read_bytes(file)
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as error:
        position = skip + error.start
        line = data.count(b"\n", 0, position) + 1
        raise DataError(
            f"{file}:{line}: byte {position} (0x{data[position]:02x}) is not UTF-8; re-save the file as UTF-8"
        ) from None


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) pairs, splitting on any newline convention as `open` does."""
    return enumerate(io.StringIO(text, newline=None), start=1)


def _first_row(text: str) -> str:
    return next((line.strip() for _, line in _numbered_lines(text) if line.strip()), "")


def read_label_file(path: str) -> list[str]:
    """Class names, one per line (line number = class index), as the official `label_map_*.txt`."""
    if not remote.isfile(path):
        raise DataError(f"label file {path} does not exist")
    names, first_seen = [], {}
    for line_number, line in _numbered_lines(_read_text(path)):
        name = line.strip()
        if name in first_seen:
            raise DataError(
                f"{path}:{line_number}: class {name!r} is listed twice (first on line "
                f"{first_seen[name]}); list each class once, in index order"
            )
        if name:
            names.append(name)
            first_seen[name] = line_number
    if not names:
        raise DataError(f"{path}:1: the label file is empty; expected one class name per line")
    return names


def _base_folder(file: str, root: str) -> str:
    """Where relative paths of `file` point: the explicit root, else the manifest's own folder."""
    return remote.absolute(root) if root else remote.parent(file)


def _join(base: str, path: str) -> str:
    return remote.join(base, path)


def _class_index(value: int, file: str, line: int, label_file: _LabelFile | None) -> int:
    """`value` when it is a usable class index: not negative, below the label file's length or MAX_CLASSES."""
    if value < 0:
        raise DataError(f"{file}:{line}: label {value} is negative; class indices count from 0")
    if label_file and value >= len(label_file.names):
        raise DataError(
            f"{file}:{line}: label {value} is out of range: the label file {label_file.path} names "
            f"{len(label_file.names)} classes (0..{len(label_file.names) - 1}); fix the label or the file"
        )
    if value >= MAX_CLASSES:
        raise DataError(
            f"{file}:{line}: label {value} is out of range: at most {MAX_CLASSES} classes are "
            f"supported (0..{MAX_CLASSES - 1}); fix the label"
        )
    return value


def _read_space_list(file: str, text: str, root: str, stage: str, label_file: _LabelFile | None) -> list[Sample]:
    """Official space-separated lists; extra columns are ignored as in the official code."""
    if stage == "pretrain":
        expected = "'path 0 -1' or 'frame_dir start_index total_frames'"
    else:
        expected = "'path label' or 'frame_dir total_frames label'"
    base = _base_folder(file, root)
    samples = []
    for line_number, row in _numbered_lines(text):
        columns = row.split()
        if not columns:
            continue
        if stage == "pretrain" and len(columns) >= 3:
            first, total = (_int(c, file, line_number, expected, row) for c in columns[1:3])
            sample = Sample(
                _join(base, columns[0]), start_index=first, num_frames=total if total >= 0 else None, key=columns[0]
            )
        elif stage == "finetune" and len(columns) >= 2:
            *total, label = (_int(c, file, line_number, expected, row) for c in columns[1:3])
            sample = Sample(
                _join(base, columns[0]),
                label=_class_index(label, file, line_number, label_file),
                num_frames=total[0] if total else None,
                key=columns[0],
            )
        else:
            hint = " (or a CSV with the header 'path,label[,start,end]')" if "," in row else ""
            raise _fail(file, line_number, expected + hint, row)
        samples.append(sample)
    return samples


def _read_csv(file: str, text: str, root: str, label_file: _LabelFile | None) -> Manifest:
    """CSV with a header naming `path` and optionally `label`, `start`, `end`; labels are indices or names."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    header_line, header = rows[0][0], [cell.strip().lower() for cell in rows[0][1]]
    if "path" not in header or not set(header) <= set(CSV_COLUMNS) or len(set(header)) != len(header):
        raise DataError(
            f"{file}:{header_line}: expected a header 'path,label[,start,end]' (each column once), "
            f"got {','.join(header)!r}"
        )
    raw = []
    for line_number, row in rows[1:]:
        if len(row) != len(header):
            raise _fail(file, line_number, f"{len(header)} comma-separated values ({','.join(header)})", ",".join(row))
        values = {name: cell.strip() for name, cell in zip(header, row)}
        if not values["path"]:
            raise _fail(file, line_number, "a video path in the 'path' column", ",".join(row))
        raw.append((line_number, values))
    labels, class_names = _csv_labels(file, raw, label_file)
    base = _base_folder(file, root)
    samples = []
    for (line_number, values), label in zip(raw, labels):
        segment = None
        if "start" in values or "end" in values:
            row = ",".join(values.values())
            start = _int(values.get("start") or "0", file, line_number, "an integer start frame", row)
            end = _int(values.get("end") or "-1", file, line_number, "an integer end frame", row)
            segment = (start, end)
        samples.append(Sample(_join(base, values["path"]), label=label, segment=segment, key=values["path"]))
    return Manifest(samples, class_names)


def _csv_labels(
    file: str, raw: list[tuple[int, dict]], label_file: _LabelFile | None
) -> tuple[list[int], list[str] | None]:
    """Labels of CSV rows (empty = unlabelled, -1) and the class names.

    A label column holds either class indices or class names. The label file, else a `labels.txt` beside the
    CSV (`videomae data prepare` writes one, so its train and val lists agree even when val lacks a class), names
    the classes: indices are checked against it (else against MAX_CLASSES), names are numbered in its order
    (else sorted).
    """
    given = [(line, values["label"]) for line, values in raw if values.get("label")]
    if not given:
        return [-1] * len(raw), label_file.names if label_file else None
    first_line, first = given[0]
    numeric = bool(NUMBER.fullmatch(first))
    for line, text in given:
        if bool(NUMBER.fullmatch(text)) != numeric:
            kind, other = ("a class name", "a number") if numeric else ("a number", "a class name")
            raise DataError(
                f"{file}:{line}: label {text!r} is {kind} but line {first_line} has {other}; a label "
                f"column holds either class indices 0, 1, 2, ... or class names, not both"
            )
    label_file = label_file or _label_file_beside(file)
    if numeric:

        def to_index(line: int, text: str) -> int:
            value = _int(text, file, line, "a whole-number class index 0, 1, 2, ...", text)
            return _class_index(value, file, line, label_file)

        names = label_file.names if label_file else None
    else:
        names = label_file.names if label_file else sorted({text for _, text in given})
        lookup = {name: i for i, name in enumerate(names)}

        def to_index(line: int, text: str) -> int:
            if text not in lookup:
                raise _fail(
                    file,
                    line,
                    f"a class name from the label file {label_file.path}; add the class there or fix the row",
                    text,
                )
            return lookup[text]

    return [to_index(line, values["label"]) if values.get("label") else -1 for line, values in raw], names


def _label_file_beside(file: str) -> _LabelFile | None:
    path = remote.join(remote.parent(file), LABEL_FILE_NAME)
    return _LabelFile(path, read_label_file(path)) if remote.isfile(path) else None


def _read_class_tree(folder: str, label_file: _LabelFile | None) -> Manifest:
    """`folder/<class>/<video or frame folder>`: classes are the sorted sub-folders (or the label file)."""
    folder = remote.absolute(folder)
    entries = remote.listdir(folder)
    found = [name for name, is_dir in entries if is_dir]
    names = label_file.names if label_file else found
    lookup = {name: i for i, name in enumerate(names)}
    samples = []
    for name in found:
        class_folder = remote.join(folder, name)
        if name not in lookup:
            raise DataError(
                f"{class_folder}: class folder is not in the label file {label_file.path}; "
                f"add the class there or move the folder out"
            )
        for entry, is_dir in remote.listdir(class_folder):
            if is_dir or _is_video(entry):
                samples.append(Sample(remote.join(class_folder, entry), label=lookup[name], key=f"{name}/{entry}"))
    if samples:
        return Manifest(samples, names)
    if any(_is_video(name) for name, _ in entries):
        raise DataError(
            f"{folder}: the videos sit directly in the folder; put them in one sub-folder per class "
            f"({folder}/<class>/<video>) or list them in a CSV with a 'path' header"
        )
    raise DataError(f"{folder}: no videos found; expected {folder}/<class>/<video>{VIDEO_EXTENSIONS[0]}")


def _is_video(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _read_shard_index(file: str, text: str) -> Manifest:
    """Shards are named relative to their index, which is written beside them, so `root` does not apply."""
    base = _base_folder(file, "")
    expected = "key,shard,offset,size,label"
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [(reader.line_num, row) for row in reader if row]
    samples = []
    for line_number, row in rows[1:]:
        text = ",".join(row)
        if len(row) != 5:
            raise _fail(file, line_number, expected, text)
        offset, size, label = (_int(v, file, line_number, expected, text) for v in row[2:])
        samples.append(Sample(_join(base, row[1]), label=label, byte_range=(offset, size), key=row[0]))
    return Manifest(samples)


def read_manifest(manifest: str, root: str = "", stage: str = "finetune", labels: str | None = None) -> Manifest:
    """Read any supported manifest.

    Args:
        manifest: list file, CSV, shard index, or folder-per-class tree.
        root: folder that relative paths are joined to; empty = the manifest's own folder.
        stage: "pretrain" or "finetune"; decides how 3-column official rows are read.
        labels: optional label file fixing class names and order.

    Returns:
        The samples and the class names (None when the data has integer labels and no label file).

    Raises:
        DataError: missing, empty or non-UTF-8 manifest, or a malformed row or label (naming file, line and what
            to do).
    """
    label_file = _LabelFile(labels, read_label_file(labels)) if labels else None
    if remote.isdir(manifest):
        return _read_class_tree(manifest, label_file)
    if not remote.isfile(manifest):
        raise DataError(
            f"manifest {manifest} does not exist; point the run at your data with "
            f"data.manifest=PATH (a list file, a CSV with a path,label header, or a folder per class)"
        )
    text = _read_text(manifest)
    first = _first_row(text)
    if not first:
        raise DataError(
            f"{manifest}:1: the file is empty; expected one row per video (official list), or a header "
            f"'path,label[,start,end]' then one row per video (CSV)"
        )
    header = [cell.strip().lower() for cell in first.split(",")]
    if header == SHARD_INDEX_HEADER:
        found = _read_shard_index(manifest, text)
    elif "path" in header:
        found = _read_csv(manifest, text, root, label_file)
    else:
        found = Manifest(
            _read_space_list(manifest, text, root, stage, label_file), label_file.names if label_file else None
        )
    if not found.samples:
        raise DataError(f"{manifest}:2: no rows below the header; add one row per video")
    return found


def guess_stage(manifest: str) -> str:
    """ "pretrain" for an official pretraining list (3 columns, the last -1 or a frame count), else "finetune"."""
    if remote.isdir(manifest) or not remote.isfile(manifest):
        return "finetune"
    columns = _first_row(_read_text(manifest)).split()
    return "pretrain" if len(columns) == 3 and columns[2] == "-1" else "finetune"


def with_source(samples: list[Sample], sampling_rate: int, frame_template: str, start_index: int) -> list[Sample]:
    """Stamp a source's settings on its samples (a start index given by the manifest row wins)."""
    return [
        replace(
            s,
            sampling_rate=sampling_rate,
            frame_template=frame_template,
            start_index=start_index if s.start_index is None else s.start_index,
        )
        for s in samples
    ]

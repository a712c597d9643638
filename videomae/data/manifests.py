"""Manifests: which videos (or frame folders) a dataset holds, with labels and per-source settings.

Accepted formats (see docs/data.md):
- official pretraining list, space separated: `path 0 -1` (video) or `frame_dir start_index total_frames`;
- official fine-tuning list, space separated: `path label` (video) or `frame_dir total_frames label`;
- CSV with a header `path,label[,start,end]` (`start`/`end`: frame range of the clip, end exclusive);
- a folder-per-class tree: `ROOT/<class>/<video file or frame folder>`;
- a shard index written by `videomae data prepare --shards` (see `videomae.data.shards`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace

from videomae.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")
SHARD_INDEX_HEADER = ["key", "shard", "offset", "size", "label"]


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


def _fail(file: str, line: int, expected: str, row: str) -> DataError:
    return DataError(f"{file}:{line}: expected {expected}, got {row.strip()!r}")


def _int(value: str, file: str, line: int, expected: str, row: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _fail(file, line, expected, row) from None


def read_label_file(path: str) -> list[str]:
    """Class names, one per line (line number = class index), as the official `label_map_*.txt`."""
    if not os.path.isfile(path):
        raise DataError(f"label file {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        names = [line.strip() for line in handle if line.strip()]
    if len(set(names)) != len(names):
        raise DataError(f"label file {path} lists a class name twice")
    return names


def _join(root: str, path: str) -> str:
    return path if os.path.isabs(path) or not root else os.path.join(root, path)


def _read_space_list(file: str, root: str, stage: str) -> list[Sample]:
    """Official space-separated lists; extra columns are ignored as in the official code."""
    if stage == "pretrain":
        expected = "'path 0 -1' or 'frame_dir start_index total_frames'"
    else:
        expected = "'path label' or 'frame_dir total_frames label'"
    samples = []
    with open(file, encoding="utf-8") as handle:
        for line_number, row in enumerate(handle, start=1):
            columns = row.split()
            if not columns:
                continue
            if stage == "pretrain" and len(columns) >= 3:
                first, total = (_int(c, file, line_number, expected, row) for c in columns[1:3])
                sample = Sample(_join(root, columns[0]), start_index=first,
                                num_frames=total if total >= 0 else None, key=columns[0])
            elif stage == "finetune" and len(columns) == 2:
                sample = Sample(_join(root, columns[0]), label=_int(columns[1], file, line_number, expected, row),
                                key=columns[0])
            elif stage == "finetune" and len(columns) >= 3:
                total, label = (_int(c, file, line_number, expected, row) for c in columns[1:3])
                sample = Sample(_join(root, columns[0]), label=label, num_frames=total, key=columns[0])
            else:
                raise _fail(file, line_number, expected, row)
            samples.append(sample)
    return samples


def _read_csv(file: str, root: str, class_names: list[str] | None) -> Manifest:
    """CSV with a header naming `path` and optionally `label`, `start`, `end`; labels are indices or names."""
    with open(file, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = [h.strip() for h in rows[0]]
    unknown = set(header) - {"path", "label", "start", "end"}
    if "path" not in header or unknown:
        raise DataError(f"{file}:1: expected a header 'path,label[,start,end]', got {','.join(header)!r}")
    column = {name: header.index(name) for name in header}
    raw = []
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise _fail(file, line_number, f"{len(header)} comma-separated values ({','.join(header)})", ",".join(row))
        raw.append((line_number, {name: row[i].strip() for name, i in column.items()}))
    labels, class_names = _resolve_labels(file, raw, class_names)
    samples = []
    for (line_number, values), label in zip(raw, labels):
        segment = None
        if "start" in values or "end" in values:
            text = ",".join(values.values())
            start = _int(values.get("start") or "0", file, line_number, "an integer start frame", text)
            end = _int(values.get("end") or "-1", file, line_number, "an integer end frame", text)
            segment = (start, end)
        samples.append(Sample(_join(root, values["path"]), label=label, segment=segment, key=values["path"]))
    return Manifest(samples, class_names)


def _resolve_labels(file: str, raw: list[tuple[int, dict]], class_names: list[str] | None
                    ) -> tuple[list[int], list[str] | None]:
    """Integer labels as given; names mapped through the label file, or sorted when there is none."""
    texts = [values.get("label", "") for _, values in raw]
    if all(t.lstrip("-").isdigit() for t in texts if t) or not any(texts):
        return [int(t) if t else -1 for t in texts], class_names
    names = class_names or sorted(set(texts))
    lookup = {name: i for i, name in enumerate(names)}
    for (line_number, values), text in zip(raw, texts):
        if text not in lookup:
            raise _fail(file, line_number, f"a class name from the label file, not {text!r}", ",".join(values.values()))
    return [lookup[t] for t in texts], names


def _read_class_tree(folder: str, class_names: list[str] | None) -> Manifest:
    """`folder/<class>/<video or frame folder>`: classes are the sorted sub-folders (or the label file)."""
    found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    names = class_names or found
    lookup = {name: i for i, name in enumerate(names)}
    samples = []
    for name in found:
        if name not in lookup:
            raise DataError(f"{folder}: class folder {name!r} is not in the label file")
        for entry in sorted(os.scandir(os.path.join(folder, name)), key=lambda e: e.name):
            if entry.is_dir() or entry.name.lower().endswith(VIDEO_EXTENSIONS):
                key = f"{name}/{entry.name}"
                samples.append(Sample(entry.path, label=lookup[name], key=key))
    if not samples:
        raise DataError(f"{folder}: no videos found; expected {folder}/<class>/<video>{VIDEO_EXTENSIONS[0]}")
    return Manifest(samples, names)


def _read_shard_index(file: str) -> Manifest:
    folder = os.path.dirname(os.path.abspath(file))
    expected = "key,shard,offset,size,label"
    with open(file, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    samples = []
    for line_number, row in enumerate(rows[1:], start=2):
        text = ",".join(row)
        if len(row) != 5:
            raise _fail(file, line_number, expected, text)
        offset, size, label = (_int(v, file, line_number, expected, text) for v in row[2:])
        samples.append(Sample(os.path.join(folder, row[1]), label=label, byte_range=(offset, size), key=row[0]))
    return Manifest(samples)


def _first_line(file: str) -> str:
    with open(file, encoding="utf-8") as handle:
        return handle.readline().strip()


def read_manifest(manifest: str, root: str = "", stage: str = "finetune", labels: str | None = None) -> Manifest:
    """Read any supported manifest.

    Args:
        manifest: list file, CSV, shard index, or folder-per-class tree.
        root: folder that relative paths are joined to (folder trees use absolute paths).
        stage: "pretrain" or "finetune"; decides how 3-column official rows are read.
        labels: optional label file fixing class names and order.

    Returns:
        The samples and the class names (None when the data has integer labels and no label file).

    Raises:
        DataError: missing manifest, or a malformed row (naming file, line and what was expected).
    """
    class_names = read_label_file(labels) if labels else None
    if os.path.isdir(manifest):
        return _read_class_tree(manifest, class_names)
    if not os.path.isfile(manifest):
        raise DataError(f"manifest {manifest} does not exist; point the run at your data with "
                        f"data.manifest=PATH (a list file, a CSV with a path,label header, or a folder per class)")
    first = _first_line(manifest)
    if first.replace(" ", "").split(",") == SHARD_INDEX_HEADER:
        return _read_shard_index(manifest)
    if first.replace(" ", "").startswith("path"):
        found = _read_csv(manifest, root, class_names)
    else:
        found = Manifest(_read_space_list(manifest, root, stage), class_names)
    if not found.samples:
        raise DataError(f"manifest {manifest} lists no samples")
    return found


def guess_stage(manifest: str) -> str:
    """"pretrain" for an official pretraining list (3 columns, the last -1 or a frame count), else "finetune"."""
    if os.path.isdir(manifest) or not os.path.isfile(manifest):
        return "finetune"
    columns = _first_line(manifest).split()
    return "pretrain" if len(columns) == 3 and columns[2] == "-1" else "finetune"


def with_source(samples: list[Sample], sampling_rate: int, frame_template: str, start_index: int) -> list[Sample]:
    """Stamp a source's settings on its samples (a start index given by the manifest row wins)."""
    return [replace(s, sampling_rate=sampling_rate, frame_template=frame_template,
                    start_index=start_index if s.start_index is None else s.start_index) for s in samples]

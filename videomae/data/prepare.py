"""`videomae data prepare`: re-encode a folder of videos for cheap seeks, with its lists, split and shards."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction

from videomae.data.manifests import LABEL_FILE_NAME, VIDEO_EXTENSIONS
from videomae.data.scan import parallel_map
from videomae.data.shards import ShardWriter, shard_key
from videomae.errors import DataError

PARTIAL_SUFFIX = ".part"  # files are written under this suffix and renamed when complete
PREPARE_SETTINGS = "prepare_settings.json"
PREPARE_FAILURES = "prepare_failures.jsonl"


@dataclass(frozen=True)
class PrepareJob:
    """Re-encode `source` to `target` with the short side at `short_side` pixels."""

    source: str
    target: str
    short_side: int
    crf: int = 23


@dataclass
class PrepareResult:
    """What `prepare_videos` did.

    Attributes:
        manifest: `DST/manifest.csv`, listing every prepared video.
        listed: videos in the manifest (encoded now or by an earlier run).
        encoded: videos re-encoded by this run.
        skipped: videos whose output an earlier (interrupted) run had already completed.
        failures: {"path", "reason"} per input that could not be re-encoded (also in `DST/prepare_failures.jsonl`).
        train: videos in `DST/train.csv`, None without a validation fraction.
        val: videos in `DST/val.csv`, None without a validation fraction.
        shards: folder of the tar shards, None without shards.
    """

    manifest: str
    listed: int
    encoded: int
    skipped: int
    failures: list[dict[str, str]]
    train: int | None = None
    val: int | None = None
    shards: str | None = None


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at `short_side` (never enlarged), both even for 4:2:0."""
    scale = min(short_side / min(height, width), 1.0)
    return max(2, int(round(height * scale / 2)) * 2), max(2, int(round(width * scale / 2)) * 2)


def reencode(job: PrepareJob) -> str | None:
    """Re-encode one video as H.264 with a 1 s keyframe interval (cheap seeks); None or the failure reason.

    The video is written under a temporary name and renamed when complete, so a killed run never leaves a
    partial file under the final name.
    """
    import av

    partial = job.target + PARTIAL_SUFFIX
    try:
        os.makedirs(os.path.dirname(job.target), exist_ok=True)
        with av.open(job.source) as source, av.open(partial, "w", format="mp4") as target:
            stream_in = source.streams.video[0]
            rate = stream_in.average_rate or stream_in.guessed_rate or 25
            height, width = scaled_size(stream_in.height, stream_in.width, job.short_side)
            stream_out = target.add_stream("libx264", rate=rate)
            stream_out.height, stream_out.width, stream_out.pix_fmt = height, width, "yuv420p"
            stream_out.options = {"crf": str(job.crf), "preset": "veryfast", "g": str(max(1, round(float(rate))))}
            for number, frame in enumerate(source.decode(stream_in)):
                frame = frame.reformat(width=width, height=height, format="yuv420p")
                frame.pts, frame.time_base = number, 1 / Fraction(rate)  # constant frame rate from here on
                target.mux(stream_out.encode(frame))
            target.mux(stream_out.encode())
        os.replace(partial, job.target)
    except Exception as error:  # report and go on: one broken source must not stop the others
        with contextlib.suppress(OSError):
            os.remove(partial)
        return f"{type(error).__name__}: {error}"
    return None


def find_videos(folder: str) -> list[str]:
    """Video files under `folder`, as sorted relative paths."""
    found = []
    for directory, _, names in os.walk(folder):
        found += [
            os.path.relpath(os.path.join(directory, n), folder) for n in names if n.lower().endswith(VIDEO_EXTENSIONS)
        ]
    return sorted(found)


def output_name(relative: str) -> str:
    """Relative path of an input's prepared video: `.mp4` names are kept, others get `.mp4` appended.

    `a.avi` becomes `a.avi.mp4`, so `a.avi` and `a.mp4` of one folder never share an output, and a name depends
    on its input alone (a rerun finds the outputs of the earlier run whatever else was added).
    """
    return relative if relative.lower().endswith(".mp4") else relative + ".mp4"


def prepare_videos(
    src: str,
    dst: str,
    short_side: int = 320,
    workers: int = 1,
    crf: int = 23,
    shard_size: int = 0,
    val_fraction: float | None = None,
    seed: int = 0,
) -> PrepareResult:
    """Re-encode every video under `src` into `dst` (names from `output_name`) and write the lists.

    `dst/manifest.csv` lists every prepared video (`path,label` when the videos sit in class folders: the label
    is the class index, `dst/labels.txt` lists the class folder names sorted, one per line; else `path` only,
    unlabelled). Indices rather than names keep class folders named by numbers (`0/`, `10/`) unambiguous. With
    `val_fraction` the videos are also split into `dst/train.csv` and `dst/val.csv` (see `validation_part`).
    With `shard_size > 0` they are also packed into tar shards under `dst/shards/` with their own `index.csv`.
    Outputs already complete (from an interrupted run with the same settings) are kept, not re-encoded. Failed
    inputs are listed in `dst/prepare_failures.jsonl` (empty when none) and left out of the lists.

    Raises:
        DataError: no videos under `src`, `dst` overlapping `src`, two inputs with one output name, `dst`
            prepared earlier with other settings, or a validation fraction outside (0, 1).
    """
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise DataError(f"--val-fraction must lie strictly between 0 and 1, got {val_fraction}")
    jobs = _plan_jobs(src, dst, short_side, crf)
    _refuse_writing_into_source(src, dst, jobs)
    _claim_destination(dst, {"short_side": short_side, "crf": crf})
    todo = [job for job in jobs if not os.path.isfile(job.target)]
    reasons = dict(zip(todo, parallel_map(reencode, todo, workers)))
    failures = [{"path": job.source, "reason": reasons[job]} for job in todo if reasons[job]]
    _write_atomically(os.path.join(dst, PREPARE_FAILURES), "".join(json.dumps(f) + "\n" for f in failures))
    done = [os.path.relpath(job.target, dst) for job in jobs if not reasons.get(job)]
    classes = _class_names(done)
    names = sorted(set(classes or []))  # labels.txt: row i names class i
    rows = list(zip(done, [str(names.index(c)) for c in classes] if classes else [None] * len(done)))
    result = PrepareResult(
        _write_list(dst, "manifest.csv", rows, classes is not None),
        len(done),
        len(todo) - len(failures),
        len(jobs) - len(todo),
        failures,
    )
    if classes is not None:
        _write_atomically(os.path.join(dst, LABEL_FILE_NAME), "".join(f"{c}\n" for c in names))
    if val_fraction is not None:
        val = validation_part(done, classes, val_fraction, seed)
        _write_list(dst, "train.csv", [row for row in rows if row[0] not in val], classes is not None)
        _write_list(dst, "val.csv", [row for row in rows if row[0] in val], classes is not None)
        result.train, result.val = len(done) - len(val), len(val)
    if shard_size > 0:
        result.shards = os.path.dirname(_write_prepared_shards(dst, done, classes, shard_size))
    return result


def validation_part(paths: list[str], classes: list[str] | None, fraction: float, seed: int) -> set[str]:
    """The paths that go to validation, stratified by class.

    Each class of n videos gives round(fraction * n) (half up) to validation but keeps at least one for
    training; without classes the whole list is one class. Which videos go is decided by a hash of
    (seed, path), so the split depends only on the seed and the file list, not on order or worker count.
    """
    members: dict[str | None, list[str]] = {}
    for path, name in zip(paths, classes or [None] * len(paths)):
        members.setdefault(name, []).append(path)
    chosen: set[str] = set()
    for group in members.values():
        count = min(math.floor(fraction * len(group) + 0.5), len(group) - 1)
        chosen.update(sorted(group, key=lambda path: hashlib.sha256(f"{seed}:{path}".encode()).digest())[:count])
    return chosen


def _plan_jobs(src: str, dst: str, short_side: int, crf: int) -> list[PrepareJob]:
    relative = find_videos(src)
    if not relative:
        raise DataError(
            f"{src}: no video files found ({', '.join(VIDEO_EXTENSIONS[:4])}, ...); point prepare at a folder of videos"
        )
    owner: dict[str, str] = {}
    for path in relative:
        name = output_name(path)
        if name in owner:
            raise DataError(
                f"{os.path.join(src, owner[name])} and {os.path.join(src, path)} would both be prepared "
                f"as {os.path.join(dst, name)}; rename one of them"
            )
        owner[name] = path
    return [
        PrepareJob(os.path.join(src, path), os.path.join(dst, name), short_side, crf) for name, path in owner.items()
    ]


def _refuse_writing_into_source(src: str, dst: str, jobs: list[PrepareJob]) -> None:
    """The destination must be disjoint from the source, symbolic links resolved, so no input is overwritten."""
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    relation = (
        "is"
        if real_dst == real_src
        else "is inside"
        if _within(real_dst, real_src)
        else "contains"
        if _within(real_src, real_dst)
        else ""
    )
    if relation:
        raise DataError(
            f"destination {dst} {relation} the source folder {src}; choose a destination outside it, "
            f"so that no input can be overwritten"
        )
    inputs = {os.path.realpath(job.source) for job in jobs}
    for job in jobs:
        real = os.path.realpath(job.target)
        if real in inputs or _within(real, real_src):
            raise DataError(
                f"output {job.target} resolves to {real}, inside the source folder {src} (a symbolic "
                f"link?); choose a destination outside the source"
            )


def _within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _claim_destination(dst: str, settings: dict[str, int]) -> None:
    """Record the settings in `dst`; refuse a destination an earlier run filled with other settings, whose
    complete outputs a rerun would keep as they are."""
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise DataError(f"destination {dst} is a file; choose a folder")
    record = os.path.join(dst, PREPARE_SETTINGS)
    if os.path.isfile(record):
        with open(record, encoding="utf-8") as handle:
            earlier = json.load(handle)
        if earlier != settings:
            raise DataError(
                f"{dst} was prepared with {_as_flags(earlier)}, not {_as_flags(settings)}; rerun with "
                f"those settings to finish it, or choose a new destination"
            )
    _write_atomically(record, json.dumps(settings) + "\n")


def _as_flags(settings: dict[str, int]) -> str:
    return " ".join(f"--{name.replace('_', '-')} {value}" for name, value in settings.items())


def _write_atomically(path: str, text: str) -> None:
    """Write under a temporary name, then rename: readers never see a half-written file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + PARTIAL_SUFFIX, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(path + PARTIAL_SUFFIX, path)


def _class_names(paths: list[str]) -> list[str] | None:
    """The first folder of every path when all videos sit in class folders, else None."""
    parts = [p.split(os.sep) for p in paths]
    if not paths or any(len(p) < 2 for p in parts):
        return None
    return [p[0] for p in parts]


def _write_list(dst: str, name: str, rows: list[tuple[str, str | None]], labelled: bool) -> str:
    """A `path,label` CSV (`path` alone when not labelled) of (path relative to `dst`, class index) rows."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label"] if labelled else ["path"])
    writer.writerows(row if labelled else row[:1] for row in rows)
    _write_atomically(os.path.join(dst, name), text.getvalue())
    return os.path.join(dst, name)


def _write_prepared_shards(dst: str, paths: list[str], classes: list[str] | None, shard_size: int) -> str:
    lookup = {name: i for i, name in enumerate(sorted(set(classes or [])))}
    writer = ShardWriter(os.path.join(dst, "shards"), shard_size)
    for i, path in enumerate(paths):
        with open(os.path.join(dst, path), "rb") as handle:
            writer.add(shard_key(path), handle.read(), lookup[classes[i]] if classes else -1)
    return writer.close()

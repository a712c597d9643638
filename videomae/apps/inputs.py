"""The inputs of the apps: video files, frame folders and folders of them, each with the name its outputs get."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from videomae.data.decoders import IMAGE_EXTENSIONS, FrameFolderReader, VideoReader, open_video
from videomae.data.manifests import VIDEO_EXTENSIONS
from videomae.errors import DataError


def is_frame_folder(path: str) -> bool:
    """A directory that directly holds image files."""
    return os.path.isdir(path) and any(name.lower().endswith(IMAGE_EXTENSIONS) for name in os.listdir(path))


def is_video_file(path: str) -> bool:
    return os.path.isfile(path) and path.lower().endswith(VIDEO_EXTENSIONS)


def frame_template(folder: str) -> tuple[str, int, int]:
    """(template, first number, frame count) of a frame folder whose files are numbered, e.g. img_00001.jpg.

    Raises:
        DataError: the image names are not `<prefix><number><extension>` with one prefix and extension.
    """
    names = sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))
    parsed = [re.fullmatch(r"(.*?)(\d+)(\.\w+)", name) for name in names]
    if not all(parsed) or len({(m.group(1), m.group(3)) for m in parsed}) != 1:
        raise DataError(
            f"frame folder {folder}: image names must be numbered the same way "
            f"(e.g. img_00001.jpg, img_00002.jpg, ...), got {names[0]!r} ... {names[-1]!r}"
        )
    first = parsed[0]
    padded = len({len(m.group(2)) for m in parsed}) == 1  # img_00001.jpg (zero-padded) or img_1.jpg ... img_10.jpg
    number = f"{{:0{len(first.group(2))}d}}" if padded else "{}"
    numbers = sorted(int(m.group(2)) for m in parsed)
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise DataError(
            f"frame folder {folder}: frame numbers are not consecutive ({numbers[0]}..{numbers[-1]} "
            f"for {len(numbers)} files)"
        )
    return first.group(1) + number + first.group(3), numbers[0], len(numbers)


@dataclass(frozen=True)
class InputVideo:
    """One input of a product command: a video file or a frame folder, and the name its outputs get."""

    path: str
    video_id: str

    @property
    def is_frame_folder(self) -> bool:
        return os.path.isdir(self.path)

    def open(self, backend: str = "pyav", threads: int = 1) -> VideoReader:
        """A reader over the video's frames; raises `DataError` naming the path when it cannot be read."""
        if self.is_frame_folder:
            template, start, count = frame_template(self.path)
            return FrameFolderReader(self.path, template, start, count)
        return open_video(self.path, backend, threads)


def _video_id(path: str) -> str:
    name = os.path.basename(os.path.normpath(path))
    return name if os.path.isdir(path) else os.path.splitext(name)[0]


def _walk_inputs(folder: str) -> list[str]:
    """Video files and frame folders anywhere under `folder` (a frame folder is not searched further)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in list(dirs):
            if is_frame_folder(os.path.join(root, name)):
                found.append(os.path.join(root, name))
                dirs.remove(name)
        found += [os.path.join(root, name) for name in sorted(files) if is_video_file(os.path.join(root, name))]
    return found


def discover_inputs(paths: list[str], unique_ids: bool = False) -> list[InputVideo]:
    """Expand command-line inputs: video files, frame folders, and folder trees holding them.

    Args:
        paths: files and folders as given.
        unique_ids: require distinct output names (file names without extension).

    Raises:
        DataError: a path does not exist, a folder holds no video, or (with `unique_ids`) two inputs would
            write the same output name.
    """
    found: list[str] = []
    for path in paths:
        if not os.path.exists(path):
            raise DataError(f"input {path} does not exist")
        if os.path.isfile(path) or is_frame_folder(path):
            found.append(path)
            continue
        inside = _walk_inputs(path)
        if not inside:
            raise DataError(
                f"folder {path} holds no video files ({', '.join(VIDEO_EXTENSIONS[:4])}, ...) and no frame folders"
            )
        found += inside
    inputs = [InputVideo(path, _video_id(path)) for path in found]
    seen: dict[str, str] = {}
    for item in inputs if unique_ids else []:
        if item.video_id in seen:
            raise DataError(
                f"two inputs have the same name {item.video_id!r}: {seen[item.video_id]} and {item.path}; "
                f"outputs are named by file name, so rename one"
            )
        seen[item.video_id] = item.path
    return inputs


def read_list_file(path: str) -> list[str]:
    """Paths listed one per line (blank lines and #-comments skipped), relative to the list's folder."""
    if not os.path.isfile(path):
        raise DataError(f"list file {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as handle:
        rows = [line.strip() for line in handle]
    return [row if os.path.isabs(row) else os.path.join(base, row) for row in rows if row and not row.startswith("#")]

"""What the product commands share: loading a checkpoint with what it was trained with, and opening inputs.

A checkpoint given to `extract`, `predict` or `visualize` is anything `videomae.checkpoint.locate` accepts: an
official `.pth`, a Hugging Face directory, a directory in our format, or a training run directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from dataclasses import dataclass

import torch
import torch.nn as nn

from videomae.checkpoint import Preprocessing, locate, read_preprocessing
from videomae.data import FrameFolderReader, VideoReader, open_video
from videomae.data.decoders import IMAGE_EXTENSIONS
from videomae.data.manifests import VIDEO_EXTENSIONS
from videomae.errors import ConfigError, DataError

_HASH_CHUNK = 1 << 20


def say(line: str) -> None:
    """A status line for the user (stderr, so stdout stays machine-readable)."""
    print(line, file=sys.stderr, flush=True)


def load_model(checkpoint: str, model_name: str | None = None, **overrides) -> nn.Module:
    """A model in eval mode from any supported checkpoint (see the module docstring); says which weights of a
    training run it took.

    Args:
        checkpoint: file or directory.
        model_name: architecture name, needed only for official files whose architecture cannot be inferred.
        **overrides: ModelConfig fields (num_classes, kind, ...).

    Raises:
        CheckpointError: the checkpoint is missing or cannot be read.
    """
    from videomae import create_model

    location = locate(checkpoint)
    if location.note:
        say(location.note)
    model = create_model(model_name, pretrained=str(location.path), **overrides)
    return model.eval().requires_grad_(False)


@dataclass
class TrainedSettings:
    """A checkpoint's training preprocessing, as defaults for a command's options.

    `pick(option, given, fallback)`: the value given on the command line (with a warning when it differs from
    training), else the trained value, else the command's own default.
    """

    preprocessing: Preprocessing | None = None
    source: str = ""

    @classmethod
    def of(cls, checkpoint: str) -> "TrainedSettings":
        found = read_preprocessing(locate(checkpoint))
        return cls(*found) if found else cls()

    def pick(self, option: str, given, trained_field: str | None, fallback):
        trained = getattr(self.preprocessing, trained_field) if self.preprocessing and trained_field else None
        if given is None:
            return fallback if trained is None else trained
        if trained is not None and given != trained:
            say(f"warning: {option} {given} differs from the {trained} the model was trained with ({self.source})")
        return given


def checkpoint_sha256(checkpoint: str) -> str:
    """SHA-256 of a checkpoint file, or of every file of a checkpoint directory (names and bytes, sorted)."""
    path = str(locate(checkpoint).path)
    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
    for file in files:
        if os.path.isdir(path):
            digest.update(os.path.relpath(file, path).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def pick_device(name: str | None) -> torch.device:
    """The requested device, or CUDA when available, else the CPU."""
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise ConfigError(f"unknown device {name!r}: {error}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device: torch.device):
    """fp32 (no autocast) or bf16 autocast on `device`."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ConfigError(f"precision must be fp32 or bf16, got {precision!r}")


# ---- inputs -----------------------------------------------------------------------------------------------


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
        raise DataError(f"frame folder {folder}: image names must be numbered the same way "
                        f"(e.g. img_00001.jpg, img_00002.jpg, ...), got {names[0]!r} ... {names[-1]!r}")
    first = parsed[0]
    padded = len({len(m.group(2)) for m in parsed}) == 1  # img_00001.jpg (zero-padded) or img_1.jpg ... img_10.jpg
    number = f"{{:0{len(first.group(2))}d}}" if padded else "{}"
    numbers = sorted(int(m.group(2)) for m in parsed)
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        raise DataError(f"frame folder {folder}: frame numbers are not consecutive ({numbers[0]}..{numbers[-1]} "
                        f"for {len(numbers)} files)")
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
            raise DataError(f"folder {path} holds no video files ({', '.join(VIDEO_EXTENSIONS[:4])}, ...) "
                            f"and no frame folders")
        found += inside
    inputs = [InputVideo(path, _video_id(path)) for path in found]
    seen: dict[str, str] = {}
    for item in inputs if unique_ids else []:
        if item.video_id in seen:
            raise DataError(f"two inputs have the same name {item.video_id!r}: {seen[item.video_id]} and {item.path}; "
                            f"outputs are named by file name, so rename one")
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

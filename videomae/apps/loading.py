"""A checkpoint as the apps use it: loaded for inference, with what it was trained with, and its fingerprint.

A checkpoint given to `extract`, `predict` or `visualize` is anything `videomae.checkpoint.locate` accepts: a zoo
name, an `hf-hub:` reference, an official `.pth`, a Hugging Face directory, a directory in our format, or a
training run directory.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass

import torch.nn as nn

from videomae.checkpoint import Preprocessing, locate, read_preprocessing

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
    def of(cls, checkpoint: str) -> TrainedSettings:
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
    files = (
        [path]
        if os.path.isfile(path)
        else sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
    )
    for file in files:
        if os.path.isdir(path):
            digest.update(os.path.relpath(file, path).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()

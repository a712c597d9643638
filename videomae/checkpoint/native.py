"""The project's own format: a directory with `model.safetensors` and `config.json`.

config.json is `ModelConfig.to_dict()` plus a format marker and version, so a directory fully describes its
network: it loads with no model name, and safetensors means loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from videomae.errors import CheckpointError
from videomae.models.config import ModelConfig

FORMAT = "videomae"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_pretrained(model: nn.Module, directory: str | Path) -> Path:
    """Write `model` (VisionTransformer or PretrainVisionTransformer) in our format.

    Args:
        model: a model built by `videomae.models` (it carries its `config`).
        directory: created if needed; existing config.json / model.safetensors are replaced.

    Returns:
        The directory.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, **model.config.to_dict()}
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def is_native(config: dict) -> bool:
    return config.get("format") == FORMAT


def read_native(directory: Path, config: dict) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The state dict and config of a directory in our format (config.json already parsed)."""
    from safetensors.torch import load_file

    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{directory} is videomae format version {version}; this version reads "
                              f"{FORMAT_VERSION}: upgrade videomae")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory} has a videomae config.json but no {WEIGHTS_FILE}")
    fields = {key: value for key, value in config.items() if key not in ("format", "format_version")}
    return load_file(str(weights)), ModelConfig.from_dict(fields)

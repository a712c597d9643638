"""The project's own format: a directory with `model.safetensors` and `config.json`.

config.json is `ModelConfig.to_dict()` plus a format marker and version, so a directory fully describes its
network: it loads with no model name, and safetensors means loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from videomae.checkpoint.locate import read_json
from videomae.checkpoint.official import read_checkpoint
from videomae.errors import CheckpointError, ConfigError
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


def read_native(directory: Path, config: dict) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The state dict and config of a directory in our format (config.json already parsed)."""
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} is videomae format version {version}; this version reads {FORMAT_VERSION}: upgrade videomae"
        )
    fields = {key: value for key, value in config.items() if key not in ("format", "format_version")}
    return _read_weights(directory), _model_config(fields, directory / CONFIG_FILE)


def read_step_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The weights and architecture of a training checkpoint `checkpoints/step_*` (meta.json's model_config)."""
    meta = read_json(directory / "meta.json")
    if not isinstance(meta.get("model_config"), dict):
        raise CheckpointError(f"{directory / 'meta.json'} has no model_config; load the run's export/ instead")
    return _read_weights(directory), _model_config(meta["model_config"], directory / "meta.json")


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    weights = directory / WEIGHTS_FILE
    if not weights.is_file() and (directory / "sharded").is_dir():
        raise CheckpointError(
            f"{directory} is a sharded (FSDP) training checkpoint, which only resumes its run; for "
            f"the weights use the run's export/ or checkpoints/best (written at the end of the run "
            f"and at each validation)"
        )
    if not weights.is_file():
        raise CheckpointError(f"{directory} has a videomae config but no {WEIGHTS_FILE}")
    return read_checkpoint(weights)


def _model_config(fields: dict, source: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(fields)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{source} does not describe a model this version can build: {error}") from None

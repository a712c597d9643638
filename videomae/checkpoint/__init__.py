"""Checkpoint interop: official VideoMAE V2 files, Hugging Face transformers directories, OpenGVLab's custom-code
VideoMAEv2 repositories and our own format, local or by name from the Hugging Face Hub (`hf-hub:...`, zoo names).

`read_source(path)` reads any of them safely into our key names; `videomae.factory.load_pretrained` (what
`create_model(pretrained=path)` calls) fits the weights to a model (a pretraining encoder into a classifier, a K710
head into a K400/600/700 classifier) and loads strictly, with a `LoadReport` of everything that did not map one to
one. `save_pretrained` writes our format and `save_hf` a transformers directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from videomae.checkpoint.hf import read_hf, save_hf
from videomae.checkpoint.locate import Location, locate, read_json, read_labels, read_preprocessing
from videomae.checkpoint.native import read_native, read_step_checkpoint, save_pretrained
from videomae.checkpoint.official import (
    checkpoint_filter_fn,
    clean_state_dict,
    read_checkpoint,
    resolve_deepspeed,
    unwrap_container,
)
from videomae.checkpoint.opengvlab import read_opengvlab
from videomae.checkpoint.preprocessing import Preprocessing
from videomae.checkpoint.report import LoadReport, load_into
from videomae.checkpoint.zoo import ZooEntry, list_pretrained
from videomae.models.config import ModelConfig


@dataclass
class Source:
    """A checkpoint read into our key names. `config` is None for official files (inferred on demand)."""

    path: Path
    format: str
    state: dict[str, torch.Tensor]
    config: ModelConfig | None = None
    notes: list[str] = field(default_factory=list)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of an official checkpoint file (.pth/.pt/.bin/.safetensors or DeepSpeed directory).

    Containers (`model`, `module`) are unwrapped and `_orig_mod.` / `module.` prefixes dropped; `encoder.` and
    `backbone.` are kept (they say which part of a model the keys belong to). Never runs pickled code.
    """
    path = Path(path)
    if path.is_dir():
        path = resolve_deepspeed(path)
    return clean_state_dict(unwrap_container(read_checkpoint(path), str(path)))


def read_source(path: str | Path) -> Source:
    """Read a checkpoint of any supported kind (`videomae.checkpoint.locate`) without building a model."""
    location = locate(path)
    notes = [location.note] if location.note else []
    if location.kind == "videomae":
        state, model_config = read_native(location.path, read_json(location.path / "config.json"))
        return Source(location.path, "videomae", state, model_config, notes)
    if location.kind in ("hf", "opengvlab"):
        reader = read_hf if location.kind == "hf" else read_opengvlab
        state, model_config, more_notes = reader(location.path, read_json(location.path / "config.json"))
        return Source(location.path, location.kind, state, model_config, notes + more_notes)
    if location.kind == "step":
        state, model_config = read_step_checkpoint(location.path)
        return Source(location.path, "videomae", state, model_config, notes)
    return Source(location.path, "official", load_state_dict_file(location.path), None, notes)


__all__ = [
    "Location",
    "LoadReport",
    "Preprocessing",
    "Source",
    "ZooEntry",
    "checkpoint_filter_fn",
    "list_pretrained",
    "load_into",
    "load_state_dict_file",
    "locate",
    "read_labels",
    "read_preprocessing",
    "read_source",
    "save_hf",
    "save_pretrained",
]

"""Checkpoint interop: official VideoMAE V2 files, Hugging Face transformers directories, OpenGVLab's custom-code
VideoMAEv2 repositories and our own format, local or by name from the Hugging Face Hub (`hf-hub:...`, zoo names).

`load_pretrained(path)` (what `create_model(pretrained=path)` calls) reads any of them safely, fits it to the
model (a pretraining encoder into a classifier, a K710 head into a K400/600/700 classifier) and loads strictly,
with a `LoadReport` of everything that did not map one to one. `save_pretrained` writes our format and
`save_hf` a transformers directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from videomae.checkpoint.hf import read_hf, save_hf
from videomae.checkpoint.locate import Location, locate, read_json, read_labels, read_preprocessing
from videomae.checkpoint.native import read_native, read_step_checkpoint, save_pretrained
from videomae.checkpoint.opengvlab import read_opengvlab
from videomae.checkpoint.preprocessing import Preprocessing
from videomae.checkpoint.official import (checkpoint_filter_fn, clean_state_dict, infer_fields, read_checkpoint,
                                          resolve_deepspeed, unwrap_container)
from videomae.checkpoint.report import LoadReport, load_into
from videomae.checkpoint.zoo import ZooEntry, list_pretrained
from videomae.errors import CheckpointError
from videomae.models import build_model, get_config
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


def choose_config(source: Source, name: str | None, overrides: dict) -> ModelConfig:
    """The architecture to build; overrides apply in every case.

    A checkpoint that carries its architecture (our format, Hugging Face) is built as saved, and a name only
    chooses the kind (a classifier from a pretraining checkpoint). Otherwise the named architecture is used,
    or, with no name, one inferred from the weights. With a name and no `num_classes` override, a classifier
    checkpoint's head size is kept.
    """
    if name is None:
        if source.config is not None:
            return source.config.replace(**overrides)
        return ModelConfig().replace(**{**infer_fields(source.state, overrides), **overrides})
    named = get_config(name, **overrides)
    if source.config is not None:
        config = source.config.replace(kind=named.kind, **overrides)
        if named.kind != source.config.kind and "num_classes" not in overrides:
            config = config.replace(num_classes=named.num_classes)
        return config
    if named.kind == "classifier" and "num_classes" not in overrides and "head.weight" in source.state:
        named = named.replace(num_classes=source.state["head.weight"].shape[0])
    return named


def load_pretrained_with_report(path: str | Path, name: str | None = None, *, strict: bool = True,
                                remap_kinetics: bool = True, **overrides) -> tuple[nn.Module, LoadReport]:
    """Like `load_pretrained`, also returning the LoadReport."""
    source = read_source(path)
    model = build_model(choose_config(source, name, overrides))
    report = LoadReport(source=str(source.path), source_format=source.format, notes=list(source.notes))
    if source.config is None and name is None:
        report.notes.append(f"architecture inferred from the weights: {_describe(model.config)}")
    state = checkpoint_filter_fn(source.state, model, report, remap_kinetics)
    load_into(model, state, report, strict)
    return model, report


def load_pretrained(path: str | Path, name: str | None = None, *, strict: bool = True,
                    remap_kinetics: bool = True, **overrides) -> nn.Module:
    """Build a model from a checkpoint: official .pth, Hugging Face directory or our format, local or on the Hub.

    Args:
        path: a .pth/.pt/.bin/.safetensors file, a DeepSpeed checkpoint directory, a transformers VideoMAE
            directory, an OpenGVLab VideoMAEv2 directory, a directory written by `save_pretrained`, a training run,
            `hf-hub:OWNER/REPO[/PATH][@REVISION]` or a zoo name (`list_pretrained()`).
        name: model name (`vit_base_patch16_224`, `pretrain_videomae_giant_patch14_224`, ...). Without it the
            architecture comes from the directory's config.json, or is inferred from an official state dict.
        strict: raise CheckpointError on missing, unexpected or mis-shaped keys (keys dropped or initialized
            by design are never errors; they are in the logged report).
        remap_kinetics: select the rows of a 710-class head for a 400/600/700-class model.
        **overrides: ModelConfig fields (num_classes, num_frames, img_size, num_heads, kind, ...).

    Returns:
        The model (in training mode, as after construction).
    """
    return load_pretrained_with_report(path, name, strict=strict, remap_kinetics=remap_kinetics, **overrides)[0]


def _describe(config: ModelConfig) -> str:
    text = (f"{config.kind}, embed_dim {config.embed_dim}, depth {config.depth}, heads {config.num_heads}, "
            f"patch {config.patch_size}, tubelet {config.tubelet_size}")
    if config.kind == "pretrain":
        return text + f", decoder {config.decoder_embed_dim}/{config.decoder_depth}/{config.decoder_num_heads}"
    return text + f", {config.num_classes} classes"


__all__ = [
    "Location", "LoadReport", "Preprocessing", "Source", "ZooEntry", "choose_config", "list_pretrained", "load_into",
    "load_pretrained", "load_pretrained_with_report", "load_state_dict_file", "locate", "read_labels",
    "read_preprocessing", "read_source", "save_hf", "save_pretrained",
]

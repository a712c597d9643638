"""Where models and weights meet: `create_model` builds a named architecture or loads any checkpoint into one.

Above `videomae.models` (the networks) and `videomae.checkpoint` (reading weights of every layout), as timm's
`_factory`: neither of those imports the other's loading code.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from videomae.checkpoint import LoadReport, Source, checkpoint_filter_fn, load_into, read_source
from videomae.checkpoint.official import infer_fields
from videomae.errors import ConfigError
from videomae.models import build_model, get_config, list_models
from videomae.models.config import ModelConfig


def create_model(name: str | None = None, *, pretrained: str | None = None, **overrides) -> nn.Module:
    """Build a named model, or load one from `pretrained` (any checkpoint `videomae.checkpoint.locate` accepts).

    Overrides use the official keyword names (img_size, num_frames, num_classes, drop_path_rate, ...).
    A Hugging Face directory or our own format carries its architecture, so `name` may be omitted.
    """
    if pretrained is not None:
        return load_pretrained(pretrained, name=name, **overrides)
    if name is None:
        raise ConfigError("create_model needs a model name or pretrained=PATH; names: " + ", ".join(list_models()))
    return build_model(get_config(name, **overrides))


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


def load_pretrained_with_report(
    path: str | Path, name: str | None = None, *, strict: bool = True, remap_kinetics: bool = True, **overrides
) -> tuple[nn.Module, LoadReport]:
    """Like `load_pretrained`, also returning the LoadReport."""
    source = read_source(path)
    model = build_model(choose_config(source, name, overrides))
    report = LoadReport(source=str(source.path), source_format=source.format, notes=list(source.notes))
    if source.config is None and name is None:
        report.notes.append(f"architecture inferred from the weights: {_describe(model.config)}")
    state = checkpoint_filter_fn(source.state, model, report, remap_kinetics)
    load_into(model, state, report, strict)
    return model, report


def load_pretrained(
    path: str | Path, name: str | None = None, *, strict: bool = True, remap_kinetics: bool = True, **overrides
) -> nn.Module:
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
    text = (
        f"{config.kind}, embed_dim {config.embed_dim}, depth {config.depth}, heads {config.num_heads}, "
        f"patch {config.patch_size}, tubelet {config.tubelet_size}"
    )
    if config.kind == "pretrain":
        return text + f", decoder {config.decoder_embed_dim}/{config.decoder_depth}/{config.decoder_num_heads}"
    return text + f", {config.num_classes} classes"

"""OpenGVLab's custom-code repositories (OpenGVLab/VideoMAEv2-Base, -Large, -Huge, -giant), read without their code.

Their config.json has `model_type: "VideoMAEv2_Base"` (every size), an `auto_map` to `modeling_videomaev2.VideoMAEv2`
(a PreTrainedModel whose `model` attribute is the official VisionTransformer) and `model_config`, that
VisionTransformer's keyword arguments. model.safetensors is that wrapper's state dict: the official keys under
`model.`. So the weights are read as an official checkpoint and the architecture from the official keyword names;
`modeling_videomaev2.py` / `modeling_config.py` are never downloaded or run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from videomae.checkpoint.hf import read_weight_files
from videomae.checkpoint.official import strip_prefix
from videomae.errors import CheckpointError, ConfigError
from videomae.models.config import ModelConfig

WRAPPER_PREFIX = "model."  # the custom PreTrainedModel keeps the VisionTransformer as `self.model`
# model_config entries every official model has at these values; ours builds exactly these.
FIXED_SETTINGS = {
    "qk_scale": None,
    "init_values": 0.0,
    "use_learnable_pos_emb": False,
    "cos_attn": False,
    "norm_layer": "nn.LayerNorm",
}
# model_config entries that are ModelConfig fields (official names; `layer_norm_eps` is our norm_eps).
ARCHITECTURE_SETTINGS = (
    "img_size",
    "patch_size",
    "in_chans",
    "num_classes",
    "embed_dim",
    "depth",
    "num_heads",
    "qkv_bias",
    "layer_norm_eps",
    "drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
    "tubelet_size",
    "use_mean_pooling",
    "num_frames",
)


def read_opengvlab(directory: Path, config: dict) -> tuple[dict[str, torch.Tensor], ModelConfig, list[str]]:
    """State dict (official key names), architecture and notes of a custom-code VideoMAEv2 directory."""
    settings = config["model_config"]
    for key, expected in FIXED_SETTINGS.items():
        if settings.get(key, expected) != expected:
            raise CheckpointError(
                f"{directory / 'config.json'}: model_config {key}={settings[key]!r} is not "
                f"supported (every official VideoMAE V2 model has {expected!r})"
            )
    state = strip_prefix(read_weight_files(directory), WRAPPER_PREFIX)
    fields = {key: settings[key] for key in ARCHITECTURE_SETTINGS if key in settings}
    if "blocks.0.mlp.fc1.weight" in state:  # exact: a JSON mlp_ratio for ViT-g (48/11) may be rounded
        fields["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / state["patch_embed.proj.weight"].shape[0]
    else:
        fields["mlp_ratio"] = settings.get("mlp_ratio", 4.0)
    try:
        model_config = ModelConfig(kind="classifier").replace(**fields)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(
            f"{directory / 'config.json'} does not describe a model this version can build: {error}"
        ) from None
    note = (
        f"OpenGVLab custom-code {config.get('model_type')} read as the official VisionTransformer "
        f"({model_config.num_classes} classes); its modeling code was not run"
    )
    return state, model_config, [note]

"""Typed model configs and the official named architectures.

Field names are the official keyword names (`img_size`, `embed_dim`, `decoder_depth`, ...), so an official
command line or `config.json` maps onto `ModelConfig` one to one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from videomae.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a VideoMAE V2 network.

    `kind` is "classifier" (VisionTransformer: logits / pooled features) or "pretrain"
    (PretrainVisionTransformer: encoder + decoder). Defaults are ViT-B, 16x224, tubelet 2x16x16.
    """

    kind: str = "classifier"
    img_size: int | tuple[int, int] = 224
    patch_size: int = 16
    num_frames: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    head_norm_eps: float | None = None  # eps of fc_norm and the decoder's last norm; None = norm_eps (HF uses 1e-5)
    num_classes: int = 400  # 0 = headless feature model
    use_mean_pooling: bool = True  # False: pool the first token through `norm` (official --use_cls)
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    head_drop_rate: float = 0.0
    init_scale: float = 0.001  # the head is initialised trunc-normal(.02) x init_scale (official fine-tuning)
    decoder_embed_dim: int = 384
    decoder_depth: int = 4
    decoder_num_heads: int = 6
    fused_attn: bool = True  # F.scaled_dot_product_attention; False = the explicit softmax(q k^T) path

    @property
    def image_hw(self) -> tuple[int, int]:
        size = self.img_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    @property
    def final_norm_eps(self) -> float:
        return self.norm_eps if self.head_norm_eps is None else self.head_norm_eps

    @property
    def patch_dim(self) -> int:
        """Values per token: 3 x tubelet x patch x patch (the decoder's output width)."""
        return self.in_chans * self.tubelet_size * self.patch_size**2

    def replace(self, **overrides) -> ModelConfig:
        return dataclasses.replace(self, **normalize_overrides(overrides))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["img_size"] = list(self.image_hw) if not isinstance(self.img_size, int) else self.img_size
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """A config as stored by `to_dict` (config.json of an export, meta.json of a training checkpoint)."""
        stored = {k: v for k, v in data.items() if k != "use_checkpoint"}  # written by videomae 0.1: ignored
        return cls().replace(**stored)


# Official aliases for config fields (official keyword -> ours).
_ALIASES = {"all_frames": "num_frames", "layer_norm_eps": "norm_eps", "input_size": "img_size"}
_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}
# Activation checkpointing is applied to a built model from outside, so these (official and videomae 0.1
# keywords) are not model settings.
_CHECKPOINTING_KEYS = {"with_cp", "with_checkpoint", "use_checkpoint"}


def normalize_overrides(overrides: dict) -> dict:
    """Map official aliases onto field names and reject unknown keys with the list of valid ones."""
    result = {}
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key in _CHECKPOINTING_KEYS:
            raise ConfigError(
                f"{key!r} is not a model setting: activation checkpointing is applied to a built "
                "model (training: activation_checkpointing=full|selective; your own loop: "
                "videomae.training.parallelize.apply_activation_checkpointing)"
            )
        if key not in _FIELDS:
            raise ConfigError(f"unknown model setting {key!r}; valid settings: {', '.join(sorted(_FIELDS))}")
        if key == "img_size" and isinstance(value, (list, tuple)):
            value = tuple(int(v) for v in value)
        result[key] = value
    return result


@dataclass(frozen=True)
class _Size:
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    decoder_embed_dim: int
    decoder_num_heads: int


# Official dimensions (reference §1.2-1.3). ViT-g's mlp_ratio is 48/11 so that int(1408 * 48/11) == 6144.
SIZES = {
    "small": _Size(16, 384, 12, 6, 4.0, 192, 3),
    "base": _Size(16, 768, 12, 12, 4.0, 384, 6),
    "large": _Size(16, 1024, 24, 16, 4.0, 512, 8),
    "huge": _Size(16, 1280, 32, 16, 4.0, 512, 8),
    "giant": _Size(14, 1408, 40, 16, 48 / 11, 512, 8),
}


def _named(kind: str, size: str) -> ModelConfig:
    s = SIZES[size]
    return ModelConfig(
        kind=kind,
        patch_size=s.patch_size,
        embed_dim=s.embed_dim,
        depth=s.depth,
        num_heads=s.num_heads,
        mlp_ratio=s.mlp_ratio,
        decoder_embed_dim=s.decoder_embed_dim,
        decoder_num_heads=s.decoder_num_heads,
        num_classes=0 if kind == "pretrain" else 400,
    )


MODEL_CONFIGS: dict[str, ModelConfig] = {}
for _size, _s in SIZES.items():
    _suffix = f"patch{_s.patch_size}_224"
    MODEL_CONFIGS[f"vit_{_size}_{_suffix}"] = _named("classifier", _size)
    MODEL_CONFIGS[f"pretrain_videomae_{_size}_{_suffix}"] = _named("pretrain", _size)


def get_config(name: str, **overrides) -> ModelConfig:
    """The named config with overrides applied (official keyword names accepted)."""
    if name not in MODEL_CONFIGS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(MODEL_CONFIGS))}")
    return MODEL_CONFIGS[name].replace(**overrides)

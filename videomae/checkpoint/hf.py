"""Hugging Face transformers VideoMAE directories, both ways (no transformers import needed).

Export writes what the transformers ecosystem expects of a model repository: config.json (with id2label),
model.safetensors, preprocessor_config.json (`VideoMAEImageProcessor` as trained), a model card README.md, and our
preprocessing.json so that a round trip keeps the full training preprocessing.

Classes: `VideoMAEForPreTraining` <-> our pretraining model, `VideoMAEForVideoClassification` <-> our
classifier, `VideoMAEModel` <-> our headless classifier (num_classes=0). Differences that matter:

- keys: `videomae.encoder.layer.N.attention.attention.{query,key,value}.weight` hold our `qkv.weight` split in
  three; `decoder.decoder_layers.N` are our `decoder.blocks.N`; `classifier` is our `head`.
- biases: older transformers name them `attention.attention.q_bias`/`v_bias`, newer `query.bias`/`value.bias`
  (and rename the old names on load). Both are read; the old names are written, which every version loads.
- LayerNorm eps: blocks use config `layer_norm_eps` (default 1e-12); `fc_norm` and the decoder's final norm
  always use nn.LayerNorm's default 1e-5, whatever the config says.
- `VideoMAEModel` with mean pooling has no `fc_norm` (it returns the token sequence); ours pools through one.
- input layout is (B, T, C, H, W), ours (B, C, T, H, W); pretraining only knows decoder_mask=None (v1).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
import torch.nn as nn

from videomae.checkpoint.card import model_card
from videomae.checkpoint.official import read_checkpoint
from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing
from videomae.errors import CheckpointError
from videomae.models import build_model
from videomae.models.config import ModelConfig

logger = logging.getLogger("videomae.checkpoint")

HF_FIXED_EPS = 1e-5  # transformers builds fc_norm and decoder.norm as nn.LayerNorm(width)
# Sub-keys of one transformer block: ours -> transformers (the qkv weight is handled apart).
BLOCK_KEYS = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "attn.q_bias": "attention.attention.q_bias",
    "attn.v_bias": "attention.attention.v_bias",
}
QKV = ("query", "key", "value")
NEW_BIAS_NAMES = {
    ".attention.attention.query.bias": ".attention.attention.q_bias",
    ".attention.attention.value.bias": ".attention.attention.v_bias",
}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
PREPROCESSOR_FILE = "preprocessor_config.json"
CARD_FILE = "README.md"
DEFAULT_LABEL = re.compile(r"LABEL_\d+")  # transformers' placeholder class names
PIL_BILINEAR = 2  # VideoMAEImageProcessor `resample`: bilinear, as our resize


# ------------------------------------------------------------------------------------------------
# Key names
# ------------------------------------------------------------------------------------------------


def _block_key(rest: str) -> list[str]:
    if rest == "attn.qkv.weight":
        return [f"attention.attention.{part}.weight" for part in QKV]
    if rest in BLOCK_KEYS:  # q_bias / v_bias are parameters, not modules
        return [BLOCK_KEYS[rest]]
    module, leaf = rest.rsplit(".", 1)
    return [f"{BLOCK_KEYS.get(module, module)}.{leaf}"]


def hf_names(key: str, base: str) -> list[str]:
    """The transformers key(s) of one of our keys (three for a qkv weight).

    Args:
        key: our (official) key.
        base: "videomae." inside the task models, "" for a bare VideoMAEModel.
    """
    if key.startswith("encoder."):
        key = key[len("encoder.") :]
    if match := re.fullmatch(r"(decoder\.)?blocks\.(\d+)\.(.+)", key):
        decoder, index, rest = match.groups()
        prefix = "decoder.decoder_layers." if decoder else f"{base}encoder.layer."
        return [f"{prefix}{index}.{name}" for name in _block_key(rest)]
    if key.startswith("patch_embed.proj."):
        return [f"{base}embeddings.patch_embeddings.projection.{key.rsplit('.', 1)[1]}"]
    if key.startswith("norm."):
        return [f"{base}layernorm.{key.rsplit('.', 1)[1]}"]
    if key.startswith("head."):
        return [f"classifier.{key.rsplit('.', 1)[1]}"]
    return [key]  # fc_norm.*, encoder_to_decoder.weight, mask_token, decoder.norm.*, decoder.head.*


def to_hf_state(state: dict[str, torch.Tensor], base: str) -> dict[str, torch.Tensor]:
    """Our state dict in transformers names (qkv weights split into query/key/value)."""
    result = {}
    for key, value in state.items():
        names = hf_names(key, base)
        for name, part in zip(names, value.chunk(len(names)) if len(names) > 1 else [value]):
            result[name] = part.contiguous()
    return result


def from_hf_state(hf_state: dict[str, torch.Tensor], our_keys: list[str], base: str) -> dict[str, torch.Tensor]:
    """transformers tensors under our names; keys with no counterpart are passed through (reported unexpected)."""
    hf_state = dict(hf_state)
    for key in list(hf_state):
        for new, old in NEW_BIAS_NAMES.items():
            if key.endswith(new):
                hf_state[key[: -len(new)] + old] = hf_state.pop(key)
    result = {}
    for key in our_keys:
        names = hf_names(key, base)
        if all(name in hf_state for name in names):
            parts = [hf_state.pop(name) for name in names]
            result[key] = torch.cat(parts) if len(parts) > 1 else parts[0]
    return {**result, **hf_state}


# ------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------


def _square(value, setting: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise CheckpointError(f"Hugging Face {setting}={value} is not square; only square patches are supported")
        value = value[0]
    return int(value)


def config_from_hf(hf: dict, kind: str, num_classes: int) -> ModelConfig:
    """Our ModelConfig for a transformers VideoMAEConfig (as read from config.json)."""
    if hf.get("hidden_act", "gelu") != "gelu":
        raise CheckpointError(f"Hugging Face hidden_act={hf['hidden_act']!r} is not supported (VideoMAE uses 'gelu')")
    hidden, width = hf.get("intermediate_size", 3072), hf.get("hidden_size", 768)
    decoder_width = hf.get("decoder_hidden_size", 384)
    mlp_ratio = hidden / width
    if kind == "pretrain":
        if hf.get("use_mean_pooling", True):
            raise CheckpointError(
                "a Hugging Face pretraining model with use_mean_pooling=true has no final encoder "
                "norm; the VideoMAE pretraining model always has one"
            )
        if int(decoder_width * mlp_ratio) != hf.get("decoder_intermediate_size", 1536):
            raise CheckpointError(
                "the Hugging Face decoder MLP width is not decoder_hidden_size x "
                "intermediate_size/hidden_size; VideoMAE shares one mlp_ratio"
            )
    image = hf.get("image_size", 224)
    return ModelConfig(
        kind=kind,
        img_size=tuple(image) if isinstance(image, (list, tuple)) else int(image),
        patch_size=_square(hf.get("patch_size", 16), "patch_size"),
        num_frames=hf.get("num_frames", 16),
        tubelet_size=hf.get("tubelet_size", 2),
        in_chans=hf.get("num_channels", 3),
        embed_dim=width,
        depth=hf.get("num_hidden_layers", 12),
        num_heads=hf.get("num_attention_heads", 12),
        mlp_ratio=mlp_ratio,
        qkv_bias=hf.get("qv_bias", hf.get("qkv_bias", True)),
        norm_eps=hf.get("layer_norm_eps", 1e-12),
        num_classes=num_classes,
        use_mean_pooling=hf.get("use_mean_pooling", True),
        drop_rate=hf.get("hidden_dropout_prob", 0.0),
        attn_drop_rate=hf.get("attention_probs_dropout_prob", 0.0),
        decoder_embed_dim=decoder_width,
        decoder_depth=hf.get("decoder_num_hidden_layers", 4),
        decoder_num_heads=hf.get("decoder_num_attention_heads", 6),
        head_norm_eps=HF_FIXED_EPS,  # transformers builds fc_norm and the decoder norm with its default eps
    )


def labels_from_hf(hf: dict) -> list[str] | None:
    """Class names from a transformers config's id2label, unless they are the LABEL_i placeholders."""
    id2label = hf.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    names = [str(name) for _, name in sorted(id2label.items(), key=lambda item: int(item[0]))]
    return None if all(DEFAULT_LABEL.fullmatch(name) for name in names) else names


def image_processor_config(preprocessing: Preprocessing) -> dict:
    """preprocessor_config.json of transformers' `VideoMAEImageProcessor` repeating our test preprocessing: resize
    the short side, centre crop, scale to [0, 1], normalize. `num_frames` records the clip length as trained."""
    return {
        "image_processor_type": "VideoMAEImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": preprocessing.short_side_size},
        "resample": PIL_BILINEAR,
        "do_center_crop": True,
        "crop_size": {"height": preprocessing.input_size, "width": preprocessing.input_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(preprocessing.mean),
        "image_std": list(preprocessing.std),
        "num_frames": preprocessing.num_frames,
    }


def hf_class(config: ModelConfig) -> str:
    if config.kind == "pretrain":
        return "VideoMAEForPreTraining"
    return "VideoMAEForVideoClassification" if config.num_classes else "VideoMAEModel"


def config_to_hf(config: ModelConfig, labels: list[str] | None = None) -> dict:
    """A transformers VideoMAEConfig (config.json contents) for our config."""
    image = config.img_size if isinstance(config.img_size, int) else list(config.image_hw)
    hf = {
        "architectures": [hf_class(config)],
        "model_type": "videomae",
        "image_size": image,
        "patch_size": config.patch_size,
        "num_channels": config.in_chans,
        "num_frames": config.num_frames,
        "tubelet_size": config.tubelet_size,
        "hidden_size": config.embed_dim,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.num_heads,
        "intermediate_size": int(config.embed_dim * config.mlp_ratio),
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.drop_rate,
        "attention_probs_dropout_prob": config.attn_drop_rate,
        "layer_norm_eps": config.norm_eps,
        "qkv_bias": config.qkv_bias,
        # the pretraining encoder always ends in a norm, which transformers only builds without mean pooling
        "use_mean_pooling": config.use_mean_pooling and config.kind == "classifier",
        "decoder_hidden_size": config.decoder_embed_dim,
        "decoder_num_hidden_layers": config.decoder_depth,
        "decoder_num_attention_heads": config.decoder_num_heads,
        "decoder_intermediate_size": int(config.decoder_embed_dim * config.mlp_ratio),
        "norm_pix_loss": True,
    }
    if config.kind == "classifier" and config.num_classes:
        names = labels or [f"LABEL_{i}" for i in range(config.num_classes)]
        if len(names) != config.num_classes:
            raise CheckpointError(f"{len(names)} labels given for a model with {config.num_classes} classes")
        hf["id2label"] = {str(i): name for i, name in enumerate(names)}
        hf["label2id"] = {name: i for i, name in enumerate(names)}
    return hf


# ------------------------------------------------------------------------------------------------
# Directories
# ------------------------------------------------------------------------------------------------


def read_weight_files(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of a Hugging Face directory: sharded or single model.safetensors, else pytorch_model.bin."""
    index = directory / "model.safetensors.index.json"
    if index.is_file():  # sharded
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {key: value for shard in shards for key, value in read_checkpoint(directory / shard).items()}
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return read_checkpoint(directory / name)  # .bin: weights_only unpickling
    raise CheckpointError(f"{directory} has a Hugging Face config.json but no {' or '.join(WEIGHT_FILES)}")


def read_hf(directory: Path, hf: dict) -> tuple[dict[str, torch.Tensor], ModelConfig, list[str]]:
    """State dict (our names), config and notes of a transformers VideoMAE directory."""
    hf_state = read_weight_files(directory)
    base = "videomae." if any(key.startswith("videomae.") for key in hf_state) else ""
    if any(key.startswith("decoder.") for key in hf_state):
        kind, num_classes = "pretrain", 0
    else:
        kind = "classifier"
        num_classes = hf_state["classifier.weight"].shape[0] if "classifier.weight" in hf_state else 0
    config = config_from_hf(hf, kind, num_classes)
    with torch.device("meta"):  # only the key names are needed
        our_keys = list(build_model(config).state_dict())
    notes = [f"Hugging Face {hf.get('architectures', ['VideoMAE'])[0]} -> {kind} (num_classes={num_classes})"]
    if not base and config.use_mean_pooling:
        notes.append("VideoMAEModel returns the token sequence (forward_tokens); fc_norm starts at weight 1, bias 0")
    return from_hf_state(hf_state, our_keys, base), config, notes


def save_hf(
    model: nn.Module,
    directory: str | Path,
    labels: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    training: dict | None = None,
) -> Path:
    """Write `model` as a transformers VideoMAE directory, ready for `pipeline("video-classification")` and upload.

    Files: config.json (id2label from `labels`), model.safetensors, preprocessor_config.json, README.md (model card)
    and, when `preprocessing` is given, our preprocessing.json. The class is VideoMAEForPreTraining,
    VideoMAEForVideoClassification, or VideoMAEModel for a headless classifier (its fc_norm is then left out:
    VideoMAEModel returns the token sequence).

    Args:
        model: a model built by `videomae.models`.
        directory: created if needed.
        labels: class names for id2label (default LABEL_i).
        preprocessing: how the model's inputs were prepared in training; without it the processor resizes and crops
            to the model's input size with ImageNet statistics, and the card says nothing about training inputs.
        training: the training run's resolved config, summarized in the model card.

    Returns:
        The directory.
    """
    from safetensors.torch import save_file

    config = model.config
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    headless = config.kind == "classifier" and not config.num_classes
    if headless:
        for key in [key for key in state if key.startswith("fc_norm.")]:
            state.pop(key)
            logger.warning("%s left out: transformers' VideoMAEModel has no pooling norm", key)
    eps = {
        module.eps
        for module in (getattr(model, "fc_norm", None), getattr(getattr(model, "decoder", None), "norm", None))
        if module is not None
    }
    if not headless and eps - {HF_FIXED_EPS}:
        logger.warning(
            "transformers uses LayerNorm eps %s in fc_norm / decoder.norm, this model %s: outputs will "
            "differ very slightly",
            HF_FIXED_EPS,
            ", ".join(map(str, sorted(eps))),
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        to_hf_state(state, "" if headless else "videomae."), str(directory / WEIGHT_FILES[0]), metadata={"format": "pt"}
    )
    _write_json(directory / "config.json", config_to_hf(config, labels))
    size = config.image_hw[0]
    processor_settings = preprocessing or Preprocessing(
        num_frames=config.num_frames, input_size=size, short_side_size=size
    )
    _write_json(directory / PREPROCESSOR_FILE, image_processor_config(processor_settings))
    if preprocessing is not None:
        write_preprocessing(preprocessing, directory)
    (directory / CARD_FILE).write_text(model_card(config, labels, preprocessing, training), encoding="utf-8")
    return directory


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

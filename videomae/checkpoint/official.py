"""Official VideoMAE V2 checkpoints: safe reading, containers, key prefixes, head remapping, architecture.

Reference §2: released files are a raw state dict or `{"model": sd}` / `{"module": sd}` (DeepSpeed), keys may
carry `_orig_mod.` (torch.compile), `encoder.` (pretraining) or `backbone.`; fine-tuned files are fp16;
training checkpoints also pickle an `argparse.Namespace`. Key names are otherwise exactly ours.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import re
from importlib import resources
from pathlib import Path

import torch
import torch.nn as nn

from videomae.checkpoint.report import LoadReport
from videomae.errors import CheckpointError
from videomae.models.config import SIZES

logger = logging.getLogger("videomae.checkpoint")

CONTAINER_KEYS = ("model", "module")
COMPILE_PREFIXES = ("_orig_mod.", "module.")  # torch.compile wrapper, DDP wrapper saved without unwrapping
BACKBONE_PREFIXES = ("backbone.", "encoder.")
DEEPSPEED_FILE = "mp_rank_00_model_states.pt"
# Pickle globals a training checkpoint may hold besides tensors; harmless data containers only.
SAFE_GLOBALS = [argparse.Namespace]
# num_heads is not visible in a state dict: official widths use head_dim 64, except H (80) and g (88).
OFFICIAL_HEADS = {size.embed_dim: size.num_heads for size in SIZES.values()}
OFFICIAL_DECODER_HEADS = {size.decoder_embed_dim: size.decoder_num_heads for size in SIZES.values()}
KINETICS_SUBSETS = (400, 600, 700)
PRETRAIN_ONLY = ("decoder.", "encoder_to_decoder.", "mask_token")


def resolve_deepspeed(path: Path) -> Path:
    """A DeepSpeed checkpoint directory (`checkpoint-N/` or its parent with a `latest` file) -> its weights file."""
    if (path / "latest").is_file():
        path = path / (path / "latest").read_text().strip()
    weights = path / DEEPSPEED_FILE
    if not weights.is_file():
        raise CheckpointError(
            f"{path} is a directory without config.json or {DEEPSPEED_FILE}; "
            "expected our format, a Hugging Face model directory or a DeepSpeed checkpoint"
        )
    return weights


def read_checkpoint(path: str | Path) -> object:
    """Unpickle a .pth/.pt/.bin file without ever running code from it.

    `weights_only=True` admits tensors and plain containers; `argparse.Namespace` (official training
    checkpoints store their args) is the only class added. Anything else is refused, naming the global.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"cannot read {path} as safetensors (corrupt or truncated?): {error}") from None
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(_unsafe_message(path, error)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {error}") from None


def _unsafe_message(path: Path, error: Exception) -> str:
    names = re.findall(r"GLOBAL ([\w.]+)", str(error))
    if not names:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # not a zip checkpoint: the unpickler's message is all there is
            names = []
    if not names:
        return f"cannot read {path} as a PyTorch checkpoint (corrupt, truncated or another kind of file)"
    return (
        f"refusing to load {path}: it contains code or objects that are not plain tensors "
        f"(pickle global: {', '.join(sorted(set(names)))}), and unpickling them could run arbitrary code. "
        "Only tensors, plain containers and argparse.Namespace are accepted. Only if you trust the file and "
        "its source: open it once with weights_only=False, re-save just its state dict with torch.save, and load that."
    )


def unwrap_container(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: `obj["model"]`, `obj["module"]` or `obj` itself (official order)."""
    if isinstance(obj, dict):
        for key in CONTAINER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{source} holds no state dict: expected tensors at the top level or under "
            f"{' / '.join(repr(k) for k in CONTAINER_KEYS)}, found {found}"
        )
    return dict(obj)


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :] if key.startswith(prefix) else key: value for key, value in state.items()}


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes that never belong to the model (`_orig_mod.` from torch.compile, DDP's `module.`)."""
    for prefix in COMPILE_PREFIXES:
        state = strip_prefix(state, prefix)
    return state


def is_pretrain_state(state: dict[str, torch.Tensor]) -> bool:
    return any(key.startswith(PRETRAIN_ONLY) for key in state)


def encoder_view(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The classifier-style keys of any checkpoint: `encoder.`/`backbone.` prefixes stripped."""
    for prefix in BACKBONE_PREFIXES:
        if any(key.startswith(prefix) for key in state):
            return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    return state


# ------------------------------------------------------------------------------------------------
# Fitting a checkpoint to a model
# ------------------------------------------------------------------------------------------------


def checkpoint_filter_fn(
    state: dict[str, torch.Tensor], model: nn.Module, report: LoadReport, remap_kinetics: bool = True
) -> dict[str, torch.Tensor]:
    """Adapt a cleaned official-layout state dict to `model`, recording what was dropped or re-initialized.

    A classifier takes the encoder of a pretraining checkpoint (the decoder is dropped, fc_norm and head
    start fresh) and a head for another label set is remapped (K710 -> K400/600/700) or re-initialized.
    """
    if model.config.kind == "pretrain":
        return state
    own = model.state_dict()
    result = {}
    for key, value in state.items():
        if key.startswith(PRETRAIN_ONLY):
            report.dropped[key] = "pretraining decoder, not part of a classifier"
        elif key.startswith(BACKBONE_PREFIXES):
            inner = key.split(".", 1)[1]
            if inner.startswith("norm.") and inner not in own:
                report.dropped[key] = "final encoder norm, unused with mean pooling (official)"
            else:
                result[inner] = value
        else:
            result[key] = value
    if not any(key.startswith(("head.", "fc_norm.")) for key in result):
        for key in own:
            if key.startswith(("head.", "fc_norm.")):
                report.initialized[key] = "not in an encoder-only checkpoint"
    return fit_head(result, model, report, remap_kinetics)


def fit_head(
    state: dict[str, torch.Tensor], model: nn.Module, report: LoadReport, remap_kinetics: bool = True
) -> dict[str, torch.Tensor]:
    """Make the checkpoint head fit the model's label set (official fine-tuning rules, reference §2.3).

    A 710-row head going into a 400/600/700-class model keeps the rows of those classes (new row i = old row
    map[i], with the shipped `label_710to*.json`); any other mismatched head is dropped and re-initialized.
    """
    if "head.weight" not in state:
        return state
    own = model.state_dict()
    rows = state["head.weight"].shape[0]
    classes = own["head.weight"].shape[0] if "head.weight" in own else 0
    if rows == classes:
        return state
    state = dict(state)
    weight, bias = state.pop("head.weight"), state.pop("head.bias", None)
    if classes == 0:
        report.dropped.update(dict.fromkeys(["head.weight", "head.bias"], "the model is headless (num_classes=0)"))
    elif remap_kinetics and rows == 710 and classes in KINETICS_SUBSETS:
        index = torch.tensor(kinetics_map(classes))
        state["head.weight"] = weight[index]
        if bias is not None:
            state["head.bias"] = bias[index]
        report.head_remap = f"K710 head rows selected for K{classes} (label_710to{classes}.json)"
    else:
        reason = f"checkpoint head has {rows} classes, the model {classes}: re-initialized (official behaviour)"
        report.dropped.update(dict.fromkeys(["head.weight", "head.bias"], reason))
        report.initialized.update(dict.fromkeys(["head.weight", "head.bias"], reason))
        logger.warning("%s: %s", report.source, reason)
    return state


def kinetics_map(classes: int) -> list[int]:
    """Entry i = the K710 index of class i of K400/K600/K700 (shipped with the official label files)."""
    text = resources.files("videomae").joinpath(f"resources/kinetics/label_710to{classes}.json").read_text()
    return json.loads(text)


# ------------------------------------------------------------------------------------------------
# Architecture inference
# ------------------------------------------------------------------------------------------------


def _count_blocks(state: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(match.group(1)) for key in state if (match := re.match(re.escape(prefix) + r"(\d+)\.", key))}
    return max(indices) + 1 if indices else 0


def _heads(width: int, table: dict[int, int], setting: str, overrides: dict) -> int:
    if setting in overrides:
        return int(overrides[setting])
    if width not in table:
        raise CheckpointError(
            f"cannot tell {setting} from a checkpoint of width {width} (not an official "
            f"width: {sorted(table)}); pass {setting}=... or a model name"
        )
    return table[width]


def infer_fields(state: dict[str, torch.Tensor], overrides: dict) -> dict:
    """ModelConfig fields read off an official-layout state dict (shapes and block counts).

    num_heads comes from the official table (head_dim 64; 80 for width 1280, 88 for 1408) unless given in
    `overrides`; `kind="classifier"` in overrides reads a pretraining checkpoint as its encoder (headless).
    num_frames and img_size are free (the sinusoid table is not stored) and keep their defaults.
    """
    encoder = encoder_view(state)
    if "patch_embed.proj.weight" not in encoder:
        raise CheckpointError(
            "not a VideoMAE checkpoint: no patch_embed.proj.weight among its keys "
            f"({', '.join(sorted(state)[:5])}, ...)"
        )
    width, in_chans, tubelet, patch, _ = encoder["patch_embed.proj.weight"].shape
    hidden = encoder["blocks.0.mlp.fc1.weight"].shape[0] if "blocks.0.mlp.fc1.weight" in encoder else 4 * width
    fields = {
        "embed_dim": width,
        "in_chans": in_chans,
        "tubelet_size": tubelet,
        "patch_size": patch,
        "depth": _count_blocks(encoder, "blocks."),
        "mlp_ratio": hidden / width,  # 6144/1408 == 48/11 exactly
        "num_heads": _heads(width, OFFICIAL_HEADS, "num_heads", overrides),
        "qkv_bias": "blocks.0.attn.q_bias" in encoder,
    }
    if is_pretrain_state(state) and overrides.get("kind", "pretrain") == "pretrain":
        decoder_width = state["encoder_to_decoder.weight"].shape[0]
        fields.update(
            kind="pretrain",
            num_classes=0,
            decoder_embed_dim=decoder_width,
            decoder_depth=_count_blocks(state, "decoder.blocks."),
            decoder_num_heads=_heads(decoder_width, OFFICIAL_DECODER_HEADS, "decoder_num_heads", overrides),
        )
    else:
        # an unprefixed final `norm` is a classifier pooled through it (official --use_cls); a prefixed one is
        # the pretraining encoder's, unused by mean pooling
        fields.update(
            kind="classifier",
            use_mean_pooling="norm.weight" not in state,
            num_classes=encoder["head.weight"].shape[0] if "head.weight" in encoder else 0,
        )
    return fields

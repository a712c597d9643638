"""Training checkpoints: atomic step directories, keep-last-k and best, and automatic resume.

Layout of `output_dir/checkpoints/step_{step:08d}/`:
    model.safetensors   full (unsharded) fp32 weights
    ema.safetensors     EMA weights, when EMA is on
    train_state.pt      optimizer (keyed by parameter name), loss scaler and counters (plain tensors and
                        numbers: loads with `weights_only=True`)
    meta.json           step, epoch, data position; written last

A directory is written under a temporary name and renamed into place, so a process killed at any moment
leaves either a complete checkpoint or none. The LR/WD schedules are functions of the step and the model's
random draws are seeded from (seed, step, rank), so the step is their whole state; the data position is
(epoch, samples consumed), because every sample's randomness is a function of (seed, epoch, index, view).
"""

from __future__ import annotations

import json
import os
import re
import shutil

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from videomae.checkpoint import save_pretrained
from videomae.checkpoint.locate import LABELS_FILE
from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing
from videomae.errors import CheckpointError, VideoMAEError
from videomae.models import build_model
from videomae.training.distributed import Dist, barrier

STEP_DIR = re.compile(r"^step_(\d{8})$")
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


class DivergenceError(VideoMAEError):
    """The loss or the weights stopped being finite."""


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_dir_atomically(final: str, write) -> None:
    """`write(tmp_dir)` then rename to `final` (replacing an older directory of the same name)."""
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(final)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    write(tmp)
    for name in os.listdir(tmp):
        with open(os.path.join(tmp, name), "rb") as handle:
            os.fsync(handle.fileno())
    if os.path.exists(final):  # "best" and "export" are replaced; step directories are new
        old = f"{tmp}.old"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
    _fsync_dir(parent)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded CPU weights (collective under FSDP: call on every rank; non-zero ranks may get {})."""
    return {k: v.contiguous() for k, v in get_model_state_dict(model, options=FULL).items()}


def check_finite(state: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise DivergenceError(f"weights are not finite ({bad[0]} and {len(bad) - 1} more); no checkpoint written")


def save_checkpoint(output_dir: str, d: Dist, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                    meta: dict, scaler: torch.amp.GradScaler | None, ema: nn.Module | None, keep_last: int) -> None:
    """Write `step_{meta['step']}` atomically (rank 0) and delete all but the newest `keep_last`."""
    model_state = full_model_state(model)
    optim_state = get_optimizer_state_dict(model, optimizer, options=FULL)
    ema_state = full_model_state(ema.module) if ema is not None else None
    if d.is_main:
        check_finite(model_state)

        def write(tmp: str) -> None:
            save_file(model_state, os.path.join(tmp, "model.safetensors"))
            if ema_state is not None:
                save_file(ema_state, os.path.join(tmp, "ema.safetensors"))
            torch.save({"optimizer": optim_state, "scaler": scaler.state_dict() if scaler else None},
                       os.path.join(tmp, "train_state.pt"))
            with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as handle:
                json.dump(meta, handle, indent=2)

        _write_dir_atomically(os.path.join(checkpoint_dir(output_dir), f"step_{meta['step']:08d}"), write)
        for old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(d)


def save_model_dir(path: str, d: Dist, model: nn.Module, meta: dict, class_names: list[str] | None = None,
                   preprocessing: Preprocessing | None = None) -> None:
    """Replace `path` atomically with the model in the project's format (`create_model(pretrained=path)`
    loads it) plus `meta.json`, `preprocessing.json` (how its inputs were prepared, the defaults of `predict`,
    `visualize`, `extract` and `eval`) and `labels.txt` (one class name per line) when the classes have names.
    Collective under FSDP; rank 0 writes."""
    state = full_model_state(model)
    if d.is_main:
        check_finite(state)
        plain = build_model(model.config)  # unsharded copy: save_pretrained reads a plain state dict
        plain.load_state_dict(state)

        def write(tmp: str) -> None:
            save_pretrained(plain, tmp)
            with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as handle:
                json.dump(meta, handle, indent=2)
            if class_names:
                with open(os.path.join(tmp, LABELS_FILE), "w", encoding="utf-8") as handle:
                    handle.write("\n".join(class_names) + "\n")
            if preprocessing is not None:
                write_preprocessing(preprocessing, tmp)

        _write_dir_atomically(path, write)
    barrier(d)


def list_checkpoints(output_dir: str) -> list[str]:
    """Complete step checkpoints, oldest first (temporary directories are ignored)."""
    root = checkpoint_dir(output_dir)
    if not os.path.isdir(root):
        return []
    names = sorted(n for n in os.listdir(root) if STEP_DIR.match(n))
    return [os.path.join(root, n) for n in names if os.path.isfile(os.path.join(root, n, "meta.json"))]


def load_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                    scaler: torch.amp.GradScaler | None, ema: nn.Module | None) -> dict:
    """Restore model, optimizer, scaler and EMA from a step directory; returns its meta (step, epoch, ...)."""
    try:
        with open(os.path.join(path, "meta.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
        model_state = load_file(os.path.join(path, "model.safetensors"))
        train_state = torch.load(os.path.join(path, "train_state.pt"), map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    set_model_state_dict(model, model_state, options=StateDictOptions(full_state_dict=True))
    set_optimizer_state_dict(model, optimizer, train_state["optimizer"], options=StateDictOptions(full_state_dict=True))
    if scaler is not None and train_state["scaler"]:
        scaler.load_state_dict(train_state["scaler"])
    if ema is not None:
        ema.module.load_state_dict(load_file(os.path.join(path, "ema.safetensors")))
    return meta

"""Training checkpoints: atomic step directories, keep-last-k and best, and automatic resume.

Layout of `output_dir/checkpoints/step_{step:08d}/`:
    model.safetensors   full (unsharded) fp32 weights
    ema.safetensors     EMA weights, when EMA is on
    train_state.pt      optimizer (keyed by parameter name), loss scaler and counters (plain tensors and
                        numbers: loads with `weights_only=True`)
    meta.json           step, epoch, data position; written last

A directory is written under a temporary name and renamed into place, so a process killed at any moment
leaves either a complete checkpoint or none; a write that fails (read-only or full disk) removes its
temporary directory and stops the run with one line. Resume takes the newest checkpoint that reads; damaged
newer ones are renamed `step_X.corrupt` and reported, never deleted.

The LR/WD schedules are functions of the step and the model's random draws are seeded from (seed, step, rank),
so the step is their whole state; the data position is (epoch, samples consumed), because every sample's
randomness is a function of (seed, epoch, index, view).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
import shutil
import sys

import torch
import torch.nn as nn
from safetensors import SafetensorError
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
from videomae.training.distributed import Dist, gather_objects, on_main, share
from videomae.training.files import json_text, one_line, unused_path, writing

STEP_DIR = re.compile(r"^step_(\d{8})$")
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
# What reading a damaged file raises: json's ValueError, torch.load's RuntimeError (cut zip archive),
# UnpicklingError or EOFError (garbage), safetensors' own error; FileNotFoundError for a missing file.
DAMAGED = (FileNotFoundError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError)
# What a write to a read-only or full disk raises: torch.save reports it as a RuntimeError, safetensors as its own.
WRITE_FAILED = (OSError, RuntimeError, SafetensorError)
# Model settings that change training, not the weights: a run may resume with other values.
NOT_ARCHITECTURE = {
    "drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
    "head_drop_rate",
    "init_scale",
    "use_checkpoint",
    "fused_attn",
}


class DivergenceError(VideoMAEError):
    """The loss or the weights stopped being finite."""


class DamagedCheckpoint(CheckpointError):
    """A step checkpoint with a missing, truncated or garbled file."""


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def step_path(output_dir: str, step: int) -> str:
    return os.path.join(checkpoint_dir(output_dir), f"step_{step:08d}")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_dir_atomically(final: str, write) -> None:
    """`write(tmp_dir)` then rename to `final` (replacing an older directory of the same name)."""
    parent = os.path.dirname(final)
    with writing(parent):
        os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(final)}-{os.getpid()}")
    with writing(final, WRITE_FAILED):
        try:
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
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # never a half-written directory (a cut `.old` is restored at start)
            raise


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded CPU weights (collective under FSDP: call on every rank; non-zero ranks may get {})."""
    return {k: v.contiguous() for k, v in get_model_state_dict(model, options=FULL).items()}


def check_finite(state: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise DivergenceError(f"weights are not finite ({bad[0]} and {len(bad) - 1} more); no checkpoint written")


def save_checkpoint(
    output_dir: str,
    d: Dist,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    meta: dict,
    scaler: torch.amp.GradScaler | None,
    ema: nn.Module | None,
    keep_last: int,
) -> None:
    """Write `step_{meta['step']}` atomically (rank 0) and delete all but the newest `keep_last`."""
    model_state = full_model_state(model)
    optim_state = get_optimizer_state_dict(model, optimizer, options=FULL)
    ema_state = full_model_state(ema.module) if ema is not None else None

    def write(tmp: str) -> None:
        save_file(model_state, os.path.join(tmp, "model.safetensors"))
        if ema_state is not None:
            save_file(ema_state, os.path.join(tmp, "ema.safetensors"))
        torch.save(
            {"optimizer": optim_state, "scaler": scaler.state_dict() if scaler else None},
            os.path.join(tmp, "train_state.pt"),
        )
        write_json(os.path.join(tmp, "meta.json"), meta)

    def write_and_prune() -> None:
        check_finite(model_state)
        _write_dir_atomically(step_path(output_dir, meta["step"]), write)
        for old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)

    on_main(write_and_prune, d)


def save_model_dir(
    path: str,
    d: Dist,
    model: nn.Module,
    meta: dict,
    class_names: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
) -> None:
    """Replace `path` atomically with the model in the project's format (`create_model(pretrained=path)`
    loads it) plus `meta.json`, `preprocessing.json` (how its inputs were prepared, the defaults of `predict`,
    `visualize`, `extract` and `eval`) and `labels.txt` (one class name per line) when the classes have names.
    Collective under FSDP; rank 0 writes."""
    state = full_model_state(model)

    def write(plain: nn.Module, tmp: str) -> None:
        save_pretrained(plain, tmp)
        write_json(os.path.join(tmp, "meta.json"), meta)
        if class_names:
            with open(os.path.join(tmp, LABELS_FILE), "w", encoding="utf-8") as handle:
                handle.write("\n".join(class_names) + "\n")
        if preprocessing is not None:
            write_preprocessing(preprocessing, tmp)

    def check_and_write() -> None:
        check_finite(state)
        plain = build_model(model.config)  # unsharded copy: save_pretrained reads a plain state dict
        plain.load_state_dict(state)
        _write_dir_atomically(path, lambda tmp: write(plain, tmp))

    on_main(check_and_write, d)


def write_json(path: str, value: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json_text(value, indent=2))


def step_dirs(output_dir: str) -> list[str]:
    """Every step directory, complete or not, oldest first."""
    root = checkpoint_dir(output_dir)
    names = sorted(n for n in os.listdir(root) if STEP_DIR.match(n)) if os.path.isdir(root) else []
    return [os.path.join(root, n) for n in names]


def list_checkpoints(output_dir: str) -> list[str]:
    """Complete step checkpoints, oldest first (temporary directories are ignored)."""
    return [path for path in step_dirs(output_dir) if os.path.isfile(os.path.join(path, "meta.json"))]


def read_checkpoint(path: str) -> tuple[dict, dict, dict, dict | None]:
    """(meta, model weights, train state, EMA weights or None) of a step directory; DamagedCheckpoint when a
    file is missing, cut or garbled."""
    try:
        with open(os.path.join(path, "meta.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
        if not isinstance(meta, dict) or meta.get("step") != int(STEP_DIR.match(os.path.basename(path))[1]):
            raise ValueError("meta.json does not hold this directory's step")
        model_state = load_file(os.path.join(path, "model.safetensors"))
        train_state = torch.load(os.path.join(path, "train_state.pt"), map_location="cpu", weights_only=True)
        if not isinstance(train_state, dict) or "optimizer" not in train_state:
            raise ValueError("train_state.pt holds no optimizer state")
        ema_path = os.path.join(path, "ema.safetensors")
        ema_state = load_file(ema_path) if os.path.exists(ema_path) else None
    except DAMAGED as error:
        raise DamagedCheckpoint(f"{path}: {one_line(error)}") from None
    except OSError as error:  # permissions, I/O errors: the files may be fine, so nothing is set aside
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    return meta, model_state, train_state, ema_state


def check_same_model(path: str, saved: dict | None, current: dict) -> None:
    """Resuming another architecture stops here, in one line, instead of deep inside load_state_dict."""
    if saved is None:  # older checkpoints: the weight shapes decide
        return
    differs = sorted(
        k for k in saved.keys() | current.keys() if k not in NOT_ARCHITECTURE and saved.get(k) != current.get(k)
    )
    if differs:
        was = ", ".join(f"{k}={saved.get(k)}" for k in differs)
        now = ", ".join(f"{k}={current.get(k)}" for k in differs)
        raise CheckpointError(
            f"{path} holds another model ({was}) than this run builds ({now}); resume with the "
            f"model it was trained with, or choose another output_dir or pass --fresh"
        )


def load_checkpoint(
    path: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scaler: torch.amp.GradScaler | None,
    ema: nn.Module | None,
) -> dict:
    """Restore model, optimizer, scaler and EMA from a step directory; returns its meta (step, epoch, ...)."""
    meta, model_state, train_state, ema_state = read_checkpoint(path)
    check_same_model(path, meta.get("model_config"), model.config.to_dict())
    full = StateDictOptions(full_state_dict=True)
    try:
        set_model_state_dict(model, model_state, options=full)
        set_optimizer_state_dict(model, optimizer, train_state["optimizer"], options=full)
    except (RuntimeError, KeyError, ValueError) as error:
        raise CheckpointError(
            f"{path} does not fit this run's model and optimizer ({one_line(error)[:300]}); "
            f"resume with the settings it was written with, or choose another output_dir or "
            f"pass --fresh"
        ) from None
    if scaler is not None and train_state["scaler"]:
        scaler.load_state_dict(train_state["scaler"])
    if ema is not None:  # a run that turns EMA on starts its average from the resumed weights
        ema.module.load_state_dict(ema_state if ema_state is not None else model_state)
    return meta


def set_aside(damaged: list[tuple[str, DamagedCheckpoint]], resumed: str) -> None:
    """Rename damaged checkpoints to `step_X.corrupt` (kept for inspection: never deleted silently)."""
    for path, error in damaged:
        aside = unused_path(f"{path}.corrupt")
        os.rename(path, aside)
        print(
            f"checkpoint damaged ({error}); moved it to {aside} and resumed from {resumed}", file=sys.stderr, flush=True
        )


def load_newest_checkpoint(
    output_dir: str,
    d: Dist,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scaler: torch.amp.GradScaler | None,
    ema: nn.Module | None,
) -> tuple[str, dict] | None:
    """(path, meta) of the newest step checkpoint that loads; None when there is none at all.

    Collective: every process tries process 0's list in the same order and all agree on each outcome. Damaged
    newer checkpoints are set aside once an older one has loaded; when none loads, nothing is renamed and
    this raises."""
    damaged = []
    for path in reversed(share(step_dirs(output_dir) if d.is_main else None, d)):
        try:
            meta, problem = load_checkpoint(path, model, optimizer, scaler=scaler, ema=ema), None
        except CheckpointError as error:
            problem = error
        problems = [p for p in gather_objects(problem, d) if p is not None]
        if not problems:
            on_main(functools.partial(set_aside, damaged, path), d)
            return path, meta
        if not isinstance(problems[0], DamagedCheckpoint):
            raise problems[0]
        damaged.append((path, problems[0]))
    if damaged:
        raise CheckpointError(
            f"no checkpoint in {checkpoint_dir(output_dir)} can be read "
            f"({'; '.join(str(error) for _, error in damaged)}); pass --fresh to move this run "
            f"aside and start again"
        )
    return None

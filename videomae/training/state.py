"""Training checkpoints: atomic step directories, keep-last-k and best, and automatic resume.

`output_dir/checkpoints/step_{step:08d}/` comes in one of two formats, chosen by how the model is held:

    full (one process, DDP: every process holds the whole model, so process 0 writes it as it is)
        model.safetensors   full fp32 weights
        ema.safetensors     EMA weights, when EMA is on
        train_state.pt      optimizer (keyed by parameter name), loss scaler
        meta.json           step, epoch, data position; written last

    sharded (FSDP2: each process holds a part; nothing is gathered onto one process)
        sharded/            `torch.distributed.checkpoint`: weights and AdamW state, one file per process
                            and `.metadata`, the index of every tensor's pieces
        train_state.pt      loss scaler
        meta.json           written last, by process 0, after every process has written its part

Either format resumes with any process count and parallelism: a full checkpoint is sharded as it loads, and a
sharded one is resharded by DCP. `train_state.pt` holds plain tensors and numbers and loads with
`weights_only=True`; the sharded files hold tensors only (the optimizer's hyperparameters come from the run's
config, as the schedules set them every step), and `.metadata` is unpickled only into DCP's own index types.

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
from dataclasses import dataclass

import torch
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.metadata import Metadata
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor

from videomae.checkpoint import save_pretrained
from videomae.checkpoint.locate import LABELS_FILE
from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing
from videomae.errors import CheckpointError, VideoMAEError
from videomae.models import build_model
from videomae.training.distributed import Dist, everywhere, from_main, gather_objects, on_main
from videomae.training.files import OutputDirError, json_text, one_line, unused_path, writing

STEP_DIR = re.compile(r"^step_(\d{8})$")
SHARDED_DIR = "sharded"
TRAIN_STATE = "train_state.pt"
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
FLAT_OPTIMIZER = StateDictOptions(flatten_optimizer_state_dict=True)  # "state.<param>.<key>": resharding by name
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
# Everything DCP's `.metadata` pickle may name besides the classes of torch.distributed.checkpoint.metadata.
METADATA_GLOBALS = {
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("collections", "OrderedDict"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
}


class DivergenceError(VideoMAEError):
    """The loss or the weights stopped being finite."""


class DamagedCheckpoint(CheckpointError):
    """A step checkpoint with a missing, truncated or garbled file."""


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


def step_path(output_dir: str, step: int) -> str:
    return os.path.join(checkpoint_dir(output_dir), f"step_{step:08d}")


# ----------------------------------------------------------------------------------------------------
# Atomic directories
# ----------------------------------------------------------------------------------------------------


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: str) -> None:
    """Every file and folder under `root` on disk (a rename must never publish data still in the page cache)."""
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(folder)


def _new_temp_dir(final: str) -> str:
    """An empty `.tmp-NAME-PID` beside `final` (the next start removes it if this process is killed)."""
    parent = os.path.dirname(final)
    tmp = os.path.join(parent, f".tmp-{os.path.basename(final)}-{os.getpid()}")
    with writing(final, WRITE_FAILED):
        os.makedirs(parent, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    return tmp


def _fill_and_publish(tmp: str, final: str, write) -> None:
    """`write(tmp)`, then rename `tmp` to `final` (replacing an older directory of that name); `tmp` is removed
    when anything fails."""
    parent = os.path.dirname(final)
    with writing(final, WRITE_FAILED):
        try:
            write(tmp)
            _fsync_tree(tmp)
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


def _write_dir_atomically(final: str, write) -> None:
    """`write(tmp_dir)` then rename to `final`, on this process alone."""
    _fill_and_publish(_new_temp_dir(final), final, write)


# ----------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------


def is_sharded(model: nn.Module) -> bool:
    """Whether each process holds only a part of the weights (FSDP2's DTensors)."""
    return any(isinstance(p, DTensor) for p in model.parameters())


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded CPU weights (collective under FSDP: call on every rank; non-zero ranks may get {})."""
    return {k: v.contiguous() for k, v in get_model_state_dict(model, options=FULL).items()}


def nonfinite_names(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors that hold a NaN or an infinity (a DTensor: in this process's part)."""
    local = {k: v.to_local() if isinstance(v, DTensor) else v for k, v in state.items()}
    return [k for k, v in local.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def check_finite(state: dict[str, torch.Tensor], d: Dist | None = None) -> None:
    """DivergenceError when a weight is not finite; with `d`, a collective over every process's part, so all
    processes raise together (a sharded model)."""
    bad = nonfinite_names(state)
    if d is not None:
        bad = sorted({name for part in gather_objects(bad, d) for name in part})
    if bad:
        raise DivergenceError(f"weights are not finite ({bad[0]} and {len(bad) - 1} more); no checkpoint written")


def dcp_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict, dict]:
    """(what the sharded format holds, the model's state dict, the optimizer's flat state dict).

    The first is flat, `model.NAME` and `optimizer.state.NAME.KEY`, and its tensors are the run's own (DTensor
    shards under FSDP): DCP writes them, or loads into them in place. The optimizer's `param_groups`
    (hyperparameters) are left out: they are the run's config, and DCP would unpickle them without
    `weights_only`."""
    model_state = get_model_state_dict(model)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=FLAT_OPTIMIZER)
    flat = {f"model.{k}": v for k, v in model_state.items()}
    flat.update(
        {f"optimizer.{k}": v for k, v in optimizer_state.items() if k.startswith("state.") and torch.is_tensor(v)}
    )
    return flat, model_state, optimizer_state


def dcp_failure(error: dcp.CheckpointException) -> BaseException:
    """The lowest rank's exception inside DCP's CheckpointException (whose message holds every traceback)."""
    exception, _traceback = error.failures[min(error.failures)]
    return exception


def write_shards(tmp: str, d: Dist, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every process writes its part of the weights and AdamW state into `tmp/sharded` (collective: DCP shares
    every process's outcome, so a failed write raises on all). Process 0 removes `tmp` when it fails."""
    try:
        dcp.save(dcp_state(model, optimizer)[0], storage_writer=dcp.FileSystemWriter(os.path.join(tmp, SHARDED_DIR)))
    except BaseException as error:
        if d.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, dcp.CheckpointException):
            failure = dcp_failure(error)
            raise OutputDirError(f"cannot write checkpoint {tmp}: {one_line(failure)}") from failure
        raise


def prune(output_dir: str, keep_last: int) -> None:
    for old in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


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
    """Write `step_{meta['step']}` atomically and delete all but the newest `keep_last` (collective).

    A sharded model (FSDP2) is written in the sharded format by every process, anything else in the full format
    by process 0 (module docstring). `ema`: the full format only (the engine refuses EMA with FSDP)."""
    path = step_path(output_dir, meta["step"])
    train_state = {"scaler": scaler.state_dict() if scaler else None}

    def write_train_state_and_meta(tmp: str) -> None:
        torch.save(train_state, os.path.join(tmp, TRAIN_STATE))
        write_json(os.path.join(tmp, "meta.json"), meta)  # last: the mark of a complete checkpoint

    def publish_and_prune(tmp: str, write) -> None:
        _fill_and_publish(tmp, path, write)
        prune(output_dir, keep_last)

    if is_sharded(model):
        check_finite(get_model_state_dict(model), d)
        tmp = from_main(lambda: _new_temp_dir(path), d)
        write_shards(tmp, d, model, optimizer)
        on_main(lambda: publish_and_prune(tmp, write_train_state_and_meta), d)
        return

    model_state = full_model_state(model)
    train_state["optimizer"] = get_optimizer_state_dict(model, optimizer, options=FULL)
    ema_state = full_model_state(ema.module) if ema is not None else None

    def write_full(tmp: str) -> None:
        save_file(model_state, os.path.join(tmp, "model.safetensors"))
        if ema_state is not None:
            save_file(ema_state, os.path.join(tmp, "ema.safetensors"))
        write_train_state_and_meta(tmp)

    def check_and_write() -> None:
        check_finite(model_state)
        publish_and_prune(_new_temp_dir(path), write_full)

    on_main(check_and_write, d)


# ----------------------------------------------------------------------------------------------------
# Exports
# ----------------------------------------------------------------------------------------------------


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
    Always full and unsharded: collective under FSDP (the weights are gathered onto process 0, which writes)."""
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


# ----------------------------------------------------------------------------------------------------
# Reading and resuming
# ----------------------------------------------------------------------------------------------------


def step_dirs(output_dir: str) -> list[str]:
    """Every step directory, complete or not, oldest first."""
    root = checkpoint_dir(output_dir)
    names = sorted(n for n in os.listdir(root) if STEP_DIR.match(n)) if os.path.isdir(root) else []
    return [os.path.join(root, n) for n in names]


def list_checkpoints(output_dir: str) -> list[str]:
    """Complete step checkpoints, oldest first (temporary directories are ignored)."""
    return [path for path in step_dirs(output_dir) if os.path.isfile(os.path.join(path, "meta.json"))]


class MetadataUnpickler(pickle.Unpickler):
    """DCP's `.metadata` is a plain pickle: unpickle it only into the index types DCP writes there, so that a
    file planted in a run directory cannot run code when the run resumes.

    Anything else is a CheckpointError, not damage: the file is left where it is (a torch release that pickles
    another type would otherwise have every checkpoint set aside)."""

    def find_class(self, module: str, name: str):
        if module == "torch.distributed.checkpoint.metadata" or (module, name) in METADATA_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise CheckpointError(
            f"a checkpoint index (.metadata) names {module}.{name}, which DCP's index does not hold; not "
            f"unpickled (written by another torch release?)"
        )


def read_dcp_index(folder: str) -> Metadata:
    """The `.metadata` of a DCP checkpoint: every saved tensor's name, size and pieces."""
    with open(os.path.join(folder, ".metadata"), "rb") as handle:
        index = MetadataUnpickler(handle).load()
    if not isinstance(index, Metadata):
        raise ValueError(".metadata holds no checkpoint index")
    return index


def does_not_fit(path: str, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{path} does not fit this run's model and optimizer ({detail}); resume with the settings it was written "
        f"with, or choose another output_dir or pass --fresh"
    )


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


def check_index_fits(path: str, index: Metadata, wanted: dict[str, torch.Tensor]) -> None:
    """The sharded checkpoint holds exactly the tensors this run loads, at their sizes (before DCP reads any)."""
    saved = index.state_dict_metadata
    size = {k: tuple(getattr(v, "size", ())) for k, v in saved.items()}
    problems = [f"{k} missing" for k in sorted(wanted.keys() - saved.keys())]
    problems += [f"unexpected {k}" for k in sorted(saved.keys() - wanted.keys())]
    problems += [
        f"{k}: {list(size[k])} saved, {list(wanted[k].shape)} here"
        for k in sorted(wanted.keys() & saved.keys())
        if size[k] != tuple(wanted[k].shape)
    ]
    if problems:
        raise does_not_fit(path, f"{problems[0]}, and {len(problems) - 1} more" if len(problems) > 1 else problems[0])


@dataclass
class StepCheckpoint:
    """A step directory as one process reads it; a sharded checkpoint's tensors are read later, collectively."""

    path: str
    meta: dict
    train_state: dict  # the loss scaler; the full format's optimizer too
    model_state: dict[str, torch.Tensor] | None = None  # full format
    ema_state: dict[str, torch.Tensor] | None = None
    index: Metadata | None = None  # sharded format

    def check_fits(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """CheckpointError when this run's model (or, sharded, its optimizer) cannot take the checkpoint."""
        check_same_model(self.path, self.meta.get("model_config"), model.config.to_dict())
        if self.index is not None:
            check_index_fits(self.path, self.index, dcp_state(model, optimizer)[0])

    def restore(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        scaler: torch.amp.GradScaler | None,
        ema: nn.Module | None,
    ) -> dict:
        """Load model, optimizer, scaler and EMA (collective for a sharded checkpoint); returns the meta."""
        if self.index is not None:
            self.load_shards(model, optimizer)
        else:
            self.load_full(model, optimizer)
        if scaler is not None and self.train_state["scaler"]:
            scaler.load_state_dict(self.train_state["scaler"])
        if ema is not None:  # a run that turns EMA on starts its average from the resumed weights
            ema.module.load_state_dict(self.ema_state if self.ema_state is not None else model.state_dict())
        return self.meta

    def load_full(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        full = StateDictOptions(full_state_dict=True)
        try:
            set_model_state_dict(model, self.model_state, options=full)
            set_optimizer_state_dict(model, optimizer, self.train_state["optimizer"], options=full)
        except (RuntimeError, KeyError, ValueError) as error:
            raise does_not_fit(self.path, one_line(error)[:300]) from None

    def load_shards(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """DCP reads every process's part of every tensor, whatever the process count that wrote them."""
        flat, model_state, optimizer_state = dcp_state(model, optimizer)
        try:
            dcp.load(flat, storage_reader=dcp.FileSystemReader(os.path.join(self.path, SHARDED_DIR)))
        except dcp.CheckpointException as error:
            failure = dcp_failure(error)
            if isinstance(failure, OSError) and not isinstance(failure, FileNotFoundError):
                raise CheckpointError(f"cannot read checkpoint {self.path}: {failure}") from None
            raise DamagedCheckpoint(f"{self.path}: {one_line(failure)[:300]}") from None
        set_model_state_dict(model, model_state)  # the tensors were loaded in place; this also covers copies
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=FLAT_OPTIMIZER)


def read_checkpoint(path: str) -> StepCheckpoint:
    """A step directory, but for a sharded checkpoint's tensors; DamagedCheckpoint when a file is missing, cut
    or garbled."""
    try:
        with open(os.path.join(path, "meta.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
        if not isinstance(meta, dict) or meta.get("step") != int(STEP_DIR.match(os.path.basename(path))[1]):
            raise ValueError("meta.json does not hold this directory's step")
        train_state = torch.load(os.path.join(path, TRAIN_STATE), map_location="cpu", weights_only=True)
        if not isinstance(train_state, dict) or "scaler" not in train_state:
            raise ValueError(f"{TRAIN_STATE} holds no training state")
        sharded = os.path.join(path, SHARDED_DIR)
        if os.path.isdir(sharded):
            return StepCheckpoint(path, meta, train_state, index=read_dcp_index(sharded))
        if "optimizer" not in train_state:
            raise ValueError(f"{TRAIN_STATE} holds no optimizer state")
        model_state = load_file(os.path.join(path, "model.safetensors"))
        ema_path = os.path.join(path, "ema.safetensors")
        ema_state = load_file(ema_path) if os.path.exists(ema_path) else None
    except DAMAGED as error:
        raise DamagedCheckpoint(f"{path}: {one_line(error)}") from None
    except OSError as error:  # permissions, I/O errors: the files may be fine, so nothing is set aside
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    return StepCheckpoint(path, meta, train_state, model_state, ema_state)


def set_aside(damaged: list[tuple[str, DamagedCheckpoint]], resumed: str) -> None:
    """Rename damaged checkpoints to `step_X.corrupt` (kept for inspection: never deleted silently)."""
    for path, error in damaged:
        aside = unused_path(f"{path}.corrupt")
        os.rename(path, aside)
        print(
            f"checkpoint damaged ({error}); moved it to {aside} and resumed from {resumed}", file=sys.stderr, flush=True
        )


def attempt(action, d: Dist):
    """(`action()`'s result, None), or (None, the CheckpointError a process met): the same outcome on every
    process (collective). Any other error is raised on every process."""
    try:
        return everywhere(action, d), None
    except CheckpointError as error:
        return None, error


def prepared(path: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> StepCheckpoint:
    checkpoint = read_checkpoint(path)
    checkpoint.check_fits(model, optimizer)
    return checkpoint


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

    Collective: every process tries process 0's list in the same order and all agree on each outcome, once
    the files are read (nothing loaded yet) and once they are loaded. Damaged newer checkpoints are set
    aside once an older one has loaded; when none loads, nothing is renamed and this raises."""
    damaged = []
    for path in reversed(from_main(functools.partial(step_dirs, output_dir), d)):
        checkpoint, problem = attempt(functools.partial(prepared, path, model, optimizer), d)
        if problem is None:
            restore = functools.partial(checkpoint.restore, model, optimizer, scaler=scaler, ema=ema)
            meta, problem = attempt(restore, d)
        if problem is None:
            on_main(functools.partial(set_aside, damaged, path), d)
            return path, meta
        if not isinstance(problem, DamagedCheckpoint):
            raise problem
        damaged.append((path, problem))
    if damaged:
        raise CheckpointError(
            f"no checkpoint in {checkpoint_dir(output_dir)} can be read "
            f"({'; '.join(str(error) for _, error in damaged)}); pass --fresh to move this run "
            f"aside and start again"
        )
    return None

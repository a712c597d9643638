"""Process-group setup (torchrun or SLURM environment) and the few collectives the engine needs.

An error that one process meets must become every process's error, or the others wait forever in the next
collective: `on_main` and `from_main` run work on process 0 and share its outcome, `everywhere` runs work on every
process and raises on all of them when any failed. The process group's timeout (`init_distributed`) bounds
what is left: a process that dies between collectives.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from videomae.errors import ConfigError, VideoMAEError

TIMEOUT_ENV = "VIDEOMAE_DIST_TIMEOUT_S"
# How long a collective waits for the slowest process. Process 0 writes exports alone while the others wait, and
# a ViT-g export is ~4 GB (a full-format checkpoint with its optimizer ~12 GB): NCCL's own 10 minutes is too
# short on a slow shared file system.
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_ranks() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's variables, else SLURM's (srun without torchrun)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", 1)) > 1:
        return int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"]), int(os.environ["SLURM_LOCALID"])
    return 0, 1, 0


def collective_timeout_s(configured: float | None = None) -> float:
    """Seconds a collective may wait: `configured` (TrainConfig.dist_timeout_s), else $VIDEOMAE_DIST_TIMEOUT_S,
    else 30 minutes."""
    if configured is not None:
        return configured
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return seconds


def init_distributed(timeout_s: float | None = None) -> Dist:
    """Join the process group when launched with several processes; NCCL on GPUs, gloo on CPUs.

    `timeout_s`: how long a collective waits before the run fails (`collective_timeout_s`); the first call
    that joins the group decides. Under SLURM without torchrun, MASTER_ADDR and MASTER_PORT must be exported
    (docs/training.md).
    """
    rank, world, local_rank = _env_ranks()
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            rank=rank,
            world_size=world,
            device_id=device if device.type == "cuda" else None,
            timeout=datetime.timedelta(seconds=collective_timeout_s(timeout_s)),
        )
    return Dist(rank, world, local_rank, device)


def sum_across(value: torch.Tensor | float, d: Dist) -> torch.Tensor:
    """The sum of a value over processes (fp64 copy on the process's device; the input is untouched)."""
    value = torch.as_tensor(value).detach().to(d.device, torch.float64).clone()
    if d.enabled:
        dist.all_reduce(value)
    return value


def max_across(value: int, d: Dist) -> int:
    """The largest of an integer over processes."""
    if not d.enabled:
        return value
    tensor = torch.tensor([value], device=d.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def share(obj, d: Dist):
    """Process 0's `obj` (picklable), on every process."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _portable(error: Exception | None, rank: int) -> Exception | None:
    """An error as another process re-raises it: a VideoMAEError as it is (the command line prints its one
    line), anything else as a RuntimeError naming it (it may not pickle)."""
    if error is None or isinstance(error, VideoMAEError):
        return error
    return RuntimeError(f"process {rank} failed: {error!r}")


def on_main(action, d: Dist):
    """`action()` on process 0 alone; returns its result there and None elsewhere.

    When it raises, every process raises, so none waits forever for a process that stopped (process 0 raises
    the original, the others its `_portable` form)."""
    result = error = None
    if d.is_main:
        try:
            result = action()
        except Exception as caught:
            error = caught
    shared = share(_portable(error, 0), d)
    if error is not None:
        raise error
    if shared is not None:
        raise shared
    return result


def from_main(action, d: Dist):
    """`action()` on process 0 alone, its (picklable) result on every process; raises everywhere as `on_main`."""
    return share(on_main(action, d), d)


def everywhere(action, d: Dist):
    """`action()` on every process; when it raises on any, every process raises (collective).

    All raise the lowest-ranked process's error (that process its original, the others its `_portable` form),
    so that every process takes the same branch when the caller catches a kind of error."""
    result = error = None
    try:
        result = action()
    except Exception as caught:
        error = caught
    errors = gather_objects(_portable(error, d.rank), d)
    failed = next((rank for rank, shared in enumerate(errors) if shared is not None), None)
    if failed is None:
        return result
    raise error if failed == d.rank else errors[failed]


def gather_objects(obj, d: Dist) -> list:
    """Every process's `obj`, in rank order (in memory, no files)."""
    if not d.enabled:
        return [obj]
    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group once every process is done with it: the barrier runs after any collective still
    queued (a DTensor's lazily waited one, say), which gloo would otherwise abort on at exit."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

"""Process-group setup (torchrun or SLURM environment) and the few collectives the engine needs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from videomae.errors import VideoMAEError


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


def init_distributed() -> Dist:
    """Join the process group when launched with several processes; NCCL on GPUs, gloo on CPUs.

    Under SLURM without torchrun, MASTER_ADDR and MASTER_PORT must be exported (docs/training.md).
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


def on_main(action, d: Dist):
    """`action()` on process 0 alone; returns its result there and None elsewhere.

    When it raises, every process raises, so none waits forever for a process that stopped: a VideoMAEError
    as it is (the command line prints its one line), anything else as a RuntimeError naming it (process 0
    raises the original)."""
    result = error = None
    if d.is_main:
        try:
            result = action()
        except Exception as caught:
            error = caught
    shared = share(
        error if error is None or isinstance(error, VideoMAEError) else RuntimeError(f"process 0 failed: {error!r}"), d
    )
    if error is not None:
        raise error
    if shared is not None:
        raise shared
    return result


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
    if dist.is_initialized():
        dist.destroy_process_group()

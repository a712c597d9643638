"""DataLoader setup: a rank-sharded, seed-deterministic sampler with exact resume, and the view collate.

Call `loader.sampler.set_epoch(epoch)` before each epoch. The sampler yields `(epoch, index)` pairs, so the
dataset (also in persistent workers) draws the augmentation of the right epoch.
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from videomae.errors import DataError
from videomae.seeding import derive_seed

SHUFFLE_STREAM = 0x5A3B1E  # keeps the permutation's stream apart from per-sample draws


class ShardedSampler(Sampler[tuple[int, int]]):
    """Every rank takes every `world_size`-th index of one permutation drawn from (seed, epoch).

    Without `drop_last` the permutation is padded by wrapping around so all ranks get equally many indices
    (as `DistributedSampler`); with it, the tail is cut.

    Args:
        num_samples: dataset length.
        shuffle: permute each epoch (else dataset order).
        seed: base seed shared by all ranks.
        rank: this process's rank.
        world_size: number of processes.
        drop_last: cut the tail instead of padding.
        start_index: samples of this rank to skip in the next iteration only (resume inside an epoch).
    """

    def __init__(
        self,
        num_samples: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        start_index: int = 0,
    ):
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world_size {world_size}")
        self.num_samples, self.shuffle, self.seed = num_samples, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.start_index, self.epoch = start_index, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation (and augmentation) the next iteration uses."""
        self.epoch = int(epoch)

    def per_rank(self) -> int:
        """Indices each rank gets per epoch."""
        if self.drop_last:
            return self.num_samples // self.world_size
        return math.ceil(self.num_samples / self.world_size)

    def epoch_indices(self) -> list[int]:
        """This rank's indices for the current epoch, before skipping `start_index`."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, SHUFFLE_STREAM))
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        total = self.per_rank() * self.world_size
        order = (order * math.ceil(total / max(len(order), 1)))[:total]  # pad by wrapping, or cut the tail
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self.start_index = self.start_index, 0  # resume applies to one iteration only
        return iter([(self.epoch, index) for index in self.epoch_indices()[skip:]])

    def __len__(self) -> int:
        return max(self.per_rank() - self.start_index, 0)


def collate_views(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate each item's leading view dimension into the batch (video0-view0..V-1, video1-view0, ...)."""
    return {key: torch.cat([item[key] for item in batch], dim=0) for key in batch[0]}


@contextlib.contextmanager
def worker_batches(loader: DataLoader) -> Iterator[Iterator]:
    """An iterator over `loader` whose worker processes are stopped when the block ends, also on an error.

    Workers ignore SIGINT/SIGTERM (`_worker_init`), so they must be shut down by the loader itself: an iterator
    kept alive by an error's traceback would otherwise leave them running and the process waiting for them at exit.
    """
    batches = iter(loader)
    try:
        yield batches
    finally:
        shutdown = getattr(batches, "_shutdown_workers", None)  # what DataLoader's iterator runs when collected
        if shutdown is not None:
            shutdown()


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # workers decode and augment in parallel; intra-op threads would oversubscribe
    # Ctrl-C and SLURM's SIGTERM reach every process of the job; the main process decides when to stop (after a
    # checkpoint) and then shuts the workers down. A worker that died here would make the loader raise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int,
    drop_last: bool,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
    start_index: int = 0,
) -> DataLoader:
    """A DataLoader that keeps an accelerator fed and gives the same samples for any worker count.

    Args:
        dataset: a dataset from `build_dataset`.
        batch_size: videos per batch (the real batch is batch_size x num_sample views).
        shuffle: permute every epoch from (seed, epoch).
        seed: base seed shared by all ranks.
        num_workers: worker processes (0 = load in the main process).
        drop_last: drop the incomplete last batch and the sampler tail.
        rank: this process's rank.
        world_size: number of processes.
        pin_memory: default: True when CUDA is available.
        persistent_workers: default: True when there are workers.
        prefetch_factor: batches prefetched per worker; default 2 (4 when pinning for a GPU).
        start_index: samples of this rank already consumed in the current epoch (resume).

    Returns:
        The DataLoader; call `loader.sampler.set_epoch(epoch)` before every epoch.
    """
    sampler = ShardedSampler(
        len(dataset),
        shuffle=shuffle,
        seed=seed,
        rank=rank,
        world_size=world_size,
        drop_last=drop_last,
        start_index=start_index,
    )
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    workers_kwargs = {}
    if num_workers > 0:
        workers_kwargs = {
            "persistent_workers": True if persistent_workers is None else persistent_workers,
            "prefetch_factor": prefetch_factor or (4 if pin else 2),
            "worker_init_fn": _worker_init,
        }
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_views,
        pin_memory=pin,
        drop_last=drop_last,
        **workers_kwargs,
    )

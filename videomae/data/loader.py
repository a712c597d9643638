"""Data loading: a rank-sharded, seed-deterministic sampler with exact resume (also on another number of
processes), the view collate, one loader per training run, and batches delivered on the device.

Set `loader.sampler.set_epoch(epoch)` before each epoch (`run_batches` does it). The sampler yields `(epoch, index)`
pairs, so the dataset (also in persistent workers) draws the augmentation of the right epoch.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from videomae.data.transforms import normalize_clips
from videomae.errors import DataError
from videomae.seeding import derive_seed

SHUFFLE_STREAM = 0x5A3B1E  # keeps the permutation's stream apart from per-sample draws


class ShardedSampler(Sampler[tuple[int, int]]):
    """Every rank takes every `world_size`-th index of one permutation drawn from (seed, epoch).

    The permutation does not depend on the number of processes, so a position in it (`start_sample`, counted over
    all ranks) means the same thing for any world size: a run resumes on another number of processes exactly where
    it stopped. Without `drop_last` the permutation is padded by wrapping around so all ranks get equally many
    indices (as `DistributedSampler`); with it, the tail is cut.

    Args:
        num_samples: dataset length.
        shuffle: permute each epoch (else dataset order).
        seed: base seed shared by all ranks.
        rank: this process's rank.
        world_size: number of processes.
        drop_last: cut the tail instead of padding.
        samples_per_rank: indices each rank takes per epoch (default: all it gets); the training loop asks for
            exactly its steps' worth, so one loader can serve epoch after epoch.
        start_sample: samples of the epoch, over all ranks, to skip in the next iteration only (resume); a
            multiple of `world_size`.
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
        samples_per_rank: int | None = None,
        start_sample: int = 0,
    ):
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world_size {world_size}")
        self.num_samples, self.shuffle, self.seed = num_samples, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.samples_per_rank = min(samples_per_rank or self.per_rank(), self.per_rank())
        self.start_sample, self.epoch = start_sample, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation (and augmentation) the next iteration uses."""
        self.epoch = int(epoch)

    def per_rank(self) -> int:
        """Indices each rank can get per epoch."""
        if self.drop_last:
            return self.num_samples // self.world_size
        return math.ceil(self.num_samples / self.world_size)

    def epoch_order(self) -> list[int]:
        """The epoch's indices over all ranks, in the order they are consumed (rank r takes [r::world_size])."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, SHUFFLE_STREAM))
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        total = self.samples_per_rank * self.world_size
        return (order * math.ceil(total / max(len(order), 1)))[:total]  # pad by wrapping, or cut the tail

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self.start_sample = self.start_sample, 0  # resume applies to one iteration only
        return iter([(self.epoch, index) for index in self.epoch_order()[skip:][self.rank :: self.world_size]])

    def __len__(self) -> int:
        return max(self.samples_per_rank - self.start_sample // self.world_size, 0)


def collate_views(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate each item's leading view dimension into the batch (video0-view0..V-1, video1-view0, ...)."""
    return {key: torch.cat([item[key] for item in batch], dim=0) for key in batch[0]}


def _stop_workers(iterator) -> None:
    """What a DataLoader iterator runs when it is collected, now: workers ignore SIGINT/SIGTERM (`_worker_init`),
    so they must be shut down by the loader, and an iterator kept alive by an error's traceback would otherwise
    leave them running and the process waiting for them at exit."""
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


@contextlib.contextmanager
def worker_batches(loader: DataLoader) -> Iterator[Iterator]:
    """One pass over `loader` whose worker processes stop when the block ends, also on an error."""
    batches = iter(loader)
    try:
        yield batches
    except BaseException:
        # A worker stopped in the middle of a video can die on its way out (seen in CI: "terminate called without
        # an active exception" with a decoder open), which the loader raises from its shutdown as a RuntimeError:
        # it must not replace the error that ended the pass, which is the one the user needs.
        with contextlib.suppress(RuntimeError):
            _stop_workers(batches)
        raise
    _stop_workers(batches)


@contextlib.contextmanager
def run_batches(loader: DataLoader, first_epoch: int, device: torch.device) -> Iterator[Iterator[dict]]:
    """The batches of every epoch from `first_epoch` on, from one loader whose workers persist across epochs,
    delivered on `device` (`DevicePrefetcher`). The workers stop when the block ends, also on an error."""

    def epochs() -> Iterator[dict]:
        for epoch in itertools.count(first_epoch):
            set_epoch(loader, epoch)
            yield from loader

    try:
        yield DevicePrefetcher(epochs(), device)
    finally:
        _stop_workers(getattr(loader, "_iterator", None))  # the persistent iterator, when there are workers


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Choose the epoch of the loader's next pass: its sampler's (map-style) or its streamed dataset's."""
    (loader.dataset if isinstance(loader.dataset, IterableDataset) else loader.sampler).set_epoch(epoch)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch on `device` (non-blocking from pinned memory) with its clips normalised there."""
    moved = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    moved["video"] = normalize_clips(moved["video"])
    return moved


class DevicePrefetcher:
    """Batches on the device, the next one copied while the current step runs.

    On CUDA the copy of batch k+1 is queued on a side stream as soon as batch k is handed out, so it overlaps the
    step; the compute stream waits for it only when it takes the batch. uint8 clips are normalised on the device
    (four times fewer bytes cross the bus than float clips). On the CPU it is a plain `to_device`.
    """

    def __init__(self, batches: Iterator[dict], device: torch.device):
        self.batches, self.device = batches, device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.ready = self._copy_next()

    def _copy_next(self) -> dict | None:
        batch = next(self.batches, None)
        if batch is None or self.stream is None:
            return batch
        with torch.cuda.stream(self.stream):
            return {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}

    def __iter__(self) -> DevicePrefetcher:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.ready is None:
            raise StopIteration
        batch = self.ready
        if self.stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)
            for value in batch.values():
                value.record_stream(current)  # allocated on the side stream, used on this one
        self.ready = self._copy_next()
        return to_device(batch, self.device)


def prefetch_for_memory(batch_bytes: int, num_workers: int, budget_bytes: int) -> int:
    """Batches each worker may prepare ahead (1 to 4) so that all of them together stay within `budget_bytes`."""
    return max(1, min(4, budget_bytes // max(batch_bytes * num_workers, 1)))


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
    prefetch_factor: int = 2,
    samples_per_rank: int | None = None,
    start_sample: int = 0,
) -> DataLoader:
    """A DataLoader that keeps an accelerator fed and gives the same samples for any worker count.

    Workers persist across epochs (`run_batches` iterates epoch after epoch over one loader). A streamed
    dataset (`StreamDataset`) plans its own order from the same arguments; set its epoch with `set_epoch(loader,
    epoch)`.

    Args:
        dataset: a dataset from `build_dataset`.
        batch_size: videos per batch (the real batch is batch_size x num_sample views).
        shuffle: permute every epoch from (seed, epoch) (a streamed dataset always shuffles, by its own seed).
        seed: base seed shared by all ranks.
        num_workers: worker processes (0 = load in the main process).
        drop_last: drop the incomplete last batch and the sampler tail.
        rank: this process's rank.
        world_size: number of processes.
        pin_memory: default: True when CUDA is available.
        prefetch_factor: batches prepared ahead per worker (`prefetch_for_memory` sizes it).
        samples_per_rank: indices each rank takes per epoch (`ShardedSampler`).
        start_sample: samples of the current epoch, over all ranks, already consumed (resume).

    Returns:
        The DataLoader; set `loader.sampler.set_epoch(epoch)` (or `set_epoch(loader, epoch)`) before every epoch.
    """
    workers = {}
    if num_workers > 0:
        workers = {"persistent_workers": True, "prefetch_factor": prefetch_factor, "worker_init_fn": _worker_init}
    common = dict(
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_views,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        **workers,
    )
    if isinstance(dataset, IterableDataset):
        dataset.configure(
            rank=rank,
            world_size=world_size,
            batch_size=batch_size,
            samples_per_rank=samples_per_rank,
            start_sample=start_sample,
        )
        return DataLoader(dataset, **common)
    sampler = ShardedSampler(
        len(dataset),
        shuffle=shuffle,
        seed=seed,
        rank=rank,
        world_size=world_size,
        drop_last=drop_last,
        samples_per_rank=samples_per_rank,
        start_sample=start_sample,
    )
    return DataLoader(dataset, sampler=sampler, **common)


def build_eval_loader(dataset: Dataset, batch_size: int, num_workers: int, rank: int = 0, world_size: int = 1):
    """Every sample once, in order, each process its share (padded to equal shares; callers drop repeats)."""
    return build_loader(
        dataset,
        batch_size,
        shuffle=False,
        seed=0,
        num_workers=num_workers,
        drop_last=False,
        rank=rank,
        world_size=world_size,
    )

"""Streamed tar shards: an IterableDataset that reads each shard front to back, for data in object storage.

The shard index (`index.csv`, see `videomae.data.shards`) lists every sample in shard order with its byte range
and label, so the whole epoch is planned before a byte is read:
- order: the shards in an order drawn from (seed, epoch), each front to back; the epoch is this sample sequence;
- split: rank r takes the r-th run of `samples_per_rank` consecutive samples (the tail is left out, as with
  `drop_last`); inside a rank, DataLoader worker w takes a contiguous share of whole batches, the batches
  w, w+W, w+2W, ... of the rank, which is the order the DataLoader takes batches from its workers. Every sample
  is read once per epoch, by one worker of one rank;
- shuffle: each worker permutes its samples in consecutive blocks of `shuffle_buffer`, each block by a draw from
  (seed, epoch, rank, worker, block) (a shuffle buffer whose state is known at every position);
- reading: a worker reads each run of consecutive samples of one shard as one sequential stream from the first
  sample's byte offset (`remote.SequentialReader`, blocks fetched ahead), parsing the tar members with `tarfile`;
  the next block's samples are read while the current block's are decoded;
- resume: the position in the epoch (samples consumed over all ranks, as for map-style loaders) gives each
  worker's position in its sequence; it starts reading at the block holding it (and as a new DataLoader asks
  worker 0 first, the workers swap parts so that the batches come in the interrupted order). Exact when the
  world size, batch size and number of workers are those of the interrupted run.

Items are those of the map-style dataset for the same sample (the same frames, crops and masks for a given
(seed, epoch, index)). A member that does not decode is reported (`SHARD#KEY` in `bad_files.jsonl`) and replaced
as with files; one that the stream could not deliver (a broken connection after the retries, a damaged tar) is
read again by its byte range before it counts as bad.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import tarfile
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from videomae.data import remote
from videomae.data.datasets import VideoDataset
from videomae.errors import DataError
from videomae.seeding import derive_seed, numpy_generator

logger = logging.getLogger("videomae.data")

SHARD_ORDER_STREAM, BLOCK_STREAM = 0x5D0A7D, 0xB10C  # random streams apart from the per-sample draws


def shard_runs(dataset: VideoDataset) -> list[np.ndarray]:
    """Sample indices of each shard in file order (shards in the order the index first names them)."""
    by_shard: dict[str, list[int]] = {}
    for index, sample in enumerate(dataset.samples):
        if sample.byte_range is None:
            raise DataError(
                f"data.stream=true reads a shard index (index.csv of `videomae data prepare --shards` or "
                f"`videomae data index`); {sample.path} is a plain file"
            )
        by_shard.setdefault(sample.path, []).append(index)
    return [np.array(sorted(run, key=lambda i: dataset.samples[i].byte_range[0])) for run in by_shard.values()]


def epoch_order(shards: list[np.ndarray], seed: int, epoch: int) -> np.ndarray:
    """The epoch's samples as read: shards in an order drawn from (seed, epoch), each front to back."""
    generator = torch.Generator().manual_seed(derive_seed(seed, epoch, SHARD_ORDER_STREAM))
    return np.concatenate([shards[i] for i in torch.randperm(len(shards), generator=generator).tolist()])


def worker_share(samples_per_rank: int, batch_size: int, num_workers: int, worker: int) -> tuple[int, int]:
    """(first sample, samples) of a worker's contiguous share of its rank: the batches worker, worker + W, ..."""
    batches = samples_per_rank // batch_size
    counts = [len(range(w, batches, num_workers)) * batch_size for w in range(num_workers)]
    return sum(counts[:worker]), counts[worker]


def batches_made(batches_taken: int, num_workers: int, worker: int) -> int:
    """Batches a worker has made once the DataLoader has taken `batches_taken` from its workers in turn."""
    return len(range(worker, batches_taken, num_workers))


class StreamDataset(IterableDataset):
    """Streams the samples of a map-style dataset over a shard index (see the module docstring).

    `build_loader` sets the layout (`configure`); `set_epoch` chooses the epoch of the next iteration, also in
    persistent workers (a small shared array), and carries the resume position to the first one only.

    Args:
        dataset: the map-style dataset of the training split; it decodes and augments each sample.
        shuffle_buffer: samples per shuffled block (encoded videos held per worker: up to twice this many).
        seed: base seed of the shard order and the block shuffles.
    """

    streamed = True

    def __init__(self, dataset: VideoDataset, shuffle_buffer: int, seed: int):
        self.dataset, self.shuffle_buffer, self.seed = dataset, shuffle_buffer, seed
        self.shards = shard_runs(dataset)
        self.rank, self.world_size, self.batch_size = 0, 1, 1
        self.samples_per_rank = len(dataset)
        self._position = multiprocessing.Array("q", 2, lock=False)  # epoch, samples consumed (first pass only)
        self._pending_skip = 0
        self._sizes: dict[str, int] = {}  # shard sizes met so far
        self._next_offset = np.full(len(dataset), -1)  # data offset of the sample after each one in its shard
        for run in self.shards:
            self._next_offset[run[:-1]] = [dataset.samples[i].byte_range[0] for i in run[1:]]

    # what the engine and the stages read of a training set
    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def samples(self):
        return self.dataset.samples

    @property
    def pixel_bytes(self) -> int:
        return self.dataset.pixel_bytes

    @property
    def video_ids(self) -> list[str]:
        return self.dataset.video_ids

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def class_names(self) -> list[str] | None:
        return getattr(self.dataset, "class_names", None)

    def configure(
        self, *, rank: int, world_size: int, batch_size: int, samples_per_rank: int | None, start_sample: int
    ) -> None:
        """The layout of the loader (before its workers start) and the resume position (samples of the epoch
        consumed over all ranks, for the next epoch's pass only)."""
        per_rank = len(self) // world_size // batch_size * batch_size
        self.samples_per_rank = min(samples_per_rank or per_rank, per_rank)
        if self.samples_per_rank < batch_size:
            raise DataError(f"{len(self)} samples make no batch of {batch_size} on each of {world_size} ranks")
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size
        self._pending_skip = start_sample

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next iteration (read by the workers when it starts)."""
        self._position[0], self._position[1] = int(epoch), self._pending_skip
        self._pending_skip = 0

    def worker_sequence(self, epoch: int, worker: int, num_workers: int) -> np.ndarray:
        """Sample indices a worker reads in an epoch, in file order (before the block shuffle)."""
        first, count = worker_share(self.samples_per_rank, self.batch_size, num_workers, worker)
        start = self.rank * self.samples_per_rank + first
        return epoch_order(self.shards, self.seed, epoch)[start : start + count]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        epoch, consumed = int(self._position[0]), int(self._position[1])
        taken = consumed // self.world_size // self.batch_size
        # A DataLoader asks worker 0 first: after `taken` batches, it plays the part of the worker due next.
        part = (worker + taken) % num_workers
        skip = batches_made(taken, num_workers, part) * self.batch_size
        sequence = self.worker_sequence(epoch, part, num_workers)
        yield from self._shuffled(epoch, sequence, skip, (self.rank, part))

    def _shuffled(self, epoch: int, sequence: np.ndarray, skip: int, consumer: tuple[int, int]) -> Iterator[dict]:
        """Items of `sequence` permuted block by block, from output position `skip` on; block j+1 is read while
        block j is decoded."""
        size = self.shuffle_buffer
        first_block = skip // size
        fetched = self._fetch(sequence[first_block * size :])
        current = list(itertools.islice(fetched, size))
        for block in itertools.count(first_block):
            if not current:
                return
            order = numpy_generator(self.seed, epoch, *consumer, block, BLOCK_STREAM).permutation(len(current))
            following: list[tuple[int, bytes | None]] = []
            self.dataset.fetched = {index: data for index, data in current if data is not None}
            for position in order[skip - block * size if block == first_block else 0 :]:
                yield self._item(epoch, current[position][0])
                following += itertools.islice(fetched, 1)  # the next block arrives while this one is decoded
            following += itertools.islice(fetched, size - len(following))
            self.dataset.fetched, current = {}, following

    def _item(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        return self.dataset[(epoch, index)]  # decodes the fetched bytes; replaces a bad member as with files

    def _fetch(self, sequence: np.ndarray) -> Iterator[tuple[int, bytes | None]]:
        """(index, encoded video or None when the stream could not deliver it) for each sample, in order: one
        sequential read per run of consecutive samples of one shard."""
        samples = self.dataset.samples
        for path, run in itertools.groupby(sequence.tolist(), key=lambda i: samples[i].path):
            yield from self._read_run(path, list(run))

    def _read_run(self, path: str, run: list[int]) -> Iterator[tuple[int, bytes | None]]:
        samples = [self.dataset.samples[i] for i in run]
        delivered = 0
        try:
            with remote.SequentialReader(path, samples[0].byte_range[0], self._run_end(path, run[-1])) as reader:
                for data in _members(reader, samples):
                    yield run[delivered], data
                    delivered += 1
        except (remote.RemoteError, tarfile.TarError, OSError) as error:
            logger.warning(
                "streaming %s stopped at %s (%s); reading its remaining %d samples one by one",
                path,
                samples[delivered].key,
                error,
                len(run) - delivered,
            )
        for index in run[delivered:]:
            yield index, None

    def _run_end(self, path: str, last: int) -> int:
        """Where a run ending with sample `last` stops reading: at the next sample's data, or the shard's end."""
        if self._next_offset[last] >= 0:
            return int(self._next_offset[last])
        if path not in self._sizes:
            self._sizes[path] = remote.file_size(path)
        return self._sizes[path]


def _members(reader: remote.SequentialReader, samples: list) -> Iterator[bytes | None]:
    """The encoded video of each of `samples` (consecutive in one shard), in order, from a stream positioned at
    the first one's data: that one is read by its size from the index, the rest by parsing the tar members that
    follow. A sample whose member is not where the index says is None."""
    offset, size = samples[0].byte_range
    data = reader.read(size)
    yield data if len(data) == size else None
    if len(samples) == 1:
        return
    reader.read(-size % tarfile.BLOCKSIZE)  # the padding to the next member's header
    base, position = reader.position, 1
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        for member in tar:
            start = base + member.offset_data
            while position < len(samples) and samples[position].byte_range[0] < start:
                yield None  # the index names a member the tar does not have here
                position += 1
            if position == len(samples):
                return
            if samples[position].byte_range[0] == start and member.isfile():
                if not member.name.startswith(samples[position].key + "."):
                    raise DataError(
                        f"{reader.path}: member {member.name} is where the index expects {samples[position].key}; "
                        f"the index does not describe this shard (write it again with `videomae data index`)"
                    )
                yield tar.extractfile(member).read()
                position += 1
                if position == len(samples):
                    return
    yield from [None] * (len(samples) - position)

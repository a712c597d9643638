"""Videos decoded in DataLoader worker processes while the main process runs the model (`predict`, `extract`).

`run_videos(inputs, open_video, model, num_workers)` hands each input to `open_video`, which returns the video's
facts (fps, window starts, ...) and an iterator of batches of model inputs. The batches are decoded where the
`DecodedVideos` dataset is iterated: in the main process (`num_workers=0`, as a plain loop would) or in worker w
for videos w, w + W, w + 2W, ... Each video becomes a stream of `Piece`s (its facts, its batches, its end, or
the error or skip that ends it early); the pieces of different videos interleave, and `run_videos` gathers each
video's model outputs until its end arrives. The batches are the serial path's, so the outputs are identical
for any worker count.

Workers are spawned, not forked: a forked worker inherits the main process's decoder objects (PyAV frames and
their scaler threads), and finalizing one in the child, whose threads were not copied, hangs it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from videomae.data.loader import worker_batches
from videomae.errors import ConfigError, DataError


class Skip(Exception):
    """Raised by an `open_video` for an input that needs no work (e.g. finished, or taken by another process)."""


@dataclass
class Piece:
    """One item of a video's stream: "start" (facts), "batch", "end", "failed" (error) or "skipped" (reason)."""

    index: int  # the video's position in the input list
    kind: str
    facts: dict | None = None
    batch: torch.Tensor | None = None
    error: DataError | None = None
    reason: str | None = None

    def pin_memory(self) -> Piece:
        """Page-locked batch for an asynchronous copy to the GPU (DataLoader's pin_memory calls this)."""
        return dataclasses.replace(self, batch=self.batch.pin_memory()) if self.batch is not None else self


OpenVideo = Callable[[object], tuple[dict, Iterator[torch.Tensor]]]


class DecodedVideos(IterableDataset):
    """The pieces of every input (of this worker's share): picklable for worker processes as long as the inputs
    and `open_video` are (a module-level function or a functools.partial of one)."""

    def __init__(self, inputs: list, open_video: OpenVideo):
        self.inputs, self.open_video = inputs, open_video

    def __iter__(self) -> Iterator[Piece]:
        worker = get_worker_info()
        first, step = (0, 1) if worker is None else (worker.id, worker.num_workers)
        for index in range(first, len(self.inputs), step):
            yield from self.pieces(index)

    def pieces(self, index: int) -> Iterator[Piece]:
        try:
            facts, batches = self.open_video(self.inputs[index])
        except Skip as skip:
            yield Piece(index, "skipped", reason=str(skip))
            return
        except DataError as error:
            yield Piece(index, "failed", error=error)
            return
        yield Piece(index, "start", facts=facts)
        try:
            for batch in batches:
                yield Piece(index, "batch", batch=batch)
        except DataError as error:  # a read that fails part-way: the outputs so far are dropped
            yield Piece(index, "failed", error=error)
            return
        yield Piece(index, "end")


@dataclass
class VideoResult:
    """One input, done: its facts and the model's outputs per batch, or why there are none."""

    index: int
    facts: dict | None = None
    outputs: list | None = None
    error: DataError | None = None
    skipped: str | None = None
    seconds: float = 0.0  # from its start reaching the main process to its end


def run_videos(
    inputs: list,
    open_video: OpenVideo,
    model: Callable[[torch.Tensor], object],
    *,
    num_workers: int = 0,
    device: torch.device | None = None,
) -> Iterator[VideoResult]:
    """`model(batch on device)` over every batch of every input; yields each input's result when it is complete
    (in input order with 0 or 1 workers; with more, in the order videos finish). Decoding runs in
    `num_workers` worker processes (0 = here, between the model's batches)."""
    device = device or torch.device("cpu")
    loader = DataLoader(
        DecodedVideos(inputs, open_video),
        batch_size=None,  # the pieces are batches already
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if num_workers else None,
        multiprocessing_context="spawn" if num_workers else None,
    )
    started: dict[int, VideoResult] = {}
    start_times: dict[int, float] = {}
    with worker_batches(loader) as pieces:  # the workers stop when this ends, also on an error
        for piece in pieces:
            if piece.kind == "start":
                started[piece.index] = VideoResult(piece.index, piece.facts, [])
                start_times[piece.index] = time.perf_counter()
            elif piece.kind == "batch":
                started[piece.index].outputs.append(model(piece.batch.to(device, non_blocking=True)))
            elif piece.kind == "end":
                result = started.pop(piece.index)
                result.seconds = time.perf_counter() - start_times.pop(piece.index)
                yield result
            elif piece.kind == "failed":
                started.pop(piece.index, None)
                yield VideoResult(piece.index, error=piece.error)
            else:
                yield VideoResult(piece.index, skipped=piece.reason)


def in_input_order(results: Iterator[VideoResult]) -> Iterator[VideoResult]:
    """`results` reordered by input position (several workers finish videos out of order; the finished ones
    wait here, which holds only their outputs)."""
    waiting: dict[int, VideoResult] = {}
    next_index = 0
    for result in results:
        waiting[result.index] = result
        while next_index in waiting:
            yield waiting.pop(next_index)
            next_index += 1


def decode_workers(num_workers: int | None, device: torch.device) -> int:
    """Decoding processes: as asked, else 0 on the CPU (the model needs the cores) and 4 on GPUs (fewer when
    the machine has fewer spare cores)."""
    if num_workers is None:
        return 0 if device.type == "cpu" else min(4, max((os.cpu_count() or 1) - 1, 0))
    if num_workers < 0:
        raise ConfigError(f"num_workers must be 0 or more, got {num_workers}")
    return num_workers

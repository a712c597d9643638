"""Video decoding behind one interface: PyAV (always installed), decord, torchcodec, and frame folders.

Every reader has `path`, `num_frames`, `fps` and `read(indices) -> uint8 (T, H, W, 3)` RGB, where `indices` are
0-based frame numbers in presentation order (repeats allowed, any order). Whatever fails inside a reader, when
opening or reading, leaves it as a `DecodeError` (a `DataError`) whose `reason` says why and whose `path` names
the file: missing, empty, truncated or undecodable files.

The PyAV reader returns exactly the frames a plain sequential decode (`container.decode(video=0)`) yields. One
demux pass without decoding indexes the packets that become frames (not empty, not hidden by an edit list);
header frame counts only serve to detect truncation, and packets that cover the declared duration are complete
(AVI headers may count time ticks). Then, per file:
- indexed mode, when every frame packet has a distinct timestamp and the file starts with a keyframe shown
  first: frame i is the packet with the i-th smallest pts. A read seeks to the keyframe before each wanted run and
  decodes forward. A seek must land on a keyframe at or before its target (MPEG-PS/TS seeks land late), else the
  reader steps one keyframe further back, for later seeks too, and before the first keyframe decodes from the
  start. Each decoded frame must be the next indexed one; any disagreement switches to sequential mode.
- sequential mode, otherwise: frames are counted by decoding the whole file once at open, and reads decode from
  the start (reopened) counting frames.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib.util
import io
import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np

from videomae.data import remote
from videomae.errors import DataError

logger = logging.getLogger("videomae.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IN_MEMORY = "<video bytes>"  # the `path` of a reader opened on encoded bytes
TRUNCATION_SLACK = 2  # frames a header may over-count (edit lists, decoder delay) before a file looks truncated
DECORD_SIZE_BUG = "from_size == to_size"  # decord2's failed check when it pads RGB rows (AVX-512 CPUs)
_announced_backends: set[str] = set()
_announced_fallbacks: set[str] = set()


class DecodeError(DataError):
    """A video or frame folder that cannot be read: `reason` says why, `path` names it (str() is "PATH: reason")."""

    def __init__(self, reason: str, path: str | None = None):
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason, self.path = reason, path

    def __reduce__(self):  # pickling (worker processes) keeps both parts
        return type(self), (self.reason, self.path)


class VideoReader(Protocol):
    """What every backend offers."""

    num_frames: int
    fps: float

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` as uint8 (T, H, W, 3) RGB."""

    def close(self) -> None:
        """Release the file."""


def installed_backends() -> list[str]:
    """Backends importable here, fastest first (PyAV is always last and always present)."""
    optional = [
        name
        for name, module in (("torchcodec", "torchcodec"), ("decord", "decord"))
        if importlib.util.find_spec(module) is not None
    ]
    return optional + ["pyav"]


def resolve_backend(backend: str) -> str:
    """The concrete backend for a configured name; "auto" picks the fastest installed one."""
    if backend == "auto":
        return installed_backends()[0]
    if backend not in ("pyav", "decord", "torchcodec"):
        raise DataError(f"unknown video backend {backend!r}; choose pyav, decord, torchcodec or auto")
    if backend not in installed_backends():
        package = {"decord": "decord2", "torchcodec": "torchcodec (and FFmpeg libraries)"}[backend]
        raise DataError(f"video backend {backend!r} is not installed; `pip install {package}` or use backend='pyav'")
    return backend


def announce_backend(backend: str) -> None:
    """Log the backend in use, once per process."""
    if backend not in _announced_backends:
        _announced_backends.add(backend)
        logger.info("decoding videos with %s", backend)


def _error_text(error: Exception) -> str:
    """An exception's message without the file name that FFmpeg and OS errors append (the caller names it)."""
    return getattr(error, "strerror", None) or str(error)


@contextlib.contextmanager
def _failures_name(path: str) -> Iterator[None]:
    """Turn any exception raised inside into a `DecodeError` that names `path`."""
    try:
        yield
    except DecodeError as error:
        if error.path is not None:
            raise
        raise DecodeError(error.reason, path) from error
    except remote.RemoteError as error:  # the store's own words, after the retries
        raise DecodeError(error.reason, path) from error
    except Exception as error:  # FFmpeg, decord, Pillow or our own fault: the file is reported, never fatal
        raise DecodeError(f"{type(error).__name__}: {_error_text(error)}", path) from error


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DecodeError("missing file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DecodeError("empty file")


def _media_input(source: str | bytes) -> str | io.BytesIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _unique_sorted(indices: Sequence[int], num_frames: int) -> list[int]:
    wanted = sorted({int(i) for i in indices})
    if wanted and (wanted[0] < 0 or wanted[-1] >= num_frames):
        raise DecodeError(f"frame indices {wanted[0]}..{wanted[-1]} outside a video of {num_frames} frames")
    return wanted


def _gather(frames: dict[int, np.ndarray], indices: Sequence[int]) -> np.ndarray:
    return np.stack([frames[int(i)] for i in indices])  # (T, H, W, 3)


class _FileReader:
    """Base of the readers of one video file (or its bytes): failures inside `_open` and `_read` name the file."""

    path: str
    num_frames: int
    fps: float

    def __init__(self, source: str | bytes, threads: int = 1):
        self.path = source if isinstance(source, str) else IN_MEMORY
        with _failures_name(self.path):
            if isinstance(source, str):
                _check_file(source)
            self._open(source, threads)
            if self.num_frames == 0:
                raise DecodeError("no frames")

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` as uint8 (T, H, W, 3) RGB."""
        with _failures_name(self.path):
            return self._read(indices)

    def _open(self, source: str | bytes, threads: int) -> None:
        raise NotImplementedError

    def _read(self, indices: Sequence[int]) -> np.ndarray:
        raise NotImplementedError


class _IndexMismatch(Exception):
    """The decoder disagrees with the packet index; the message says how."""


@dataclass
class _PacketIndex:
    """What one demux pass (no decoding) tells about a video stream."""

    frame_pts: list[int]  # sorted pts of the packets that become frames
    keyframe_pts: list[int]  # sorted pts of the keyframe packets: where decoding can start
    frame_packets: int  # packets that become frames, timed or not
    distrust: str | None  # why frame numbers cannot come from timestamps; None when they can


def _index_packets(container, stream) -> _PacketIndex:
    frame_pts, keyframe_pts, untimed, first = [], [], 0, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # AVI gap fillers and the final flush packet hold no picture
                continue
            pts = packet.pts
            if first is None:
                first = (packet.is_keyframe, pts)
            if pts is None:
                untimed += not packet.is_discard
                continue
            if packet.is_keyframe:
                keyframe_pts.append(pts)
            if not packet.is_discard:  # an edit list hides it: decoded as a reference, never shown
                frame_pts.append(pts)
    except Exception as error:
        raise DecodeError(f"cannot demux: {_error_text(error)}") from error
    frame_pts.sort()
    keyframe_pts.sort()
    distrust = None
    if untimed:
        distrust = f"{untimed} packets without timestamps"
    elif len(set(frame_pts)) != len(frame_pts):
        distrust = "frames with duplicate timestamps"
    elif first is not None and not first[0]:
        distrust = "starts without a keyframe"
    elif frame_pts and frame_pts[0] < first[1]:
        distrust = "starts with frames shown before its first keyframe (open GOP)"
    return _PacketIndex(frame_pts, keyframe_pts, len(frame_pts) + untimed, distrust)


def _check_complete(stream, index: _PacketIndex, rate: Fraction | None) -> None:
    """Raise when the header promises frames that are missing and the packets stop before its duration."""
    declared = stream.frames
    if not declared or index.frame_packets >= declared - TRUNCATION_SLACK:
        return
    if index.frame_pts and stream.duration and rate:
        tolerance = TRUNCATION_SLACK / (rate * stream.time_base)  # the last frame's own duration and then some
        if index.frame_pts[-1] >= (stream.start_time or 0) + stream.duration - tolerance:
            return  # the header counts time ticks, not frames (AVI with a variable frame rate)
    raise DecodeError(f"truncated: header says {declared} frames, only {index.frame_packets} present")


class PyAVReader(_FileReader):
    """PyAV: indexed seeking, or sequential counting where timestamps cannot be trusted (module docstring)."""

    def _open(self, source: str | bytes, threads: int) -> None:
        self._source, self._threads = source, threads
        self._open_container()
        index = _index_packets(self._container, self._stream)
        rate = self._stream.average_rate or self._stream.guessed_rate
        _check_complete(self._stream, index, rate)
        self.fps = float(rate) if rate else 0.0
        self._frame_pts, self._keyframe_pts = index.frame_pts, index.keyframe_pts
        self._index_of_pts = {pts: i for i, pts in enumerate(index.frame_pts)}
        self.num_frames = len(index.frame_pts)
        self._seek_back = 0  # extra keyframes to step back before seeking: this file's seeks land late
        self._frames: Iterator[tuple[int, object]] | None = None  # (index, frame) from here; kept across reads
        self._next = 0  # index of the frame `_frames` yields next
        self._sequential = False
        if index.distrust:
            self._go_sequential(index.distrust)

    def _open_container(self) -> None:
        import av

        try:
            self._container = av.open(_media_input(self._source))
        except Exception as error:  # PyAV raises many FFmpeg error classes
            raise DecodeError(f"cannot open: {_error_text(error)}") from error
        if not self._container.streams.video:
            self._container.close()
            raise DecodeError("no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.codec_context.thread_count = self._threads

    def _go_sequential(self, reason: str) -> None:
        """Number frames by counting decoded ones from the start, and read that way from now on."""
        logger.debug("%s: %s; counting decoded frames instead of trusting timestamps", self.path, reason)
        self._sequential = True
        self._decode_from_start()
        self.num_frames = sum(1 for _ in self._frames)
        self._frames = None

    def _read(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return self._read_frames(indices)
        except _IndexMismatch as mismatch:
            self._go_sequential(str(mismatch))
            return self._read_frames(indices)

    def _read_frames(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _unique_sorted(indices, self.num_frames)
        wanted_set, frames = set(wanted), {}
        for target in wanted:
            if target not in frames:
                self._move_before(target)
                self._decode_until(target, wanted_set, frames)
        return _gather(frames, indices)

    def _move_before(self, target: int) -> None:
        """Place decoding at or before `target`, unless decoding on from here is the cheaper way there."""
        if self._sequential:
            if self._frames is None or target < self._next:
                self._decode_from_start()
        elif self._needs_seek(target):
            self._seek_before(target)

    def _keyframe_for(self, target: int) -> int:
        """Number of the keyframe to seek to for frame `target`."""
        after = bisect.bisect_right(self._keyframe_pts, self._frame_pts[target])
        return max(after - 1 - self._seek_back, 0)

    def _needs_seek(self, target: int) -> bool:
        """Seek when the target lies behind us, or the keyframe to seek to lies ahead of where we are."""
        if self._frames is None or target < self._next:
            return True
        keyframe = self._keyframe_pts[self._keyframe_for(target)]
        return bisect.bisect_left(self._frame_pts, keyframe) > self._next

    def _seek_before(self, target: int) -> None:
        keyframe = self._keyframe_for(target)
        while not self._seek_lands_before(self._keyframe_pts[keyframe], target):
            if keyframe == 0:
                self._decode_from_start()
                return
            keyframe -= 1
            self._seek_back += 1

    def _seek_lands_before(self, keyframe_pts: int, target: int) -> bool:
        """Seek to `keyframe_pts`; True (and decoding set up) when it reaches a keyframe at or before `target`."""
        import av

        try:
            self._container.seek(keyframe_pts, stream=self._stream, backward=True)
        except av.error.FFmpegError:
            return False
        packets = self._container.demux(self._stream)
        # After a late landing, decode from the next keyframe only: frames before it would lack references.
        landed = next((p for p in packets if p.size and p.is_keyframe), None)
        if landed is None or landed.pts is None or landed.pts > self._frame_pts[target]:
            return False
        self._next = bisect.bisect_left(self._frame_pts, landed.pts)
        self._frames = self._indexed_frames(itertools.chain([landed], packets), self._next, landed.pts)
        return True

    def _decode_from_start(self) -> None:
        """Reopen the file (a seek to its start is not reliable in every container) and decode from there."""
        self._container.close()
        self._open_container()
        packets = self._container.demux(self._stream)
        self._frames = enumerate(self._decoded(packets)) if self._sequential else self._indexed_frames(packets, 0)
        self._next = 0

    def _decoded(self, packets) -> Iterator[object]:
        """Frames as a sequential decode gives them (the demuxer's last, empty packets flush the decoder)."""
        codec = self._stream.codec_context
        for packet in packets:
            yield from codec.decode(packet)

    def _indexed_frames(self, packets, first: int, landed_pts: int | None = None) -> Iterator[tuple[int, object]]:
        """(index, frame) decoded from `packets`, checked to be the indexed frames `first`, `first + 1`, ...

        Frames shown before `landed_pts`, the keyframe decoding starts at, are leading frames of an open GOP that
        refer to a frame before it: skipped.
        """
        expected = first
        for frame in self._decoded(packets):
            if landed_pts is not None and frame.pts is not None and frame.pts < landed_pts:
                continue
            if self._index_of_pts.get(frame.pts) != expected:
                raise _IndexMismatch(f"decoded a frame with pts {frame.pts} where frame {expected} was expected")
            yield expected, frame
            expected += 1
        if expected < self.num_frames:
            raise _IndexMismatch(f"decoding ended after {expected} of {self.num_frames} indexed frames")

    def _decode_until(self, target: int, wanted: set[int], frames: dict[int, np.ndarray]) -> None:
        for index, frame in self._frames:
            self._next = index + 1
            if index in wanted and index not in frames:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index == target:
                return
        raise DecodeError(f"decoding stopped before frame {target} of {self.num_frames}")

    def close(self) -> None:
        self._container.close()


class DecordReader(_FileReader):
    """decord (the maintained `decord2` package): `get_batch` seeks by itself.

    decord2 garbles frames on CPUs with AVX-512 when it pads RGB rows (some frame widths): it fails a size check
    or returns 4 channels. Such a file is read with PyAV instead (logged once per process), never reported bad.
    """

    def _open(self, source: str | bytes, threads: int) -> None:
        import decord

        self._source, self._threads = source, threads
        self._pyav: PyAVReader | None = None
        try:
            self._reader = decord.VideoReader(_media_input(source), num_threads=threads, ctx=decord.cpu(0))
        except Exception as error:
            raise DecodeError(f"cannot open: {_error_text(error)}") from error
        self.num_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())

    def _read(self, indices: Sequence[int]) -> np.ndarray:
        if self._pyav is None:
            wanted = _unique_sorted(indices, self.num_frames)
            batch = self._decord_batch(wanted)
            if batch is not None:
                return _gather(dict(zip(wanted, batch)), indices)
            self._switch_to_pyav()
        return self._pyav.read(indices)

    def _decord_batch(self, wanted: list[int]) -> np.ndarray | None:
        """decord's (t, H, W, 3) frames, or None when its frame-size bug garbled them."""
        try:
            batch = self._reader.get_batch(wanted).asnumpy()
        except Exception as error:
            if DECORD_SIZE_BUG in str(error):
                return None
            raise
        return batch if batch.ndim == 4 and batch.shape[0] == len(wanted) and batch.shape[-1] == 3 else None

    def _switch_to_pyav(self) -> None:
        if "decord" not in _announced_fallbacks:
            _announced_fallbacks.add("decord")
            logger.warning(
                "decord returned frames of the wrong size for %s: decord2 mishandles some frame widths "
                "on CPUs with AVX-512; reading such files with PyAV instead",
                self.path,
            )
        del self._reader
        self._pyav = PyAVReader(self._source, self._threads)
        self.num_frames = self._pyav.num_frames

    def close(self) -> None:
        if self._pyav is not None:
            self._pyav.close()
        else:
            del self._reader


class TorchCodecReader(_FileReader):
    """torchcodec's CPU `VideoDecoder` in exact seek mode."""

    def _open(self, source: str | bytes, threads: int) -> None:
        from torchcodec.decoders import VideoDecoder

        try:
            self._decoder = VideoDecoder(source, dimension_order="NHWC", seek_mode="exact", num_ffmpeg_threads=threads)
            metadata = self._decoder.metadata
        except Exception as error:
            raise DecodeError(f"cannot open: {_error_text(error)}") from error
        self.num_frames = int(metadata.num_frames or 0)
        self.fps = float(metadata.average_fps or 0.0)

    def _read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _unique_sorted(indices, self.num_frames)
        batch = self._decoder.get_frames_at(wanted).data.numpy()  # (t, H, W, 3)
        return _gather(dict(zip(wanted, batch)), indices)

    def close(self) -> None:
        del self._decoder


class FrameFolderReader(_FileReader):
    """A folder of frame images named by a template, e.g. ``img_{:05}.jpg`` numbered from `start_index`.

    Args:
        folder: the frame folder.
        template: `str.format` template of one file name, given the frame number.
        start_index: number of the first file (official SSv2 frames start at 1).
        num_frames: frame count when the manifest gives it; otherwise image files in the folder are counted.
    """

    fps = 0.0

    def __init__(self, folder: str, template: str, start_index: int = 1, num_frames: int | None = None):
        self.path = folder
        with _failures_name(folder):
            if not remote.is_remote(folder) and not os.path.isdir(folder):  # remote: a listing or a frame says
                raise DecodeError("missing frame folder")
            self._template, self._start = template, start_index
            if num_frames is None or num_frames < 0:
                names = [name for name, _ in remote.listdir(folder)]
                num_frames = sum(name.lower().endswith(IMAGE_EXTENSIONS) for name in names)
            self.num_frames = num_frames
            if self.num_frames == 0:
                raise DecodeError("no frames in folder")

    def frame_path(self, index: int) -> str:
        """File of 0-based frame `index`."""
        return remote.join(self.path, self._template.format(index + self._start))

    def _read(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image

        frames = {}
        for index in _unique_sorted(indices, self.num_frames):
            path = self.frame_path(index)
            try:
                source = io.BytesIO(remote.read_bytes(path)) if remote.is_remote(path) else path
                with Image.open(source) as image:
                    frames[index] = np.asarray(image.convert("RGB"))
            except FileNotFoundError as error:
                raise DecodeError(f"missing frame file {remote.basename(path)}") from error
            except remote.RemoteError as error:
                raise DecodeError(f"frame file {remote.basename(path)}: {error.reason}") from error
            except Exception as error:
                raise DecodeError(f"bad frame file {remote.basename(path)}: {error}") from error
        return _gather(frames, indices)

    def close(self) -> None:
        """Nothing to release."""


class SegmentReader:
    """A window [start, end) of another reader, for manifests that give a clip's start and end frames."""

    def __init__(self, reader: VideoReader, start: int, end: int | None):
        self.path = getattr(reader, "path", None)
        end = reader.num_frames if end is None or end < 0 else min(end, reader.num_frames)
        if not 0 <= start < end:
            raise DecodeError(f"segment [{start}, {end}) is empty for a video of {reader.num_frames} frames", self.path)
        self._reader, self._start = reader, start
        self.num_frames = end - start
        self.fps = reader.fps

    def read(self, indices: Sequence[int]) -> np.ndarray:
        return self._reader.read([self._start + int(i) for i in indices])

    def close(self) -> None:
        self._reader.close()


_READERS = {"pyav": PyAVReader, "decord": DecordReader, "torchcodec": TorchCodecReader}


def open_video(source: str | bytes, backend: str = "pyav", threads: int = 1) -> VideoReader:
    """Open a video file (or its bytes) with a backend.

    Args:
        source: path of a video file, or the encoded bytes of one.
        backend: "pyav", "decord", "torchcodec" or "auto".
        threads: decoder threads (1 suits DataLoader workers; more for a single process).

    Returns:
        A `VideoReader`.

    Raises:
        DecodeError: the file cannot be opened; `reason` says why, `path` names it.
        DataError: the backend is unknown or not installed.
    """
    backend = resolve_backend(backend)
    announce_backend(backend)
    return _READERS[backend](source, threads)

"""Video decoding behind one interface: PyAV (always installed), decord, torchcodec, and frame folders.

Every reader has `num_frames`, `fps` and `read(indices) -> uint8 (T, H, W, 3)` RGB, where `indices` are
0-based frame numbers in presentation order (repeats allowed, any order). Readers raise `DecodeError`
(a `DataError`) with a short reason when a file is missing, empty, truncated or undecodable.
"""

from __future__ import annotations

import bisect
import importlib.util
import io
import logging
import os
from typing import Protocol, Sequence

import numpy as np

from videomae.errors import DataError

logger = logging.getLogger("videomae.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_announced_backends: set[str] = set()


class DecodeError(DataError):
    """A video or frame folder that cannot be read; the message is the reason."""


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
    optional = [name for name, module in (("torchcodec", "torchcodec"), ("decord", "decord"))
                if importlib.util.find_spec(module) is not None]
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


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DecodeError("missing file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DecodeError("empty file")


def _unique_sorted(indices: Sequence[int], num_frames: int) -> list[int]:
    wanted = sorted({int(i) for i in indices})
    if wanted and (wanted[0] < 0 or wanted[-1] >= num_frames):
        raise DecodeError(f"frame indices {wanted[0]}..{wanted[-1]} outside a video of {num_frames} frames")
    return wanted


def _gather(frames: dict[int, np.ndarray], indices: Sequence[int]) -> np.ndarray:
    return np.stack([frames[int(i)] for i in indices])  # (T, H, W, 3)


class PyAVReader:
    """PyAV reader that seeks to the keyframe before each wanted run of frames instead of decoding everything.

    The presentation timestamps of all frames come from the container index (MP4/MOV) or one demux pass
    without decoding (other containers), so frame numbers are exact for variable frame rates too.
    """

    def __init__(self, source: str | bytes, threads: int = 1):
        import av

        if isinstance(source, str):
            _check_file(source)
        try:
            self._container = av.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        except Exception as error:  # PyAV raises many FFmpeg error classes
            raise DecodeError(f"cannot open: {error}") from error
        if not self._container.streams.video:
            self._container.close()
            raise DecodeError("no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = threads
        self._pts, self._keyframe_pts = self._frame_timestamps()
        self._index_of_pts = {pts: i for i, pts in enumerate(self._pts)}
        self.num_frames = len(self._pts)
        if self.num_frames == 0:
            self._container.close()
            raise DecodeError("no frames")
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self._position = -1  # index of the last decoded frame; -1 = at the start or just after a seek
        self._decoded = self._container.decode(self._stream)  # kept across reads: it holds buffered frames

    def _frame_timestamps(self) -> tuple[list[int], list[int]]:
        """(all frame pts sorted, keyframe pts sorted), from one demux pass without decoding."""
        pts, keys = [], []
        try:
            for packet in self._container.demux(self._stream):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
            if pts:
                self._container.seek(0, stream=self._stream)  # back to the start for decoding
        except Exception as error:
            raise DecodeError(f"cannot demux: {error}") from error
        if len(set(pts)) != len(pts):
            raise DecodeError("frames with duplicate timestamps; re-encode it (`videomae data prepare`)")
        declared = self._stream.frames
        if declared and len(pts) < declared - 2:  # a little slack for edit lists and decoder delay
            raise DecodeError(f"truncated: header says {declared} frames, only {len(pts)} present")
        return sorted(pts), sorted(keys) or sorted(pts)[:1]

    def _keyframe_before(self, index: int) -> int:
        pts = self._pts[index]
        return self._keyframe_pts[max(bisect.bisect_right(self._keyframe_pts, pts) - 1, 0)]

    def _needs_seek(self, index: int) -> bool:
        """Seek when the target lies behind us, or a keyframe nearer to it lies ahead of where we are."""
        if index <= self._position:
            return True
        here = self._pts[self._position] if self._position >= 0 else self._pts[0]
        return self._keyframe_before(index) > here

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _unique_sorted(indices, self.num_frames)
        wanted_set = set(wanted)
        frames: dict[int, np.ndarray] = {}
        try:
            for index in wanted:
                if index in frames:
                    continue
                if self._needs_seek(index):
                    self._container.seek(self._keyframe_before(index), stream=self._stream, backward=True)
                    self._decoded = self._container.decode(self._stream)
                    self._position = -1
                self._decode_until(index, wanted_set, frames)
        except DecodeError:
            raise
        except Exception as error:
            raise DecodeError(f"decode failed: {error}") from error
        return _gather(frames, indices)

    def _decode_until(self, target: int, wanted: set[int], frames: dict[int, np.ndarray]) -> None:
        for frame in self._decoded:
            index = self._index_of_pts.get(frame.pts)
            if index is None:
                continue
            self._position = index
            if index in wanted and index not in frames:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= target:
                return
        raise DecodeError(f"truncated: decoding stopped before frame {target} of {self.num_frames}")

    def close(self) -> None:
        self._container.close()


class DecordReader:
    """decord (the maintained `decord2` package): `get_batch` seeks by itself."""

    def __init__(self, source: str | bytes, threads: int = 1):
        import decord

        if isinstance(source, str):
            _check_file(source)
        try:
            self._reader = decord.VideoReader(io.BytesIO(source) if isinstance(source, bytes) else source,
                                              num_threads=threads, ctx=decord.cpu(0))
        except Exception as error:
            raise DecodeError(f"cannot open: {error}") from error
        self.num_frames = len(self._reader)
        if self.num_frames == 0:
            raise DecodeError("no frames")
        self.fps = float(self._reader.get_avg_fps())

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _unique_sorted(indices, self.num_frames)
        try:
            batch = self._reader.get_batch(wanted).asnumpy()  # (t, H, W, 3)
        except Exception as error:
            raise DecodeError(f"decode failed: {error}") from error
        return _gather(dict(zip(wanted, batch)), indices)

    def close(self) -> None:
        del self._reader


class TorchCodecReader:
    """torchcodec's CPU `VideoDecoder` in exact seek mode."""

    def __init__(self, source: str | bytes, threads: int = 1):
        from torchcodec.decoders import VideoDecoder

        if isinstance(source, str):
            _check_file(source)
        try:
            self._decoder = VideoDecoder(source, dimension_order="NHWC", seek_mode="exact",
                                         num_ffmpeg_threads=threads)
            metadata = self._decoder.metadata
        except Exception as error:
            raise DecodeError(f"cannot open: {error}") from error
        self.num_frames = int(metadata.num_frames or 0)
        if self.num_frames == 0:
            raise DecodeError("no frames")
        self.fps = float(metadata.average_fps or 0.0)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _unique_sorted(indices, self.num_frames)
        try:
            batch = self._decoder.get_frames_at(wanted).data.numpy()  # (t, H, W, 3)
        except Exception as error:
            raise DecodeError(f"decode failed: {error}") from error
        return _gather(dict(zip(wanted, batch)), indices)

    def close(self) -> None:
        del self._decoder


class FrameFolderReader:
    """A folder of frame images named by a template, e.g. ``img_{:05}.jpg`` numbered from `start_index`.

    Args:
        folder: the frame folder.
        template: `str.format` template of one file name, given the frame number.
        start_index: number of the first file (official SSv2 frames start at 1).
        num_frames: frame count when the manifest gives it; otherwise image files in the folder are counted.
    """

    fps = 0.0

    def __init__(self, folder: str, template: str, start_index: int = 1, num_frames: int | None = None):
        if not os.path.isdir(folder):
            raise DecodeError("missing frame folder")
        self._folder, self._template, self._start = folder, template, start_index
        if num_frames is None or num_frames < 0:
            num_frames = sum(name.lower().endswith(IMAGE_EXTENSIONS) for name in os.listdir(folder))
        self.num_frames = num_frames
        if self.num_frames == 0:
            raise DecodeError("no frames in folder")

    def frame_path(self, index: int) -> str:
        """File of 0-based frame `index`."""
        return os.path.join(self._folder, self._template.format(index + self._start))

    def read(self, indices: Sequence[int]) -> np.ndarray:
        from PIL import Image

        frames = {}
        for index in _unique_sorted(indices, self.num_frames):
            path = self.frame_path(index)
            try:
                with Image.open(path) as image:
                    frames[index] = np.asarray(image.convert("RGB"))
            except FileNotFoundError as error:
                raise DecodeError(f"missing frame file {os.path.basename(path)}") from error
            except Exception as error:
                raise DecodeError(f"bad frame file {os.path.basename(path)}: {error}") from error
        return _gather(frames, indices)

    def close(self) -> None:
        """Nothing to release."""


class SegmentReader:
    """A window [start, end) of another reader, for manifests that give a clip's start and end frames."""

    def __init__(self, reader: VideoReader, start: int, end: int | None):
        end = reader.num_frames if end is None or end < 0 else min(end, reader.num_frames)
        if not 0 <= start < end:
            raise DecodeError(f"segment [{start}, {end}) is empty for a video of {reader.num_frames} frames")
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
        DecodeError: the file cannot be opened; the message is the reason.
        DataError: the backend is unknown or not installed.
    """
    backend = resolve_backend(backend)
    announce_backend(backend)
    return _READERS[backend](source, threads)

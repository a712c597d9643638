"""Decoders: every backend returns the same frames, seeking equals sequential decoding, bad files raise."""

from __future__ import annotations

import importlib.util

import av
import numpy as np
import pytest

from videomae.data import DecodeError, FrameFolderReader, open_video
from videomae.data.decoders import SegmentReader, resolve_backend
from videomae.errors import DataError
from data_helpers import VIDEO_SPECS


def sequential_frames(path: str) -> np.ndarray:
    """Reference: decode the whole file in order with plain PyAV."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def backend_or_skip(name: str) -> str:
    module = {"decord": "decord", "torchcodec": "torchcodec"}.get(name)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{name} is not installed (optional backend)")
    return name


@pytest.mark.parametrize("name", sorted(VIDEO_SPECS))
def test_pyav_seeking_reads_equal_sequential_decode(videos, name):
    reference = sequential_frames(videos[name])
    reader = open_video(videos[name], "pyav")
    assert reader.num_frames == VIDEO_SPECS[name][2] == len(reference)
    assert reader.fps == pytest.approx(VIDEO_SPECS[name][5])
    n = reader.num_frames
    indices = [n - 1, 0, n // 2, n // 2, 3 % n, n - 1]  # backwards, repeats, across keyframes
    np.testing.assert_array_equal(reader.read(indices), reference[indices])
    later = list(range(n // 3, n, 3))
    np.testing.assert_array_equal(reader.read(later), reference[later])
    reader.close()


@pytest.mark.parametrize("backend", ["decord", "torchcodec"])
@pytest.mark.parametrize("name", ["h264_96x64", "mpeg4_64x48", "h264_short"])
def test_optional_backends_match_pyav(videos, name, backend):
    backend_or_skip(backend)
    reference = sequential_frames(videos[name])
    reader = open_video(videos[name], backend)
    assert reader.num_frames == len(reference)
    indices = [0, len(reference) - 1, 2, 2]
    np.testing.assert_array_equal(reader.read(indices), reference[indices])


def test_reads_from_bytes(videos):
    data = open(videos["h264_96x64"], "rb").read()
    reader = open_video(data, "pyav")
    np.testing.assert_array_equal(reader.read([5]), sequential_frames(videos["h264_96x64"])[[5]])


@pytest.mark.parametrize("kind,reason", [("missing", "missing"), ("empty", "empty"), ("garbage", "cannot open"),
                                         ("cut_index", "cannot open"), ("truncated", "truncated")])
def test_bad_files_raise_decode_error_with_reason(broken_videos, kind, reason):
    with pytest.raises(DecodeError, match=reason):
        reader = open_video(broken_videos[kind], "pyav")
        reader.read(range(reader.num_frames))


def test_out_of_range_index_raises(videos):
    reader = open_video(videos["h264_short"], "pyav")
    with pytest.raises(DecodeError, match="outside"):
        reader.read([reader.num_frames])


def test_frame_folder_reader(frame_folder):
    folder, frames = frame_folder
    reader = FrameFolderReader(folder, "img_{:05}.png", start_index=1)
    assert reader.num_frames == 12
    np.testing.assert_array_equal(reader.read([11, 0, 0]), frames[[11, 0, 0]])
    with pytest.raises(DecodeError, match="missing frame file"):
        FrameFolderReader(folder, "img_{:05}.png", start_index=1, num_frames=20).read([15])


def test_segment_reader_offsets_indices(videos):
    reader = SegmentReader(open_video(videos["h264_96x64"], "pyav"), 10, 20)
    assert reader.num_frames == 10
    np.testing.assert_array_equal(reader.read([0, 9]), sequential_frames(videos["h264_96x64"])[[10, 19]])


def test_backend_resolution():
    assert resolve_backend("pyav") == "pyav"
    assert resolve_backend("auto") in ("pyav", "decord", "torchcodec")
    with pytest.raises(DataError, match="unknown video backend"):
        resolve_backend("opencv")

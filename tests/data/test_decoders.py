"""Decoders: every backend returns the same frames, seeking equals sequential decoding, bad files raise."""

from __future__ import annotations

import importlib.util
import logging
import pickle

import numpy as np
import pytest
from data_helpers import VIDEO_SPECS, sequential_frames

from videomae.data import DecodeError, FrameFolderReader, open_video
from videomae.data.decoders import PyAVReader, SegmentReader, resolve_backend
from videomae.errors import DataError


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


def test_index_that_disagrees_with_the_decoder_falls_back_to_counting_frames(videos, monkeypatch):
    """A frame the demuxed index lacks (simulated by dropping one pts) turns up while decoding."""
    from videomae.data import decoders

    real_index = decoders._index_packets

    def index_missing_a_frame(container, stream):
        index = real_index(container, stream)
        del index.frame_pts[21]
        return index

    monkeypatch.setattr(decoders, "_index_packets", index_missing_a_frame)
    path = videos["h264_96x64"]
    reference = sequential_frames(path)
    reader = open_video(path, "pyav")
    assert reader.num_frames == len(reference) - 1
    np.testing.assert_array_equal(reader.read([30, 2, 21]), reference[[30, 2, 21]])
    assert reader.num_frames == len(reference)
    np.testing.assert_array_equal(reader.read([39, 0]), reference[[39, 0]])


def test_reads_from_bytes(videos):
    data = open(videos["h264_96x64"], "rb").read()
    reader = open_video(data, "pyav")
    np.testing.assert_array_equal(reader.read([5]), sequential_frames(videos["h264_96x64"])[[5]])


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("missing", "missing"),
        ("empty", "empty"),
        ("garbage", "cannot open"),
        ("cut_index", "cannot open"),
        ("truncated", "truncated"),
    ],
)
def test_bad_files_raise_decode_error_naming_file_and_reason(broken_videos, kind, reason):
    path = broken_videos[kind]
    with pytest.raises(DecodeError, match=reason) as caught:
        reader = open_video(path, "pyav")
        reader.read(range(reader.num_frames))
    error = caught.value
    assert error.path == path and error.reason.startswith(reason) and path not in error.reason
    assert str(error) == f"{path}: {error.reason}"


def test_out_of_range_index_raises_naming_the_file(videos):
    reader = open_video(videos["h264_short"], "pyav")
    with pytest.raises(DecodeError, match="outside") as caught:
        reader.read([reader.num_frames])
    assert caught.value.path == videos["h264_short"]


def test_any_failure_inside_a_reader_becomes_a_decode_error_naming_the_file(videos, monkeypatch):
    path = videos["h264_96x64"]
    reader = open_video(path, "pyav")

    def fail(*args):
        raise KeyError(30)

    monkeypatch.setattr(PyAVReader, "_decode_until", fail)
    with pytest.raises(DecodeError) as caught:
        reader.read([5])
    assert (caught.value.path, caught.value.reason) == (path, "KeyError: 30")
    monkeypatch.setattr(PyAVReader, "_open", fail)
    with pytest.raises(DecodeError, match="KeyError") as caught:
        open_video(path, "pyav")
    assert caught.value.path == path


def test_decode_error_keeps_reason_and_path_through_pickling():
    error = pickle.loads(pickle.dumps(DecodeError("truncated", "/data/a.mp4")))
    assert (error.reason, error.path, str(error)) == ("truncated", "/data/a.mp4", "/data/a.mp4: truncated")
    assert str(DecodeError("missing shard file")) == "missing shard file"


def test_frame_folder_reader(frame_folder):
    folder, frames = frame_folder
    reader = FrameFolderReader(folder, "img_{:05}.png", start_index=1)
    assert reader.num_frames == 12
    np.testing.assert_array_equal(reader.read([11, 0, 0]), frames[[11, 0, 0]])
    with pytest.raises(DecodeError, match="missing frame file") as caught:
        FrameFolderReader(folder, "img_{:05}.png", start_index=1, num_frames=20).read([15])
    assert caught.value.path == folder


def test_segment_reader_offsets_indices(videos):
    reader = SegmentReader(open_video(videos["h264_96x64"], "pyav"), 10, 20)
    assert reader.num_frames == 10
    np.testing.assert_array_equal(reader.read([0, 9]), sequential_frames(videos["h264_96x64"])[[10, 19]])


class FakeDecordBatch:
    """What decord's get_batch returns: an array with `asnumpy()`."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames

    def asnumpy(self) -> np.ndarray:
        return self.frames


@pytest.mark.parametrize("symptom", ["size_check_fails", "four_channels"])
def test_decord_frame_size_bug_falls_back_to_pyav_with_one_warning(videos, monkeypatch, caplog, symptom):
    """decord2 on AVX-512 CPUs: get_batch fails its size check, or frames come with 4 channels (simulated)."""
    decord = pytest.importorskip("decord")
    from videomae.data import decoders

    def garbled(self, indices):
        if symptom == "size_check_fails":
            raise decord.DECORDError("Check failed: from_size == to_size (24576 vs. 18432)")
        return FakeDecordBatch(np.zeros((len(indices), 64, 96, 4), np.uint8))

    monkeypatch.setattr(decord.VideoReader, "get_batch", garbled)
    monkeypatch.setattr(decoders, "_announced_fallbacks", set())
    path = videos["h264_96x64"]
    reference = sequential_frames(path)
    with caplog.at_level(logging.WARNING, logger="videomae.data"):
        for indices in ([3, 0, 39, 3], [20, 21]):
            reader = open_video(path, "decord")
            np.testing.assert_array_equal(reader.read(indices), reference[indices])
            reader.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "AVX-512" in warnings[0] and path in warnings[0]


def test_decord_reads_a_96_wide_clip_on_this_cpu(videos, caplog):
    """The real decord2: frames equal PyAV's; where this CPU has the frame-size bug, the fallback says so."""
    decord = pytest.importorskip("decord")
    from videomae.data import decoders

    path = videos["h264_96x64"]
    has_bug = decord.VideoReader(path)[0].shape[-1] != 3
    decoders._announced_fallbacks.clear()
    with caplog.at_level(logging.WARNING, logger="videomae.data"):
        frames = open_video(path, "decord").read([0, 17, 39])
    np.testing.assert_array_equal(frames, sequential_frames(path)[[0, 17, 39]])
    assert any("AVX-512" in r.getMessage() for r in caplog.records) == has_bug


def test_backend_resolution():
    assert resolve_backend("pyav") == "pyav"
    assert resolve_backend("auto") in ("pyav", "decord", "torchcodec")
    with pytest.raises(DataError, match="unknown video backend"):
        resolve_backend("opencv")

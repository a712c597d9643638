"""Clips from FFmpeg's command line and real sample videos: readers return what a sequential decode yields."""

from __future__ import annotations

import importlib.util

import av
import numpy as np
import pytest
from data_helpers import sequential_frames, tiny_config, write_lines
from media import FOREIGN_CLIPS, SAMPLE_VIDEOS

from videomae.data import build_dataset, open_video, transforms
from videomae.data.manifests import Sample
from videomae.data.scan import check_sample

# Clips whose frames decord counts as a sequential decode does (it cannot open raw H.264, and it counts the
# packets an edit list hides or the decoder drops).
DECORD_COUNTS = (
    "mpeg2_ps",
    "h264_ts",
    "mpeg4_avi_ticks",
    "msmpeg4_avi_ticks",
    "h264_mkv_vfr",
    "mjpeg_mov",
    "vp8_webm",
    "h264_94x62",
    *SAMPLE_VIDEOS,
)


def clip(request, name: str) -> str:
    """Path of a foreign clip or sample video (asking only for the fixture that holds it)."""
    return request.getfixturevalue("package_videos" if name in SAMPLE_VIDEOS else "foreign_videos")[name]


def index_lists(n: int) -> list[list[int]]:
    """Reads a dataset or a user may ask for, in this order on one reader."""
    return [
        [n - 1, 0, n // 2, n // 2, 3 % n, n - 1],  # unsorted, repeats
        list(range(n // 3, min(n // 3 + 16, n))),  # a dense run
        np.linspace(0, n - 1, 16).astype(int).tolist(),  # uniform, across keyframes
        list(range(n - 1, -1, -7)),  # backwards
        np.random.default_rng(n).integers(0, n, 24).tolist(),
        list(range(n)),
    ]


def assert_reads_like_sequential_decode(reader, path: str) -> None:
    reference = sequential_frames(path)
    assert reader.num_frames == len(reference)
    for indices in index_lists(len(reference)):
        np.testing.assert_array_equal(reader.read(indices), reference[indices], err_msg=f"frames {indices}")


@pytest.mark.parametrize("name", [*FOREIGN_CLIPS, *SAMPLE_VIDEOS])
def test_pyav_reads_every_clip_like_sequential_decode(request, name):
    path = clip(request, name)
    reader = open_video(path, "pyav")
    assert_reads_like_sequential_decode(reader, path)
    reader.close()


@pytest.mark.parametrize("name", ["mpeg2_ps", "h264_annexb", "h264_mkv_vfr", "h264_ts_midstream"])
def test_pyav_reads_bytes_with_decoder_threads(foreign_videos, name):
    with open(foreign_videos[name], "rb") as handle:
        reader = open_video(handle.read(), "pyav", threads=2)
    assert_reads_like_sequential_decode(reader, foreign_videos[name])


def test_mpeg_ps_with_b_frames_reads_after_late_seeks(foreign_videos):
    """MPEG-PS seeks land past their keyframe; this read once raised KeyError(30)."""
    path = foreign_videos["mpeg2_ps"]
    np.testing.assert_array_equal(open_video(path).read([30, 31, 40]), sequential_frames(path)[[30, 31, 40]])


def packets(path: str) -> list[av.Packet]:
    with av.open(path) as container:
        return [packet for packet in container.demux(video=0) if packet.size]


def test_foreign_clips_have_the_quirks_they_stand_for(foreign_videos):
    """Guards the fixtures: otherwise the tests above would not exercise these cases."""
    for name in ("mpeg4_avi_ticks", "msmpeg4_avi_ticks"):  # the header counts ticks, not frames
        with av.open(foreign_videos[name]) as container:
            assert container.streams.video[0].frames > len(sequential_frames(foreign_videos[name]))
    assert all(p.pts is None for p in packets(foreign_videos["h264_annexb"]))
    assert not packets(foreign_videos["h264_ts_midstream"])[0].is_keyframe
    assert any(p.is_discard for p in packets(foreign_videos["h264_mov_editlist"]))
    open_gop = foreign_videos["mpeg2_ps_open_gop"]
    assert len(packets(open_gop)) > len(sequential_frames(open_gop))  # undecodable leading B-frames


@pytest.mark.parametrize("name", DECORD_COUNTS)
def test_decord_counts_frames_like_sequential_decode(request, name):
    if importlib.util.find_spec("decord") is None:
        pytest.skip("decord is not installed (optional backend)")
    path = clip(request, name)
    assert open_video(path, "decord").num_frames == len(sequential_frames(path))


def test_datasets_load_every_foreign_clip_without_bad_files(foreign_videos, tmp_path):
    paths = [foreign_videos[name] for name in FOREIGN_CLIPS]
    pretrain = write_lines(tmp_path / "pretrain.txt", [f"{path} 0 -1" for path in paths])
    finetune = write_lines(tmp_path / "finetune.txt", [f"{path} {i % 3}" for i, path in enumerate(paths)])
    for stage, split, listing in (
        ("pretrain", "train", pretrain),
        ("finetune", "train", finetune),
        ("finetune", "test", finetune),
    ):
        cfg = tiny_config(manifest=listing, max_bad_fraction=0.0, test_num_segment=2, test_num_crop=1)
        dataset = build_dataset(cfg, stage, split, report_dir=str(tmp_path / stage / split))
        for index in range(len(dataset)):
            assert dataset[index]["video"].shape[-3:] == (4, 32, 32)
        assert dataset.bad_files.summary()["bad_files"] == 0 and dataset.bad_files.failures == 0


@pytest.mark.parametrize("videos", ["foreign_videos", "package_videos"])
def test_scan_finds_no_bad_clip(request, videos):
    clips = request.getfixturevalue(videos)
    assert {name: check_sample(Sample(path=path)) for name, path in clips.items()} == dict.fromkeys(clips)


def test_scan_reports_the_bare_reason(tmp_path):
    assert check_sample(Sample(path=str(tmp_path / "gone.mp4"))) == "missing file"


def test_reader_failures_of_any_type_make_a_bad_file(foreign_videos, monkeypatch, tmp_path):
    from videomae.data.decoders import PyAVReader

    broken = foreign_videos["h264_mkv_vfr"]
    real_read = PyAVReader._read

    def read(self, indices):
        if self.path == broken:
            raise RuntimeError("decoder state lost")
        return real_read(self, indices)

    monkeypatch.setattr(PyAVReader, "_read", read)
    listing = write_lines(tmp_path / "pt.txt", [f"{foreign_videos['mpeg2_ps']} 0 -1", f"{broken} 0 -1"])
    dataset = build_dataset(tiny_config(manifest=listing), "pretrain", "train")
    assert dataset[1]["video"].shape[-3:] == (4, 32, 32)  # replaced by the other sample
    assert dataset.bad_files.summary()["reasons"] == {broken: "RuntimeError: decoder state lost"}


def test_errors_outside_the_reader_are_not_taken_for_bad_files(foreign_videos, monkeypatch, tmp_path):
    def broken_transform(*args, **kwargs):
        raise ValueError("a bug in our own code")

    monkeypatch.setattr(transforms, "pretrain_pixels", broken_transform)
    listing = write_lines(tmp_path / "pt.txt", [f"{foreign_videos['mpeg2_ps']} 0 -1"])
    dataset = build_dataset(tiny_config(manifest=listing), "pretrain", "train")
    with pytest.raises(ValueError, match="our own code"):
        dataset[0]
    assert dataset.bad_files.summary()["bad_files"] == 0

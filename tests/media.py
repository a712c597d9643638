"""Test videos made with the FFmpeg command line (imageio-ffmpeg's static binary): clips in containers and codecs
that PyAV's writer does not cover (MPEG-PS/TS, AVI that counts ticks, VFR MKV, MOV edit lists, WebM, raw H.264),
and trimmed copies of real sample videos fetched by scripts/fetch_sample_videos.sh.
"""

from __future__ import annotations

import os
import subprocess

import imageio_ffmpeg

# Source of every clip: a test pattern that changes every frame.
PATTERN = "testsrc2=size={size}:rate={rate}:duration={seconds}"
# Keep the first 24 frames, then every 5th: a variable frame rate with gaps of dropped frames.
DROP_FRAMES = r"select='if(lt(n\,24)\,1\,not(mod(n\,5)))'"
# Frames 8-10 shown three times over (repeated content), then the drops above.
REPEAT_AND_DROP = f"loop=loop=2:size=3:start=8,{DROP_FRAMES}"
TS_PACKET = 188  # bytes
MIDSTREAM_CUT = 40  # TS packets into "h264_ts": 7 frames before its second keyframe


def ffmpeg(*args: str) -> None:
    """Run the FFmpeg command line quietly; raise with its stderr when it fails."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")


def pattern(size: str = "160x120", rate: int = 25, seconds: float = 2) -> list[str]:
    """Input arguments for the moving test pattern."""
    return ["-f", "lavfi", "-i", PATTERN.format(size=size, rate=rate, seconds=seconds)]


# name: (file name, FFmpeg arguments before the output path)
ENCODED_CLIPS = {
    "mpeg2_ps": ("mpeg2_bframes.mpg", [*pattern(seconds=3), "-c:v", "mpeg2video", "-bf", "2", "-g", "12", "-f", "vob"]),
    "h264_ts": (
        "h264_bframes.ts",
        [*pattern(), "-c:v", "libx264", "-bf", "2", "-g", "12", "-threads", "1", "-f", "mpegts"],
    ),  # one thread: the same bytes everywhere, for the cut below
    "mpeg4_avi_ticks": (
        "mpeg4_vfr_ticks.avi",
        [
            *pattern(rate=30, seconds=3),
            "-vf",
            REPEAT_AND_DROP,
            "-fps_mode",
            "passthrough",
            "-c:v",
            "mpeg4",
            "-bf",
            "2",
            "-g",
            "12",
        ],
    ),
    "msmpeg4_avi_ticks": (
        "msmpeg4_vfr_ticks.avi",
        [*pattern(rate=30, seconds=3), "-vf", DROP_FRAMES, "-fps_mode", "passthrough", "-c:v", "msmpeg4", "-g", "12"],
    ),
    "h264_mkv_vfr": (
        "h264_vfr_bframes.mkv",
        [*pattern(rate=30), "-vf", DROP_FRAMES, "-fps_mode", "vfr", "-c:v", "libx264", "-bf", "3", "-g", "12"],
    ),
    "mjpeg_mov": ("mjpeg.mov", [*pattern(seconds=1), "-c:v", "mjpeg", "-q:v", "5"]),
    "vp8_webm": (
        "vp8_altref.webm",
        [*pattern(), "-c:v", "libvpx", "-auto-alt-ref", "1", "-lag-in-frames", "16", "-g", "12", "-b:v", "300k"],
    ),
    "h264_94x62": ("h264_94x62.mp4", [*pattern(size="94x62"), "-c:v", "libx264", "-bf", "2", "-g", "10"]),
    "h264_annexb": ("h264_annexb.h264", [*pattern(), "-c:v", "libx264", "-bf", "2", "-g", "12"]),
}
# Made from clips by stream copy or a byte cut: an H.264 MOV whose edit list hides the frames before 0.5 s, an
# MPEG-PS that starts with B-frames referring to a frame it lacks (open GOP), a TS that starts mid-GOP.
DERIVED_CLIPS = ("h264_mov_editlist", "mpeg2_ps_open_gop", "h264_ts_midstream")
FOREIGN_CLIPS = (*ENCODED_CLIPS, *DERIVED_CLIPS)

# name: (file from scripts/fetch_sample_videos.sh, FFmpeg arguments that trim it by stream copy, for speed)
SAMPLE_VIDEOS = {
    "city_mpeg2_ps": ("cityCC0.mpg", ["-t", "2", "-c", "copy", "-f", "vob"]),
    "bikes_h264": ("bikes.mp4", ["-t", "2", "-c", "copy"]),
    "carphone_h264": ("carphone_pristine.mp4", ["-t", "2", "-c", "copy"]),
    "bigbuckbunny_h264_aac": ("bigbuckbunny.mp4", ["-t", "1", "-c", "copy"]),
}


def make_foreign_clips(folder: str | os.PathLike) -> dict[str, str]:
    """Write the `FOREIGN_CLIPS` into `folder`; returns name -> path."""
    folder = str(folder)
    paths = {}
    for name, (file_name, args) in ENCODED_CLIPS.items():
        paths[name] = os.path.join(folder, file_name)
        ffmpeg(*args, paths[name])
    source = os.path.join(folder, "editlist_source.mp4")
    ffmpeg(*pattern(seconds=3), "-c:v", "libx264", "-bf", "2", "-g", "10", source)
    paths["h264_mov_editlist"] = os.path.join(folder, "h264_editlist.mov")
    ffmpeg("-ss", "0.5", "-i", source, "-c", "copy", "-t", "1.5", paths["h264_mov_editlist"])
    paths["mpeg2_ps_open_gop"] = os.path.join(folder, "mpeg2_open_gop.mpg")
    ffmpeg("-ss", "0.5", "-i", paths["mpeg2_ps"], "-c", "copy", "-f", "vob", paths["mpeg2_ps_open_gop"])
    paths["h264_ts_midstream"] = os.path.join(folder, "h264_midstream.ts")
    with open(paths["h264_ts"], "rb") as whole, open(paths["h264_ts_midstream"], "wb") as tail:
        whole.seek(MIDSTREAM_CUT * TS_PACKET)
        tail.write(whole.read())
    os.remove(source)
    return paths


def trim_sample_videos(source: str | os.PathLike, folder: str | os.PathLike) -> dict[str, str]:
    """Trimmed copies of the `SAMPLE_VIDEOS` in `source`, written into `folder`; returns name -> path."""
    paths = {}
    for name, (file_name, trim) in SAMPLE_VIDEOS.items():
        paths[name] = os.path.join(folder, file_name)
        ffmpeg("-i", os.path.join(source, file_name), *trim, paths[name])
    return paths

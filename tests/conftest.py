"""Shared test helpers: the official-code reference outputs (vendored under tests/fixtures, they are data) and
test videos."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # lets the fixtures and test modules import media

REPO = Path(__file__).resolve().parents[1]
SAMPLE_VIDEO_DIR = REPO / ".cache" / "sample_videos"  # written by scripts/fetch_sample_videos.sh
OFFICIAL_TINY = REPO / "tests" / "fixtures" / "official-tiny"
ARCH_KEYS = (
    "img_size",
    "patch_size",
    "num_frames",
    "tubelet_size",
    "embed_dim",
    "depth",
    "num_heads",
    "mlp_ratio",
    "decoder_embed_dim",
    "decoder_depth",
    "decoder_num_heads",
)


@pytest.fixture(scope="session")
def official_tiny():
    """The official-code outputs for the tiny configuration (tests/fixtures/official-tiny/README.md)."""
    config = json.loads((OFFICIAL_TINY / "config.json").read_text())
    return {
        "config": config,
        "arch": {key: config[key] for key in ARCH_KEYS},
        "expected": torch.load(OFFICIAL_TINY / "expected.pth", weights_only=True),
        "pretrain_state": torch.load(OFFICIAL_TINY / "pretrain_checkpoint.pth", weights_only=True)["model"],
        "finetune_state": torch.load(OFFICIAL_TINY / "finetune_checkpoint.pth", weights_only=True)["module"],
    }


@pytest.fixture(scope="session")
def foreign_videos(tmp_path_factory) -> dict[str, str]:
    """name -> path of a short clip written with the FFmpeg command line (see tests/media.py)."""
    from media import make_foreign_clips  # here, so that only the video tests need imageio-ffmpeg

    return make_foreign_clips(tmp_path_factory.mktemp("foreign"))


@pytest.fixture(scope="session")
def package_videos(tmp_path_factory) -> dict[str, str]:
    """name -> path of a trimmed copy of a real sample video from a public package (MPEG-PS, H.264 MP4)."""
    from media import SAMPLE_VIDEOS, trim_sample_videos

    missing = [file for file, _ in SAMPLE_VIDEOS.values() if not (SAMPLE_VIDEO_DIR / file).is_file()]
    if missing:
        pytest.fail(
            f"sample videos {missing} not in {SAMPLE_VIDEO_DIR}: run `bash scripts/fetch_sample_videos.sh`",
            pytrace=False,
        )
    return trim_sample_videos(SAMPLE_VIDEO_DIR, tmp_path_factory.mktemp("package"))


# Skips a CI run accepts: optional pieces CI does not install. Under CI=true any other skip fails the run, so a
# test that silently stops running (a missing extra, a moved fixture) is noticed.
EXPECTED_SKIPS = ("torchcodec",)  # needs FFmpeg's shared libraries (apt-get install ffmpeg)
_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not any(name in str(report.longrepr) for name in EXPECTED_SKIPS):
        _unexpected_skips.append(f"{report.nodeid}: {report.longrepr[-1] if report.longrepr else ''}")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() in ("1", "true") and _unexpected_skips and exitstatus == 0:
        print(
            "\nunexpected skips under CI (install what they need, or list them in EXPECTED_SKIPS):\n  "
            + "\n  ".join(_unexpected_skips)
        )
        session.exitstatus = 1

"""`videomae.Predictor`: one API for a path, a list of paths and decoded frames, with the trained views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import videomae
from tests.apps.fixtures import assets  # noqa: F401  (fixture)
from videomae.data import open_video
from videomae.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def predictor(assets):
    return videomae.Predictor(str(assets.classifier), "cpu", clips=2, crops=3, sampling_rate=2, top_k=2)


def test_a_path_a_list_and_decoded_frames(predictor, assets):
    long, short = str(assets.videos / "long.mp4"), str(assets.videos / "short.mp4")
    one = predictor(long)
    assert one.video == long and one.views == 6 and len(one.top) == 2
    assert set(one.labels) <= {"left", "right", "still"} and one.probabilities == sorted(one.probabilities)[::-1]
    several = predictor([long, short, str(assets.frames)], top_k=3)
    assert [p.video for p in several] == [long, short, str(assets.frames)] and len(several[0].top) == 3

    reader = open_video(long)
    frames = reader.read(range(reader.num_frames))  # uint8 (T, H, W, 3), decoded by the caller
    reader.close()
    for decoded in (frames, torch.from_numpy(frames)):
        from_frames = predictor(decoded)
        assert from_frames.video == "frames" and from_frames.labels == one.labels
        np.testing.assert_allclose(from_frames.probabilities, one.probabilities, rtol=0, atol=1e-6)


def test_settings_as_trained_and_errors(predictor, assets):
    assert (predictor.views.num_clips, predictor.views.num_crops, predictor.views.short_side) == (2, 3, 32)
    with pytest.raises(DataError, match="uint8 \\(T, H, W, 3\\)"):
        predictor(np.zeros((4, 8, 8), dtype=np.uint8))
    with pytest.raises(ConfigError, match="not a classifier"):
        videomae.Predictor(str(assets.pretrain), "cpu")
    with pytest.raises(ConfigError, match="top_k must be at least 1"):
        videomae.Predictor(str(assets.classifier), "cpu", top_k=0)

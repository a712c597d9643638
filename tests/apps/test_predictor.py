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


def serial_probabilities(predictor, path: str) -> np.ndarray:
    """The serial path as it was before worker decoding: views of one video, the model, mean softmax."""
    from videomae.apps.predict import view_batches

    reader = open_video(path)
    with torch.no_grad():
        batches = [
            torch.softmax(predictor.model(batch).double(), -1) for batch in view_batches(reader, predictor.views)
        ]
    return torch.cat(batches).mean(0).numpy()


def test_worker_decoding_gives_the_serial_predictions_in_input_order(assets):
    """Two workers decode the videos (a bad one among them) while the model runs here: the same probabilities,
    bit for bit, in the order of the inputs, and the bad video named at its place."""
    videos = [
        str(assets.videos / "long.mp4"),
        str(assets.corrupt),
        str(assets.videos / "short.mp4"),
        str(assets.frames),
    ]
    predictions = {}
    for workers in (0, 2):
        predictor = videomae.Predictor(
            str(assets.classifier), "cpu", clips=2, crops=3, sampling_rate=2, top_k=3, num_workers=workers
        )
        predictions[workers] = list(predictor.predict_all(videos))
    assert [p.video for p in predictions[2]] == videos
    assert predictions[2][1].error and not predictions[2][1].top
    assert [p.to_dict() for p in predictions[2]] == [p.to_dict() for p in predictions[0]]
    for prediction in (predictions[2][0], predictions[2][2]):
        expected = serial_probabilities(predictor, prediction.video)
        assert prediction.probabilities == [float(expected[i]) for i, _, _ in prediction.top]
    with pytest.raises(DataError, match="corrupt.mp4"):
        predictor(videos)


def test_precision_auto_is_fp32_on_the_cpu(predictor):
    assert predictor.views.precision == "fp32"

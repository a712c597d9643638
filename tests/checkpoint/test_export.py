"""Exports the transformers ecosystem uses as its own: processor config, id2label, model card; `pipeline` on a video.

transformers 5 decodes a video *path* in the video-classification pipeline with torchcodec only (its PyAV path is
used when no video processor can be built, and one is always built from preprocessor_config.json). Where torchcodec
is missing, the test decodes the file with transformers' own `load_video(..., backend="pyav")` and gives the frames
to the same pipeline.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install videomae[hf])")

from tests.apps.fixtures import moving_frames  # noqa: E402
from tests.checkpoint.helpers import tiny_classifier  # noqa: E402
from videomae.checkpoint import locate, read_labels, read_preprocessing, save_hf  # noqa: E402
from videomae.checkpoint.preprocessing import Preprocessing  # noqa: E402
from videomae.data.synthetic import encode_video  # noqa: E402
from videomae.factory import create_model  # noqa: E402

LABELS = ["left", "right", "still"]
TRAINED = Preprocessing(
    num_frames=4,
    sampling_rate=2,
    input_size=32,
    short_side_size=40,
    mean=(0.45, 0.45, 0.45),
    std=(0.225, 0.225, 0.225),
    test_num_segment=2,
    test_num_crop=1,
)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    model = tiny_classifier(11)
    directory = save_hf(
        model,
        tmp_path_factory.mktemp("export") / "hf",
        labels=LABELS,
        preprocessing=TRAINED,
        training={"stage": "finetune", "epochs": 3, "data": {"manifest": "data/mine"}, "optim": {"lr": 0.001}},
    )
    return model, directory


def decoded(path: str):
    """What the pipeline gets: the path itself with torchcodec, else frames decoded by transformers with PyAV."""
    from transformers.utils import is_torchcodec_available

    if is_torchcodec_available():
        return path
    from transformers.video_utils import load_video

    return load_video(path, backend="pyav")[0]


@pytest.mark.data_stack
def test_pipeline_classifies_a_real_video_with_our_class_names(export, tmp_path):
    model, directory = export
    video = str(tmp_path / "clip.mp4")
    encode_video(video, moving_frames(12, 36, 48, seed=3))
    classify = transformers.pipeline("video-classification", model=str(directory))
    result = classify(decoded(video), top_k=3)
    assert {entry["label"] for entry in result} == set(LABELS)

    processor = transformers.VideoMAEImageProcessor.from_pretrained(directory)
    pixels = processor(list(moving_frames(4, 36, 48, seed=3)), return_tensors="pt").pixel_values  # (1, T, C, H, W)
    assert pixels.shape == (1, 4, 3, 32, 32)
    with torch.no_grad():  # the exported model is ours: same probabilities on the processor's pixels
        ours = torch.softmax(model(pixels.transpose(1, 2)), dim=-1)[0]
        theirs = torch.softmax(classify.model(pixel_values=pixels).logits, dim=-1)[0]
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)  # fc_norm eps: transformers 1e-5, ours 1e-6


def test_processor_repeats_the_training_preprocessing(export):
    _, directory = export
    processor = transformers.VideoMAEImageProcessor.from_pretrained(directory)
    assert processor.size["shortest_edge"] == 40
    assert (processor.crop_size["height"], processor.crop_size["width"]) == (32, 32)
    assert list(processor.image_mean) == [0.45] * 3 and list(processor.image_std) == [0.225] * 3
    assert processor.num_frames == 4 and transformers.AutoConfig.from_pretrained(directory).num_frames == 4


def test_model_card_says_what_and_how(export):
    _, directory = export
    card = (directory / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\n") and "pipeline_tag: video-classification" in card
    assert "3: left, right, still" in card and "4 frames, frame interval 2" in card
    assert "| training data | data/mine |" in card
    assert 'pipeline("video-classification", model="OWNER/REPO")' in card and "frame_sampling_rate=2" in card


def test_import_keeps_labels_and_preprocessing(export):
    model, directory = export
    location = locate(directory)
    assert location.kind == "hf" and read_labels(location) == LABELS
    assert read_preprocessing(location)[0] == TRAINED
    with torch.no_grad():
        clip = torch.randn(1, 3, 4, 32, 32)
        torch.testing.assert_close(create_model(pretrained=str(directory)).eval()(clip), model(clip), rtol=0, atol=1e-4)


def test_placeholder_names_are_not_labels(tmp_path):
    directory = save_hf(tiny_classifier(12), tmp_path / "hf")
    assert read_labels(locate(directory)) is None and read_preprocessing(locate(directory)) is None
    assert not os.path.exists(directory / "preprocessing.json")
    processor = transformers.VideoMAEImageProcessor.from_pretrained(directory)  # the model's input size
    assert processor.size["shortest_edge"] == 32 and processor.crop_size["height"] == 32
    np.testing.assert_allclose(processor.image_mean, [0.485, 0.456, 0.406])

"""The detector: the classifier's parameters, boxes pooled where they are, one row of logits per box."""

from __future__ import annotations

import torch

import videomae
from videomae.checkpoint import save_pretrained
from videomae.models.detector import ActionDetector, detector_from_classifier
from videomae.training.optim import param_groups

TINY = dict(embed_dim=32, depth=2, num_heads=2, patch_size=8, img_size=32, num_frames=4)


def tiny_classifier(num_classes: int = 5):
    torch.manual_seed(0)
    return videomae.create_model("vit_small_patch16_224", num_classes=num_classes, **TINY)


def test_the_detector_holds_the_classifiers_parameters():
    classifier = tiny_classifier()
    detector = detector_from_classifier(classifier)
    assert isinstance(detector, ActionDetector) and detector.training
    for (name, mine), theirs in zip(detector.named_parameters(), classifier.parameters()):
        assert mine is not theirs and mine.data_ptr() == theirs.data_ptr(), name  # shared, not copied
    assert {g["lr_scale"] for g in param_groups(detector, 0.05, 0.75) if "head.weight" in g["names"]} == {1.0}


def test_one_row_of_logits_per_box_and_clips_do_not_mix():
    detector = detector_from_classifier(tiny_classifier()).eval()
    video = torch.randn(2, 3, 4, 32, 48)  # any size in whole patches
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.9], [0.0, 0.0, 0.0, 0.0]], [[0.2, 0.3, 0.9, 0.8], [0.5, 0.5, 1.0, 1.0]]])
    with torch.no_grad():
        both = detector(video, boxes)
        second = detector(video[1:], boxes[1:])
        swapped = detector(video[1:], boxes[1:, [1, 0]])
    assert both.shape == (2, 2, 5)
    torch.testing.assert_close(both[1:], second)
    torch.testing.assert_close(swapped, second[:, [1, 0]])


def test_boxes_pool_the_feature_map_where_they_are():
    detector = detector_from_classifier(tiny_classifier(num_classes=3)).eval()
    with torch.no_grad():  # the head passes the 3 first channels through
        detector.head.weight.zero_()
        detector.head.bias.zero_()
        detector.head.weight[:, :3] = torch.eye(3)
    features = torch.zeros(1, 32, 4, 6)  # (B, D, H', W'): a 4 x 6 token grid
    features[0, 0, 1, 4] = 1.0  # row 1, column 4
    features[0, 1, 3, 0] = 1.0  # bottom-left
    detector.feature_map = lambda video: features
    boxes = torch.tensor([[[4 / 6, 1 / 4, 5 / 6, 2 / 4], [0.0, 3 / 4, 1 / 6, 1.0], [0.0, 0.0, 0.5, 0.5]]])
    logits = detector(torch.zeros(1, 3, 4, 32, 48), boxes)[0]
    assert logits[0, 0] > 0.5 and logits[0, 1] == 0  # the box around (row 1, column 4)
    assert logits[1, 1] > 0.5 and logits[1, 0] == 0  # the bottom-left box
    assert logits[2].abs().max() == 0  # the top-left quarter holds neither


def test_a_detector_export_loads_like_a_classifier(tmp_path):
    detector = detector_from_classifier(tiny_classifier())
    save_pretrained(detector, tmp_path / "export")
    loaded = videomae.create_model(pretrained=str(tmp_path / "export"))
    assert type(loaded).__name__ == "VisionTransformer"
    for key, value in detector.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)

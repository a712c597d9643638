"""Detection data: keyframes and their boxes, clips centred on them, and boxes that move with the pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from videomae.data import DataConfig
from videomae.detection.config import DetectionConfig
from videomae.detection.data import (
    KeyframeBoxes,
    build_detection_dataset,
    clip_indices,
    extend_boxes,
    group_boxes,
    jitter_boxes,
    train_view,
    whole_frame_view,
    with_proposals,
)
from videomae.detection.formats import BoxRow
from videomae.detection.synthetic import DetectionSetConfig, write_detection_set
from videomae.errors import DataError


def test_rows_of_one_box_become_one_person_with_all_its_actions():
    box, other = (0.1, 0.1, 0.5, 0.9), (0.6, 0.1, 0.9, 0.9)
    rows = [BoxRow("v", "0902", box, 12), BoxRow("v", "0902", other, 3), BoxRow("v", "0902", box, 80)]
    rows += [BoxRow("v", "0903", box, 1), BoxRow("v", "0904", None, None)]
    keyframes = group_boxes(rows, {("v", 903.0)}, 80, "gt.csv")
    assert list(keyframes) == [("v", 902.0), ("v", 904.0)]
    first = keyframes[("v", 902.0)]
    np.testing.assert_allclose(first.boxes, [box, other], rtol=1e-6)
    assert np.nonzero(first.targets)[1].tolist() == [11, 79, 2]  # actions 12 and 80, then 3
    assert keyframes[("v", 904.0)].boxes.shape == (0, 4)
    with pytest.raises(DataError, match=r"gt.csv: action 81 at v,0902 is outside 1..80"):
        group_boxes([BoxRow("v", "0902", box, 81)], set(), 80, "gt.csv")


def test_training_proposals_take_the_actions_of_the_box_they_overlap():
    targets = np.eye(3, dtype=np.float32)[[1]]  # one person doing action 2
    truth = KeyframeBoxes("v", "0902", np.array([[0.1, 0.1, 0.5, 0.9]], dtype=np.float32), targets)
    proposals = np.array([[0.1, 0.1, 0.5, 0.88], [0.1, 0.1, 0.5, 0.5], [0.6, 0.1, 0.9, 0.9]], dtype=np.float32)
    labelled = with_proposals(truth, proposals, positive_iou=0.9)
    assert labelled.boxes.shape == (4, 4)
    assert labelled.targets.tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]]  # IoU 0.95, 0.5, 0


def test_clips_are_centred_on_the_keyframe_and_stay_in_the_video():
    assert clip_indices(60, 900, 16, 4).tolist() == list(range(28, 92, 4))
    assert clip_indices(2, 10, 4, 2).tolist() == [0, 0, 2, 4]


def bright_square(height: int, width: int, box) -> np.ndarray:
    """Frames (2, H, W, 3): dark, with a white rectangle where the normalized box is."""
    frames = np.full((2, height, width, 3), 10, dtype=np.uint8)
    x1, y1, x2, y2 = (np.asarray(box) * [width, height, width, height]).round().astype(int)
    frames[:, y1:y2, x1:x2] = 250
    return frames


@pytest.mark.parametrize("seed", range(6))
def test_cropped_and_flipped_boxes_cover_the_same_pixels(seed):
    box = np.array([[0.5, 0.25, 0.75, 0.75]], dtype=np.float32)
    data = DataConfig(input_size=48, short_side_size=64, flip=True)
    video, moved, inside = train_view(bright_square(64, 96, box[0]), box, data, np.random.default_rng(seed))
    assert video.shape == (3, 2, 48, 48)
    if not inside[0]:
        return
    white = (video[0, 0] > 128).numpy()  # (48, 48)
    x1, y1, x2, y2 = (moved[0] * 48).round().astype(int)
    in_box = np.zeros_like(white)
    in_box[y1:y2, x1:x2] = True
    assert white[in_box].mean() > 0.9
    assert white[~in_box].sum() <= 2 * (x2 - x1 + y2 - y1)  # at most the rounding at the edges


def test_jitter_moves_each_side_within_its_fraction():
    boxes = np.array([[0.2, 0.2, 0.6, 0.8]], dtype=np.float32)
    jittered = np.stack([jitter_boxes(boxes, (0.2, 0.1, 0.1, 0.05), np.random.default_rng(s))[0] for s in range(200)])
    width, height = 0.4, 0.6
    assert jittered[:, 0].min() >= 0.2 - 0.2 * width - 1e-6 and jittered[:, 0].max() <= 0.2 + 0.1 * width + 1e-6
    assert jittered[:, 3].min() >= 0.8 - 0.05 * height - 1e-6 and jittered[:, 3].max() <= 0.8 + 0.1 * height + 1e-6
    assert np.ptp(jittered, axis=0).min() > 0.01  # every side moves


def test_test_boxes_widen_and_test_frames_keep_their_shape():
    widened = extend_boxes(np.array([[0.2, 0.2, 0.6, 0.8]], dtype=np.float32), (0.1, 0.05))
    assert widened[0].tolist() == pytest.approx([0.18, 0.185, 0.62, 0.815])
    video = whole_frame_view(np.zeros((3, 90, 160, 3), dtype=np.uint8), 64, 16)
    assert video.shape == (3, 3, 64, 112)  # 64 x 113.8, rounded to whole 16-pixel patches


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory):
    """A two-video set written as frame folders and as MP4 files."""
    cfg = DetectionSetConfig(train_videos=1, val_videos=1, keyframes_per_video=3)
    folders = tmp_path_factory.mktemp("frames"), tmp_path_factory.mktemp("videos")
    write_detection_set(str(folders[0]), cfg, seed=3)
    write_detection_set(str(folders[1]), cfg, seed=3, as_video=True)
    return folders


def settings(folder):
    data = DataConfig(
        root=str(folder / "frames"),
        frame_template="{:05}.png",
        num_frames=4,
        sampling_rate=2,
        input_size=48,
        short_side_size=64,
        patch_size=8,
        num_workers=0,
    )
    det = DetectionConfig(
        annotations=str(folder),
        train_csv="train.csv",
        val_csv="val.csv",
        val_excluded="val_excluded.csv",
        val_proposals="val_proposals.csv",
        label_map="actions.pbtxt",
        num_actions=4,
        fps=8,
        timestamp_start=0,
        max_boxes=4,
    )
    return data, det


def test_frame_folders_and_videos_give_the_same_clips(small_sets):
    (data, det), (video_data, _) = settings(small_sets[0]), settings(small_sets[1])
    for split in ("train", "test"):
        from_frames = build_detection_dataset(data, det, split)
        from_videos = build_detection_dataset(video_data, det, split)
        assert len(from_frames) == len(from_videos) > 0
        for index in range(len(from_frames)):
            a, b = from_frames[(0, index)], from_videos[(0, index)]
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a if k != "video")
            assert (a["video"].float() - b["video"].float()).abs().mean() < 8  # the same frames, H.264-compressed


def test_test_boxes_are_the_proposals_above_the_threshold(small_sets):
    data, det = settings(small_sets[0])
    test = build_detection_dataset(data, det, "test")
    assert len(test) == 2  # 3 keyframes of the validation video, the last one excluded
    assert all(len(k.boxes) == 2 for k in test.keyframes)  # two digits; the low-scoring false box is dropped
    everything = build_detection_dataset(data, dataclasses.replace(det, proposal_score=0.0), "test")
    assert all(len(k.boxes) == 3 for k in everything.keyframes)
    item = test[(0, 1)]
    assert item["box_mask"].tolist() == [[True, True, False, False]] and item["keyframe_index"].tolist() == [1]


def test_videos_can_start_at_their_own_second(small_sets):
    data, det = settings(small_sets[0])
    (small_sets[0] / "starts.csv").write_text("train000,1\n")
    plain = build_detection_dataset(data, det, "train")
    shifted = build_detection_dataset(data, dataclasses.replace(det, video_starts="starts.csv"), "train")
    assert np.array_equal(shifted.read_clip(1), plain.read_clip(0))  # second 2 is read where second 1 was

"""The AVA frame mAP against APs computed by hand from the official evaluator's rules (evaluation.py docstring).

Every case is one action ("a", id 1) unless it says otherwise; boxes are chosen so that IoUs are exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from videomae.detection.evaluation import average_precision, box_iou, evaluate_files, frame_map
from videomae.detection.formats import BoxRow, write_results

LABELS = {1: "a", 2: "b"}
G1, G2, G3 = (0.0, 0.0, 0.4, 0.4), (0.5, 0.5, 0.9, 0.9), (0.5, 0.0, 0.9, 0.4)
FAR = (0.0, 0.6, 0.2, 0.9)  # overlaps none of them


def truth(*boxes, keyframe="0902", action=1):
    return [BoxRow("v", keyframe, box, action) for box in boxes]


def found(box, score, keyframe="0902", action=1, video="v"):
    return BoxRow(video, keyframe, box, action, score)


def ap(groundtruth, detections, labels=LABELS, excluded=frozenset()):
    return frame_map(groundtruth, detections, labels, excluded).per_action[1]


def test_precision_recall_area_by_hand():
    # TP (0.9), FP (0.8), TP (0.7) over 2 boxes: P = 1, 1/2, 2/3 at R = 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3
    detections = [found(G1, 0.9), found(FAR, 0.8), found(G2, 0.7)]
    assert ap(truth(G1, G2), detections) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_precision_is_made_non_increasing():
    # FP, TP, TP over 2 boxes: P = 0, 1/2, 2/3; the curve takes 2/3 over the whole recall range
    detections = [found(FAR, 0.9), found(G1, 0.8), found(G2, 0.7)]
    assert ap(truth(G1, G2), detections) == pytest.approx(2 / 3)


def test_a_duplicate_detection_is_a_false_positive():
    detections = [found(G1, 0.9), found(G1, 0.8), found(G2, 0.7)]  # TP, FP (box taken), TP
    assert ap(truth(G1, G2), detections) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_a_detection_matches_only_its_best_box():
    left, shifted = (0.0, 0.0, 0.4, 0.4), (0.1, 0.0, 0.5, 0.4)  # two overlapping people
    second = (0.02, 0.0, 0.42, 0.4)  # IoU 0.905 with `left` (taken), 0.667 with `shifted` (free): still a FP
    detections = [found(left, 0.9), found(second, 0.8)]
    assert ap(truth(left, shifted), detections) == pytest.approx(0.5)


def test_iou_of_exactly_one_half_is_a_match():
    half = (0.0, 0.0, 0.25, 0.5)
    assert box_iou(np.array([half]), np.array([(0.0, 0.0, 0.5, 0.5)]))[0, 0] == 0.5
    assert ap(truth((0.0, 0.0, 0.5, 0.5)), [found(half, 0.3)]) == 1.0


def test_ties_rank_the_later_detection_first():
    # The evaluator ranks by numpy.argsort(scores)[::-1]; for two equal scores numpy keeps file order, so the
    # reversal puts the later one first: FP then TP -> P = 0, 1/2 at R = 0, 1/2 -> AP 1/4 (TP first would give 1/2).
    groundtruth = truth(G1, keyframe="0902") + truth(G2, keyframe="0903")
    detections = [found(G1, 0.5, "0902"), found(FAR, 0.5, "0903")]
    assert ap(groundtruth, detections) == pytest.approx(0.25)
    swapped = [found(FAR, 0.5, "0903"), found(G1, 0.5, "0902")]
    assert ap(groundtruth, swapped) == pytest.approx(0.5)


def test_excluded_keyframes_drop_their_truth_and_detections():
    groundtruth = truth(G1, keyframe="0902") + truth(G2, keyframe="0903")
    detections = [found(G1, 0.9, "0902"), found(FAR, 0.95, "0903")]
    assert ap(groundtruth, detections) == pytest.approx(0.0 + 0.5 * 0.5)  # FP first, then TP: 1 of 2 boxes at P 1/2
    assert ap(groundtruth, detections, excluded={("v", 903.0)}) == 1.0


def test_actions_without_ground_truth_have_no_ap_and_leave_the_mean():
    result = frame_map(truth(G1), [found(G1, 0.9), found(G1, 0.8, action=2)], LABELS)
    assert result.per_action[1] == 1.0 and math.isnan(result.per_action[2])
    assert result.mean_ap == 1.0
    summary = result.summary(LABELS)
    assert summary["PascalBoxes_Precision/mAP@0.5IOU"] == 1.0
    assert summary["PascalBoxes_PerformanceByCategory/AP@0.5IOU/b"] is None


def test_an_action_with_truth_and_no_detection_scores_zero():
    result = frame_map(truth(G1) + truth(G2, action=2), [found(G1, 0.9)], LABELS)
    assert result.per_action == {1: 1.0, 2: 0.0} and result.mean_ap == 0.5


def test_actions_outside_the_label_map_are_ignored():
    groundtruth = truth(G1) + truth(G2, action=7)
    assert frame_map(groundtruth, [found(G1, 0.9), found(G3, 0.99, action=7)], LABELS).mean_ap == 1.0


def test_only_keyframes_the_ground_truth_lists_count():
    listed = [*truth(G1), BoxRow("v", "0905", None, None)]  # 0905: annotated, no action
    unlisted = found(FAR, 0.99, "0904")  # ignored
    assert ap(listed, [unlisted, found(G1, 0.5)]) == 1.0
    assert ap(listed, [found(FAR, 0.99, "0905"), found(G1, 0.5)]) == pytest.approx(0.5)  # a FP ranked first


def test_each_keyframe_keeps_its_fifty_best_detections():
    wrong = [found(FAR, 0.6) for _ in range(50)]
    assert ap(truth(G1), wrong + [found(G1, 0.5)]) == 0.0  # not above the 50th: dropped
    assert ap(truth(G1), wrong + [found(G1, 0.7)]) == 1.0  # replaces one of them, ranked first


def test_empty_detection_boxes_are_dropped():
    inverted = (0.4, 0.0, 0.0, 0.4)  # x2 < x1
    assert ap(truth(G1), [found(inverted, 0.99), found(G1, 0.5)]) == 1.0


def test_average_precision_edge_cases():
    assert math.isnan(average_precision(np.zeros(0), np.zeros(0, dtype=bool), 0))
    assert average_precision(np.zeros(0), np.zeros(0, dtype=bool), 3) == 0.0


def test_files_score_as_the_rows_they_hold(tmp_path):
    gt, det, labels = tmp_path / "gt.csv", tmp_path / "det.csv", tmp_path / "labels.pbtxt"
    gt.write_text("v,0902,0.0,0.0,0.4,0.4,1,0\nv,0902,0.5,0.5,0.9,0.9,1,1\nv,0903,0.5,0.0,0.9,0.4,2,0\n")
    labels.write_text('item {\n  name: "a"\n  id: 1\n}\nitem {\n  name: "b"\n  id: 2\n}\n')
    detections = [found(G1, 0.9), found(FAR, 0.8), found(G2, 0.7), found(G3, 0.6, "0903", action=2)]
    write_results(str(det), detections)
    result = evaluate_files(str(gt), str(det), str(labels))
    assert result.per_action == pytest.approx({1: 0.5 + 0.5 * 2 / 3, 2: 1.0})
    assert result.mean_ap == pytest.approx((0.5 + 0.5 * 2 / 3 + 1.0) / 2)

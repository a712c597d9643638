"""Frame mAP at IoU 0.5, as the official ActivityNet AVA evaluator (`Evaluation/get_ava_performance.py`) computes it.

Written from the evaluator's documented algorithm (PASCAL VOC detection AP), step by step:

1. Only actions in the label map count. Each keyframe keeps its 50 highest-scoring detections (a bounded
   min-heap of `(score, action_id, y1, x1, y2, x2)` fed in file order; a new row replaces the smallest only with a
   strictly higher score); its detections are then ordered by descending score (a stable sort of that heap).
2. Detections on keyframes the ground truth does not list (not even as a `video_id,timestamp` row) are ignored,
   as are ground truth and detections on excluded keyframes (the older evaluator's `-e` file, still used by
   SlowFast and mmaction2). Boxes with x2 <= x1 or y2 <= y1 are dropped from the detections.
3. Per keyframe and action, detections in that order are matched greedily: a detection whose best-overlapping
   ground-truth box (first maximum) has IoU >= 0.5 and is still free is a true positive and takes it; any other
   detection, duplicates included, is a false positive.
4. Per action, the detections of all keyframes (in order of the keyframe's first row in the detection file) are
   ranked by `numpy.argsort(scores)[::-1]`, the evaluator's own call: equal scores fall in numpy's order, which
   for a few values is the reverse of the file order. AP is the area under the precision/recall curve with
   precision made non-increasing (VOC). An action with ground truth and no detection has AP 0; one without
   ground truth has no AP (NaN) and is left out of the mean.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from videomae.detection.formats import BoxRow, Keyframe, iter_results, read_annotations, read_excluded, read_label_map

IOU_THRESHOLD = 0.5
DETECTIONS_PER_KEYFRAME = 50


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) corner boxes -> (N, M) intersection over union (no +1 on sides: boxes are normalized)."""
    low = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    high = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    intersection = np.prod(np.maximum(high - low, 0.0), axis=-1)  # (N, M)
    area1 = np.prod(boxes1[:, 2:] - boxes1[:, :2], axis=-1)
    area2 = np.prod(boxes2[:, 2:] - boxes2[:, :2], axis=-1)
    return intersection / (area1[:, None] + area2[None, :] - intersection)


@dataclass
class RankedBoxes:
    """One keyframe's boxes (K, 4) as x1, y1, x2, y2, their actions (K,) and scores (K,), best first."""

    boxes: np.ndarray
    actions: np.ndarray
    scores: np.ndarray


def ranked_by_keyframe(rows: Iterable[BoxRow], actions: set[int], capacity: int) -> dict[Keyframe, RankedBoxes]:
    """Rows of the label map's actions grouped by keyframe (in order of first appearance), each keyframe's best
    `capacity` (0: all) in descending score order, as the evaluator keeps them (module docstring, step 1)."""
    heaps: dict[Keyframe, list] = {}
    for row in rows:
        if row.action_id not in actions:
            continue
        x1, y1, x2, y2 = row.box
        entry = (row.score, row.action_id, y1, x1, y2, x2)
        heap = heaps.setdefault(row.keyframe, [])
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, entry)
        elif row.score > heap[0][0]:
            heapq.heapreplace(heap, entry)
    ranked = {}
    for key, heap in heaps.items():
        entries = sorted(heap, key=lambda entry: -entry[0])
        ranked[key] = RankedBoxes(
            np.array([[x1, y1, x2, y2] for _, _, y1, x1, y2, x2 in entries], dtype=float).reshape(-1, 4),
            np.array([entry[1] for entry in entries], dtype=int),
            np.array([entry[0] for entry in entries], dtype=float),
        )
    return ranked


def true_positives(detected: np.ndarray, groundtruth: np.ndarray) -> np.ndarray:
    """Greedy VOC matching of one action's detections (K, 4), best first, to its ground truth (G, 4): (K,) bool."""
    hits = np.zeros(len(detected), dtype=bool)
    if len(groundtruth) == 0:
        return hits
    iou = box_iou(detected, groundtruth)  # (K, G)
    best = np.argmax(iou, axis=1)
    taken = np.zeros(len(groundtruth), dtype=bool)
    for i, gt in enumerate(best):
        if iou[i, gt] >= IOU_THRESHOLD and not taken[gt]:
            hits[i] = taken[gt] = True
    return hits


def average_precision(scores: np.ndarray, hits: np.ndarray, num_groundtruth: int) -> float:
    """VOC AP of one action over all keyframes; NaN without ground truth, 0 without detections."""
    if num_groundtruth == 0:
        return math.nan
    if len(scores) == 0:
        return 0.0
    order = np.argsort(scores)[::-1]  # the evaluator's ranking, ties included (module docstring, step 4)
    tp = np.cumsum(hits[order].astype(int))
    fp = np.cumsum(1 - hits[order].astype(int))
    precision = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    recall = np.concatenate([[0.0], tp / num_groundtruth, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # non-increasing from the right
    steps = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


@dataclass
class FrameMap:
    """The evaluation of one result set: mean AP and AP per label-map action (NaN: no ground truth), fractions."""

    mean_ap: float
    per_action: dict[int, float]
    num_groundtruth: dict[int, int]

    def summary(self, label_map: dict[int, str]) -> dict:
        """The official metric names (`PascalBoxes_Precision/mAP@0.5IOU`, `.../AP@0.5IOU/NAME`), values as the
        evaluator prints them (fractions; None for an action without ground truth)."""
        out = {"PascalBoxes_Precision/mAP@0.5IOU": _or_none(self.mean_ap)}
        for action, name in label_map.items():
            out[f"PascalBoxes_PerformanceByCategory/AP@0.5IOU/{name}"] = _or_none(self.per_action[action])
        return out


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def frame_map(
    groundtruth: Iterable[BoxRow],
    detections: Iterable[BoxRow],
    label_map: dict[int, str],
    excluded: set[Keyframe] = frozenset(),
) -> FrameMap:
    """Frame mAP@0.5 of `detections` against `groundtruth` over the label map's actions (module docstring)."""
    groundtruth = list(groundtruth)
    actions = set(label_map)
    listed = {row.keyframe for row in groundtruth} - set(excluded)
    truth = {key: boxes for key, boxes in ranked_by_keyframe(groundtruth, actions, 0).items() if key in listed}
    scores: dict[int, list[np.ndarray]] = {action: [] for action in actions}
    hits: dict[int, list[np.ndarray]] = {action: [] for action in actions}
    for key, found in ranked_by_keyframe(detections, actions, DETECTIONS_PER_KEYFRAME).items():
        if key not in listed:
            continue
        valid = (found.boxes[:, 0] < found.boxes[:, 2]) & (found.boxes[:, 1] < found.boxes[:, 3])
        gt = truth.get(key)
        for action in np.unique(found.actions[valid]):
            mine = valid & (found.actions == action)
            gt_boxes = gt.boxes[gt.actions == action] if gt is not None else np.zeros((0, 4))
            scores[action].append(found.scores[mine])
            hits[action].append(true_positives(found.boxes[mine], gt_boxes))
    counts = {action: sum(int((gt.actions == action).sum()) for gt in truth.values()) for action in actions}
    per_action = {
        action: average_precision(
            np.concatenate(scores[action]) if scores[action] else np.zeros(0),
            np.concatenate(hits[action]) if hits[action] else np.zeros(0, dtype=bool),
            counts[action],
        )
        for action in label_map
    }
    return FrameMap(mean_over_actions(per_action), per_action, counts)


def mean_over_actions(per_action: dict[int, float]) -> float:
    """`nanmean` over an array indexed by action id - 1, as the evaluator lays it out (the same summation order)."""
    table = np.full(max(per_action), np.nan)
    for action, ap in per_action.items():
        table[action - 1] = ap
    return float(np.nanmean(table)) if not np.isnan(table).all() else math.nan


def evaluate_files(groundtruth: str, detections: str, label_map: str, excluded: str | None = None) -> FrameMap:
    """`frame_map` of the official files: ground-truth CSV, result CSV, action list `.pbtxt`, excluded timestamps."""
    return frame_map(
        read_annotations(groundtruth), iter_results(detections), read_label_map(label_map), read_excluded(excluded)
    )

"""Typed settings of spatio-temporal action detection (the `[detection]` table of a `detect` recipe)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from videomae.errors import DataError


@dataclass
class DetectionConfig:
    """AVA-style data and detection head. Clip geometry, frame files and loading come from `[data]`: `data.root`
    holds one frame folder (`data.frame_template`, `{video}` standing for the video id, numbered from
    `data.start_index`) or one video file per video id; `data.num_frames` x `data.sampling_rate` frames are
    centred on each keyframe.

    Attributes:
        annotations: folder the file names below are relative to ("" = as written).
        train_csv: training annotations `video_id,timestamp,x1,y1,x2,y2,action_id,person_id`.
        val_csv: validation/test annotations (the ground truth of `eval`).
        train_excluded: excluded timestamps of the training set (`video_id,timestamp`), or None.
        val_excluded: excluded timestamps of the validation set, or None.
        label_map: the action list `.pbtxt` of the evaluated actions (AVA v2.2: 60 of the 80).
        train_proposals: person boxes from a detector (CSV or JSON) added to the ground-truth training boxes; None =
            ground-truth boxes only (the official VideoMAE setting).
        val_proposals: person boxes the validation/test clips are classified in; None = the ground-truth boxes.
        proposal_score: proposals scoring below this are dropped, in training and test.
        positive_iou: a training proposal takes the actions of a ground-truth box it overlaps by this IoU, else
            it is a negative (no action).
        num_actions: classifier width: action ids 1..num_actions (AVA: 80).
        fps: frame rate of frame folders (a video file's own rate is used for videos).
        timestamp_start: the second that a video's first frame shows (AVA's 15-minute cuts: 900; whole movies: 0).
        video_starts: a `video_id,first_second` CSV for videos that start elsewhere (AVA-Kinetics' Kinetics clips).
        max_boxes: boxes per clip, padded (extra boxes are dropped: the lowest-scoring proposals first).
        box_jitter: training box jitter, as fractions of the box's width and height: how far x1/x2 may move out
            and in, then y1/y2 out and in (official: 0.2, 0.1, 0.1, 0.05).
        test_box_extend: test boxes are widened by these fractions of their width and height (official: 0.1, 0.05).
        roi_size: RoIAlign output side (then max-pooled to one vector per box).
    """

    annotations: str = ""
    train_csv: str | None = None
    val_csv: str | None = None
    train_excluded: str | None = None
    val_excluded: str | None = None
    label_map: str | None = None
    train_proposals: str | None = None
    val_proposals: str | None = None
    proposal_score: float = 0.8
    positive_iou: float = 0.9
    num_actions: int = 80
    fps: float = 30.0
    timestamp_start: float = 900.0
    video_starts: str | None = None
    max_boxes: int = 32
    box_jitter: tuple[float, float, float, float] = (0.2, 0.1, 0.1, 0.05)
    test_box_extend: tuple[float, float] = (0.1, 0.05)
    roi_size: int = 7

    def path(self, name: str | None) -> str | None:
        """A file setting joined to `annotations`."""
        return os.path.join(self.annotations, name) if name else None

    def validate(self) -> None:
        """Raise `DataError` naming the setting (`detection.NAME`) for values that cannot work."""
        for name in ("num_actions", "max_boxes", "roi_size"):
            if getattr(self, name) < 1:
                raise DataError(f"detection.{name} must be at least 1, got {getattr(self, name)}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise DataError(f"detection.fps must be a positive number, got {self.fps}")
        for name in ("proposal_score", "positive_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DataError(f"detection.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("box_jitter", "test_box_extend"):
            if not all(0.0 <= v <= 1.0 for v in getattr(self, name)):
                raise DataError(f"detection.{name} values must be in [0, 1], got {list(getattr(self, name))}")
        if not self.label_map:
            raise DataError("detection.label_map is not set: the action list .pbtxt of the evaluated actions")

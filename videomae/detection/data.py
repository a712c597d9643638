"""AVA-style detection data: keyframes with person boxes and multi-label actions, and clips centred on them.

A sample is one keyframe: the `num_frames` frames, `sampling_rate` apart, centred on the frame the keyframe's
second shows, with its boxes. Training boxes are the ground truth (plus detector proposals, when given, labelled
by their overlap with it); test boxes are the proposals above `proposal_score`, or the ground truth without any.

Items (the loader's view collate concatenates them into batches):
    "video": uint8 (1, 3, T, H, W) (training: a random `input_size` square crop of the frames resized to
        `short_side_size`, flipped half the time; test: the whole frame, short side `short_side_size`, sides
        rounded to whole patches);
    "boxes": float32 (1, M, 4), x1, y1, x2, y2 in [0, 1] of the clip, M = `max_boxes` (padding: zeros);
    "box_mask": bool (1, M), True for real boxes;
    "targets": float32 (1, M, num_actions), multi-hot (training);
    "keyframe_index": long (1,), the sample (test).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from videomae.data.config import DataConfig
from videomae.data.datasets import AUGMENT_STREAM, VideoDataset
from videomae.data.decoders import resolve_backend
from videomae.data.manifests import VIDEO_EXTENSIONS, Sample
from videomae.data.transforms import resize_short_side, to_tchw
from videomae.detection.config import DetectionConfig
from videomae.detection.evaluation import box_iou
from videomae.detection.formats import (
    BoxRow,
    Keyframe,
    Proposal,
    read_annotations,
    read_excluded,
    read_label_map,
    read_proposals,
    read_video_starts,
)
from videomae.errors import DataError
from videomae.seeding import numpy_generator


@dataclass
class KeyframeBoxes:
    """One sample: a keyframe, its boxes (K, 4) float32 and their multi-hot actions (K, num_actions) float32."""

    video_id: str
    timestamp: str  # as written in the annotation file
    boxes: np.ndarray
    targets: np.ndarray


def group_boxes(
    rows: list[BoxRow], excluded: set[Keyframe], num_actions: int, path: str
) -> dict[Keyframe, KeyframeBoxes]:
    """Annotation rows grouped into keyframes (file order), one box per distinct box with all its actions.

    Excluded keyframes are left out; a keyframe listed without actions has no boxes.
    """
    grouped: dict[Keyframe, tuple[str, dict]] = {}
    for row in rows:
        if row.keyframe in excluded:
            continue
        _, actions_of_box = grouped.setdefault(row.keyframe, (row.timestamp, {}))
        if row.box is None:
            continue
        if not 1 <= row.action_id <= num_actions:
            raise DataError(
                f"{path}: action {row.action_id} at {row.video_id},{row.timestamp} is outside 1..{num_actions} "
                f"(detection.num_actions)"
            )
        actions_of_box.setdefault(row.box, set()).add(row.action_id)
    keyframes = {}
    for key, (timestamp, actions_of_box) in grouped.items():
        targets = np.zeros((len(actions_of_box), num_actions), dtype=np.float32)
        for i, actions in enumerate(actions_of_box.values()):
            targets[i, [a - 1 for a in actions]] = 1.0
        boxes = np.array(list(actions_of_box), dtype=np.float32).reshape(-1, 4)
        keyframes[key] = KeyframeBoxes(key[0], timestamp, boxes, targets)
    return keyframes


def proposal_boxes(proposals: list[Proposal], threshold: float) -> np.ndarray:
    """Boxes (K, 4) of the proposals scoring at least `threshold`, best first."""
    kept = sorted((p for p in proposals if p.score >= threshold), key=lambda p: -p.score)
    return np.array([p.box for p in kept], dtype=np.float32).reshape(-1, 4)


def with_proposals(truth: KeyframeBoxes, proposals: np.ndarray, positive_iou: float) -> KeyframeBoxes:
    """Ground-truth boxes followed by the proposals, each proposal labelled with the actions of the ground-truth box
    it overlaps most when that IoU reaches `positive_iou`, else with none (a negative)."""
    targets = np.zeros((len(proposals), truth.targets.shape[1]), dtype=np.float32)
    if len(truth.boxes) and len(proposals):
        iou = box_iou(proposals.astype(float), truth.boxes.astype(float))  # (P, G)
        best = iou.argmax(axis=1)
        positive = iou[np.arange(len(proposals)), best] >= positive_iou
        targets[positive] = truth.targets[best[positive]]
    return KeyframeBoxes(
        truth.video_id,
        truth.timestamp,
        np.concatenate([truth.boxes, proposals]),
        np.concatenate([truth.targets, targets]),
    )


def keyframe_samples(split: str, det: DetectionConfig) -> list[KeyframeBoxes]:
    """The split's keyframes with the boxes its clips are classified in (module docstring); keyframes without a
    box are left out (they could give no detection)."""
    role = "train" if split == "train" else "val"  # validation and test both read the val files
    csv_path = det.path(getattr(det, f"{role}_csv"))
    if not csv_path:
        raise DataError(f"detection.{role}_csv is not set")
    excluded = read_excluded(det.path(getattr(det, f"{role}_excluded")))
    keyframes = group_boxes(read_annotations(csv_path), excluded, det.num_actions, csv_path)
    proposals_path = det.path(getattr(det, f"{role}_proposals"))
    if proposals_path:
        proposals = read_proposals(proposals_path)
        for key, truth in keyframes.items():
            found = proposal_boxes(proposals.get(key, []), det.proposal_score)
            if split == "train":
                keyframes[key] = with_proposals(truth, found, det.positive_iou)
            else:
                no_targets = np.zeros((len(found), det.num_actions), dtype=np.float32)  # test boxes carry none
                keyframes[key] = KeyframeBoxes(truth.video_id, truth.timestamp, found, no_targets)
    samples = [k for k in keyframes.values() if len(k.boxes) and (split != "train" or k.targets.any())]
    if not samples:
        raise DataError(f"{csv_path} has no keyframe with a box to {'train' if split == 'train' else 'test'} on")
    return samples


class VideoLocator:
    """Where a video id's frames are: `root/<id>/` (a frame folder), else `root/<id>.<video extension>`."""

    def __init__(self, root: str):
        self.root = root
        self._files: dict[str, str] | None = None

    def __call__(self, video_id: str) -> str:
        folder = os.path.join(self.root, video_id)
        if os.path.isdir(folder):
            return folder
        if self._files is None:  # one listing of the root for all video files
            names = os.listdir(self.root) if os.path.isdir(self.root) else []
            self._files = {
                os.path.splitext(n)[0]: os.path.join(self.root, n)
                for n in sorted(names)
                if n.lower().endswith(VIDEO_EXTENSIONS)
            }
        return self._files.get(video_id, folder)  # a missing folder is reported as a bad file when read


def clip_indices(centre: int, length: int, num_frames: int, rate: int) -> np.ndarray:
    """`num_frames` frame indices `rate` apart centred on frame `centre` (half before it), clamped to the video."""
    return np.clip(centre + (np.arange(num_frames) - num_frames // 2) * rate, 0, length - 1)


def jitter_boxes(boxes: np.ndarray, jitter: tuple[float, float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Move each side by a random fraction of the box's size: x1 in [-out, +in] of the width, x2 in [-in, +out]
    (so the box grows by up to `out` and shrinks by up to `in`), y likewise; kept inside the frame, non-empty."""
    out_x, in_x, out_y, in_y = jitter
    size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)  # (K, 4): w, h, w, h
    low = np.array([-out_x, -out_y, -in_x, -in_y], dtype=np.float32)
    high = np.array([in_x, in_y, out_x, out_y], dtype=np.float32)
    moved = boxes + size * rng.uniform(low, high, size=boxes.shape).astype(np.float32)
    return keep_inside(moved)


def keep_inside(boxes: np.ndarray, minimum: float = 1e-3) -> np.ndarray:
    """Boxes clipped to [0, 1], at least `minimum` wide and high."""
    boxes = np.clip(boxes, 0.0, 1.0)
    boxes[:, :2] = np.minimum(boxes[:, :2], 1.0 - minimum)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + minimum)
    return boxes


def extend_boxes(boxes: np.ndarray, extend: tuple[float, float]) -> np.ndarray:
    """Boxes widened by `extend` = (x, y) fractions of their width and height (half on each side), in the frame."""
    pad = np.tile(boxes[:, 2:] - boxes[:, :2], 2) * np.array([-0.5, -0.5, 0.5, 0.5]) * np.tile(extend, 2)
    return keep_inside((boxes + pad).astype(np.float32))


def whole_frame_view(frames: np.ndarray, short_side: int, patch: int) -> torch.Tensor:
    """The whole frame, short side `short_side`, both sides rounded to whole patches: uint8 (3, T, H, W)."""
    video = to_tchw(frames)  # (T, 3, h, w)
    h, w = video.shape[-2:]
    scale = short_side / min(h, w)
    size = [max(patch, round(h * scale / patch) * patch), max(patch, round(w * scale / patch) * patch)]
    video = TF.resize(video, size, InterpolationMode.BILINEAR, antialias=False)
    return video.permute(1, 0, 2, 3).contiguous()


def train_view(
    frames: np.ndarray, boxes: np.ndarray, data: DataConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Short side `short_side_size`, a random `input_size` square crop, a flip half the time (if `data.flip`):
    uint8 (3, T, S, S), the boxes in the crop, and which boxes are still inside it (K,) bool."""
    video = resize_short_side(to_tchw(frames), data.short_side_size)  # (T, 3, h, w)
    h, w = video.shape[-2:]
    size = data.input_size
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    video = video[..., top : top + size, left : left + size]
    scale = np.array([w, h, w, h], dtype=np.float32)
    shift = np.array([left, top, left, top], dtype=np.float32)
    cropped = np.clip((boxes * scale - shift) / size, 0.0, 1.0)
    inside = (cropped[:, 2] - cropped[:, 0] > 1 / size) & (cropped[:, 3] - cropped[:, 1] > 1 / size)
    if data.flip and rng.random() < 0.5:
        video = video.flip(-1)
        cropped = np.stack([1 - cropped[:, 2], cropped[:, 1], 1 - cropped[:, 0], cropped[:, 3]], axis=1)
    return video.permute(1, 0, 2, 3).contiguous(), cropped, inside


def padded(values: np.ndarray, rows: int) -> torch.Tensor:
    """The first `rows` rows of `values`, zero-padded to `rows`: float32 (1, rows, ...)."""
    out = np.zeros((rows, *values.shape[1:]), dtype=np.float32)
    out[: min(rows, len(values))] = values[:rows]
    return torch.from_numpy(out).unsqueeze(0)


def box_mask(count: int, rows: int) -> torch.Tensor:
    """(1, rows) bool: True for the first `count` rows."""
    return (torch.arange(rows) < count).unsqueeze(0)


class DetectionDataset(VideoDataset):
    """Keyframe clips with their person boxes (module docstring); bad files are replaced as in every dataset.

    Args:
        keyframes: the samples (`keyframe_samples`).
        data: clip geometry, frame files and loading.
        det: detection settings.
        split: "train" (augmented, ground-truth targets) or "val"/"test" (whole frames, test boxes).
        seed: base seed of the augmentation draws.
        report_dir: folder of the bad-file report.
        class_names: the names of actions 1..num_actions.
        video_starts: {video_id: first second} for videos that do not start at `det.timestamp_start`.
    """

    def __init__(
        self,
        keyframes: list[KeyframeBoxes],
        data: DataConfig,
        det: DetectionConfig,
        split: str,
        seed: int = 0,
        report_dir: str | None = None,
        *,
        class_names: list[str],
        video_starts: dict[str, float] | None = None,
    ):
        locate = VideoLocator(data.root)
        samples = [
            Sample(
                locate(k.video_id),
                frame_template=data.frame_template.replace("{video}", k.video_id),
                start_index=data.start_index,
                key=f"{k.video_id},{k.timestamp}",
            )
            for k in keyframes
        ]
        super().__init__(samples, data, split, seed, report_dir)
        self.keyframes, self.det, self.class_names = keyframes, det, class_names
        self.num_classes = det.num_actions
        self.video_starts = video_starts or {}

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = self._split_key(key)
        return self.load_robustly(epoch, index, self._load)

    def read_clip(self, index: int) -> np.ndarray:
        """The frames of sample `index`'s clip: uint8 (T, H, W, 3)."""
        keyframe, data = self.keyframes[index], self.cfg
        reader = self.open_reader(index)
        try:
            fps = reader.fps or self.det.fps  # frame folders have no rate of their own
            start = self.video_starts.get(keyframe.video_id, self.det.timestamp_start)
            centre = round((float(keyframe.timestamp) - start) * fps)
            return reader.read(clip_indices(centre, reader.num_frames, data.num_frames, data.sampling_rate).tolist())
        finally:
            reader.close()

    def _load(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        keyframe, rows = self.keyframes[index], self.det.max_boxes
        frames = self.read_clip(index)
        if self.split != "train":
            video = whole_frame_view(frames, self.cfg.short_side_size, self.cfg.patch_size)
            boxes = extend_boxes(keyframe.boxes, self.det.test_box_extend)
            return {
                "video": video.unsqueeze(0),
                "boxes": padded(boxes, rows),
                "box_mask": box_mask(len(boxes), rows),
                "keyframe_index": torch.tensor([index]),
            }
        rng = numpy_generator(self.seed, epoch, index, AUGMENT_STREAM)
        video, boxes, inside = train_view(frames, keyframe.boxes, self.cfg, rng)
        boxes = jitter_boxes(boxes[inside], self.det.box_jitter, rng)
        return {
            "video": video.unsqueeze(0),
            "boxes": padded(boxes, rows),
            "box_mask": box_mask(len(boxes), rows),
            "targets": padded(keyframe.targets[inside], rows),
        }


def action_names(label_map: dict[int, str], num_actions: int) -> list[str]:
    """Names of actions 1..num_actions: the label map's, "action N" for those it does not list."""
    return [label_map.get(action, f"action {action}") for action in range(1, num_actions + 1)]


def build_detection_dataset(
    data: DataConfig, det: DetectionConfig, split: str, seed: int = 0, report_dir: str | None = None
) -> DetectionDataset:
    """The split's dataset ("train", or "val"/"test": both read `det.val_csv`)."""
    det.validate()
    resolve_backend(data.backend)  # an unknown or missing decoder fails here, not in a worker
    label_map = read_label_map(det.path(det.label_map))
    if max(label_map) > det.num_actions:
        raise DataError(
            f"{det.path(det.label_map)} lists action {max(label_map)}, but the detector has detection.num_actions="
            f"{det.num_actions} outputs"
        )
    names = action_names(label_map, det.num_actions)
    return DetectionDataset(
        keyframe_samples(split, det),
        data,
        det,
        split,
        seed,
        report_dir,
        class_names=names,
        video_starts=read_video_starts(det.path(det.video_starts)),
    )

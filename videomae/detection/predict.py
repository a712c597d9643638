"""Action detection on a user's video: person boxes from a file in, per-box action probabilities and pictures out.

The boxes file is a proposals file (`formats.read_proposals`: CSV or JSON), rows of other videos ignored. Each
keyframe (second) it lists is classified as in the test split: the clip centred on it, the whole frame resized to
the trained short side, the boxes widened as in testing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from videomae.apps.inputs import InputVideo
from videomae.apps.loading import TrainedSettings, load_model
from videomae.apps.predict import resolve_labels
from videomae.data.transforms import normalize_clips
from videomae.detection.config import DetectionConfig
from videomae.detection.data import clip_indices, extend_boxes, proposal_boxes, whole_frame_view
from videomae.detection.drawing import draw_boxes, keyframe_grid
from videomae.detection.formats import read_proposals
from videomae.devices import autocast, pick_device
from videomae.errors import DataError
from videomae.models.detector import detector_from_classifier


@dataclass
class KeyframeDetections:
    """One keyframe: its boxes (K, 4) as given, their action probabilities (K, C) and the clip's frames (T, H, W, 3)."""

    timestamp: float
    boxes: np.ndarray
    probabilities: np.ndarray
    frames: np.ndarray

    def top(self, names: list[str], k: int, min_score: float) -> list[list[tuple[str, float]]]:
        """Per box, up to `k` (name, probability) pairs scoring at least `min_score`, best first."""
        out = []
        for probabilities in self.probabilities:
            order = np.argsort(-probabilities, kind="stable")[:k]
            out.append([(names[i], float(probabilities[i])) for i in order if probabilities[i] >= min_score])
        return out


def boxes_of_video(path: str, video_id: str, min_box_score: float) -> dict[float, np.ndarray]:
    """{timestamp: boxes (K, 4)} of `video_id` in a boxes file (all rows when the file names one video only)."""
    proposals = read_proposals(path)
    videos = {vid for vid, _ in proposals}
    if video_id not in videos and len(videos) != 1:
        raise DataError(f"{path} has no boxes for {video_id!r}; it lists {', '.join(sorted(videos)[:5])}")
    chosen = {
        ts: proposal_boxes(found, min_box_score)
        for (vid, ts), found in proposals.items()
        if len(videos) == 1 or vid == video_id
    }
    return {ts: boxes for ts, boxes in sorted(chosen.items()) if len(boxes)}


class Detector:
    """Per-box action probabilities of a detector checkpoint (a `detect` run, its export, or any classifier file
    whose head is the actions), with the clip geometry it was trained with unless given.

    Args:
        checkpoint: any checkpoint `videomae.checkpoint.locate` accepts.
        device: default: CUDA when available.
        model: architecture name, for official files.
        labels: action names file (default: the checkpoint's labels.txt).
        sampling_rate: frame interval inside a clip (default: as trained, else 4).
        short_side: short side the frames are resized to (default: as trained, else 256).
        precision: "fp32" or "bf16".
    """

    def __init__(
        self,
        checkpoint: str,
        device: str | None = None,
        *,
        model: str | None = None,
        labels: str | None = None,
        sampling_rate: int | None = None,
        short_side: int | None = None,
        precision: str = "fp32",
    ):
        self.device = pick_device(device)
        classifier = load_model(checkpoint, model)
        self.model = detector_from_classifier(classifier).to(self.device)
        trained = TrainedSettings.of(checkpoint)
        self.sampling_rate = trained.pick("--sampling-rate", sampling_rate, "sampling_rate", 4)
        self.short_side = trained.pick("--short-side", short_side, "short_side_size", 256)
        self.num_frames = classifier.config.num_frames
        self.names = resolve_labels(labels, checkpoint, classifier.config.num_classes)
        self.precision = precision

    @torch.no_grad()
    def detect(
        self, video: InputVideo, boxes: dict[float, np.ndarray], *, fps: float, timestamp_start: float, backend="pyav"
    ) -> list[KeyframeDetections]:
        """Classify the boxes of each keyframe (second) of `video`; frame folders play at `fps`."""
        reader = video.open(backend)
        extend = DetectionConfig().test_box_extend
        results = []
        try:
            rate = reader.fps or fps
            for timestamp, found in boxes.items():
                centre = round((timestamp - timestamp_start) * rate)
                if not 0 <= centre < reader.num_frames:
                    raise DataError(
                        f"{video.path}: second {timestamp:g} is frame {centre}, outside its {reader.num_frames} "
                        f"frames (at {rate:g} fps, the first frame at second {timestamp_start:g})"
                    )
                frames = reader.read(clip_indices(centre, reader.num_frames, self.num_frames, self.sampling_rate))
                clip = normalize_clips(whole_frame_view(frames, self.short_side, self.model.config.patch_size))
                model_boxes = torch.from_numpy(extend_boxes(found, extend))
                with autocast(self.precision, self.device):
                    logits = self.model(clip[None].to(self.device), model_boxes[None].to(self.device))  # (1, K, C)
                probabilities = torch.sigmoid(logits.float())[0].cpu().numpy()
                results.append(KeyframeDetections(timestamp, found, probabilities, frames))
        finally:
            reader.close()
        return results


def pictures(
    detections: list[KeyframeDetections], names: list[str], top_k: int, min_score: float, title: str
) -> tuple[Image.Image, list[np.ndarray]]:
    """The PNG grid (keyframes with labelled boxes) and the GIF frames (every clip frame with its keyframe's boxes)."""
    stills, animation = [], []
    for keyframe in detections:
        labels = [[f"{name} {p:.2f}" for name, p in box] for box in keyframe.top(names, top_k, min_score)]
        caption = f"{keyframe.timestamp:g} s"
        stills.append(draw_boxes(keyframe.frames[len(keyframe.frames) // 2], keyframe.boxes, labels, caption))
        animation += [draw_boxes(frame, keyframe.boxes, labels, caption) for frame in keyframe.frames]
    return keyframe_grid(stills, title), animation


def format_detections(
    video: str, detections: list[KeyframeDetections], names: list[str], top_k: int, min_score: float, as_json: bool
) -> str:
    """A table (one line per box) or JSON of the boxes and their top actions."""
    records = [
        {
            "timestamp": keyframe.timestamp,
            "box": [round(float(v), 4) for v in box],
            "actions": [{"name": name, "probability": round(p, 4)} for name, p in top],
        }
        for keyframe in detections
        for box, top in zip(keyframe.boxes, keyframe.top(names, top_k, min_score))
    ]
    if as_json:
        return json.dumps({"video": video, "detections": records}, indent=1)
    lines = [f"{video} ({len(detections)} keyframes, {len(records)} boxes)"]
    for record in records:
        box = ",".join(f"{v:.3f}" for v in record["box"])
        actions = ", ".join(f"{a['name']} {a['probability']:.2f}" for a in record["actions"]) or "-"
        lines.append(f"  {record['timestamp']:g} s  [{box}]  {actions}")
    return "\n".join(lines)

"""Multi-view video classification: clips x crops per video, softmax averaged (the official test protocol).

`Predictor` is the Python API (`videomae predict` is a thin layer over it): a checkpoint in, top-k class names and
probabilities out, for video files, frame folders or decoded frames, with the preprocessing the checkpoint was
trained with (its preprocessing.json) unless told otherwise.

Views are those of the official test split (reference §5.2), the same as the dataset's test split:
`num_clips` temporal windows spread evenly over the video (every `sampling_rate`-th frame, or one frame per
segment for segment-sampled models such as SSv2's), each cut into `num_crops` squares along the long side
after a short-side resize. The per-view softmax probabilities are averaged, as the official `merge`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn as nn

from videomae.apps.inputs import InputVideo
from videomae.apps.loading import TrainedSettings, load_model
from videomae.checkpoint import locate, read_labels
from videomae.data.decoders import VideoReader
from videomae.data.manifests import read_label_file
from videomae.data.sampling import test_indices
from videomae.data.transforms import multiview_clip
from videomae.devices import autocast, pick_device
from videomae.errors import ConfigError, DataError

KINETICS_LABELS = ("k400", "k600", "k700", "k710")


@dataclass(frozen=True)
class ViewConfig:
    """Test views of one video.

    Attributes:
        num_clips: temporal views.
        num_crops: spatial views per temporal view (1 = centre, 3 = both ends and centre).
        num_frames: frames per clip (the model's).
        sampling_rate: frame interval inside a clip.
        sparse: one frame per segment instead of a dense clip (models trained with segment sampling).
        short_side: short side after resizing; crops are short_side x short_side.
        batch_size: views per forward pass.
        precision: "fp32" or "bf16".
    """

    num_clips: int = 5
    num_crops: int = 3
    num_frames: int = 16
    sampling_rate: int = 4
    sparse: bool = False
    short_side: int = 224
    batch_size: int = 8
    precision: str = "fp32"


def kinetics_labels(name: str) -> list[str]:
    """The shipped class names of Kinetics-400/600/700/710 (official order)."""
    resource = resources.files("videomae.resources") / "kinetics" / f"label_map_{name}.txt"
    return [line.strip() for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]


def resolve_labels(spec: str | None, checkpoint: str, num_classes: int) -> list[str]:
    """Class names for a classifier of `num_classes` outputs.

    Order of preference: `spec` ("k400" ... "k710" or a file), a `labels.txt` beside the checkpoint (or in
    its training run directory), the Kinetics list of that size, else "class 0", "class 1", ...

    Raises:
        DataError: the names do not match the classifier's size, or the file cannot be read.
    """
    if spec in KINETICS_LABELS:
        names = kinetics_labels(spec)
    elif spec is not None:
        names = read_label_file(spec)
    else:
        names = read_labels(locate(checkpoint))
        if names is None:
            by_size = {len(kinetics_labels(k)): k for k in KINETICS_LABELS}
            names = (
                kinetics_labels(by_size[num_classes])
                if num_classes in by_size
                else [f"class {i}" for i in range(num_classes)]
            )
    if len(names) != num_classes:
        raise DataError(
            f"{spec or 'the label file'} has {len(names)} class names but the model has {num_classes} "
            f"outputs; pass --labels with a matching list"
        )
    return names


class FramesReader:
    """Decoded frames (T, H, W, 3) uint8 read like a video file."""

    fps = 0.0

    def __init__(self, frames: np.ndarray | torch.Tensor):
        frames = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise DataError(
                f"decoded frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {tuple(frames.shape)}"
            )
        self.frames, self.num_frames = frames, len(frames)

    def read(self, indices) -> np.ndarray:
        return self.frames[list(indices)]

    def close(self) -> None:
        pass


def view_batches(reader: VideoReader, cfg: ViewConfig):
    """Yield batches of test views (b, 3, T, S, S) of one video; it is read once per temporal view."""
    try:
        pending = []
        for clip in range(cfg.num_clips):
            indices = test_indices(
                reader.num_frames, cfg.num_frames, cfg.sampling_rate, cfg.sparse, clip, cfg.num_clips
            )
            frames = reader.read(indices.tolist())  # (T, H, W, 3)
            pending += [multiview_clip(frames, cfg.short_side, crop, cfg.num_crops) for crop in range(cfg.num_crops)]
            while len(pending) >= cfg.batch_size:
                yield torch.stack(pending[: cfg.batch_size])
                pending = pending[cfg.batch_size :]
        if pending:
            yield torch.stack(pending)
    finally:
        reader.close()


@torch.no_grad()
def video_probabilities(model: nn.Module, reader: VideoReader, cfg: ViewConfig, device: torch.device) -> np.ndarray:
    """Mean softmax over all views of one video: (C,) float64."""
    probabilities = []
    for batch in view_batches(reader, cfg):
        with autocast(cfg.precision, device):
            logits = model(batch.to(device)).float()  # (b, C)
        probabilities.append(torch.softmax(logits.double(), dim=-1).cpu())
    return torch.cat(probabilities).mean(dim=0).numpy()


@dataclass
class Prediction:
    """Top-k classes of one video, or why it could not be classified."""

    video: str
    views: int
    top: list[tuple[int, str, float]]  # (class index, name, probability)
    error: str | None = None

    @property
    def labels(self) -> list[str]:
        return [name for _, name, _ in self.top]

    @property
    def probabilities(self) -> list[float]:
        return [probability for _, _, probability in self.top]

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"video": self.video, "error": self.error}
        return {
            "video": self.video,
            "views": self.views,
            "top_k": [{"index": i, "label": name, "probability": _json_number(p)} for i, name, p in self.top],
        }


def _json_number(value: float) -> float | None:
    """JSON has no NaN: a non-finite probability (a diverged model) is written as null."""
    return round(value, 6) if math.isfinite(value) else None


def top_k_classes(probabilities: np.ndarray, names: list[str], k: int) -> list[tuple[int, str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(i), names[i], float(probabilities[i])) for i in order]


def format_table(predictions: list[Prediction]) -> str:
    """A plain-text table: one block per video, one line per class."""
    lines = []
    for prediction in predictions:
        if prediction.error is not None:
            lines.append(f"{prediction.video}: failed: {prediction.error}")
            continue
        lines.append(f"{prediction.video} ({prediction.views} views)")
        lines += [f"  {rank}. {100 * p:6.2f}%  {name}" for rank, (_, name, p) in enumerate(prediction.top, start=1)]
    return "\n".join(lines)


def format_json(predictions: list[Prediction]) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=1, allow_nan=False)


def check_counts(counts: dict[str, int | None]) -> None:
    """Raise ConfigError for the first count below 1, named as the caller spells it."""
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")


class Predictor:
    """Top-k class names and probabilities of videos, as transformers' pipeline, with the official test views.

    >>> predictor = Predictor("vit_b_k710_dl_from_giant")   # any checkpoint: path, run, hf-hub:..., zoo name
    >>> predictor("cooking.mp4").labels[0]                  # a video file or a frame folder
    >>> predictor(["a.mp4", "b.mp4"])                        # several videos: a list of Predictions
    >>> predictor(frames)                                    # decoded uint8 (T, H, W, 3) tensor or array

    Args:
        checkpoint: a fine-tuned classifier: anything `videomae.checkpoint.locate` accepts.
        device: "cpu", "cuda", ... (default: cuda when available).
        model: architecture name, for official files whose architecture cannot be inferred.
        labels: class names: "k400" ... "k710" or a file (default: the checkpoint's, else Kinetics by class count).
        top_k: classes per prediction.
        clips, crops, sampling_rate, short_side: test views (default: as trained, else 5 x 3, rate 4, the model's
            input size); a value differing from training is used, with a warning.
        batch_size: views per forward pass.
        precision: "fp32" or "bf16".
        backend: video decoder for files: "pyav", "decord", "torchcodec" or "auto".
    """

    def __init__(
        self,
        checkpoint: str,
        device: str | torch.device | None = None,
        *,
        model: str | None = None,
        labels: str | None = None,
        top_k: int = 5,
        clips: int | None = None,
        crops: int | None = None,
        sampling_rate: int | None = None,
        short_side: int | None = None,
        batch_size: int = 8,
        precision: str = "fp32",
        backend: str = "pyav",
    ):
        check_counts(
            {
                "top_k": top_k,
                "clips": clips,
                "crops": crops,
                "sampling_rate": sampling_rate,
                "short_side": short_side,
                "batch_size": batch_size,
            }
        )
        self.device = pick_device(str(device) if device is not None else None)
        self.model = load_model(str(checkpoint), model).to(self.device)
        config = self.model.config
        if config.kind != "classifier" or config.num_classes < 1:
            raise ConfigError(
                f"{checkpoint} is not a classifier (kind {config.kind!r}, {config.num_classes} "
                f"classes); prediction needs a fine-tuned checkpoint"
            )
        self.labels = resolve_labels(labels, str(checkpoint), config.num_classes)
        trained = TrainedSettings.of(str(checkpoint))
        self.views = ViewConfig(
            num_clips=trained.pick("clips", clips, "test_num_segment", 5),
            num_crops=trained.pick("crops", crops, "test_num_crop", 3),
            num_frames=config.num_frames,
            sampling_rate=trained.pick("sampling rate", sampling_rate, "sampling_rate", 4),
            sparse=trained.pick("segment sampling", None, "sparse", False),
            short_side=trained.pick("short side", short_side, "short_side_size", config.image_hw[0]),
            batch_size=batch_size,
            precision=precision,
        )
        self.top_k, self.backend = top_k, backend

    def __call__(self, inputs, top_k: int | None = None) -> Prediction | list[Prediction]:
        """Predict one input (a path, or decoded frames) or a list of them."""
        if isinstance(inputs, (list, tuple)):
            return [self.predict(item, top_k) for item in inputs]
        return self.predict(inputs, top_k)

    def predict(self, video, top_k: int | None = None) -> Prediction:
        """One video: a file or frame folder (path or InputVideo) or decoded uint8 (T, H, W, 3) frames.

        Raises:
            DataError: the video cannot be read.
        """
        name, reader = self._open(video)
        probabilities = video_probabilities(self.model, reader, self.views, self.device)
        top = top_k_classes(probabilities, self.labels, min(top_k or self.top_k, len(self.labels)))
        return Prediction(name, self.views.num_clips * self.views.num_crops, top)

    def _open(self, video) -> tuple[str, VideoReader]:
        if isinstance(video, (str, os.PathLike)):
            video = InputVideo(str(video), os.path.basename(os.fspath(video)))
        if isinstance(video, InputVideo):
            return video.path, video.open(self.backend)
        return "frames", FramesReader(video)
